"""Peephole passes over the compiler's output, one function at a time.

The code generator (``_compiler``) emits simple code: every value goes through a temporary,
helper results are copied out of r0 and back into r1..r5, jumps skip one instruction. The
passes here clean that up on a small mutable form of the instructions (:class:`Ins`), in
which register numbers from 16 up are *virtual* registers (the register allocator in
``_regalloc`` turns stack-slot locals into them and colours them afterwards):

* copy and constant propagation inside a basic block (``mov rA, rB`` then a read of ``rA``
  reads ``rB``; ``mov rA, 5`` then ``add rX, rA`` is ``add rX, 5``; ALU operations and
  conditional jumps on known constants are folded);
* coalescing: ``mov rA, rB`` where ``rB`` dies is removed by renaming ``rB``'s value (back to
  its definition) to ``rA``, or ``rA``'s uses to ``rB``;
* dead code: definitions nobody reads (liveness over the control-flow graph), ``mov r, r``,
  blocks no path reaches;
* jumps: to the next instruction (removed), to a ``ja`` (threaded), ``jcc L; ja M; L:``
  (one inverted jump);
* redundant zero-extensions and masks (``w1 = w1`` of a value known to fit in 32 bits, or
  before a store that keeps only the low bytes anyway).

Every pass keeps the labels in place, so the line records of the compiler still point at
the first instruction of their statement. Code the passes do not understand (an opcode
outside what the compiler emits) is left as it is: :func:`parse` raises
:class:`Unsupported` and the caller keeps the original instructions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .. import asm
from ..asm import Instruction, Label

__all__ = ["Func", "Ins", "Unsupported", "clean", "parse"]

LABEL = -1
NOP = -2   # a removed instruction, until the pass compacts the list
FP = 10
_VIRT = 16  # first virtual register number
_CALL_USES = 0b111110          # r1..r5
_CALL_DEFS = 0b111111          # r0..r5
_MOV64X, _MOV64K, _MOV32X, _MOV32K = 0xBF, 0xB7, 0xBC, 0xB4
_JA, _CALL, _EXIT = 0x05, 0x85, 0x95
_SIZES = {0x18: 8, 0x00: 4, 0x08: 2, 0x10: 1}   # BPF_DW, W, H, B (op & 0x18)
_NEG_JMP = {0x10: 0x50, 0x50: 0x10, 0x20: 0xB0, 0xB0: 0x20, 0x30: 0xA0, 0xA0: 0x30,
            0x60: 0xD0, 0xD0: 0x60, 0x70: 0xC0, 0xC0: 0x70}  # jeq/jne, jgt/jle, ...
_M64 = (1 << 64) - 1


class Unsupported(Exception):
    """An instruction the passes do not model; the function is left unoptimised."""


class _Fields:
    """The fields of :class:`Ins` (also laid out for :class:`_Build`)."""

    __slots__ = ("_regs", "dst", "imm", "imm2", "off", "op", "ref", "src", "target")
    op: int
    dst: int
    src: int
    off: int
    imm: int
    imm2: int
    target: str | None
    ref: object
    _regs: tuple[int, int, int, int] | None


_set = object.__setattr__


class Ins(_Fields):
    """One instruction (``op >= 0``) or a label (``op == LABEL``, name in ``target``).

    ``dst``/``src`` may be virtual registers (16 and up) between the allocator's passes.
    Built by :class:`_Build` (plain slot writes), which then makes the object an ``Ins``:
    writing nine fields through the invalidating ``__setattr__`` below cost four times as
    much, and the passes create instructions by the thousand (copies, NOPs)."""

    __slots__ = ()

    def __new__(cls, op: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0,
                imm2: int = 0, target: str | None = None, ref: object = None) -> Ins:
        return _new(op, dst, src, off, imm, imm2, target, ref, None)

    def __setattr__(self, name: str, value: object) -> None:
        # what the instruction reads and writes (see regs()) is kept until a field changes
        _set(self, name, value)
        if name != "_regs":
            _set(self, "_regs", None)

    def copy(self) -> Ins:
        return _new(self.op, self.dst, self.src, self.off, self.imm, self.imm2, self.target,
                    self.ref, self._regs)

    def __repr__(self) -> str:
        if self.op == LABEL:
            return f"{self.target}:"
        return (f"Ins({self.op:#x}, dst={self.dst}, src={self.src}, off={self.off}, "
                f"imm={self.imm}{', ' + self.target if self.target else ''})")


class _Build(_Fields):
    """An :class:`Ins` under construction: the same slots without the invalidating
    ``__setattr__``; it becomes an ``Ins`` (same layout) once its fields are set."""

    __slots__ = ()

    def __init__(self, op: int, dst: int, src: int, off: int, imm: int, imm2: int,
                 target: str | None, ref: object,
                 regs: tuple[int, int, int, int] | None) -> None:
        self.op = op
        self.dst = dst
        self.src = src
        self.off = off
        self.imm = imm
        self.imm2 = imm2
        self.target = target
        self.ref = ref
        self._regs = regs
        self.__class__ = Ins  # type: ignore[assignment]


#: ``_new(op, dst, src, off, imm, imm2, target, ref, regs)``: a new :class:`Ins`.
_new: Callable[[int, int, int, int, int, int, str | None, object,
                tuple[int, int, int, int] | None], Ins] = _Build  # type: ignore[assignment]


Func = list[Ins]


# -- what an instruction reads and writes ---------------------------------------------------
def regs(i: Ins) -> tuple[int, int, int, int]:
    """``(uses, defs, explicit_uses, explicit_defs)`` as register bit masks; the explicit ones
    are the registers named by ``dst``/``src`` (renamable), the others are implied (calls
    read r1..r5 and clobber r0..r5, ``exit`` reads r0, ``cmpxchg`` reads and writes r0).
    Kept on the instruction until one of its fields changes: the passes ask for it often."""
    got = i._regs
    if got is None:
        got = _regs(i)
        _set(i, "_regs", got)
    return got


def bits(m: int) -> list[int]:
    """The set bits of ``m`` (register numbers), lowest first."""
    if not m & (m - 1):   # none or one (most definitions)
        return [m.bit_length() - 1] if m else []
    out = []
    while m:
        low = m & -m
        out.append(low.bit_length() - 1)
        m ^= low
    return out


def _regs(i: Ins) -> tuple[int, int, int, int]:
    op = i.op
    if op < 0:
        return 0, 0, 0, 0
    cls = op & 7
    d, s = 1 << i.dst, 1 << i.src
    if cls in (4, 7):
        code = op & 0xF0
        if code == 0xB0:
            if i.off:
                raise Unsupported("movsx")
            u = s if op & 8 else 0
            return u, d, u, d
        if code in (0x80, 0xD0):  # neg, end/bswap
            return d, d, d, d
        u = d | s if op & 8 else d
        return u, d, u, d
    if cls == 1:
        if op & 0xE0 != 0x60:
            raise Unsupported("ldx mode")
        return s, d, s, d
    if cls == 3:
        mode = op & 0xE0
        if mode == 0x60:
            return d | s, 0, d | s, 0
        if mode == 0xC0:
            imm = i.imm
            if imm == 0xF1:   # cmpxchg: r0 compared and loaded
                return d | s | 1, 1, d | s, 0
            if imm & 1:       # fetch: src receives the old value
                return d | s, s, d | s, s
            return d | s, 0, d | s, 0
        raise Unsupported("stx mode")
    if cls == 2:
        if op & 0xE0 != 0x60:
            raise Unsupported("st mode")
        return d, 0, d, 0
    if cls == 5:
        code = op & 0xF0
        if code == 0x00:
            return 0, 0, 0, 0
        if code == 0x80:
            return _CALL_USES, _CALL_DEFS, 0, 0
        if code == 0x90:
            return 1, 0, 0, 0
        u = d | s if op & 8 else d
        return u, 0, u, 0
    if cls == 6:
        code = op & 0xF0
        if code in (0x00, 0x80, 0x90):
            raise Unsupported("jmp32 ja/call/exit")
        u = d | s if op & 8 else d
        return u, 0, u, 0
    if op == 0x18:
        return 0, d, 0, d
    raise Unsupported(f"opcode {op:#x}")


def has_effect(i: Ins) -> bool:
    """Stores, atomics, jumps, calls and exits; everything else only defines registers."""
    return i.op >= 0 and (i.op & 7) in (2, 3, 5, 6)


_JUMPS = frozenset([op for op in range(256) if op & 7 == 5 and op not in (0x85, 0x95)] +
                   [op for op in range(256) if op & 7 == 6])


_ENDS = _JUMPS | {_EXIT}   # the instructions that end a block


def is_jump(i: Ins) -> bool:
    """A jump within the function (``ja`` or conditional), not a call or an exit."""
    return i.op in _JUMPS


def is_cond(i: Ins) -> bool:
    return is_jump(i) and i.op != _JA


def is_mov64x(i: Ins) -> bool:
    return i.op == _MOV64X and not i.off


def rename(i: Ins, old: int, new: int) -> None:
    """Replace register ``old`` by ``new`` wherever ``i`` names it explicitly."""
    if i.dst == old:
        i.dst = new
    if src_is_reg(i) and i.src == old:
        i.src = new


def src_is_reg(i: Ins) -> bool:
    """Does the ``src`` field of ``i`` name a register?"""
    op = i.op
    cls = op & 7
    if cls in (1, 3):
        return True
    if cls in (4, 7):
        return bool(op & 8) and op & 0xF0 not in (0x80, 0xD0)
    return cls in (5, 6) and is_cond(i) and bool(op & 8)


# -- conversion -------------------------------------------------------------------------------
def parse(items: Iterable[asm.Item]) -> Func:
    """The flat item list of one function (instructions and labels only) as :class:`Ins`."""
    out: Func = []
    append = out.append
    for it in items:
        if isinstance(it, Instruction):
            # the instruction's own fields (what its properties return), read directly
            op = it._op
            ins = _new(op, int(it._dst), int(it._src), it._off, it._imm, it._imm2,
                       it._target, it._ref, None)
            if op in _JUMPS and it._target is None:
                raise Unsupported("a jump by offset")
            _set(ins, "_regs", _regs(ins))
            append(ins)
        elif isinstance(it, Label):
            append(_new(LABEL, 0, 0, 0, 0, 0, it.name, None, None))
        else:
            raise Unsupported(f"item {type(it).__name__}")
    return out


def emit(code: Func) -> list[asm.Item]:
    """Back to ``ebpf.asm`` items (every register must be physical by now)."""
    out: list[asm.Item] = []
    for i in code:
        if i.op == LABEL:
            assert i.target is not None
            out.append(asm.label(i.target))
        else:
            assert i.dst <= FP and i.src <= 15, i
            out.append(Instruction(i.op, i.dst, i.src, i.off, i.imm, i.imm2, target=i.target,
                                   reference=i.ref))  # type: ignore[arg-type]
    return out


# -- control flow and liveness ----------------------------------------------------------------
class Flow:
    """Basic blocks of ``code`` (index ranges), successors, live-in/out register masks."""

    def __init__(self, code: Func, entry_defs: int = 0) -> None:
        self.code = code
        n = len(code)
        jumps_ = _JUMPS
        ends_ = _ENDS
        targets = {i.target for i in code if i.op in jumps_}
        # block leaders: first instruction, each referenced label, each instruction after a
        # jump or exit; one pass also finds each block's last instruction and gen/kill
        starts: list[int] = []
        lasts: list[int] = []
        gen: list[int] = []
        kill: list[int] = []
        label_block: dict[str, int] = {}
        pending: list[str] = []
        new_block = True
        g = k_ = 0
        last = -1
        for k, i in enumerate(code):
            op = i.op
            if op == LABEL:
                if i.target in targets:
                    new_block = True
                    pending.append(i.target)  # type: ignore[arg-type]
                continue
            if new_block:   # (a label is pending only when a new block starts here)
                if starts:
                    lasts.append(last)
                    gen.append(g)
                    kill.append(k_)
                    g = k_ = 0
                starts.append(k)
                new_block = False
                if pending:
                    for name in pending:
                        label_block[name] = len(starts) - 1
                    pending = []
            last = k
            r = i._regs or regs(i)
            g |= r[0] & ~k_
            k_ |= r[1]
            if op in ends_:
                new_block = True
        if starts:
            lasts.append(last)
            gen.append(g)
            kill.append(k_)
        self.label_block = label_block
        self.ends_without_code = pending  # labels after the last instruction
        self.starts = starts
        self.ends = [*starts[1:], n]
        self._lasts = lasts
        nb = len(starts)
        succ: list[list[int]] = []
        preds: list[list[int]] = [[] for _ in range(nb)]
        for b in range(nb):
            li = code[lasts[b]]
            s: list[int] = []
            if li.op in jumps_:
                t = label_block.get(li.target)  # type: ignore[arg-type]
                if t is not None:
                    s.append(t)
                if li.op != _JA and b + 1 < nb:
                    s.append(b + 1)
            elif li.op != _EXIT and b + 1 < nb:
                s.append(b + 1)
            succ.append(s)
            for s2 in s:
                preds[s2].append(b)
        self.succ = succ
        #: predecessors of each block (in block order, a block once per edge)
        self.preds = preds
        # liveness by a worklist: a block is looked at again only when a successor's
        # live-in grew (the same least fixpoint as sweeping every block until none changes)
        live_in = [0] * nb
        live_out = [0] * nb
        work = list(range(nb))   # the last block first
        queued = [True] * nb
        while work:
            b = work.pop()
            queued[b] = False
            out = 0
            for s2 in succ[b]:
                out |= live_in[s2]
            live_out[b] = out
            inn = gen[b] | (out & ~kill[b])
            if inn != live_in[b]:
                live_in[b] = inn
                for p in preds[b]:
                    if not queued[p]:
                        queued[p] = True
                        work.append(p)
        self.live_in, self.live_out = live_in, live_out
        self.entry_defs = entry_defs

    def last(self, b: int) -> int | None:
        """The index of block ``b``'s last instruction (as the block was found)."""
        return self._lasts[b]

    def local_live(self, b: int) -> dict[int, int]:
        """Index -> registers live *after* that instruction, inside block ``b``."""
        out: dict[int, int] = {}
        live = self.live_out[b]
        code = self.code
        for k in range(self.ends[b] - 1, self.starts[b] - 1, -1):
            i = code[k]
            if i.op == LABEL:
                continue
            out[k] = live
            r = i._regs or regs(i)
            live = (live & ~r[1]) | r[0]
        return out

    def reachable(self) -> list[bool]:
        seen = [False] * len(self.starts)
        todo = [0] if self.starts else []
        while todo:
            b = todo.pop()
            if seen[b]:
                continue
            seen[b] = True
            todo.extend(self.succ[b])
        return seen


