"""Callbacks without private machinery: Program.load builds the BTF func_info a callback
needs (bpf_loop, for_each_map_elem, user_ringbuf_drain, timers) from the instructions."""

from __future__ import annotations

import struct

import pytest

import ebpf
from ebpf import asm, features
from ebpf.asm import R0, R1, R2, R3, R4, R5, R6, R7, R10, Helper
from ebpf.btf import funcinfo
from ebpf.platform import Capability

pytestmark = pytest.mark.capabilities(Capability.BPF)

XDP = ebpf.ProgramType.XDP
PKT = bytes(64)


def _loop_prog(n: int) -> list[asm.Item]:
    return [
        asm.store_imm(asm.DW, R10, -8, 0),
        asm.mov(R1, n), asm.load_func(R2, "cb"), asm.mov(R3, R10), asm.add(R3, -8),
        asm.mov(R4, 0), asm.call(Helper.LOOP),
        asm.load(asm.DW, R0, R10, -8), asm.exit(),
        asm.label("cb"),  # cb(index, ctx): *ctx += index
        asm.load(asm.DW, R3, R2, 0), asm.add(R3, R1), asm.store(asm.DW, R2, 0, R3),
        asm.mov(R0, 0), asm.exit(),
    ]


def test_funcinfo_pure() -> None:
    code = asm.Instructions(_loop_prog(3)).encode()
    assert funcinfo.subprograms(code) == [0, 10]
    assert funcinfo.has_callbacks(code)
    blob, info = funcinfo.build(code, {10: "cb"})
    assert struct.unpack("<IIII", info) == (0, 3, 10, 4)
    assert b"\0main\0" in blob and b"\0cb\0" in blob
    plain = asm.Instructions([asm.mov(R0, 0), asm.exit()]).encode()
    assert not funcinfo.has_callbacks(plain) and funcinfo.for_program(plain) is None


def test_bpf_loop_without_btf() -> None:
    with ebpf.Program.load(XDP, _loop_prog(10)) as prog:
        assert prog.test_run(data=PKT).retval == sum(range(10))


def test_bpf_loop_from_bytes() -> None:
    """Raw bytes carry no labels: subprograms are found from the encoded calls."""
    code = asm.Instructions(_loop_prog(5)).encode()
    with ebpf.Program.load(XDP, code) as prog:
        assert prog.test_run(data=PKT).retval == 10


def test_for_each_map_elem_without_btf() -> None:
    with ebpf.Map.create(ebpf.MapType.ARRAY, key_size=4, value_size=8, max_entries=4) as m:
        for i in range(4):
            m[i] = (i + 1) * 10
        items: list[asm.Item] = [
            asm.store_imm(asm.DW, R10, -8, 0),
            asm.load_map(R1, m), asm.load_func(R2, "cb"), asm.mov(R3, R10), asm.add(R3, -8),
            asm.mov(R4, 0), asm.call(Helper.FOR_EACH_MAP_ELEM),
            asm.mov(R6, R0),                        # elements visited
            asm.load(asm.DW, R0, R10, -8), asm.lsh(R0, 8), asm.or_(R0, R6), asm.exit(),
            asm.label("cb"),  # cb(map, key, value, ctx): *ctx += *value
            asm.load(asm.DW, R5, R3, 0), asm.load(asm.DW, R7, R4, 0), asm.add(R7, R5),
            asm.store(asm.DW, R4, 0, R7), asm.mov(R0, 0), asm.exit(),
        ]
        with ebpf.Program.load(XDP, items) as prog:
            ret = prog.test_run(data=PKT).retval
        assert (ret >> 8, ret & 0xFF) == (100, 4)


def test_user_ringbuf_drain_without_btf(require: object) -> None:
    require(features.have_map_type, ebpf.MapType.USER_RINGBUF)  # type: ignore[operator]
    from ebpf.ringbuf import UserRingBuffer

    with ebpf.Map.create(ebpf.MapType.USER_RINGBUF, max_entries=1 << 12) as urbm:
        items: list[asm.Item] = [
            asm.store_imm(asm.DW, R10, -8, 0),
            asm.load_map(R1, urbm), asm.load_func(R2, "cb"),
            asm.mov(R3, R10), asm.add(R3, -8), asm.mov(R4, 0),
            asm.call(Helper.USER_RINGBUF_DRAIN),
            asm.load(asm.DW, R0, R10, -8), asm.exit(),
            asm.label("cb"),  # cb(dynptr, ctx): *ctx += first u64 of the sample
            asm.mov(R6, R2),
            asm.mov(R3, R1), asm.mov(R1, R10), asm.add(R1, -8), asm.mov(R2, 8),
            asm.mov(R4, 0), asm.mov(R5, 0), asm.call(Helper.DYNPTR_READ),
            asm.jne(R0, 0, "cb_out"),
            asm.load(asm.DW, R1, R10, -8),
            asm.load(asm.DW, R2, R6, 0), asm.add(R2, R1), asm.store(asm.DW, R6, 0, R2),
            asm.label("cb_out"),
            asm.mov(R0, 0), asm.exit(),
        ]
        with ebpf.Program.load(XDP, items) as prog, UserRingBuffer(urbm) as urb:
            for i in (1, 2, 3):
                urb.write(struct.pack("<Q", i))
            assert prog.test_run(data=PKT).retval == 6


def test_callback_with_given_btf_is_left_alone() -> None:
    """func_info given by the caller wins; nothing is generated."""
    code = asm.Instructions(_loop_prog(4)).encode()
    blob, info = funcinfo.build(code, params=2)
    with ebpf.btf.handle.BTFHandle.load(blob) as h, ebpf.Program.load(
            XDP, code, prog_btf_fd=h.fileno(), func_info=info,
            func_info_rec_size=funcinfo.REC_SIZE) as prog:
        assert prog.test_run(data=PKT).retval == 6
