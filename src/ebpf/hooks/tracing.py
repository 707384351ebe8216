"""BTF-typed programs whose context is an array of u64 arguments: ``fentry``/``fexit``/
``fmod_ret`` (``TRACING``), ``LSM``, ``STRUCT_OPS`` callbacks, ``tp_btf`` and iterators.

Argument ``n`` is at ``ctx + 8 * n`` whatever its C type; an ``fexit`` program finds the
return value after the last argument (:func:`ret_value`).
"""

from __future__ import annotations

from .. import asm
from .._types import ProgramType
from ..asm import R1, Register
from ..errors import AssemblerError
from ._common import ret, save_ctx

__all__ = ["PROGRAM_TYPE", "arg", "ret", "ret_value", "save_ctx"]

PROGRAM_TYPE = ProgramType.TRACING
_MAX_ARGS = 12  # MAX_BPF_FUNC_ARGS


def arg(dst: Register, n: int, ctx: Register = R1) -> asm.Instruction:
    """``dst`` = argument ``n`` (from 0) of the traced function, LSM hook or callback."""
    if not 0 <= n < _MAX_ARGS:
        raise AssemblerError(f"tracing.arg: argument {n} is not in 0..{_MAX_ARGS - 1}")
    return asm.load(asm.DW, dst, ctx, 8 * n)


def ret_value(dst: Register, nargs: int, ctx: Register = R1) -> asm.Instruction:
    """``dst`` = the return value in an ``fexit``/``fmod_ret`` program of a function taking
    ``nargs`` arguments (the kernel puts it after them)."""
    if not 0 <= nargs <= _MAX_ARGS:
        raise AssemblerError(f"tracing.ret_value: nargs {nargs} is not in 0..{_MAX_ARGS}")
    return asm.load(asm.DW, dst, ctx, 8 * nargs)