def forward(f: Flow, run: Callable[[int, int], int], must: bool, init: int = 0,
            entry: int = 0) -> tuple[list[int], list[int]]:
    """A forward data-flow problem over ``f``'s blocks as bit masks, by a worklist (a block
    is run again only when a predecessor's result changed: the same fixpoint as sweeping
    every block until none changes). ``run(b, in)`` gives the mask at the end of block
    ``b``. ``must``: ``in`` is the AND over the predecessors (none, or the first block: 0)
    and every result starts as ``init``; else the OR, with ``entry`` for the first block.
    Returns (in, out) per block."""
    nb = len(f.starts)
    preds, succ = f.preds, f.succ
    inn = [0] * nb
    out = [init] * nb
    work = list(range(nb - 1, -1, -1))   # the first block first
    queued = [True] * nb
    while work:
        b = work.pop()
        queued[b] = False
        ps = preds[b]
        if must:
            x = 0
            if b != 0 and ps:
                x = init
                for p in ps:
                    x &= out[p]
        else:
            x = entry if b == 0 else 0
            for p in ps:
                x |= out[p]
        inn[b] = x
        o = run(b, x)
        if o != out[b]:
            out[b] = o
            for s2 in succ[b]:
                if not queued[s2]:
                    queued[s2] = True
                    work.append(s2)
    return inn, out


