"""``bpf_iter`` programs (``TRACING`` with ``BPF_TRACE_ITER``): ``struct bpf_iter__<target>``.

Every iterator context starts with ``struct bpf_iter_meta *meta``, followed by the
target's pointers (``task``, ``file``, ``map``...); a NULL target marks the end. Members
of ``struct bpf_iter_meta`` are resolved from the kernel's BTF.
"""

from __future__ import annotations

from typing import Any

from .. import asm
from ..asm import R1, Register
from ..errors import AssemblerError
from . import kernel_types
from ._common import ret, save_ctx

__all__ = ["meta", "meta_field", "ret", "save_ctx", "target"]


def meta(dst: Register, ctx: Register = R1) -> asm.Instruction:
    """``dst = ctx->meta``."""
    return asm.load(asm.DW, dst, ctx, 0)


def meta_field(dst: Register, meta_ptr: Register, name: str, spec: Any = None
               ) -> asm.Instruction:
    """``dst = meta->name`` (``seq`` for ``bpf_seq_printf``, ``session_id``, ``seq_num``)."""
    return kernel_types.load(dst, meta_ptr, "bpf_iter_meta", name, spec)


def target(dst: Register, ctx: Register = R1, n: int = 1) -> asm.Instruction:
    """``dst`` = the ``n``-th pointer of the context (1: the object iterated over)."""
    if n < 1:
        raise AssemblerError("iter.target: n starts at 1 (0 is meta)")
    return asm.load(asm.DW, dst, ctx, 8 * n)
