"""ebpf.bpf local-storage maps (``TaskStorage``, ``SkStorage``, ``CgroupStorage``), on the
kernel.

A tracepoint on ``sys_enter_getppid`` keeps a per-task record (``calls.get(task,
create=True)`` with ``bpf.get_current_task_btf()``), and ``sys_enter_getpgid`` deletes it;
Python reads the record by a pidfd. A ``connect4`` program in a child cgroup keeps a per-socket
record (``socks.get(ctx.sk, create=True)``); the child process reads it back by the socket's
fd from the pinned map. A tracepoint counts a child cgroup's getppid calls in a per-cgroup
record, read by the cgroup directory's fd; an LSM ``file_open`` program counts opens per
inode (the VM), read by a file's fd. Records are per owner: another thread's calls,
another socket's connects do not mix.
"""

from __future__ import annotations

import errno
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from ebpf import MapType, errors, platform
from ebpf.link import attach_cgroup
from ebpf.link.tracepoint import attach_tracepoint
from ebpf.testing.modules import import_file, import_source

H = import_file(Path(__file__).with_name("_trace_link_factories.py"))

SOURCE = '''
from ebpf import bpf
from ebpf.bpf import u16, u32, u64

class Calls(bpf.Struct):
    n: u64
    tid: u32

class Conn(bpf.Struct):
    connects: u32
    last_port: u16

calls = bpf.TaskStorage(Calls)
counts = bpf.TaskStorage(u64)
socks = bpf.SkStorage(Conn)
groups = bpf.CgroupStorage(u64)
inodes = bpf.InodeStorage(u64)
deleted = bpf.Array(u64, max_entries=2)

@bpf.tracepoint("syscalls/sys_enter_getppid")
def on_getppid(ctx) -> int:
    if bpf.get_current_pid_tgid() >> 32 != pid:
        return 0
    t = bpf.get_current_task_btf()
    s = calls.get(t, create=True)
    if s is not None:
        s.n += 1
        s.tid = bpf.get_current_pid_tgid() & 0xFFFFFFFF
    c = counts.get(t, create=True)
    if c is not None:
        c.value += 2
    return 0

@bpf.tracepoint("syscalls/sys_enter_getpgid")
def on_getpgid(ctx) -> int:
    if bpf.get_current_pid_tgid() >> 32 != pid:
        return 0
    t = bpf.get_current_task_btf()
    if calls.get(t) is None:
        deleted[1] += 1                 # nothing to delete: get without create is None
    r = calls.delete(t)
    if r == 0:
        deleted[0] += 1
    return 0

@bpf.tracepoint("syscalls/sys_enter_getppid")
def per_cgroup(ctx) -> int:
    cg = bpf.get_current_task_btf().cgroups.dfl_cgrp   # the task's cgroup v2
    s = groups.get(cg, create=True)
    if s is not None:
        s.value += 1
    return 0

@bpf.lsm("file_open")
def per_inode(ctx) -> int:
    if bpf.get_current_pid_tgid() >> 32 != pid:
        return 0
    s = inodes.get(ctx.file.f_inode, create=True)
    if s is not None:
        s.value += 1
    return 0

@bpf.cgroup_sock_addr("connect4")
def on_connect(ctx) -> int:
    s = socks.get(ctx.sk, create=True)
    if s is not None:
        s.connects += 1
        s.last_port = ctx.user_port
    return 1
'''


@pytest.fixture(scope="module")
def mod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    import sys

    m = import_source(tmp_path_factory.mktemp("storage"), "bpf_local_storage_mod",
                      SOURCE + f"\npid = bpf.const(u32, {os.getpid()})\n")
    yield m
    sys.modules.pop(m.__name__, None)


def test_task_storage_per_task(mod: ModuleType, tracefs: str) -> None:
    from ebpf import bpf

    with bpf.load(mod.on_getppid, mod.on_getpgid) as coll, \
            attach_tracepoint(coll.on_getppid, "syscalls", "sys_enter_getppid"), \
            attach_tracepoint(coll.on_getpgid, "syscalls", "sys_enter_getpgid"):
        assert coll.collection.maps["calls"].type == MapType.TASK_STORAGE
        fd = os.pidfd_open(os.getpid())
        try:
            for _ in range(5):
                os.getppid()
            t = threading.Thread(target=lambda: [os.getppid() for _ in range(3)])
            t.start()                                # its calls go to its own record
            t.join()
            rec = coll.calls[fd]                     # the main thread's (the pidfd's task)
            assert (rec.n, rec.tid) == (5, os.getpid())
            assert coll.counts[fd] == 10
            os.getpgid(0)                            # deletes the main thread's record
            with pytest.raises(KeyError):
                coll.calls[fd]
            assert coll.counts[fd] == 10             # another map's storage stays
            os.getpgid(0)                            # nothing left to delete
            assert (coll.deleted[0], coll.deleted[1]) == (1, 1)
        finally:
            os.close(fd)


