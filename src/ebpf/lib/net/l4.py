"""More L3/L4 pieces: protocol numbers (GRE, SCTP...), named TCP seq/ack/window loads, the
UDP payload pointer, DNS/DHCP port predicates, IPv4 addresses as 16-byte IPv4-mapped
IPv6 (one key layout for both families).

Loads read from a bounds-checked header (``tcp.parse``/``udp.parse`` first) and give
host-order values.
"""

from __future__ import annotations

import enum

from ... import asm
from ...asm import R10, Register
from ...errors import AssemblerError
from . import bounds
from .byteorder import load_be

__all__ = ["DHCP_CLIENT_PORT", "DHCP_SERVER_PORT", "DNS_PORT", "Proto", "if_dhcp", "if_dns",
           "ipv4_mapped", "ipv6_copy", "tcp_ack", "tcp_seq", "tcp_window", "udp_payload"]

DNS_PORT = 53
DHCP_SERVER_PORT = 67
DHCP_CLIENT_PORT = 68


class Proto(enum.IntEnum):
    """IP protocol numbers (``IPPROTO_*``), including those ``packet.IPProto`` lacks."""

    ICMP = 1
    IGMP = 2
    IPIP = 4
    TCP = 6
    UDP = 17
    IPV6 = 41
    GRE = 47
    ESP = 50
    AH = 51
    ICMPV6 = 58
    SCTP = 132
    UDPLITE = 136


def tcp_seq(dst: Register, l4: Register) -> list[asm.Instruction]:
    """``dst`` = the sequence number (host order)."""
    return load_be(asm.W, dst, l4, 4)


def tcp_ack(dst: Register, l4: Register) -> list[asm.Instruction]:
    """``dst`` = the acknowledgment number (host order)."""
    return load_be(asm.W, dst, l4, 8)


def tcp_window(dst: Register, l4: Register) -> list[asm.Instruction]:
    """``dst`` = the (unscaled) window (host order)."""
    return load_be(asm.H, dst, l4, 14)


def udp_payload(dst: Register, l4: Register, end: Register, size: int, on_short: str, *,
                tmp: Register) -> asm.Fragment:
    """``dst = l4 + 8``, with ``size`` payload bytes checked readable (else ``on_short``)."""
    if len({dst, l4, end, tmp}) != 4:
        raise AssemblerError("udp_payload: registers must be distinct")
    return asm.Fragment([asm.mov(dst, l4), asm.add(dst, 8),
                         bounds.check(dst, end, max(size, 1), on_short, tmp=tmp)],
                        name="udp_payload")


def if_dns(sport: Register, dport: Register, target: str) -> list[asm.Instruction]:
    """Jump to ``target`` if either port (host order) is 53."""
    return [asm.jeq(sport, DNS_PORT, target), asm.jeq(dport, DNS_PORT, target)]


def if_dhcp(sport: Register, dport: Register, target: str) -> asm.Fragment:
    """Jump to ``target`` for DHCP (UDP 68 -> 67 or 67 -> 68)."""
    return asm.Fragment([
        asm.jeq(dport, DHCP_SERVER_PORT, "srv"), asm.jeq(dport, DHCP_CLIENT_PORT, "cli"),
        asm.ja("no"),
        asm.label("srv"), asm.jeq(sport, DHCP_CLIENT_PORT, target), asm.ja("no"),
        asm.label("cli"), asm.jeq(sport, DHCP_SERVER_PORT, target),
        asm.label("no")], name="if_dhcp")


def _frame(stack: int, n: int, what: str) -> None:
    if stack < -512 or stack + n > 0 or stack % 4:
        raise AssemblerError(f"{what}: {n} bytes at {stack} are not a 4-aligned stack slot")


def ipv4_mapped(stack: int, l3: Register, off: int, *, tmp: Register
                ) -> list[asm.Instruction]:
    """Write ``::ffff:a.b.c.d`` at ``r10 + stack`` (16 bytes) from the IPv4 address at
    ``l3 + off`` (e.g. ``ipv4.SADDR``): IPv4 and IPv6 addresses in one 16-byte key."""
    _frame(stack, 16, "ipv4_mapped")
    return [asm.store_imm(asm.W, R10, stack, 0), asm.store_imm(asm.W, R10, stack + 4, 0),
            asm.store_imm(asm.W, R10, stack + 8, int.from_bytes(b"\0\0\xff\xff", "little")),
            asm.load(asm.W, tmp, l3, off), asm.store(asm.W, R10, stack + 12, tmp)]


def ipv6_copy(stack: int, l3: Register, off: int, *, tmp: Register) -> list[asm.Instruction]:
    """Copy the 16-byte IPv6 address at ``l3 + off`` to ``r10 + stack`` (same key layout
    as :func:`ipv4_mapped`)."""
    _frame(stack, 16, "ipv6_copy")
    out: list[asm.Instruction] = []
    for i in range(0, 16, 4):
        out += [asm.load(asm.W, tmp, l3, off + i), asm.store(asm.W, R10, stack + i, tmp)]
    return out
