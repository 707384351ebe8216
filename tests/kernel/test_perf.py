"""Perf buffers against the real kernel: per-CPU rings, wraparound, lost-sample accounting."""

from __future__ import annotations

import os
import struct
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

import ebpf
from ebpf import MapType, ProgramType, asm, features, platform
from ebpf._maps import Map
from ebpf.asm import R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10, Helper
from ebpf.perf import PerfBuffer, PerfBufferClosed

pytestmark = pytest.mark.requires(features.have_map_type, MapType.PERF_EVENT_ARRAY)

MAGIC = 0x0F0F_1234_ABCD_5A5A
#: Sample layout written below: seq, seq ^ MAGIC, cpu, seq + 3 ... (64 bytes)
SAMPLE = np.dtype([("seq", "<u8"), ("chk", "<u8"), ("cpu", "<u8"), ("rest", "<u8", (5,))])
PKT = bytes(64)
CPU_FLAG = 0xFFFF_FFFF  # BPF_F_CURRENT_CPU


def producer(pmap: Map, counter: Map, loops: int) -> ebpf.Program:
    """XDP program: ``loops`` times, seq = counter[0]++, send a 64-byte sample; each failed
    send (ENOSPC: the CPU's buffer is full) adds one to counter[1]."""
    items: list[asm.Item] = [
        asm.mov(R6, R1),
        asm.mov(R9, 0),
        asm.label("loop"),
        asm.store_imm(asm.W, R10, -4, 0),
        asm.load_map(R1, counter), asm.mov(R2, R10), asm.add(R2, -4),
        asm.call(Helper.MAP_LOOKUP_ELEM),
        asm.jeq(R0, 0, "out"),
        asm.mov(R7, 1),
        asm.atomic_add(asm.DW, R0, R7, 0, fetch=True),
        asm.store(asm.DW, R10, -72, R7),
        asm.load_imm64(R8, MAGIC), asm.xor(R8, R7), asm.store(asm.DW, R10, -64, R8),
        asm.call(Helper.GET_SMP_PROCESSOR_ID), asm.store(asm.DW, R10, -56, R0),
    ]
    for i in range(3, 8):
        items += [asm.mov(R8, R7), asm.add(R8, i), asm.store(asm.DW, R10, -72 + 8 * i, R8)]
    items += [
        asm.mov(R1, R6), asm.load_map(R2, pmap), asm.load_imm64(R3, CPU_FLAG),
        asm.mov(R4, R10), asm.add(R4, -72), asm.mov(R5, 64),
        asm.call(Helper.PERF_EVENT_OUTPUT),
        asm.jeq(R0, 0, "next"),
        asm.store_imm(asm.W, R10, -4, 1),
        asm.load_map(R1, counter), asm.mov(R2, R10), asm.add(R2, -4),
        asm.call(Helper.MAP_LOOKUP_ELEM),
        asm.jeq(R0, 0, "out"),
        asm.mov(R1, 1), asm.atomic_add(asm.DW, R0, R1, 0),
        asm.label("next"),
        asm.add(R9, 1),
        asm.jlt(R9, loops, "loop"),
        asm.label("out"),
        asm.mov(R0, 2), asm.exit(),
    ]
    return ebpf.Program.load(ProgramType.XDP, items, license="GPL")


class Checker:
    """Per CPU: increasing sequence numbers, intact payloads; globally: no duplicates."""

    def __init__(self) -> None:
        self.last: dict[int, int] = {}
        self.seen: set[int] = set()
        self.count = 0

    def batch(self, arr: np.ndarray) -> None:
        seq = arr["seq"]
        assert (arr["chk"] == (seq ^ np.uint64(MAGIC))).all()
        assert (arr["rest"] == seq[:, None] + np.arange(3, 8, dtype=np.uint64)).all()
        for cpu in np.unique(arr["cpu"]):
            s = seq[arr["cpu"] == cpu]
            assert (np.diff(s.astype(np.int64)) > 0).all()
            prev = self.last.get(int(cpu), -1)
            assert int(s[0]) > prev
            self.last[int(cpu)] = int(s[-1])
        n_before = len(self.seen)
        self.seen.update(seq.tolist())
        assert len(self.seen) == n_before + len(arr), "duplicate samples"
        self.count += len(arr)

    def record(self, cpu: int, rec: memoryview | bytes) -> None:
        assert len(rec) == 68  # 64 bytes + the kernel's padding to an 8-byte record
        arr = np.frombuffer(bytes(rec[:64]), SAMPLE)
        assert int(arr["cpu"][0]) == cpu
        self.batch(arr)


