"""Tracepoint: bytes written per file descriptor by this process, read from the
syscalls:sys_enter_write record with offsets taken from tracefs.

Run as root (tracefs mounted): python examples/tracepoint_writes.py
"""

import os
import sys

import ebpf
from ebpf import asm
from ebpf.asm import R0, R6, R7, R10, Helper
from ebpf.hooks import tracepoint
from ebpf.lib import fp, maps
from ebpf.link.tracepoint import attach_tracepoint

fmt = tracepoint.format("syscalls", "sys_enter_write")
print("sys_enter_write fields:", ", ".join(f"{f.name}@{f.offset}" for f in fmt.event_fields))
written = ebpf.Map.create(ebpf.MapType.HASH, key_size=4, value_size=8, max_entries=64)

program = [
    tracepoint.save_ctx(R6),
    asm.call(Helper.GET_CURRENT_PID_TGID), asm.rsh(R0, 32),
    asm.jne(R0, os.getpid(), "out"),             # only this process
    *tracepoint.field(R7, fmt, "fd", R6), asm.store(asm.W, R10, -4, R7),
    *tracepoint.field(R7, fmt, "count", R6),
    maps.increment(written, fp(-4), R7, stack=-16),
    asm.label("out"), *tracepoint.ret(0),
]

r, w = os.pipe()
with written, ebpf.Program.load(tracepoint.PROGRAM_TYPE, program, name="writes") as prog:
    with attach_tracepoint(prog, "syscalls", "sys_enter_write"):
        for size in (10, 20, 30):
            os.write(w, b"x" * size)
        os.write(w, b"y")
    counts = dict(written.items())
os.close(r)
os.close(w)
print("bytes written per fd:", counts)
sys.exit(0 if counts.get(w) == 61 else 1)
