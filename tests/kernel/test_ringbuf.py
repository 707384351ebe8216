"""Ring buffers against the real kernel: BPF producers, a real tracepoint, user ring buffers."""

from __future__ import annotations

import asyncio
import os
import struct
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

import ebpf
from ebpf import MapType, ProgramType, asm, features, platform
from ebpf._maps import Map, _load_btf
from ebpf.asm import R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10, Helper
from ebpf.btf import BTFWriter
from ebpf.ringbuf import RecordBatch, RingBuffer, RingBufferClosed, UserRingBuffer

pytestmark = pytest.mark.requires(features.have_map_type, MapType.RINGBUF)

MAGIC = 0x5A5A_1234_ABCD_0F0F
#: What the producer below writes: seq, seq ^ MAGIC, then seq + 2, seq + 3, ...
REC16 = np.dtype([("seq", "<u8"), ("chk", "<u8")])
REC64 = np.dtype([("seq", "<u8"), ("chk", "<u8"), ("rest", "<u8", (6,))])


def producer(rb: Map, counter: Map, loops: int, size: int) -> ebpf.Program:
    """XDP program: up to ``loops`` times reserve ``size`` bytes, take seq = counter[0]++ and
    fill the record. Stops at the first failed reserve, so sequence numbers have no gaps."""
    insns: list[asm.Item] = [
        asm.mov(R9, 0),
        asm.label("loop"),
        asm.load_map(R1, rb), asm.mov(R2, size), asm.mov(R3, 0),
        asm.call(Helper.RINGBUF_RESERVE),
        asm.jeq(R0, 0, "out"),
        asm.mov(R6, R0),
        asm.store_imm(asm.W, R10, -4, 0),
        asm.load_map(R1, counter), asm.mov(R2, R10), asm.add(R2, -4),
        asm.call(Helper.MAP_LOOKUP_ELEM),
        asm.jne(R0, 0, "ok"),
        asm.mov(R1, R6), asm.mov(R2, 0), asm.call(Helper.RINGBUF_DISCARD),
        asm.ja("out"),
        asm.label("ok"),
        asm.mov(R7, 1),
        asm.atomic_add(asm.DW, R0, R7, 0, fetch=True),
        asm.store(asm.DW, R6, 0, R7),
        asm.load_imm64(R8, MAGIC),
        asm.xor(R8, R7),
        asm.store(asm.DW, R6, 8, R8),
    ]
    for i in range(2, size // 8):
        insns += [asm.mov(R8, R7), asm.add(R8, i), asm.store(asm.DW, R6, 8 * i, R8)]
    insns += [
        asm.mov(R1, R6), asm.mov(R2, 0), asm.call(Helper.RINGBUF_SUBMIT),
        asm.add(R9, 1),
        asm.jlt(R9, loops, "loop"),
        asm.label("out"),
        asm.mov(R0, 2), asm.exit(),
    ]
    return ebpf.Program.load(ProgramType.XDP, insns, license="GPL")


def load_with_callbacks(prog_type: ProgramType, items: list[asm.Item],
                        callbacks: list[str]) -> ebpf.Program:
    """Load a program whose subprograms (labels in ``callbacks``) are helper callbacks: the
    kernel wants BTF func_info for those."""
    ins = asm.Instructions(items)
    b = BTFWriter()
    i64 = b.int_("long", 8, signed=True)
    fi = struct.pack("=II", 0, b.func("main", b.func_proto(i64, [("ctx", i64)])))
    proto = b.func_proto(i64, [("a", i64), ("b", i64)])
    for name in callbacks:
        fi += struct.pack("=II", ins.labels[name], b.func(name, proto))
    with _load_btf(b.encode()) as btf:
        return ebpf.Program.load(prog_type, ins, license="GPL", prog_btf_fd=btf.fileno(),
                                 func_info=fi, func_info_rec_size=8)


class Checker:
    """Checks records arrive exactly once, in order, intact."""

    def __init__(self) -> None:
        self.next = 0

    def batch(self, arr: np.ndarray) -> None:
        n = len(arr)
        seq = arr["seq"]
        assert (seq == np.arange(self.next, self.next + n, dtype=np.uint64)).all(), (
            f"expected seq from {self.next}, got {seq[:4]}...")
        assert (arr["chk"] == (seq ^ np.uint64(MAGIC))).all()
        if "rest" in arr.dtype.names:
            want = seq[:, None] + np.arange(2, 8, dtype=np.uint64)
            assert (arr["rest"] == want).all()
        self.next += n

    def record(self, rec: memoryview | bytes) -> None:
        seq, chk = struct.unpack_from("<QQ", rec)
        assert seq == self.next, (seq, self.next)
        assert chk == seq ^ MAGIC
        self.next += 1


@pytest.fixture
def counter() -> Iterator[Map]:
    with Map.create(MapType.ARRAY, key_size=4, value_size=8, max_entries=2) as m:
        yield m


PKT = bytes(64)


def test_ten_million_records_producer_and_reader_threads(counter: Map) -> None:
    """10M records: test_run in one thread, read_batch in another; all exactly once, in
    order, intact."""
    total = 10_000_000
    with Map.create(MapType.RINGBUF, max_entries=1 << 24) as rbm, \
            producer(rbm, counter, 256, 16) as prog, RingBuffer(rbm) as rb:
        check = Checker()
        done = threading.Event()
        errors: list[BaseException] = []

        def produce() -> None:
            try:
                while counter[0] < total:
                    prog.test_run(data=PKT, repeat=256)
            except BaseException as e:  # pragma: no cover - reported below
                errors.append(e)
            finally:
                done.set()

        t = threading.Thread(target=produce)
        start = time.monotonic()
        t.start()
        try:
            while True:
                arr = rb.read_batch(REC16, timeout=0.05)
                if len(arr):
                    check.batch(arr)
                elif done.is_set() and not rb.available():
                    break
                assert time.monotonic() - start < 120, "reader stalled"
        finally:
            t.join()
        assert not errors
        produced = counter[0]
        assert produced >= total
        assert check.next == produced


def test_per_record_exactly_once_with_early_stops(counter: Map) -> None:
    with Map.create(MapType.RINGBUF, max_entries=1 << 20) as rbm, \
            producer(rbm, counter, 256, 64) as prog, RingBuffer(rbm) as rb:
        check = Checker()
        for _ in range(40):
            prog.test_run(data=PKT, repeat=20)
            # Stop in the middle of a run of records, then go on with a new iterator.
            it = rb.read()
            for _, rec in zip(range(37), it, strict=False):
                check.record(rec)
            del it
            for rec in rb.read():
                check.record(rec)
                assert len(rec) == 64
        assert check.next == counter[0] > 0


def test_batch_view_and_recordbatch(counter: Map) -> None:
    with Map.create(MapType.RINGBUF, max_entries=1 << 20) as rbm, \
            producer(rbm, counter, 256, 64) as prog, RingBuffer(rbm) as rb:
        check = Checker()
        prog.test_run(data=PKT, repeat=10)
        arr = rb.read_batch(REC64)
        assert arr.dtype == REC64 and len(arr) == 2560
        check.batch(arr)
        prog.test_run(data=PKT, repeat=10)
        with rb.view_batch(REC64) as view:
            assert not view.flags.writeable
            check.batch(view)
        assert rb.available() == 0
        prog.test_run(data=PKT, repeat=10)
        batch = rb.read_batch()
        assert isinstance(batch, RecordBatch) and len(batch) == 2560
        for rec in batch:
            check.record(rec)
        assert bytes(batch[0][:8]) == struct.pack("<Q", check.next - 2560)
        assert (batch.numpy(REC64)["seq"] == np.arange(check.next - 2560, check.next)).all()
        assert rb.read_batch(REC64).size == 0


def discard_program(rb: Map) -> ebpf.Program:
    """Reserve three records of 8 and one of 24 bytes; submit #0, discard #1, submit #2, #3."""
    items: list[asm.Item] = []
    for i, size in enumerate((8, 8, 8, 24)):
        items += [
            asm.load_map(R1, rb), asm.mov(R2, size), asm.mov(R3, 0),
            asm.call(Helper.RINGBUF_RESERVE),
            asm.jeq(R0, 0, "out"),
            asm.mov(R6, i), asm.store(asm.DW, R0, 0, R6),
        ]
        if size == 24:
            items += [asm.store(asm.DW, R0, 8, R6), asm.store(asm.DW, R0, 16, R6)]
        items += [asm.mov(R1, R0), asm.mov(R2, 0),
                  asm.call(Helper.RINGBUF_DISCARD if i == 1 else Helper.RINGBUF_SUBMIT)]
    items += [asm.label("out"), asm.mov(R0, 2), asm.exit()]
    return ebpf.Program.load(ProgramType.XDP, items, license="GPL")


def test_discarded_records_skipped_and_mixed_sizes() -> None:
    with Map.create(MapType.RINGBUF, max_entries=1 << 16) as rbm, \
            discard_program(rbm) as prog, RingBuffer(rbm) as rb:
        prog.test_run(data=PKT, repeat=3)
        got = [bytes(r) for r in rb.read()]
        assert [len(r) for r in got] == [8, 8, 24] * 3
        assert [r[0] for r in got] == [0, 2, 3] * 3
        prog.test_run(data=PKT)
        u64 = np.dtype("<u8")
        # The 24-byte record ends the vectorised run; "raise" leaves it in place.
        assert list(rb.read_batch(u64)) == [0, 2]
        with pytest.raises(ValueError, match="24 bytes"):
            rb.read_batch(u64)
        assert [len(r) for r in rb.read()] == [24]
        prog.test_run(data=PKT)
        assert list(rb.read_batch(u64, on_mismatch="skip")) == [0, 2]
        assert list(rb.read_batch(u64, on_mismatch="skip")) == []
        assert rb.mismatched == 1
        assert rb.available() == 0


def test_poll_timeout_wakeup_and_close_from_other_thread(counter: Map) -> None:
    with Map.create(MapType.RINGBUF, max_entries=1 << 16) as rbm, \
            producer(rbm, counter, 1, 16) as prog:
        rb = RingBuffer(rbm)
        t0 = time.monotonic()
        assert list(rb.read(timeout=0.1)) == []
        assert 0.08 <= time.monotonic() - t0 < 2
        got: list[int] = []

        def reader() -> None:
            for rec in rb:  # blocks until closed
                got.append(struct.unpack_from("<Q", rec)[0])

        t = threading.Thread(target=reader)
        t.start()
        for _ in range(5):
            time.sleep(0.02)
            prog.test_run(data=PKT)
        deadline = time.monotonic() + 5
        while len(got) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        rb.close()
        t.join(5)
        assert not t.is_alive()
        assert got == [0, 1, 2, 3, 4]
        with pytest.raises(RingBufferClosed):
            rb.poll(0)
        rb.close()  # idempotent


def test_several_rings_one_poller(counter: Map) -> None:
    with Map.create(MapType.RINGBUF, max_entries=1 << 16) as a, \
            Map.create(MapType.RINGBUF, max_entries=1 << 16) as b, \
            Map.create(MapType.ARRAY, key_size=4, value_size=8, max_entries=1) as c2, \
            producer(a, counter, 3, 16) as pa, producer(b, c2, 2, 16) as pb, \
            RingBuffer(a, b) as rb:
        assert rb.rings == [a, b]
        pb.test_run(data=PKT)
        assert rb.poll(1.0)
        pa.test_run(data=PKT)
        tagged = [(i, struct.unpack_from("<Q", r)[0]) for i, r in rb.read_tagged()]
        assert sorted(tagged) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]
        # Ring order within one ring is kept.
        assert [s for i, s in tagged if i == 0] == [0, 1, 2]


