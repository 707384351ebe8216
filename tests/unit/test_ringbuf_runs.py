"""Cutting ring buffer runs into records (issue 13): cached payload slices and runs bounded in
bytes, on a synthetic data area (no kernel needed)."""

from __future__ import annotations

import struct

from ebpf.ringbuf import _DISCARD, _SLICES, _SLICES_HELD, _runs, _slices


def _area(lengths: list[int], flags: int = 0) -> bytearray:
    out = bytearray()
    for i, ln in enumerate(lengths):
        step = (ln + 15) & ~7
        rec = bytearray(step)
        struct.pack_into("=II", rec, 0, ln | flags, 0)
        rec[8 : 8 + ln] = bytes([i & 0xFF]) * ln
        out += rec
    return out


def test_slices_cut_payloads_and_grow() -> None:
    _SLICES.clear()
    buf = bytes(_area([5] * 40))
    few = _slices(5, 16, 3)
    assert [buf[s] for s in few] == [bytes([i]) * 5 for i in range(3)]
    many = _slices(5, 16, 40)  # grown, not rebuilt per call
    assert len(many) == 40 and many[:3] == few
    assert [buf[s] for s in many] == [bytes([i]) * 5 for i in range(40)]
    assert len(_slices(5, 16, 7)) == 7 and len(_SLICES) == 1


def test_slice_cache_bounded() -> None:
    _SLICES.clear()
    for ln in range(1, 200):
        _slices(ln, (ln + 15) & ~7, 1)
    assert len(_SLICES) <= 64
    for ln in range(600, 640):  # long runs of many lengths: bounded in slices held too
        assert len(_slices(ln, (ln + 15) & ~7, 4096)) == 4096
        assert sum(map(len, _SLICES.values())) <= _SLICES_HELD


def test_runs_bounded_in_bytes() -> None:
    area = _area([64] * 100)
    d32 = memoryview(area).cast("I")
    runs = list(_runs(d32, 0, len(area), 72 * 10))
    assert all(k <= 10 for _, _, _, k in runs)
    assert sum(k for _, _, _, k in runs) == 100
    unbounded = list(_runs(d32, 0, len(area)))
    assert sum(k for _, _, _, k in unbounded) == 100 and len(unbounded) < len(runs)
    big = _area([200] * 3)  # one record larger than the bound: runs of one
    runs = list(_runs(memoryview(big).cast("I"), 0, len(big), 64))
    assert [k for _, _, _, k in runs] == [1, 1, 1]
    # the bound applies to records of at most max_len bytes (copied runs) only
    runs = list(_runs(memoryview(big).cast("I"), 0, len(big), 64, max_len=100))
    assert [k for _, _, _, k in runs] == [3]


def test_runs_skip_discarded() -> None:
    area = _area([8, 8], _DISCARD) + _area([8, 8])
    got = list(_runs(memoryview(area).cast("I"), 0, len(area)))
    assert [(ln, k) for _, ln, _, k in got] == [(-1, 1), (-1, 1), (8, 2)]


def test_runs_over_mixed_then_uniform_sizes() -> None:
    lengths = [8, 16] * 20 + [24] * 300
    area = _area(lengths)
    got = list(_runs(memoryview(area).cast("I"), 0, len(area)))
    flat = [ln for _, ln, _, k in got for _ in range(k)]
    assert flat == lengths
    assert all(k == 1 for _, _, _, k in got[:40])
    assert len(got) < 40 + 20  # the uniform tail comes in long runs again
