"""``RAW_TRACEPOINT`` programs: the tracepoint's arguments as an array of u64."""

from __future__ import annotations

from .. import asm
from .._types import ProgramType
from .._uapi import _generated_types as _t
from ..asm import R1, Register
from ..errors import AssemblerError
from ._common import ret, save_ctx

__all__ = ["PROGRAM_TYPE", "arg", "ret", "save_ctx"]

PROGRAM_TYPE = ProgramType.RAW_TRACEPOINT
_ARGS = _t.BpfRawTracepointArgs.args.offset  # struct bpf_raw_tracepoint_args { u64 args[0]; }


def arg(dst: Register, n: int, ctx: Register = R1) -> asm.Instruction:
    """``dst = ctx->args[n]``: the ``n``-th argument of the tracepoint's ``TP_PROTO``."""
    if not 0 <= n < 12:
        raise AssemblerError(f"raw_tracepoint.arg: argument {n} is not in 0..11")
    return asm.load(asm.DW, dst, ctx, _ARGS + 8 * n)