def test_async_iteration(counter: Map) -> None:
    with Map.create(MapType.RINGBUF, max_entries=1 << 16) as rbm, \
            producer(rbm, counter, 4, 16) as prog, RingBuffer(rbm) as rb:

        async def main() -> list[int]:
            loop = asyncio.get_running_loop()
            got: list[int] = []

            async def produce() -> None:
                for _ in range(5):
                    await asyncio.sleep(0.01)
                    await loop.run_in_executor(None, lambda: prog.test_run(data=PKT))

            task = asyncio.create_task(produce())
            async for rec in rb:
                got.append(struct.unpack_from("<Q", rec)[0])
                if len(got) == 20:
                    break
            await task
            return got

        assert asyncio.run(asyncio.wait_for(main(), 10)) == list(range(20))


def test_wrong_map_type_rejected() -> None:
    with Map.create(MapType.ARRAY, key_size=4, value_size=4, max_entries=1) as m, \
            pytest.raises(TypeError, match="RINGBUF"):
        RingBuffer(m)


# --- a real tracepoint -------------------------------------------------------------------

@pytest.fixture
def tracefs() -> Iterator[str]:
    path = platform.tracefs_path()
    mounted = False
    if path is None:
        try:
            path = platform.tracefs_path(mount_if_missing=True)
        except OSError as e:
            pytest.skip(f"cannot mount tracefs: {e}")
        mounted = True
    assert path is not None
    try:
        yield path
    finally:
        if mounted:
            platform.umount(path, lazy=True)


