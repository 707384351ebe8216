"""ebpf.consumer on the kernel: records produced by XDP test_run into a ring buffer and a
perf event array, consumed on a thread with stats, backpressure, sampling, peek and a
decoding pipeline."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

import ebpf
from ebpf import asm
from ebpf.asm import R0, R1, R6, R7, R10
from ebpf.consumer import BackpressureConsumer, Consumer, SamplingConsumer, pipeline
from ebpf.lib import fp, ringbuf
from ebpf.lib import helpers as h
from ebpf.lib.structs import Struct
from ebpf.platform import Capability

pytestmark = pytest.mark.capabilities(Capability.BPF)

XDP = ebpf.ProgramType.XDP
PKT = bytes(64)
Event = Struct("Event", [("seq", "u64"), ("magic", "u32")])


def _seq(counter: ebpf.Map) -> list[asm.Item]:
    """R7 = counter[0]++ (or jump to out)."""
    return [asm.store_imm(asm.W, R10, -4, 0),
            *h.map_lookup_elem(counter, fp(-4)), asm.jeq(R0, 0, "out"),
            asm.mov(R7, 1), asm.atomic_add(asm.DW, R0, R7, 0, fetch=True)]


def _ring_producer(rb: ebpf.Map, counter: ebpf.Map) -> ebpf.Program:
    return ebpf.Program.load(XDP, [
        *_seq(counter),
        ringbuf.emit(rb, Event, {"seq": R7, "magic": 0xE7E7}, on_fail="out"),
        asm.label("out"), asm.mov(R0, 2), asm.exit()])


def _perf_producer(pm: ebpf.Map, counter: ebpf.Map) -> ebpf.Program:
    return ebpf.Program.load(XDP, [
        asm.mov(R6, R1), *_seq(counter),
        asm.store(asm.DW, R10, -16, R7),
        *h.perf_event_output(R6, pm, 0xFFFF_FFFF, fp(-16), 8),
        asm.label("out"), asm.mov(R0, 2), asm.exit()])


@pytest.fixture
def counter() -> Iterator[ebpf.Map]:
    with ebpf.Map.create(ebpf.MapType.ARRAY, key_size=4, value_size=8, max_entries=1) as m:
        yield m


def _wait(cond: object, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not cond() and time.monotonic() < end:  # type: ignore[operator]
        time.sleep(0.01)


def test_ring_consumer_thread_stats_and_pipeline(counter: ebpf.Map) -> None:
    seen: list[int] = []
    handle = pipeline(parse=Event.decode, filter=lambda e: e.seq % 2 == 0,
                      transform=lambda e: e.seq, handler=seen.append)
    with ebpf.Map.create(ebpf.MapType.RINGBUF, max_entries=1 << 16) as rb, \
            _ring_producer(rb, counter) as prog:
        c = Consumer(rb, handle)
        with c:
            assert c.running
            prog.test_run(data=PKT, repeat=1000)
            _wait(lambda: c.stats.records >= 1000)
        assert not c.running
        assert c.stats.records == 1000 and c.stats.bytes == 1000 * Event.size
        assert c.stats.handled == 1000 and c.stats.errors == 0 and c.stats.lag == 0
        assert seen == list(range(0, 1000, 2))
        assert c.stats.rate > 0


def test_ring_peek_then_process_in_order(counter: ebpf.Map) -> None:
    got: list[int] = []
    with ebpf.Map.create(ebpf.MapType.RINGBUF, max_entries=1 << 14) as rb, \
            _ring_producer(rb, counter) as prog:
        c = Consumer(rb, lambda r: got.append(Event.decode(r).seq))
        prog.test_run(data=PKT, repeat=5)
        first = c.peek(limit=2)
        assert [Event.decode(r).seq for r in first] == [0, 1] and got == []
        assert len(c.peek()) == 5  # peeking again shows the same records
        assert c.process() == 5 and got == [0, 1, 2, 3, 4]
        c.stop()


def test_handler_errors_are_counted(counter: ebpf.Map) -> None:
    def bad(r: bytes) -> None:
        raise RuntimeError("handler bug")
    with ebpf.Map.create(ebpf.MapType.RINGBUF, max_entries=1 << 14) as rb, \
            _ring_producer(rb, counter) as prog:
        c = Consumer(rb, bad)
        prog.test_run(data=PKT, repeat=3)
        c.process()
        c.stop()
        assert c.stats.errors == 3 and isinstance(c.stats.last_error, RuntimeError)


def test_sampling_consumer(counter: ebpf.Map) -> None:
    got: list[int] = []
    with ebpf.Map.create(ebpf.MapType.RINGBUF, max_entries=1 << 16) as rb, \
            _ring_producer(rb, counter) as prog:
        with SamplingConsumer(rb, lambda r: got.append(Event.decode(r).seq), every=10) as c:
            prog.test_run(data=PKT, repeat=100)
            _wait(lambda: c.stats.records >= 100)
        assert got == list(range(0, 100, 10)) and c.stats.dropped == 90


def test_backpressure_drops_instead_of_stalling(counter: ebpf.Map) -> None:
    release = threading.Event()
    handled: list[int] = []
    dropped: list[bytes] = []

    def slow(r: bytes) -> None:
        release.wait(5)
        handled.append(Event.decode(r).seq)

    with ebpf.Map.create(ebpf.MapType.RINGBUF, max_entries=1 << 16) as rb, \
            _ring_producer(rb, counter) as prog:
        c = BackpressureConsumer(rb, slow, max_pending=8, on_drop=dropped.append)
        with c:
            prog.test_run(data=PKT, repeat=200)
            _wait(lambda: c.stats.records >= 200)
            assert not c.healthy
            release.set()
        assert c.stats.records == 200
        assert c.stats.dropped == len(dropped) > 0
        assert len(handled) + c.stats.dropped == 200
        assert handled == sorted(handled)


def test_perf_consumer(counter: ebpf.Map) -> None:
    seqs: list[int] = []
    with ebpf.Map.create(ebpf.MapType.PERF_EVENT_ARRAY, key_size=4, value_size=4,
                         max_entries=ebpf.platform.possible_cpus()) as pm, \
            _perf_producer(pm, counter) as prog:
        with Consumer(pm, lambda r: seqs.append(int.from_bytes(r[:8], "little")),
                      pages=4) as c:
            prog.test_run(data=PKT, repeat=300)
            _wait(lambda: c.stats.records >= 300)
        assert sorted(seqs) == list(range(300))
        assert c.stats.records == 300 and c.stats.lost == 0 and c.last_cpu >= 0


def test_bad_source() -> None:
    with ebpf.Map.create(ebpf.MapType.ARRAY, key_size=4, value_size=8, max_entries=1) as m, \
            pytest.raises(ebpf.errors.BPFError, match="no ring buffer"):
        Consumer(m, print)
