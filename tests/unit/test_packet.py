"""Unit tests of ebpf.packet: builders, parsers, checksums against independent references."""

from __future__ import annotations

import ipaddress
import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ebpf.errors import ParseError
from ebpf.packet import (
    ARP,
    ICMP,
    TCP,
    UDP,
    Dot1Q,
    Ethernet,
    EtherType,
    ICMPType,
    ICMPv6,
    ICMPv6Type,
    IPProto,
    IPv4,
    IPv6,
    Packet,
    TCPFlags,
    internet_checksum,
    mac_address,
    parse,
    parse_ip,
)

A = "02:00:00:00:00:01"
B = "02:00:00:00:00:02"


def ref_checksum(data: bytes) -> int:
    """A deliberately different RFC 1071 implementation: byte pairs, end-around carry each step."""
    total = 0
    for i in range(0, len(data), 2):
        hi = data[i]
        lo = data[i + 1] if i + 1 < len(data) else 0
        total += (hi << 8) | lo
        total = (total & 0xFFFF) + (total >> 16)
    return (~total) & 0xFFFF


def ref_l4_checksum(src: str, dst: str, proto: int, segment: bytes) -> int:
    s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    if s.version == 4:
        pseudo = s.packed + d.packed + bytes([0, proto]) + len(segment).to_bytes(2, "big")
    else:
        pseudo = s.packed + d.packed + len(segment).to_bytes(4, "big") + b"\0\0\0" + bytes([proto])
    return ref_checksum(pseudo + segment)


# --- checksums against published reference values --------------------------------------------


def test_rfc1071_example() -> None:
    # RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (one's complement).
    assert internet_checksum(bytes.fromhex("0001f203f4f5f6f7")) == (~0xDDF2) & 0xFFFF


def test_known_ipv4_header_checksum() -> None:
    # The classic example header (Wikipedia "IPv4 header checksum"): checksum b861.
    hdr = bytes.fromhex("450000730000400040110000c0a80001c0a800c7")
    assert internet_checksum(hdr) == 0xB861
    built = bytes(
        IPv4(src="192.168.0.1", dst="192.168.0.199", proto=17, flags=2, total_length=0x73)
    )
    assert built == bytes.fromhex("45000073000040004011b861c0a80001c0a800c7")


def test_checksum_odd_length_and_zero() -> None:
    assert internet_checksum(b"\x01") == ref_checksum(b"\x01") == 0xFEFF
    assert internet_checksum(b"") == 0xFFFF
    assert internet_checksum(b"\xff\xff") == 0


@settings(max_examples=200)
@given(st.binary(max_size=300))
def test_checksum_matches_reference(data: bytes) -> None:
    assert internet_checksum(data) == ref_checksum(data)
    # A buffer with its checksum appended sums to zero (on even lengths).
    if len(data) % 2 == 0:
        assert internet_checksum(data + internet_checksum(data).to_bytes(2, "big")) == 0


# --- building ---------------------------------------------------------------------------------


def test_udp_ipv4_frame_layout_and_checksums() -> None:
    frame = bytes(
        Ethernet(src=A, dst=B)
        / IPv4(src="10.0.0.1", dst="10.0.0.2", id=7)
        / UDP(sport=1234, dport=53)
        / b"hello"
    )
    assert frame[:6] == bytes.fromhex("020000000002") and frame[6:12] == bytes.fromhex(
        "020000000001"
    )
    assert frame[12:14] == b"\x08\x00"
    ip = frame[14:34]
    assert ip[0] == 0x45 and ip[9] == 17
    assert struct.unpack("!H", ip[2:4])[0] == 20 + 8 + 5
    assert ref_checksum(ip) == 0  # valid header checksum
    udp = frame[34:]
    assert struct.unpack("!HHH", udp[:6]) == (1234, 53, 13)
    assert ref_l4_checksum("10.0.0.1", "10.0.0.2", 17, udp) == 0
    assert udp[8:] == b"hello"


def test_udp_ipv6_checksum() -> None:
    pkt = IPv6(src="fd00::1", dst="fd00::2") / UDP(sport=5, dport=6) / b"abc"
    raw = bytes(pkt)
    assert raw[0] >> 4 == 6 and raw[6] == 17 and struct.unpack("!H", raw[4:6])[0] == 11
    assert ref_l4_checksum("fd00::1", "fd00::2", 17, raw[40:]) == 0