@pytest.mark.capabilities(platform.Capability.SYS_ADMIN)
def test_sk_storage_per_socket(mod: ModuleType, cgroup: str, bpffs: str) -> None:
    from ebpf import bpf

    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        port = srv.getsockname()[1]
        pin = os.path.join(bpffs, f"ebpf_test_socks_{os.getpid()}")
        with bpf.load(mod.on_connect) as coll:
            assert coll.collection.maps["socks"].type == MapType.SK_STORAGE
            coll.collection.maps["socks"].pin(pin)
            try:
                with attach_cgroup(coll.on_connect, cgroup):
                    out = H.run_in_cgroup(cgroup, f"""
                        import socket
                        from ebpf import Map
                        from ebpf.bpf import u16, u32
                        m = Map.from_pin({pin!r})
                        a, b = socket.socket(), socket.socket()
                        a.connect(("127.0.0.1", {port}))
                        b.connect(("127.0.0.1", {port}))
                        print(m.get(a.fileno()), m.get(b.fileno()))
                        c = socket.socket()
                        print(m.get(c.fileno()))          # never connected: no storage
                    """).split("\n")
            finally:
                coll.collection.maps["socks"].unpin()
    rec = 1 | port << 32                     # Conn(connects=1, last_port=port), read as a u64
    assert out[0] == f"{rec} {rec}"
    assert out[1] == "None"


def test_cgroup_storage_per_cgroup(mod: ModuleType, cgroup: str, tracefs: str) -> None:
    from ebpf import bpf

    try:
        coll = bpf.load(mod.per_cgroup)
    except errors.SyscallError as e:
        if e.errno == errno.EINVAL and e.cmd == "BPF_MAP_CREATE":
            pytest.skip(f"BPF_MAP_TYPE_CGRP_STORAGE: BPF_MAP_CREATE gives EINVAL on Linux "
                        f"{os.uname().release} (the map type is 6.2+)")
        raise
    with coll:
        assert coll.collection.maps["groups"].type == MapType.CGRP_STORAGE
        with attach_tracepoint(coll.per_cgroup, "syscalls", "sys_enter_getppid"):
            H.run_in_cgroup(cgroup, "import os\nfor _ in range(7):\n    os.getppid()\n")
        fd = os.open(cgroup, os.O_RDONLY | os.O_DIRECTORY)
        try:
            assert coll.groups[fd] == 7                # only the child ran in that cgroup
        finally:
            os.close(fd)


def test_inode_storage_per_inode(mod: ModuleType, tmp_path: Path) -> None:
    """LSM (the VM: this host refuses LSM loads with EPERM)."""
    from ebpf.link import attach_tracing

    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"x")
    b.write_bytes(b"y")
    with H.bpf_load_or_skip("lsm/file_open", mod.per_inode) as coll, \
            attach_tracing(coll.per_inode):
        for _ in range(3):
            a.read_bytes()
        b.read_bytes()
        with open(a, "rb") as fa, open(b, "rb") as fb:     # two more opens
            assert (coll.inodes[fa.fileno()], coll.inodes[fb.fileno()]) == (4, 2)


def test_storage_errors(tmp_path: Path) -> None:
    from ebpf import bpf

    for body, message in [
        ("    calls[0] = 1\n", "no keys in programs"),
        ("    calls.get(5)\n", "pass a BTF struct task_struct"),
        ("    calls.get(bpf.get_current_task_btf(), create=1)\n", "create=True or create"),
        ("    calls.lookup(0)\n", r"get\(owner, create=False\) and delete"),
    ]:
        src = ("from ebpf import bpf\nfrom ebpf.bpf import u64\ncalls = bpf.TaskStorage(u64)\n"
               "@bpf.raw_tracepoint('sys_enter')\ndef bad(ctx) -> int:\n" + body +
               "    return 0\n")
        m = import_source(tmp_path, "bpf_local_storage_bad", src)
        try:
            with pytest.raises(bpf.CompileError, match=message):
                m.bad.compile()
        finally:
            import sys

            sys.modules.pop(m.__name__, None)

