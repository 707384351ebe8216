"""Property tests: ``assemble(disassemble(x)) == x`` for every valid encoding, and decode/encode."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ebpf import asm
from ebpf.asm import Instruction, Register, Size
from ebpf.errors import ParseError

regs = st.sampled_from(list(Register))
wregs = st.sampled_from(list(Register)[:10])
s32 = st.integers(-(2**31), 2**31 - 1)
u32 = st.integers(0, 2**32 - 1)
s16 = st.integers(-(2**15), 2**15 - 1)
sizes = st.sampled_from(list(Size))
targets = st.one_of(s16, st.integers(-4, 4))

ALU = ["add", "sub", "mul", "div", "sdiv", "or_", "and_", "lsh", "rsh", "mod", "smod", "xor",
       "mov", "arsh"]
JMP = ["jeq", "jne", "jgt", "jge", "jlt", "jle", "jsgt", "jsge", "jslt", "jsle", "jset"]


@st.composite
def alu(draw: st.DrawFn) -> Instruction:
    name = draw(st.sampled_from(ALU))
    wide = draw(st.booleans())
    fn = getattr(asm, name if wide else name.rstrip("_") + "32")
    if draw(st.booleans()):
        return fn(draw(wregs), draw(regs))  # type: ignore[no-any-return]
    imm = draw(s32 if wide else st.one_of(s32, u32))
    if name in ("lsh", "rsh", "arsh"):
        imm %= 64 if wide else 32
    if name in ("div", "sdiv", "mod", "smod") and imm == 0:
        imm = 1
    return fn(draw(wregs), imm)  # type: ignore[no-any-return]


@st.composite
def misc_alu(draw: st.DrawFn) -> Instruction:
    d = draw(wregs)
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return draw(st.sampled_from([asm.neg, asm.neg32]))(d)
    if kind == 1:
        fn = draw(st.sampled_from([asm.to_be, asm.to_le, asm.bswap]))
        return fn(d, draw(st.sampled_from([16, 32, 64])))
    if kind == 2:
        return asm.movsx(d, draw(regs), draw(st.sampled_from([8, 16, 32])))
    if kind == 3:
        return asm.movsx32(d, draw(regs), draw(st.sampled_from([8, 16])))
    if kind == 4:
        return asm.addr_space_cast(d, draw(regs), draw(st.integers(0, 0xFFFF)),
                                   draw(st.integers(0, 0xFFFF)))
    return asm.load_imm64(d, draw(st.integers(-(2**63), 2**64 - 1)))


@st.composite
def memory(draw: st.DrawFn) -> Instruction:
    kind = draw(st.integers(0, 9))
    size = draw(sizes)
    off = draw(s16)
    if kind == 0:
        return asm.load(size, draw(wregs), draw(regs), off)
    if kind == 1:
        return asm.loadsx(draw(st.sampled_from([Size.B, Size.H, Size.W])), draw(wregs),
                          draw(regs), off)
    if kind == 2:
        return asm.store(size, draw(regs), off, draw(regs))
    if kind == 3:
        return asm.store_imm(size, draw(regs), off, draw(s32))
    if kind == 4:
        fn = draw(st.sampled_from([asm.atomic_add, asm.atomic_or, asm.atomic_and, asm.atomic_xor]))
        return fn(draw(st.sampled_from([Size.W, Size.DW])), draw(regs), draw(regs), off,
                  fetch=draw(st.booleans()))
    if kind == 5:
        fn = draw(st.sampled_from([asm.atomic_xchg, asm.atomic_cmpxchg]))
        return fn(draw(st.sampled_from([Size.W, Size.DW])), draw(regs), draw(regs), off)
    if kind == 6:
        return asm.load_acquire(size, draw(wregs), draw(regs), off)
    if kind == 7:
        return asm.store_release(size, draw(regs), off, draw(regs))
    small = draw(st.sampled_from([Size.B, Size.H, Size.W]))
    if kind == 8:
        return asm.ld_abs(small, draw(s32))
    return asm.ld_ind(small, draw(regs), draw(s32))


@st.composite
def pseudo(draw: st.DrawFn) -> Instruction:
    d = draw(wregs)
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return asm.load_map(d, draw(st.integers(0, 2**31 - 1)))
    if kind == 1:
        return asm.load_map_value(d, draw(st.integers(0, 2**31 - 1)), draw(s32))
    if kind == 2:
        return asm.load_map_idx(d, draw(s32))
    if kind == 3:
        return asm.load_map_idx_value(d, draw(s32), draw(s32))
    if kind == 4:
        return asm.load_btf_id(d, draw(s32), draw(s32))
    if kind == 5:
        return asm.load_func(d, draw(targets))
    if kind == 6:
        return asm.call_pc(draw(st.one_of(s32, st.integers(-4, 4))))
    if kind == 7:
        return asm.kfunc_call(draw(s32), draw(s16))
    if kind == 8:
        return asm.call(draw(s32))
    return asm.callx(draw(regs))


@st.composite
def jump(draw: st.DrawFn) -> Instruction:
    kind = draw(st.integers(0, 4))
    if kind == 0:
        return asm.ja(draw(targets))
    if kind == 1:
        return asm.gotol(draw(st.one_of(s32, st.integers(-4, 4))))
    if kind == 2:
        return asm.may_goto(draw(targets))
    if kind == 3:
        return asm.exit()
    name = draw(st.sampled_from(JMP))
    wide = draw(st.booleans())
    fn = getattr(asm, name if wide else name + "32")
    src = draw(regs) if draw(st.booleans()) else draw(s32 if wide else st.one_of(s32, u32))
    return fn(draw(regs), src, draw(targets))  # type: ignore[no-any-return]


instructions = st.one_of(alu(), misc_alu(), memory(), pseudo(), jump())


@settings(max_examples=400, deadline=None)
@given(st.lists(instructions, min_size=1, max_size=40))
def test_assemble_disassemble_roundtrip(insns: list[Instruction]) -> None:
    code = asm.Instructions(insns).encode(check=False)
    for labels in (True, False):
        text = asm.disassemble(code, labels=labels)
        again = asm.Instructions(asm.assemble(text)).encode(check=False)
        assert again == code, text
    numbered = asm.disassemble(code, numbers=True)
    assert asm.Instructions(asm.assemble(numbered)).encode(check=False) == code


@settings(max_examples=300, deadline=None)
@given(st.lists(instructions, min_size=1, max_size=40))
def test_decode_encode_roundtrip(insns: list[Instruction]) -> None:
    code = asm.Instructions(insns).encode(check=False)
    decoded = asm.decode(code)
    assert b"".join(i.encode() for i in decoded) == code
    assert decoded == insns
    big = asm.Instructions(insns).encode(check=False, byteorder="big")
    assert asm.decode(big, byteorder="big") == insns


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=8, max_size=64).filter(lambda b: len(b) % 8 == 0))
def test_any_bytes_disassemble_or_parse_error(data: bytes) -> None:
    try:
        text = asm.disassemble(data)
    except ParseError:
        return
    # Whatever decodes prints, and reads back to the same bytes: what the assembler would
    # refuse to build (a shift by 70, a division by a zero immediate...) prints as .8byte.
    again = asm.Instructions(asm.assemble(text)).encode(check=False)
    assert again == data, text