def test_udp_zero_checksum_sent_as_ffff() -> None:
    # Find a payload whose UDP checksum computes to 0 and check it goes out as 0xFFFF.
    base = IPv4(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2, checksum=0)
    raw = bytes(base / b"\0\0")
    partial = ref_l4_checksum("10.0.0.1", "10.0.0.2", 17, raw[20:])
    # Choose the 2 payload bytes so the final sum is 0xFFFF, i.e. checksum 0.
    fix = partial.to_bytes(2, "big")
    pkt = parse_ip(bytes(IPv4(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2) / fix))
    assert pkt[UDP].checksum == 0xFFFF
    assert pkt.checksum_errors() == []


def test_tcp_checksum_and_options() -> None:
    tcp = TCP(
        sport=40000, dport=80, seq=1, flags=TCPFlags.SYN | TCPFlags.ACK, options=b"\x02\x04\x05"
    )
    raw = bytes(IPv4(src="10.1.1.1", dst="10.1.1.2") / tcp / b"data")
    seg = raw[20:]
    assert seg[12] >> 4 == 6  # 5 words + 3 option bytes padded to 4
    assert seg[13] == 0x12
    assert seg[20:24] == b"\x02\x04\x05\x00"
    assert ref_l4_checksum("10.1.1.1", "10.1.1.2", 6, seg) == 0
    raw6 = bytes(IPv6(src="fd00::a", dst="fd00::b") / TCP(sport=1, dport=2))
    assert ref_l4_checksum("fd00::a", "fd00::b", 6, raw6[40:]) == 0


def test_icmp_echo() -> None:
    raw = bytes(IPv4(src="10.0.0.1", dst="10.0.0.2") / ICMP(id=0x1234, seq=3) / b"ping")
    msg = raw[20:]
    assert msg[0] == 8 and struct.unpack("!HH", msg[4:8]) == (0x1234, 3)
    assert ref_checksum(msg) == 0
    assert raw[9] == 1
    assert bytes(ICMP(type=ICMPType.ECHO_REPLY)) == bytes.fromhex("0000ffff00000000")


def test_icmpv6_echo_pseudo_header() -> None:
    raw = bytes(IPv6(src="fd00::1", dst="fd00::2") / ICMPv6(id=1, seq=2) / b"x")
    assert raw[6] == 58
    assert raw[40] == ICMPv6Type.ECHO_REQUEST
    assert ref_l4_checksum("fd00::1", "fd00::2", 58, raw[40:]) == 0
    with pytest.raises(ValueError, match="enclosing IPv4/IPv6"):
        bytes(ICMPv6(id=1))
    assert bytes(ICMPv6(id=1, checksum=0))[2:4] == b"\0\0"
    with pytest.raises(ValueError, match="ICMPv6 inside IPv4"):
        bytes(IPv4() / ICMPv6())


def test_l4_without_ip_needs_explicit_checksum() -> None:
    with pytest.raises(ValueError, match="UDP checksum needs"):
        bytes(UDP(sport=1, dport=2))
    assert bytes(UDP(sport=1, dport=2, checksum=0)) == bytes.fromhex("0001000200080000")
    with pytest.raises(ValueError, match="TCP checksum needs"):
        bytes(TCP())


def test_vlan_and_arp() -> None:
    raw = bytes(
        Ethernet(src=A) / Dot1Q(vid=100, pcp=5, dei=1) / IPv4(dst="10.0.0.9") / UDP(dport=9)
    )
    assert raw[12:14] == b"\x81\x00"
    tci = struct.unpack("!H", raw[14:16])[0]
    assert (tci >> 13, (tci >> 12) & 1, tci & 0xFFF) == (5, 1, 100)
    assert raw[16:18] == b"\x08\x00"
    arp = bytes(Ethernet(src=A) / ARP(op=1, sha=A, spa="10.0.0.1", tpa="10.0.0.2"))
    assert arp[12:14] == b"\x08\x06"
    assert arp[14:22] == bytes.fromhex("0001080006040001")
    assert len(arp) == 14 + 28


def test_explicit_fields_are_kept() -> None:
    raw = bytes(
        IPv4(src="1.1.1.1", dst="2.2.2.2", checksum=0xDEAD, total_length=99) / UDP(checksum=7)
    )
    assert raw[10:12] == b"\xde\xad" and raw[2:4] == (99).to_bytes(2, "big")
    assert raw[26:28] == b"\x00\x07"
    assert bytes(Ethernet(type=0x1234) / b"x")[12:] == b"\x12\x34x"


def test_auto_types_need_a_known_inner_layer() -> None:
    with pytest.raises(ValueError, match="set type="):
        bytes(Ethernet() / b"payload")
    with pytest.raises(ValueError, match="set the protocol"):
        bytes(IPv4() / b"payload")


