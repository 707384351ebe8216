"""ebpf.hooks on the kernel: context fields, verdicts and argument access per program type.

Network hooks run under BPF_PROG_TEST_RUN with a context given from Python (the fields the
program reads are the ones the test set); tracing hooks are attached to functions whose
arguments are known (the kernel's bpf_fentry_test* functions, called by test_run of a
TRACING program) or to a syscall tracepoint triggered from Python.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket as pysocket
from collections.abc import Iterator

import pytest

import ebpf
from ebpf import asm, errors, packet
from ebpf._uapi import _generated_types as _t
from ebpf.asm import R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10, Helper
from ebpf.hooks import (
    cgroup,
    flow_dissector,
    kernel_types,
    kprobe,
    raw_tracepoint,
    sk_lookup,
    skb,
    socket,
    tc,
    tracepoint,
    tracing,
    xdp,
)
from ebpf.lib import call as lib_call
from ebpf.lib import fp, maps
from ebpf.lib.net import IPProto, byteorder, ipv4, udp
from ebpf.platform import Capability

pytestmark = pytest.mark.capabilities(Capability.BPF)

P, A = ebpf.ProgramType, ebpf.AttachType


def _frame(payload: bytes = b"x" * 20) -> bytes:
    return bytes(packet.Ethernet(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
                 / packet.IPv4(src="10.0.0.1", dst="10.0.0.2")
                 / packet.UDP(sport=1234, dport=5678) / payload)


@pytest.fixture
def results() -> Iterator[ebpf.Map]:
    with ebpf.Map.create(ebpf.MapType.ARRAY, key_size=4, value_size=8, max_entries=8) as m:
        yield m


def _record(results: ebpf.Map, slot: int, src: asm.Register) -> list[asm.Item]:
    """results[slot] = src (clobbers R0-R5; src must be in R6-R9)."""
    return [asm.store(asm.DW, R10, -16, src), asm.store_imm(asm.W, R10, -4, slot),
            *maps.update(results, fp(-4), fp(-16))]


# --- network hooks ------------------------------------------------------------------------------


def test_xdp_context_fields() -> None:
    frame = _frame()
    insns = [
        xdp.prologue(ctx=R6, data=R7, data_end=R8),
        asm.sub(R8, R7), asm.jne(R8, len(frame), "bad"),
        xdp.field(R2, "ingress_ifindex", R6), asm.jne(R2, 1, "bad"),
        xdp.field(R2, "rx_queue_index", R6), asm.jne(R2, 0, "bad"),
        xdp.ret(xdp.Action.TX),
        asm.label("bad"), xdp.ret(xdp.Action.ABORTED),
    ]
    ctx = _t.XdpMd(data=0, data_end=len(frame), ingress_ifindex=1, rx_queue_index=0)
    with ebpf.Program.load(xdp.PROGRAM_TYPE, insns) as prog:
        assert prog.test_run(data=frame, ctx=ctx).retval == xdp.Action.TX


def test_tc_skb_fields_read_and_written() -> None:
    insns = [
        skb.save_ctx(R6),
        tc.field(R2, "mark", R6), tc.field(R3, "priority", R6), asm.add(R2, R3),
        tc.field(R3, "cb[2]", R6), asm.add(R2, R3),
        tc.store(R6, "cb[0]", R2),
        tc.store(R6, "mark", 77),
        tc.field(R4, "protocol", R6),  # network order
        asm.jne(R4, byteorder.htons(0x0800), "bad"),
        tc.field(R4, "len", R6), asm.jne(R4, len(_frame()), "bad"),
        tc.ret(tc.Action.SHOT),
        asm.label("bad"), tc.ret(tc.Action.UNSPEC),
    ]
    ctx = _t.SkBuff(mark=5, priority=6)
    ctx.cb[2] = 1000
    with ebpf.Program.load(tc.PROGRAM_TYPE, insns) as prog:
        res = prog.test_run(data=_frame(), ctx=ctx)
    assert res.retval == tc.Action.SHOT
    out = _t.SkBuff.from_buffer_copy(res.ctx or b"")
    assert out.mark == 77 and out.cb[0] == 5 + 6 + 1000


def test_tc_action_values_match_the_kernel() -> None:
    """TC_ACT_* are #defines (not in BTF): check two the kernel treats specially.
    test_run reports any value, so check against tc's documented numbers instead."""
    assert (tc.Action.OK, tc.Action.SHOT, tc.Action.REDIRECT, tc.Action.UNSPEC) == (0, 2, 7, -1)
    with ebpf.Program.load(tc.PROGRAM_TYPE, tc.ret(tc.Action.SHOT)) as prog:
        assert prog.test_run(data=_frame()).retval == 2


