"""exitsnoop: trace process exits with age and exit code, as bcc's tool.

``sched:sched_process_exit`` fires in the exiting task; the program reads ``exit_code``,
``start_time`` and the parent's tgid from ``task_struct`` with ``bpf_probe_read_kernel`` at
offsets taken from the kernel's BTF (so it follows the running kernel's layout).
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Sequence
from contextlib import ExitStack

from .. import asm
from ..asm import R0, R1, R2, R3, R6, R7, R8, R9, Helper
from ..errors import BPFError
from ..hooks import tracepoint
from ..lib import ringbuf
from ..ringbuf import RingBuffer
from . import _common as c

BODY = struct.Struct("=iIQI4x")     # exit_code, ppid, start_time, group_dead
SIZE = c.PAYLOAD + BODY.size


def _offsets() -> tuple[int, int, int, int]:
    from ..btf.kernel import load_kernel
    from ..btf.types import Struct

    task = load_kernel().find("task_struct")
    if not isinstance(task, Struct):
        raise BPFError("the kernel's BTF has no struct task_struct")
    off = {n: task.member(n).byte_offset for n in ("exit_code", "start_time",
                                                   "real_parent", "tgid")}
    return off["exit_code"], off["start_time"], off["real_parent"], off["tgid"]


def _read(rec: int, src: int, size: int) -> list[asm.Item]:
    # bpf_probe_read_kernel(R9 + rec, size, R7 + src); R7 = the task
    return [asm.mov(R1, R9), asm.add(R1, rec), asm.mov(R2, size), asm.mov(R3, R7),
            asm.add(R3, src), asm.call(Helper.PROBE_READ_KERNEL)]


def main(argv: Sequence[str] | None = None) -> int:
    ap = c.parser("exitsnoop", "Trace process termination.")
    ap.add_argument("-t", "--threads", action="store_true",
                    help="trace every thread's exit, not only whole processes")
    args = ap.parse_args(argv)
    f = c.fmt("sched", "sched_process_exit")
    exit_code, start_time, real_parent, tgid = _offsets()
    c.say(args, f"task_struct offsets from BTF: exit_code={exit_code} "
                f"start_time={start_time} real_parent={real_parent} tgid={tgid}")
    p = c.PAYLOAD
    with ExitStack() as stack:
        events = c.ring(stack)
        program = [
            tracepoint.save_ctx(R6), *c.pid_filter(args, "out"),
            *tracepoint.field(R8, f, "group_dead", R6),
            *([] if args.threads else [asm.jeq(R8, 0, "out")]),
            *c.reserve(events, SIZE, R9, "out"), *c.zero(R9, p, BODY.size),
            asm.store(asm.W, R9, p + 16, R8),
            asm.call(Helper.GET_CURRENT_TASK), asm.mov(R7, R0),
            *_read(p + 8, real_parent, 8),            # the parent, then its tgid
            asm.load(asm.DW, R7, R9, p + 8), *_read(p + 4, tgid, 4),
            asm.call(Helper.GET_CURRENT_TASK), asm.mov(R7, R0),
            *_read(p, exit_code, 4), *_read(p + 8, start_time, 8),
            *ringbuf.submit(R9),
            asm.label("out"), *tracepoint.ret(0),
        ]
        c.attach_tp(stack, program, "sched", "sched_process_exit", "exitsnoop")
        c.hook_note(args, ["tracepoint sched:sched_process_exit"])
        reader = stack.enter_context(RingBuffer(events))
        out = c.Printer(args, [("PCOMM", "<16"), ("PID", "<7"), ("PPID", "<7"),
                               ("TID", "<7"), ("AGE(s)", "<7"), ("EXIT_CODE", "")])

        def handle(raw: bytes) -> None:
            code, ppid, start, _ = BODY.unpack_from(raw, p)
            h = c.header(raw)
            status = (f"signal {code & 0x7F}" if code & 0x7F else f"{code >> 8}")
            out.row(c.stamp(args, {**h, "pcomm": h["comm"], "ppid": ppid,
                                   "age(s)": f"{(h['ts_ns'] - start) / 1e9:.2f}",
                                   "exit_code": status, "raw_exit_code": code}))

        return c.run_loop(args, c.ring_poll(reader, handle))


if __name__ == "__main__":
    sys.exit(main())
