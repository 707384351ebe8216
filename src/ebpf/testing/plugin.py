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

The bpffs and cgroup directories carry the pid of the process that made them
(``ebpf-bpffs-<pid>-*``, ``ebpf-test-<pid>-*``). A test run killed with SIGKILL cannot remove
them, so the next session removes those whose owner is dead (never those of a live process:
several runs may share the machine).

``--ebpf-leak-check`` (or ``ebpf_leak_check = true`` in the ini file) fails the session if
anything a test created is still there at the end, like cilium/ebpf's leak check: library
fds, BPF object fds and network namespace fds of this process, pins made by it, programs,
maps and links it created (by id: the kernel is shared, so only its own objects count), its
bpffs mounts and cgroups.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import os
import re
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .. import errors, platform

__all__ = ["bpffs", "cgroup", "cgroup2_root", "check_probe", "child_cgroup", "netns", "require",
           "tracefs", "veth_pair"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ebpf")
    group.addoption("--ebpf-leak-check", action="store_true", default=None,
                    help="fail the session if a test left BPF objects, fds, pins, mounts, "
                    "cgroups or network namespaces behind")
    parser.addini("ebpf_leak_check", "enable --ebpf-leak-check", type="bool", default=False)


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


_BPFFS_PREFIX = "ebpf-bpffs-"
_CGROUP_PREFIX = "ebpf-test-"
_STALE_BPFFS = re.compile(r"^ebpf-bpffs-(\d+)-[A-Za-z0-9_]+$")
_STALE_CGROUP = re.compile(r"^ebpf-test-(\d+)-[0-9a-f]{10}$")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale() -> list[str]:
    """Unmount and remove bpffs directories and cgroups left by test runs whose process is
    dead (SIGKILL); returns what was removed. Those of live processes are never touched."""
    removed: list[str] = []
    tmp = tempfile.gettempdir()
    with contextlib.suppress(OSError):
        for name in os.listdir(tmp):
            m = _STALE_BPFFS.match(name)
            if m is None or _pid_alive(int(m.group(1))):
                continue
            path = os.path.join(tmp, name)
            if platform.is_mounted(path, "bpf"):
                with contextlib.suppress(OSError):
                    platform.umount(path, lazy=True)
            with contextlib.suppress(OSError):
                os.rmdir(path)
                removed.append(path)
    root = cgroup2_root()
    if root is not None:
        with contextlib.suppress(OSError):
            for name in os.listdir(root):
                m = _STALE_CGROUP.match(name)
                if m is None or _pid_alive(int(m.group(1))):
                    continue
                path = os.path.join(root, name)
                with contextlib.suppress(OSError):
                    os.rmdir(path)  # EBUSY while processes live in it: left alone
                    removed.append(path)
    return removed


@pytest.fixture
def bpffs() -> Iterator[str]:
    """A private bpffs (mode 0700) mounted on a temporary directory; unmounted and removed
    afterwards."""
    path = tempfile.mkdtemp(prefix=f"{_BPFFS_PREFIX}{os.getpid()}-")
    try:
        platform.mount("bpf", path, "bpf", data="mode=0700")
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
def child_cgroup(prefix: str = _CGROUP_PREFIX) -> Iterator[str]:
    """A new child cgroup v2 directory; on exit its processes move to the parent and it goes.

    Named ``<prefix><pid>-<random>`` so that a later session can tell whether its owner died.
    """
    root = cgroup2_root()
    if root is None:
        raise errors.NotSupportedError("cgroup v2 mount")
    path = os.path.join(root, f"{prefix}{os.getpid()}-{uuid.uuid4().hex[:10]}")
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


# --- session-wide leak check -------------------------------------------------------------------

class LeakTracker:
    """What a test session created, to find what it left behind (see ``--ebpf-leak-check``)."""

    def __init__(self) -> None:
        from .._sys import commands
        from .._sys import fd as _fd

        self._fd = _fd
        self._commands = commands
        self.created: dict[str, set[int]] = {"map": set(), "program": set(), "link": set()}
        self.open_before = _fd.open_count()
        self.fds_before = self._kernel_fds()
        self.netns_before = self._netns_names()
        commands.pinned = []
        _fd.on_create = self._record

    def _record(self, fd: int) -> None:
        from .._uapi import _generated_types as _t

        kind = self._commands.obj_kind(fd)
        if kind not in self.created:
            return
        info: object = {"map": _t.BpfMapInfo, "program": _t.BpfProgInfo,
                        "link": _t.BpfLinkInfo}[kind]()
        with contextlib.suppress(errors.BPFError, OSError):
            self.created[kind].add(self._commands.obj_info(fd, info).id)  # type: ignore[type-var,attr-defined]

    @staticmethod
    def _kernel_fds() -> dict[str, str]:
        """fd -> target of this process's BPF object and network namespace fds."""
        out: dict[str, str] = {}
        with contextlib.suppress(OSError):
            for n in os.listdir("/proc/self/fd"):
                with contextlib.suppress(OSError):
                    t = os.readlink(f"/proc/self/fd/{n}")
                    if t.startswith(("anon_inode:bpf", "anon_inode:btf", "net:[")):
                        out[n] = t
        return out

    @staticmethod
    def _netns_names() -> set[str]:
        try:
            return {n for n in os.listdir("/run/netns") if str(os.getpid()) in n}
        except OSError:
            return set()

    def _alive(self) -> list[str]:
        from .._sys.commands import ObjKind

        kinds = {"map": ObjKind.MAP, "program": ObjKind.PROG, "link": ObjKind.LINK}
        alive = []
        for kind, ids in self.created.items():
            for obj_id in sorted(ids):
                try:
                    fd = self._commands.fd_by_id(kinds[kind], obj_id, kind)
                except errors.SyscallError as e:
                    if e.errno == _errno.ENOENT:
                        continue
                    raise
                fd.close()
                alive.append(f"{kind} id {obj_id}")
        return alive

    def leaks(self) -> list[str]:
        """Everything still there that the session created (waits up to ~1 s for objects
        the kernel frees asynchronously)."""
        self._fd.on_create = None
        found: list[str] = []
        deadline = time.monotonic() + 1.0
        while True:
            found = []
            n = self._fd.open_count() - self.open_before
            if n > 0:
                found.append(f"{n} ebpf FD object(s) still open")
            now = self._kernel_fds()
            for k, t in sorted(now.items()):
                if self.fds_before.get(k) != t:
                    found.append(f"fd {k} -> {t}")
            for path in self._commands.pinned or ():
                if os.path.lexists(path):
                    found.append(f"pin {path}")
            for name in sorted(self._netns_names() - self.netns_before):
                found.append(f"netns /run/netns/{name}")
            mine = f"{_BPFFS_PREFIX}{os.getpid()}-"
            for point in platform.find_mount("bpf"):
                if os.path.basename(point).startswith(mine):
                    found.append(f"bpffs mount {point}")
            root = cgroup2_root()
            if root is not None:
                with contextlib.suppress(OSError):
                    for name in os.listdir(root):
                        if name.startswith(f"{_CGROUP_PREFIX}{os.getpid()}-"):
                            found.append(f"cgroup {os.path.join(root, name)}")
            found += self._alive()
            if not found or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


_TRACKER = pytest.StashKey[LeakTracker]()


def _leak_check_enabled(config: pytest.Config) -> bool:
    opt = config.getoption("ebpf_leak_check", default=None)
    return bool(opt if opt is not None else config.getini("ebpf_leak_check"))


def pytest_sessionstart(session: pytest.Session) -> None:
    clean_stale()
    if _leak_check_enabled(session.config):
        session.config.stash[_TRACKER] = LeakTracker()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    tracker = session.config.stash.get(_TRACKER, None)
    if tracker is None:
        return
    found = tracker.leaks()
    if not found:
        return
    tr = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = ["ebpf leak check: the session left behind:"] + [f"  {f}" for f in found]
    if tr is not None:
        tr.write_line("")
        for line in lines:
            tr.write_line(line, red=True)
    else:  # pragma: no cover
        print("\n".join(lines))
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