@pytest.mark.parametrize("size,keep", [(54, socket.DROP), (55, socket.KEEP_ALL)])
def test_socket_filter_verdict_by_length(size: int, keep: int) -> None:
    # test_run hands a socket filter the packet from the network header: len excludes 14
    insns = [
        skb.field(R2, "len"), asm.jgt(R2, 40, "keep"),
        socket.ret(socket.DROP),
        asm.label("keep"), socket.ret(socket.KEEP_ALL),
    ]
    frame = (_frame() + bytes(100))[:size]
    with ebpf.Program.load(socket.PROGRAM_TYPE, insns) as prog:
        assert prog.test_run(data=frame).retval == keep


def _cgroup_skb_test_run_sees_packet() -> bool:
    """Whether test_run sets data/data_end for CGROUP_SKB (a later kernel fix, covered by
    the selftest cgroup_skb_prog_run_direct_packet_access; 6.1 leaves them unset, so
    every bounds check fails there, while the real cgroup hook computes them)."""
    insns = [skb.prologue(ctx=R6, data=R7, data_end=R8), asm.mov(R0, 0),
             asm.mov(R1, R7), asm.add(R1, 20), asm.jgt(R1, R8, "out"),
             asm.mov(R0, 1), asm.label("out"), asm.exit()]
    with ebpf.Program.load(P.CGROUP_SKB, insns) as prog:
        return prog.test_run(data=_frame()).retval == 1


def test_cgroup_skb_verdict_on_udp_port() -> None:
    # cgroup skb programs see the packet from the network header on
    if not _cgroup_skb_test_run_sees_packet():
        pytest.skip(f"BPF_PROG_TEST_RUN of CGROUP_SKB leaves data/data_end unset on "
                    f"{os.uname().release} (fixed in later kernels)")
    insns = [
        skb.prologue(ctx=R6, data=R7, data_end=R8),
        ipv4.parse(R7, R8, l4=R4, proto=R2, on_short="reject", tmp=R1),
        asm.jne(R2, IPProto.UDP, "reject"),
        udp.parse(R4, R8, on_short="reject", tmp=R1, dport=R3),
        asm.jne(R3, 5678, "reject"),
        cgroup.ret(cgroup.Verdict.ALLOW),
        asm.label("reject"), cgroup.ret(cgroup.Verdict.REJECT),
    ]
    with ebpf.Program.load(P.CGROUP_SKB, insns) as prog:
        assert prog.test_run(data=_frame()).retval == cgroup.Verdict.ALLOW
        other = bytes(packet.Ethernet() / packet.IPv4() / packet.UDP(dport=1))
        assert prog.test_run(data=other).retval == cgroup.Verdict.REJECT


def test_sk_lookup_context() -> None:
    insns = [
        sk_lookup.field(R2, "local_port"), asm.jne(R2, 8080, "drop"),  # host order
        sk_lookup.field(R2, "remote_port"), asm.jne(R2, byteorder.htons(1234), "drop"),
        sk_lookup.field(R2, "local_ip4"), asm.jne32(R2, ipv4.address("127.0.0.2"), "drop"),
        sk_lookup.field(R2, "protocol"), asm.jne(R2, IPProto.TCP, "drop"),
        sk_lookup.ret(sk_lookup.Verdict.PASS),
        asm.label("drop"), sk_lookup.ret(sk_lookup.Verdict.DROP),
    ]

    def ctx(local_port: int) -> _t.BpfSkLookup:
        c = _t.BpfSkLookup(family=pysocket.AF_INET, protocol=IPProto.TCP,
                           remote_ip4=ipv4.address("127.0.0.1"),
                           local_ip4=ipv4.address("127.0.0.2"),
                           remote_port=byteorder.htons(1234), local_port=local_port)
        return c

    with ebpf.Program.load(sk_lookup.PROGRAM_TYPE, insns,
                           expected_attach_type=A.SK_LOOKUP) as prog:
        assert prog.test_run(ctx=ctx(8080)).retval == sk_lookup.Verdict.PASS
        assert prog.test_run(ctx=ctx(8081)).retval == sk_lookup.Verdict.DROP


