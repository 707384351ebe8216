"""Golden tests against LLVM: our encodings equal llvm-mc's, our disassembly equals llvm-objdump's.

Every instruction form of the ISA (v1-v4) with edge registers, immediates and offsets, about
ten thousand cases, assembled in one llvm-mc run. Skipped only when llvm-mc-19 is absent (CI
installs it).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ebpf import asm
from ebpf.asm import Instruction, Register, Size

LLVM_MC = shutil.which("llvm-mc-19")
LLVM_OBJDUMP = shutil.which("llvm-objdump-19")
pytestmark = pytest.mark.skipif(LLVM_MC is None, reason="llvm-mc-19 not installed")

REGS = list(Register)
WREGS = REGS[:10]  # writable
IMM_EDGES = [0, 1, -1, 2, 7, 8, 15, 16, 31, 32, 63, 64, 127, 128, 255, 256, 0x7FFF, -0x8000,
             0xFFFF, 0x12345678, -0x12345678, 0x7FFFFFFF, -0x80000000, 0x7FFFFFFE, -0x7FFFFFFF]
OFF_EDGES = [0, 1, -1, 2, 4, 8, -8, 0x7F, -0x80, 0x100, 0x7FFF, -0x8000, 0x7FFE, -0x7FFF, 1000]
SIZES = {Size.B: "u8", Size.H: "u16", Size.W: "u32", Size.DW: "u64"}

ALU_OPS = [
    ("add", "+="), ("sub", "-="), ("mul", "*="), ("div", "/="), ("sdiv", "s/="),
    ("or_", "|="), ("and_", "&="), ("lsh", "<<="), ("rsh", ">>="), ("mod", "%="),
    ("smod", "s%="), ("xor", "^="), ("mov", "="), ("arsh", "s>>="),
]
JMP_OPS = [
    ("jeq", "=="), ("jne", "!="), ("jgt", ">"), ("jge", ">="), ("jlt", "<"), ("jle", "<="),
    ("jsgt", "s>"), ("jsge", "s>="), ("jslt", "s<"), ("jsle", "s<="), ("jset", "&"),
]


def _mem(reg: int, off: int) -> str:
    return f"(r{reg} + {off})" if off >= 0 else f"(r{reg} - {-off})"


def _rel(off: int) -> str:
    return f"+{off}" if off >= 0 else str(off)


def cases() -> Iterator[tuple[Instruction, str]]:
    for name, sym in ALU_OPS:
        for wide in (True, False):
            fn = getattr(asm, name if wide else (name.rstrip("_") + "32"))
            r = "r" if wide else "w"
            shift = name in ("lsh", "rsh", "arsh")
            divide = name in ("div", "sdiv", "mod", "smod")
            for d in WREGS:
                for s in REGS:
                    yield fn(d, s), f"{r}{d.value} {sym} {r}{s.value}"
            for d in (Register.R0, Register.R5, Register.R9):
                for imm in IMM_EDGES:
                    if shift and not 0 <= imm < (64 if wide else 32):
                        continue
                    if divide and imm == 0:
                        continue
                    yield fn(d, imm), f"{r}{d.value} {sym} {imm}"
            if shift:
                for imm in range(64 if wide else 32):
                    yield fn(Register.R3, imm), f"{r}3 {sym} {imm}"
    for d in WREGS:
        yield asm.neg(d), f"r{d.value} = -r{d.value}"
        yield asm.neg32(d), f"w{d.value} = -w{d.value}"
        for width in (16, 32, 64):
            yield asm.to_be(d, width), f"r{d.value} = be{width} r{d.value}"
            yield asm.to_le(d, width), f"r{d.value} = le{width} r{d.value}"
            yield asm.bswap(d, width), f"r{d.value} = bswap{width} r{d.value}"
        for s in REGS:
            for width in (8, 16, 32):
                yield asm.movsx(d, s, width), f"r{d.value} = (s{width})r{s.value}"
            for width in (8, 16):
                yield asm.movsx32(d, s, width), f"w{d.value} = (s{width})w{s.value}"
    for d, s in ((Register.R1, Register.R2), (Register.R0, Register.R10)):
        for das, sas in ((0, 1), (1, 0), (0, 0), (5, 7)):
            yield (
                asm.addr_space_cast(d, s, das, sas),
                f"r{d.value} = addr_space_cast(r{s.value}, {das}, {sas})",
            )
    # loads and stores
    for size, tname in SIZES.items():
        for d in WREGS:
            for s in REGS:
                yield asm.load(size, d, s, 4), f"r{d.value} = *({tname} *){_mem(s.value, 4)}"
        for off in OFF_EDGES:
            yield asm.load(size, Register.R1, Register.R10, off), (
                f"r1 = *({tname} *){_mem(10, off)}"
            )
            yield asm.store(size, Register.R10, off, Register.R3), (
                f"*({tname} *){_mem(10, off)} = r3"
            )
            for imm in (0, 1, -1, 0x7FFFFFFF, -0x80000000, 0x1234):
                yield asm.store_imm(size, Register.R1, off, imm), (
                    f"*({tname} *){_mem(1, off)} = {imm}"
                )
            if size != Size.DW:
                sname = "s" + tname[1:]
                yield asm.loadsx(size, Register.R2, Register.R1, off), (
                    f"r2 = *({sname} *){_mem(1, off)}"
                )
        for d in REGS:
            for s in REGS:
                yield asm.store(size, d, -2, s), f"*({tname} *){_mem(d.value, -2)} = r{s.value}"
            if size != Size.DW:
                sname = "s" + tname[1:]
                for s in REGS[:10]:
                    yield asm.loadsx(size, s, d, 6), f"r{s.value} = *({sname} *){_mem(d.value, 6)}"
    # atomics
    for size, tname in ((Size.W, "u32"), (Size.DW, "u64")):
        r = "r" if size == Size.DW else "w"
        sfx = "_64" if size == Size.DW else "32_32"
        for off in (0, 8, -8, 0x7FFF, -0x8000):
            for d, s in ((Register.R1, Register.R2), (Register.R10, Register.R0),
                         (Register.R0, Register.R9)):
                m = _mem(d.value, off)
                for fn, sym, fname in (
                    (asm.atomic_add, "+=", "add"), (asm.atomic_or, "|=", "or"),
                    (asm.atomic_and, "&=", "and"), (asm.atomic_xor, "^=", "xor"),
                ):
                    yield fn(size, d, s, off), f"lock *({tname} *){m} {sym} {r}{s.value}"
                    yield fn(size, d, s, off, fetch=True), (
                        f"{r}{s.value} = atomic_fetch_{fname}(({tname} *){m}, {r}{s.value})"
                    )
                yield asm.atomic_xchg(size, d, s, off), (
                    f"{r}{s.value} = xchg{sfx}({m[1:-1]}, {r}{s.value})"
                )
                yield asm.atomic_cmpxchg(size, d, s, off), (
                    f"{r}0 = cmpxchg{sfx}({m[1:-1]}, {r}0, {r}{s.value})"
                )
    # legacy packet loads
    for size, tname in list(SIZES.items())[:3]:
        for imm in (0, 1, 14, 0x7FFFFFFF, -1):
            yield asm.ld_abs(size, imm), f"r0 = *({tname} *)skb[{imm}]"
        for s in REGS:
            yield asm.ld_ind(size, s, 0), f"r0 = *({tname} *)skb[r{s.value}]"
    # 64-bit immediates
    for d in WREGS:
        for v in (0, 1, -1, 0x123456789, -0x123456789, (1 << 63) - 1, -(1 << 63), 0xFFFFFFFF,
                  0x100000000, 0x80000000, 0xDEADBEEFCAFEBABE - (1 << 64)):
            yield asm.load_imm64(d, v), f"r{d.value} = {v} ll"
    # jumps
    for name, sym in JMP_OPS:
        for wide in (True, False):
            fn = getattr(asm, name if wide else name + "32")
            r = "r" if wide else "w"
            for d in REGS:
                for s in REGS:
                    yield fn(d, s, 3), f"if {r}{d.value} {sym} {r}{s.value} goto +3"
            for imm in IMM_EDGES:
                yield fn(Register.R4, imm, -7), f"if {r}4 {sym} {imm} goto -7"
            for off in OFF_EDGES:
                yield fn(Register.R1, Register.R2, off), f"if {r}1 {sym} {r}2 goto {_rel(off)}"
    for off in OFF_EDGES:
        yield asm.ja(off), f"goto {_rel(off)}"
        yield asm.gotol(off), f"gotol {_rel(off)}"
        yield asm.may_goto(off), f"may_goto {_rel(off)}"
    for hid in (0, 1, 2, 12, 130, 211, 0x7FFFFFFF, -1):
        yield asm.call(hid), f"call {hid}"
    for d in REGS:
        yield asm.callx(d), f"callx r{d.value}"
    yield asm.exit(), "exit"


CASES = list(cases())
_ENC = re.compile(r"# encoding: \[([^\]]*)\]")


@pytest.fixture(scope="module")
def llvm_encodings(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    assert LLVM_MC is not None
    src = tmp_path_factory.mktemp("mc") / "cases.s"
    src.write_text("\n".join(text for _, text in CASES) + "\n")
    out = subprocess.run(
        [LLVM_MC, "-triple", "bpfel", "-mcpu=v4", "-show-encoding", str(src)],
        capture_output=True, text=True, check=True,
    ).stdout
    encs = [bytes(int(b, 16) for b in m[1].split(",")) for m in _ENC.finditer(out)]
    assert len(encs) == len(CASES)
    return encs


def test_case_table_is_large() -> None:
    assert len(CASES) > 5000


def test_encoding_equals_llvm(llvm_encodings: list[bytes]) -> None:
    bad = [
        (text, insn.encode().hex(), enc.hex())
        for (insn, text), enc in zip(CASES, llvm_encodings, strict=True)
        if insn.encode() != enc
    ]
    assert not bad, f"{len(bad)} mismatches, first: {bad[:5]}"


def test_decode_inverts_encode(llvm_encodings: list[bytes]) -> None:
    for (insn, _), enc in zip(CASES, llvm_encodings, strict=True):
        assert asm.Instruction.decode(enc) == insn


def _objdump(tmp: Path, source: str, extra: list[str]) -> list[str]:
    assert LLVM_MC is not None and LLVM_OBJDUMP is not None
    (tmp / "p.s").write_text(source)
    subprocess.run(
        [LLVM_MC, "-triple", "bpfel", "-mcpu=v4", "-filetype=obj", str(tmp / "p.s"),
         "-o", str(tmp / "p.o")],
        check=True,
    )
    out = subprocess.run(
        [LLVM_OBJDUMP, "-d", *extra, str(tmp / "p.o")], capture_output=True, text=True,
        check=True,
    ).stdout
    return [line for line in out.splitlines() if re.match(r"^\s+\d+:\t", line)]


@pytest.mark.skipif(LLVM_OBJDUMP is None, reason="llvm-objdump-19 not installed")
@pytest.mark.parametrize("alu32", [True, False], ids=["mcpu=v4", "default"])
def test_objdump_text_equals_llvm(tmp_path: Path, alu32: bool) -> None:
    source = "\n".join(text for _, text in CASES) + "\n"
    theirs = _objdump(tmp_path, source, ["--mcpu=v4"] if alu32 else [])
    code = b"".join(insn.encode() for insn, _ in CASES)
    ours = [line for line in asm.objdump(code, alu32=alu32).splitlines() if "\t" in line]
    assert len(ours) == len(theirs)
    bad = [(a, b) for a, b in zip(ours, theirs, strict=True) if a != b]
    assert not bad, f"{len(bad)} mismatches, first: {bad[:5]}"


def test_llvm_style_is_exact_and_default_style_reassembles() -> None:
    code = b"".join(insn.encode() for insn, _ in CASES if not _is_jump(insn))
    text = asm.disassemble(code)
    again = asm.Instructions(asm.assemble(text)).encode(check=False)
    assert again == code


def _is_jump(insn: asm.Instruction) -> bool:
    return insn.opcode & 7 in (5, 6) and insn.opcode not in (0x85, 0x95, 0x8D)
