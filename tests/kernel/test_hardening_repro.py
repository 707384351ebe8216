"""Issue 14 findings reproduced the way the issue found them, where the older tests
simulate it: a test run killed with SIGKILL leaves its bpffs mount and cgroup, and the next
session start removes them (``tests/kernel/test_hardening_runtime.py`` plants directories
named after a dead pid; here a real pytest run holding the fixtures is killed)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ebpf import Collection, VerifierError, platform
from ebpf._sys.fd import open_count as ebpf_fd_count
from ebpf.testing import plugin

HOLDER = '''
import os, time

def test_hold(bpffs, cgroup):
    with open(os.environ["EBPF_HOLDER_OUT"] + ".tmp", "w") as f:
        f.write(bpffs + "\\n" + cgroup + "\\n")
    os.rename(os.environ["EBPF_HOLDER_OUT"] + ".tmp", os.environ["EBPF_HOLDER_OUT"])
    time.sleep(600)
'''


def test_sigkilled_run_is_cleaned_at_the_next_session_start(tmp_path: Path) -> None:
    if plugin.cgroup2_root() is None:
        pytest.skip("no cgroup v2 hierarchy mounted (ENOENT)")
    (tmp_path / "test_holder.py").write_text(HOLDER)
    out = tmp_path / "paths"
    env = dict(os.environ, EBPF_HOLDER_OUT=str(out))
    child = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore",
         "--rootdir", str(tmp_path), str(tmp_path / "test_holder.py")],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    bpffs = cgroup = ""
    try:
        deadline = time.monotonic() + 60
        while not out.exists():
            assert child.poll() is None, child.stdout.read() if child.stdout else ""
            assert time.monotonic() < deadline, "the holder never reached its test"
            time.sleep(0.05)
        bpffs, cgroup = out.read_text().split()
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)  # reaped: its pid is dead, not a zombie
        assert child.returncode == -signal.SIGKILL
        # what the killed run left: its bpffs mount (mode 0700) and its cgroup
        assert platform.is_mounted(bpffs, "bpf")
        assert os.stat(bpffs).st_mode & 0o777 == 0o700
        assert os.path.isdir(cgroup)
        removed = plugin.clean_stale()  # what the next session's pytest_sessionstart runs
        assert bpffs in removed and cgroup in removed, removed
        assert not os.path.exists(bpffs) and not platform.is_mounted(bpffs, "bpf")
        assert not os.path.exists(cgroup)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(30)
        if child.stdout is not None:
            child.stdout.close()
        if bpffs and platform.is_mounted(bpffs, "bpf"):
            platform.umount(bpffs, lazy=True)
        for path in (bpffs, cgroup):
            if path and os.path.isdir(path):
                os.rmdir(path)


# --- a failed collection load unpins what it pinned -------------------------------------------

def _pins(path: str) -> list[str]:
    """Entries of ``path`` but the kernel's own (a fresh bpffs shows ``maps.debug`` and
    ``progs.debug`` from the bpf_preload module)."""
    return sorted(n for n in os.listdir(path) if not n.endswith(".debug"))


def test_failed_collection_load_leaves_no_pin(bpffs: str) -> None:
    """The issue's case with a hand-built spec: two maps pinned by name, one program the
    verifier rejects (R0 never written). Before the fix both pins stayed in ``pin_path``
    (the fds were closed, the maps lived on in bpffs); a pin that existed before the load is
    reused and left in place."""
    from ebpf import CollectionSpec, MapSpec, MapType, PinType, ProgramSpec, ProgramType

    def pinned(name: str) -> MapSpec:
        return MapSpec(name, MapType.HASH, key_size=4, value_size=4, max_entries=1,
                       pinning=PinType.BY_NAME)

    bad = ProgramSpec("bad", ProgramType.XDP, b"\x95" + bytes(7))  # exit: R0 !read_ok
    spec = CollectionSpec(maps={"pin_a": pinned("pin_a"), "pin_b": pinned("pin_b")},
                          programs={"bad": bad})
    before = (ebpf_fd_count(), set(os.listdir("/proc/self/fd")))
    for _ in range(2):
        with pytest.raises(VerifierError):
            Collection.load(spec, pin_path=bpffs)
        assert _pins(bpffs) == []
    assert (ebpf_fd_count(), set(os.listdir("/proc/self/fd"))) == before
    with Collection.load(spec.replace(programs={}), pin_path=bpffs):  # a good load pins both
        pass
    assert _pins(bpffs) == ["pin_a", "pin_b"]
    with pytest.raises(VerifierError):  # reused pins belong to someone else: kept
        Collection.load(spec, pin_path=bpffs)
    assert _pins(bpffs) == ["pin_a", "pin_b"]
    for name in ("pin_a", "pin_b"):
        os.unlink(os.path.join(bpffs, name))
