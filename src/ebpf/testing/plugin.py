"""pytest plugin of :mod:`ebpf`, registered through the ``pytest11`` entry point.

Marks:

* ``@pytest.mark.kernel("5.9")`` skips below that kernel version.
* ``@pytest.mark.requires(probe, *args)`` skips when ``probe(*args)`` (an
  :mod:`ebpf.features` function) raises :class:`~ebpf.errors.NotSupportedError`, and *fails*
  the test instead when the running kernel is at least the version the probe names: a skip
  that this kernel should not need is a bug to see, not to hide.
* ``@pytest.mark.capabilities(Capability.BPF, Capability.NET_ADMIN)`` skips unless those
  capabilities are effective (``CapEff``, not the user name).

Fixtures: ``require`` (the ``requires`` mark as a function), ``bpffs`` (a private bpffs,
unmounted afterwards), ``tracefs`` (mounted for the session when absent), ``cgroup`` (a child
cgroup v2, removed afterwards), ``netns`` (the test runs inside a fresh network namespace,
entered with ``setns``), ``veth_pair`` (two namespaces joined by a veth pair). Each is removed
after the test, also when it fails.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .. import errors, platform

__all__ = ["bpffs", "cgroup", "cgroup2_root", "check_probe", "child_cgroup", "netns", "require",
           "tracefs", "veth_pair"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "kernel(version): skip below this kernel version")
    config.addinivalue_line(
        "markers",
        "requires(probe, *args): skip when an ebpf.features probe says the kernel lacks it",
    )
    config.addinivalue_line(
        "markers", "capabilities(*caps): skip unless these capabilities are effective"
    )


def check_probe(probe: Callable[..., None], *args: Any) -> None:
    """Skip the running test if ``probe(*args)`` says the feature is missing.

    Fails instead when the kernel is new enough to have it, so a wrong probe is noticed.
    """
    try:
        probe(*args)
    except errors.NotSupportedError as e:
        if e.min_kernel and platform.kernel_version() >= e.min_kernel:
            pytest.fail(
                f"{e} but the running kernel is {platform.kernel_version()}: the probe or the "
                "kernel configuration is wrong"
            )
        pytest.skip(str(e))
    except errors.ProbeError as e:
        pytest.skip(str(e))  # names the feature and the exact errno that hid the answer


def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("kernel"):
        need = str(mark.args[0])
        if platform.kernel_version() < need:
            pytest.skip(f"requires kernel >= {need}, running {platform.kernel_version()}")
    for mark in item.iter_markers("capabilities"):
        missing = [c for c in mark.args if not platform.has_capability(c)]
        if missing:
            pytest.skip(f"requires capabilities {missing} (CapEff={platform.capabilities():#x})")
    for mark in item.iter_markers("requires"):
        check_probe(*mark.args)


@pytest.fixture
def require() -> Callable[..., None]:
    """``require(probe, *args)``: skip (or fail, see :func:`check_probe`) when unsupported."""
    return check_probe


@pytest.fixture(scope="session")
def tracefs() -> Iterator[str]:
    """The tracefs mount point, mounted at ``/sys/kernel/tracing`` for the session if absent.

    Unmounted at the end of the session only if this fixture mounted it.
    """
    existing = platform.tracefs_path()
    if existing is not None:
        yield existing
        return
    try:
        path = platform.tracefs_path(mount_if_missing=True)
    except OSError as e:
        pytest.skip(f"cannot mount tracefs: {e}")
    assert path is not None
    try:
        yield path
    finally:
        with contextlib.suppress(OSError):
            platform.umount(path, lazy=True)


@pytest.fixture
def bpffs() -> Iterator[str]:
    """A private bpffs mounted on a temporary directory; unmounted and removed afterwards."""
    path = tempfile.mkdtemp(prefix="ebpf-bpffs-")
    try:
        platform.mount("bpf", path, "bpf")
    except OSError as e:
        os.rmdir(path)
        pytest.skip(f"cannot mount bpffs: {e}")
    try:
        yield path
    finally:
        platform.umount(path, lazy=True)
        os.rmdir(path)


def cgroup2_root() -> str | None:
    """The cgroup v2 mount point, preferring ``/sys/fs/cgroup`` then ``.../unified``."""
    points = platform.find_mount("cgroup2")
    for p in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        if p in points:
            return p
    return points[0] if points else None


@contextlib.contextmanager
def child_cgroup(prefix: str = "ebpf-test-") -> Iterator[str]:
    """A new child cgroup v2 directory; on exit its processes move to the parent and it goes."""
    root = cgroup2_root()
    if root is None:
        raise errors.NotSupportedError("cgroup v2 mount")
    path = os.path.join(root, prefix + uuid.uuid4().hex[:10])
    os.mkdir(path)
    try:
        yield path
    finally:
        with contextlib.suppress(OSError):
            with open(os.path.join(path, "cgroup.procs")) as f:
                pids = [line.strip() for line in f if line.strip()]
            for pid in pids:
                with contextlib.suppress(OSError), open(os.path.join(root, "cgroup.procs"),
                                                        "w") as out:
                    out.write(pid)
        os.rmdir(path)


@pytest.fixture
def cgroup() -> Iterator[str]:
    """Path of a fresh child cgroup v2, removed after the test."""
    try:
        cm = child_cgroup()
        path = cm.__enter__()
    except errors.NotSupportedError as e:
        pytest.skip(str(e))
    try:
        yield path
    finally:
        cm.__exit__(None, None, None)


@pytest.fixture
def netns() -> Iterator[Any]:
    """Run the test inside a fresh network namespace (loopback up); restored afterwards."""
    from .netns import NetNS

    with NetNS() as ns, ns.enter():
        yield ns


@pytest.fixture
def veth_pair() -> Iterator[Any]:
    """Two network namespaces joined by a veth pair with IPv4 addresses, removed afterwards."""
    from .netns import veth_pair as make

    with make() as pair:
        yield pair
