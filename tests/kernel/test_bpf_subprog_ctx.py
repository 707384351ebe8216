"""ebpf.bpf subprograms that take the program's ``ctx``: perf output and tail calls from a
``@bpf.func``, on the kernel.

The context is passed in a register as the caller has it, so the verifier still sees
``PTR_TO_CTX`` in the callee: ``ctx.field``, ``ctx.load(T)``, ``events.output(ctx, rec)``
(``bpf_perf_event_output``) and ``progs.tail_call(ctx, i)`` work there, also through a
second level of calls. XDP programs run with ``BPF_PROG_TEST_RUN`` (hypothesis over inputs
and tail-call slots); a tracepoint's subprogram emits records for this process's
``getppid`` calls. Tail calls mixed with bpf-to-bpf calls need a JIT that supports them
(x86-64 from Linux 5.10) and at most 256 bytes of stack in each frame below the call.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ebpf import MapType, features
from ebpf.bpf import u32
from ebpf.errors import VerifierError
from ebpf.link.tracepoint import attach_tracepoint
from ebpf.testing.modules import import_source

SOURCE = '''
from ebpf import bpf
from ebpf.bpf import u32, u64, i64

class In(bpf.Struct):
    idx: u32
    a: u32

class Sample(bpf.Struct):
    a: u32
    depth: u32
    ifindex: u32
    tag: u32

samples = bpf.PerfEventArray()
progs = bpf.ProgArray(max_entries=4)
hits = bpf.Array(u64, max_entries=4)

@bpf.func
def emit(ctx: bpf.XDP, a: u32, depth: u32) -> i64:
    s = Sample(a=a, depth=depth)
    s.ifindex = ctx.ingress_ifindex
    p = ctx.load(In)                  # the packet, through the ctx parameter
    if p is not None:
        s.tag = p.a ^ 0xFFFF
    return samples.output(ctx, s)

@bpf.func
def emit_twice(a: u32, ctx) -> i64:   # a bare ctx, in any position, passed on
    r = emit(ctx, a, 1)
    return r | emit(ctx, a + 1, 2)

@bpf.xdp
def perf_sub(ctx: bpf.XDP) -> int:
    p = ctx.load(In)
    if p is None:
        return bpf.XDP_ABORTED
    if emit_twice(p.a, ctx) != 0:
        return bpf.XDP_DROP
    return bpf.XDP_PASS

@bpf.func
def jump(ctx, idx: u32) -> u32:
    hits[0] += 1
    progs.tail_call(ctx, idx)         # the slot's program ends jump: its result is jump's
    hits[1] += 1                      # fell through: an empty slot or out of range
    return 7

@bpf.func
def via(ctx: bpf.XDP, idx: u32) -> u32:
    return jump(ctx, idx) + 100       # two frames below the program

@bpf.xdp
def tail_sub(ctx: bpf.XDP) -> int:
    p = ctx.load(In)
    if p is None:
        return bpf.XDP_ABORTED
    return via(ctx, p.idx) + 1000     # the caller goes on after the tail call

@bpf.xdp
def drop(ctx: bpf.XDP) -> int:
    hits[2] += 1
    return bpf.XDP_DROP

@bpf.xdp
def tx(ctx: bpf.XDP) -> int:          # sees the same ctx (the packet) as the caller
    p = ctx.load(In)
    if p is None:
        return bpf.XDP_ABORTED
    hits[3] += p.a
    return bpf.XDP_TX

progs.set(0, drop)
progs.set(2, tx)

class Call(bpf.Struct):
    pid: u32
    tgid: u32
    depth: u32

calls = bpf.PerfEventArray()
me = bpf.const(u32, 0)

@bpf.func
def note(ctx: bpf.TracepointContext, depth: u32) -> i64:
    c = Call(depth=depth)
    t = bpf.get_current_pid_tgid()
    c.pid = t & 0xFFFFFFFF
    c.tgid = t >> 32
    return calls.output(ctx, c)

@bpf.tracepoint("syscalls/sys_enter_getppid")
def on_getppid(ctx) -> int:
    if bpf.get_current_pid_tgid() >> 32 == me:
        note(ctx, 3)
    return 0
'''


@pytest.mark.requires(features.have_map_type, MapType.PERF_EVENT_ARRAY)
def test_perf_output_from_subprograms(tmp_path: Path) -> None:
    from ebpf import bpf

    mod = import_source(tmp_path, "bpf_subctx_perf", SOURCE)
    with bpf.load(mod.perf_sub) as coll:
        coll.samples.open()

        @settings(max_examples=40, deadline=None)
        @given(a=st.integers(0, 2**32 - 1))
        def check(a: int) -> None:
            assert coll.perf_sub.test_run(mod.In(a=a).encode() + bytes(56)).retval == 2
            recs = list(coll.samples.read(mod.Sample, timeout=1.0))
            tag = (a ^ 0xFFFF) & 0xFFFFFFFF
            assert [(r.a, r.depth, r.tag) for r in recs] == [(a, 1, tag),
                                                              (u32(a + 1), 2, tag)]
            assert all(r.ifindex == recs[0].ifindex for r in recs)  # ctx fields read

        check()
        assert coll.samples.lost == 0


def test_tail_calls_from_subprograms(tmp_path: Path) -> None:
    from ebpf import bpf

    mod = import_source(tmp_path, "bpf_subctx_tail", SOURCE)
    # the tail call replaces jump's frame only: the slot program's result is what jump
    # returns to via (the kernel's semantics of tail calls from subprograms)
    expect = {0: 1100 + bpf.XDP_DROP, 2: 1100 + bpf.XDP_TX}
    with bpf.load(mod.tail_sub) as coll:
        assert set(coll.programs) == {"tail_sub", "drop", "tx"}
        seen = {"calls": 0, "fell": 0, "drop": 0, "tx": 0}

        @settings(max_examples=60, deadline=None)
        @given(idx=st.one_of(st.integers(0, 5), st.integers(0, 2**32 - 1)),
               a=st.integers(0, 1000))
        def check(idx: int, a: int) -> None:
            res = coll.tail_sub.test_run(mod.In(idx=idx, a=a).encode() + bytes(56))
            assert res.retval == expect.get(idx, 1107), idx
            seen["calls"] += 1
            seen["fell"] += idx not in expect
            seen["drop"] += idx == 0
            seen["tx"] += a if idx == 2 else 0
            assert [coll.hits[i] for i in range(4)] == [
                seen["calls"], seen["fell"], seen["drop"], seen["tx"]]

        check()


@pytest.mark.requires(features.have_map_type, MapType.PERF_EVENT_ARRAY)
def test_tracepoint_subprogram_output(tmp_path: Path) -> None:
    from ebpf import bpf

    mod = import_source(tmp_path, "bpf_subctx_tp", SOURCE)
    with bpf.load(mod.on_getppid, constants={"me": os.getpid()}) as coll:
        coll.calls.open()
        with attach_tracepoint(coll.on_getppid, "syscalls", "sys_enter_getppid"):
            for _ in range(5):
                os.getppid()
        recs = list(coll.calls.read(mod.Call, timeout=1.0))
    assert len(recs) == 5
    assert all((r.tgid, r.depth) == (os.getpid(), 3) for r in recs)


SKB = '''
from ebpf import bpf
from ebpf.bpf import u32
from ebpf.bpf.net import IPPROTO_UDP, UDP, IPv4

@bpf.func
def udp_port(skb: bpf.SocketFilter, off: u32) -> u32:
    udp = skb.load(UDP, off)          # bpf_skb_load_bytes(skb, ...) in the function
    if udp is None:
        return 0
    return udp.dport

@bpf.socket_filter
def dns_len(ctx: bpf.SocketFilter) -> int:
    ip = ctx.load(IPv4)
    if ip is None or ip.protocol != IPPROTO_UDP:
        return 0
    if udp_port(ctx, (ip.ver_ihl & 0xF) * 4) == 53:
        return ctx.len
    return 0
'''


def test_socket_filter_subprogram_reads_the_skb(tmp_path: Path) -> None:
    from ebpf import bpf, packet

    mod = import_source(tmp_path, "bpf_subctx_skb", SKB)

    def frame(dport: int) -> bytes:
        return bytes(packet.Ethernet() / packet.IPv4(src="10.0.0.1", dst="10.0.0.2")
                     / packet.UDP(dport=dport) / b"payload")

    with bpf.load(mod.dns_len) as coll:
        dns = frame(53)
        assert coll.dns_len.test_run(dns).retval == len(dns) - 14
        assert coll.dns_len.test_run(frame(80)).retval == 0
        assert coll.dns_len.test_run(dns[:14 + 20 + 4]).retval == 0   # UDP header cut


BIG_CALLER = '''
from ebpf import bpf
from ebpf.bpf import u32, u64

progs = bpf.ProgArray(max_entries=2)

@bpf.func
def jump(ctx, idx: u32) -> u32:
    progs.tail_call(ctx, idx)
    return 7

@bpf.xdp
def big(ctx: bpf.XDP) -> int:
    a = bpf.array(u64, 40)            # 320 bytes in the frame below the tail call
    a[ctx.rx_queue_index & 31] = 1
    return jump(ctx, ctx.rx_queue_index) + u32(a[3])
'''


def test_tail_call_below_a_large_frame_is_refused(tmp_path: Path) -> None:
    from ebpf import bpf

    mod = import_source(tmp_path, "bpf_subctx_big", BIG_CALLER)
    with pytest.raises(VerifierError, match=r"tail_calls are not allowed when call stack of "
                                            r"previous frames is 3\d\d bytes"):
        bpf.load(mod.big)
