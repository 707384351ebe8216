"""biolatency: block device I/O latency as a log2 histogram, as bcc's tool.

``block:block_rq_issue`` stamps each request, keyed by (device, sector), and
``block:block_rq_complete`` measures the time to completion and bumps the bucket (bcc's tool
uses kprobes on ``blk_mq_start_request``/``blk_account_io_done``; the tracepoints work
without kprobes). ``-Q`` stamps at ``block:block_rq_insert`` instead (time queued in the OS
included; requests issued directly, without an insert, are stamped at issue). ``-D`` keeps
one histogram per disk, ``-F`` one per ``rwbs`` flags string (``R``, ``WS``...), ``-e`` adds
the total and the average, ``-d DISK`` traces one disk. Options as bcc's: ``[interval]
[count]``, ``-T``, ``-m``, ``-j``. Completion runs in interrupt context, so ``-p``/``-c``
do not apply.
"""

from __future__ import annotations

import argparse
import json
import os
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

KEY = 8                        #: per-histogram key: dev u32 + pad (-D), rwbs[8] (-F), or 0
TOTAL, COUNT = histogram.LOG2_SLOTS, histogram.LOG2_SLOTS + 1   #: the -e slots
NOEXIST = 1                    #: BPF_NOEXIST


def disk_dev(name: str) -> int:
    """The kernel ``dev_t`` (major << 20 | minor) of a disk by name (``sda``, ``loop3``)."""
    path = name if name.startswith("/") else os.path.join("/dev", name)
    try:
        st = os.stat(path)
        major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
    except OSError:
        with open(f"/sys/class/block/{os.path.basename(name)}/dev") as f:
            major, minor = (int(x) for x in f.read().split(":"))
    return major << 20 | minor


def disk_name(dev: int) -> str:
    """The name of a kernel ``dev_t`` (``<unknown>`` when /sys has none)."""
    try:
        return os.path.basename(os.readlink(f"/sys/dev/block/{dev >> 20}:{dev & 0xFFFFF}"))
    except OSError:
        return "<unknown>"


def _start_key(fmt: Any, dev: int | None) -> list[asm.Item]:
    """fp-24 = {dev u32, 0 u32, sector u64} from the record at R6; out if -d filters it."""
    return [*tracepoint.field(R7, fmt, "dev", R6),
            *([] if dev is None else [asm.jne(R7, dev, "out")]),
            asm.store(asm.W, R10, -24, R7), asm.store_imm(asm.W, R10, -20, 0),
            *tracepoint.field(R7, fmt, "sector", R6), asm.store(asm.DW, R10, -16, R7)]


def _on_start(start: Any, fmt: Any, dev: int | None, flags: int) -> list[asm.Item]:
    return [tracepoint.save_ctx(R6), *_start_key(fmt, dev),
            asm.call(Helper.KTIME_GET_NS), asm.store(asm.DW, R10, -32, R0),
            *maps.update(start, fp(-24), fp(-32), flags),
            asm.label("out"), *tracepoint.ret(0)]


def _on_complete(start: Any, hist: Any, fmt: Any, args: argparse.Namespace, div: int
                 ) -> list[asm.Item]:
    key = -48                                    # KEY bytes of key, then the u32 slot
    per_key: list[asm.Item] = []
    if args.disks:
        per_key = [*tracepoint.field(R7, fmt, "dev", R6), asm.store(asm.W, R10, key, R7)]
    elif args.flags:                             # rwbs[] at an odd-for-8 offset: 2 at a time
        off = next(f.offset for f in fmt.fields if f.name == "rwbs")
        per_key = [i for n in range(0, KEY, 2)
                   for i in (asm.load(asm.H, R7, R6, off + n), asm.store(asm.H, R10, key + n, R7))]
    ext: list[asm.Item] = []
    if args.extension:
        ext = [asm.mov(R9, TOTAL),
               histogram.keyed_increment(hist, R9, key_stack=key, key_size=KEY,
                                         value_stack=-56, by=R8),
               asm.mov(R9, COUNT),
               histogram.keyed_increment(hist, R9, key_stack=key, key_size=KEY,
                                         value_stack=-56)]
    return [
        tracepoint.save_ctx(R6), *_start_key(fmt, args.dev),
        *maps.lookup(start, fp(-24), "out"), asm.load(asm.DW, R8, R0, 0),
        *maps.delete(start, fp(-24)),
        asm.call(Helper.KTIME_GET_NS), asm.sub(R0, R8), asm.div(R0, div), asm.mov(R8, R0),
        asm.store_imm(asm.DW, R10, key, 0), *per_key,
        histogram.log2_slot(R9, R8, R1),
        histogram.keyed_increment(hist, R9, key_stack=key, key_size=KEY, value_stack=-56),
        *ext,
        asm.label("out"), *tracepoint.ret(0),
    ]


