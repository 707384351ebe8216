"""ICMP and ICMPv6: the common 8-byte header (type, code, checksum, rest)."""

from __future__ import annotations

from ... import asm
from ...asm import Register
from ...errors import AssemblerError
from ...packet import ICMPType, ICMPv6Type
from . import bounds

__all__ = ["CHECK", "CODE", "HLEN", "ID", "SEQ", "TYPE", "ICMPType", "ICMPv6Type", "parse"]

HLEN = 8
TYPE = 0
CODE = 1
CHECK = 2
ID = 4  #: echo identifier
SEQ = 6  #: echo sequence number


def parse(l4: Register, end: Register, *, on_short: str, tmp: Register,
          type: Register | None = None, code: Register | None = None) -> asm.Fragment:
    """Check the 8-byte ICMP/ICMPv6 header at ``l4``; load type and code if asked."""
    regs = [r for r in (l4, end, tmp, type, code) if r is not None]
    if len(set(regs)) != len(regs):
        raise AssemblerError("icmp.parse: registers must be distinct")
    insns: list[asm.Item] = [bounds.check(l4, end, HLEN, on_short, tmp=tmp)]
    if type is not None:
        insns.append(asm.load(asm.B, type, l4, TYPE))
    if code is not None:
        insns.append(asm.load(asm.B, code, l4, CODE))
    return asm.Fragment(insns, name="icmp_parse")
