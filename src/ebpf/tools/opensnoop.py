"""opensnoop: trace ``openat`` calls with their result, as bcc's tool.

At ``sys_enter_openat`` the record (pid, comm, flags, the user-space path) is parked in a
per-thread hash; ``sys_exit_openat`` adds the fd or -errno and sends it to a ring buffer.
"""

from __future__ import annotations

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


def main(argv: Sequence[str] | None = None) -> int:
    ap = c.parser("opensnoop", "Trace open() (openat) calls.")
    ap.add_argument("-x", "--failed", action="store_true", help="only failed opens")
    args = ap.parse_args(argv)
    with ExitStack() as stack:
        events = c.ring(stack)

        def fill(f: Any) -> list[asm.Item]:
            return [*tracepoint.field(R7, f, "flags", c.R6),
                    asm.store(asm.DW, R9, c.PAYLOAD + 8, R7),
                    *tracepoint.field(R7, f, "filename", c.R6),
                    *c.read_str(Helper.PROBE_READ_USER_STR, R9, c.PAYLOAD + 16, PATH, R7)]

        c.syscall_pair(stack, args, events, "openat", SIZE, fill, c.PAYLOAD)
        reader = stack.enter_context(RingBuffer(events))
        out = c.Printer(args, [("PID", "<7"), ("COMM", "<16"), ("FD", ">3"), ("ERR", ">3"),
                               ("PATH", "")])

        def handle(raw: bytes) -> None:
            ret, flags, path = BODY.unpack_from(raw, c.PAYLOAD)
            if args.failed and ret >= 0:
                return
            out.row(c.stamp(args, {**c.header(raw), "fd": ret if ret >= 0 else -1,
                                   "err": -ret if ret < 0 else 0, "flags": flags,
                                   "path": c.cstr(path)}))

        return c.run_loop(args, c.ring_poll(reader, handle))


if __name__ == "__main__":
    sys.exit(main())
