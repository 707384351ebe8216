"""Ethernet II: header layout, parsing (optionally through VLAN tags), MAC rewriting."""

from __future__ import annotations

from ... import asm
from ...asm import Register
from ...errors import AssemblerError
from ...packet import EtherType, mac_address
from . import bounds, vlan
from .byteorder import load_be, wire

__all__ = [
    "ALEN",
    "DST",
    "HLEN",
    "SRC",
    "TYPE",
    "EtherType",
    "parse",
    "store_mac",
    "swap_macs",
]

HLEN = 14  #: ``ETH_HLEN``
ALEN = 6  #: ``ETH_ALEN``
DST = 0  #: offset of the destination MAC
SRC = 6  #: offset of the source MAC
TYPE = 12  #: offset of the EtherType (big-endian)


def parse(data: Register, end: Register, *, proto: Register, l3: Register, on_short: str,
          tmp: Register, vlan_tags: int = 0, vid: Register | None = None) -> asm.Fragment:
    """Check the Ethernet header, load its EtherType, point ``l3`` past it.

    ``proto`` gets the EtherType in host order (compare with ``EtherType.IPV4``); ``l3`` the
    start of the next header (it may be ``data`` itself, which is then advanced). With
    ``vlan_tags`` > 0, up to that many 802.1Q/802.1ad tags are skipped (see
    :func:`ebpf.lib.net.vlan.skip`), ``proto`` is the inner EtherType and ``vid`` (if
    given) the outer VLAN id, or 0 when untagged. A frame shorter than its headers jumps to
    ``on_short``.
    """
    if len({proto, end, tmp, data}) != 4 or l3 in (proto, end, tmp):
        raise AssemblerError("ethernet.parse: data, end, proto, tmp (and l3) must be distinct")
    insns: list[asm.Item] = [
        bounds.check(data, end, HLEN, on_short, tmp=tmp),
        load_be(asm.H, proto, data, TYPE),
    ]
    if l3 != data:
        insns.append(asm.mov(l3, data))
    insns.append(asm.add(l3, HLEN))
    if vlan_tags:
        insns.append(vlan.skip(l3, end, proto=proto, on_short=on_short, tmp=tmp,
                               max_tags=vlan_tags, vid=vid))
    elif vid is not None:
        raise AssemblerError("ethernet.parse: vid needs vlan_tags > 0")
    return asm.Fragment(insns, name="eth_parse")


def swap_macs(data: Register, *, tmp1: Register, tmp2: Register) -> asm.Fragment:
    """Exchange source and destination MACs (the first 12 bytes must be bounds-checked)."""
    if len({data, tmp1, tmp2}) != 3:
        raise AssemblerError("ethernet.swap_macs: registers must be distinct")
    return asm.Fragment([
        asm.load(asm.W, tmp1, data, DST), asm.load(asm.W, tmp2, data, SRC),
        asm.store(asm.W, data, SRC, tmp1), asm.store(asm.W, data, DST, tmp2),
        asm.load(asm.H, tmp1, data, DST + 4), asm.load(asm.H, tmp2, data, SRC + 4),
        asm.store(asm.H, data, SRC + 4, tmp1), asm.store(asm.H, data, DST + 4, tmp2),
    ], name="eth_swap_macs")


def store_mac(data: Register, off: int, mac: str | bytes) -> asm.Fragment:
    """Write a constant MAC address at ``data + off`` (``DST`` or ``SRC``)."""
    raw = bytes.fromhex(mac_address(mac).replace(":", ""))
    return asm.Fragment([
        asm.store_imm(asm.W, data, off, wire(int.from_bytes(raw[:4], "big"), 4)),
        asm.store_imm(asm.H, data, off + 4, wire(int.from_bytes(raw[4:], "big"), 2)),
    ], name="eth_store_mac")
