"""Per-record ring buffer reads cut a run out of one copy (issue 13): records kept after the
iterator moved on stay intact while the kernel reuses the space, runs longer than the copy
bound are delivered once and in order, and stopping inside a bounded run resumes exactly."""

from __future__ import annotations

import struct
from collections.abc import Iterator

import pytest

import ebpf
from ebpf import MapType, ProgramType, asm, features
from ebpf._maps import Map
from ebpf.asm import R0, R1, R2, R3, R9, Helper
from ebpf.ringbuf import _RUN_COPY_BYTES, RingBuffer

pytestmark = pytest.mark.requires(features.have_map_type, MapType.RINGBUF)

MAGIC = 0x0123_4567_89AB_CDEF
PKT = bytes(64)


def producer(rb: Map, loops: int, size: int) -> ebpf.Program:
    """XDP program: ``loops`` records of ``size`` bytes holding (i, i ^ MAGIC), i from 0."""
    return ebpf.Program.load(ProgramType.XDP, [
        asm.mov(R9, 0),
        asm.label("loop"),
        asm.load_map(R1, rb), asm.mov(R2, size), asm.mov(R3, 0),
        asm.call(Helper.RINGBUF_RESERVE),
        asm.jeq(R0, 0, "out"),
        asm.store(asm.DW, R0, 0, R9),
        asm.load_imm64(R1, MAGIC), asm.xor(R1, R9),
        asm.store(asm.DW, R0, 8, R1),
        asm.mov(R1, R0), asm.mov(R2, 0), asm.call(Helper.RINGBUF_SUBMIT),
        asm.add(R9, 1),
        asm.jlt(R9, loops, "loop"),
        asm.label("out"),
        asm.mov(R0, 2), asm.exit(),
    ], license="GPL")


def seqs(records: list[memoryview]) -> list[int]:
    out = []
    for r in records:
        seq, chk = struct.unpack_from("<QQ", r)
        assert chk == seq ^ MAGIC, (seq, chk)
        out.append(seq)
    return out


@pytest.fixture
def ring() -> Iterator[Map]:
    with Map.create(MapType.RINGBUF, max_entries=1 << 16) as m:
        yield m


def test_kept_small_records_survive_the_ring_being_reused(ring: Map) -> None:
    n = (1 << 16) // 72 - 10  # 64 B records take 72 bytes: nearly a full ring per fill
    with producer(ring, n, 64) as prog, RingBuffer(ring) as rb:
        prog.test_run(PKT)
        first = list(rb.read())
        assert len(first) == n and all(isinstance(r, memoryview) and len(r) == 64
                                       for r in first)
        for _ in range(3):  # the space is written over (and wraps) three more times
            prog.test_run(PKT)
            assert seqs(list(rb.read())) == list(range(n))
        assert seqs(first) == list(range(n))


def test_long_runs_bounded_delivered_once_in_order() -> None:
    n = 3 * _RUN_COPY_BYTES // 72 + 17  # several bounded runs of one record length
    with Map.create(MapType.RINGBUF, max_entries=1 << 20) as rbm, \
            producer(rbm, n, 64) as prog, RingBuffer(rbm) as rb:
        prog.test_run(PKT)
        stop = _RUN_COPY_BYTES // 72 + 5  # inside the second run
        got = []
        for rec in rb.read():
            got.append(bytes(rec))
            if len(got) == stop:
                break
        assert rb.available() == (n - stop) * 72
        got += [bytes(r) for r in rb.read(copy=True)]
        assert seqs([memoryview(g) for g in got]) == list(range(n))
        assert rb.available() == 0
