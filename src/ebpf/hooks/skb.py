"""``struct __sk_buff`` programs (TC, socket filters, cgroup skb, SK_SKB, LWT...): field
access, packet pointers, byte loads/stores through helpers."""

from __future__ import annotations

from .. import asm
from .._uapi import _generated_types as _t
from ..asm import R0, R1, R6, R7, R8, Helper, Register
from ..errors import AssemblerError
from ..lib._call import Arg, call
from ._common import ret, save_ctx
from ._context import Context

__all__ = [
    "CONTEXT",
    "data",
    "data_end",
    "field",
    "load_bytes",
    "prologue",
    "ret",
    "save_ctx",
    "store",
    "store_bytes",
]

#: ``struct __sk_buff``, from the kernel's BTF
CONTEXT = Context(_t.SkBuff, "struct __sk_buff")


def field(dst: Register, name: str, ctx: Register = R1) -> asm.Instruction:
    """``dst = skb->name`` (``"mark"``, ``"len"``, ``"cb[0]"``, ``"protocol"``...).

    ``protocol`` and ``vlan_proto`` hold the EtherType in network order, ``remote_port``
    too; ``local_port`` is in host order (as the kernel documents for ``__sk_buff``).
    """
    return CONTEXT.load(dst, name, ctx)


def store(ctx: Register, name: str, src: Register | int, *,
          scratch: Register = R0) -> list[asm.Instruction]:
    """``skb->name = src`` (``mark``, ``priority``, ``cb[i]``, ``tc_index``... as allowed);
    an immediate goes through ``scratch`` (no ``BPF_ST`` into the ctx before 6.3)."""
    return CONTEXT.store(ctx, name, src, scratch=scratch)


def data(dst: Register, ctx: Register = R1) -> asm.Instruction:
    """``dst = skb->data`` (direct packet access: TC, cgroup skb, SK_SKB, LWT, flow dissector)."""
    return CONTEXT.load(dst, "data", ctx)


def data_end(dst: Register, ctx: Register = R1) -> asm.Instruction:
    """``dst = skb->data_end``."""
    return CONTEXT.load(dst, "data_end", ctx)


def prologue(*, ctx: Register | None = R6, data: Register | None = R7,
             data_end: Register | None = R8, entry: Register = R1) -> asm.Fragment:
    """Save the context and load ``data``/``data_end``; after a helper that changes the
    packet, run it again with ``ctx=None, entry=<saved ctx>`` to reload the pointers."""
    regs = [r for r in (ctx, data, data_end) if r is not None]
    if len(set(regs)) != len(regs):
        raise AssemblerError("skb.prologue: registers must be distinct")
    src = entry
    insns: list[asm.Item] = []
    if ctx is not None:
        insns += save_ctx(ctx, entry)
        src = ctx
    for reg, name in ((data, "data"), (data_end, "data_end")):
        if reg is not None:
            if reg == src:
                raise AssemblerError(f"skb.prologue: {name} would overwrite the context")
            insns.append(CONTEXT.load(reg, name, src))
    return asm.Fragment(insns, name="skb_prologue")


def load_bytes(ctx: Arg, offset: Arg, to: Arg, length: Arg) -> list[asm.Instruction]:
    """``r0 = bpf_skb_load_bytes(ctx, offset, to, length)``: copy packet bytes (e.g. to the
    stack, ``to=fp(-16)``) without direct packet access; 0 or a negative errno."""
    return call(Helper.SKB_LOAD_BYTES, ctx, offset, to, length)


def store_bytes(ctx: Arg, offset: Arg, src: Arg, length: Arg, flags: Arg = 0
                ) -> list[asm.Instruction]:
    """``r0 = bpf_skb_store_bytes(ctx, offset, from, length, flags)``. Invalidates packet
    pointers."""
    return call(Helper.SKB_STORE_BYTES, ctx, offset, src, length, flags)
