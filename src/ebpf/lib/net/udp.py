"""UDP headers: layout, parsing, ports."""

from __future__ import annotations

from ... import asm
from ...asm import Register
from ...errors import AssemblerError
from . import bounds
from .byteorder import load_be

__all__ = ["CHECK", "DPORT", "HLEN", "LEN", "SPORT", "load_ports", "parse"]

HLEN = 8
SPORT = 0
DPORT = 2
LEN = 4
CHECK = 6


def load_ports(l4: Register, *, sport: Register | None = None, dport: Register | None = None
               ) -> list[asm.Instruction]:
    """Load the ports (host order) of a bounds-checked UDP or TCP header at ``l4``."""
    out: list[asm.Instruction] = []
    if sport is not None:
        out += load_be(asm.H, sport, l4, SPORT)
    if dport is not None:
        out += load_be(asm.H, dport, l4, DPORT)
    return out


def parse(l4: Register, end: Register, *, on_short: str, tmp: Register,
          sport: Register | None = None, dport: Register | None = None) -> asm.Fragment:
    """Check the 8-byte UDP header at ``l4``; load the ports (host order) if asked."""
    regs = [r for r in (l4, end, tmp, sport, dport) if r is not None]
    if len(set(regs)) != len(regs):
        raise AssemblerError("udp.parse: registers must be distinct")
    return asm.Fragment([bounds.check(l4, end, HLEN, on_short, tmp=tmp),
                         *load_ports(l4, sport=sport, dport=dport)], name="udp_parse")
