"""execsnoop: trace every exec, as bcc's tool (``sched:sched_process_exec``).

The tracepoint fires in the new program with its filename as a ``__data_loc`` string; the
program copies the header (pid, comm...) and the filename into a ring buffer record.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Sequence
from contextlib import ExitStack

from .. import asm
from ..asm import R6, R7, R9, Helper
from ..hooks import tracepoint
from ..lib import ringbuf
from ..ringbuf import RingBuffer
from . import _common as c

FILENAME = 256
EVENT = struct.Struct(f"=i{FILENAME}s")   # old pid, filename
SIZE = c.PAYLOAD + EVENT.size + 4


def main(argv: Sequence[str] | None = None) -> int:
    args = c.parser("execsnoop", "Trace new processes (exec).").parse_args(argv)
    f = c.fmt("sched", "sched_process_exec")
    with ExitStack() as stack:
        events = c.ring(stack)
        program = [
            tracepoint.save_ctx(R6), *c.pid_filter(args, "out"),
            *c.reserve(events, SIZE, R9, "out"),
            *tracepoint.field(R7, f, "old_pid", R6), asm.store(asm.W, R9, c.PAYLOAD, R7),
            *tracepoint.data_loc(R7, f, "filename", R6),
            *c.read_str(Helper.PROBE_READ_KERNEL_STR, R9, c.PAYLOAD + 4, FILENAME, R7),
            *ringbuf.submit(R9),
            asm.label("out"), *tracepoint.ret(0),
        ]
        c.attach_tp(stack, program, "sched", "sched_process_exec", "execsnoop")
        c.hook_note(args, ["tracepoint sched:sched_process_exec"])
        reader = stack.enter_context(RingBuffer(events))
        out = c.Printer(args, [("PCOMM", "<16"), ("PID", "<7"), ("RET", "<3"),
                               ("FILENAME", "")])

        def handle(raw: bytes) -> None:
            old_pid, name = EVENT.unpack_from(raw, c.PAYLOAD)
            out.row(c.stamp(args, {**c.header(raw), "ret": 0, "filename": c.cstr(name),
                                   "old_pid": old_pid, "PCOMM": c.header(raw)["comm"]}))

        return c.run_loop(args, c.ring_poll(reader, handle))


if __name__ == "__main__":
    sys.exit(main())
