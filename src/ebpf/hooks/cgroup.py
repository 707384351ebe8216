"""cgroup programs: skb filters, socket creation, connect/bind/sendmsg hooks, sock_ops,
sysctl, sockopt and device access. Each context comes from the kernel's BTF.

All of them return :class:`Verdict` (1 allows, 0 rejects), except ``sock_ops`` whose
return value is ignored (it writes ``reply`` instead).
"""

from __future__ import annotations

import enum

from .. import asm
from .._uapi import _generated_types as _t
from ..asm import R0, R1, Register
from ._common import ret, save_ctx
from ._context import Context
from .skb import CONTEXT as SKB_CONTEXT

__all__ = [
    "DEVICE_CONTEXT",
    "SKB_CONTEXT",
    "SOCKOPT_CONTEXT",
    "SOCK_ADDR_CONTEXT",
    "SOCK_CONTEXT",
    "SOCK_OPS_CONTEXT",
    "SYSCTL_CONTEXT",
    "Verdict",
    "device_field",
    "ret",
    "save_ctx",
    "skb_field",
    "sock_addr_field",
    "sock_addr_store",
    "sock_field",
    "sock_ops_field",
    "sockopt_field",
    "sysctl_field",
]

#: ``struct bpf_sock`` (``CGROUP_SOCK``)
SOCK_CONTEXT = Context(_t.BpfSock, "struct bpf_sock")
#: ``struct bpf_sock_addr`` (``CGROUP_SOCK_ADDR``: connect, bind, sendmsg, getpeername...)
SOCK_ADDR_CONTEXT = Context(_t.BpfSockAddr, "struct bpf_sock_addr")
#: ``struct bpf_sock_ops`` (``SOCK_OPS``)
SOCK_OPS_CONTEXT = Context(_t.BpfSockOps, "struct bpf_sock_ops")
#: ``struct bpf_sysctl`` (``CGROUP_SYSCTL``)
SYSCTL_CONTEXT = Context(_t.BpfSysctl, "struct bpf_sysctl")
#: ``struct bpf_sockopt`` (``CGROUP_SOCKOPT``)
SOCKOPT_CONTEXT = Context(_t.BpfSockopt, "struct bpf_sockopt")
#: ``struct bpf_cgroup_dev_ctx`` (``CGROUP_DEVICE``)
DEVICE_CONTEXT = Context(_t.BpfCgroupDevCtx, "struct bpf_cgroup_dev_ctx")


class Verdict(enum.IntEnum):
    """What cgroup programs return."""

    REJECT = 0
    ALLOW = 1


def skb_field(dst: Register, name: str, ctx: Register = R1) -> asm.Instruction:
    """``dst = skb->name`` in a ``CGROUP_SKB`` program."""
    return SKB_CONTEXT.load(dst, name, ctx)


def sock_field(dst: Register, name: str, ctx: Register = R1) -> asm.Instruction:
    """``dst = sk->name`` (``struct bpf_sock``: ``family``, ``type``, ``protocol``...)."""
    return SOCK_CONTEXT.load(dst, name, ctx)


def sock_addr_field(dst: Register, name: str, ctx: Register = R1) -> asm.Instruction:
    """``dst = ctx->name`` (``struct bpf_sock_addr``: ``user_ip4`` and ``user_port`` are in
    network order)."""
    return SOCK_ADDR_CONTEXT.load(dst, name, ctx)


def sock_addr_store(ctx: Register, name: str, src: Register | int, *,
                    scratch: Register = R0) -> list[asm.Instruction]:
    """``ctx->name = src``: rewrite the address of a connect/bind/sendmsg (network order);
    an immediate goes through ``scratch`` (no ``BPF_ST`` into the ctx before 6.3)."""
    return SOCK_ADDR_CONTEXT.store(ctx, name, src, scratch=scratch)


def sock_ops_field(dst: Register, name: str, ctx: Register = R1) -> asm.Instruction:
    """``dst = ops->name`` (``struct bpf_sock_ops``: ``op``, ``args[0]``, ``remote_port``...)."""
    return SOCK_OPS_CONTEXT.load(dst, name, ctx)


def sysctl_field(dst: Register, name: str, ctx: Register = R1) -> asm.Instruction:
    """``dst = ctx->name`` (``struct bpf_sysctl``: ``write``, ``file_pos``)."""
    return SYSCTL_CONTEXT.load(dst, name, ctx)


def sockopt_field(dst: Register, name: str, ctx: Register = R1) -> asm.Instruction:
    """``dst = ctx->name`` (``struct bpf_sockopt``: ``level``, ``optname``, ``optlen``...)."""
    return SOCKOPT_CONTEXT.load(dst, name, ctx)


def device_field(dst: Register, name: str, ctx: Register = R1) -> asm.Instruction:
    """``dst = ctx->name`` (``struct bpf_cgroup_dev_ctx``: ``access_type``, ``major``...)."""
    return DEVICE_CONTEXT.load(dst, name, ctx)
