"""Argument set-up for helper calls, without clobbering.

A helper takes its arguments in R1-R5. Values the caller has in registers may themselves sit
in R1-R5, so moving them one after the other can overwrite an argument before it is read
(``mov r1, r2; mov r2, r1``). :func:`parallel_move` orders the moves so that every source is
read before it is overwritten, breaking cycles through a scratch register, and :func:`call`
builds a whole helper call from values of any kind: registers, immediates, stack pointers
(:class:`fp`), stack values (:class:`stack_value`) and maps (anything with ``fileno()``, or a
map name resolved at encode time).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .. import asm
from ..asm import R0, R10, Register
from ..errors import AssemblerError

__all__ = ["Arg", "MapRef", "call", "fp", "load_arg", "parallel_move", "set_reg", "stack_value"]


@dataclass(frozen=True, slots=True)
class fp:
    """A pointer into the stack: ``fp(-16)`` is ``r10 - 16`` (the verifier's ``fp-16``)."""

    off: int

    def __post_init__(self) -> None:
        if not -512 <= self.off < 0:
            raise AssemblerError(f"stack offset {self.off} is outside the frame (-512..-1)")


@dataclass(frozen=True, slots=True)
class stack_value:
    """A value read from the stack: ``stack_value(-8, asm.DW)`` is ``*(u64 *)(r10 - 8)``."""

    off: int
    size: asm.Size = asm.DW

    def __post_init__(self) -> None:
        fp(self.off)


class MapRef:
    """A map given by name, resolved when the program is encoded (``asm.load_map(r, name)``)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


Arg = Register | int | fp | stack_value | asm.HasFileno | MapRef | None


def set_reg(dst: Register, value: int) -> list[asm.Instruction]:
    """``dst = value`` for any 64-bit constant, in the fewest instructions.

    Values that fit a sign-extended s32 take one ``mov``; unsigned 32-bit values a ``mov32``
    (which zero-extends); anything else a two-slot ``ld_imm64``.
    """
    if not isinstance(value, int) or isinstance(value, bool):
        raise AssemblerError(f"set_reg: expected an int, not {value!r}")
    if not -(1 << 63) <= value < (1 << 64):
        raise AssemblerError(f"set_reg: {value} does not fit in 64 bits")
    if -0x8000_0000 <= value <= 0x7FFF_FFFF:
        return [asm.mov(dst, value)]
    if 0 <= value <= 0xFFFF_FFFF:
        return [asm.mov32(dst, value)]
    return [asm.load_imm64(dst, value)]


def load_arg(dst: Register, value: Arg) -> list[asm.Instruction]:
    """``dst = value`` for a value that reads no register but R10 (see :data:`Arg`)."""
    if isinstance(value, Register):
        return [] if value == dst else [asm.mov(dst, value)]
    if isinstance(value, bool):
        return set_reg(dst, int(value))
    if isinstance(value, int):
        return set_reg(dst, value)
    if isinstance(value, fp):
        return [asm.mov(dst, R10), asm.add(dst, value.off)]
    if isinstance(value, stack_value):
        return [asm.load(value.size, dst, R10, value.off)]
    if isinstance(value, MapRef):
        return [asm.load_map(dst, value.name)]
    if value is None:
        return []
    if hasattr(value, "fileno"):
        return [asm.load_map(dst, value)]
    raise AssemblerError(f"cannot pass {value!r} as a helper argument")


def parallel_move(moves: Sequence[tuple[Register, Arg]], tmp: Register = R0
                  ) -> list[asm.Instruction]:
    """Set several registers at once, as if every source were read before any write.

    ``moves`` pairs a destination with a value (see :data:`Arg`). Register-to-register moves
    are ordered so no source is overwritten before it is read; a cycle (``r1 <-> r2``) goes
    through ``tmp``, which must not be a destination or a source. Constants, stack and map
    values are set last.
    """
    dsts = [d for d, _ in moves]
    if len(set(dsts)) != len(dsts):
        raise AssemblerError(f"parallel_move: a register is set twice in {moves!r}")
    if R10 in dsts:
        raise AssemblerError("parallel_move: R10 is read-only")
    pending = {d: s for d, s in moves if isinstance(s, Register) and s != d}
    out: list[asm.Instruction] = []
    while pending:
        sources = set(pending.values())
        ready = [d for d in pending if d not in sources]
        if ready:
            for d in ready:
                out.append(asm.mov(d, pending.pop(d)))
            continue
        # only cycles are left: park one destination's current value in tmp
        if tmp in pending or tmp in pending.values():
            raise AssemblerError(
                f"parallel_move: the moves {moves!r} form a cycle and the scratch register "
                f"{tmp!r} is one of them")
        d = next(iter(pending))
        out.append(asm.mov(tmp, d))
        for k, s in pending.items():
            if s == d:
                pending[k] = tmp
    for d, v in moves:
        if not isinstance(v, Register):
            out.extend(load_arg(d, v))
    return out


def call(helper: int, *args: Arg, tmp: Register = R0) -> list[asm.Instruction]:
    """Call ``helper`` with ``args`` placed in R1, R2, ... (``None`` leaves a register as is).

    The result is in R0; R1-R5 are clobbered, R6-R9 kept. Register arguments may come from
    any register, including R1-R5 in any order (see :func:`parallel_move`).
    """
    if len(args) > 5:
        raise AssemblerError(f"a helper takes at most 5 arguments, not {len(args)}")
    moves = [(Register(i + 1), a) for i, a in enumerate(args) if a is not None]
    return [*parallel_move(moves, tmp), asm.call(helper)]


def check_callee_saved(what: str, **regs: object) -> None:
    """Raise unless every register given lives across a call (R6-R9)."""
    for name, r in regs.items():
        if isinstance(r, Register) and not Register.R6 <= r <= Register.R9:
            raise AssemblerError(
                f"{what}: {name}={r!r} must be a callee-saved register (R6-R9): "
                "it is read after a helper call, which clobbers R0-R5"
            )


def distinct(what: str, *regs: object) -> None:
    """Raise if two of the registers given are the same register."""
    rs = [r for r in regs if isinstance(r, Register)]
    if len(set(rs)) != len(rs):
        raise AssemblerError(f"{what}: registers must be distinct, got {rs!r}")
