"""The front end's optimiser (ebpf.bpf._peephole, _regalloc) without a kernel.

Random programs (hypothesis) are run by a small interpreter before and after optimisation
and must give the same r0 and never read a register that holds nothing; targeted cases check
each pass's pattern and the cases that must be left alone.
"""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ebpf import asm
from ebpf.asm import R0, R1, R2, R3, R6, R7, R8, R9, R10, Register
from ebpf.bpf import _peephole as ph
from ebpf.bpf._regalloc import optimize

M64 = (1 << 64) - 1
FP_BASE = 1 << 40
SLOTS = (-8, -16, -24, -32)
NARROW_SLOT = -40
CTX = FP_BASE - 256      # a ctx the random programs read (nothing stores there)
CTX_SLOT = -56


class Uninit(Exception):
    pass


def _alu(code: int, a: int, b: int, bits: int) -> int:
    m = (1 << bits) - 1
    a, b = a & m, b & m
    sa = a - (1 << bits) if a >> (bits - 1) else a
    r = {
        0x00: lambda: a + b, 0x10: lambda: a - b, 0x20: lambda: a * b,
        0x30: lambda: a // b if b else 0, 0x40: lambda: a | b, 0x50: lambda: a & b,
        0x60: lambda: a << (b & (bits - 1)), 0x70: lambda: a >> (b & (bits - 1)),
        0x80: lambda: -a, 0x90: lambda: a % b if b else a, 0xA0: lambda: a ^ b,
        0xB0: lambda: b, 0xC0: lambda: sa >> (b & (bits - 1)),
    }[code]()
    return r & m


def _cond(code: int, a: int, b: int) -> bool:
    sa = a - (1 << 64) if a >> 63 else a
    sb = b - (1 << 64) if b >> 63 else b
    return {0x10: a == b, 0x50: a != b, 0x20: a > b, 0x30: a >= b, 0xA0: a < b,
            0xB0: a <= b, 0x40: bool(a & b), 0x60: sa > sb, 0x70: sa >= sb,
            0xC0: sa < sb, 0xD0: sa <= sb}[code]