def test_flow_dissector_built_with_the_parsers() -> None:
    """A dissector for IPv4/UDP: starts at keys->nhoff, fills the keys the kernel reads."""
    fd = flow_dissector
    insns = [
        fd.save_ctx(R6), fd.keys(R9, R6),
        fd.data(R7, R6), fd.data_end(R8, R6),
        fd.key(R2, R9, "nhoff"), asm.jgt(R2, 1024, "drop"),  # the verifier needs a bound
        asm.mov(R5, R7), asm.add(R5, R2),  # l3 = data + nhoff
        ipv4.parse(R5, R8, l4=R4, proto=R2, on_short="drop", tmp=R1),
        fd.store_key(R9, "ip_proto", R2),
        asm.load(asm.W, R1, R5, ipv4.SADDR), fd.store_key(R9, "ipv4_src", R1),
        asm.load(asm.W, R1, R5, ipv4.DADDR), fd.store_key(R9, "ipv4_dst", R1),
        asm.mov(R1, R4), asm.sub(R1, R7), fd.store_key(R9, "thoff", R1),
        asm.jne(R2, IPProto.UDP, "ok"),
        udp.parse(R4, R8, on_short="drop", tmp=R1),
        asm.load(asm.H, R1, R4, udp.SPORT), fd.store_key(R9, "sport", R1),  # network order
        asm.load(asm.H, R1, R4, udp.DPORT), fd.store_key(R9, "dport", R1),
        asm.label("ok"), fd.ret(fd.Result.OK),
        asm.label("drop"), fd.ret(fd.Result.DROP),
    ]
    frame = bytes(packet.Ethernet() / packet.IPv4(src="10.9.8.7", dst="1.2.3.4", options=bytes(4))
                  / packet.UDP(sport=1111, dport=2222))
    with ebpf.Program.load(fd.PROGRAM_TYPE, insns) as prog:
        res = prog.test_run(data=frame)
        assert res.retval == fd.Result.OK
        keys = _t.BpfFlowKeys.from_buffer_copy((res.data or b"")[:ctypes.sizeof(_t.BpfFlowKeys)])
        assert (keys.nhoff, keys.thoff, keys.ip_proto) == (14, 38, 17)
        assert keys.ipv4_src == ipv4.address("10.9.8.7")
        assert keys.ipv4_dst == ipv4.address("1.2.3.4")
        assert (keys.sport, keys.dport) == (byteorder.htons(1111), byteorder.htons(2222))
        assert prog.test_run(data=frame[:30]).retval == fd.Result.DROP


# --- tracing hooks ------------------------------------------------------------------------------


def test_raw_tracepoint_args() -> None:
    insns = [raw_tracepoint.arg(R2, 0), raw_tracepoint.arg(R3, 2), asm.lsh(R3, 4),
             asm.add(R2, R3), *raw_tracepoint.ret(R2)]
    args = (ctypes.c_uint64 * 3)(5, 999, 7)
    with ebpf.Program.load(raw_tracepoint.PROGRAM_TYPE, insns) as prog:
        assert prog.test_run(ctx=bytes(args)).retval == 5 + (7 << 4)


def _trigger() -> ebpf.Program:
    """A TRACING program whose test_run calls bpf_fentry_test1(1), bpf_fentry_test2(2, 3)..."""
    try:
        return ebpf.Program.load(P.TRACING, [asm.mov(R0, 0), asm.exit()],
                                 expected_attach_type=A.TRACE_FENTRY,
                                 attach_to="bpf_fentry_test1")
    except errors.SyscallError as e:
        if e.errno in (errno.EPERM, errno.ENOTSUPP if hasattr(errno, "ENOTSUPP") else 524):
            pytest.skip(f"fentry programs are refused here: {e}")
        raise


def _only_this_process(out: str) -> list[asm.Instruction]:
    return [asm.call(Helper.GET_CURRENT_PID_TGID), asm.rsh(R0, 32),
            asm.jne(R0, os.getpid(), out)]


def test_fentry_and_fexit_arguments(results: ebpf.Map) -> None:
    from ebpf.link.tracing import attach_tracing

    entry = [
        tracing.save_ctx(R6), *_only_this_process("out"),
        tracing.arg(R7, 0, R6), tracing.arg(R8, 1, R6),
        *_record(results, 0, R7), *_record(results, 1, R8),
        asm.label("out"), *tracing.ret(0),
    ]
    exit_ = [
        tracing.save_ctx(R6), *_only_this_process("out"),
        tracing.arg(R7, 0, R6), tracing.ret_value(R8, 1, R6),
        *_record(results, 2, R7), *_record(results, 3, R8),
        asm.label("out"), *tracing.ret(0),
    ]
    with _trigger() as trigger, \
            ebpf.Program.load(P.TRACING, entry, expected_attach_type=A.TRACE_FENTRY,
                              attach_to="bpf_fentry_test2") as fentry, \
            ebpf.Program.load(P.TRACING, exit_, expected_attach_type=A.TRACE_FEXIT,
                              attach_to="bpf_fentry_test1") as fexit, \
            attach_tracing(fentry), attach_tracing(fexit):
        trigger.test_run()
    # bpf_fentry_test2(int a = 2, u64 b = 3); bpf_fentry_test1(int a = 1) returns a + 1
    assert [results[i] for i in range(4)] == [2, 3, 1, 2]