def compact(code: Func) -> Func:
    return [i for i in code if i.op != NOP]


_NOP_REGS = (0, 0, 0, 0)


def _nop() -> Ins:
    return _new(NOP, 0, 0, 0, 0, 0, None, None, _NOP_REGS)


# -- passes -----------------------------------------------------------------------------------
def dce(code: Func, f: Flow) -> bool:
    """Remove unreachable blocks, ``mov r, r`` and definitions nobody reads."""
    changed = False
    seen = f.reachable()
    for b, ok in enumerate(seen):
        live = f.live_out[b]
        for k in range(f.ends[b] - 1, f.starts[b] - 1, -1):
            i = code[k]
            if i.op == LABEL:
                continue
            if not ok:
                code[k] = _nop()
                changed = True
                continue
            r = i._regs or regs(i)
            d = r[1]
            op = i.op   # (is_mov64x, has_effect inlined: this runs on every instruction)
            if (op == _MOV64X and not i.off and i.dst == i.src) or (
                    (op < 0 or (op & 7) not in (2, 3, 5, 6)) and not d & live):
                code[k] = _nop()
                changed = True
                continue
            live = (live & ~d) | r[0]
    return changed


#: Helpers that write no memory through their arguments (map operations read the key
#: and value they are given): stack contents survive them.
_NO_STACK_WRITE = frozenset({1, 2, 3, 5, 6, 7, 8, 12, 14, 15, 25, 125, 130, 131, 132, 133})