def test_records_from_a_real_tracepoint(tracefs: str, counter: Map) -> None:
    """sys_enter_getppid: one record per call of this thread, in order, intact."""
    from ebpf.link.tracepoint import attach_tracepoint

    n = 2000
    me = threading.get_native_id()
    with Map.create(MapType.RINGBUF, max_entries=1 << 18) as rbm:
        items: list[asm.Item] = [
            asm.call(Helper.GET_CURRENT_PID_TGID),
            asm.mov(R7, R0),
            asm.lsh(R7, 32),
            asm.rsh(R7, 32),  # the low half: thread id
            asm.jne(R7, me, "out"),
            asm.store_imm(asm.W, R10, -4, 0),
            asm.load_map(R1, counter), asm.mov(R2, R10), asm.add(R2, -4),
            asm.call(Helper.MAP_LOOKUP_ELEM),
            asm.jeq(R0, 0, "out"),
            asm.mov(R8, 1),
            asm.atomic_add(asm.DW, R0, R8, 0, fetch=True),
            asm.load_map(R1, rbm), asm.mov(R2, 24), asm.mov(R3, 0),
            asm.call(Helper.RINGBUF_RESERVE),
            asm.jeq(R0, 0, "out"),
            asm.store(asm.DW, R0, 0, R8),
            asm.load_imm64(R9, MAGIC), asm.xor(R9, R8), asm.store(asm.DW, R0, 8, R9),
            asm.store(asm.DW, R0, 16, R7),
            asm.mov(R1, R0), asm.mov(R2, 0), asm.call(Helper.RINGBUF_SUBMIT),
            asm.label("out"),
            asm.mov(R0, 0), asm.exit(),
        ]
        with ebpf.Program.load(ProgramType.TRACEPOINT, items, license="GPL") as prog, \
                attach_tracepoint(prog, "syscalls", "sys_enter_getppid"), \
                RingBuffer(rbm) as rb:
            check = Checker()
            for i in range(n):
                os.getppid()
                if i % 500 == 499:
                    for rec in rb.read():
                        check.record(rec)
                        assert struct.unpack_from("<Q", rec, 16)[0] == me
            for rec in rb.read(timeout=1.0):
                check.record(rec)
            assert check.next == n == counter[0]


