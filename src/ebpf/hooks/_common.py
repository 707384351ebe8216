"""Pieces every hook module uses: returning a verdict, saving the context."""

from __future__ import annotations

from .. import asm
from ..asm import R0, R1, Register
from ..lib._call import set_reg

__all__ = ["ret", "save_ctx"]


def ret(value: int | Register) -> list[asm.Instruction]:
    """``return value``: set R0 and exit."""
    if isinstance(value, Register):
        return [*([] if value == R0 else [asm.mov(R0, value)]), asm.exit()]
    return [*set_reg(R0, int(value)), asm.exit()]


def save_ctx(ctx: Register, entry: Register = R1) -> list[asm.Instruction]:
    """Keep the context pointer (R1 at entry) in ``ctx``, usually a callee-saved register."""
    return [] if ctx == entry else [asm.mov(ctx, entry)]