@pytest.fixture
def counter() -> Iterator[Map]:
    with Map.create(MapType.ARRAY, key_size=4, value_size=8, max_entries=2) as m:
        yield m


@pytest.fixture
def pmap() -> Iterator[Map]:
    with Map.create(MapType.PERF_EVENT_ARRAY) as m:
        assert m.max_entries == platform.possible_cpus()
        yield m


def run_on_each_cpu(prog: ebpf.Program, repeat: int = 1) -> None:
    """test_run once pinned to every online CPU (flushes pending LOST records: the kernel
    writes one before the next sample that fits)."""
    saved = os.sched_getaffinity(0)
    try:
        for cpu in platform.online_cpus():
            os.sched_setaffinity(0, {cpu})
            prog.test_run(data=PKT, repeat=repeat)
    finally:
        os.sched_setaffinity(0, saved)


def test_lost_counts_equal_kernel_failures(pmap: Map, counter: Map) -> None:
    """Overflow small per-CPU buffers without reading, then read everything: every sample
    the kernel accepted arrives once, and ``lost`` equals the failed sends."""
    with producer(pmap, counter, 64) as prog, PerfBuffer(pmap, pages=2) as pb:
        check = Checker()
        run_on_each_cpu(prog, repeat=40)  # 2560 samples of 80 bytes per CPU into 8 KiB
        failed = counter[1]
        assert failed > 0
        for cpu, rec in pb.read():
            check.record(cpu, rec)
        run_on_each_cpu(prog)  # the LOST records are written before these samples
        for cpu, rec in pb.read():
            check.record(cpu, rec)
        assert counter[1] == failed  # the flush itself fit
        assert pb.lost == failed
        assert sum(pb.lost_per_cpu().values()) == failed
        assert check.count + pb.lost == counter[0]


def test_wraparound_and_early_stop(pmap: Map, counter: Map) -> None:
    """80-byte records do not divide the 8 KiB data area: many wrap around its end."""
    with producer(pmap, counter, 10) as prog, PerfBuffer(pmap, pages=2) as pb:
        check = Checker()
        for i in range(300):
            run_on_each_cpu(prog)
            it = pb.read()
            for cpu, rec in (x for _, x in zip(range(3 + i % 7), it, strict=False)):
                check.record(cpu, rec)
            del it
            for cpu, rec in pb.read():
                check.record(cpu, rec)
        assert counter[1] == 0 and pb.lost == 0
        assert check.count == counter[0] == 300 * 10 * len(platform.online_cpus())


def test_many_samples_producer_and_reader_threads(pmap: Map, counter: Map) -> None:
    """1M samples through 256 KiB per-CPU buffers, test_run in one thread and read_batch in
    another; whatever the kernel could not store is reported as lost, exactly."""
    total = 1_000_000  # the kernel makes ~0.1-0.2M samples/s here (wakeups), not more
    with producer(pmap, counter, 200) as prog, PerfBuffer(pmap, pages=64) as pb:
        check = Checker()
        done = threading.Event()

        def produce() -> None:
            try:
                while counter[0] < total:
                    prog.test_run(data=PKT, repeat=100)
            finally:
                done.set()

        t = threading.Thread(target=produce)
        t.start()
        try:
            while not (done.is_set() and not pb.available()):
                arr = pb.read_batch(SAMPLE, timeout=0.05)
                if len(arr):
                    check.batch(arr)
        finally:
            t.join()
        failed = counter[1]
        run_on_each_cpu(prog)
        check.batch(pb.read_batch(SAMPLE))
        assert pb.lost == failed
        assert check.count + pb.lost == counter[0]


