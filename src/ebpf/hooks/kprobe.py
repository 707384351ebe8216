"""``KPROBE`` programs (kprobes, kretprobes, uprobes): arguments from ``struct pt_regs``.

Offsets follow the C calling convention of the running architecture (x86_64, aarch64,
riscv64), as libbpf's ``PT_REGS_PARM*`` do.
"""

from __future__ import annotations

from .. import asm
from .._types import ProgramType
from ..asm import R1, Register
from ._common import ret, save_ctx

__all__ = ["PROGRAM_TYPE", "arg", "register", "ret", "ret_value", "save_ctx"]

PROGRAM_TYPE = ProgramType.KPROBE


def arg(dst: Register, n: int, ctx: Register = R1, *, arch: str | None = None
        ) -> asm.Instruction:
    """``dst = PT_REGS_PARM{n+1}(ctx)``: the ``n``-th (from 0) integer argument."""
    from ..link.perf_event import pt_regs_arg_offset

    return asm.load(asm.DW, dst, ctx, pt_regs_arg_offset(n, arch))


def ret_value(dst: Register, ctx: Register = R1, *, arch: str | None = None
              ) -> asm.Instruction:
    """``dst = PT_REGS_RC(ctx)``: the return value, in a kretprobe/uretprobe."""
    from ..link.perf_event import pt_regs_return_offset

    return asm.load(asm.DW, dst, ctx, pt_regs_return_offset(arch))


def register(dst: Register, name: str, ctx: Register = R1, *, arch: str | None = None
             ) -> asm.Instruction:
    """``dst`` = the saved value of machine register ``name`` (``"rsp"``, ``"x29"``...)."""
    from ..link.perf_event import pt_regs_offset

    return asm.load(asm.DW, dst, ctx, pt_regs_offset(name, arch))
