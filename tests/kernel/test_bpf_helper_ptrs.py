"""Pointer arguments of ``bpf.helper.<name>(...)``: helpers the front end does not wrap,
called with stack structs, map values, ``bytes_[N]`` fields, stack arrays, ``ctx`` and
addresses, on this process's ``getppid`` (the ``syscalls/sys_enter_getppid`` tracepoint).

* ``bpf_get_ns_current_pid_tgid(dev, ino, info)`` fills a stack struct (its size implied)
  and, given all four arguments, a map value in place: the pid and tgid equal this
  thread's; a wrong namespace inode fails and zeroes the struct.
* ``bpf_probe_read_kernel(pt, task + offset)`` copies ``task_struct.pid``/``tgid`` into a
  stack struct from an address.
* ``bpf_get_current_comm(r.comm)`` fills a map value's ``bytes_[16]`` field.
* ``bpf_get_stack(ctx, a, BPF_F_USER_STACK)`` fills a stack array with the user stack, whose
  first entry is an address in libc's code (the ``getppid`` wrapper).
* ``bpf_ringbuf_output(events, info, 0)`` takes the ring buffer map and a stack struct.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest

from ebpf import bpf, btf
from ebpf.bpf import i32, i64, u32, u64
from ebpf.link.tracepoint import attach_tracepoint

pytestmark = pytest.mark.usefixtures("tracefs")

BPF_F_USER_STACK = 1 << 8


class NsInfo(bpf.Struct):  # struct bpf_pidns_info
    pid: u32
    tgid: u32


class PidTgid(bpf.Struct):
    pid: i32
    tgid: i32


class Rec(bpf.Struct):
    n: u64
    comm: bpf.bytes_[16]


infos = bpf.Array(NsInfo, max_entries=3)
pids = bpf.Array(PidTgid, max_entries=1)
recs = bpf.Array(Rec, max_entries=1)
rcs = bpf.Array(i64, max_entries=8)
events = bpf.RingBuf(size=1 << 12)
dev = bpf.const(u64, 0)
ino = bpf.const(u64, 0)
pid_off = bpf.const(u64, 0)
me = bpf.const(u32, 0)


@bpf.tracepoint("syscalls/sys_enter_getppid")
def on_getppid(ctx: Any) -> int:
    if bpf.get_current_pid_tgid() >> 32 != me:
        return 0
    info = NsInfo()
    rcs[0] = bpf.helper.get_ns_current_pid_tgid(dev, ino, info)   # size implied: 8
    infos[0] = info
    p = infos.lookup(1)
    if p is not None:                                             # into the map value
        rcs[1] = bpf.helper.get_ns_current_pid_tgid(dev, ino, p, 8)
    bad = NsInfo(pid=1, tgid=1)
    rcs[2] = bpf.helper.get_ns_current_pid_tgid(dev, ino + 1, bad)
    infos[2] = bad
    pt = PidTgid()
    rcs[3] = bpf.helper.probe_read_kernel(pt, bpf.helper.get_current_task() + pid_off)
    pids[0] = pt
    r = recs.lookup(0)
    if r is not None:
        rcs[4] = bpf.helper.get_current_comm(r.comm)
    a = bpf.array(u64, 8)
    rcs[5] = bpf.helper.get_stack(ctx, a, BPF_F_USER_STACK)
    rcs[6] = a[0]
    rcs[7] = bpf.helper.ringbuf_output(events, info, 0)           # a map, size implied
    return 0


def _pid_offset() -> int:
    task = btf.load_kernel().find("task_struct", btf.Struct)
    assert isinstance(task, btf.Struct)
    off = {m.name: m.offset // 8 for m in task.members if m.name in ("pid", "tgid")}
    assert off["tgid"] == off["pid"] + 4  # pid_t pid; pid_t tgid;
    return off["pid"]


def _signed(v: int) -> int:
    """An ``i64`` map value (maps may read back with an unsigned codec)."""
    return v - (1 << 64) if v >= 1 << 63 else v


def _record(cls: Any, v: Any) -> Any:
    """A struct map value as an instance of ``cls`` (maps may read back raw bytes, or an
    integer for an 8-byte value)."""
    if isinstance(v, cls):
        return v
    if isinstance(v, int):
        v = (v & ((1 << 8 * cls.size) - 1)).to_bytes(cls.size, "little")
    return cls.decode(v)


def _mapping_of(addr: int) -> tuple[str, str]:
    """(permissions, path) of the mapping of this process that holds ``addr``."""
    for line in Path("/proc/self/maps").read_text().splitlines():
        parts = line.split(None, 5)
        lo, hi = (int(x, 16) for x in parts[0].split("-"))
        if lo <= addr < hi:
            return parts[1], parts[5] if len(parts) > 5 else ""
    return "", ""


def test_helpers_fill_structs_fields_and_arrays_through_pointers() -> None:
    st = os.stat("/proc/self/ns/pid")
    consts = {"dev": st.st_dev, "ino": st.st_ino, "pid_off": _pid_offset(), "me": os.getpid()}
    coll: Any
    with bpf.load(on_getppid, constants=consts) as coll:
        with attach_tracepoint(coll.on_getppid, "syscalls", "sys_enter_getppid"):
            os.getppid()
        rc = [_signed(coll.rcs[k]) for k in range(8)]
        out = list(coll.events.read(NsInfo, timeout=1.0))
        got = [_record(NsInfo, coll.infos[k]) for k in range(3)]
        pt, rec = _record(PidTgid, coll.pids[0]), _record(Rec, coll.recs[0])
    tid, pid = threading.get_native_id(), os.getpid()
    assert rc[0] == 0 and (got[0].pid, got[0].tgid) == (tid, pid)
    assert rc[1] == 0 and (got[1].pid, got[1].tgid) == (tid, pid)
    assert rc[2] < 0 and (got[2].pid, got[2].tgid) == (0, 0)   # cleared on failure
    assert rc[3] == 0 and (pt.pid, pt.tgid) == (tid, pid)
    assert rc[4] == 0
    assert rec.comm == Path("/proc/self/comm").read_bytes().strip()
    assert rc[5] > 0 and rc[5] % 8 == 0, rc[5]                  # bytes of user frames
    perms, path = _mapping_of(rc[6] & ((1 << 64) - 1))
    assert "x" in perms and "libc" in os.path.basename(path), (hex(rc[6]), perms, path)
    assert rc[7] == 0 and [(e.pid, e.tgid) for e in out] == [(tid, pid)]