def test_read_batch_wraparound_lost_and_limits(pmap: Map, counter: Map) -> None:
    """read_batch over 8 KiB rings: samples wrapping around the end of the data area, LOST
    records between runs, ``max_records``, a dtype shorter than the samples (its first bytes)
    and one longer than them (ValueError, nothing taken)."""
    head = np.dtype([("seq", "<u8"), ("chk", "<u8")])
    with producer(pmap, counter, 64) as prog, PerfBuffer(pmap, pages=2) as pb:
        check = Checker()
        n_cpus = len(platform.online_cpus())
        run_on_each_cpu(prog, repeat=40)  # overflows: LOST records follow
        failed = counter[1]
        assert failed > 0
        waiting = pb.available()
        with pytest.raises(ValueError, match="smaller than the dtype"):
            pb.read_batch(np.dtype((np.void, 72)))  # samples are 64 + 4 bytes of padding
        assert pb.available() == waiting
        padded = pb.read_batch(np.dtype((np.void, 68)), max_records=1)
        assert len(padded) == 1 and padded.dtype.itemsize == 68
        check.batch(np.frombuffer(padded.tobytes()[:64], SAMPLE))
        arr = pb.read_batch(SAMPLE, max_records=5)
        assert len(arr) == 5 and arr.flags.c_contiguous
        check.batch(arr)
        run_on_each_cpu(prog)  # LOST, then what fits in the space just freed, after the rest
        # The rest in one call: room is made for 32-byte records, the 80-byte ones fill
        # less than half of it, so the result is a copy, not a view of the bigger buffer.
        short = pb.read_batch(head)
        assert len(short) > 50 and short.base is None and not pb.available()
        assert (short["chk"] == (short["seq"] ^ np.uint64(MAGIC))).all()
        n_before = len(check.seen)
        check.seen.update(short["seq"].tolist())
        assert len(check.seen) == n_before + len(short)
        check.count += len(short)
        # Wraparound: 80-byte records do not divide the data area.
        for i in range(200):
            run_on_each_cpu(prog)
            arr = pb.read_batch(SAMPLE, max_records=1 + i % 50)
            check.batch(arr)
            while len(arr := pb.read_batch(SAMPLE)):
                check.batch(arr)
        assert pb.lost == counter[1] > failed
        assert check.count + pb.lost == counter[0] == (40 + 1 + 200) * 64 * n_cpus
        assert len(pb.read_batch(SAMPLE)) == 0


def test_read_batch_mixed_sizes(pmap: Map, counter: Map) -> None:
    """Samples of another size in the middle end a run; a dtype that fits both reads all."""
    small = ebpf.Program.load(ProgramType.XDP, [
        asm.mov(R6, R1),
        asm.store_imm(asm.DW, R10, -16, -1), asm.store_imm(asm.DW, R10, -8, -1),
        asm.mov(R1, R6), asm.load_map(R2, pmap), asm.load_imm64(R3, CPU_FLAG),
        asm.mov(R4, R10), asm.add(R4, -16), asm.mov(R5, 16),
        asm.call(Helper.PERF_EVENT_OUTPUT),
        asm.mov(R0, 2), asm.exit(),
    ], license="GPL")
    head = np.dtype([("seq", "<u8"), ("chk", "<u8")])
    saved = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {platform.online_cpus()[0]})
    try:
        with producer(pmap, counter, 10) as prog, small, PerfBuffer(pmap, pages=4) as pb:
            for _ in range(3):
                prog.test_run(data=PKT)
                small.test_run(data=PKT, repeat=3)
            prog.test_run(data=PKT)
            with pytest.raises(ValueError, match="sample of 20 bytes"):
                pb.read_batch(SAMPLE)  # raised before anything is taken
            got = pb.read_batch(head)
            assert not pb.available()
    finally:
        os.sched_setaffinity(0, saved)
    mark = np.uint64(2**64 - 1)
    want = ([*range(0, 10), mark, mark, mark, *range(10, 20), mark, mark, mark,
             *range(20, 30), mark, mark, mark, *range(30, 40)])
    assert got["seq"].tolist() == [int(x) for x in want]
    big = got["seq"] != mark
    assert (got["chk"][big] == (got["seq"][big] ^ np.uint64(MAGIC))).all()
    assert (got["chk"][~big] == mark).all()


def test_poll_and_close(pmap: Map, counter: Map) -> None:
    with producer(pmap, counter, 1) as prog:
        pb = PerfBuffer(pmap, pages=1)
        assert pb.cpus == platform.online_cpus()
        assert not pb.poll(0.05)
        got: list[int] = []

        def reader() -> None:
            for _, rec in pb:
                got.append(struct.unpack_from("<Q", rec)[0])

        t = threading.Thread(target=reader)
        t.start()
        for _ in range(3):
            time.sleep(0.02)
            prog.test_run(data=PKT)
        deadline = time.monotonic() + 5
        while len(got) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        pb.close()
        t.join(5)
        assert not t.is_alive()
        assert got == [0, 1, 2]
        with pytest.raises(PerfBufferClosed):
            pb.poll(0)
        # The slots can be taken again (userspace cannot look perf event arrays up).
        with PerfBuffer(pmap, pages=1) as again:
            prog.test_run(data=PKT)
            assert [struct.unpack_from("<Q", r)[0] for _, r in again.read(1.0)] == [3]


def test_bad_arguments(pmap: Map) -> None:
    with pytest.raises(ValueError, match="power of two"):
        PerfBuffer(pmap, pages=3)
    with Map.create(MapType.ARRAY, key_size=4, value_size=4, max_entries=1) as m, \
            pytest.raises(TypeError, match="PERF_EVENT_ARRAY"):
        PerfBuffer(m)
