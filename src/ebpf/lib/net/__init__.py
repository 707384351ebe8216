"""In-program packet libraries: bounds checks, header parsers, checksums, NAT.

Each function returns instructions (an :class:`ebpf.asm.Fragment` or a list) to splice into a
program; labels inside fragments are private to each use, and jump targets passed in
(``on_short="pass"``) are labels of the surrounding program. Registers are always explicit
arguments: a fragment touches only the registers it is given.

A typical XDP parse::

    from ebpf.lib.net import ethernet, ipv4, udp, EtherType, IPProto
    from ebpf.hooks import xdp

    insns = [
        xdp.prologue(ctx=R6, data=R2, data_end=R3),
        ethernet.parse(R2, R3, proto=R4, l3=R5, on_short="pass", tmp=R1, vlan_tags=2),
        asm.jne(R4, EtherType.IPV4, "pass"),
        ipv4.parse(R5, R3, l4=R7, proto=R4, on_short="pass", tmp=R1),
        asm.jne(R4, IPProto.UDP, "pass"),
        udp.parse(R7, R3, on_short="pass", tmp=R1, dport=R8),
        ...
    ]
"""

from __future__ import annotations

from ...packet import EtherType, IPProto
from . import bounds, byteorder, checksum, ethernet, icmp, ipv4, ipv6, nat, tcp, udp, vlan

__all__ = [
    "EtherType",
    "IPProto",
    "bounds",
    "byteorder",
    "checksum",
    "ethernet",
    "icmp",
    "ipv4",
    "ipv6",
    "nat",
    "tcp",
    "udp",
    "vlan",
]