def _label(args: argparse.Namespace, key: bytes) -> tuple[str, str] | None:
    if args.disks:
        return "disk", disk_name(int.from_bytes(key[:4], sys.byteorder))
    if args.flags:
        return "flags", c.cstr(key) or "-"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    ap = c.parser("biolatency", "Summarize block device I/O latency as a histogram.")
    ap.add_argument("interval", nargs="?", type=float, help="output interval, in seconds")
    ap.add_argument("count", nargs="?", type=int, help="number of outputs")
    ap.add_argument("-Q", "--queued", action="store_true", help="include OS queued time")
    ap.add_argument("-m", "--milliseconds", action="store_true", help="millisecond histogram")
    ap.add_argument("-D", "--disks", action="store_true", help="a histogram per disk")
    ap.add_argument("-F", "--flags", action="store_true", help="a histogram per rwbs flags")
    ap.add_argument("-e", "--extension", action="store_true", help="total and average too")
    ap.add_argument("-j", dest="json", action="store_true", help="same as --json")
    ap.add_argument("-d", "--disk", help="trace this disk only (sda, loop0...)")
    args = ap.parse_args(argv)
    if args.pid is not None or args.comm is not None:
        ap.error("-p/-c are not supported by biolatency (I/O completes in interrupt context)")
    if args.disks and args.flags:
        ap.error("-D and -F cannot be used together")
    try:
        args.dev = None if args.disk is None else disk_dev(args.disk)
    except OSError:
        ap.error(f"no such disk: {args.disk}")
    unit, div = ("msecs", 1_000_000) if args.milliseconds else ("usecs", 1000)
    issue, done = c.fmt("block", "block_rq_issue"), c.fmt("block", "block_rq_complete")
    with ExitStack() as stack:
        start = c.hash_map(stack, 16, 8)
        hist = c.hash_map(stack, KEY + 4, 8)
        hooks = []
        if args.queued:
            insert = c.fmt("block", "block_rq_insert")
            c.attach_tp(stack, _on_start(start, insert, args.dev, 0), "block",
                        "block_rq_insert", "biolat_insert")
            hooks.append("tracepoint block:block_rq_insert")
        c.attach_tp(stack, _on_start(start, issue, args.dev, NOEXIST if args.queued else 0),
                    "block", "block_rq_issue", "biolat_issue")
        c.attach_tp(stack, _on_complete(start, hist, done, args, div), "block",
                    "block_rq_complete", "biolat_done")
        hooks += ["tracepoint block:block_rq_issue", "tracepoint block:block_rq_complete"]
        c.hook_note(args, hooks)
        if not args.json:
            print("Tracing block device I/O... Hit Ctrl-C to end.", flush=True)

        def dump() -> None:
            per = histogram.read_keyed(hist, key_size=KEY, slots=COUNT + 1)
            if args.json:
                for key, counts in sorted(per.items()):
                    obj: dict[str, Any] = {"unit": unit,
                                           "counts": [int(x) for x in counts[:TOTAL]]}
                    if args.clock:
                        obj["time"] = time.strftime("%H:%M:%S")
                    if (label := _label(args, key)) is not None:
                        obj[label[0]] = label[1]
                    if args.extension:
                        obj["total"], obj["count"] = int(counts[TOTAL]), int(counts[COUNT])
                    print(json.dumps(obj), flush=True)
                return
            if args.clock:
                print(f"{time.strftime('%H:%M:%S')}")
            for key, counts in sorted(per.items()):
                if (label := _label(args, key)) is not None:
                    print(f"\n{label[0]} = {label[1]}")
                histogram.print_log2(counts[:TOTAL], unit)
                total, n = int(counts[TOTAL]), int(counts[COUNT])
                if args.extension and n:
                    print(f"\navg = {total // n} {unit}, total: {total} {unit}, count: {n}\n")
            sys.stdout.flush()

        shown = [0]
        last = [time.monotonic()]

        def poll(timeout: float) -> None:
            time.sleep(timeout)
            if args.interval and time.monotonic() - last[0] >= args.interval:
                print()
                dump()
                hist.clear()
                last[0] = time.monotonic()
                shown[0] += 1
                if args.count is not None and shown[0] >= args.count:
                    raise KeyboardInterrupt

        c.run_loop(args, poll)
        if not args.interval or len(hist):
            if not args.json:
                print()
            dump()
    return 0


if __name__ == "__main__":
    sys.exit(main())
