"""opensnoop in Python: the sys_enter_openat tracepoint copies each path this process opens
(a user pointer) with bpf.probe_read_user_str and sends it through a ring buffer; the
matching sys_exit_openat gives the result, joined by thread id in a hash map.

Run as root: python examples/py_opensnoop.py  (opens two paths and checks their events)
"""

import contextlib
import os
import sys
import tempfile

from ebpf import bpf
from ebpf.bpf import i64, u32, u64
from ebpf.link.tracepoint import attach_tracepoint


class Open(bpf.Struct):
    pid: u32
    len: u32
    ret: i64
    path: bpf.bytes_[128]  # type: ignore[valid-type]  # a size, not a type, to mypy


events = bpf.RingBuf(size=1 << 16)
pending = bpf.Hash(u64, Open, max_entries=1024)  # thread id -> the open in flight
target = bpf.const(u32, 0)  # the process to watch, set before load


@bpf.tracepoint("syscalls/sys_enter_openat")
def enter(ctx: bpf.TracepointContext) -> int:
    tid = bpf.get_current_pid_tgid()
    if tid >> 32 != target:
        return 0
    rec = Open()
    rec.pid = tid >> 32
    rec.len = bpf.probe_read_user_str(rec.path, ctx.filename)
    pending[tid] = rec
    return 0


@bpf.tracepoint("syscalls/sys_exit_openat")
def leave(ctx: bpf.TracepointContext) -> int:
    tid = bpf.get_current_pid_tgid()
    rec = pending.lookup(tid)
    if rec is None:
        return 0
    rec.ret = ctx.ret
    events.output(rec)
    del pending[tid]
    return 0


def main() -> int:
    with tempfile.TemporaryDirectory() as d:
        here, missing = os.path.join(d, "here"), os.path.join(d, "not-there")
        open(here, "w").close()
        with bpf.load(enter, leave, constants={"target": os.getpid()}) as coll, \
                attach_tracepoint(coll.enter, "syscalls", "sys_enter_openat"), \
                attach_tracepoint(coll.leave, "syscalls", "sys_exit_openat"):
            os.close(os.open(here, os.O_RDONLY))
            with contextlib.suppress(FileNotFoundError):
                os.open(missing, os.O_RDONLY)
            seen = {e.path.decode(): e.ret for e in coll.events.read(Open, timeout=1.0)}
    for path, ret in seen.items():  # also what the interpreter opened meanwhile
        if path.startswith(d):
            print(f"{os.getpid():>7} {ret:>4} {path}")
    ok = seen.get(here, -1) >= 0 and seen.get(missing) == -2  # -ENOENT
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