def interpret(items: list[asm.Item], r1: int, steps: int = 20_000, ctx: bytes = b"") -> int:
    """Run a program of ALU, 64-bit jumps, stack loads/stores, helper calls and exit;
    ``ctx`` fills the stack from ``CTX`` (an address programs get in r1)."""
    code = [i for i in items if isinstance(i, asm.Instruction)]
    where: dict[str, int] = {}
    n = 0
    for it in items:
        if isinstance(it, asm.Label):
            where[it.name] = n
        else:
            n += 1
    regs: list[int | None] = [None] * 11
    regs[1], regs[10] = r1 & M64, FP_BASE
    stack = bytearray(512)
    stack[CTX - (FP_BASE - 512):CTX - (FP_BASE - 512) + len(ctx)] = ctx

    def get(r: int) -> int:
        v = regs[r]
        if v is None:
            raise Uninit(f"r{r} read before written")
        return v

    def addr(base: int, off: int, size: int) -> int:
        a = get(base) + off - (FP_BASE - 512)
        assert a >= 0 and a + size <= 512, "stack access out of range"
        return a

    pc = 0
    while steps:
        steps -= 1
        i = code[pc]
        pc += 1
        op = i.opcode
        cls = op & 7
        if cls in (4, 7):
            bits = 64 if cls == 7 else 32
            code_ = op & 0xF0
            b = get(i.src) if op & 8 else i.imm & M64
            a = 0 if code_ == 0xB0 else get(i.dst)
            regs[i.dst] = _alu(code_, a, b, bits)
        elif op == 0x18:
            regs[i.dst] = i.imm64
        elif cls == 1:
            size = {0x18: 8, 0x00: 4, 0x08: 2, 0x10: 1}[op & 0x18]
            a = addr(i.src, i.off, size)
            regs[i.dst] = int.from_bytes(stack[a:a + size], "little")
        elif cls in (2, 3):
            size = {0x18: 8, 0x00: 4, 0x08: 2, 0x10: 1}[op & 0x18]
            a = addr(i.dst, i.off, size)
            v = get(i.src) if cls == 3 else i.imm & M64
            stack[a:a + size] = (v & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
        elif op == 0x85:
            args = [regs[r] or 0 for r in range(1, 6)]
            regs[0] = (sum(args) * 31 + i.imm) & M64
            for r in range(1, 6):
                regs[r] = None
        elif op == 0x95:
            return get(0)
        elif op == 0x05:
            pc = where[i.target]  # type: ignore[index]
        elif cls == 5:
            b = get(i.src) if op & 8 else i.imm & M64
            if _cond(op & 0xF0, get(i.dst), b):
                pc = where[i.target]  # type: ignore[index]
        else:
            raise AssertionError(f"opcode {op:#x}")
    raise AssertionError("no exit")


# -- random programs --------------------------------------------------------------------------
ALU_CODES = [0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x90, 0xA0, 0xB0]
JMP_CODES = [0x10, 0x50, 0x20, 0x30, 0xA0, 0xB0, 0x40, 0x60, 0x70, 0xC0, 0xD0]
IMMS = st.one_of(st.integers(-4, 40), st.sampled_from([0xFF, 0xFFFF, -1, (1 << 31) - 1,
                                                      -(1 << 31), 0x7FFF_FFFF]))


LOOP_SLOT = -48


def straight(draw: st.DrawFn, items: list[asm.Item], init: set[int], n: int,
             slots: tuple[int, ...] = SLOTS) -> set[int]:
    """``n`` random ALU/move/load/store operations reading only ``init`` registers (no
    calls: in a loop body they would clobber r1..r5 for the next iteration)."""
    for _ in range(n):
        kind = draw(st.sampled_from(["alu", "alu", "mov", "ld", "st", "zext"]))
        dst = Register(draw(st.integers(0, 9)))
        src = Register(draw(st.sampled_from(sorted(init))))
        if kind == "alu" and dst in init:
            op = (0x07 if draw(st.booleans()) else 0x04) | draw(st.sampled_from(ALU_CODES))
            items.append(asm.Instruction(op | 8, dst, src))
        elif kind == "mov":
            items.append(asm.mov(dst, src))
            init.add(dst)
        elif kind == "zext" and dst in init:
            items.append(asm.mov32(dst, dst))
        elif kind == "ld":
            items.append(asm.load(asm.DW, dst, R10, draw(st.sampled_from(slots))))
            init.add(dst)
        elif kind == "st":
            items.append(asm.store(asm.DW, R10, draw(st.sampled_from(slots)), src))
    return init


@st.composite
def programs(draw: st.DrawFn, ctx: bool = False) -> list[asm.Item]:
    """Random programs; with ``ctx`` r1 is a ctx pointer saved in CTX_SLOT whose fields
    are read (``ctxld``) across calls that keep or may move the packet."""
    items: list[asm.Item] = [asm.store(asm.DW, R10, CTX_SLOT, R1)] if ctx else []
    slots = SLOTS[:1] if ctx else SLOTS   # ctx: few locals, so registers are to spare
    init = {1}
    for r in (0, 6) if ctx else (0, 2, 3, 4, 5, 6, 7, 8, 9):   # ctx: registers to spare
        if draw(st.booleans()):
            items += [asm.mov(Register(r), R1), asm.xor(Register(r), draw(IMMS))]
        else:
            items.append(asm.mov(Register(r), draw(IMMS)))
        init.add(r)
    for s in (*slots, NARROW_SLOT):
        items.append(asm.store(asm.DW, R10, s, Register(draw(st.sampled_from(sorted(init))))))
    pending: dict[str, set[int]] = {}   # label -> registers set on every jump to it
    nlabel = 0
    for _ in range(draw(st.integers(1, 40))):
        kind = draw(st.sampled_from(["alu", "alu", "alu", "mov", "ld", "st", "narrow",
                                     "call", "jmp", "ja", "label", "zext", "loop"] +
                                    (["ctxld", "ctxld", "ctxld", "move"] if ctx else [])))
        regs = sorted(init)
        dst = Register(draw(st.sampled_from(list(range(10)))))
        src = Register(draw(st.sampled_from(regs)))
        if kind == "alu" and dst in init:
            code = draw(st.sampled_from([*ALU_CODES, 0x60, 0x70, 0xC0]))
            wide = draw(st.booleans())
            op = (0x07 if wide else 0x04) | code
            if code in (0x60, 0x70, 0xC0):
                items.append(asm.Instruction(op, dst, imm=draw(st.integers(0, 31))))
            elif draw(st.booleans()):
                items.append(asm.Instruction(op | 8, dst, src))
            else:
                items.append(asm.Instruction(op, dst, imm=draw(IMMS)))
        elif kind == "mov":
            items.append(asm.mov(dst, src) if draw(st.booleans()) else asm.mov(dst, draw(IMMS)))
            init.add(dst)
        elif kind == "zext" and dst in init:
            items.append(draw(st.sampled_from([asm.mov32(dst, dst), asm.and_(dst, 0xFF),
                                               asm.and_(dst, 0xFFFF), asm.rsh(dst, 40)])))
        elif kind == "ld":
            items.append(asm.load(asm.DW, dst, R10, draw(st.sampled_from(slots))))
            init.add(dst)
        elif kind == "st":
            items.append(asm.store(asm.DW, R10, draw(st.sampled_from(slots)), src))
        elif kind == "narrow":
            size = draw(st.sampled_from([asm.W, asm.H, asm.B]))
            if draw(st.booleans()):
                items.append(asm.store(size, R10, NARROW_SLOT, src))
            else:
                items.append(asm.load(size, dst, R10, NARROW_SLOT))
                init.add(dst)
        elif kind == "call":
            items.append(asm.call(asm.Helper.KTIME_GET_NS))
            init = (init - {1, 2, 3, 4, 5}) | {0}
        elif kind == "ctxld":
            base = Register(draw(st.integers(0, 9)))
            items += [asm.load(asm.DW, base, R10, CTX_SLOT),
                      asm.load(draw(st.sampled_from([asm.W, asm.DW])), dst, base,
                               draw(st.sampled_from([0, 4])))]
            init |= {base, dst}
        elif kind == "move":   # a helper that may change packet data: ctx loads again
            items.append(asm.call(asm.Helper.XDP_ADJUST_HEAD))
            init = (init - {1, 2, 3, 4, 5}) | {0}
        elif kind in ("jmp", "ja"):
            nlabel += 1
            name = f"L{nlabel}"
            pending[name] = set(init)
            if kind == "ja":
                items.append(asm.ja(name))
                # code after an unconditional jump runs only through a label
                init = set.intersection(*pending.values()) if pending else init
            else:
                code = draw(st.sampled_from(JMP_CODES))
                fn = asm.Instruction(0x05 | code | 8, Register(draw(st.sampled_from(regs))),
                                     src, target=name) if draw(st.booleans()) else \
                    asm.Instruction(0x05 | code, Register(draw(st.sampled_from(regs))),
                                    imm=draw(IMMS), target=name)
                items.append(fn)
        elif kind == "loop":
            # a counted loop: the counter lives in its own slot, reloaded into r9
            nlabel += 1
            top = f"T{nlabel}"
            calls = draw(st.booleans())
            items += [asm.mov(R9, draw(st.integers(1, 4))),
                      asm.store(asm.DW, R10, LOOP_SLOT, R9), asm.label(top)]
            body = (init | {9}) - ({1, 2, 3, 4, 5} if calls else set())
            if calls:
                items.append(asm.call(asm.Helper.KTIME_GET_NS))
                body.add(0)
            init = straight(draw, items, body, draw(st.integers(1, 6)), slots)
            items += [asm.load(asm.DW, R9, R10, LOOP_SLOT), asm.add(R9, -1),
                      asm.store(asm.DW, R10, LOOP_SLOT, R9), asm.jne(R9, 0, top)]
        elif kind == "label" and pending:
            name = draw(st.sampled_from(sorted(pending)))
            init = init & pending.pop(name)
            items.append(asm.label(name))
    for name in sorted(pending):
        init &= pending[name]
        items.append(asm.label(name))
    regs = sorted(init)
    items.append(asm.mov(R0, Register(regs[0])))
    for r in regs[1:]:
        items.append(asm.xor(R0, Register(r)) if r != 0 else asm.add(R0, 7))
        items.append(asm.lsh(R0, 3) if r % 2 else asm.add(R0, r))
    for s in (*slots, NARROW_SLOT):
        items += [asm.load(asm.DW, R6, R10, s), asm.xor(R0, R6), asm.mul(R0, 3)]
    items.append(asm.exit())
    return items


@settings(max_examples=200, deadline=None)
@given(programs(ctx=True), st.lists(st.binary(min_size=24, max_size=24), min_size=1,
                                    max_size=3))
def test_optimised_programs_reading_a_ctx_compute_the_same(items: list[asm.Item],
                                                           inputs: list[bytes]) -> None:
    out = optimize(items, (*SLOTS, LOOP_SLOT, CTX_SLOT), entry_defs=0b10, ctx_slot=CTX_SLOT)
    for mem in inputs:
        assert interpret(out, CTX, ctx=mem) == interpret(items, CTX, ctx=mem)


@settings(max_examples=300, deadline=None)
@given(programs(), st.lists(st.integers(0, M64), min_size=1, max_size=3))
def test_optimised_programs_compute_the_same(items: list[asm.Item], inputs: list[int]
                                             ) -> None:
    out = optimize(items, (*SLOTS, LOOP_SLOT), entry_defs=0b10)
    for r1 in inputs:
        assert interpret(out, r1) == interpret(items, r1)
    assert asm.Instructions(out).slots <= asm.Instructions(items).slots


# -- targeted cases ---------------------------------------------------------------------------
def _text(items: list[asm.Item]) -> list[str]:
    return [str(i) for i in items if isinstance(i, asm.Instruction)]


def test_helper_result_goes_straight_to_the_argument_register() -> None:
    items: list[asm.Item] = [
        asm.call(asm.Helper.KTIME_GET_NS), asm.mov(R6, R0), asm.mov(R1, R6),
        asm.call(asm.Helper.KTIME_GET_NS), asm.mov(R0, 0), asm.exit()]
    assert _text(optimize(items)) == _text([
        asm.call(asm.Helper.KTIME_GET_NS), asm.mov(R1, R0), asm.call(asm.Helper.KTIME_GET_NS),
        asm.mov(R0, 0), asm.exit()])


def test_locals_live_across_calls_get_callee_saved_registers() -> None:
    items: list[asm.Item] = [
        asm.store(asm.DW, R10, -8, R1),                       # ctx saved
        asm.call(asm.Helper.KTIME_GET_NS),
        asm.mov(R6, R0), asm.store(asm.DW, R10, -16, R6),     # t = ktime()
        asm.call(asm.Helper.KTIME_GET_NS),
        asm.load(asm.DW, R6, R10, -16), asm.sub(R0, R6),      # ktime() - t
        asm.load(asm.DW, R7, R10, -8), asm.load(asm.W, R7, R7, 0), asm.add(R0, R7),
        asm.exit()]
    out = _text(optimize(items, (-8, -16)))
    assert not any("r10" in t for t in out)                   # no stack access left
    assert len(out) == 8                                      # r7 = r1 and r6 = r0 kept
    ctx = FP_BASE - 256   # a pointer into the interpreter's stack
    assert interpret(optimize(items, (-8, -16)), ctx) == interpret(items, ctx)


def test_address_taken_and_uninitialised_slots_stay_on_the_stack() -> None:
    items: list[asm.Item] = [
        asm.mov(R2, 3), asm.store(asm.DW, R10, -8, R2),
        asm.mov(R1, R10), asm.add(R1, -8), asm.load(asm.W, R3, R10, -8),  # and read narrowly
        asm.jeq(R2, 3, "skip"), asm.mov(R6, 1), asm.store(asm.DW, R10, -16, R6),
        asm.label("skip"), asm.load(asm.DW, R0, R10, -16), asm.add(R0, R3), asm.exit()]
    out = _text(optimize(items, (-8, -16)))
    assert "*(u64 *)(r10 - 0x8) = r2" in out       # -8's address is taken: not promoted
    assert "r0 = *(u64 *)(r10 - 0x10)" in out      # -16 may be read unwritten: not promoted


def test_spills_when_more_locals_cross_a_call_than_callee_saved_registers() -> None:
    items: list[asm.Item] = []
    for k in range(6):
        items += [asm.mov(R6, R1), asm.add(R6, k), asm.store(asm.DW, R10, -8 * (k + 1), R6)]
    items.append(asm.call(asm.Helper.KTIME_GET_NS))
    items.append(asm.mov(R0, 0))
    for k in range(6):
        items += [asm.load(asm.DW, R7, R10, -8 * (k + 1)), asm.add(R0, R7)]
    items.append(asm.exit())
    out = optimize(items, tuple(-8 * (k + 1) for k in range(6)))
    text = _text(out)
    assert sum("r10" in t for t in text) == 4       # two locals stay on the stack
    assert interpret(out, 11) == interpret(items, 11)


def test_jumps_thread_invert_and_vanish() -> None:
    items: list[asm.Item] = [
        asm.mov(R0, R1), asm.jgt(R0, 5, "a"), asm.ja("b"), asm.label("a"), asm.add(R0, 1),
        asm.ja("c"), asm.label("c"), asm.label("b"), asm.exit()]
    assert _text(optimize(items)) == ["r0 = r1", "if r1 <= 0x5 goto b", "r0 += 0x1", "exit"]


def test_constants_fold_into_immediates_and_decided_branches() -> None:
    items: list[asm.Item] = [
        asm.mov(R6, 4), asm.mov(R7, R6), asm.lsh(R7, 2), asm.mov(R0, R1), asm.add(R0, R7),
        asm.jeq(R7, 16, "yes"), asm.mov(R0, 0), asm.label("yes"), asm.exit()]
    assert _text(optimize(items)) == ["r0 = r1", "r0 += 0x10", "exit"]


def test_a_branch_known_on_a_path_is_decided_there() -> None:
    # ctx.load's shape: q = 0 when the header is missing, then `if q is None`
    items: list[asm.Item] = [
        asm.mov(R6, R1), asm.jgt(R6, 5, "short"), asm.ja("done"), asm.label("short"),
        asm.mov(R6, 0), asm.label("done"), asm.mov(R7, R6), asm.jeq(R7, 0, "none"),
        asm.mov(R0, R7), asm.exit(), asm.label("none"), asm.mov(R0, 7), asm.exit()]
    out = optimize(items)
    assert not any(t.endswith("= 0x0") for t in _text(out)), _text(out)
    assert len(_text(out)) <= 6, _text(out)
    for r1 in (0, 5, 6, 1 << 63):
        assert interpret(out, r1) == interpret(items, r1)


def test_ctx_field_loads_are_reused_until_a_helper_may_move_the_packet() -> None:
    def prog(second: asm.Helper) -> list[asm.Item]:
        return [
            asm.store(asm.DW, R10, -8, R1),
            asm.load(asm.DW, R6, R10, -8), asm.load(asm.W, R7, R6, 0),
            asm.store(asm.DW, R10, -16, R7),
            asm.call(asm.Helper.KTIME_GET_NS),
            asm.load(asm.DW, R6, R10, -8), asm.load(asm.W, R7, R6, 0),   # same field
            asm.load(asm.DW, R8, R10, -16), asm.add(R7, R8),
            asm.store(asm.DW, R10, -16, R7),
            asm.load(asm.DW, R1, R10, -8), asm.mov(R2, 0), asm.call(second),
            asm.load(asm.DW, R6, R10, -8), asm.load(asm.W, R0, R6, 0),   # again
            asm.load(asm.DW, R8, R10, -16), asm.add(R0, R8), asm.exit()]

    ctx = FP_BASE - 256
    kept = optimize(prog(asm.Helper.KTIME_GET_NS), (-8, -16), ctx_slot=-8)
    moved = optimize(prog(asm.Helper.XDP_ADJUST_HEAD), (-8, -16), ctx_slot=-8)
    loads = [sum(t.startswith("w") and "= *(u32 *)" in t and t.endswith("+ 0x0)")
                 for t in _text(x)) for x in (kept, moved)]
    assert loads == [1, 2], (_text(kept), _text(moved))
    for out, helper in ((kept, asm.Helper.KTIME_GET_NS), (moved, asm.Helper.XDP_ADJUST_HEAD)):
        assert interpret(out, ctx) == interpret(prog(helper), ctx)


def test_a_global_address_is_loaded_once_when_a_register_can_keep_it() -> None:
    items: list[asm.Item] = [
        asm.load_map_value(R6, "global:n", 0), asm.load(asm.DW, R7, R6, 0),
        asm.call(asm.Helper.KTIME_GET_NS), asm.add(R0, R7),
        asm.load_map_value(R6, "global:n", 0), asm.store(asm.DW, R6, 0, R0),
        asm.load_map_value(R6, "global:m", 0), asm.store(asm.DW, R6, 0, R0), asm.exit()]
    out = [i for i in optimize(items) if isinstance(i, asm.Instruction)]
    refs = [i.reference for i in out if i.is_ld_imm64]
    assert refs == ["global:n", "global:m"], out          # n's address kept in r6


def test_identical_returns_merge_into_one() -> None:
    items: list[asm.Item] = [
        asm.jeq(R1, 0, "go"), asm.mov(R0, 0), asm.exit(), asm.label("go"),
        asm.jgt(R1, 9, "big"), asm.mov(R0, 0), asm.exit(), asm.label("big"),
        asm.mov(R0, 1), asm.exit()]
    out = optimize(items)
    assert _text(out).count("r0 = 0x0") == 1 and len(_text(out)) == 6, _text(out)
    for r1 in (0, 5, 10):
        assert interpret(out, r1) == interpret(items, r1)


def test_a_map_key_is_not_stored_again_while_the_slot_holds_it() -> None:
    def prog(between: asm.Helper) -> list[asm.Item]:
        return [   # id = pid_tgid(); m[id]; ...; del m[id], as the compiler emits them
            asm.call(asm.Helper.GET_CURRENT_PID_TGID), asm.mov(R6, R0),
            asm.store(asm.DW, R10, -24, R6),
            asm.load(asm.DW, R6, R10, -24), asm.store(asm.DW, R10, -8, R6),
            asm.mov(R2, R10), asm.add(R2, -8), asm.call(asm.Helper.MAP_LOOKUP_ELEM),
            asm.mov(R1, R10), asm.add(R1, -40), asm.mov(R2, 16), asm.call(between),
            asm.load(asm.DW, R6, R10, -24), asm.store(asm.DW, R10, -8, R6),
            asm.mov(R2, R10), asm.add(R2, -8), asm.call(asm.Helper.MAP_DELETE_ELEM),
            asm.mov(R0, 0), asm.exit()]

    def key_stores(items: list[asm.Item]) -> int:
        return sum(t.startswith("*(u64 *)(r10 - 0x8)") for t in _text(items))

    assert key_stores(optimize(prog(asm.Helper.KTIME_GET_NS), (-24,))) == 1
    # bpf_get_current_comm writes through its pointer argument: the slot may have changed
    assert key_stores(optimize(prog(asm.Helper.GET_CURRENT_COMM), (-24,))) == 2


def test_a_compare_bounds_the_register_where_it_leads() -> None:
    # for i in range(63): ... i + 1 as a u32: i < 63 there, so no zero-extension is needed
    items: list[asm.Item] = [
        asm.mov(R2, R1), asm.jge(R2, 63, "out"), asm.mov(R0, R2), asm.add(R0, 1),
        asm.mov32(R0, R0), asm.exit(), asm.label("out"), asm.jslt(R2, 100, "small"),  # signed
        asm.mov(R0, 0), asm.exit(), asm.label("small"), asm.mov(R0, R2), asm.mov32(R0, R0),
        asm.exit()]
    out = optimize(items)
    assert _text(out).count("w0 = w0") == 1, _text(out)   # the second one is needed
    for r1 in (0, 62, 63, 1 << 31, 1 << 33, (1 << 64) - 1):
        assert interpret(out, r1) == interpret(items, r1)


def test_zero_extension_before_a_narrow_store_or_of_a_narrow_value_goes() -> None:
    items: list[asm.Item] = [
        asm.mov(R2, R1), asm.rsh(R2, 32), asm.mov32(R2, R2),     # already < 2**32
        asm.mov(R3, R1), asm.mov32(R3, R3), asm.store(asm.W, R10, -8, R3),  # stored as u32
        asm.mov(R0, R2), asm.exit()]
    out = _text(optimize(items))
    assert not any(t.startswith("w") for t in out), out


def test_unknown_opcodes_leave_the_function_alone() -> None:
    items: list[asm.Item] = [asm.Instruction(0x30, 0, 0, imm=12),  # ld_abs
                             asm.mov(R6, R0), asm.mov(R0, R6), asm.exit()]
    assert optimize(items) == items


HEADER = """\
from ebpf import bpf
from ebpf.bpf import u8, u16, u32, u64, i8, i16, i32, i64
"""


def module(tmp: Path, body: str, name: str) -> ModuleType:
    path = tmp / f"{name}.py"
    path.write_text(HEADER + textwrap.dedent(body))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_compiled_program_keeps_locals_in_registers_and_its_line_records(tmp_path: Path
                                                                         ) -> None:
    from ebpf.bpf._compiler import compile_program

    mod = module(tmp_path, """
        @bpf.func
        def mix(a: u64, b: u64) -> u64:
            c = a ^ b
            return c * 3

        @bpf.xdp
        def prog(ctx: bpf.XDP) -> int:
            t = bpf.ktime_get_ns()
            n: u32 = 0
            for i in range(4):
                n += u32(t >> i)
            return mix(t, n) & 1
        """, "bpf_peephole_case")
    fast = compile_program(mod.prog)
    slow = compile_program(mod.prog, optimize=False)
    assert fast.instructions.slots < slow.instructions.slots * 0.7
    listing = fast.listing()
    assert "r10" not in listing                      # every local in a register
    assert "mix:" in listing
    assert len({line for _pc, line, *_ in fast.lines}) >= 6
    pcs = [pc for pc, *_ in fast.lines]
    assert pcs == sorted(set(pcs))                   # strictly increasing, as BTF wants
    assert {pc for pc, *_ in fast.funcs} <= set(pcs)  # each function starts with a line


@pytest.mark.parametrize(("optimize_flag", "slots"), [(True, 2), (False, 3)])
def test_optimize_flag(tmp_path: Path, optimize_flag: bool, slots: int) -> None:
    from ebpf.bpf._compiler import compile_program

    mod = module(tmp_path, """
        @bpf.xdp
        def prog(ctx: bpf.XDP) -> int:
            return bpf.XDP_PASS
        """, f"bpf_peephole_flag_{optimize_flag}")
    # unoptimised, the ctx is saved to its stack slot first
    assert compile_program(mod.prog, optimize=optimize_flag).instructions.slots == slots


def test_passes_report_no_change_on_clean_code() -> None:
    code = ph.parse([asm.mov(R0, R1), asm.add(R0, R8), asm.exit()])
    f = ph.Flow(code)
    assert not ph.propagate(code, f) and not ph.coalesce(code, f) and not ph.jumps(code, f)
    assert not ph.narrow(code, f) and not ph.dce(code, f)
