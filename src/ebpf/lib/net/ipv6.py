"""IPv6 headers: layout, parsing with extension-header skipping, address comparison."""

from __future__ import annotations

import ipaddress

from ... import asm
from ...asm import Register
from ...errors import AssemblerError
from ...packet import IPProto
from . import bounds
from .byteorder import load_be, wire

__all__ = [
    "DADDR",
    "EXT_HEADERS",
    "HLEN",
    "HOP_LIMIT",
    "NEXTHDR",
    "PAYLOAD_LEN",
    "SADDR",
    "IPProto",
    "address",
    "jne_address",
    "parse",
]

HLEN = 40
PAYLOAD_LEN = 4
NEXTHDR = 6
HOP_LIMIT = 7
SADDR = 8
DADDR = 24

HOPOPTS = 0  #: ``IPPROTO_HOPOPTS``
ROUTING = 43  #: ``IPPROTO_ROUTING``
FRAGMENT = 44  #: ``IPPROTO_FRAGMENT``
DSTOPTS = 60  #: ``IPPROTO_DSTOPTS``
#: Extension headers :func:`parse` skips: length in 8-octet units after the first 8
EXT_HEADERS = (HOPOPTS, ROUTING, DSTOPTS)


def address(value: str | ipaddress.IPv6Address | int) -> tuple[int, int, int, int]:
    """An IPv6 address as four wire-order 32-bit words (what four 32-bit loads give)."""
    raw = ipaddress.IPv6Address(value).packed
    return tuple(wire(int.from_bytes(raw[i:i + 4], "big"), 4)  # type: ignore[return-value]
                 for i in range(0, 16, 4))


def jne_address(l3: Register, off: int, value: str | ipaddress.IPv6Address, target: str, *,
                tmp: Register) -> asm.Fragment:
    """Jump to ``target`` unless the 16 bytes at ``l3 + off`` (``SADDR``/``DADDR``) equal
    ``value``."""
    insns: list[asm.Instruction] = []
    for i, word in enumerate(address(value)):
        insns += [asm.load(asm.W, tmp, l3, off + 4 * i), asm.jne32(tmp, word, target)]
    return asm.Fragment(insns, name="ipv6_jne_address")


def parse(l3: Register, end: Register, *, l4: Register, proto: Register, on_short: str,
          tmp: Register, max_ext: int = 0, on_fragment: str | None = None,
          on_invalid: str | None = None) -> asm.Fragment:
    """Check the IPv6 header at ``l3``; ``proto`` = the next header, ``l4`` = where it starts.

    With ``max_ext`` > 0, up to that many hop-by-hop, routing, destination-options and
    fragment headers are skipped (unrolled), so ``proto``/``l4`` describe the upper-layer
    header; a non-first fragment jumps to ``on_fragment`` if given. A version other than 6
    jumps to ``on_invalid`` (default ``on_short``). ``l4 <= end`` afterwards.
    """
    if len({l3, end, l4, proto, tmp}) != 5:
        raise AssemblerError("ipv6.parse: l3, end, l4, proto and tmp must be distinct")
    if not 0 <= max_ext <= 8:
        raise AssemblerError(f"ipv6.parse: max_ext {max_ext} is not in 0..8")
    insns: list[asm.Item] = [
        bounds.check(l3, end, HLEN, on_short, tmp=tmp),
        asm.load(asm.B, tmp, l3, 0), asm.rsh(tmp, 4), asm.jne(tmp, 6, on_invalid or on_short),
        asm.load(asm.B, proto, l3, NEXTHDR),
        asm.mov(l4, l3), asm.add(l4, HLEN),
    ]
    for i in range(max_ext):
        insns += [
            *[asm.jeq(proto, p, f"ext{i}") for p in EXT_HEADERS],
            asm.jeq(proto, FRAGMENT, f"frag{i}"),
            asm.ja("done"),
            asm.label(f"ext{i}"),
            bounds.check(l4, end, 8, on_short, tmp=tmp),
            asm.load(asm.B, proto, l4, 0),
            asm.load(asm.B, tmp, l4, 1), asm.add(tmp, 1), asm.lsh(tmp, 3),
            asm.add(l4, tmp),
            asm.ja(f"next{i}"),
            asm.label(f"frag{i}"),
            bounds.check(l4, end, 8, on_short, tmp=tmp),
            asm.load(asm.B, proto, l4, 0),
        ]
        if on_fragment is not None:
            insns += [*load_be(asm.H, tmp, l4, 2), asm.and_(tmp, 0xFFF8),
                      asm.jne(tmp, 0, on_fragment)]
        insns += [asm.add(l4, 8), asm.label(f"next{i}")]
    insns += [asm.label("done"), asm.jgt(l4, end, on_short)]
    return asm.Fragment(insns, name="ipv6_parse")



