"""A syscall latency histogram in Python over raw tracepoints (raw_syscalls sys_enter and
sys_exit): the entry time per thread in a hash, log2(ns) buckets in an array. Only the
threads of `target_tgid` (set before load) are measured.

Run as root: python examples/py_syscall_latency.py
"""

import os
import sys

from ebpf import bpf
from ebpf.bpf import u32, u64
from ebpf.link.raw_tracepoint import attach_raw_tracepoint

start = bpf.Hash(u64, u64, max_entries=1024)
hist = bpf.Array(u64, max_entries=64)
target_tgid = bpf.const(u32, 0)


@bpf.raw_tracepoint("sys_enter")
def on_enter(ctx) -> int:
    id = bpf.get_current_pid_tgid()
    if id >> 32 != target_tgid:
        return 0
    start[id] = bpf.ktime_get_ns()
    return 0


@bpf.raw_tracepoint("sys_exit")
def on_exit(ctx) -> int:
    id = bpf.get_current_pid_tgid()
    if id >> 32 != target_tgid:
        return 0
    t0 = start[id]
    if t0 == 0:
        return 0
    del start[id]
    delta = bpf.ktime_get_ns() - t0
    slot: u32 = 0
    for i in range(63):
        if delta >> (i + 1) == 0:
            break
        slot = i + 1
    hist[slot] += 1
    return 0


def main() -> int:
    with bpf.load(on_enter, on_exit, constants={"target_tgid": os.getpid()}) as coll:
        with attach_raw_tracepoint(coll.on_enter, "sys_enter"), \
                attach_raw_tracepoint(coll.on_exit, "sys_exit"):
            for _ in range(200):
                os.getppid()
        counts = [coll.hist[i] for i in range(64)]
    total = sum(counts)
    for i, c in enumerate(counts):
        if c:
            print(f"{1 << i:>12} .. {(2 << i) - 1:<12} ns {c:6} {'*' * min(40, c // 5 + 1)}")
    print(f"{total} syscalls measured")
    return 0 if total >= 200 else 1


if __name__ == "__main__":
    sys.exit(main())
