"""``PERF_EVENT`` programs: ``struct bpf_perf_event_data`` = the sampled registers, then
``sample_period`` and ``addr``.

The registers are ``bpf_user_pt_regs_t``: ``struct pt_regs`` on x86_64 (its size from the
kernel's BTF), ``struct user_pt_regs`` on aarch64 (34 u64), ``struct user_regs_struct``
on riscv64 (32 u64).
"""

from __future__ import annotations

import ctypes

from .. import asm
from .. import platform as _platform
from .._types import ProgramType
from .._uapi import _generated_types as _t
from ..asm import R1, Register
from ..errors import NotSupportedError
from . import kprobe
from ._common import ret, save_ctx

__all__ = ["PROGRAM_TYPE", "addr", "register", "regs_size", "ret", "sample_period", "save_ctx"]

PROGRAM_TYPE = ProgramType.PERF_EVENT
register = kprobe.register


def regs_size(arch: str | None = None) -> int:
    """Size of ``bpf_user_pt_regs_t`` on ``arch`` (default: this machine)."""
    a = arch or _platform.ARCH
    if a == "x86_64":
        return ctypes.sizeof(_t.PtRegs)
    if a == "aarch64":
        return 34 * 8
    if a == "riscv64":
        return 32 * 8
    raise NotSupportedError(f"bpf_perf_event_data layout for {a}")


def sample_period(dst: Register, ctx: Register = R1, *, arch: str | None = None
                  ) -> asm.Instruction:
    """``dst = ctx->sample_period``."""
    return asm.load(asm.DW, dst, ctx, regs_size(arch))


def addr(dst: Register, ctx: Register = R1, *, arch: str | None = None) -> asm.Instruction:
    """``dst = ctx->addr`` (the sampled data address, for events that have one)."""
    return asm.load(asm.DW, dst, ctx, regs_size(arch) + 8)