def stores(code: Func, f: Flow) -> bool:
    """Drop a store to the stack of a register the slot already holds on every path (a map
    key stored again for the next map operation)."""
    facts: dict[tuple[int, int, int], int] = {}
    for i in code:
        if i.op >= 0 and i.op & 0xE7 == 0x63 and i.dst == FP and i.src != FP:
            facts.setdefault((i.off, _SIZES[i.op & 0x18], i.src), len(facts))
    if not facts:
        return False
    full = (1 << len(facts)) - 1
    by_reg: dict[int, int] = {}
    stored: dict[int, list[tuple[int, int, int]]] = {}   # register -> (off, size, fact)
    for (off_, size_, r), n in facts.items():
        by_reg[r] = by_reg.get(r, 0) | 1 << n
        stored.setdefault(r, []).append((off_, size_, n))
    overlap: dict[tuple[int, int], int] = {}   # (off, size) stored -> the facts it ends

    def same(r: int, eq: dict[int, set[int]]) -> set[int]:
        return {r} | eq.get(r, set())

    def step(i: Ins, cur: int, eq: dict[int, set[int]]) -> int:
        """Facts after ``i``; ``eq`` (registers known equal, inside the block) updated."""
        op = i.op
        if op < 0:
            return cur
        cls = op & 7
        if op == _CALL and (i.src != 0 or i.imm not in _NO_STACK_WRITE):
            cur = 0
        elif cls in (2, 3):
            if i.dst != FP or (cls == 3 and op & 0xE0 == 0xC0):
                return 0   # through a pointer that may point into the stack
            size = _SIZES[op & 0x18]
            kill = overlap.get((i.off, size))
            if kill is None:
                kill = 0
                for (off, sz, _r), n in facts.items():
                    if off < i.off + size and i.off < off + sz:
                        kill |= 1 << n
                overlap[(i.off, size)] = kill
            cur &= ~kill
            if cls == 3 and i.src != FP:
                for r in same(i.src, eq):
                    n2 = facts.get((i.off, size, r))
                    if n2 is not None:
                        cur |= 1 << n2
            return cur
        d = (i._regs or regs(i))[1]
        if d:
            for r in (d.bit_length() - 1,) if not d & (d - 1) else bits(d):
                if r in by_reg:
                    cur &= ~by_reg[r]
                if eq:
                    for x in eq.pop(r, ()):
                        others = eq.get(x)
                        if others is not None:
                            others.discard(r)
        if op == _MOV64X and not i.off and i.dst != i.src:   # is_mov64x(i)
            group = same(i.src, eq)
            for x in group:
                eq.setdefault(x, set()).add(i.dst)
            eq[i.dst] = set(group)
            for off, sz, n in stored.get(i.src, ()):   # what the source is stored as
                if cur >> n & 1:
                    n2 = facts.get((off, sz, i.dst))
                    if n2 is not None:
                        cur |= 1 << n2
        return cur

    nb = len(f.starts)

    def run(b: int, cur: int) -> int:
        eq: dict[int, set[int]] = {}
        for k in range(f.starts[b], f.ends[b]):
            cur = step(code[k], cur, eq)
        return cur

    inn, _ = forward(f, run, True, full)
    removed = False
    for b in range(nb):
        cur = inn[b]
        eq: dict[int, set[int]] = {}
        for k in range(f.starts[b], f.ends[b]):
            i = code[k]
            if i.op >= 0 and i.op & 0xE7 == 0x63 and i.dst == FP and i.src != FP and \
                    cur >> facts[(i.off, _SIZES[i.op & 0x18], i.src)] & 1:
                code[k] = _nop()
                removed = True
                continue
            cur = step(i, cur, eq)
    return removed


def _fold(op: int, a: int, b: int) -> int | None:
    """``a op b`` on unsigned 64-bit ``a``/``b`` for ALU64 (``op & 7 == 7``) or ALU32, as
    the register value after the operation (ALU32 zero-extends), or None."""
    wide = op & 7 == 7
    bits = 64 if wide else 32
    m = (1 << bits) - 1
    a, b = a & m, b & m
    code = op & 0xF0
    r: int
    if code == 0x00:
        r = a + b
    elif code == 0x10:
        r = a - b
    elif code == 0x20:
        r = a * b
    elif code == 0x30:
        r = a // b if b else 0
    elif code == 0x40:
        r = a | b
    elif code == 0x50:
        r = a & b
    elif code == 0x60:
        if b >= bits:
            return None
        r = a << b
    elif code == 0x70:
        if b >= bits:
            return None
        r = a >> b
    elif code == 0x80:
        r = -a
    elif code == 0x90:
        r = a % b if b else a
    elif code == 0xA0:
        r = a ^ b
    elif code == 0xB0:
        r = b
    elif code == 0xC0:
        if b >= bits:
            return None
        sa = a - (1 << bits) if a >> (bits - 1) else a
        r = sa >> b
    else:
        return None
    return r & m


def _s32(v: int) -> int | None:
    """``v`` (a 64-bit register value) as a sign-extended 32-bit immediate, if it is one."""
    v &= _M64
    if v < 1 << 31:
        return v
    if v >= _M64 - (1 << 31) + 1:
        return v - (1 << 64)
    return None


def _set_const(i: Ins, v: int) -> bool:
    """Make ``i`` a mov of the register value ``v``; False when no one-slot mov gives it."""
    imm = _s32(v)
    if imm is not None:
        i.op, i.src, i.off, i.imm = _MOV64K, 0, 0, imm
        return True
    if v >> 32 == 0:
        i.op, i.src, i.off, i.imm = _MOV32K, 0, 0, v - (1 << 32) if v >> 31 else v
        return True
    return False


def _cmp(op: int, a: int, b: int) -> bool | None:
    code = op & 0xF0
    sa = a - (1 << 64) if a >> 63 else a
    sb = b - (1 << 64) if b >> 63 else b
    table = {0x10: a == b, 0x50: a != b, 0x20: a > b, 0x30: a >= b, 0xA0: a < b,
             0xB0: a <= b, 0x40: bool(a & b), 0x60: sa > sb, 0x70: sa >= sb,
             0xC0: sa < sb, 0xD0: sa <= sb}
    return table.get(code)


def _subst_reads(i: Ins, copies: dict[int, int]) -> bool:
    """Read registers through ``copies`` where ``i`` only reads them (not the ``dst`` of an
    ALU operation, which is also written)."""
    if not copies:
        return False
    op = i.op
    cls = op & 7
    old = (i.dst, i.src)
    if cls == 1:
        i.src = copies.get(i.src, i.src)
    elif cls == 2:
        i.dst = copies.get(i.dst, i.dst)
    elif cls == 3:
        i.dst = copies.get(i.dst, i.dst)
        if op & 0xE0 == 0x60 or not i.imm & 1:
            i.src = copies.get(i.src, i.src)
    elif cls in (4, 7):
        if op & 8 and op & 0xF0 not in (0x80, 0xD0):
            i.src = copies.get(i.src, i.src)
    elif is_cond(i):
        i.dst = copies.get(i.dst, i.dst)
        if op & 8:
            i.src = copies.get(i.src, i.src)
    return (i.dst, i.src) != old


def _imm_of(c: int, wide: bool) -> int | None:
    """The immediate standing for register value ``c`` as a 64-bit (sign-extended imm) or
    32-bit (low half) operand."""
    if wide:
        return _s32(c)
    lo = c & 0xFFFF_FFFF
    return lo - (1 << 32) if lo >> 31 else lo


