"""opensnoop: trace ``openat`` calls with their result, as bcc's tool.

At ``sys_enter_openat`` the record (pid, comm, flags, the user-space path) is parked in a
per-thread hash; ``sys_exit_openat`` adds the fd or -errno and sends it to a ring buffer.

Options as bcc's: ``-p PID``, ``-t TID``, ``-u UID``, ``--cgroupmap`` and ``--mntnsmap``
filter in the kernel; ``-x`` (failed
only), ``-n NAME`` (regex on the command) and ``-f FLAG`` (only opens whose flags have one of
these bits, e.g. ``O_WRONLY``) in user space; ``-e`` adds a FLAGS column (octal), ``-T`` a
TIME(s) column, ``-U`` a UID column; ``-d DURATION`` is ``--duration``.
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from typing import Any

from .. import asm
from ..asm import R7, R9, Helper
from ..hooks import tracepoint
from ..ringbuf import RingBuffer
from . import _common as c

PATH = 256
BODY = struct.Struct(f"=qq{PATH}s")     # ret, flags, path
SIZE = c.PAYLOAD + BODY.size


def _flag(name: str) -> int:
    """``O_WRONLY`` (or ``WRONLY``) to its value, as bcc's ``-f``."""
    name = name.upper()
    value = getattr(os, name if name.startswith("O_") else "O_" + name, None)
    if not isinstance(value, int) or value == 0:
        raise argparse.ArgumentTypeError(f"not an open flag with a bit set: {name!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    ap = c.parser("opensnoop", "Trace open() (openat) calls.", clock=(),
                  seconds=("-T", "--timestamp"), uid=True, containers=True)
    ap.add_argument("-x", "--failed", action="store_true", help="only failed opens")
    ap.add_argument("-t", "--tid", type=int, help="only this thread (TID)")
    ap.add_argument("-d", dest="duration", type=float, help="total duration of trace, seconds")
    ap.add_argument("-n", "--name", help="only print commands matching this regex")
    ap.add_argument("-e", "--extended_fields", action="store_true",
                    help="show extended fields (FLAGS)")
    ap.add_argument("-f", "--flag_filter", action="append", type=_flag, default=[],
                    help="only opens with this flag (e.g. O_WRONLY); repeatable")
    args = ap.parse_args(argv)
    want_flags = 0
    for flag in args.flag_filter:
        want_flags |= flag
    with ExitStack() as stack:
        c.open_containers(stack, args, ap)
        events = c.ring(stack)

        def fill(f: Any) -> list[asm.Item]:
            return [*tracepoint.field(R7, f, "flags", c.R6),
                    asm.store(asm.DW, R9, c.PAYLOAD + 8, R7),
                    *tracepoint.field(R7, f, "filename", c.R6),
                    *c.read_str(Helper.PROBE_READ_USER_STR, R9, c.PAYLOAD + 16, PATH, R7)]

        c.syscall_pair(stack, args, events, "openat", SIZE, fill, c.PAYLOAD)
        reader = stack.enter_context(RingBuffer(events))
        out = c.Printer(args, [("TID" if args.tid is not None else "PID", "<7"),
                               ("COMM", "<16"), ("FD", ">3"), ("ERR", ">3"),
                               *([("FLAGS", "<8")] if args.extended_fields else []),
                               ("PATH", "")])

        def handle(raw: bytes) -> None:
            ret, flags, path = BODY.unpack_from(raw, c.PAYLOAD)
            if args.failed and ret >= 0:
                return
            if want_flags and not flags & want_flags:
                return
            h = c.header(raw)
            out.row(c.stamp(args, {**h, "fd": ret if ret >= 0 else -1,
                                   "err": -ret if ret < 0 else 0, "flags": flags,
                                   "FLAGS": f"{flags:08o}",
                                   "path": c.cstr(path)}))

        return c.run_loop(args, c.ring_poll(reader, handle))


if __name__ == "__main__":
    sys.exit(main())
