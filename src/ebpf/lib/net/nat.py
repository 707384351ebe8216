"""NAT: rewrite an address and/or port, keeping the IP and TCP/UDP checksums right.

Two flavours with the same meaning:

* :func:`rewrite` (IPv4) and :func:`rewrite6` (IPv6), for XDP or anywhere with direct
  packet access: stores through bounds-checked packet pointers and fixes the checksums with
  pure instructions (:func:`ebpf.lib.net.checksum.replace`).
* :func:`tc_rewrite` (IPv4; TC and other skb programs): works on packet offsets with
  ``bpf_skb_load_bytes``/``bpf_skb_store_bytes`` and ``bpf_l3/l4_csum_replace``. It needs no
  packet pointers, and it invalidates them: reload ``data``/``data_end`` afterwards.

Addresses and ports given as constants are in host form (``"10.0.0.1"``, ``8080``); given
in a register they must be in **wire order** (as a load from a packet or from a map holding
the raw bytes gives them; see :mod:`ebpf.lib.net.byteorder`).

:func:`dnat` / :func:`snat` and :func:`tc_dnat` / :func:`tc_snat` are the destination and
source shorthands.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from ... import asm
from ...asm import R0, R1, R2, R3, R4, R5, R10, Helper, Register
from ...errors import AssemblerError
from ...packet import IPProto
from .._call import check_callee_saved, set_reg
from .._flags import BPF_F_MARK_MANGLED_0, BPF_F_PSEUDO_HDR
from . import checksum, ipv4, ipv6, tcp, udp
from .byteorder import htons

__all__ = [
    "dnat",
    "l4_checksum_offset",
    "rewrite",
    "rewrite6",
    "snat",
    "tc_dnat",
    "tc_rewrite",
    "tc_snat",
]

Address = str | ipaddress.IPv4Address | Register
Port = int | Register
Side = Literal["src", "dst"]


def l4_checksum_offset(l4proto: int) -> int:
    """Offset of the checksum in a TCP, UDP or ICMPv6 header."""
    if l4proto == IPProto.TCP:
        return tcp.CHECK
    if l4proto == IPProto.UDP:
        return udp.CHECK
    if l4proto == IPProto.ICMPV6:
        return 2
    raise AssemblerError(f"nat: no L4 checksum handled for protocol {l4proto}")


def _offsets(side: Side) -> tuple[int, int]:
    if side == "src":
        return ipv4.SADDR, udp.SPORT
    if side == "dst":
        return ipv4.DADDR, udp.DPORT
    raise AssemblerError(f"nat: side must be 'src' or 'dst', not {side!r}")


def _set_wire(dst: Register, value: Address | Port, size: int) -> list[asm.Instruction]:
    if isinstance(value, Register):
        return [asm.mov(dst, value)] if value != dst else []
    if size == 4:
        return set_reg(dst, ipv4.address(value))
    return set_reg(dst, htons(int(value)))


def rewrite(l3: Register, l4: Register | None, *, side: Side, addr: Address | None = None,
            port: Port | None = None, l4proto: int | None = None,
            regs: tuple[Register, Register, Register, Register]) -> asm.Fragment:
    """Rewrite the source or destination address and/or port of an IPv4 packet in place.

    ``l3`` points at a bounds-checked IPv4 header, ``l4`` at a bounds-checked TCP or UDP
    header when ``l4proto`` says there is one (``IPProto.TCP``/``UDP``; ``None`` for other
    protocols: only the IP checksum is fixed). ``regs`` are four scratch registers (old,
    new, acc, tmp), distinct from ``l3``/``l4`` and from register arguments. A UDP checksum
    of 0 (none) stays 0.
    """
    old, new, acc, tmp = regs
    used = [r for r in (l3, l4, *regs) if r is not None]
    if len(set(used)) != len(used):
        raise AssemblerError("nat.rewrite: l3, l4 and the four scratch registers must differ")
    for v in (addr, port):
        if isinstance(v, Register) and v in (acc, tmp, old):
            raise AssemblerError(f"nat.rewrite: {v!r} is one of the scratch registers")
    aoff, poff = _offsets(side)
    is_udp = l4proto == IPProto.UDP
    coff = l4_checksum_offset(l4proto) if l4proto is not None else None
    if (port is not None or coff is not None) and l4 is None:
        raise AssemblerError("nat.rewrite: rewriting a port or an L4 checksum needs l4")
    if port is not None and coff is None:
        raise AssemblerError("nat.rewrite: a port rewrite needs l4proto TCP or UDP")
    insns: list[asm.Item] = []
    if addr is not None:
        insns += [*_set_wire(new, addr, 4), asm.load(asm.W, old, l3, aoff),
                  asm.store(asm.W, l3, aoff, new),
                  checksum.replace(l3, ipv4.CHECK, old, new, 4, acc=acc, tmp=tmp)]
        if coff is not None:
            assert l4 is not None
            insns.append(checksum.replace(l4, coff, old, new, 4, acc=acc, tmp=tmp, udp=is_udp))
    if port is not None:
        assert l4 is not None and coff is not None
        insns += [*_set_wire(new, port, 2), asm.load(asm.H, old, l4, poff),
                  asm.store(asm.H, l4, poff, new),
                  checksum.replace(l4, coff, old, new, 2, acc=acc, tmp=tmp, udp=is_udp)]
    return asm.Fragment(insns, name=f"nat_{side}")


def rewrite6(l3: Register, l4: Register, *, side: Side,
             addr: str | ipaddress.IPv6Address | Register | None = None,
             port: Port | None = None, l4proto: int,
             regs: tuple[Register, Register, Register, Register]) -> asm.Fragment:
    """:func:`rewrite` for IPv6: the address (a constant, or a register pointing at 16
    bytes in network order, e.g. a map value) and/or the port, with the TCP/UDP/ICMPv6
    checksum fixed (IPv6 has no header checksum; its addresses are in the L4
    pseudo-header). ``l3``/``l4`` point at bounds-checked headers.
    """
    old, new, acc, tmp = regs
    used = [l3, l4, *regs]
    if len(set(used)) != len(used):
        raise AssemblerError("nat.rewrite6: l3, l4 and the four scratch registers must differ")
    if isinstance(addr, Register) and addr in (l3, l4, *regs):
        raise AssemblerError(f"nat.rewrite6: address pointer {addr!r} is a scratch register")
    base = ipv6.SADDR if side == "src" else ipv6.DADDR if side == "dst" else None
    if base is None:
        raise AssemblerError(f"nat: side must be 'src' or 'dst', not {side!r}")
    coff = l4_checksum_offset(l4proto)
    is_udp = l4proto == IPProto.UDP
    insns: list[asm.Item] = []
    if addr is not None:
        words = None if isinstance(addr, Register) else ipv6.address(addr)
        for i in range(4):
            if words is None:
                assert isinstance(addr, Register)
                insns.append(asm.load(asm.W, new, addr, 4 * i))
            else:
                insns += set_reg(new, words[i])
            insns += [asm.load(asm.W, old, l3, base + 4 * i),
                      asm.store(asm.W, l3, base + 4 * i, new),
                      checksum.replace(l4, coff, old, new, 4, acc=acc, tmp=tmp, udp=is_udp)]
    if port is not None:
        if l4proto not in (IPProto.TCP, IPProto.UDP):
            raise AssemblerError("nat.rewrite6: a port rewrite needs l4proto TCP or UDP")
        poff = udp.SPORT if side == "src" else udp.DPORT
        insns += [*_set_wire(new, port, 2), asm.load(asm.H, old, l4, poff),
                  asm.store(asm.H, l4, poff, new),
                  checksum.replace(l4, coff, old, new, 2, acc=acc, tmp=tmp, udp=is_udp)]
    return asm.Fragment(insns, name=f"nat6_{side}")


def dnat(l3: Register, l4: Register | None, **kw: object) -> asm.Fragment:
    """:func:`rewrite` of the destination (``addr=``, ``port=``, ``l4proto=``, ``regs=``)."""
    return rewrite(l3, l4, side="dst", **kw)  # type: ignore[arg-type]


def snat(l3: Register, l4: Register | None, **kw: object) -> asm.Fragment:
    """:func:`rewrite` of the source."""
    return rewrite(l3, l4, side="src", **kw)  # type: ignore[arg-type]


def _offset_arg(dst: Register, base: int | Register, add: int) -> list[asm.Instruction]:
    if isinstance(base, Register):
        return [asm.mov(dst, base), asm.add(dst, add)]
    return set_reg(dst, base + add)


def _tc_field(ctx: Register, field: tuple[int | Register, int], size: int,
              value: Address | Port, csums: list[tuple[Helper, int | Register, int, int]],
              stack: int, on_error: str) -> list[asm.Item]:
    base, off = field
    sz = asm.W if size == 4 else asm.H
    insns: list[asm.Item] = []
    # the new value goes to fp+stack+4, the old one (read from the packet) to fp+stack
    if isinstance(value, Register):
        insns.append(asm.store(sz, R10, stack + 4, value))
    else:
        w = ipv4.address(value) if size == 4 else htons(int(value))
        insns.append(asm.store_imm(sz, R10, stack + 4, w))
    insns += [asm.mov(R1, ctx), *_offset_arg(R2, base, off),
              asm.mov(R3, R10), asm.add(R3, stack), asm.mov(R4, size),
              asm.call(Helper.SKB_LOAD_BYTES), asm.jne(R0, 0, on_error)]
    for helper, cbase, coff, flags in csums:
        insns += [asm.mov(R1, ctx), *_offset_arg(R2, cbase, coff),
                  asm.load(sz, R3, R10, stack), asm.load(sz, R4, R10, stack + 4),
                  asm.mov(R5, flags | size), asm.call(helper), asm.jne(R0, 0, on_error)]
    insns += [asm.mov(R1, ctx), *_offset_arg(R2, base, off),
              asm.mov(R3, R10), asm.add(R3, stack + 4), asm.mov(R4, size), asm.mov(R5, 0),
              asm.call(Helper.SKB_STORE_BYTES), asm.jne(R0, 0, on_error)]
    return insns


def tc_rewrite(ctx: Register, *, l3_off: int | Register, l4_off: int | Register | None = None,
               side: Side, addr: Address | None = None, port: Port | None = None,
               l4proto: int | None = None, stack: int, on_error: str) -> asm.Fragment:
    """:func:`rewrite` for skb programs, through helpers and offsets from the packet start.

    ``ctx`` (the ``__sk_buff`` pointer) and register offsets must be in R6-R9 (they are read
    after helper calls). ``stack`` is the fp offset of 8 free, 8-aligned bytes. A helper
    failure (packet too short...) jumps to ``on_error``. Clobbers R0-R5 and invalidates
    packet pointers.
    """
    check_callee_saved("nat.tc_rewrite", ctx=ctx, l3_off=l3_off, l4_off=l4_off)
    for name, v in (("addr", addr), ("port", port)):
        if isinstance(v, Register) and v in (R0, R1, R2, R3, R4, R5, R10):
            raise AssemblerError(f"nat.tc_rewrite: {name}={v!r} must be in R6-R9 (R0-R5 "
                                 "are argument registers here)")
    if stack % 8 or not -512 <= stack <= -8:
        raise AssemblerError(f"nat.tc_rewrite: stack {stack} must be an 8-aligned fp offset")
    aoff, poff = _offsets(side)
    coff = l4_checksum_offset(l4proto) if l4proto is not None else None
    if (port is not None or coff is not None) and l4_off is None:
        raise AssemblerError("nat.tc_rewrite: rewriting a port or an L4 checksum needs l4_off")
    if port is not None and coff is None:
        raise AssemblerError("nat.tc_rewrite: a port rewrite needs l4proto TCP or UDP")
    l4flags = BPF_F_MARK_MANGLED_0 if l4proto == IPProto.UDP else 0
    insns: list[asm.Item] = []
    if addr is not None:
        csums: list[tuple[Helper, int | Register, int, int]] = []
        if coff is not None:
            assert l4_off is not None
            csums.append((Helper.L4_CSUM_REPLACE, l4_off, coff, BPF_F_PSEUDO_HDR | l4flags))
        csums.append((Helper.L3_CSUM_REPLACE, l3_off, ipv4.CHECK, 0))
        insns += _tc_field(ctx, (l3_off, aoff), 4, addr, csums, stack, on_error)
    if port is not None:
        assert l4_off is not None and coff is not None
        insns += _tc_field(ctx, (l4_off, poff), 2, port,
                           [(Helper.L4_CSUM_REPLACE, l4_off, coff, l4flags)], stack, on_error)
    return asm.Fragment(insns, name=f"tc_nat_{side}")


def tc_dnat(ctx: Register, **kw: object) -> asm.Fragment:
    """:func:`tc_rewrite` of the destination."""
    return tc_rewrite(ctx, side="dst", **kw)  # type: ignore[arg-type]


def tc_snat(ctx: Register, **kw: object) -> asm.Fragment:
    """:func:`tc_rewrite` of the source."""
    return tc_rewrite(ctx, side="src", **kw)  # type: ignore[arg-type]