def propagate(code: Func, f: Flow) -> bool:
    """Copy and constant propagation and folding inside each basic block."""
    changed = False
    for b in range(len(f.starts)):
        copies: dict[int, int] = {}
        readers: dict[int, set[int]] = {}   # register -> the copies of it (in ``copies``)
        consts: dict[int, int] = {}   # register -> its unsigned 64-bit value
        for k in range(f.starts[b], f.ends[b]):
            i = code[k]
            if i.op < 0:
                continue
            if copies and _subst_reads(i, copies):
                changed = True
            op = i.op
            cls = op & 7
            known: int | None = None
            if cls in (4, 7):
                code_ = op & 0xF0
                wide = cls == 7
                if op & 8 and code_ not in (0x80, 0xD0) and i.src in consts:
                    imm = _imm_of(consts[i.src], wide)
                    shift = code_ in (0x60, 0x70, 0xC0)
                    if imm is not None and not (shift and not 0 <= imm < (64 if wide else 32)):
                        i.op, i.src, i.imm = op & ~8, 0, imm
                        op = i.op
                        changed = True
                if wide and not op & 8 and (
                        (i.imm == 0 and code_ in (0x00, 0x10, 0x40, 0xA0, 0x60, 0x70, 0xC0)) or
                        (i.imm == 1 and code_ in (0x20, 0x30) and not i.off) or
                        (i.imm == -1 and code_ == 0x50)):
                    code[k] = _nop()   # x + 0, x * 1, x & -1 ...: nothing to do
                    changed = True
                    continue
                if not op & 8 and code_ != 0xD0 and not (code_ in (0x30, 0x90) and i.off):
                    if code_ == 0xB0:
                        known = i.imm & (_M64 if wide else 0xFFFF_FFFF)
                    elif i.dst in consts:
                        known = _fold(op, consts[i.dst], i.imm & _M64)
                        if known is not None:
                            saved = (i.op, i.src, i.off, i.imm)
                            if _set_const(i, known):
                                changed = True
                            else:
                                i.op, i.src, i.off, i.imm = saved
                elif is_mov64x(i) and i.src in consts:
                    known = consts[i.src]
            elif cls == 5 and op not in (_JA, _CALL, _EXIT):   # is_cond(i)
                if op & 8 and i.src in consts and i.dst not in consts:
                    imm = _s32(consts[i.src])
                    if imm is not None:
                        i.op, i.src, i.imm = op & ~8, 0, imm
                        op = i.op
                        changed = True
                a_val = consts.get(i.dst)
                b_val = consts.get(i.src) if op & 8 else i.imm & _M64
                if a_val is not None and b_val is not None:
                    taken = _cmp(op, a_val, b_val)
                    if taken is not None:
                        if taken:
                            i.op, i.dst, i.src, i.off, i.imm = _JA, 0, 0, 0, 0
                        else:
                            code[k] = _nop()
                        changed = True
                        continue
            elif op == 0x18 and i.src == 0 and i.ref is None and i.target is None:
                known = ((i.imm2 & 0xFFFF_FFFF) << 32) | (i.imm & 0xFFFF_FFFF)
                if _set_const(i, known):
                    i.imm2 = 0
                    changed = True
            # forget what this instruction overwrites
            d = (i._regs or regs(i))[1]
            if d and (consts or copies):
                for r in (d.bit_length() - 1,) if not d & (d - 1) else bits(d):
                    consts.pop(r, None)
                    s2 = copies.pop(r, None)
                    if s2 is not None:
                        readers[s2].discard(r)
                    for x in readers.pop(r, ()):
                        del copies[x]
            if known is not None:
                consts[i.dst] = known
            if i.op == _MOV64X and not i.off and i.dst != i.src and FP not in (i.src, i.dst) \
                    and not (i.dst >= _VIRT and i.src > i.dst):
                # (a temporary copied into a local is left to coalescing, which keeps the
                # local: reading the temporary instead would make it the long-lived one)
                copies[i.dst] = i.src
                readers.setdefault(i.src, set()).add(i.dst)
    return changed


def _refs(i: Ins) -> tuple[int, int]:
    """(every register ``i`` touches, the implied ones among them)."""
    u, d, eu, ed = regs(i)
    allr = u | d
    return allr, allr & ~(eu | ed)


def coalesce(code: Func, f: Flow, lives: dict[int, dict[int, int]] | None = None) -> bool:
    """Remove ``mov rA, rB`` where ``rB`` dies, by renaming one side's value in the block.

    Each block is swept until a sweep removes nothing; the liveness inside the block is
    patched where a rename moves a value from one register to the other (exactly: the
    renamed range is where the old register was live), not recomputed per move. ``lives``
    receives the liveness of each block left as it was (for :func:`narrow`)."""
    changed = False
    for b in range(len(f.starts)):
        live: dict[int, int] | None = None   # computed at the first candidate move
        touched = False
        again = True
        while again:
            again = False
            for p in range(f.starts[b], f.ends[b]):
                m = code[p]
                if m.op != _MOV64X or m.off or m.dst == m.src:   # not is_mov64x(m)
                    continue
                ra, rb = m.dst, m.src
                if FP in (ra, rb):
                    continue
                if live is None:
                    live = f.local_live(b)
                if live[p] & (1 << rb):
                    continue
                # both virtual: the value keeps the lower number (the allocator numbers
                # stack-slot locals below the code generator's temporaries)
                back_ok = not (ra >= _VIRT and rb >= _VIRT and ra > rb)
                fwd_ok = not (ra >= _VIRT and rb >= _VIRT and rb > ra)
                if (back_ok and _coalesce_back(code, f, b, p, ra, rb, live)) or \
                        (fwd_ok and _coalesce_forward(code, f, b, p, ra, rb, live)):
                    changed = again = touched = True
        if lives is not None and live is not None and not touched:
            lives[b] = live
    return changed


def _coalesce_back(code: Func, f: Flow, b: int, p: int, ra: int, rb: int,
                   live: dict[int, int]) -> bool:
    """``s: rB = ...; ...; p: rA = rB`` -> ``s: rA = ...; ...`` when rA is untouched between."""
    ba, bb = 1 << ra, 1 << rb
    web: list[int] = []
    s = None
    for j in range(p - 1, f.starts[b] - 1, -1):
        i = code[j]
        if i.op == LABEL:
            continue
        allr, implied = _refs(i)
        u, d, _, ed = regs(i)
        if implied & (ba | bb):
            return False
        if d & bb and not u & bb:   # the pure definition of rB: the web starts here
            if not ed & bb:
                return False
            s = j
            break
        if allr & ba:
            return False
        if allr & bb:
            web.append(j)
    if s is None:
        return False
    for j in (s, *web):
        rename(code[j], rb, ra)
    code[p] = _nop()
    for j in range(s, p):   # rB was live from s to p (and rA dead): now rA is
        if j in live:
            live[j] = (live[j] & ~bb) | ba
    return True


