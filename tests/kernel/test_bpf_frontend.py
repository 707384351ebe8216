"""ebpf.bpf end to end on the kernel: compiled Python programs loaded, run and checked.

Arithmetic is checked differentially: the same operation compiled and run by
BPF_PROG_TEST_RUN, and computed by ``bpf.emulate`` in Python, over hypothesis inputs.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ebpf import MapType, errors, features, packet
from ebpf.bpf import emulate, i8, i16, i32, i64, u8, u16, u32, u64
from ebpf.testing.modules import import_source

TYPES = [u8, u16, u32, u64, i8, i16, i32, i64]
OPS = ["+", "-", "*", "//", "%", "&", "|", "^", "<<", ">>"]
CMPS = ["<", "<=", ">", ">=", "==", "!="]


# -- differential arithmetic -----------------------------------------------------------------
def _arith_source(t: str) -> str:
    lines = [
        "from ebpf import bpf",
        "from ebpf.bpf import u8, u16, u32, u64, i8, i16, i32, i64",
        "class Io(bpf.Struct):",
        f"    a: {t}",
        f"    b: {t}",
    ]
    lines += [f"    r{k}: {t}" for k in range(len(OPS))]
    lines += [f"    c{k}: u8" for k in range(len(CMPS))]
    lines += [
        "@bpf.xdp",
        "def arith(ctx: bpf.XDP) -> int:",
        "    p = ctx.load(Io)",
        "    if p is None:",
        "        return bpf.XDP_ABORTED",
        "    a = p.a",
        "    b = p.b",
    ]
    lines += [f"    p.r{k} = a {op} b" for k, op in enumerate(OPS)]
    lines += [f"    p.c{k} = a {op} b" for k, op in enumerate(CMPS)]
    lines += ["    return bpf.XDP_PASS", ""]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def arith(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[type, Any]]:
    from ebpf import bpf

    tmp = tmp_path_factory.mktemp("arith")
    loaded: dict[type, Any] = {}
    try:
        for t in TYPES:
            mod = import_source(tmp, f"bpf_arith_{t.__name__}", _arith_source(t.__name__))
            coll = bpf.load(mod.arith)
            assert coll.collection.btf_error is None
            loaded[t] = (coll, mod.Io)
        yield loaded
    finally:
        for coll, _ in loaded.values():
            coll.close()


def _ints(t: type) -> st.SearchStrategy[int]:
    lo, hi = t.min(), t.max()  # type: ignore[attr-defined]
    edge = st.sampled_from([lo, hi, 0, 1, -1 if lo < 0 else 2, lo + 1, hi - 1, 7])
    return st.one_of(edge, st.integers(lo, hi))


@pytest.mark.parametrize("t", TYPES, ids=[t.__name__ for t in TYPES])
def test_arithmetic_matches_emulation(arith: dict[type, Any], t: type) -> None:
    coll, io = arith[t]

    @settings(max_examples=150, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(a=_ints(t), b=_ints(t))
    def check(a: int, b: int) -> None:
        data = io(a=a, b=b).encode()
        res = coll.arith.test_run(data)
        assert res.retval == 2
        out = io.decode(res.data)
        for k, op in enumerate(OPS):
            assert getattr(out, f"r{k}") == emulate.binop(op, a, b, t), (op, a, b)
        for k, op in enumerate(CMPS):
            assert getattr(out, f"c{k}") == int(emulate.compare(op, a, b, t)), (op, a, b)

    check()


DIVISORS = [7, -3, -(2 ** 31), -(2 ** 40), 2 ** 40]   # imm, negated imm, imm64 paths


@pytest.mark.parametrize("t", [i32, i64], ids=["i32", "i64"])
def test_signed_division_by_constants(tmp_path: Path, t: type) -> None:
    """Signed ``//`` and ``%`` by constants of every sign and width (no ISA v4 needed:
    magnitudes and sign fix-ups), against the emulation."""
    from ebpf import bpf

    name = t.__name__
    divisors = [d for d in DIVISORS if t.min() <= d <= t.max()]  # type: ignore[attr-defined]
    lines = ["from ebpf import bpf", f"from ebpf.bpf import {name}",
             "class Io(bpf.Struct):", f"    a: {name}"]
    lines += [f"    q{k}: {name}\n    m{k}: {name}" for k in range(len(divisors))]
    lines += ["@bpf.xdp", "def divs(ctx: bpf.XDP) -> int:", "    p = ctx.load(Io)",
              "    if p is None:", "        return bpf.XDP_ABORTED", "    a = p.a"]
    lines += [f"    p.q{k} = a // ({d})\n    p.m{k} = a % ({d})"
              for k, d in enumerate(divisors)]
    lines += ["    return bpf.XDP_PASS", ""]
    mod = import_source(tmp_path, f"bpf_divs_{name}", "\n".join(lines))
    with bpf.load(mod.divs) as coll:
        @settings(max_examples=100, deadline=None)
        @given(a=_ints(t))
        def check(a: int) -> None:
            res = coll.divs.test_run(mod.Io(a=a).encode())
            assert res.retval == 2
            out = mod.Io.decode(res.data)
            for k, d in enumerate(divisors):
                assert getattr(out, f"q{k}") == emulate.binop("//", a, d, t), (a, d)
                assert getattr(out, f"m{k}") == emulate.binop("%", a, d, t), (a, d)

        check()


# -- control flow, inference, mixed types --------------------------------------------------
FLOW = '''
from ebpf import bpf
from ebpf.bpf import u8, u16, u32, u64, i32, i64

class Io(bpf.Struct):
    a: u32
    b: i32
    loop_sum: u64
    while_out: u32
    mixed: i64
    chain: u8
    logic: u8
    ifexp: u32
    casts: u64
    early: u32
    called: u32

@bpf.func
def rotl(x: u32, n: u32) -> u32:
    n = n & 31
    return (x << n) | (x >> ((32 - n) & 31))

@bpf.func
def mix(a: u32, b: u32) -> u32:
    if a == 0:
        return 0xDEAD
    return rotl(a * 2654435761, b) ^ b

@bpf.xdp
def flow(ctx: bpf.XDP) -> int:
    p = ctx.load(Io)
    if p is None:
        return bpf.XDP_ABORTED
    a = p.a
    b = p.b
    total: u64 = 0
    for i in range(a & 31):
        if i == 5:
            continue
        if i > 20:
            break
        total += i * 3
    p.loop_sum = total
    n = a & 0xFF
    steps: u32 = 0
    while n != 1 and steps < 50:
        if n % 2 == 0:
            n = n // 2
        else:
            n = 3 * n + 1
        steps += 1
    p.while_out = steps
    p.mixed = i64(b) * 2 - a
    p.chain = 10 < a < 1000
    p.logic = (a > 5 and b < 0) or not (a & 1)
    p.ifexp = a * 2 if b > 0 else a + 7
    p.casts = u8(a) + u16(b) + u64(i32(b))
    p.called = mix(a, u32(b)) + 1
    if a == 12345:
        p.early = 1
        return bpf.XDP_DROP
    elif a == 54321:
        p.early = 2
    else:
        p.early = 3
    return bpf.XDP_PASS
'''


def flow_reference(a: int, b: int) -> dict[str, int]:
    total = 0
    for i in range(a & 31):
        if i == 5:
            continue
        if i > 20:
            break
        total += i * 3
    n, steps = a & 0xFF, 0
    while n != 1 and steps < 50:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        n &= 0xFFFF_FFFF
        steps += 1
    return {
        "loop_sum": total, "while_out": steps,
        "mixed": i64.wrap(b * 2 - a),
        "chain": int(10 < a < 1000),
        "logic": int((a > 5 and b < 0) or not (a & 1)),
        "ifexp": u32.wrap(a * 2 if b > 0 else a + 7),
        "casts": u64.wrap(u16.wrap(u8.wrap(a) + u16.wrap(b)) + u64.wrap(b)),  # u8 + u16 is a u16
        "early": 1 if a == 12345 else 2 if a == 54321 else 3,
        "called": u32.wrap(_mix(a, u32.wrap(b)) + 1),
    }


def _mix(a: int, b: int) -> int:
    if a == 0:
        return 0xDEAD
    x, n = u32.wrap(a * 2654435761), b & 31
    return (u32.wrap(x << n) | (x >> ((32 - n) & 31))) ^ b


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    from ebpf import bpf

    mod = import_source(tmp_path_factory.mktemp("flow"), "bpf_flow", FLOW)
    with bpf.load(mod.flow) as coll:
        assert coll.collection.btf_error is None  # func info of the subprograms accepted
        assert [f[1] for f in coll.compiled["flow"].funcs] == ["flow", "mix", "rotl"]
        yield coll, mod.Io


@settings(max_examples=150, deadline=None)
@given(a=st.one_of(st.sampled_from([0, 1, 5, 6, 11, 999, 1000, 12345, 54321, 0xFFFF_FFFF]),
                   st.integers(0, 0xFFFF_FFFF)),
       b=st.one_of(st.sampled_from([0, -1, 1, -(1 << 31), (1 << 31) - 1]),
                   st.integers(-(1 << 31), (1 << 31) - 1)))
def test_control_flow_matches_python(flow: tuple[Any, Any], a: int, b: int) -> None:
    coll, io = flow
    res = coll.flow.test_run(io(a=a, b=b).encode())
    out = io.decode(res.data)
    want = flow_reference(a, b)
    assert res.retval == (1 if a == 12345 else 2)
    got = {k: getattr(out, k) for k in want}
    assert got == want


# -- packets, maps and constants -------------------------------------------------------------
FIREWALL = '''
from ebpf import bpf
from ebpf.bpf import u16, u32, u64
from ebpf.bpf.net import ETH_P_IP, IPPROTO_UDP, Ethernet, IPv4, UDP

by_proto = bpf.PerCPUArray(u64, max_entries=256)
by_port = bpf.Hash(u16, u64, max_entries=64)
last_len = bpf.Array(u32, max_entries=1)
blocked = bpf.const(u16, 9)

@bpf.xdp
def firewall(ctx: bpf.XDP) -> int:
    eth = ctx.load(Ethernet)
    if eth is None:
        return bpf.XDP_PASS
    if eth.proto != ETH_P_IP:
        return bpf.XDP_PASS
    ip = ctx.load(IPv4, 14)
    if ip is None:
        return bpf.XDP_PASS
    by_proto[ip.protocol] += 1
    if ip.protocol != IPPROTO_UDP:
        return bpf.XDP_PASS
    udp = ctx.load(UDP, 14 + (ip.ver_ihl & 0xF) * 4)
    if udp is None:
        return bpf.XDP_DROP
    by_port[udp.dport] += 1
    last_len[0] = udp.len
    if udp.dport == blocked:
        return bpf.XDP_DROP
    return bpf.XDP_PASS

@bpf.socket_filter
def only_dns(ctx: bpf.SocketFilter) -> int:
    ip = ctx.load(IPv4)
    if ip is None or ip.protocol != IPPROTO_UDP:
        return 0
    udp = ctx.load(UDP, (ip.ver_ihl & 0xF) * 4)
    if udp is None:
        return 0
    if udp.dport == 53:
        return ctx.len
    return 0
'''


@pytest.fixture(scope="module")
def fw(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    return import_source(tmp_path_factory.mktemp("fw"), "bpf_firewall", FIREWALL)


def _udp(dport: int, payload: bytes = b"x" * 10, options: bytes = b"") -> bytes:
    ip = packet.IPv4(src="10.0.0.1", dst="10.0.0.2")
    if options:
        ip = packet.IPv4(src="10.0.0.1", dst="10.0.0.2", options=options)
    return bytes(packet.Ethernet() / ip / packet.UDP(sport=1000, dport=dport) / payload)


def test_xdp_firewall_counts_and_drops(fw: ModuleType) -> None:
    from ebpf import bpf

    with bpf.load(fw.firewall) as coll:
        prog = coll.firewall
        assert prog.test_run(_udp(53)).retval == bpf.XDP_PASS
        assert prog.test_run(_udp(53)).retval == bpf.XDP_PASS
        assert prog.test_run(_udp(9)).retval == bpf.XDP_DROP
        tcp = bytes(packet.Ethernet() / packet.IPv4(src="1.1.1.1", dst="2.2.2.2")
                    / packet.TCP(sport=1, dport=2))
        assert prog.test_run(tcp).retval == bpf.XDP_PASS
        assert prog.test_run(bytes(20)).retval == bpf.XDP_PASS  # not IPv4
        assert prog.test_run(_udp(53)[:14 + 20 + 4]).retval == bpf.XDP_DROP  # short UDP
        assert sum(coll.by_proto[17]) == 4
        assert sum(coll.by_proto[6]) == 1
        assert coll.by_port[53] == 2
        assert coll.by_port[9] == 1
        assert coll.last_len[0] == 18


def test_const_is_set_before_load(fw: ModuleType) -> None:
    from ebpf import bpf

    with bpf.load(fw.firewall, constants={"blocked": 53}) as coll:
        assert coll.firewall.test_run(_udp(53)).retval == bpf.XDP_DROP
        assert coll.firewall.test_run(_udp(9)).retval == bpf.XDP_PASS
        assert coll.variables["blocked"].get() == 53
    with pytest.raises(errors.BPFError, match="no constant"):
        bpf.load(fw.firewall, constants={"nope": 1})
    with pytest.raises(errors.BPFError, match="does not fit"):
        bpf.load(fw.firewall, constants={"blocked": 1 << 16})


def test_socket_filter_reads_with_skb_load_bytes(fw: ModuleType) -> None:
    from ebpf import bpf

    with bpf.load(fw.only_dns) as coll:
        dns = _udp(53)
        assert coll.only_dns.test_run(dns).retval == len(dns) - 14
        assert coll.only_dns.test_run(_udp(80)).retval == 0
        assert coll.only_dns.test_run(dns[:14 + 20 + 4]).retval == 0  # UDP header cut


def test_line_info_reaches_the_kernel(fw: ModuleType) -> None:
    from ebpf import bpf

    with bpf.load(fw.firewall) as coll:
        assert coll.collection.btf_error is None
        info = coll.firewall.info()
        assert info.name == "firewall"
        assert getattr(info, "nr_line_info", 1) != 0


VERIFIER = '''
from ebpf import bpf
from ebpf.bpf import u32

class Rec(bpf.Struct):
    x: u32

ring = bpf.RingBuf(size=4096)

@bpf.xdp
def leaky(ctx: bpf.XDP) -> int:
    r = ring.reserve(Rec)
    if r is None:
        return bpf.XDP_PASS
    r.x = 1
    return bpf.XDP_PASS  # the reservation is never submitted
'''


def test_verifier_error_names_the_python_line(tmp_path: Path) -> None:
    from ebpf import bpf

    mod = import_source(tmp_path, "bpf_verifier_fail", VERIFIER)
    with pytest.raises(errors.VerifierError) as ei:
        bpf.load(mod.leaky)
    assert ei.value.source.endswith("bpf_verifier_fail.py:16: return bpf.XDP_PASS  # the "
                                    "reservation is never submitted"), ei.value.source
    assert "bpf_verifier_fail.py:16" in str(ei.value)
    # 6.1 says "Unreleased reference id=2 alloc_insn=5", later kernels "reference leak"
    assert "reference leak" in str(ei.value) or "Unreleased reference" in str(ei.value)


MISC = '''
from ebpf import bpf
from ebpf.bpf import u32, u64

class Stats(bpf.Struct):
    packets: u64
    bytes: u64
    last_cpu: u32

stats = bpf.Array(Stats, max_entries=1)
seen = bpf.Hash(u32, u32, max_entries=8)

@bpf.xdp
def misc(ctx: bpf.XDP) -> int:
    s = stats.lookup(0)
    if s is not None:
        s.packets += 1
        s.bytes += ctx.ingress_ifindex + 100
        s.last_cpu = bpf.get_smp_processor_id()
    r = bpf.get_prandom_u32()
    bpf.trace_printk("py-frontend %u %u", r & 1, bpf.helper.get_numa_node_id())
    seen[1] = 10
    seen[2] = 20
    seen[3] = 30
    del seen[2]
    seen[3] &= 6
    seen[4] -= 1
    return bpf.XDP_PASS
'''


def test_struct_values_helpers_and_delete(tmp_path: Path) -> None:
    from ebpf import bpf

    mod = import_source(tmp_path, "bpf_misc", MISC)
    with bpf.load(mod.misc) as coll:
        for _ in range(3):
            assert coll.misc.test_run(bytes(64)).retval == bpf.XDP_PASS
        st_ = coll.stats[0]                                     # typed by the declaration
        assert st_.packets == 3 and st_.bytes == 3 * (1 + 100)  # lo has ifindex 1
        assert 0 <= st_.last_cpu < (os.cpu_count() or 1)
        assert dict(coll.seen.items()) == {1: 10, 3: 30 & 6, 4: u32.wrap(-3)}  # -1, then -1 twice


BATCH = '''
from ebpf import bpf
from ebpf.bpf import u16, u32, u64

class Pkt(bpf.Struct):
    seq: u64
    length: u32
    proto: u16

ring = bpf.RingBuf(size=1 << 14)
counter = bpf.Array(u64, max_entries=1)

@bpf.xdp
def report(ctx: bpf.XDP) -> int:
    eth = ctx.load(bpf.net.Ethernet)
    if eth is None:
        return bpf.XDP_PASS
    rec = ring.reserve(Pkt)
    if rec is None:
        return bpf.XDP_PASS
    counter[0] += 1
    rec.seq = counter[0]
    rec.proto = eth.proto
    rec.length = 0
    for i in range(4):
        rec.length += i
    ring.submit(rec)
    return bpf.XDP_PASS
'''


@pytest.mark.requires(features.have_map_type, MapType.RINGBUF)
def test_ring_buffer_batch_decodes_with_the_struct_dtype(tmp_path: Path) -> None:
    from ebpf import bpf

    mod = import_source(tmp_path, "bpf_batch", BATCH)
    with bpf.load(mod.report) as coll:
        for proto in (0x0800, 0x86DD, 0x0806):
            frame = bytes(12) + proto.to_bytes(2, "big") + bytes(50)
            coll.report.test_run(frame)
        batch = coll.ring.read_batch(mod.Pkt)
        assert [int(x) for x in batch["seq"]] == [1, 2, 3]
        assert [int(x) for x in batch["proto"]] == [0x0800, 0x86DD, 0x0806]
        assert set(int(x) for x in batch["length"]) == {6}


# -- tracepoint + ring buffer ---------------------------------------------------------------
EXEC = '''
from ebpf import bpf
from ebpf.bpf import u32, u64

class Event(bpf.Struct):
    pid: u32
    tgid: u32
    cpu: u32
    ts: u64
    comm: bpf.bytes_[16]

events = bpf.RingBuf(size=1 << 16)
seen = bpf.Array(u64, max_entries=1)

@bpf.tracepoint("sched/sched_process_exec")
def on_exec(ctx: bpf.TracepointContext) -> int:
    e = events.reserve(Event)
    if e is None:
        return 0
    e.pid = ctx.pid
    e.tgid = bpf.get_current_pid_tgid() >> 32
    e.cpu = bpf.get_smp_processor_id()
    e.ts = bpf.ktime_get_ns()
    e.comm = bpf.get_current_comm()
    events.submit(e)
    seen[0] += 1
    return 0
'''


@pytest.mark.requires(features.have_map_type, MapType.RINGBUF)
def test_tracepoint_exec_event_through_ring_buffer(tmp_path: Path, tracefs: str) -> None:
    from ebpf import bpf
    from ebpf.link.tracepoint import attach_tracepoint

    mod = import_source(tmp_path, "bpf_execsnoop", EXEC)
    with bpf.load(mod.on_exec) as coll:
        with attach_tracepoint(coll.on_exec, "sched", "sched_process_exec"):
            child = subprocess.Popen(["/bin/true"])
            assert child.wait() == 0
        pids = [child.pid]
        events = list(coll.events.read(mod.Event, timeout=1.0))
        mine = [e for e in events if e.pid == pids[0]]
        assert mine, events
        e = mine[0]
        assert e.comm == b"true"
        assert e.tgid == pids[0]
        assert 0 <= e.cpu < os.cpu_count()  # type: ignore[operator]
        assert e.ts > 0
        assert coll.seen[0] >= len(events)
