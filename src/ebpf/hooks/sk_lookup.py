"""``SK_LOOKUP`` programs: pick the socket for an incoming connection (Linux 5.9)."""

from __future__ import annotations

from .. import asm
from .._types import ProgramType
from .._uapi import _generated_types as _t
from ..asm import R1, Helper, Register
from ..lib._call import Arg, call
from ._common import ret, save_ctx
from ._context import Context
from .socket import Verdict

__all__ = [
    "CONTEXT",
    "F_NO_REUSEPORT",
    "F_REPLACE",
    "PROGRAM_TYPE",
    "Verdict",
    "assign",
    "field",
    "ret",
    "save_ctx",
]

PROGRAM_TYPE = ProgramType.SK_LOOKUP
#: ``struct bpf_sk_lookup``, from the kernel's BTF
CONTEXT = Context(_t.BpfSkLookup, "struct bpf_sk_lookup")
F_REPLACE = _t.BPF_SK_LOOKUP_F_REPLACE
F_NO_REUSEPORT = _t.BPF_SK_LOOKUP_F_NO_REUSEPORT


def field(dst: Register, name: str, ctx: Register = R1) -> asm.Instruction:
    """``dst = ctx->name``: ``family``, ``protocol``, ``local_port`` (host order),
    ``remote_port`` (network order, 16 bits), ``local_ip4``/``remote_ip4`` (network order),
    ``local_ip6[i]``..."""
    return CONTEXT.load(dst, name, ctx)


def assign(ctx: Arg, sk: Arg, flags: Arg = 0) -> list[asm.Instruction]:
    """``r0 = bpf_sk_assign(ctx, sk, flags)``: select ``sk`` (from a SOCKMAP lookup)."""
    return call(Helper.SK_ASSIGN, ctx, sk, flags)