# --- user ring buffer ---------------------------------------------------------------------

def test_user_ringbuf_producer(require: object) -> None:
    require(features.have_map_type, MapType.USER_RINGBUF)  # type: ignore[operator]
    with Map.create(MapType.USER_RINGBUF, max_entries=1 << 14) as urbm, \
            Map.create(MapType.ARRAY, key_size=4, value_size=16, max_entries=1) as out:
        # main: r = user_ringbuf_drain(urb, cb, &acc, 0); out[0] = {count, sum}
        items: list[asm.Item] = [
            asm.store_imm(asm.DW, R10, -8, 0),
            asm.load_map(R1, urbm), asm.load_func(R2, "cb"),
            asm.mov(R3, R10), asm.add(R3, -8), asm.mov(R4, 0),
            asm.call(Helper.USER_RINGBUF_DRAIN),
            asm.mov(R6, R0),
            asm.store_imm(asm.W, R10, -12, 0),
            asm.load_map(R1, out), asm.mov(R2, R10), asm.add(R2, -12),
            asm.call(Helper.MAP_LOOKUP_ELEM),
            asm.jeq(R0, 0, "out"),
            asm.store(asm.DW, R0, 0, R6),
            asm.load(asm.DW, R7, R10, -8), asm.store(asm.DW, R0, 8, R7),
            asm.label("out"),
            asm.mov(R0, 2), asm.exit(),
            # cb(dynptr, ctx): *ctx += first u64 of the sample
            asm.label("cb"),
            asm.mov(R6, R2),
            asm.mov(R3, R1), asm.mov(R1, R10), asm.add(R1, -8), asm.mov(R2, 8),
            asm.mov(R4, 0), asm.mov(R5, 0),
            asm.call(Helper.DYNPTR_READ),
            asm.jne(R0, 0, "cb_out"),
            asm.load(asm.DW, R1, R10, -8),
            asm.load(asm.DW, R2, R6, 0), asm.add(R2, R1), asm.store(asm.DW, R6, 0, R2),
            asm.label("cb_out"),
            asm.mov(R0, 0), asm.exit(),
        ]
        with load_with_callbacks(ProgramType.XDP, items, ["cb"]) as prog, \
                UserRingBuffer(urbm) as urb:
            for i in range(1, 11):
                urb.write(struct.pack("<QQ", i, 0))
            rec = urb.reserve(8)
            rec[:] = struct.pack("<Q", 1000)
            urb.discard(rec)
            rec = urb.reserve(8)
            rec[:] = struct.pack("<Q", 100)
            urb.submit(rec)
            prog.test_run(data=PKT)
            count, total = struct.unpack("<QQ", out[0])
            assert (count, total) == (11, 155)  # the discarded one is not seen
            # Fill it up, then let the kernel drain and wait for space.
            n = 0
            with pytest.raises(BufferError):
                while True:
                    urb.write(struct.pack("<Q", 1))
                    n += 1
            assert n == (1 << 14) // 16
            prog.test_run(data=PKT)
            assert urb.wait_free(16, timeout=1.0)
            assert struct.unpack("<QQ", out[0]) == (n, n)
            with pytest.raises(ValueError):
                urb.submit(memoryview(bytearray(8)))


