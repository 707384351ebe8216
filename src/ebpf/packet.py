"""Build and parse network packets for tests: Ethernet, 802.1Q, ARP, IPv4, IPv6, TCP, UDP, ICMP(v6).

Layers are frozen dataclasses stacked with ``/``; ``bytes()`` of the stack builds the packet,
filling in every field left as ``None`` (lengths, next-protocol numbers, checksums, the latter
with the IPv4/IPv6 pseudo-header where the protocol needs one)::

    from ebpf.packet import Ethernet, IPv4, UDP, parse

    frame = bytes(Ethernet(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
                  / IPv4(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1234, dport=53) / b"hi")
    pkt = parse(frame)
    assert pkt[UDP].dport == 53 and pkt.payload == b"hi" and not pkt.checksum_errors()

A field given explicitly is used as is, so wrong checksums and lengths are easy to make.
:func:`parse` returns the same layer classes with every field read from the wire, so
``bytes(parse(frame)) == frame`` for anything this module understands.

Pure: no sockets, no kernel calls. IPv4 options and TCP options are carried as raw bytes;
IPv6 extension headers are not decoded (parsing stops there and leaves them in ``payload``).
"""

from __future__ import annotations

import enum
import ipaddress
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar, TypeAlias, TypeVar

from .errors import ParseError

__all__ = [
    "ARP",
    "ICMP",
    "TCP",
    "UDP",
    "Dot1Q",
    "EtherType",
    "Ethernet",
    "ICMPType",
    "ICMPv6",
    "ICMPv6Type",
    "IPProto",
    "IPv4",
    "IPv6",
    "Layer",
    "Packet",
    "TCPFlags",
    "internet_checksum",
    "mac_address",
    "parse",
    "parse_ip",
]


class EtherType(enum.IntEnum):
    """Ethernet protocol numbers (``ETH_P_*`` of ``linux/if_ether.h``)."""

    IPV4 = 0x0800  #: ``ETH_P_IP``
    ARP = 0x0806  #: ``ETH_P_ARP``
    VLAN = 0x8100  #: ``ETH_P_8021Q``
    IPV6 = 0x86DD  #: ``ETH_P_IPV6``
    QINQ = 0x88A8  #: ``ETH_P_8021AD``


class IPProto(enum.IntEnum):
    """IP protocol numbers (``IPPROTO_*`` of ``netinet/in.h``)."""

    ICMP = 1  #: ``IPPROTO_ICMP``
    TCP = 6  #: ``IPPROTO_TCP``
    UDP = 17  #: ``IPPROTO_UDP``
    ICMPV6 = 58  #: ``IPPROTO_ICMPV6``


class ICMPType(enum.IntEnum):
    """A few ICMP message types (RFC 792)."""

    ECHO_REPLY = 0
    DEST_UNREACH = 3
    ECHO_REQUEST = 8
    TIME_EXCEEDED = 11


class ICMPv6Type(enum.IntEnum):
    """A few ICMPv6 message types (RFC 4443, RFC 4861)."""

    DEST_UNREACH = 1
    ECHO_REQUEST = 128
    ECHO_REPLY = 129
    NEIGHBOR_SOLICIT = 135
    NEIGHBOR_ADVERT = 136


class TCPFlags(enum.IntFlag):
    """TCP header flags."""

    FIN = 0x01
    SYN = 0x02
    RST = 0x04
    PSH = 0x08
    ACK = 0x10
    URG = 0x20
    ECE = 0x40
    CWR = 0x80


# --- helpers --------------------------------------------------------------------------------


