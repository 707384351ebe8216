"""runqlat: run-queue (scheduler) latency as a log2 histogram, as bcc's tool.

``sched:sched_wakeup``/``sched_wakeup_new`` stamp the woken thread; ``sched:sched_switch``
measures how long the next thread waited and bumps its bucket with
:func:`ebpf.lib.histogram.log2_increment`. A preempted thread (still runnable) is stamped
again at the switch. Printed with bcc's layout at the end (or every ``-i`` seconds);
``-p`` filters on the thread id the sched tracepoints report.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack
from typing import Any

from .. import asm
from ..asm import R0, R1, R6, R7, R8, R9, R10, Helper
from ..hooks import tracepoint
from ..lib import fp, histogram, maps
from . import _common as c


def _stamp(start: Any, pid_field: str, fmt: Any, pid: int | None) -> list[asm.Item]:
    # jumps to "out" when -p filters the thread out
    return [*tracepoint.field(R7, fmt, pid_field, R6),
            *([] if pid is None else [asm.jne(R7, pid, "out")]),
            asm.store(asm.W, R10, -8, R7), asm.call(Helper.KTIME_GET_NS),
            asm.store(asm.DW, R10, -16, R0),
            *maps.update(start, fp(-8), fp(-16))]


def main(argv: Sequence[str] | None = None) -> int:
    ap = c.parser("runqlat", "Summarize run queue (scheduler) latency as a histogram.")
    ap.add_argument("-m", "--milliseconds", action="store_true", help="millisecond buckets")
    ap.add_argument("-i", "--interval", type=float, help="print every this many seconds")
    ap.add_argument("-L", "--tids", action="store_true", help="a histogram per thread ID")
    ap.add_argument("interval_pos", nargs="?", type=float, metavar="interval",
                    help="output interval, in seconds (bcc's positional)")
    ap.add_argument("count", nargs="?", type=int, help="number of outputs")
    args = ap.parse_args(argv)
    if args.interval_pos is not None:
        args.interval = args.interval_pos
    if args.count is not None and not args.interval:
        ap.error("count needs an interval")
    if args.comm is not None:
        ap.error("-c is not supported by runqlat")
    unit, div = ("msecs", 1_000_000) if args.milliseconds else ("usecs", 1000)
    wake, switch = c.fmt("sched", "sched_wakeup"), c.fmt("sched", "sched_switch")
    with ExitStack() as stack:
        from .._maps import Map
        from .._types import MapType

        start = c.hash_map(stack, 4, 8)
        hist = stack.enter_context(
            Map.create(MapType.HASH, key_size=8, value_size=8, max_entries=10240) if args.tids
            else Map.create(MapType.ARRAY, key_size=4, value_size=8,
                            max_entries=histogram.LOG2_SLOTS))
        hooks = []
        for event in ("sched_wakeup", "sched_wakeup_new"):
            prog = [tracepoint.save_ctx(R6), *_stamp(start, "pid", wake, args.pid),
                    asm.label("out"), *tracepoint.ret(0)]
            c.attach_tp(stack, prog, "sched", event, "runqlat_wake")
            hooks.append(f"tracepoint sched:{event}")
        on_switch: list[asm.Item] = [
            tracepoint.save_ctx(R6),
            *tracepoint.field(R7, switch, "prev_state", R6), asm.jne(R7, 0, "next"),
            asm.Fragment([*_stamp(start, "prev_pid", switch, args.pid), asm.label("out")]),
            asm.label("next"),
            *tracepoint.field(R7, switch, "next_pid", R6),
            *([] if args.pid is None else [asm.jne(R7, args.pid, "out")]),
            asm.store(asm.W, R10, -8, R7),
            *maps.lookup(start, fp(-8), "out"), asm.load(asm.DW, R8, R0, 0),
            asm.call(Helper.KTIME_GET_NS), asm.sub(R0, R8), asm.div(R0, div), asm.mov(R8, R0),
            *([histogram.log2_slot(R9, R8, R1), asm.store(asm.W, R10, -32, R7),
               histogram.keyed_increment(hist, R9, key_stack=-32, key_size=4,
                                         value_stack=-40)] if args.tids else
              [histogram.log2_increment(hist, R8, slot=R9, tmp=R1, key_stack=-20)]),
            *maps.delete(start, fp(-8)),
            asm.label("out"), *tracepoint.ret(0),
        ]
        c.attach_tp(stack, on_switch, "sched", "sched_switch", "runqlat_switch")
        hooks.append("tracepoint sched:sched_switch")
        c.hook_note(args, hooks)
        if not args.json:
            print("Tracing run queue latency... Hit Ctrl-C to end.", flush=True)

        def dump() -> None:
            if args.tids:
                per = histogram.read_keyed(hist, key_size=4)
                if args.json:
                    print(json.dumps({"unit": unit, "tids": {
                        str(int.from_bytes(k, sys.byteorder)): [int(x) for x in v]
                        for k, v in per.items()}}), flush=True)
                    return
                if args.clock:
                    print(time.strftime("%H:%M:%S"))
                for k, v in sorted(per.items()):
                    print(f"\ntid = {int.from_bytes(k, sys.byteorder)}")
                    histogram.print_log2(v, unit)
                sys.stdout.flush()
                return
            counts = histogram.read(hist)
            if args.json:
                print(json.dumps({"unit": unit, "counts": [int(x) for x in counts]}),
                      flush=True)
            else:
                if args.clock:
                    print(time.strftime("%H:%M:%S"))
                histogram.print_log2(counts, unit)
                sys.stdout.flush()

        last = [time.monotonic()]
        done = [0]

        def poll(timeout: float) -> None:
            time.sleep(timeout)
            if args.interval and time.monotonic() - last[0] >= args.interval:
                if not args.json:
                    print()
                dump()
                if args.tids:
                    hist.clear()
                else:
                    hist.update([(i, 0) for i in range(histogram.LOG2_SLOTS)])
                last[0] = time.monotonic()
                done[0] += 1
                if args.count is not None and done[0] >= args.count:
                    raise KeyboardInterrupt

        c.run_loop(args, poll)
        if args.count is None or done[0] < args.count:
            if not args.json:
                print()
            dump()
    return 0


if __name__ == "__main__":
    sys.exit(main())
