"""Ring buffer drain of 64-byte records: ours (batch, zero-copy view, RecordBatch, per
record) vs a bare Python mmap loop, libbpf C and bcc.

Targets: batch API >= 30M records/s (issue 4), per-record iteration >= 8M records/s
(issue 13; issue 4 asked 2.5M/s; bcc's best is about 2M/s on a fast machine). The producer
and the consumers are those of bench/drain_sweep.py (an XDP program under BPF_PROG_TEST_RUN
fills the ring with one million records without dropping any; only the drain is timed;
consumers take turns on fresh fills). ``calibration`` (informational) is this machine's
speed at a plain Python loop, to compare figures across machines.
"""

from __future__ import annotations

import time
from typing import Any

import common
import drain_sweep

BENCH = "ringbuf"
SIZE = 64


def _calibration(repeats: int = 5) -> list[float]:
    """M iterations/s of ``for _ in range(n): pass`` (CPython speed on this machine)."""
    out = []
    for _ in range(repeats):
        n = 2_000_000
        t0 = time.perf_counter()
        for _ in range(n):
            pass
        out.append(n / (time.perf_counter() - t0) / 1e6)
    return out


def run(quick: bool = False) -> list[dict[str, Any]]:
    target, repeats = (200_000, 2) if quick else (1_000_000, 5)
    fill, ring = drain_sweep._plan(SIZE, target)
    got = drain_sweep._ours(SIZE, fill, ring, repeats)
    c = drain_sweep._c(SIZE, fill, ring, repeats)
    bcc = drain_sweep._bcc(SIZE, fill, ring, repeats)
    floors = {"python": got.get("python"), "C": c}
    note = f"{fill:,} records per fill, {ring >> 20} MiB ring"
    unit = drain_sweep.UNIT
    return [
        common.row(BENCH, "ringbuf 64 B batch read_batch(dtype)", unit, got.get("batch"),
                   floors=floors, peers={"bcc": bcc}, target=">= 30M records/s",
                   target_spec={"min": 30}, note=note),
        common.row(BENCH, "ringbuf 64 B per record read()", unit, got.get("read"),
                   floors=floors, peers={"bcc": bcc}, target=">= 8M records/s (issue 13)",
                   target_spec={"min": 8}, note=note),
        common.row(BENCH, "ringbuf 64 B zero-copy view_batch(dtype)", unit, got.get("view"),
                   floors=floors, peers={"bcc": bcc}, note=note),
        common.row(BENCH, "ringbuf 64 B read_batch() RecordBatch", unit, got.get("batch_mv"),
                   floors=floors, peers={"bcc": bcc}, note=note),
        common.row(BENCH, "calibration: Python `for _ in range(n)`", "M iterations/s",
                   _calibration(), note="machine speed; ~50-100 on a recent desktop"),
    ]


if __name__ == "__main__":
    common.standalone(run)
