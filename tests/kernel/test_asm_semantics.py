"""The kernel runs what our assembler emits: ISA semantics checked under BPF_PROG_TEST_RUN.

Each family of operations is one SCHED_CLS program: it reads ``a``, ``b``, ``c`` and a variant
selector from the packet, runs the selected variant (one :class:`~ebpf.asm.Fragment` per
immediate or width, so labels repeat without clashing) and writes ``r1``/``r2`` back into the
packet. Every edge input is run through the kernel and compared with a Python reference of
RFC 9669. ``__sk_buff`` offsets come from the pinned BTF.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path

import pytest

import ebpf
from ebpf import asm, btf, errors, features
from ebpf.asm import DW, R0, R1, R2, R3, R4, R6, R7, R8, R10, Instruction, Size

CAP_BPF = 39  # include/uapi/linux/capability.h
pytestmark = pytest.mark.capabilities(CAP_BPF)

M64 = (1 << 64) - 1
M32 = (1 << 32) - 1
PINNED = Path(__file__).resolve().parents[1] / "testdata" / "vmlinux.btf.gz"
EDGES = [0, 1, 2, 3, 7, 31, 32, 33, 63, 64, 65, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF,
         0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x100000000, 0x123456789ABCDEF0,
         0x7FFFFFFFFFFFFFFF, 0x8000000000000000, 0xFFFFFFFF00000000, M64, M64 - 1, M64 - 6]
IMMS = [0, 1, -1, 2, 7, 31, 32, 63, 0x7FFF, -0x8000, 0x7FFFFFFF, -0x80000000, 0x12345678]
_PKT = struct.Struct("<16xQQQQQQ8x")  # a, b, out1, out2, selector, c


@cache
def skb_offsets() -> tuple[int, int]:
    spec = btf.Spec.from_file(str(PINNED))
    skb = spec.find("__sk_buff", kind=btf.Struct)
    return skb.member("data").offset // 8, skb.member("data_end").offset // 8


def s64(v: int) -> int:
    v &= M64
    return v - (1 << 64) if v >> 63 else v


def s32(v: int) -> int:
    v &= M32
    return v - (1 << 32) if v >> 31 else v


# -- reference semantics (RFC 9669) ------------------------------------------------------------
def _tdiv(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def alu_ref(op: str, a: int, b: int, wide: bool) -> int:
    """``a op= b`` with ``b`` already the operand value (sign-extended imm or register)."""
    mask, bits = (M64, 64) if wide else (M32, 32)
    sx = s64 if wide else s32
    a &= mask
    b &= mask
    if op == "add":
        r = a + b
    elif op == "sub":
        r = a - b
    elif op == "mul":
        r = a * b
    elif op == "div":
        r = a // b if b else 0
    elif op == "sdiv":
        r = _tdiv(sx(a), sx(b)) if b else 0
    elif op == "mod":
        r = a % b if b else a
    elif op == "smod":
        r = sx(a) - _tdiv(sx(a), sx(b)) * sx(b) if b else a
    elif op == "or_":
        r = a | b
    elif op == "and_":
        r = a & b
    elif op == "xor":
        r = a ^ b
    elif op == "lsh":
        r = a << (b & (bits - 1))
    elif op == "rsh":
        r = a >> (b & (bits - 1))
    elif op == "arsh":
        r = sx(a) >> (b & (bits - 1))
    elif op == "mov":
        r = b
    else:
        raise AssertionError(op)
    return r & mask


def swap(v: int, width: int) -> int:
    return int.from_bytes((v & ((1 << width) - 1)).to_bytes(width // 8, "little"), "big")


def sext(v: int, bits: int) -> int:
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


JUMPS: dict[str, Callable[[int, int, Callable[[int], int]], bool]] = {
    "jeq": lambda a, b, sx: a == b,
    "jne": lambda a, b, sx: a != b,
    "jgt": lambda a, b, sx: a > b,
    "jge": lambda a, b, sx: a >= b,
    "jlt": lambda a, b, sx: a < b,
    "jle": lambda a, b, sx: a <= b,
    "jsgt": lambda a, b, sx: sx(a) > sx(b),
    "jsge": lambda a, b, sx: sx(a) >= sx(b),
    "jslt": lambda a, b, sx: sx(a) < sx(b),
    "jsle": lambda a, b, sx: sx(a) <= sx(b),
    "jset": lambda a, b, sx: (a & b) != 0,
}


# -- harness -----------------------------------------------------------------------------------
Body = Sequence[Instruction | asm.Label | asm.Fragment]


def harness(variants: Sequence[Body], tail: Body = ()) -> asm.Instructions:
    data_off, end_off = skb_offsets()
    items: list[asm.Item] = [
        asm.load(Size.W, R6, R1, data_off),
        asm.load(Size.W, R7, R1, end_off),
        asm.mov(R8, R6),
        asm.add(R8, _PKT.size),
        asm.jgt(R8, R7, "out"),
        asm.load(DW, R1, R6, 16),
        asm.load(DW, R2, R6, 24),
        asm.load(DW, R4, R6, 48),
        asm.load(DW, R3, R6, 56),
    ]
    for k, body in enumerate(variants):
        items.append(asm.Fragment(
            [asm.jne(R4, k, "next"), *body, asm.ja("store"), asm.label("next")], name=f"v{k}"
        ))
    items += [
        asm.ja("out"),
        asm.label("store"),
        asm.store(DW, R6, 32, R1),
        asm.store(DW, R6, 40, R2),
        asm.label("out"),
        asm.mov(R0, 0),
        asm.exit(),
        *tail,
    ]
    return asm.Instructions(items)


class Runner:
    def __init__(self, variants: Sequence[Body]) -> None:
        self.prog = ebpf.Program.load(ebpf.ProgramType.SCHED_CLS, harness(variants))

    def __call__(self, k: int, a: int, b: int = 0, c: int = 0) -> tuple[int, int]:
        pkt = _PKT.pack(a & M64, b & M64, 0, 0, k, c & M64)
        res = self.prog.test_run(data=pkt)
        assert res.data is not None
        _, _, out1, out2, _, _ = _PKT.unpack(res.data[: _PKT.size])
        return out1, out2

    def close(self) -> None:
        self.prog.close()


def check_all(variants: Sequence[Body], expect: Callable[[int, int, int], int | None],
              values: Sequence[int] = EDGES, second: Sequence[int] | None = None) -> None:
    run = Runner(variants)
    failures = []
    try:
        for k in range(len(variants)):
            for a in values:
                for b in second if second is not None else values:
                    want = expect(k, a, b)
                    if want is None:
                        continue
                    got = run(k, a, b)[0]
                    if got != want:
                        failures.append((k, hex(a), hex(b), hex(got), hex(want)))
    finally:
        run.close()
    assert not failures, f"{len(failures)} failures, first: {failures[:5]}"


ALU = ["add", "sub", "mul", "div", "sdiv", "mod", "smod", "or_", "and_", "xor", "lsh", "rsh",
       "arsh", "mov"]


def _isa_v4_missing() -> str | None:
    """Why this kernel rejects ISA v4 (sdiv/smod, bswap, movsx: Linux 6.6), or None."""
    try:
        features.have_isa(4)
    except errors.NotSupportedError as e:
        return (f"{e}; the verifier rejects it with EINVAL (reserved fields / unknown "
                f"opcode) on Linux {os.uname().release}")
    return None


@pytest.mark.parametrize("op", ALU)
def test_alu(op: str) -> None:
    if op in ("sdiv", "smod") and (why := _isa_v4_missing()):
        pytest.skip(why)
    fn64 = getattr(asm, op)
    fn32 = getattr(asm, op.rstrip("_") + "32")
    variants: list[Body] = [[fn64(R1, R2)], [fn32(R1, R2)]]
    consts: list[tuple[bool, int]] = []
    for wide, fn in ((True, fn64), (False, fn32)):
        for imm in IMMS:
            if op in ("lsh", "rsh", "arsh") and not 0 <= imm < (64 if wide else 32):
                continue
            if op in ("div", "sdiv", "mod", "smod") and imm == 0:
                continue
            variants.append([fn(R1, imm)])
            consts.append((wide, imm))

    def expect(k: int, a: int, b: int) -> int | None:
        if k == 0:
            return alu_ref(op, a, b, True)
        if k == 1:
            return alu_ref(op, a, b, False)
        if b != 0:
            return None  # immediate variants ignore b: run each a once
        wide, imm = consts[k - 2]
        return alu_ref(op, a, imm & M64 if wide else imm & M32, wide)

    check_all(variants, expect)


def test_neg_and_byte_swaps() -> None:
    """neg, to_be/to_le everywhere; bswap and movsx (ISA v4) where the kernel has them."""
    v4 = _isa_v4_missing() is None
    variants: list[Body] = [[asm.neg(R1)], [asm.neg32(R1)]]
    names = []
    for width in (16, 32, 64):
        for name in ("to_be", "to_le", "bswap") if v4 else ("to_be", "to_le"):
            variants.append([getattr(asm, name)(R1, width)])
            names.append((name, width))
    for width in (8, 16, 32) if v4 else ():
        variants.append([asm.movsx(R1, R2, width)])
        names.append(("movsx", width))
    for width in (8, 16) if v4 else ():
        variants.append([asm.movsx32(R1, R2, width)])
        names.append(("movsx32", width))

    def expect(k: int, a: int, b: int) -> int:
        if k == 0:
            return -a & M64
        if k == 1:
            return -a & M32
        name, width = names[k - 2]
        if name == "to_be":  # little-endian host: a swap, zero-extended
            return swap(a, width)
        if name == "to_le":
            return a & ((1 << width) - 1)
        if name == "bswap":
            return swap(a, width)
        if name == "movsx":
            return sext(b, width) & M64
        return sext(b, width) & M32

    check_all(variants, expect)


@pytest.mark.parametrize("op", list(JUMPS))
def test_jumps(op: str) -> None:
    variants: list[Body] = []
    consts: list[tuple[bool, int | None]] = []
    for wide in (True, False):
        fn = getattr(asm, op if wide else op + "32")
        for src in [R2, *IMMS]:
            variants.append([
                asm.mov(R0, 1), fn(R1, src, "taken"), asm.mov(R0, 0), asm.label("taken"),
                asm.mov(R1, R0),
            ])
            consts.append((wide, None if src is R2 else int(src)))

    def expect(k: int, a: int, b: int) -> int | None:
        wide, imm = consts[k]
        if imm is not None:
            if b != 0:
                return None
            b = imm & M64 if wide else imm & M32
        mask, sx = (M64, s64) if wide else (M32, s32)
        return int(JUMPS[op](a & mask, b & mask, sx))

    check_all(variants, expect)


ATOMICS = ["add", "or", "and", "xor"]


@pytest.mark.parametrize("size", [Size.W, DW], ids=["32", "64"])
def test_atomics(size: Size) -> None:
    mask = M64 if size == DW else M32
    variants: list[Body] = []
    kinds: list[tuple[str, bool]] = []
    prologue = [asm.store(DW, R10, -8, R1)]  # memory = a
    epilogue = [asm.load(size, R1, R10, -8)]  # r1 = memory after
    for name in ATOMICS:
        for fetch in (False, True):
            fn = getattr(asm, f"atomic_{name}")
            variants.append([*prologue, fn(size, R10, R2, -8, fetch=fetch), *epilogue])
            kinds.append((name, fetch))
    variants.append([*prologue, asm.atomic_xchg(size, R10, R2, -8), *epilogue])
    kinds.append(("xchg", True))
    # cmpxchg: r0 = c; if memory == r0 then memory = b; r0 = old memory
    variants.append([*prologue, asm.mov(R0, R3), asm.atomic_cmpxchg(size, R10, R2, -8),
                     asm.mov(R2, R0), *epilogue])
    kinds.append(("cmpxchg", True))

    run = Runner(variants)
    failures = []
    try:
        for k, (name, fetch) in enumerate(kinds):
            for a in EDGES[::3]:
                for b in EDGES[::3]:
                    for c in ((a,) if name != "cmpxchg" else (a, a ^ 1)):
                        old = a & mask
                        if name == "add":
                            new = (old + b) & mask
                        elif name == "or":
                            new = old | (b & mask)
                        elif name == "and":
                            new = old & b
                        elif name == "xor":
                            new = old ^ (b & mask)
                        elif name == "xchg":
                            new = b & mask
                        else:
                            new = b & mask if old == c & mask else old
                        want_r2 = old if fetch else b
                        got = run(k, a, b, c)
                        if got != (new, want_r2 & M64):
                            failures.append((name, fetch, hex(a), hex(b), got, (new, want_r2)))
    finally:
        run.close()
    assert not failures, f"{len(failures)} failures, first: {failures[:5]}"


def test_loads_stores_and_sign_extension() -> None:
    variants: list[Body] = []
    kinds: list[tuple[str, Size]] = []
    for size in (Size.B, Size.H, Size.W, DW):
        variants.append([asm.store(DW, R10, -8, R1), asm.load(size, R1, R10, -8)])
        kinds.append(("load", size))
        variants.append([asm.store_imm(DW, R10, -8, 0), asm.store(size, R10, -8, R1),
                         asm.load(DW, R1, R10, -8)])
        kinds.append(("store", size))
        variants.append([asm.store(DW, R10, -8, R1), asm.load_acquire(size, R1, R10, -8)])
        kinds.append(("load_acquire", size))
        variants.append([asm.store_imm(DW, R10, -8, 0), asm.store_release(size, R10, -8, R1),
                         asm.load(DW, R1, R10, -8)])
        kinds.append(("store_release", size))
        if size != DW:
            variants.append([asm.store(DW, R10, -8, R1), asm.loadsx(size, R1, R10, -8)])
            kinds.append(("loadsx", size))

    def expect(k: int, a: int, b: int) -> int | None:
        if b != 0:
            return None
        kind, size = kinds[k]
        m = (1 << size.bits) - 1
        if kind == "loadsx":
            return sext(a, size.bits) & M64
        return a & m

    if ebpf.platform.kernel_version() < "6.15":  # pragma: no cover - older kernels
        pytest.skip("load-acquire/store-release need Linux 6.15")
    check_all(variants, expect)


def test_gotol_and_subprogram_calls() -> None:
    body: Body = [
        asm.mov(R8, R1),
        asm.gotol("far"),  # forward, then back with another gotol
        asm.label("back"),
        asm.mov(R1, R2),
        asm.call("double"),  # bpf-to-bpf call: r0 = 2 * r1
        asm.add(R0, R8),
        asm.mov(R1, R0),
        asm.mov(R2, 0),  # calls clobber r1-r5
        asm.ja("end"),
        asm.label("far"),
        asm.gotol("back"),
        asm.label("end"),
    ]
    prog = harness([body], tail=[
        asm.label("double"), asm.mov(R0, R1), asm.add(R0, R1), asm.exit(),
    ])
    with ebpf.Program.load(ebpf.ProgramType.SCHED_CLS, prog) as p:
        for a, b in ((1, 2), (5, M64), (0x8000000000000000, 3)):
            res = p.test_run(data=_PKT.pack(a, b, 0, 0, 0, 0))
            assert res.data is not None
            assert _PKT.unpack(res.data[: _PKT.size])[2] == (a + 2 * b) & M64


def test_tag_equals_the_kernel() -> None:
    counts = None
    if hasattr(ebpf, "Map"):  # the map layer lands separately
        counts = ebpf.Map.create(ebpf.MapType.ARRAY, key_size=4, value_size=16, max_entries=1)
    items: list[asm.Item] = [asm.mov(R0, 0), asm.jeq(R1, 0, "x"), asm.mov(R0, 1),
                             asm.label("x"), asm.exit()]
    if counts is not None:
        items = [asm.load_map(R2, counts), asm.load_map_value(R3, counts, 8), *items]
    prog = asm.Instructions(items)
    with ebpf.Program.load(ebpf.ProgramType.SOCKET_FILTER, prog) as p:
        kernel_tag = p.info().tag
    algorithm = "sha256" if ebpf.platform.kernel_version() >= "6.18" else "sha1"
    assert prog.tag(algorithm=algorithm) == kernel_tag
    assert asm.program_tag(prog.encode(), algorithm) == kernel_tag
    if counts is not None:
        counts.close()
