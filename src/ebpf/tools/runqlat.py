"""runqlat: run-queue (scheduler) latency as a log2 histogram, as bcc's tool.

Raw tracepoints, as bcc uses where the kernel has them: ``sched_wakeup`` and
``sched_wakeup_new`` stamp the woken task (their argument is its ``task_struct``),
``sched_switch`` (``preempt, prev, next, prev_state``) measures how long ``next`` waited
and bumps its bucket with :func:`ebpf.lib.histogram.log2_increment`. A ``prev`` that stays
runnable (preempted, or ``prev_state`` is ``TASK_RUNNING``) is stamped again at the switch.
Thread and process ids (``pid``, ``tgid``) are read from the ``task_struct`` arguments at
offsets from the kernel's BTF, so ``-p PID`` filters on the process (tgid) as bcc's and
``-P`` keys a histogram per process; ``-L`` keys one per thread, ``--pidnss`` one per PID
namespace (the inode number of ``task->thread_pid->numbers[level].ns``, as in
``/proc/PID/ns/pid``; of the task that waited, where bcc 0.26 keys on the previous one).
The idle task (pid 0) is skipped, as in bcc. Printed with bcc's layout at the end (or every
interval).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack
from functools import cache
from typing import Any

from .. import asm
from ..asm import R0, R1, R6, R7, R8, R9, R10, Helper, Register
from ..errors import BPFError
from ..hooks import raw_tracepoint as raw
from ..lib import fp, histogram, maps
from ..lib.patterns import core_read
from . import _common as c

SCRATCH = -24          #: 8 stack bytes for core_read
KEY = -32              #: the per-id histogram key (id u32, then the slot u32)


def _task_u32(dst: Register, task: Register, member: str) -> list[asm.Item]:
    """``dst = task->member`` (a u32 of struct task_struct, offset from BTF)."""
    return list(core_read(dst, task, [("task_struct", member)], size=4, stack=SCRATCH))


@cache
def _switch_has_prev_state() -> bool:
    """Whether ``sched_switch`` passes ``prev_state`` (its 4th argument, 5.18)."""
    from ..btf.kernel import load_kernel
    from ..btf.types import FuncProto, Pointer, Typedef

    t = load_kernel().find("btf_trace_sched_switch")
    ptr = t.type if isinstance(t, Typedef) else None
    proto = ptr.target if isinstance(ptr, Pointer) else None
    return isinstance(proto, FuncProto) and len(proto.params) >= 5   # void *ctx first


def _state_member() -> str:
    """The task state member: ``__state`` since 5.14, ``state`` before."""
    from ..btf.kernel import load_kernel
    from ..btf.types import Struct

    task = load_kernel().find("task_struct")
    names = {m.name for m in task.members} if isinstance(task, Struct) else set()
    return "__state" if "__state" in names else "state"


def _pidns(dst: Register, task: Register) -> list[asm.Item]:
    """``dst = task_active_pid_ns(task)->ns.inum``; ``task`` is clobbered (R6-R9 both)."""
    from ..btf.kernel import load_kernel
    from ..btf.types import Struct
    from ..lib.patterns import field_offset

    upid = load_kernel().find("upid")
    if not isinstance(upid, Struct):
        raise BPFError("the kernel's BTF has no struct upid")
    inum = field_offset("pid_namespace", "ns") + field_offset("ns_common", "inum")
    return [*core_read(dst, task, [("task_struct", "thread_pid")], stack=SCRATCH),
            *core_read(task, dst, [("pid", "level")], size=4, stack=SCRATCH),
            asm.mul(task, upid.size), asm.add(task, field_offset("pid", "numbers")
                                              + field_offset("upid", "ns")),
            asm.add(dst, task),                                  # &pid->numbers[level].ns
            *core_read(dst, dst, [0, inum], size=4, stack=SCRATCH)]


def _stamp(start: Any, task: Register, pid: int | None) -> list[asm.Item]:
    """``start[task->pid] = now`` unless the task is the idle task or ``-p`` filters its
    process out (jumps to ``"out"`` then)."""
    return [*_task_u32(R7, task, "pid"), asm.jeq(R7, 0, "out"),
            *([] if pid is None else [*_task_u32(R9, task, "tgid"),
                                      asm.jne32(R9, pid, "out")]),
            asm.store(asm.W, R10, -8, R7), asm.call(Helper.KTIME_GET_NS),
            asm.store(asm.DW, R10, -16, R0),
            *maps.update(start, fp(-8), fp(-16))]


def _on_switch(args: argparse.Namespace, start: Any, hist: Any, div: int) -> list[asm.Item]:
    state: list[asm.Item]
    if _switch_has_prev_state():
        state = [raw.arg(R7, 3, R6)]
    else:
        state = [raw.arg(R8, 1, R6), *_task_u32(R7, R8, _state_member())]
    key = "tgid" if args.pids else "pid" if args.tids else "pidns" if args.pidnss else None
    record: list[asm.Item]
    if key is None:
        record = [histogram.log2_increment(hist, R8, slot=R9, tmp=R1, key_stack=-20)]
    else:
        record = [histogram.log2_slot(R9, R8, R1),
                  histogram.keyed_increment(hist, R9, key_stack=KEY, key_size=4,
                                            value_stack=-40)]
    return [
        raw.save_ctx(R6),
        raw.arg(R7, 0, R6), asm.jne(R7, 0, "requeue"),             # preempted: runnable
        *state, asm.jne32(R7, 0, "next"),                           # not TASK_RUNNING
        asm.label("requeue"), raw.arg(R8, 1, R6),
        asm.Fragment([*_stamp(start, R8, args.pid), asm.label("out")]),
        asm.label("next"), raw.arg(R8, 2, R6),
        *_task_u32(R7, R8, "pid"), asm.jeq(R7, 0, "out"),
        *([] if args.pid is None and key != "tgid" else [*_task_u32(R9, R8, "tgid")]),
        *([] if args.pid is None else [asm.jne32(R9, args.pid, "out")]),
        *(_pidns(R9, R8) if key == "pidns" else []),
        *([asm.store(asm.W, R10, KEY, R7 if key == "pid" else R9)] if key else []),
        asm.store(asm.W, R10, -8, R7),
        *maps.lookup(start, fp(-8), "out"), asm.load(asm.DW, R8, R0, 0),
        asm.call(Helper.KTIME_GET_NS), asm.sub(R0, R8), asm.div(R0, div), asm.mov(R8, R0),
        *record,
        *maps.delete(start, fp(-8)),
        asm.label("out"), *raw.ret(0),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    ap = c.parser("runqlat", "Summarize run queue (scheduler) latency as a histogram.")
    ap.add_argument("-m", "--milliseconds", action="store_true", help="millisecond buckets")
    ap.add_argument("-i", "--interval", type=float, help="print every this many seconds")
    per = ap.add_mutually_exclusive_group()
    per.add_argument("-P", "--pids", action="store_true", help="a histogram per process ID")
    per.add_argument("-L", "--tids", action="store_true", help="a histogram per thread ID")
    per.add_argument("--pidnss", action="store_true", help="a histogram per PID namespace")
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
    if args.pid is not None and not 0 < args.pid < 1 << 31:
        ap.error(f"-p: not a PID: {args.pid}")
    unit, div = ("msecs", 1_000_000) if args.milliseconds else ("usecs", 1000)
    section = ("pid" if args.pids else "tid" if args.tids else "pidns" if args.pidnss
               else None)
    with ExitStack() as stack:
        from .._maps import Map
        from .._types import MapType

        start = c.hash_map(stack, 4, 8)
        hist = stack.enter_context(
            Map.create(MapType.HASH, key_size=8, value_size=8, max_entries=10240) if section
            else Map.create(MapType.ARRAY, key_size=4, value_size=8,
                            max_entries=histogram.LOG2_SLOTS))
        hooks = []
        for event in ("sched_wakeup", "sched_wakeup_new"):
            prog = [raw.save_ctx(R6), raw.arg(R8, 0, R6), *_stamp(start, R8, args.pid),
                    asm.label("out"), *raw.ret(0)]
            c.attach_raw_tp(stack, prog, event, "runqlat_wake")
            hooks.append(f"raw tracepoint sched:{event}")
        c.attach_raw_tp(stack, _on_switch(args, start, hist, div), "sched_switch",
                        "runqlat_switch")
        hooks.append("raw tracepoint sched:sched_switch"
                     + ("" if _switch_has_prev_state() else f" (prev->{_state_member()})"))
        c.hook_note(args, hooks)
        c.say(args, "pid/tgid read from the task_struct arguments (offsets from kernel BTF)")
        if not args.json:
            print("Tracing run queue latency... Hit Ctrl-C to end.", flush=True)

        def dump() -> None:
            if section:
                hists = {int.from_bytes(k, sys.byteorder): v
                         for k, v in histogram.read_keyed(hist, key_size=4).items()}
                if args.json:
                    print(json.dumps({"unit": unit, f"{section}s": {
                        str(k): [int(x) for x in v] for k, v in sorted(hists.items())}}),
                        flush=True)
                    return
                if args.clock:
                    print(time.strftime("%H:%M:%S"))
                for k, v in sorted(hists.items()):
                    print(f"\n{section} = {k}")
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
                if section:
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