def test_record_types_small_large_and_copy(counter: Map) -> None:
    """Small records come as copies (cheaper than views), large ones as zero-copy views;
    ``copy=True`` gives bytes. All are delivered once, intact."""
    with Map.create(MapType.RINGBUF, max_entries=1 << 20) as rbm, \
            producer(rbm, counter, 8, 1024) as big, RingBuffer(rbm) as rb:
        check = Checker()
        big.test_run(data=PKT)
        n = 0
        for rec in rb.read():  # views: checked before the iterator moves on
            assert isinstance(rec, memoryview) and len(rec) == 1024
            assert not rec.readonly or rec.obj is not None
            check.record(rec)
            n += 1
        assert n == 8
        big.test_run(data=PKT)
        got = list(rb.read(copy=True))
        assert all(isinstance(r, bytes) and len(r) == 1024 for r in got)
        assert [struct.unpack_from("<Q", r)[0] for r in got] == list(range(8, 16))
    with Map.create(MapType.RINGBUF, max_entries=1 << 16) as rbm, \
            producer(rbm, counter, 4, 16) as small, RingBuffer(rbm) as rb:
        small.test_run(data=PKT)
        out = list(rb.read())
        assert all(isinstance(r, memoryview) for r in out)
        small.test_run(data=PKT)
        assert all(isinstance(r, bytes) for r in rb.read(copy=True))