def _coalesce_forward(code: Func, f: Flow, b: int, p: int, ra: int, rb: int,
                      live: dict[int, int]) -> bool:
    """``p: rA = rB; uses of rA`` -> uses of rB, when rB is untouched until rA dies."""
    ba, bb = 1 << ra, 1 << rb
    web: list[int] = []
    end = None
    for j in range(p + 1, f.ends[b]):
        i = code[j]
        if i.op == LABEL:
            continue
        allr, implied = _refs(i)
        u, d, _, _ = regs(i)
        if allr & bb or implied & ba:
            return False
        if d & ba and not u & ba:   # rA redefined: the web ended before
            end = j
            break
        if allr & ba:
            web.append(j)
            if not live[j] & ba:
                end = j
                break
    if end is None:
        return False
    for j in web:
        rename(code[j], ra, rb)
    code[p] = _nop()
    for j in range(p + 1, end):   # rB (dead there before) is live where rA was
        x = live.get(j, 0)
        if x & ba:
            live[j] = (x & ~ba) | bb
    return True


def _width_after(i: Ins, width: dict[int, int]) -> int:
    """Bits the value ``i`` defines in its ``dst`` can need (64 when unknown)."""
    op = i.op
    cls = op & 7
    w = width.get(i.dst, 64)
    if cls == 1:
        return _SIZES[op & 0x18] * 8
    if op == _MOV64K:
        return i.imm.bit_length() if i.imm >= 0 else 64
    if op == _MOV32K:
        return (i.imm & 0xFFFF_FFFF).bit_length()
    if op == _MOV32X:
        return min(32, width.get(i.src, 64))
    if op == _MOV64X:
        return width.get(i.src, 64)
    if cls == 4:
        return 32
    if cls == 7:
        code_ = op & 0xF0
        if op & 8:
            ws = width.get(i.src, 64)
            if code_ in (0x40, 0xA0):
                return max(w, ws)
            if code_ == 0x50:
                return min(w, ws)
            if code_ == 0x00:
                return min(64, max(w, ws) + 1)
            return 64
        imm = i.imm
        if code_ == 0x50 and imm >= 0:
            return min(w, imm.bit_length())
        if code_ in (0x40, 0xA0) and imm >= 0:
            return max(w, imm.bit_length())
        if code_ == 0x70:
            return max(0, w - imm)
        if code_ == 0x60:
            return min(64, w + imm)
        if code_ == 0x20 and imm >= 0:
            return min(64, w + imm.bit_length())
        if code_ == 0x00 and imm >= 0:
            return min(64, max(w, imm.bit_length()) + 1)
        if code_ in (0x30, 0x90) and not i.off:
            return w
    return 64


def narrow(code: Func, f: Flow, lives: dict[int, dict[int, int]] | None = None) -> bool:
    """Drop zero-extensions and masks that change nothing: of a value known to fit, or
    whose every use is a store that keeps fewer bytes. ``lives``: block -> its
    :meth:`Flow.local_live` as it is now (what :func:`coalesce` computed for the blocks it
    left as they were), used instead of computing it again."""
    changed = False
    nb = len(f.starts)
    at_end: dict[int, dict[int, int]] = {}
    for b in range(nb):
        width = _entry_widths(code, f, b, f.preds[b], at_end)
        # the liveness inside the block, at its first candidate (nothing changes before)
        live: dict[int, int] | None = None
        for k in range(f.starts[b], f.ends[b]):
            i = code[k]
            op = i.op
            if op in (_MOV32X, 0x57):   # the candidates
                if live is None:
                    live = lives.pop(b, None) if lives else None
                    if live is None:
                        live = f.local_live(b)
                keep: int | None = None
                if op == _MOV32X and i.dst == i.src:
                    keep = 32
                elif op == 0x57 and i.imm > 0 and (i.imm + 1) & i.imm == 0:
                    keep = i.imm.bit_length()
                if keep is not None and (width.get(i.dst, 64) <= keep or
                                         _only_narrow_stores(code, f, b, k, i.dst, keep, live)):
                    code[k] = _nop()
                    changed = True
                    continue
                if op == _MOV32X and i.dst != i.src and (
                        width.get(i.src, 64) <= 32 or
                        _only_narrow_stores(code, f, b, k, i.dst, 32, live)):
                    i.op = _MOV64X  # a plain copy: propagation and coalescing remove it
                    changed = True
            elif op < 0:
                continue
            _, d, _, ed = i._regs or regs(i)
            if d:
                if not (ed and d == 1 << i.dst):
                    nw = 64
                elif i.op == _MOV64X:   # the most common definition (as _width_after)
                    nw = width.get(i.src, 64)
                else:
                    nw = _width_after(i, width)
                if width:
                    for r in (d.bit_length() - 1,) if not d & (d - 1) else bits(d):
                        width.pop(r, None)
                if nw < 64 and ed:
                    width[i.dst] = nw
        # only what a successor can read: a longer chain of blocks does not drag along the
        # widths of every register it ever defined
        out = f.live_out[b]
        at_end[b] = {r: w for r, w in width.items() if out >> r & 1}
    return changed


def _entry_widths(code: Func, f: Flow, b: int, preds: list[int],
                  at_end: dict[int, dict[int, int]]) -> dict[int, int]:
    """Widths known where block ``b`` starts: those its one predecessor ends with (when it
    comes earlier), narrowed by the unsigned compare that leads here (``i < 63`` in the
    body of ``for i in range(63)``)."""
    if len(preds) != 1 or preds[0] not in at_end:
        return {}
    p = preds[0]
    width = dict(at_end[p])
    last = f.last(p)
    if last is None:
        return width
    j = code[last]
    if not is_cond(j) or j.op & 7 != 5 or j.op & 8 or j.imm < 0:
        return width
    taken = f.label_block.get(j.target)  # type: ignore[arg-type]
    if taken == b == p + 1:
        return width
    code_ = j.op & 0xF0
    bound: int | None = None   # the register is at most this on the edge to b
    if b == taken:
        bound = {0xA0: j.imm - 1, 0xB0: j.imm}.get(code_)      # jlt, jle taken
    elif b == p + 1:
        bound = {0x30: j.imm - 1, 0x20: j.imm}.get(code_)      # jge, jgt not taken
    if bound is not None and bound >= 0:
        width[j.dst] = min(width.get(j.dst, 64), bound.bit_length())
    return width


