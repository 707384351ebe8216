"""syscount: count system calls per syscall (or per process with ``-P``), as bcc's tool.

``raw_syscalls:sys_exit`` fires at the end of every syscall with its number and result (as
bcc, which counts there too); the program counts in a hash keyed by syscall number (or tgid
with ``-P``). The counts are printed at the end (or every ``-i`` seconds).

Options as bcc's: ``-p PID``, ``-x`` (failed calls only) and ``-e ERRNO`` (only calls that
failed with it, a name or a number) in the kernel; ``-T TOP`` rows, ``-d`` duration, ``-l``
lists the syscall names; ``-L`` adds the total time spent in the calls (a per-thread entry
stamp at ``raw_syscalls:sys_enter``), in microseconds or with ``-m`` milliseconds.
"""

from __future__ import annotations

import argparse
import errno
import os
import re
import struct
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack
from functools import cache

from .. import asm
from ..asm import R0, R6, R7, R8, R10, Helper
from ..hooks import tracepoint
from ..lib import fp, maps
from . import _common as c

_UNISTD = ("/usr/include/x86_64-linux-gnu/asm/unistd_64.h", "/usr/include/asm/unistd_64.h",
           "/usr/include/asm-generic/unistd.h")


@cache
def syscall_names() -> dict[int, str]:
    """Syscall numbers to names from the installed kernel headers (empty without them)."""
    for path in _UNISTD:
        if os.path.exists(path):
            with open(path) as f:
                return {int(m[2]): m[1] for m in
                        re.finditer(r"#define __NR3?2?_(\w+)\s+(\d+)", f.read())}
    return {}


def _errno(text: str) -> int:
    """``EPERM`` or ``1`` to 1 (bcc's ``-e``)."""
    value = int(text) if text.isdigit() else getattr(errno, text.upper(), None)
    if not isinstance(value, int) or not 0 < value < 4096:
        raise argparse.ArgumentTypeError(f"not an errno: {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    ap = c.parser("syscount", "Count system calls.", clock=())
    ap.add_argument("-P", "--process", action="store_true", help="count by process")
    ap.add_argument("-i", "--interval", type=float, help="print every this many seconds")
    ap.add_argument("-T", "--top", type=int, default=10, help="rows to print")
    ap.add_argument("-d", dest="duration", type=float, help="total duration of trace, seconds")
    ap.add_argument("-x", "--failures", action="store_true", help="failed syscalls only")
    ap.add_argument("-e", "--errno", type=_errno, help="only syscalls failing with this errno")
    ap.add_argument("-L", "--latency", action="store_true", help="also total time in calls")
    ap.add_argument("-m", "--milliseconds", action="store_true", help="-L's time in ms")
    ap.add_argument("-l", "--list", action="store_true", help="print the syscall names")
    args = ap.parse_args(argv)
    if args.comm is not None:
        ap.error("-c is not supported by syscount")
    if args.list:
        for nr, name in sorted(syscall_names().items()):
            print(f"{nr:<4} {name}")
        return 0
    args.clock = False
    f = c.fmt("raw_syscalls", "sys_exit")
    ret_filter: list[asm.Item] = []
    if args.failures:
        ret_filter = [*tracepoint.field(R7, f, "ret", R6), asm.jsge(R7, 0, "out")]
    if args.errno is not None:
        ret_filter += [*tracepoint.field(R7, f, "ret", R6), asm.jne(R7, -args.errno, "out")]
    with ExitStack() as stack:
        vsize = 16 if args.latency else 8
        counts = c.hash_map(stack, 4, vsize)
        lat: list[asm.Item] = []
        if args.latency:
            start = c.hash_map(stack, 4, 8)
            on_enter = [tracepoint.save_ctx(R6), *c.pid_filter(args, "out"), *c.key_tid(),
                        asm.call(Helper.KTIME_GET_NS), asm.store(asm.DW, R10, -16, R0),
                        *maps.update(start, fp(-8), fp(-16)),
                        asm.label("out"), *tracepoint.ret(0)]
            c.attach_tp(stack, on_enter, "raw_syscalls", "sys_enter", "syscount_enter")
            lat = [asm.call(Helper.GET_CURRENT_PID_TGID), asm.store(asm.W, R10, -56, R0),
                   *maps.lookup(start, fp(-56), "out"), asm.load(asm.DW, R8, R0, 0),
                   asm.call(Helper.KTIME_GET_NS), asm.sub(R0, R8), asm.mov(R8, R0),
                   *maps.delete(start, fp(-56))]
        comms = c.hash_map(stack, 4, 16) if args.process else None
        key = ([asm.call(Helper.GET_CURRENT_PID_TGID), asm.rsh(R0, 32),
                asm.store(asm.W, R10, -8, R0)] if args.process
               else [*tracepoint.field(R7, f, "id", R6), asm.store(asm.W, R10, -8, R7)])
        comm = ([asm.mov(asm.R1, R10), asm.add(asm.R1, -32), asm.mov(asm.R2, 16),
                 asm.call(Helper.GET_CURRENT_COMM),
                 *maps.update(comms, fp(-8), fp(-32))] if comms is not None else [])
        program = [tracepoint.save_ctx(R6), *c.pid_filter(args, "out"), *lat, *ret_filter, *key,
                   maps.increment(counts, fp(-8), 1, value_size=vsize, stack=-48),
                   *([maps.increment(counts, fp(-8), R8, offset=8, value_size=vsize,
                                     stack=-48)] if args.latency else []), *comm,
                   asm.label("out"), *tracepoint.ret(0)]
        c.attach_tp(stack, program, "raw_syscalls", "sys_exit", "syscount")
        c.hook_note(args, ["tracepoint raw_syscalls:sys_exit"])
        names = syscall_names()
        c.say(args, f"{len(names)} syscall names from the kernel headers")

        def dump() -> None:
            unit, div = ("ms", 1e6) if args.milliseconds else ("us", 1e3)
            total: dict[int, float] = {}
            rows = []
            for k, v in counts.items():
                if args.latency:
                    n, ns = struct.unpack("=QQ", bytes(v))
                    total[int(k)] = ns / div
                else:
                    n = int(v)
                rows.append((n, int(k)))
            rows.sort(reverse=True)
            if args.json:
                import json

                print(json.dumps([
                    {"pid" if args.process else "syscall":
                     k if args.process else names.get(k, str(k)), "count": n,
                     **({f"time_{unit}": total[k]} if args.latency else {})}
                    for n, k in rows[:args.top]]), flush=True)
                return
            print(f"[{time.strftime('%H:%M:%S')}]")
            print(f"{'PID    COMM' if args.process else 'SYSCALL':<22} {'COUNT':>8}"
                  + (f" {f'TIME ({unit})':>16}" if args.latency else ""))
            for n, k in rows[:args.top]:
                who = (c.cstr(bytes(comms[k])) if comms is not None and k in comms else "")
                label = f"{k:<6} {who}" if args.process else names.get(k, str(k))
                print(f"{label:<22} {n:>8}"
                      + (f" {total[k]:>16.3f}" if args.latency else ""), flush=True)

        last = [time.monotonic()]

        def poll(timeout: float) -> None:
            time.sleep(timeout)
            if args.interval and time.monotonic() - last[0] >= args.interval:
                dump()
                counts.clear()
                last[0] = time.monotonic()

        c.run_loop(args, poll)
        dump()
    return 0


if __name__ == "__main__":
    sys.exit(main())
