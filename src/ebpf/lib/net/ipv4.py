"""IPv4 headers: layout, parsing with a variable header length, TTL decrement with checksum."""

from __future__ import annotations

import ipaddress

from ... import asm
from ...asm import Register
from ...errors import AssemblerError
from ...packet import IPProto
from . import bounds, checksum
from .byteorder import load_be, wire

__all__ = [
    "CHECK",
    "DADDR",
    "FIELDS",
    "FRAG_OFF",
    "HLEN",
    "ID",
    "PROTOCOL",
    "SADDR",
    "TOS",
    "TOT_LEN",
    "TTL",
    "IPProto",
    "address",
    "decrement_ttl",
    "load",
    "parse",
]

HLEN = 20  #: header length without options
TOS = 1
TOT_LEN = 2
ID = 4
FRAG_OFF = 6  #: flags (3 bits) and fragment offset (13 bits)
TTL = 8
PROTOCOL = 9
CHECK = 10
SADDR = 12
DADDR = 16

#: name -> (offset, size) of the fixed header's fields, as in ``struct iphdr``
FIELDS: dict[str, tuple[int, asm.Size]] = {
    "version_ihl": (0, asm.B), "tos": (TOS, asm.B), "tot_len": (TOT_LEN, asm.H),
    "id": (ID, asm.H), "frag_off": (FRAG_OFF, asm.H), "ttl": (TTL, asm.B),
    "protocol": (PROTOCOL, asm.B), "check": (CHECK, asm.H), "saddr": (SADDR, asm.W),
    "daddr": (DADDR, asm.W),
}

_MF_OFFSET_MASK = 0x3FFF  # IP_MF | IP_OFFSET


def address(value: str | ipaddress.IPv4Address | int) -> int:
    """An IPv4 address (text, ``IPv4Address`` or host-order int) as a wire-order integer,
    the value a 32-bit load of the address field gives."""
    return wire(int(ipaddress.IPv4Address(value)), 4)


def load(dst: Register, l3: Register, field: str, *, host_order: bool = True
         ) -> list[asm.Instruction]:
    """``dst = iph->field`` (a name of :data:`FIELDS`), in host order unless told otherwise."""
    try:
        off, size = FIELDS[field]
    except KeyError:
        raise AssemblerError(f"ipv4.load: no field {field!r} (fields: {', '.join(FIELDS)})"
                             ) from None
    return load_be(size, dst, l3, off) if host_order else [asm.load(size, dst, l3, off)]


def parse(l3: Register, end: Register, *, l4: Register, proto: Register, on_short: str,
          tmp: Register, on_invalid: str | None = None, on_fragment: str | None = None
          ) -> asm.Fragment:
    """Check an IPv4 header at ``l3``; ``proto`` = its protocol, ``l4`` = the header after it.

    ``l4`` is ``l3 + IHL * 4`` (options skipped), not yet bounds-checked: the L4 parser does
    that. A packet shorter than 20 bytes of header, or than its IHL says, jumps to
    ``on_short``; a version other than 4 or an IHL below 5 to ``on_invalid`` (default
    ``on_short``). With ``on_fragment``, a non-first fragment (whose payload has no L4
    header) jumps there.
    """
    if len({l3, end, l4, proto, tmp}) != 5:
        raise AssemblerError("ipv4.parse: l3, end, l4, proto and tmp must be distinct")
    bad = on_invalid or on_short
    insns: list[asm.Item] = [
        bounds.check(l3, end, HLEN, on_short, tmp=tmp),
        asm.load(asm.B, tmp, l3, 0),
        asm.mov(l4, tmp), asm.rsh(l4, 4), asm.jne(l4, 4, bad),
        asm.and_(tmp, 0x0F), asm.lsh(tmp, 2), asm.jlt(tmp, HLEN, bad),
        asm.mov(l4, l3), asm.add(l4, tmp),
        asm.load(asm.B, proto, l3, PROTOCOL),
    ]
    if on_fragment is not None:
        insns += [*load_be(asm.H, tmp, l3, FRAG_OFF), asm.and_(tmp, 0x1FFF),
                  asm.jne(tmp, 0, on_fragment)]
    # the options, if any, must be inside the packet too: l4 itself is bounds-checked
    insns += [asm.jgt(l4, end, on_short)]
    return asm.Fragment(insns, name="ipv4_parse")


def decrement_ttl(l3: Register, on_expired: str, *, acc: Register, tmp: Register,
                  old: Register) -> asm.Fragment:
    """``--ttl`` with the header checksum updated incrementally (RFC 1624), as a router does.

    A TTL of 0 or 1 jumps to ``on_expired`` with the packet unchanged. The 20-byte header
    must be bounds-checked. Clobbers ``acc``, ``tmp`` and ``old``.
    """
    if len({l3, acc, tmp, old}) != 4:
        raise AssemblerError("ipv4.decrement_ttl: registers must be distinct")
    return asm.Fragment([
        asm.load(asm.B, tmp, l3, TTL),
        asm.jle(tmp, 1, on_expired),
        asm.load(asm.H, old, l3, TTL),  # the 16-bit word holding TTL and protocol, before
        asm.sub(tmp, 1), asm.store(asm.B, l3, TTL, tmp),
        # HC' = ~(~HC + ~old + new)
        asm.load(asm.H, acc, l3, CHECK), asm.xor(acc, 0xFFFF),
        asm.xor(old, 0xFFFF), asm.add(acc, old),
        asm.load(asm.H, old, l3, TTL), asm.add(acc, old),
        *checksum.fold(acc, tmp, folds=2),
        asm.xor(acc, 0xFFFF), asm.store(asm.H, l3, CHECK, acc),
    ], name="ipv4_decrement_ttl")