def _only_narrow_stores(code: Func, f: Flow, b: int, k: int, r: int, bits: int,
                        live: dict[int, int]) -> bool:
    """Is every read of ``r`` after ``k`` (until it dies, inside the block) a store of at
    most ``bits`` bits of it, or (first) a mask to fewer bits?"""
    br = 1 << r
    if not live[k] & br:
        return True
    for j in range(k + 1, f.ends[b]):
        i = code[j]
        if i.op < 0:
            continue
        u, d, _, _ = regs(i)
        if u & br and i.op == 0x57 and i.dst == r and 0 <= i.imm < 1 << bits:
            return True   # masked to fewer bits anyway (a shift count: (i + 1) & 63)
        if u & br and not (i.op & 7 == 3 and i.op & 0xE0 == 0x60 and i.src == r and
                           i.dst != r and _SIZES[i.op & 0x18] * 8 <= bits):
            return False
        if d & br:
            return True
        if not live[j] & br:
            return True
    return False


def jumps(code: Func, f: Flow | None = None) -> bool:
    """Thread jumps to ``ja``, drop jumps to the next instruction, and turn
    ``jcc L; ja M; L:`` into ``j!cc M; L:``."""
    changed = False
    where: dict[str, int] = {}   # label -> index of the next instruction
    js: list[int] = []   # the jumps, last first
    nxt = len(code)
    for k in range(len(code) - 1, -1, -1):
        i = code[k]
        op = i.op
        if op == LABEL:
            where[i.target] = nxt  # type: ignore[index]
        else:
            nxt = k
            if op in _JUMPS:
                js.append(k)
    if not js:
        return False
    js.reverse()

    def next_insn(k: int) -> int:
        k += 1
        while k < len(code) and code[k].op < 0:
            k += 1
        return k

    def resolve(name: str | None) -> int | None:
        t = where.get(name)  # type: ignore[arg-type]
        if t is not None and t < len(code) and code[t].op < 0:
            t = next_insn(t)
        return t

    for k in js:
        i = code[k]
        hops = 0
        while hops < 8:
            t = resolve(i.target)
            if t is None or t >= len(code) or code[t].op != _JA or code[t] is i:
                break
            if code[t].target == i.target:
                break
            i.target = code[t].target
            changed = True
            hops += 1
    targets = {code[k].target for k in js}
    for k in js:
        i = code[k]
        if i.op not in _JUMPS:   # the ja after an inverted jump, removed below
            continue
        n = next_insn(k)
        t = resolve(i.target)
        if t == n:
            code[k] = _nop()
            changed = True
            continue
        if is_cond(i) and i.op & 7 == 5 and (i.op & 0xF0) in _NEG_JMP and n < len(code):
            j = code[n]
            if j.op == _JA and t == next_insn(n) and not any(
                    code[x].op == LABEL and code[x].target in targets for x in range(k + 1, n)):
                i.op = (i.op & 0x0F) | _NEG_JMP[i.op & 0xF0]
                i.target = j.target
                code[n] = _nop()
                changed = True
    return changed


_THREAD_PREFIX = 3   # instructions copied into a predecessor to decide a branch for it


def _consts_after(code: Func, start: int, end: int, consts: dict[int, int]) -> None:
    """Track register constants over ``code[start:end]`` (straight-line), in place."""
    for k in range(start, end):
        i = code[k]
        if i.op < 0:
            continue
        known: int | None = None
        op = i.op
        cls = op & 7
        if op == _MOV64K:
            known = i.imm & _M64
        elif op == _MOV32K:
            known = i.imm & 0xFFFF_FFFF
        elif is_mov64x(i) and i.src in consts:
            known = consts[i.src]
        elif cls in (4, 7) and not op & 8 and op & 0xF0 not in (0xB0, 0xD0) and \
                i.dst in consts and not (op & 0xF0 in (0x30, 0x90) and i.off):
            known = _fold(op, consts[i.dst], i.imm & _M64)
        _, d, _, _ = regs(i)
        for r in bits(d):
            consts.pop(r, None)
        if known is not None:
            consts[i.dst] = known


def _tail_pays(code: Func, f: Flow, b: int, last: int, body: list[Ins]) -> bool:
    """Is copying an exit block (``body`` then ``exit``) over the ``ja`` at ``last`` no
    bigger: a bare ``exit``, or ``r0 = rX; exit`` after a block that computes ``rX`` (the
    copy then coalesces into the computation)."""
    if not body:
        return True
    if len(body) != 1 or not is_mov64x(body[0]) or body[0].dst != 0:
        return False
    for k in range(last - 1, f.starts[b] - 1, -1):
        i = code[k]
        if i.op < 0:
            continue
        _, _, _, ed = regs(i)
        return bool(ed & (1 << body[0].src)) and not has_effect(i)
    return False


def _skipped(code: Func, f: Flow, b: int) -> bool:
    """Is block ``b`` moves and constants only, entered only by jumps, or by falling past
    a conditional jump to the next block (``jcc C; b: ...; C:``)? Then the jump appended
    to it goes away again (its values die, the jumps to it are threaded past it, or it
    inverts into that conditional jump), so threading costs nothing."""
    if b == 0 or any(has_effect(code[k]) for k in range(f.starts[b], f.ends[b])):
        return False
    prev = f.last(b - 1)
    if prev is None:
        return False
    p = code[prev]
    return p.op in (_JA, _EXIT) or (
        is_cond(p) and f.label_block.get(p.target) == b + 1)  # type: ignore[arg-type]