def test_field_range_checks() -> None:
    with pytest.raises(ValueError):
        IPv4(ttl=256)
    with pytest.raises(ValueError):
        UDP(sport=70000)
    with pytest.raises(ValueError):
        Dot1Q(vid=4096)
    with pytest.raises(ValueError):
        IPv6(flow_label=1 << 20)
    with pytest.raises(ValueError):
        IPv4(src="300.1.1.1")
    with pytest.raises(ValueError):
        TCP(options=b"x" * 41)


def test_mac_address_forms() -> None:
    assert mac_address("AA-BB-CC-DD-EE-FF") == "aa:bb:cc:dd:ee:ff"
    assert mac_address(b"\x01\x02\x03\x04\x05\x06") == "01:02:03:04:05:06"
    assert mac_address("1:2:3:4:5:6") == "01:02:03:04:05:06"
    for bad in ("aa:bb", "zz:bb:cc:dd:ee:ff", "aaa:bb:cc:dd:ee:ff"):
        with pytest.raises(ValueError):
            mac_address(bad)
    with pytest.raises(ValueError):
        mac_address(b"\x01")


def test_enum_values_match_socket_module() -> None:
    assert IPProto.TCP == socket.IPPROTO_TCP
    assert IPProto.UDP == socket.IPPROTO_UDP
    assert IPProto.ICMP == socket.IPPROTO_ICMP
    assert IPProto.ICMPV6 == socket.IPPROTO_ICMPV6
    assert EtherType.IPV4 == 0x0800 and EtherType.IPV6 == 0x86DD


# --- parsing ----------------------------------------------------------------------------------


SAMPLES = [
    Ethernet(src=A, dst=B)
    / IPv4(src="10.0.0.1", dst="10.0.0.2", id=9, flags=2)
    / UDP(sport=1, dport=2)
    / b"x",
    Ethernet(src=A, dst=B)
    / IPv6(src="fd00::1", dst="fd00::2", flow_label=5)
    / UDP(sport=1, dport=2),
    Ethernet(src=A)
    / Dot1Q(vid=7)
    / IPv4(src="10.0.0.1", dst="10.0.0.2")
    / TCP(sport=3, dport=4, options=b"\x01\x01\x01\x01"),
    Ethernet(src=A)
    / Dot1Q(vid=1)
    / Dot1Q(vid=2)
    / IPv6(src="::1", dst="::2")
    / ICMPv6(id=5, seq=6)
    / b"ab",
    Ethernet(src=A)
    / IPv4(src="10.0.0.1", dst="10.0.0.2", options=b"\x94\x04\x00\x00")
    / ICMP(id=1, seq=1)
    / b"zz",
    Ethernet(src=A) / ARP(op=2, sha=A, spa="10.0.0.1", tha=B, tpa="10.0.0.2"),
]


@pytest.mark.parametrize("pkt", SAMPLES, ids=lambda p: "/".join(type(x).__name__ for x in p))
def test_round_trip(pkt: Packet) -> None:
    raw = bytes(pkt)
    back = parse(raw)
    assert bytes(back) == raw
    assert [type(x) for x in back] == [type(x) for x in pkt]
    assert back.payload == pkt.payload
    assert back.checksum_errors() == []
    # Fields given explicitly come back unchanged.
    for mine, theirs in zip(pkt.layers, back.layers, strict=True):
        for name in type(mine).__dataclass_fields__:  # type: ignore[attr-defined]
            value = getattr(mine, name)
            if value is not None:
                assert getattr(theirs, name) == value, name


def test_parse_reads_fields() -> None:
    pkt = parse(bytes(SAMPLES[0]))
    assert pkt[Ethernet].src == A and pkt[Ethernet].type == EtherType.IPV4
    ip = pkt[IPv4]
    assert ip.src == ipaddress.IPv4Address("10.0.0.1") and ip.flags == 2 and ip.id == 9
    assert ip.total_length == 29 and ip.proto == IPProto.UDP
    assert pkt[UDP].length == 9
    assert UDP in pkt and TCP not in pkt and "x" not in pkt
    assert pkt.get(TCP) is None
    with pytest.raises(KeyError, match="no TCP layer"):
        pkt[TCP]
    assert parse(bytes(SAMPLES[2]))[TCP].flags == TCPFlags.SYN


def test_parse_detects_bad_checksums() -> None:
    good = bytes(SAMPLES[0])
    bad_udp = good[:-3] + bytes([good[-3] ^ 1]) + good[-2:]
    assert parse(bad_udp).checksum_errors() == ["UDP"]
    bad_ip = bytearray(good)
    bad_ip[14 + 8] ^= 1  # TTL: covered by the IP header checksum, not by the pseudo-header
    assert parse(bytes(bad_ip)).checksum_errors() == ["IPv4"]
    bad_src = bytearray(good)
    bad_src[14 + 12] ^= 1  # source address: in both
    assert parse(bytes(bad_src)).checksum_errors() == ["IPv4", "UDP"]


