"""Programs of every type: load, test_run with data and context, calls, verifier errors."""

from __future__ import annotations

import ctypes
import os
import struct

import pytest

import ebpf
from ebpf import asm, errors, features, packet
from ebpf._uapi import _generated_types as _t
from ebpf.asm import R0, R1, R2, R3, R6, Helper
from ebpf.testing.plugin import check_probe

PT = ebpf.ProgramType
AT = ebpf.AttachType


def _udp_frame(payload: bytes = b"hello") -> bytes:
    pkt = (packet.Ethernet(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
           / packet.IPv4(src="10.0.0.1", dst="10.0.0.2")
           / packet.UDP(sport=1234, dport=53) / payload)
    return bytes(pkt)


# Minimal load settings per program type (what the verifier insists on).
_LOAD: dict[str, dict[str, object]] = {
    "CGROUP_SOCK_ADDR": {"expected_attach_type": AT.CGROUP_INET4_CONNECT},
    "CGROUP_SOCKOPT": {"expected_attach_type": AT.CGROUP_GETSOCKOPT},
    "SK_LOOKUP": {"expected_attach_type": AT.SK_LOOKUP},
    "NETFILTER": {"expected_attach_type": AT.NETFILTER},
    "SYSCALL": {"flags": ebpf.ProgramFlags.SLEEPABLE},
    "CGROUP_SKB": {}, "SK_SKB": {}, "SK_MSG": {},
}
_NEEDS_TARGET = {"TRACING", "LSM", "EXT", "STRUCT_OPS"}


@pytest.mark.parametrize("pt", [p for p in PT if p.name not in ("UNSPEC", *_NEEDS_TARGET)],
                         ids=lambda p: p.name)
def test_every_program_type_loads(pt: ebpf.ProgramType) -> None:
    """Types that need an attach target (tracing, LSM, ext, struct_ops) are in the link tests."""
    check_probe(features.have_program_type, pt)  # skips on "no" or on the errno that hid it
    ret = 1 if pt.name in ("CGROUP_SKB", "CGROUP_SOCK", "CGROUP_DEVICE", "CGROUP_SOCK_ADDR",
                           "CGROUP_SYSCTL", "CGROUP_SOCKOPT", "SK_LOOKUP") else 0
    kw = dict(_LOAD.get(pt.name, {}))
    with ebpf.Program.load(pt, [asm.mov(R0, ret), asm.exit()], name=f"t_{pt.name.lower()}",
                           **kw) as prog:  # type: ignore[arg-type]
        info = prog.info()
        assert info.type is pt
        assert info.name == f"t_{pt.name.lower()}"[:15]


def test_xdp_data_and_ctx() -> None:
    # Swap source and destination MACs, return XDP_TX.
    prog_text = """
        r2 = *(u32 *)(r1 + 4)
        r1 = *(u32 *)(r1 + 0)
        r3 = r1
        r3 += 12
        if r3 > r2 goto drop
        r4 = *(u32 *)(r1 + 0)
        r5 = *(u16 *)(r1 + 4)
        r6 = *(u32 *)(r1 + 6)
        r7 = *(u16 *)(r1 + 10)
        *(u32 *)(r1 + 0) = r6
        *(u16 *)(r1 + 4) = r7
        *(u32 *)(r1 + 6) = r4
        *(u16 *)(r1 + 10) = r5
        r0 = 3
        exit
    drop:
        r0 = 1
        exit
    """
    frame = _udp_frame()
    with ebpf.Program.load(PT.XDP, prog_text) as prog:
        ctx = _t.XdpMd()
        ctx.data_end = len(frame)
        ctx.ingress_ifindex = 1
        res = prog.test_run(frame, ctx=ctx, repeat=101)  # odd: the kernel reuses the buffer
        assert res.retval == ebpf.XDPAction.TX
        assert res.data is not None
        assert res.data[:6] == frame[6:12] and res.data[6:12] == frame[:6]
        assert res.data[12:] == frame[12:]
        assert res.ctx is not None and len(res.ctx) == ctypes.sizeof(_t.XdpMd)
        assert res.duration_ns > 0


def test_xdp_adjust_head_grows_output() -> None:
    insns = [
        asm.mov(R6, R1),
        asm.mov(R2, -4),
        asm.call(Helper.XDP_ADJUST_HEAD),
        asm.mov(R0, ebpf.XDPAction.PASS),
        asm.exit(),
    ]
    frame = _udp_frame()
    with ebpf.Program.load(PT.XDP, insns) as prog:
        res = prog.test_run(frame)
        assert res.retval == ebpf.XDPAction.PASS
        assert res.data is not None and len(res.data) == len(frame) + 4


def test_sched_cls_ctx_mark_round_trip() -> None:
    mark_off = _t.SkBuff.mark.offset
    insns = [
        asm.load(asm.W, R2, R1, mark_off),
        asm.add(R2, 1),
        asm.store(asm.W, R1, mark_off, R2),
        asm.mov(R0, 0),
        asm.exit(),
    ]
    with ebpf.Program.load(PT.SCHED_CLS, insns) as prog:
        skb = _t.SkBuff()
        skb.mark = 41
        res = prog.test_run(_udp_frame(), ctx=skb)
        assert res.ctx is not None
        out = _t.SkBuff.from_buffer_copy(res.ctx)
        assert out.mark == 42


def test_socket_filter_sees_l3_length() -> None:
    frame = _udp_frame(b"x" * 50)
    insns = [asm.load(asm.W, R0, R1, _t.SkBuff.len.offset), asm.exit()]
    with ebpf.Program.load(PT.SOCKET_FILTER, insns) as prog:
        assert prog.test_run(frame).retval == len(frame) - 14  # ETH_HLEN pulled


def test_raw_tracepoint_ctx_and_cpu() -> None:
    # return args[0] + args[1]; runs on the CPU asked for.
    insns = [
        asm.load(asm.DW, R0, R1, 0),
        asm.load(asm.DW, R2, R1, 8),
        asm.add(R0, R2),
        asm.exit(),
    ]
    from ebpf._uapi import _defines

    with ebpf.Program.load(PT.RAW_TRACEPOINT, insns) as prog:
        ctx = struct.pack("<QQ", 40, 2)
        assert prog.test_run(ctx=ctx).retval == 42
        cpu = max(ebpf.platform.online_cpus())
        res = prog.test_run(ctx=ctx, flags=_defines.BPF_F_TEST_RUN_ON_CPU, cpu=cpu, repeat=0)
        assert res.retval == 42


def test_sleepable_syscall_program_writes_ctx_back() -> None:
    insns = [
        asm.load(asm.W, R2, R1, 0),
        asm.mul(R2, 3),
        asm.store(asm.W, R1, 4, R2),
        asm.mov(R0, 7),
        asm.exit(),
    ]
    with pytest.raises(errors.VerifierError, match="sleepable"):
        ebpf.Program.load(PT.SYSCALL, insns)
    with ebpf.Program.load(PT.SYSCALL, insns, flags=ebpf.ProgramFlags.SLEEPABLE) as prog:
        res = prog.test_run(ctx=struct.pack("<II", 14, 0))
        assert res.retval == 7
        assert res.ctx is not None and struct.unpack("<II", res.ctx) == (14, 42)


def test_flow_dissector_and_sk_lookup_test_run() -> None:
    with ebpf.Program.load(PT.FLOW_DISSECTOR, [asm.mov(R0, 0), asm.exit()]) as prog:
        res = prog.test_run(_udp_frame(), data_out_size=ctypes.sizeof(_t.BpfFlowKeys))
        assert res.retval == 0
    with ebpf.Program.load(PT.SK_LOOKUP, [asm.mov(R0, 1), asm.exit()],
                           expected_attach_type=AT.SK_LOOKUP) as prog:
        ctx = _t.BpfSkLookup()
        ctx.family = 2  # AF_INET
        ctx.protocol = 6
        ctx.local_port = 7777
        res = prog.test_run(ctx=bytes(ctx)[: _t.BpfSkLookup.local_port.offset + 4]
                            + bytes(ctypes.sizeof(ctx) - _t.BpfSkLookup.local_port.offset - 4))
        assert res.retval == 1


def test_cgroup_skb_test_run() -> None:
    with ebpf.Program.load(PT.CGROUP_SKB, [asm.mov(R0, 1), asm.exit()]) as prog:
        assert prog.test_run(_udp_frame()).retval == 1


def test_verifier_log_of_a_successful_load() -> None:
    """``log_level`` given: the log of an accepted program is kept (issue 15 item 7)."""
    insns = [asm.mov(R0, 1), asm.exit()]
    with ebpf.Program.load(PT.SOCKET_FILTER, insns) as quiet:
        assert quiet.verifier_log == ""
        assert quiet.test_run(bytes(20)).retval == 1
    with ebpf.Program.load(PT.SOCKET_FILTER, insns, log_level=1) as prog:
        assert "processed 2 insns" in prog.verifier_log
        assert prog.test_run(bytes(20)).retval == 1
    with ebpf.Program.load(PT.SOCKET_FILTER, insns, log_level=2, log_size=128) as prog:
        assert "R0=1" in prog.verifier_log  # per-instruction states; the buffer grew
        assert len(prog.verifier_log) > 128


def test_bpf_to_bpf_call_and_verifier_source_mapping() -> None:
    insns = [
        asm.mov(R1, 20),
        asm.call("double"),
        asm.add(R0, 2),
        asm.exit(),
        asm.label("double"),
        asm.mov(R0, R1),
        asm.add(R0, R1),
        asm.exit(),
    ]
    with ebpf.Program.load(PT.SOCKET_FILTER, insns) as prog:
        assert prog.test_run(bytes(20)).retval == 42
    bad = [
        asm.mov(R0, 0),
        asm.jeq(R1, 0, "out"),
        asm.label("deref"),
        asm.load(asm.DW, R0, R3, 0),   # r3 never written
        asm.label("out"),
        asm.exit(),
    ]
    with pytest.raises(errors.VerifierError) as exc:
        ebpf.Program.load(PT.SOCKET_FILTER, bad)
    e = exc.value
    assert e.insn == 2
    assert "R3 !read_ok" in str(e)
    assert "deref" in e.source


def test_tail_call_chain() -> None:
    with ebpf.Map.create(ebpf.MapType.PROG_ARRAY, key_size=4, value_size=4,
                         max_entries=4) as jmp_table:
        def stage(n: int, last: bool) -> list[asm.Item]:
            body: list[asm.Item] = [asm.mov(R6, R1)]
            if not last:
                body += [
                    asm.mov(R1, R6),
                    asm.load_map(R2, jmp_table),
                    asm.mov(R3, n + 1),
                    asm.call(Helper.TAIL_CALL),
                ]
            body += [asm.mov(R0, 100 + n), asm.exit()]
            return body

        progs = [ebpf.Program.load(PT.SOCKET_FILTER, stage(i, i == 2)) for i in range(3)]
        try:
            for i, p in enumerate(progs):
                jmp_table[i] = p.fileno()
            # 0 -> 1 -> 2, which returns 102
            assert progs[0].test_run(bytes(20)).retval == 102
            del jmp_table[2]
            assert progs[0].test_run(bytes(20)).retval == 101  # missing slot: falls through
        finally:
            for p in progs:
                p.close()


def test_kfunc_call_resolved_by_name() -> None:
    # bpf_cast_to_kern_ctx(ctx) -> struct xdp_buff *; read frame_sz from it.
    from ebpf import btf

    spec = btf.load_kernel()
    try:
        spec.find("bpf_cast_to_kern_ctx", kind=btf.Func)
    except KeyError:
        pytest.skip(f"no kfunc bpf_cast_to_kern_ctx in {os.uname().release}'s BTF (6.2)")
    xdp_buff = spec.find("xdp_buff", kind=btf.Struct)
    frame_sz = xdp_buff.member("frame_sz")
    insns = [
        asm.kfunc_call("bpf_cast_to_kern_ctx"),
        asm.load(asm.W, R0, R0, frame_sz.offset // 8),
        asm.exit(),
    ]
    with ebpf.Program.load(PT.XDP, insns) as prog:
        assert prog.test_run(_udp_frame()).retval > 0


def test_attach_to_resolves_btf_id_for_tp_btf() -> None:
    with ebpf.Program.load(PT.TRACING, [asm.mov(R0, 0), asm.exit()],
                           expected_attach_type=AT.TRACE_RAW_TP, attach_to="sys_enter") as prog:
        assert prog.info().type is PT.TRACING
    with pytest.raises(errors.NotSupportedError):
        ebpf.Program.load(PT.TRACING, [asm.mov(R0, 0), asm.exit()],
                          expected_attach_type=AT.TRACE_RAW_TP, attach_to="no_such_tp_xyz")


def test_program_from_pin_keeps_type(bpffs: str) -> None:
    path = os.path.join(bpffs, "p")
    with ebpf.Program.load(PT.XDP, [asm.mov(R0, 2), asm.exit()], name="pinme") as prog:
        prog.pin(path)
    with ebpf.Program.from_pin(path) as p2:
        assert p2.type is PT.XDP and p2.name == "pinme"
        assert p2.test_run(_udp_frame()).retval == 2
    os.unlink(path)


def test_bad_instructions_rejected_before_the_kernel() -> None:
    with pytest.raises(ValueError):
        ebpf.Program.load(PT.SOCKET_FILTER, b"\x95\x00")
    with pytest.raises(TypeError):
        ebpf.Program.load(PT.SOCKET_FILTER, 42)