def thread(code: Func, names: list[int], prefix_: str = "peep", f: Flow | None = None) -> bool:
    """Decide a branch for the predecessors that know its outcome: a block that ends by
    falling (or jumping) into ``[a few moves/ALU ops]; jcc ...`` with the operands known as
    constants at its end gets a copy of those ops and a jump to where the branch goes
    (``q = 0`` for a missing packet header, then ``if q == 0``: straight to the None case).
    Also copies a short exit block (``r0 = 2; exit``) over a ``ja`` to it. ``names``
    numbers the labels it adds. Changes the list; run it on compacted code (``f``: its
    flow, when the caller has it)."""
    if f is None:
        f = Flow(code)
    nb = len(f.starts)
    edits: dict[int, list[Ins]] = {}      # insert after this index
    new_labels: dict[int, str] = {}       # insert a label before this index
    label_of: dict[int, str] = {}         # block -> a label naming its start
    for i in code:
        if i.op == LABEL and i.target in f.label_block:
            label_of.setdefault(f.label_block[i.target], i.target)

    def first_real(b: int) -> int:
        k = f.starts[b]
        while k < f.ends[b] and code[k].op < 0:
            k += 1
        return k

    def name_block(b: int) -> str:
        if b not in label_of:
            names[0] += 1
            label_of[b] = f"{prefix_}.{names[0]}"
            new_labels[f.starts[b]] = label_of[b]
        return label_of[b]

    for b in range(nb):
        last = f.last(b)
        if last is None:
            continue
        li = code[last]
        if li.op == _JA:
            c = f.label_block.get(li.target)  # type: ignore[arg-type]
        elif not is_jump(li) and li.op != _EXIT and b + 1 < nb and _skipped(code, f, b):
            c = b + 1   # the jump added here inverts into the one that skips this block
        else:
            continue
        if c is None or c == b:
            continue
        k0 = first_real(c)
        prefix = [code[k] for k in range(k0, f.ends[c]) if code[k].op >= 0]
        if not prefix:
            continue
        j = prefix[-1]
        body = prefix[:-1]
        if is_cond(j) and j.op & 7 == 5 and len(body) <= _THREAD_PREFIX and \
                not any(has_effect(x) for x in body):
            consts: dict[int, int] = {}
            _consts_after(code, f.starts[b], last + 1, consts)
            scratch = [x.copy() for x in body]
            _consts_after(scratch, 0, len(scratch), consts)
            a_val = consts.get(j.dst)
            b_val = consts.get(j.src) if j.op & 8 else j.imm & _M64
            if a_val is None or b_val is None:
                continue
            taken = _cmp(j.op, a_val, b_val)
            if taken is None:
                continue
            if taken:
                dest = j.target
            elif c + 1 < nb:
                dest = name_block(c + 1)
            else:
                continue
            tail = [*scratch, Ins(_JA, target=dest)]
        elif j.op == _EXIT and li.op == _JA and _tail_pays(code, f, b, last, body):
            tail = [x.copy() for x in prefix]
        else:
            continue
        if li.op == _JA:
            code[last] = _nop()
        edits[last] = tail
    if not edits:
        return False
    out: Func = []
    for k, i in enumerate(code):
        if k in new_labels:
            out.append(Ins(LABEL, target=new_labels[k]))
        out.append(i)
        if k in edits:
            out.extend(edits[k])
    code[:] = compact(out)
    return True


def merge_exits(code: Func, names: list[int], prefix_: str = "peep") -> bool:
    """Keep one ``r0 = K; exit`` per constant K: the others jump to it (two instructions
    become one, and a ``jcc L; ja M; L:`` that results inverts into one jump). Changes the
    list; run it on compacted code."""
    targets = {i.target for i in code if i.op in _JUMPS}
    seen: dict[int, list[int]] = {}
    k = 0
    n = len(code)
    while k < n:
        i = code[k]
        if i.op == _MOV64K and i.dst == 0:
            j = k + 1
            while j < n and code[j].op == LABEL and code[j].target not in targets:
                j += 1
            if j < n and code[j].op == _EXIT:
                seen.setdefault(i.imm, []).append(k)
        k += 1
    groups = {imm: ks for imm, ks in seen.items() if len(ks) > 1}
    if not groups:
        return False
    insert: dict[int, str] = {}
    for ks in groups.values():
        keep = ks[-1]
        name = None
        j = keep - 1
        while j >= 0 and code[j].op == LABEL:
            name = code[j].target
            j -= 1
        if name is None:
            names[0] += 1
            name = f"{prefix_}.{names[0]}"
            insert[keep] = name
        for k in ks[:-1]:
            j = k + 1
            while code[j].op != _EXIT:
                j += 1
            code[k] = Ins(_JA, target=name)
            code[j] = _nop()
    out: Func = []
    for k, i in enumerate(code):
        if k in insert:
            out.append(Ins(LABEL, target=insert[k]))
        out.append(i)
    code[:] = compact(out)
    return True


def clean(code: Func, rounds: int = 12, final: bool = False,
          flow_out: list[Flow] | None = None) -> Func:
    """Run the passes until nothing changes (at most ``rounds`` times).

    The passes of one round share one :class:`Flow` and mark removed instructions
    :data:`NOP` instead of shifting the list: within a round the blocks stay where they
    were and every change only shrinks what is live across them (or leaves it as it was),
    so the round's liveness stays a safe over-approximation. Each pass recomputes what it
    needs inside a block. :func:`thread` adds instructions, so it runs last, alone.
    ``final`` (machine registers only, last clean-up) adds :func:`stores`. ``flow_out``
    receives the :class:`Flow` of the result when the last round built one (the caller's
    next pass need not build it again)."""
    # labels added here are named after the function's first label, unique in the program
    base = f"{code[0].target}.peep" if code and code[0].op == LABEL else "peep"
    names = [sum(1 for i in code if i.op == LABEL and (i.target or "").startswith(base + "."))]
    f: Flow | None = None
    for n in range(rounds):
        if f is None:
            f = Flow(code)
        changed = propagate(code, f)
        lives: dict[int, dict[int, int]] = {}
        changed |= coalesce(code, f, lives)
        changed |= narrow(code, f, lives)
        changed |= jumps(code, f)
        if dce(code, f):
            changed = True
            jumps(code, f)   # a jump the removed code left pointing at the next instruction
        if final:
            changed |= stores(code, f)
        if changed or (n == 0 and any(i.op == NOP for i in code)):
            code[:] = compact(code)
            f = Flow(code)
        # (else every pass left the code as it was: the round's flow still describes it)
        moved = thread(code, names, base, f)
        moved |= merge_exits(code, names, base)
        if moved:
            f = None   # else the next round starts from the code this flow describes
        elif not changed:
            break
    if f is not None and flow_out is not None:
        flow_out.append(f)
    return code
