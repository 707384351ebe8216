"""Ready-made packet headers as :class:`ebpf.bpf.Struct` classes (network-order fields are
``be16``/``be32``: programs read them in host order, ``eth.proto == 0x0800``)."""

from __future__ import annotations

from .types import Struct, be16, be32, bytes_, u8

__all__ = [
    "ETH_P_ARP",
    "ETH_P_IP",
    "ETH_P_IPV6",
    "IPPROTO_ICMP",
    "IPPROTO_TCP",
    "IPPROTO_UDP",
    "TCP",
    "UDP",
    "Ethernet",
    "IPv4",
]

ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17


class Ethernet(Struct):
    """Ethernet II header (14 bytes)."""

    dst: bytes_[6]  # type: ignore[valid-type]
    src: bytes_[6]  # type: ignore[valid-type]
    proto: be16


class IPv4(Struct):
    """IPv4 header without options (20 bytes); ``ver_ihl & 0xF`` is the header length / 4."""

    ver_ihl: u8
    tos: u8
    tot_len: be16
    id: be16
    frag_off: be16
    ttl: u8
    protocol: u8
    check: be16
    saddr: be32
    daddr: be32


class UDP(Struct):
    """UDP header (8 bytes)."""

    sport: be16
    dport: be16
    len: be16
    check: be16


class TCP(Struct):
    """TCP header without options (20 bytes)."""

    sport: be16
    dport: be16
    seq: be32
    ack_seq: be32
    off_flags: be16
    window: be16
    check: be16
    urg_ptr: be16
