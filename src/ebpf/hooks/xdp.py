"""XDP programs (``BPF_PROG_TYPE_XDP``): ``struct xdp_md`` access, prologue, verdicts."""

from __future__ import annotations

import enum

from .. import asm
from .._types import ProgramType
from .._uapi import _generated_types as _t
from ..asm import R1, R6, R7, R8, Helper, Register
from ..errors import AssemblerError
from ..lib._call import Arg, call
from ._common import ret, save_ctx
from ._context import Context

__all__ = [
    "CONTEXT",
    "PROGRAM_TYPE",
    "Action",
    "adjust_head",
    "adjust_meta",
    "adjust_tail",
    "data",
    "data_end",
    "data_meta",
    "field",
    "prologue",
    "ret",
    "save_ctx",
]

PROGRAM_TYPE = ProgramType.XDP
#: ``struct xdp_md``, from the kernel's BTF
CONTEXT = Context(_t.XdpMd, "struct xdp_md")


class Action(enum.IntEnum):
    """``enum xdp_action``: what an XDP program returns."""

    ABORTED = _t.XDP_ABORTED
    DROP = _t.XDP_DROP
    PASS = _t.XDP_PASS
    TX = _t.XDP_TX
    REDIRECT = _t.XDP_REDIRECT


def field(dst: Register, name: str, ctx: Register = R1) -> asm.Instruction:
    """``dst = ctx->name`` for a field of ``struct xdp_md`` (``"ingress_ifindex"``...)."""
    return CONTEXT.load(dst, name, ctx)


def data(dst: Register, ctx: Register = R1) -> asm.Instruction:
    """``dst = ctx->data``: a packet pointer to the first byte."""
    return CONTEXT.load(dst, "data", ctx)


def data_end(dst: Register, ctx: Register = R1) -> asm.Instruction:
    """``dst = ctx->data_end``: the end of the packet (compare, never dereference)."""
    return CONTEXT.load(dst, "data_end", ctx)


def data_meta(dst: Register, ctx: Register = R1) -> asm.Instruction:
    """``dst = ctx->data_meta``: start of the metadata area (it ends at ``data``)."""
    return CONTEXT.load(dst, "data_meta", ctx)


def prologue(*, ctx: Register | None = R6, data: Register | None = R7,
             data_end: Register | None = R8, entry: Register = R1) -> asm.Fragment:
    """Save the context and load the packet pointers: the usual start of an XDP program.

    Pass ``None`` to skip one. After a helper that can move the packet (``adjust_head``...),
    run it again (with ``ctx=None, entry=<saved ctx>``) to reload the pointers.
    """
    regs = [r for r in (ctx, data, data_end) if r is not None]
    if len(set(regs)) != len(regs):
        raise AssemblerError("xdp.prologue: registers must be distinct")
    src = entry
    insns: list[asm.Item] = []
    if ctx is not None:
        insns += save_ctx(ctx, entry)
        src = ctx
    if data is not None:
        if data == src:
            raise AssemblerError("xdp.prologue: data would overwrite the context pointer")
        insns.append(CONTEXT.load(data, "data", src))
    if data_end is not None:
        if data_end == src:
            raise AssemblerError("xdp.prologue: data_end would overwrite the context pointer")
        insns.append(CONTEXT.load(data_end, "data_end", src))
    return asm.Fragment(insns, name="xdp_prologue")


def adjust_head(ctx: Arg, delta: Arg) -> list[asm.Instruction]:
    """``r0 = bpf_xdp_adjust_head(ctx, delta)``: grow (delta < 0) or shrink the front.
    Invalidates packet pointers."""
    return call(Helper.XDP_ADJUST_HEAD, ctx, delta)


def adjust_tail(ctx: Arg, delta: Arg) -> list[asm.Instruction]:
    """``r0 = bpf_xdp_adjust_tail(ctx, delta)``. Invalidates packet pointers."""
    return call(Helper.XDP_ADJUST_TAIL, ctx, delta)


def adjust_meta(ctx: Arg, delta: Arg) -> list[asm.Instruction]:
    """``r0 = bpf_xdp_adjust_meta(ctx, delta)``. Invalidates packet pointers."""
    return call(Helper.XDP_ADJUST_META, ctx, delta)