def internet_checksum(data: bytes | bytearray | memoryview, initial: int = 0) -> int:
    """The RFC 1071 one's-complement checksum of ``data`` (odd lengths padded with a zero).

    ``initial`` is a partial (unfolded) sum to start from, e.g. of a pseudo-header.
    """
    total: int = initial + _ones_sum(bytes(data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ones_sum(data: bytes) -> int:
    """Sum of the big-endian 16-bit words of ``data`` (zero-padded), not folded."""
    if len(data) % 2:
        data += b"\0"
    words: tuple[int, ...] = struct.unpack(f"!{len(data) // 2}H", data)
    return sum(words)


def mac_address(value: str | bytes) -> str:
    """Normalise a MAC address (``"AA-BB-..."``, ``"aa:bb:..."`` or 6 bytes) to ``"aa:bb:..."``."""
    if isinstance(value, (bytes, bytearray)):
        raw = bytes(value)
    else:
        text = value.replace("-", ":").strip()
        parts = text.split(":")
        if len(parts) != 6 or not all(1 <= len(p) <= 2 for p in parts):
            raise ValueError(f"invalid MAC address {value!r}")
        try:
            raw = bytes(int(p, 16) for p in parts)
        except ValueError:
            raise ValueError(f"invalid MAC address {value!r}") from None
    if len(raw) != 6:
        raise ValueError(f"a MAC address has 6 bytes, got {len(raw)}")
    return ":".join(f"{b:02x}" for b in raw)


def _mac_bytes(value: str) -> bytes:
    return bytes.fromhex(value.replace(":", ""))


def _check(name: str, value: int, bits: int) -> None:
    if not 0 <= value < (1 << bits):
        raise ValueError(f"{name}={value} does not fit in {bits} bits")


def _set(obj: object, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)


L = TypeVar("L", bound="Layer")
#: What ``Layer._decode`` returns: the layer, its body, bytes past its length, the next class.
_Decoded: TypeAlias = "tuple[Layer, bytes, bytes, type[Layer] | None]"


class Layer:
    """Base of every header class. ``a / b`` stacks layers (and ``bytes`` payloads)."""

    __slots__ = ()

    #: Number announcing this layer in an outer Ethernet/VLAN header, or IP header.
    ethertype: ClassVar[int | None] = None
    ipproto: ClassVar[int | None] = None

    def __truediv__(self, other: Layer | Packet | bytes) -> Packet:
        return Packet((self,)) / other

    def __bytes__(self) -> bytes:
        return bytes(Packet((self,)))

    def _encode(self, payload: bytes, inner: Layer | None, outer: tuple[Layer, ...]) -> bytes:
        raise NotImplementedError

    @classmethod
    def _decode(cls, data: bytes, offset: int) -> _Decoded:
        """Return ``(layer, body, trailing, next_layer_class)``; ``offset`` is for errors."""
        raise NotImplementedError

    def _checksum_for(self, payload: bytes, outer: tuple[Layer, ...]) -> int | None:
        """The checksum this layer should carry over ``payload``, if it has one."""
        return None


def _need(data: bytes, size: int, what: str, offset: int) -> None:
    if len(data) < size:
        raise ParseError(f"{what}: need {size} bytes, have {len(data)}", offset)


def _enclosing_ip(outer: tuple[Layer, ...]) -> IPv4 | IPv6 | None:
    for layer in reversed(outer):
        if isinstance(layer, (IPv4, IPv6)):
            return layer
    return None


def _pseudo_sum(outer: tuple[Layer, ...], proto: int, length: int, who: str) -> int:
    ip = _enclosing_ip(outer)
    if ip is None:
        raise ValueError(
            f"{who} checksum needs an enclosing IPv4/IPv6 layer (or pass checksum= explicitly)"
        )
    addrs = ipaddress.ip_address(ip.src).packed + ipaddress.ip_address(ip.dst).packed
    if isinstance(ip, IPv4):
        pseudo = addrs + struct.pack("!BBH", 0, proto, length)
    else:
        pseudo = addrs + struct.pack("!IxxxB", length, proto)
    return _ones_sum(pseudo)


# --- packet ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Packet:
    """A stack of layers, a payload, and bytes after the last length-delimited layer.

    ``padding`` holds what :func:`parse` found past the lengths the headers declare (the
    Ethernet minimum-size padding, typically); building appends it at the end.
    """

    layers: tuple[Layer, ...] = ()
    payload: bytes = b""
    padding: bytes = b""

    def __truediv__(self, other: Layer | Packet | bytes) -> Packet:
        if self.payload and not isinstance(other, (bytes, bytearray)):
            raise ValueError("cannot stack a header after a payload")
        if isinstance(other, Layer):
            return Packet((*self.layers, other), self.payload, self.padding)
        if isinstance(other, Packet):
            return Packet(
                (*self.layers, *other.layers), self.payload + other.payload, other.padding
            )
        if isinstance(other, (bytes, bytearray, memoryview)):
            return Packet(self.layers, self.payload + bytes(other), self.padding)
        return NotImplemented

    def __bytes__(self) -> bytes:
        return self._build(0) + self.padding

    def build(self) -> bytes:
        """The packet on the wire (same as ``bytes(packet)``)."""
        return bytes(self)

    def _build(self, start: int) -> bytes:
        data = self.payload
        for i in range(len(self.layers) - 1, start - 1, -1):
            inner = self.layers[i + 1] if i + 1 < len(self.layers) else None
            data = self.layers[i]._encode(data, inner, self.layers[:i])
        return data

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __contains__(self, cls: object) -> bool:
        return isinstance(cls, type) and any(isinstance(layer, cls) for layer in self.layers)

    def __getitem__(self, cls: type[L]) -> L:
        found = self.get(cls)
        if found is None:
            raise KeyError(f"no {cls.__name__} layer in {self!r}")
        return found

    def get(self, cls: type[L]) -> L | None:
        """The first layer of type ``cls``, or ``None``."""
        for layer in self.layers:
            if isinstance(layer, cls):
                return layer
        return None

    def checksum_errors(self) -> list[str]:
        """Names of the layers whose checksum field is wrong (empty when all are right)."""
        bad = []
        for i, layer in enumerate(self.layers):
            stored = getattr(layer, "checksum", None)
            if stored is None:
                continue
            expected = layer._checksum_for(self._build(i + 1), self.layers[:i])
            if expected is not None and expected != stored:
                bad.append(type(layer).__name__)
        return bad

    def __repr__(self) -> str:
        parts = [repr(layer) for layer in self.layers]
        if self.payload:
            parts.append(repr(self.payload))
        return " / ".join(parts) or "Packet()"


def parse(data: bytes | bytearray | memoryview, first: type[Layer] | None = None) -> Packet:
    """Decode ``data`` starting with layer ``first`` (default :class:`Ethernet`).

    Decoding follows the protocol numbers and stops at anything this module does not know,
    which becomes the payload. Malformed headers raise :class:`~ebpf.errors.ParseError`.
    """
    raw = bytes(data)
    cls: type[Layer] | None = Ethernet if first is None else first
    layers: list[Layer] = []
    padding = b""
    offset = 0
    while cls is not None:
        layer, body, trailing, nxt = cls._decode(raw, offset)
        layers.append(layer)
        offset += len(raw) - len(body) - len(trailing)
        padding = trailing + padding
        raw = body
        cls = nxt
    return Packet(tuple(layers), raw, padding)


def parse_ip(data: bytes | bytearray | memoryview) -> Packet:
    """Decode an IP packet without a link-layer header, IPv4 or IPv6 by its version nibble."""
    raw = bytes(data)
    _need(raw, 1, "IP", 0)
    version = raw[0] >> 4
    if version == 4:
        return parse(raw, IPv4)
    if version == 6:
        return parse(raw, IPv6)
    raise ParseError(f"IP version {version} is neither 4 nor 6", 0)


# --- link layer -----------------------------------------------------------------------------

_NEXT_BY_ETHERTYPE: dict[int, type[Layer]] = {}
_NEXT_BY_IPPROTO: dict[int, type[Layer]] = {}
_NEXT_BY_IP6PROTO: dict[int, type[Layer]] = {}


def _auto_ethertype(value: int | None, inner: Layer | None, who: str) -> int:
    if value is not None:
        return value
    if inner is not None and inner.ethertype is not None:
        return inner.ethertype
    raise ValueError(f"{who}: set type= (cannot infer it from {type(inner).__name__})")


@dataclass(frozen=True, slots=True)
class Ethernet(Layer):
    """Ethernet II header. ``type`` defaults to the next layer's EtherType."""

    dst: str = "ff:ff:ff:ff:ff:ff"
    src: str = "00:00:00:00:00:00"
    type: int | None = None

    def __post_init__(self) -> None:
        _set(self, "dst", mac_address(self.dst))
        _set(self, "src", mac_address(self.src))
        if self.type is not None:
            _check("type", self.type, 16)

    def _encode(self, payload: bytes, inner: Layer | None, outer: tuple[Layer, ...]) -> bytes:
        etype = _auto_ethertype(self.type, inner, "Ethernet")
        return _mac_bytes(self.dst) + _mac_bytes(self.src) + struct.pack("!H", etype) + payload

    @classmethod
    def _decode(cls, data: bytes, offset: int) -> _Decoded:
        _need(data, 14, "Ethernet", offset)
        (etype,) = struct.unpack_from("!H", data, 12)
        layer = cls(dst=mac_address(data[0:6]), src=mac_address(data[6:12]), type=etype)
        return layer, data[14:], b"", _NEXT_BY_ETHERTYPE.get(etype)


@dataclass(frozen=True, slots=True)
class Dot1Q(Layer):
    """802.1Q VLAN tag (follows :class:`Ethernet`, which then gets type 0x8100)."""

    ethertype: ClassVar[int | None] = EtherType.VLAN

    vid: int = 0
    pcp: int = 0
    dei: int = 0
    type: int | None = None

    def __post_init__(self) -> None:
        _check("vid", self.vid, 12)
        _check("pcp", self.pcp, 3)
        _check("dei", self.dei, 1)

    def _encode(self, payload: bytes, inner: Layer | None, outer: tuple[Layer, ...]) -> bytes:
        etype = _auto_ethertype(self.type, inner, "Dot1Q")
        tci = (self.pcp << 13) | (self.dei << 12) | self.vid
        return struct.pack("!HH", tci, etype) + payload

    @classmethod
    def _decode(cls, data: bytes, offset: int) -> _Decoded:
        _need(data, 4, "802.1Q tag", offset)
        tci, etype = struct.unpack_from("!HH", data)
        layer = cls(vid=tci & 0xFFF, pcp=tci >> 13, dei=(tci >> 12) & 1, type=etype)
        return layer, data[4:], b"", _NEXT_BY_ETHERTYPE.get(etype)


@dataclass(frozen=True, slots=True)
class ARP(Layer):
    """ARP for IPv4 over Ethernet (``op`` 1 request, 2 reply)."""

    ethertype: ClassVar[int | None] = EtherType.ARP

    op: int = 1
    sha: str = "00:00:00:00:00:00"
    spa: ipaddress.IPv4Address | str = "0.0.0.0"
    tha: str = "00:00:00:00:00:00"
    tpa: ipaddress.IPv4Address | str = "0.0.0.0"

    def __post_init__(self) -> None:
        _set(self, "sha", mac_address(self.sha))
        _set(self, "tha", mac_address(self.tha))
        _set(self, "spa", ipaddress.IPv4Address(self.spa))
        _set(self, "tpa", ipaddress.IPv4Address(self.tpa))
        _check("op", self.op, 16)

    def _encode(self, payload: bytes, inner: Layer | None, outer: tuple[Layer, ...]) -> bytes:
        spa = ipaddress.IPv4Address(self.spa).packed
        tpa = ipaddress.IPv4Address(self.tpa).packed
        head = struct.pack("!HHBBH", 1, EtherType.IPV4, 6, 4, self.op)
        return head + _mac_bytes(self.sha) + spa + _mac_bytes(self.tha) + tpa + payload

    @classmethod
    def _decode(cls, data: bytes, offset: int) -> _Decoded:
        _need(data, 28, "ARP", offset)
        htype, ptype, hlen, plen, op = struct.unpack_from("!HHBBH", data)
        if (htype, ptype, hlen, plen) != (1, EtherType.IPV4, 6, 4):
            raise ParseError(
                f"ARP for hardware {htype}/protocol {ptype:#x} is not IPv4 over Ethernet", offset
            )
        layer = cls(
            op=op,
            sha=mac_address(data[8:14]),
            spa=ipaddress.IPv4Address(data[14:18]),
            tha=mac_address(data[18:24]),
            tpa=ipaddress.IPv4Address(data[24:28]),
        )
        return layer, data[28:], b"", None


# --- network layer --------------------------------------------------------------------------


def _auto_proto(value: int | None, inner: Layer | None, who: str) -> int:
    if value is not None:
        return value
    if inner is not None and inner.ipproto is not None:
        return inner.ipproto
    raise ValueError(f"{who}: set the protocol (cannot infer it from {type(inner).__name__})")


@dataclass(frozen=True, slots=True)
class IPv4(Layer):
    """IPv4 header. ``proto``, ``total_length`` and ``checksum`` default to computed values.

    ``flags`` is the 3-bit field (2 = don't fragment); ``options`` raw bytes, padded to 4.
    """

    ethertype: ClassVar[int | None] = EtherType.IPV4

    src: ipaddress.IPv4Address | str = "0.0.0.0"
    dst: ipaddress.IPv4Address | str = "0.0.0.0"
    proto: int | None = None
    ttl: int = 64
    tos: int = 0
    id: int = 0
    flags: int = 0
    frag_offset: int = 0
    total_length: int | None = None
    checksum: int | None = None
    options: bytes = b""

    def __post_init__(self) -> None:
        _set(self, "src", ipaddress.IPv4Address(self.src))
        _set(self, "dst", ipaddress.IPv4Address(self.dst))
        _check("ttl", self.ttl, 8)
        _check("tos", self.tos, 8)
        _check("id", self.id, 16)
        _check("flags", self.flags, 3)
        _check("frag_offset", self.frag_offset, 13)
        if len(self.options) > 40:
            raise ValueError("IPv4 options are at most 40 bytes")

    def _header(self, payload_len: int, proto: int, checksum: int) -> bytes:
        opts = self.options + b"\0" * (-len(self.options) % 4)
        ihl = 5 + len(opts) // 4
        total = self.total_length if self.total_length is not None else ihl * 4 + payload_len
        _check("total_length", total, 16)
        src, dst = ipaddress.IPv4Address(self.src), ipaddress.IPv4Address(self.dst)
        return (
            struct.pack(
                "!BBHHHBBH4s4s",
                (4 << 4) | ihl,
                self.tos,
                total,
                self.id,
                (self.flags << 13) | self.frag_offset,
                self.ttl,
                proto,
                checksum,
                src.packed,
                dst.packed,
            )
            + opts
        )

    def _encode(self, payload: bytes, inner: Layer | None, outer: tuple[Layer, ...]) -> bytes:
        proto = _auto_proto(self.proto, inner, "IPv4")
        checksum = self.checksum
        if checksum is None:
            checksum = internet_checksum(self._header(len(payload), proto, 0))
        return self._header(len(payload), proto, checksum) + payload

    def _checksum_for(self, payload: bytes, outer: tuple[Layer, ...]) -> int | None:
        proto = self.proto if self.proto is not None else 0
        return internet_checksum(self._header(len(payload), proto, 0))

    @classmethod
    def _decode(cls, data: bytes, offset: int) -> _Decoded:
        _need(data, 20, "IPv4", offset)
        vihl, tos, total, ident, frag, ttl, proto, csum = struct.unpack_from("!BBHHHBBH", data)
        if vihl >> 4 != 4:
            raise ParseError(f"IPv4: version {vihl >> 4}", offset)
        hlen = (vihl & 0xF) * 4
        if hlen < 20 or total < hlen:
            raise ParseError(f"IPv4: bad header length {hlen} / total length {total}", offset)
        _need(data, total, "IPv4 packet", offset)
        layer = cls(
            src=ipaddress.IPv4Address(data[12:16]),
            dst=ipaddress.IPv4Address(data[16:20]),
            proto=proto,
            ttl=ttl,
            tos=tos,
            id=ident,
            flags=frag >> 13,
            frag_offset=frag & 0x1FFF,
            total_length=total,
            checksum=csum,
            options=data[20:hlen],
        )
        fragment = (frag & 0x1FFF) != 0
        nxt = None if fragment else _NEXT_BY_IPPROTO.get(proto)
        return layer, data[hlen:total], data[total:], nxt


@dataclass(frozen=True, slots=True)
class IPv6(Layer):
    """IPv6 fixed header. ``next_header`` and ``payload_length`` default to computed values."""

    ethertype: ClassVar[int | None] = EtherType.IPV6

    src: ipaddress.IPv6Address | str = "::"
    dst: ipaddress.IPv6Address | str = "::"
    next_header: int | None = None
    hop_limit: int = 64
    traffic_class: int = 0
    flow_label: int = 0
    payload_length: int | None = None

    def __post_init__(self) -> None:
        _set(self, "src", ipaddress.IPv6Address(self.src))
        _set(self, "dst", ipaddress.IPv6Address(self.dst))
        _check("hop_limit", self.hop_limit, 8)
        _check("traffic_class", self.traffic_class, 8)
        _check("flow_label", self.flow_label, 20)

    def _encode(self, payload: bytes, inner: Layer | None, outer: tuple[Layer, ...]) -> bytes:
        nh = _auto_proto(self.next_header, inner, "IPv6")
        plen = self.payload_length if self.payload_length is not None else len(payload)
        _check("payload_length", plen, 16)
        word = (6 << 28) | (self.traffic_class << 20) | self.flow_label
        src, dst = ipaddress.IPv6Address(self.src), ipaddress.IPv6Address(self.dst)
        return (
            struct.pack("!IHBB", word, plen, nh, self.hop_limit) + src.packed + dst.packed + payload
        )

    @classmethod
    def _decode(cls, data: bytes, offset: int) -> _Decoded:
        _need(data, 40, "IPv6", offset)
        word, plen, nh, hops = struct.unpack_from("!IHBB", data)
        if word >> 28 != 6:
            raise ParseError(f"IPv6: version {word >> 28}", offset)
        _need(data, 40 + plen, "IPv6 packet", offset)
        layer = cls(
            src=ipaddress.IPv6Address(data[8:24]),
            dst=ipaddress.IPv6Address(data[24:40]),
            next_header=nh,
            hop_limit=hops,
            traffic_class=(word >> 20) & 0xFF,
            flow_label=word & 0xFFFFF,
            payload_length=plen,
        )
        return layer, data[40 : 40 + plen], data[40 + plen :], _NEXT_BY_IP6PROTO.get(nh)


# --- transport layer ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UDP(Layer):
    """UDP header. ``length`` and ``checksum`` (with the IP pseudo-header) default to computed.

    A computed checksum of 0 is sent as 0xFFFF (RFC 768); ``checksum=0`` means "none" on IPv4.
    """

    ipproto: ClassVar[int | None] = IPProto.UDP

    sport: int = 0
    dport: int = 0
    length: int | None = None
    checksum: int | None = None

    def __post_init__(self) -> None:
        _check("sport", self.sport, 16)
        _check("dport", self.dport, 16)

    def _header(self, payload_len: int, checksum: int) -> bytes:
        length = self.length if self.length is not None else 8 + payload_len
        _check("length", length, 16)
        return struct.pack("!HHHH", self.sport, self.dport, length, checksum)

    def _checksum_for(self, payload: bytes, outer: tuple[Layer, ...]) -> int | None:
        segment = self._header(len(payload), 0) + payload
        start = _pseudo_sum(outer, IPProto.UDP, len(segment), "UDP")
        return internet_checksum(segment, start) or 0xFFFF

    def _encode(self, payload: bytes, inner: Layer | None, outer: tuple[Layer, ...]) -> bytes:
        checksum = self.checksum
        if checksum is None:
            checksum = self._checksum_for(payload, outer)
        assert checksum is not None
        return self._header(len(payload), checksum) + payload

    @classmethod
    def _decode(cls, data: bytes, offset: int) -> _Decoded:
        _need(data, 8, "UDP", offset)
        sport, dport, length, csum = struct.unpack_from("!HHHH", data)
        if length < 8:
            raise ParseError(f"UDP: length {length} < 8", offset)
        _need(data, length, "UDP datagram", offset)
        layer = cls(sport=sport, dport=dport, length=length, checksum=csum)
        return layer, data[8:length], data[length:], None


@dataclass(frozen=True, slots=True)
class TCP(Layer):
    """TCP header. ``checksum`` (with the IP pseudo-header) defaults to computed.

    ``options`` are raw bytes, zero-padded to 4; ``data_offset`` (in 32-bit words) follows.
    """

    ipproto: ClassVar[int | None] = IPProto.TCP

    sport: int = 0
    dport: int = 0
    seq: int = 0
    ack: int = 0
    flags: int = TCPFlags.SYN
    window: int = 65535
    urgent: int = 0
    options: bytes = b""
    checksum: int | None = None
    data_offset: int | None = None

    def __post_init__(self) -> None:
        _check("sport", self.sport, 16)
        _check("dport", self.dport, 16)
        _check("seq", self.seq, 32)
        _check("ack", self.ack, 32)
        _check("flags", int(self.flags), 9)
        _check("window", self.window, 16)
        _check("urgent", self.urgent, 16)
        if len(self.options) > 40:
            raise ValueError("TCP options are at most 40 bytes")

    def _header(self, checksum: int) -> bytes:
        opts = self.options + b"\0" * (-len(self.options) % 4)
        doff = self.data_offset if self.data_offset is not None else 5 + len(opts) // 4
        _check("data_offset", doff, 4)
        return (
            struct.pack(
                "!HHIIHHHH",
                self.sport,
                self.dport,
                self.seq,
                self.ack,
                (doff << 12) | int(self.flags),
                self.window,
                checksum,
                self.urgent,
            )
            + opts
        )

    def _checksum_for(self, payload: bytes, outer: tuple[Layer, ...]) -> int | None:
        segment = self._header(0) + payload
        return internet_checksum(segment, _pseudo_sum(outer, IPProto.TCP, len(segment), "TCP"))

    def _encode(self, payload: bytes, inner: Layer | None, outer: tuple[Layer, ...]) -> bytes:
        checksum = self.checksum
        if checksum is None:
            checksum = self._checksum_for(payload, outer)
        assert checksum is not None
        return self._header(checksum) + payload

    @classmethod
    def _decode(cls, data: bytes, offset: int) -> _Decoded:
        _need(data, 20, "TCP", offset)
        sport, dport, seq, ack, off_flags, window, csum, urg = struct.unpack_from("!HHIIHHHH", data)
        doff = off_flags >> 12
        if doff < 5:
            raise ParseError(f"TCP: data offset {doff} < 5", offset)
        _need(data, doff * 4, "TCP header", offset)
        layer = cls(
            sport=sport,
            dport=dport,
            seq=seq,
            ack=ack,
            flags=TCPFlags(off_flags & 0x1FF),
            window=window,
            urgent=urg,
            options=data[20 : doff * 4],
            checksum=csum,
            data_offset=doff,
        )
        return layer, data[doff * 4 :], b"", None


@dataclass(frozen=True, slots=True)
class ICMP(Layer):
    """ICMP (IPv4) header; ``id``/``seq`` are the two halves of the rest-of-header word.

    The checksum covers the ICMP message only (no pseudo-header).
    """

    ipproto: ClassVar[int | None] = IPProto.ICMP

    type: int = ICMPType.ECHO_REQUEST
    code: int = 0
    id: int = 0
    seq: int = 0
    checksum: int | None = None

    def __post_init__(self) -> None:
        _check("type", self.type, 8)
        _check("code", self.code, 8)
        _check("id", self.id, 16)
        _check("seq", self.seq, 16)

    def _checksum_for(self, payload: bytes, outer: tuple[Layer, ...]) -> int | None:
        return internet_checksum(
            struct.pack("!BBHHH", self.type, self.code, 0, self.id, self.seq) + payload
        )

    def _encode(self, payload: bytes, inner: Layer | None, outer: tuple[Layer, ...]) -> bytes:
        checksum = self.checksum
        if checksum is None:
            checksum = self._checksum_for(payload, outer)
        return struct.pack("!BBHHH", self.type, self.code, checksum, self.id, self.seq) + payload

    @classmethod
    def _decode(cls, data: bytes, offset: int) -> _Decoded:
        _need(data, 8, "ICMP", offset)
        typ, code, csum, ident, seq = struct.unpack_from("!BBHHH", data)
        return cls(type=typ, code=code, id=ident, seq=seq, checksum=csum), data[8:], b"", None


@dataclass(frozen=True, slots=True)
class ICMPv6(Layer):
    """ICMPv6 header; ``id``/``seq`` as for :class:`ICMP`. The checksum uses the IPv6 pseudo-header.

    Built without an enclosing :class:`IPv6` (e.g. for a raw ``IPPROTO_ICMPV6`` socket, where the
    kernel fills the checksum in), pass ``checksum=0``.
    """

    ipproto: ClassVar[int | None] = IPProto.ICMPV6

    type: int = ICMPv6Type.ECHO_REQUEST
    code: int = 0
    id: int = 0
    seq: int = 0
    checksum: int | None = None

    def __post_init__(self) -> None:
        _check("type", self.type, 8)
        _check("code", self.code, 8)
        _check("id", self.id, 16)
        _check("seq", self.seq, 16)

    def _checksum_for(self, payload: bytes, outer: tuple[Layer, ...]) -> int | None:
        message = struct.pack("!BBHHH", self.type, self.code, 0, self.id, self.seq) + payload
        ip = _enclosing_ip(outer)
        if isinstance(ip, IPv4):
            raise ValueError("ICMPv6 inside IPv4: pass checksum= explicitly")
        return internet_checksum(
            message, _pseudo_sum(outer, IPProto.ICMPV6, len(message), "ICMPv6")
        )

    def _encode(self, payload: bytes, inner: Layer | None, outer: tuple[Layer, ...]) -> bytes:
        checksum = self.checksum
        if checksum is None:
            checksum = self._checksum_for(payload, outer)
        assert checksum is not None
        return struct.pack("!BBHHH", self.type, self.code, checksum, self.id, self.seq) + payload

    @classmethod
    def _decode(cls, data: bytes, offset: int) -> _Decoded:
        _need(data, 8, "ICMPv6", offset)
        typ, code, csum, ident, seq = struct.unpack_from("!BBHHH", data)
        return cls(type=typ, code=code, id=ident, seq=seq, checksum=csum), data[8:], b"", None


_NEXT_BY_ETHERTYPE.update(
    {
        EtherType.IPV4: IPv4,
        EtherType.IPV6: IPv6,
        EtherType.ARP: ARP,
        EtherType.VLAN: Dot1Q,
        EtherType.QINQ: Dot1Q,
    }
)
_NEXT_BY_IPPROTO.update({IPProto.ICMP: ICMP, IPProto.TCP: TCP, IPProto.UDP: UDP})
_NEXT_BY_IP6PROTO.update({IPProto.ICMPV6: ICMPv6, IPProto.TCP: TCP, IPProto.UDP: UDP})
