"""TCP headers: layout, flags, parsing, payload pointer."""

from __future__ import annotations

import enum

from ... import asm
from ...asm import Register
from ...errors import AssemblerError
from ...packet import TCPFlags
from . import bounds
from .udp import load_ports

__all__ = [
    "ACK_SEQ",
    "CHECK",
    "DOFF",
    "DPORT",
    "FLAGS",
    "HLEN",
    "SEQ",
    "SPORT",
    "WINDOW",
    "Flags",
    "TCPFlags",
    "has_flags",
    "load_ports",
    "parse",
    "payload",
]

HLEN = 20
SPORT = 0
DPORT = 2
SEQ = 4
ACK_SEQ = 8
DOFF = 12  #: data offset in the high nibble, in 32-bit words
FLAGS = 13  #: FIN SYN RST PSH ACK URG ECE CWR, bit 0 first
WINDOW = 14
CHECK = 16


class Flags(enum.IntFlag):
    """The flag byte of the header (offset :data:`FLAGS`)."""

    FIN = 0x01
    SYN = 0x02
    RST = 0x04
    PSH = 0x08
    ACK = 0x10
    URG = 0x20
    ECE = 0x40
    CWR = 0x80


def parse(l4: Register, end: Register, *, on_short: str, tmp: Register,
          sport: Register | None = None, dport: Register | None = None,
          flags: Register | None = None) -> asm.Fragment:
    """Check the 20-byte TCP header at ``l4``; load ports (host order) and flags if asked."""
    regs = [r for r in (l4, end, tmp, sport, dport, flags) if r is not None]
    if len(set(regs)) != len(regs):
        raise AssemblerError("tcp.parse: registers must be distinct")
    insns: list[asm.Item] = [bounds.check(l4, end, HLEN, on_short, tmp=tmp),
                             *load_ports(l4, sport=sport, dport=dport)]
    if flags is not None:
        insns.append(asm.load(asm.B, flags, l4, FLAGS))
    return asm.Fragment(insns, name="tcp_parse")


def has_flags(flags: Register, want: int, target: str, *, tmp: Register,
              mask: int | None = None) -> asm.Fragment:
    """Jump to ``target`` if ``flags & mask == want`` (``mask`` defaults to ``want``).

    ``has_flags(f, Flags.SYN, "syn", mask=Flags.SYN | Flags.ACK)`` matches a bare SYN.
    """
    m = want if mask is None else mask
    if want & ~m:
        raise AssemblerError("tcp.has_flags: want has bits outside mask")
    return asm.Fragment([asm.mov(tmp, flags), asm.and_(tmp, int(m)),
                         asm.jeq(tmp, int(want), target)], name="tcp_has_flags")


def payload(dst: Register, l4: Register, end: Register, on_short: str, *, tmp: Register
            ) -> asm.Fragment:
    """``dst = l4 + doff * 4``, the start of the segment's data; the header (with options)
    must lie inside the packet, else ``on_short``. ``dst <= end`` afterwards."""
    if len({dst, l4, end, tmp}) != 4:
        raise AssemblerError("tcp.payload: registers must be distinct")
    return asm.Fragment([
        asm.load(asm.B, tmp, l4, DOFF), asm.rsh(tmp, 4), asm.lsh(tmp, 2),
        asm.jlt(tmp, HLEN, on_short),
        asm.mov(dst, l4), asm.add(dst, tmp), asm.jgt(dst, end, on_short),
    ], name="tcp_payload")

