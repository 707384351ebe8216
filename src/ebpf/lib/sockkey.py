"""Socket keys for ``SOCKHASH`` maps and per-connection state (clj-ebpf sock-key builders):
one layout built in programs from a ``sock_ops``, ``sk_msg`` or ``sk_skb`` context and in
Python from addresses.

* v4: ``local_ip4, remote_ip4`` (network order) then ``local_port, remote_port`` (host
  order u32): 16 bytes.
* v6: ``local_ip6[4], remote_ip6[4]`` then the ports: 40 bytes.

``reverse=True`` swaps the local and remote halves: the key of the peer socket (what an
``sk_msg`` program redirects to on a local proxy). The contexts keep ``remote_port`` in
network order in the upper 16 bits of a u32 (little-endian), ``local_port`` in host
order; the builders convert.
"""

from __future__ import annotations

import ipaddress
import socket
import struct

from .. import asm
from .._uapi import _generated_types as _t
from ..asm import R10, Register
from ..errors import AssemblerError

__all__ = ["KEY_V4_SIZE", "KEY_V6_SIZE", "key_v4", "key_v6", "store_key_v4", "store_key_v6"]

KEY_V4_SIZE = 16
KEY_V6_SIZE = 40

_CTX = {"sock_ops": _t.BpfSockOps, "sk_msg": _t.SkMsgMd, "sk_skb": _t.SkBuff}


def _offsets(ctx_kind: str) -> dict[str, int]:
    try:
        c = _CTX[ctx_kind]
    except KeyError:
        raise AssemblerError(f"sockkey: context {ctx_kind!r} is not one of "
                             f"{', '.join(_CTX)}") from None
    return {f: getattr(c, f).offset for f in ("local_ip4", "remote_ip4", "local_ip6",
                                              "remote_ip6", "local_port", "remote_port")}


def _frame(stack: int, n: int) -> None:
    if stack < -512 or stack + n > 0 or stack % 8:
        raise AssemblerError(f"sockkey: {n} bytes at {stack} are no 8-aligned stack slot")


def _ports(out: list[asm.Instruction], ctx: Register, o: dict[str, int], stack: int,
           base: int, tmp: Register, reverse: bool) -> None:
    lp, rp = (base + 4, base) if reverse else (base, base + 4)
    out += [asm.load(asm.W, tmp, ctx, o["local_port"]), asm.store(asm.W, R10, stack + lp, tmp),
            asm.load(asm.W, tmp, ctx, o["remote_port"]), asm.to_be(tmp, 32),
            asm.store(asm.W, R10, stack + rp, tmp)]


def store_key_v4(ctx: Register, stack: int, *, tmp: Register, kind: str = "sock_ops",
                 reverse: bool = False) -> list[asm.Instruction]:
    """Write the v4 key of the socket behind ``ctx`` (``kind``: ``sock_ops``, ``sk_msg``,
    ``sk_skb``) at ``r10 + stack``."""
    _frame(stack, KEY_V4_SIZE)
    if tmp == ctx:
        raise AssemblerError("sockkey: tmp must differ from ctx")
    o = _offsets(kind)
    a, b = ("remote_ip4", "local_ip4") if reverse else ("local_ip4", "remote_ip4")
    out = [asm.load(asm.W, tmp, ctx, o[a]), asm.store(asm.W, R10, stack, tmp),
           asm.load(asm.W, tmp, ctx, o[b]), asm.store(asm.W, R10, stack + 4, tmp)]
    _ports(out, ctx, o, stack, 8, tmp, reverse)
    return out


def store_key_v6(ctx: Register, stack: int, *, tmp: Register, kind: str = "sock_ops",
                 reverse: bool = False) -> list[asm.Instruction]:
    """Write the v6 key (40 bytes) of the socket behind ``ctx`` at ``r10 + stack``."""
    _frame(stack, KEY_V6_SIZE)
    if tmp == ctx:
        raise AssemblerError("sockkey: tmp must differ from ctx")
    o = _offsets(kind)
    a, b = ("remote_ip6", "local_ip6") if reverse else ("local_ip6", "remote_ip6")
    out: list[asm.Instruction] = []
    for i in range(4):
        out += [asm.load(asm.W, tmp, ctx, o[a] + 4 * i),
                asm.store(asm.W, R10, stack + 4 * i, tmp),
                asm.load(asm.W, tmp, ctx, o[b] + 4 * i),
                asm.store(asm.W, R10, stack + 16 + 4 * i, tmp)]
    _ports(out, ctx, o, stack, 32, tmp, reverse)
    return out


def key_v4(local: tuple[str, int], remote: tuple[str, int]) -> bytes:
    """The v4 key from ``(address, port)`` pairs, as the programs build it."""
    return (socket.inet_aton(local[0]) + socket.inet_aton(remote[0])
            + struct.pack("=II", local[1], remote[1]))


def key_v6(local: tuple[str, int], remote: tuple[str, int]) -> bytes:
    """The v6 key from ``(address, port)`` pairs."""
    return (ipaddress.IPv6Address(local[0]).packed + ipaddress.IPv6Address(remote[0]).packed
            + struct.pack("=II", local[1], remote[1]))