def _write_from(fd_no: int, data: bytes) -> None:
    """write(fd_no, data) on a pipe, with fd_no chosen by the test to recognise the call."""
    r, w = os.pipe()
    try:
        fd = os.dup2(w, fd_no)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
    finally:
        os.close(r)
        os.close(w)


def test_kprobe_arguments_return_value_and_btf_offsets(results: ebpf.Map,
                                                       tracefs: str) -> None:
    """vfs_write(file, buf, count, pos) from our write(): arg 2 is count, the return value
    is count too; task->tgid read at the offset BTF gives equals our pid."""
    from ebpf.link.kprobe import attach_kprobe

    tgid_off, tgid_size = kernel_types.member("task_struct", "tgid")
    entry = [
        kprobe.save_ctx(R6), *_only_this_process("out"),
        kprobe.arg(R7, 2, R6), asm.jne(R7, 4321, "out"),
        *_record(results, 0, R7),
        asm.call(Helper.GET_CURRENT_TASK), asm.mov(R3, R0), asm.add(R3, tgid_off),
        asm.store_imm(asm.DW, R10, -24, 0),
        *lib_call(Helper.PROBE_READ_KERNEL, fp(-24), tgid_size, R3),
        asm.load(asm.DW, R8, R10, -24), *_record(results, 1, R8),
        asm.label("out"), *kprobe.ret(0),
    ]
    ret = [
        kprobe.save_ctx(R6), *_only_this_process("out"),
        kprobe.ret_value(R7, R6), asm.jne(R7, 4321, "out"), *_record(results, 2, R7),
        asm.label("out"), *kprobe.ret(0),
    ]
    with ebpf.Program.load(P.KPROBE, entry) as kp, ebpf.Program.load(P.KPROBE, ret) as krp:
        try:
            links = [attach_kprobe(kp, "vfs_write"), attach_kprobe(krp, "vfs_write",
                                                                   retprobe=True)]
        except (LookupError, errors.NotSupportedError) as e:
            pytest.skip(f"cannot kprobe vfs_write: {e}")
        try:
            _write_from(1009, b"k" * 4321)
        finally:
            for link in links:
                link.close()
    assert [results[i] for i in range(3)] == [4321, os.getpid(), 4321]


def test_tracepoint_fields_from_tracefs_and_btf_offsets(results: ebpf.Map, tracefs: str) -> None:
    from ebpf.link.tracepoint import attach_tracepoint

    try:
        fmt = tracepoint.format("syscalls", "sys_enter_write")
    except (LookupError, errors.NotSupportedError, OSError) as e:
        pytest.skip(f"no syscalls:sys_enter_write tracepoint: {e}")
    tgid_off, tgid_size = kernel_types.member("task_struct", "tgid")
    insns = [
        tracepoint.save_ctx(R6), *_only_this_process("out"),
        *tracepoint.field(R7, fmt, "fd", R6), asm.jne(R7, 1000 + 7, "out"),
        *tracepoint.field(R8, fmt, "count", R6),
        *_record(results, 0, R8),
        # task->tgid at the offset the kernel's BTF gives (kernel_types)
        asm.call(Helper.GET_CURRENT_TASK), asm.mov(R3, R0), asm.add(R3, tgid_off),
        asm.store_imm(asm.DW, R10, -24, 0),
        *lib_call(Helper.PROBE_READ_KERNEL, fp(-24), tgid_size, R3),
        asm.load(asm.DW, R8, R10, -24), *_record(results, 1, R8),
        asm.label("out"), *tracepoint.ret(0),
    ]
    with ebpf.Program.load(tracepoint.PROGRAM_TYPE, insns) as prog, \
            attach_tracepoint(prog, "syscalls", "sys_enter_write"):
        _write_from(1007, b"x" * 123)
    assert [results[0], results[1]] == [123, os.getpid()]


def test_kernel_types_resolve_from_btf(results: ebpf.Map) -> None:
    """task->tgid through bpf_get_current_task_btf(), offset from the kernel's BTF."""
    from ebpf.link.tracing import attach_tracing

    insns = [
        *_only_this_process("out"),
        asm.call(Helper.GET_CURRENT_TASK_BTF),
        kernel_types.load(R7, R0, "task_struct", "tgid"),
        *_record(results, 0, R7),
        asm.label("out"), *tracing.ret(0),
    ]
    with _trigger() as trigger, \
            ebpf.Program.load(P.TRACING, insns, expected_attach_type=A.TRACE_FENTRY,
                              attach_to="bpf_fentry_test1") as prog, attach_tracing(prog):
        trigger.test_run()
    assert results[0] == os.getpid()


