"""``bpf.probe_read_{user,kernel}[_str]``: memory reads into ``bytes_[N]`` fields, on real
tracepoints (the openat filename a syscall passes, the current task's comm by address)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from ebpf import bpf, btf
from ebpf.link.tracepoint import attach_tracepoint
from ebpf.testing.modules import import_source

pytestmark = pytest.mark.usefixtures("tracefs")

SOURCE = '''
import os
from ebpf import bpf
from ebpf.bpf import i64, u32, u64

class Open(bpf.Struct):
    pid: u32
    pad: u32
    n: i64
    fname: bpf.bytes_[64]
    raw: bpf.bytes_[8]
    comm: bpf.bytes_[16]
    comm2: bpf.bytes_[16]

events = bpf.RingBuf(size=1 << 16)
me = bpf.const(u32, 0)
comm_off = bpf.const(u32, 0)

@bpf.tracepoint("syscalls/sys_enter_openat")
def on_openat(ctx) -> int:
    pid = bpf.get_current_pid_tgid() >> 32
    if pid != me:
        return 0
    e = events.reserve(Open)
    if e is None:
        return 0
    e.pid = pid
    e.n = bpf.probe_read_user_str(e.fname, ctx.filename)
    e.raw = bpf.probe_read_user(ctx.filename)
    task = bpf.helper.get_current_task()
    bpf.probe_read_kernel_str(e.comm, task + comm_off)
    e.comm2 = bpf.probe_read_kernel(task + comm_off)
    events.submit(e)
    return 0
'''


@pytest.fixture(scope="module")
def mod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    yield import_source(tmp_path_factory.mktemp("pr"), "py_probe_read_prog", SOURCE)


def _comm_offset() -> int:
    task = btf.load_kernel().find("task_struct", btf.Struct)
    assert isinstance(task, btf.Struct)
    return next(m.offset // 8 for m in task.members if m.name == "comm")


def test_openat_filename_and_comm(mod: ModuleType, tmp_path: Path) -> None:
    coll: Any
    with bpf.load(mod.on_openat, constants={"me": os.getpid(),
                                           "comm_off": _comm_offset()}) as coll:
        names = [str(tmp_path / ("f" * k)) for k in (1, 20, 70)]
        with attach_tracepoint(coll.on_openat, "syscalls", "sys_enter_openat"):
            for name in names:
                with contextlib.suppress(FileNotFoundError):
                    os.close(os.open(name, os.O_RDONLY))
        recs = [r for r in coll.events.read(mod.Open, timeout=1.0)
                if r.fname.startswith(str(tmp_path).encode())]
    assert len(recs) == 3
    comm = Path("/proc/self/comm").read_bytes().strip()
    for name, r in zip(names, recs, strict=True):
        want = name.encode()[:63]
        assert r.fname == want
        # the length with the NUL, capped at the field (63 bytes and a NUL)
        assert r.n == len(want) + 1
        assert r.raw == name.encode()[:8]
        assert r.comm == comm and r.comm2 == comm


SLEEPABLE = '''
from ebpf import bpf
from ebpf.bpf import i64, u32

class Path(bpf.Struct):
    n: i64
    path: bpf.bytes_[64]

paths = bpf.RingBuf(size=1 << 14)
me = bpf.const(u32, 0)

@bpf.uprobe("libc.so.6", "chdir", sleepable=True)
def on_chdir(ctx) -> int:
    if bpf.get_current_pid_tgid() >> 32 != me:
        return 0
    e = paths.reserve(Path)
    if e is None:
        return 0
    e.n = bpf.copy_from_user(e.path, ctx.arg0)
    paths.submit(e)
    return 0
'''


def test_sleepable_uprobe_copies_from_user(tmp_path: Path) -> None:
    """``uprobe.s`` (6.0) with ``bpf_copy_from_user`` on libc's chdir in this process."""
    from ebpf.link.uprobe import attach_uprobe

    m = import_source(tmp_path, "py_sleepable_uprobe_prog", SLEEPABLE)
    assert m.on_chdir.section == "uprobe.s/libc.so.6:chdir"
    target = tmp_path / ("d" * 40)
    target.mkdir()
    here = os.getcwd()
    coll: Any
    with bpf.load(m.on_chdir, constants={"me": os.getpid()}) as coll, \
            attach_uprobe(coll.on_chdir, "libc.so.6", "chdir", pid=os.getpid()):
        try:
            os.chdir(target)
        finally:
            os.chdir(here)
        recs = list(coll.paths.read(m.Path, timeout=1.0))
    assert [r.n for r in recs] == [0, 0]  # 0: all 64 bytes copied
    want = str(target).encode()
    assert recs[0].path == want[:64].split(b"\0")[0]
    assert recs[1].path == here.encode()[:64]
