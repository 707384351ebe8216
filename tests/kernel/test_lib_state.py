"""ebpf.lib memory, time/random, maps, ringbuf + structs and rate_limit on the kernel.

Programs are built with the library, run with BPF_PROG_TEST_RUN, and their effects (map
contents, ring buffer records) checked against what Python computes independently.
"""

from __future__ import annotations

import time

import pytest

import ebpf
from ebpf import asm, packet
from ebpf.asm import R0, R1, R2, R3, R4, R6, R7, R8, R9, R10
from ebpf.hooks import xdp
from ebpf.lib import fp, maps, memory, rate_limit, ringbuf
from ebpf.lib import time as btime
from ebpf.lib.net import EtherType, IPProto, ethernet, ipv4, udp
from ebpf.lib.structs import Struct
from ebpf.platform import Capability
from ebpf.ringbuf import RingBuffer

pytestmark = pytest.mark.capabilities(Capability.BPF)

XDP = ebpf.ProgramType.XDP
ARRAY, HASH = ebpf.MapType.ARRAY, ebpf.MapType.HASH


def _udp(sport: int = 1000, dport: int = 53, payload: bytes = b"hello",
         src: str = "10.0.0.1") -> bytes:
    return bytes(packet.Ethernet(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
                 / packet.IPv4(src=src, dst="10.0.0.2") / packet.UDP(sport=sport, dport=dport)
                 / payload)


def _udp_prologue(on_other: str) -> list[asm.Item]:
    """R6 ctx, R7 data, R8 data_end, R9 l3, R4 l4, R3 dport (host), R2 sport (host)."""
    return [
        xdp.prologue(ctx=R6, data=R7, data_end=R8),
        ethernet.parse(R7, R8, proto=R2, l3=R9, on_short=on_other, tmp=R1),
        asm.jne(R2, EtherType.IPV4, on_other),
        ipv4.parse(R9, R8, l4=R4, proto=R2, on_short=on_other, tmp=R1),
        asm.jne(R2, IPProto.UDP, on_other),
        udp.parse(R4, R8, on_short=on_other, tmp=R1, sport=R2, dport=R3),
    ]


# --- memory -----------------------------------------------------------------------------------


def test_memory_zero_memset_memcpy() -> None:
    """A 64-byte stack buffer: memset 0xAB, packet bytes copied in at odd offsets, holes
    zeroed; the buffer is then stored in a map and compared byte by byte."""
    buf = -64
    frame = bytes(range(14, 14 + 64)) + bytes(range(100, 140))
    frame = bytes(packet.Ethernet(type=0x88B5)) + frame
    with ebpf.Map.create(ARRAY, key_size=4, value_size=64, max_entries=1) as out:
        insns = [
            xdp.prologue(ctx=R6, data=R7, data_end=R8),
            asm.mov(R1, R7), asm.add(R1, 64), asm.jgt(R1, R8, "out"),
            memory.memset(R10, buf, 64, 0xAB),
            memory.memset(R10, buf + 48, 16, 0xCD, tmp=R2),
            memory.memcpy(R10, buf + 3, R7, 17, 13, tmp=R2),     # unaligned both sides
            memory.memcpy(R10, buf + 24, R7, 32, 16, tmp=R2),    # 8-byte moves
            memory.zero(R10, buf + 41, 5),
            memory.zero_stack(buf + 60, 4),
            asm.store_imm(asm.W, R10, -68, 0),
            maps.update(out, fp(-68), fp(buf)),
            asm.label("out"), xdp.ret(xdp.Action.PASS),
        ]
        with ebpf.Program.load(XDP, insns) as prog:
            prog.test_run(data=frame)
        want = bytearray(b"\xab" * 48 + b"\xcd" * 16)
        want[3:16] = frame[17:30]
        want[24:40] = frame[32:48]
        want[41:46] = bytes(5)
        want[60:64] = bytes(4)
        assert out[0] == bytes(want)


# --- time and random ----------------------------------------------------------------------------

Clocks = Struct("clocks", [("mono", "u64"), ("boot", "u64"), ("coarse", "u64"),
                           ("tai", "u64"), ("jiffies", "u64")])


def test_clocks_match_the_host_clocks() -> None:
    slot = -48
    with ebpf.Map.create(ARRAY, key_size=4, value=Clocks.codec, max_entries=1) as out:
        insns: list[asm.Item] = []
        for name, get in (("mono", btime.ktime_ns), ("boot", btime.boot_ns),
                          ("coarse", btime.coarse_ns), ("tai", btime.tai_ns),
                          ("jiffies", btime.jiffies64)):
            insns += [*get(R6), Clocks.store(R10, name, R6, off=slot)]
        insns += [asm.store_imm(asm.W, R10, -4, 0), *maps.update(out, fp(-4), fp(slot)),
                  *xdp.ret(xdp.Action.PASS)]
        with ebpf.Program.load(XDP, insns) as prog:
            clocks = (time.CLOCK_MONOTONIC, time.CLOCK_BOOTTIME, time.CLOCK_TAI)
            before = [time.clock_gettime_ns(c) for c in clocks]
            prog.test_run(data=_udp())
            after = [time.clock_gettime_ns(c) for c in clocks]
            first = out[0]
            time.sleep(0.05)
            prog.test_run(data=_udp())
            second = out[0]
    assert before[0] <= first.mono <= after[0]
    assert before[1] <= first.boot <= after[1]
    assert before[2] <= first.tai <= after[2]
    assert first.tai - first.mono > 10**9 * 3600 * 24 * 365  # TAI counts from 1970
    assert before[0] - 50_000_000 <= first.coarse <= after[0]  # tick resolution
    assert second.jiffies > first.jiffies and second.mono >= first.mono + 50_000_000


def _histogram(gen: list[asm.Instruction], runs: int, buckets: int = 16) -> list[int]:
    """Run ``gen`` (leaving a value in R0) ``runs`` times; count the values per bucket."""
    with ebpf.Map.create(ARRAY, key_size=4, value_size=8, max_entries=buckets + 1) as hist:
        insns = [
            *gen, asm.mov(R6, R0),
            asm.jlt(R6, buckets, "in"), asm.mov(R6, buckets),  # out of range -> last slot
            asm.label("in"),
            maps.array_add(hist, R6, 1, key_stack=-4),
            *xdp.ret(xdp.Action.PASS),
        ]
        with ebpf.Program.load(XDP, insns) as prog:
            prog.test_run(data=_udp(), repeat=runs)
        return [hist[i] for i in range(buckets + 1)]


def test_random_below_and_range_are_uniform_and_in_range() -> None:
    runs = 20000
    h = _histogram(btime.random_below(10), runs)
    assert sum(h) == runs and h[10:] == [0] * 7
    assert all(abs(c - runs / 10) < runs / 10 * 0.15 for c in h[:10]), h
    h = _histogram(btime.random_below(8), runs)  # power of two: a mask
    assert h[8:] == [0] * 9 and all(abs(c - runs / 8) < runs / 8 * 0.15 for c in h[:8]), h
    h = _histogram([*btime.random_range(3, 7), asm.mov(R1, R0)], runs)
    assert h[:3] == [0, 0, 0] and h[7:] == [0] * 10
    assert all(abs(c - runs / 4) < runs / 4 * 0.15 for c in h[3:7]), h


def test_percentage_hits_about_that_often() -> None:
    runs = 20000
    h = _histogram([*btime.percentage(30, "hit"), asm.mov(R0, 0), asm.ja("end"),
                    asm.label("hit"), asm.mov(R0, 1), asm.label("end")], runs)
    assert h[0] + h[1] == runs and abs(h[1] - 0.3 * runs) < 0.03 * runs, h
    h = _histogram([*btime.chance(0, 5, "hit"), asm.mov(R0, 0), asm.ja("end"),
                    asm.label("hit"), asm.mov(R0, 1), asm.label("end")], 1000)
    assert h[1] == 0


# --- map helpers ----------------------------------------------------------------------------

Counter = Struct("counter", [("packets", "u64"), ("bytes", "u64")])


@pytest.mark.parametrize("percpu", [False, True], ids=["hash", "percpu_hash"])
def test_counters_per_key_under_repeat(percpu: bool) -> None:
    """Packets and bytes per UDP destination port, each frame run N times."""
    mtype = ebpf.MapType.PERCPU_HASH if percpu else HASH
    bump = maps.percpu_increment if percpu else maps.increment
    with ebpf.Map.create(mtype, key_size=4, value=Counter.codec, max_entries=64) as counts:
        insns = [
            *_udp_prologue("out"),
            asm.store(asm.W, R10, -4, R3),
            xdp.data(R7, R6), xdp.data_end(R8, R6), asm.sub(R8, R7),  # frame length
            bump(counts, fp(-4), 1, offset=0, value_size=16, stack=-24),
            bump(counts, fp(-4), R8, offset=8, value_size=16, stack=-24),
            asm.label("out"), xdp.ret(xdp.Action.PASS),
        ]
        with ebpf.Program.load(XDP, insns) as prog:
            plan = {53: 7, 80: 1, 443: 25, 9999: 3}
            for port, n in plan.items():
                prog.test_run(data=_udp(dport=port, payload=bytes(port % 17)), repeat=n)
            got = {}
            for key in counts:
                v = counts[key]
                got[key] = ((sum(c.packets for c in v), sum(c.bytes for c in v)) if percpu
                            else (v.packets, v.bytes))
        assert got == {p: (n, n * len(_udp(dport=p, payload=bytes(p % 17))))
                       for p, n in plan.items()}


def test_lookup_or_init_inserts_once() -> None:
    with ebpf.Map.create(HASH, key_size=4, value_size=8, max_entries=4) as m:
        insns = [
            asm.store_imm(asm.W, R10, -4, 7),
            asm.store_imm(asm.DW, R10, -16, 1000),
            maps.lookup_or_init(m, fp(-4), fp(-16), "out"),
            asm.mov(R1, 1), asm.atomic_add(asm.DW, R0, R1, 0),
            asm.label("out"), *xdp.ret(xdp.Action.PASS),
        ]
        with ebpf.Program.load(XDP, insns) as prog:
            prog.test_run(data=_udp(), repeat=5)
        assert dict(m.items()) == {7: 1005}


def test_lookup_or_init_full_map_takes_the_fail_path() -> None:
    with ebpf.Map.create(HASH, key_size=4, value_size=8, max_entries=1) as m:
        m[1] = 0
        insns = [
            asm.store_imm(asm.W, R10, -4, 2), asm.store_imm(asm.DW, R10, -16, 0),
            maps.lookup_or_init(m, fp(-4), fp(-16), "full"),
            *xdp.ret(xdp.Action.PASS),
            asm.label("full"), *xdp.ret(xdp.Action.DROP),
        ]
        with ebpf.Program.load(XDP, insns) as prog:
            assert prog.test_run(data=_udp()).retval == xdp.Action.DROP


# --- ring buffer + structs --------------------------------------------------------------------

Event = Struct("udp_event", [
    ("ts", "u64"), ("saddr", "be32"), ("sport", "be16"), ("dport", "u16"), ("len", "u32"),
    ("kind", "u8"), ("tag", "char[7]"),
])


def test_ringbuf_emit_struct_decoded_with_the_same_declaration() -> None:
    with ebpf.Map.create(ebpf.MapType.RINGBUF, max_entries=4096) as ring:
        insns = [
            *_udp_prologue("out"),
            asm.jeq(R3, 0, "out"),                    # port 0: nothing to report
            asm.load(asm.W, R7, R9, ipv4.SADDR),       # wire order, for the be32 field
            asm.load(asm.H, R6, R4, udp.SPORT),        # wire order, for the be16 field
            asm.mov(R8, R3),                          # dport, host order (u16 field)
            *btime.ktime_ns(R9),
            ringbuf.emit(ring, Event, {"ts": R9, "saddr": R7, "sport": R6, "dport": R8,
                                       "kind": 3}, on_fail="out"),
            asm.label("out"), xdp.ret(xdp.Action.PASS),
        ]
        with ebpf.Program.load(XDP, insns) as prog, RingBuffer(ring) as rb:
            t0 = time.monotonic_ns()
            sent = [("10.0.0.1", 1111, 53), ("192.168.7.9", 65535, 8080), ("1.2.3.4", 5, 0)]
            for src, sport, dport in sent:
                prog.test_run(data=_udp(src=src, sport=sport, dport=dport))
            t1 = time.monotonic_ns()
            records = [Event.decode(r) for r in rb.read()]
    import ipaddress

    assert [(str(ipaddress.IPv4Address(e.saddr)), e.sport, e.dport, e.kind, e.len, e.tag)
            for e in records] == [(s, sp, dp, 3, 0, b"") for s, sp, dp in sent if dp]
    assert all(t0 <= e.ts <= t1 for e in records)


def test_ringbuf_output_reserve_discard_and_numpy_dtype() -> None:
    np = pytest.importorskip("numpy")
    rec = -32  # an Event on the stack for bpf_ringbuf_output
    with ebpf.Map.create(ebpf.MapType.RINGBUF, max_entries=4096) as ring:
        insns = [
            *_udp_prologue("out"),
            asm.mov(R7, R3),
            Event.zero(R10, rec), Event.store(R10, "dport", R7, off=rec),
            Event.store(R10, "kind", 1, off=rec), Event.store(R10, "sport", 4242, off=rec),
            Event.store(R10, "tag", ord("o"), off=rec, index=0),
            ringbuf.output(ring, fp(rec), Event.size),
            # a reserved record that is discarded never reaches the reader
            ringbuf.reserve(ring, Event.size, "out"),
            asm.mov(R6, R0), Event.zero(R6), Event.store(R6, "kind", 2),
            asm.jeq(R7, 7, "discard"),
            ringbuf.submit(R6), asm.ja("out"),
            asm.label("discard"), ringbuf.discard(R6),
            asm.label("out"), xdp.ret(xdp.Action.PASS),
        ]
        with ebpf.Program.load(XDP, insns) as prog, RingBuffer(ring) as rb:
            for port in (7, 8):
                prog.test_run(data=_udp(dport=port))
            arr = rb.read_batch(dtype=Event.dtype)
    assert isinstance(arr, np.ndarray)
    assert arr["kind"].tolist() == [1, 1, 2]
    assert arr["dport"].tolist() == [7, 8, 0]
    assert arr["sport"].tolist() == [4242, 4242, 0]  # be16 field: numpy reads it big-endian
    assert arr["tag"].tolist() == [b"o", b"o", b""]


# --- rate limiter ---------------------------------------------------------------------------


def _limiter(buckets: ebpf.Map, verdicts: ebpf.Map, **config: object) -> list[asm.Item]:
    """Bucket per UDP source port; counts passes (slot 0) and drops (slot 1)."""
    return [
        *_udp_prologue("out"),
        asm.store(asm.W, R10, -8, R2),
        rate_limit.check(buckets, fp(-8), on_drop="drop", stack=-72,  # type: ignore[arg-type]
                         **config),
        maps.array_add(verdicts, 0, 1, key_stack=-4), asm.ja("out"),
        asm.label("drop"),
        maps.array_add(verdicts, 1, 1, key_stack=-4),
        *xdp.ret(xdp.Action.DROP),
        asm.label("out"), *xdp.ret(xdp.Action.PASS),
    ]


@pytest.mark.parametrize("mode", ["constants", "config_map"])
def test_token_bucket_passes_burst_then_drops_until_time_advances(mode: str) -> None:
    cfg = rate_limit.Config(rate=1, burst=5)  # one token per second: no refill during the test
    with ebpf.Map.create(HASH, key_size=4, value_size=16, max_entries=16) as buckets, \
            ebpf.Map.create(ARRAY, key_size=4, value_size=8, max_entries=2) as verdicts, \
            ebpf.Map.create(ARRAY, key_size=4, value_size=24, max_entries=1) as config:
        kw: dict[str, object] = {"config": cfg} if mode == "constants" else {
            "config_map": config}
        config[0] = cfg.encode()
        with ebpf.Program.load(XDP, _limiter(buckets, verdicts, **kw)) as prog:
            def run(n: int, sport: int = 1000) -> tuple[int, int]:
                verdicts[0] = verdicts[1] = 0
                for _ in range(n):
                    prog.test_run(data=_udp(sport=sport))
                return verdicts[0], verdicts[1]

            assert run(8) == (5, 3)           # the burst, then drops
            assert run(3, sport=2000) == (3, 0)  # another key has its own bucket
            # 2.5 s ago with no tokens: 2 refilled (and half a token kept)
            buckets[1000] = rate_limit.bucket(0, time.monotonic_ns() - 2_500_000_000)
            assert run(4) == (2, 2)
            assert 0.4 < rate_limit.tokens(buckets[1000]) < 0.6
            # an hour ago (or at boot, on a machine up for less): refilled to the burst, not
            # beyond (no overflow either); the monotonic clock starts at boot, so clamp at 0
            buckets[1000] = rate_limit.bucket(0, max(0, time.monotonic_ns() - 3600 * 10**9))
            assert run(7) == (5, 2)
            # a bucket from the future (clock skew) refills nothing
            buckets[1000] = rate_limit.bucket(1, time.monotonic_ns() + 10**12)
            assert run(3) == (1, 2)
            if mode == "config_map":
                config[0] = rate_limit.Config(rate=0, burst=1).encode()  # rate 0: disabled
                assert run(10) == (10, 0)


def test_token_bucket_high_rate_refills_by_elapsed_time() -> None:
    """1e6 tokens/s: passes are the burst plus one per microsecond elapsed, no more."""
    cfg = rate_limit.Config(rate=1_000_000, burst=2_000)
    with ebpf.Map.create(HASH, key_size=4, value_size=16, max_entries=4) as buckets, \
            ebpf.Map.create(ARRAY, key_size=4, value_size=8, max_entries=2) as verdicts, \
            ebpf.Program.load(XDP, _limiter(buckets, verdicts, config=cfg)) as prog:
        frame = _udp(sport=7)
        t0 = time.monotonic_ns()
        buckets[7] = rate_limit.bucket(0, t0 - 10**9)  # refilled long ago: full
        prog.test_run(data=frame, repeat=20000)
        t1 = time.monotonic_ns()
        passed, dropped = verdicts[0], verdicts[1]
        assert passed + dropped == 20000
        assert 2000 <= passed <= 2000 + (t1 - t0) // 1000 + 1
        # a bucket emptied 1 ms ago holds 1000 tokens (+1 per us since)
        t0 = time.monotonic_ns()
        buckets[7] = rate_limit.bucket(0, t0 - 1_000_000)
        verdicts[0] = verdicts[1] = 0
        prog.test_run(data=frame, repeat=500)
        t1 = time.monotonic_ns()
        assert verdicts[0] == 500
        assert 500 <= rate_limit.tokens(buckets[7]) <= 500 + (t1 - t0) / 1000 + 1


