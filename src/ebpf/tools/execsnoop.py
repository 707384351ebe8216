"""execsnoop: trace every exec, as bcc's tool.

By default the hook is ``sched:sched_process_exec``: it fires in the new program (only for
execs that succeeded) with its filename as a ``__data_loc`` string, and the program copies
the header (pid, comm...), the parent's tgid (``current->real_parent->tgid``, offsets from
the kernel's BTF) and the filename into a ring buffer record. ``-x`` (include failed execs)
needs the syscall's result, so it traces ``syscalls:sys_{enter,exit}_execve`` and
``execveat`` instead: the entry parks the record per thread, the exit adds the return value
and the new command name.

Filters as bcc's: ``-u UID``, ``-P PPID``, ``--cgroupmap`` and ``--mntnsmap`` in the
kernel, ``-n NAME`` (a regular expression searched in the command) in user space. Time
columns as bcc's: ``-T`` HH:MM:SS, ``-t`` seconds since the first event.
"""

from __future__ import annotations

import argparse
import struct
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from typing import Any

from .. import asm
from ..asm import R1, R2, R6, R7, R8, R9, R10, Helper
from ..hooks import tracepoint
from ..lib import ringbuf
from ..ringbuf import RingBuffer
from . import _common as c

FILENAME = 256
EVENT = struct.Struct(f"=iIq{FILENAME}s")   # old pid, ppid, ret, filename
SIZE = c.PAYLOAD + EVENT.size
OLD_PID, PPID, RET, NAME = (c.PAYLOAD + o for o in (0, 4, 8, 16))


def _ppid_filter(args: argparse.Namespace, reg: asm.Register, out: str) -> list[asm.Item]:
    return [] if args.ppid is None else [asm.jne32(reg, args.ppid, out)]


def _on_exec(args: argparse.Namespace, events: Any) -> list[asm.Item]:
    f = c.fmt("sched", "sched_process_exec")
    return [
        tracepoint.save_ctx(R6), *c.pid_filter(args, "out"), *c.uid_filter(args, "out"),
        *c.container_filter(args, "out"),
        *c.read_ppid(-8, -16), asm.load(asm.W, R8, R10, -8), *_ppid_filter(args, R8, "out"),
        *c.reserve(events, SIZE, R9, "out"),
        *tracepoint.field(R7, f, "old_pid", R6), asm.store(asm.W, R9, OLD_PID, R7),
        asm.store(asm.W, R9, PPID, R8), asm.store_imm(asm.DW, R9, RET, 0),
        *tracepoint.data_loc(R7, f, "filename", R6),
        *c.read_str(Helper.PROBE_READ_KERNEL_STR, R9, NAME, FILENAME, R7),
        *ringbuf.submit(R9),
        asm.label("out"), *tracepoint.ret(0),
    ]


def _syscalls(stack: ExitStack, args: argparse.Namespace, events: Any) -> None:
    """-x: execve and execveat entry/exit pairs, failed ones included."""
    rec = -8 - SIZE                      # where syscall_pair builds the record

    def fill(f: Any) -> list[asm.Item]:
        return [*c.read_ppid(rec + PPID, rec - 8),
                asm.load(asm.W, R7, R9, PPID), *_ppid_filter(args, R7, "out"),
                asm.load(asm.W, R7, R9, 8), asm.store(asm.W, R9, OLD_PID, R7),  # the tgid
                *tracepoint.field(R7, f, "filename", R6),
                *c.read_str(Helper.PROBE_READ_USER_STR, R9, NAME, FILENAME, R7)]

    def at_exit(f: Any) -> list[asm.Item]:       # the new program's name, as bcc prints it
        return [asm.mov(R1, R7), asm.add(R1, c.COMM), asm.mov(R2, 16),
                asm.call(Helper.GET_CURRENT_COMM)]

    pending = c.hash_map(stack, 4, SIZE)
    for syscall in ("execve", "execveat"):
        c.syscall_pair(stack, args, events, syscall, SIZE, fill, RET, at_exit=at_exit,
                       pending=pending, name=f"x{syscall}")


def main(argv: Sequence[str] | None = None) -> int:
    ap = c.parser("execsnoop", "Trace new processes (exec).", clock=("-T", "--time"),
                  seconds=("-t", "--timestamp"), uid=True, containers=True)
    ap.add_argument("-x", "--fails", action="store_true", help="include failed exec()s")
    ap.add_argument("-n", "--name", help="only print commands matching this regex")
    ap.add_argument("-P", "--ppid", type=int, help="only children of this parent PID")
    args = ap.parse_args(argv)
    with ExitStack() as stack:
        c.open_containers(stack, args, ap)
        events = c.ring(stack)
        if args.fails:
            _syscalls(stack, args, events)
        else:
            c.attach_tp(stack, _on_exec(args, events), "sched", "sched_process_exec",
                        "execsnoop")
            c.hook_note(args, ["tracepoint sched:sched_process_exec"])
        reader = stack.enter_context(RingBuffer(events))
        out = c.Printer(args, [("PCOMM", "<16"), ("PID", "<7"), ("PPID", "<7"), ("RET", ">3"),
                               ("FILENAME", "")])

        def handle(raw: bytes) -> None:
            old_pid, ppid, ret, name = EVENT.unpack_from(raw, c.PAYLOAD)
            h = c.header(raw)
            out.row(c.stamp(args, {**h, "ppid": ppid, "ret": ret, "filename": c.cstr(name),
                                   "old_pid": old_pid, "PCOMM": h["comm"]}))

        return c.run_loop(args, c.ring_poll(reader, handle))


if __name__ == "__main__":
    sys.exit(main())
