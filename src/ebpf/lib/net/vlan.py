"""802.1Q / 802.1ad (QinQ) VLAN tags."""

from __future__ import annotations

from ... import asm
from ...asm import Register
from ...errors import AssemblerError
from ...packet import EtherType
from . import bounds
from .byteorder import load_be

__all__ = ["HLEN", "TAG_TYPES", "VID_MASK", "skip"]

HLEN = 4  #: ``VLAN_HLEN``: TCI (16 bits) then the inner EtherType
VID_MASK = 0x0FFF  #: ``VLAN_VID_MASK``
TAG_TYPES = (EtherType.VLAN, EtherType.QINQ)


def skip(l3: Register, end: Register, *, proto: Register, on_short: str, tmp: Register,
         max_tags: int = 2, vid: Register | None = None) -> asm.Fragment:
    """Skip up to ``max_tags`` VLAN tags at ``l3`` whose EtherType is in ``proto`` (host order).

    On exit ``l3`` points past the tags, ``proto`` is the EtherType after them, and ``vid``
    (if given) holds the outermost VLAN id or 0. The loop is unrolled (the verifier needs
    bounded code); a frame with more tags leaves ``proto`` at a VLAN EtherType.
    """
    if not 1 <= max_tags <= 8:
        raise AssemblerError(f"vlan.skip: max_tags {max_tags} is not in 1..8")
    if len({l3, end, proto, tmp} | ({vid} if vid is not None else set())) != (
            4 + (vid is not None)):
        raise AssemblerError("vlan.skip: registers must be distinct")
    insns: list[asm.Item] = []
    if vid is not None:
        insns.append(asm.mov(vid, 0))
    for i in range(max_tags):
        insns += [
            asm.jeq(proto, int(EtherType.VLAN), f"tag{i}"),
            asm.jeq(proto, int(EtherType.QINQ), f"tag{i}"),
            asm.ja("done"),
            asm.label(f"tag{i}"),
            bounds.check(l3, end, HLEN, on_short, tmp=tmp),
        ]
        if vid is not None and i == 0:
            insns += [*load_be(asm.H, vid, l3, 0), asm.and_(vid, VID_MASK)]
        insns += [*load_be(asm.H, proto, l3, 2), asm.add(l3, HLEN)]
    insns.append(asm.label("done"))
    return asm.Fragment(insns, name="vlan_skip")