def test_parse_keeps_ethernet_padding() -> None:
    raw = bytes(SAMPLES[0]) + b"\0" * 12
    pkt = parse(raw)
    assert pkt.payload == b"x" and pkt.padding == b"\0" * 12
    assert bytes(pkt) == raw


def test_parse_ip_and_fragments() -> None:
    assert isinstance(parse_ip(bytes(IPv6() / UDP(checksum=0))).layers[0], IPv6)
    frag = bytes(IPv4(src="1.1.1.1", dst="2.2.2.2", proto=17, frag_offset=10) / b"12345678")
    pkt = parse_ip(frag)
    assert [type(x) for x in pkt] == [IPv4] and pkt.payload == b"12345678"
    with pytest.raises(ParseError):
        parse_ip(b"\x50")
    with pytest.raises(ParseError):
        parse_ip(b"")


def test_unknown_protocols_become_payload() -> None:
    pkt = parse(bytes(Ethernet(type=0x88B5) / b"opaque"))
    assert pkt.payload == b"opaque" and len(pkt.layers) == 1
    pkt = parse_ip(bytes(IPv4(proto=47) / b"gre"))
    assert pkt.payload == b"gre"


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b"\0" * 10, "Ethernet"),
        (bytes(Ethernet(type=0x0800)) + b"\x45\0", "IPv4"),
        (bytes(Ethernet(type=0x0800)) + bytes.fromhex("4500ffff") + b"\0" * 16, "IPv4 packet"),
        (bytes(Ethernet(type=0x0800)) + bytes.fromhex("46000014") + b"\0" * 16, "header length"),
        (bytes(Ethernet(type=0x0800)) + bytes.fromhex("65000014") + b"\0" * 16, "version"),
        (bytes(Ethernet(type=0x86DD)) + b"\x60" + b"\0" * 10, "IPv6"),
        (bytes(Ethernet(type=0x0806)) + b"\0" * 28, "ARP for hardware"),
        (bytes(Ethernet(type=0x8100)) + b"\0", "802.1Q"),
    ],
)
def test_parse_errors(data: bytes, what: str) -> None:
    with pytest.raises(ParseError, match=what) as info:
        parse(data)
    assert isinstance(info.value, ValueError)
    assert info.value.offset is not None


def test_parse_error_offsets_point_into_the_frame() -> None:
    # The IPv4 total length leaves only 4 bytes for a UDP header.
    raw = bytes(Ethernet() / IPv4(src="1.1.1.1", dst="2.2.2.2", proto=17) / (b"\0" * 4))
    with pytest.raises(ParseError, match="UDP") as info:
        parse(raw)
    assert info.value.offset == 34  # the UDP header starts after Ethernet (14) + IPv4 (20)


@settings(max_examples=300)
@given(st.binary(max_size=120))
def test_parse_fuzz_raises_parse_error_or_succeeds(data: bytes) -> None:
    try:
        pkt = parse(data)
    except ParseError:
        return
    assert bytes(pkt) == data


@settings(max_examples=300)
@given(st.binary(max_size=120))
def test_parse_ip_fuzz(data: bytes) -> None:
    try:
        pkt = parse_ip(data)
    except ParseError:
        return
    assert bytes(pkt) == data


@settings(max_examples=100)
@given(
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF),
    st.binary(max_size=64),
    st.sampled_from(["10.0.0.1", "fd00::1"]),
)
def test_udp_checksum_property(sport: int, dport: int, payload: bytes, src: str) -> None:
    dst = "10.0.0.2" if ":" not in src else "fd00::2"
    ip = IPv4(src=src, dst=dst) if ":" not in src else IPv6(src=src, dst=dst)
    raw = bytes(ip / UDP(sport=sport, dport=dport) / payload)
    hdr = 20 if ":" not in src else 40
    assert ref_l4_checksum(src, dst, 17, raw[hdr:]) == 0
    assert parse_ip(raw).checksum_errors() == []


def test_stacking_rules() -> None:
    pkt = Ethernet() / IPv4() / UDP(checksum=0)
    assert isinstance(pkt, Packet) and len(pkt.layers) == 3
    both = (Ethernet() / IPv4()) / (UDP(checksum=0) / b"p")
    assert bytes(both) == bytes(Ethernet() / IPv4() / UDP(checksum=0) / b"p")
    with pytest.raises(ValueError, match="after a payload"):
        _ = Ethernet() / b"x" / IPv4()
    assert repr(IPv4() / UDP() / b"p").endswith("b'p'")
