"""Pure rtnetlink wire codec: constants, fixed headers, attributes and message framing.

Nothing here talks to the kernel; :mod:`ebpf._sys.netlink` does. Every constant is written
once, with the uapi header it comes from. Fixed headers are native-layout ``ctypes``
structures (kernel ABI, house style rule 1); attributes are type-length-value records in
host byte order, padded to 4 bytes (``NLA_ALIGNTO``).
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import ParseError

# --- include/uapi/linux/netlink.h -----------------------------------------------------------
NETLINK_ROUTE = 0  # netlink.h: protocol of AF_NETLINK for rtnetlink
SOL_NETLINK = 270  # include/linux/socket.h (not uapi; glibc bits/socket.h has it too)
NETLINK_ADD_MEMBERSHIP = 1  # netlink.h
NETLINK_CAP_ACK = 10  # netlink.h: do not echo the request payload in error replies
NETLINK_EXT_ACK = 11  # netlink.h: extended ACK TLVs (error strings, offsets)
NETLINK_GET_STRICT_CHK = 12  # netlink.h: strict header checking of dump requests

NLM_F_REQUEST = 0x01  # netlink.h
NLM_F_MULTI = 0x02  # netlink.h
NLM_F_ACK = 0x04  # netlink.h
NLM_F_ECHO = 0x08  # netlink.h
NLM_F_DUMP_INTR = 0x10  # netlink.h
NLM_F_ROOT = 0x100  # netlink.h (GET requests)
NLM_F_MATCH = 0x200  # netlink.h (GET requests)
NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH  # netlink.h
NLM_F_REPLACE = 0x100  # netlink.h (NEW requests)
NLM_F_EXCL = 0x200  # netlink.h (NEW requests)
NLM_F_CREATE = 0x400  # netlink.h (NEW requests)
NLM_F_CAPPED = 0x100  # netlink.h (flags of an NLMSG_ERROR reply)
NLM_F_ACK_TLVS = 0x200  # netlink.h (flags of an NLMSG_ERROR reply)

NLMSG_ALIGNTO = 4  # netlink.h
NLMSG_NOOP = 0x1  # netlink.h
NLMSG_ERROR = 0x2  # netlink.h
NLMSG_DONE = 0x3  # netlink.h
NLMSG_OVERRUN = 0x4  # netlink.h

NLMSGERR_ATTR_MSG = 1  # netlink.h enum nlmsgerr_attrs: error message string
NLMSGERR_ATTR_OFFS = 2  # netlink.h: offset of the invalid attribute in the request
NLMSGERR_ATTR_MISS_TYPE = 5  # netlink.h: type of a missing required attribute

NLA_F_NESTED = 1 << 15  # netlink.h
NLA_F_NET_BYTEORDER = 1 << 14  # netlink.h
NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xFFFF  # netlink.h
NLA_ALIGNTO = 4  # netlink.h

# --- include/uapi/linux/rtnetlink.h ---------------------------------------------------------
RTM_NEWLINK = 16  # rtnetlink.h
RTM_DELLINK = 17  # rtnetlink.h
RTM_GETLINK = 18  # rtnetlink.h
RTM_SETLINK = 19  # rtnetlink.h
RTM_NEWADDR = 20  # rtnetlink.h
RTM_DELADDR = 21  # rtnetlink.h
RTM_GETADDR = 22  # rtnetlink.h
RTM_NEWQDISC = 36  # rtnetlink.h
RTM_DELQDISC = 37  # rtnetlink.h
RTM_GETQDISC = 38  # rtnetlink.h
RTM_NEWTFILTER = 44  # rtnetlink.h
RTM_DELTFILTER = 45  # rtnetlink.h
RTM_GETTFILTER = 46  # rtnetlink.h

#: Command names used in error messages (``SyscallError.cmd``).
RTM_NAMES = {
    RTM_NEWLINK: "RTM_NEWLINK",
    RTM_DELLINK: "RTM_DELLINK",
    RTM_GETLINK: "RTM_GETLINK",
    RTM_SETLINK: "RTM_SETLINK",
    RTM_NEWADDR: "RTM_NEWADDR",
    RTM_DELADDR: "RTM_DELADDR",
    RTM_GETADDR: "RTM_GETADDR",
    RTM_NEWQDISC: "RTM_NEWQDISC",
    RTM_DELQDISC: "RTM_DELQDISC",
    RTM_GETQDISC: "RTM_GETQDISC",
    RTM_NEWTFILTER: "RTM_NEWTFILTER",
    RTM_DELTFILTER: "RTM_DELTFILTER",
    RTM_GETTFILTER: "RTM_GETTFILTER",
}

TCA_KIND = 1  # rtnetlink.h enum (TCA_UNSPEC = 0)
TCA_OPTIONS = 2  # rtnetlink.h
TCA_CHAIN = 11  # rtnetlink.h
TCA_EXT_WARN_MSG = 16  # rtnetlink.h (6.1+)

# --- include/uapi/linux/if_link.h -----------------------------------------------------------
IFLA_ADDRESS = 1  # if_link.h enum (IFLA_UNSPEC = 0)
IFLA_IFNAME = 3  # if_link.h
IFLA_MTU = 4  # if_link.h
IFLA_LINK = 5  # if_link.h
IFLA_OPERSTATE = 16  # if_link.h
IFLA_LINKINFO = 18  # if_link.h
IFLA_NET_NS_FD = 28  # if_link.h
IFLA_EXT_MASK = 29  # if_link.h
IFLA_XDP = 43  # if_link.h
IFLA_LINK_NETNSID = 37  # if_link.h

IFLA_INFO_KIND = 1  # if_link.h enum (IFLA_INFO_UNSPEC = 0)
IFLA_INFO_DATA = 2  # if_link.h

IFLA_XDP_FD = 1  # if_link.h enum (IFLA_XDP_UNSPEC = 0)
IFLA_XDP_ATTACHED = 2  # if_link.h
IFLA_XDP_FLAGS = 3  # if_link.h
IFLA_XDP_PROG_ID = 4  # if_link.h
IFLA_XDP_DRV_PROG_ID = 5  # if_link.h
IFLA_XDP_SKB_PROG_ID = 6  # if_link.h
IFLA_XDP_HW_PROG_ID = 7  # if_link.h
IFLA_XDP_EXPECTED_FD = 8  # if_link.h

XDP_FLAGS_UPDATE_IF_NOEXIST = 1 << 0  # if_link.h
XDP_FLAGS_SKB_MODE = 1 << 1  # if_link.h
XDP_FLAGS_DRV_MODE = 1 << 2  # if_link.h
XDP_FLAGS_HW_MODE = 1 << 3  # if_link.h
XDP_FLAGS_REPLACE = 1 << 4  # if_link.h
XDP_FLAGS_MODES = XDP_FLAGS_SKB_MODE | XDP_FLAGS_DRV_MODE | XDP_FLAGS_HW_MODE  # if_link.h
XDP_FLAGS_MASK = XDP_FLAGS_UPDATE_IF_NOEXIST | XDP_FLAGS_MODES | XDP_FLAGS_REPLACE  # if_link.h

XDP_ATTACHED_NONE = 0  # if_link.h enum
XDP_ATTACHED_DRV = 1  # if_link.h
XDP_ATTACHED_SKB = 2  # if_link.h
XDP_ATTACHED_HW = 3  # if_link.h
XDP_ATTACHED_MULTI = 4  # if_link.h

# --- include/uapi/linux/veth.h --------------------------------------------------------------
VETH_INFO_PEER = 1  # veth.h enum (VETH_INFO_UNSPEC = 0)

# --- include/uapi/linux/if.h ----------------------------------------------------------------
IFF_UP = 1 << 0  # if.h enum net_device_flags
IFF_LOOPBACK = 1 << 3  # if.h
IFF_RUNNING = 1 << 6  # if.h
IFF_LOWER_UP = 1 << 16  # if.h
IFNAMSIZ = 16  # if.h

# --- include/uapi/linux/if_addr.h -----------------------------------------------------------
IFA_ADDRESS = 1  # if_addr.h enum (IFA_UNSPEC = 0)
IFA_LOCAL = 2  # if_addr.h
IFA_LABEL = 3  # if_addr.h
IFA_BROADCAST = 4  # if_addr.h
IFA_FLAGS = 8  # if_addr.h
IFA_F_NODAD = 0x02  # if_addr.h
IFA_F_PERMANENT = 0x80  # if_addr.h

# --- include/uapi/linux/pkt_sched.h ---------------------------------------------------------
TC_H_MAJ_MASK = 0xFFFF0000  # pkt_sched.h
TC_H_MIN_MASK = 0x0000FFFF  # pkt_sched.h
TC_H_ROOT = 0xFFFFFFFF  # pkt_sched.h
TC_H_INGRESS = 0xFFFFFFF1  # pkt_sched.h
TC_H_CLSACT = TC_H_INGRESS  # pkt_sched.h
TC_H_MIN_INGRESS = 0xFFF2  # pkt_sched.h
TC_H_MIN_EGRESS = 0xFFF3  # pkt_sched.h

# --- include/uapi/linux/pkt_cls.h -----------------------------------------------------------
TCA_BPF_CLASSID = 3  # pkt_cls.h enum (TCA_BPF_UNSPEC = 0)
TCA_BPF_FD = 6  # pkt_cls.h
TCA_BPF_NAME = 7  # pkt_cls.h
TCA_BPF_FLAGS = 8  # pkt_cls.h
TCA_BPF_FLAGS_GEN = 9  # pkt_cls.h
TCA_BPF_TAG = 10  # pkt_cls.h
TCA_BPF_ID = 11  # pkt_cls.h
TCA_BPF_FLAG_ACT_DIRECT = 1 << 0  # pkt_cls.h
TCA_CLS_FLAGS_SKIP_HW = 1 << 0  # pkt_cls.h
TCA_CLS_FLAGS_SKIP_SW = 1 << 1  # pkt_cls.h

# --- include/uapi/linux/if_ether.h ----------------------------------------------------------
ETH_P_ALL = 0x0003  # if_ether.h (host order; tcm_info wants it in network order)
ETH_P_IP = 0x0800  # if_ether.h
ETH_P_IPV6 = 0x86DD  # if_ether.h

# --- include/uapi/linux/sched.h -------------------------------------------------------------
CLONE_NEWNET = 0x40000000  # sched.h


def align(n: int, to: int = NLMSG_ALIGNTO) -> int:
    """Round ``n`` up to a multiple of ``to`` (``NLMSG_ALIGN``/``NLA_ALIGN``)."""
    return (n + to - 1) & ~(to - 1)


def tc_h_make(major: int, minor: int) -> int:
    """``TC_H_MAKE(maj, min)`` of pkt_sched.h."""
    return (major & TC_H_MAJ_MASK) | (minor & TC_H_MIN_MASK)


def htons(value: int) -> int:
    """16-bit host to network byte order, as a host integer (for ``tcm_info``)."""
    return int.from_bytes(value.to_bytes(2, "big"), sys.byteorder)


# --- fixed headers (native layout) ----------------------------------------------------------


class NlMsgHdr(ctypes.Structure):
    """``struct nlmsghdr`` (netlink.h), 16 bytes."""

    nlmsg_len: int
    nlmsg_type: int
    nlmsg_flags: int
    nlmsg_seq: int
    nlmsg_pid: int
    _fields_ = (
        ("nlmsg_len", ctypes.c_uint32),
        ("nlmsg_type", ctypes.c_uint16),
        ("nlmsg_flags", ctypes.c_uint16),
        ("nlmsg_seq", ctypes.c_uint32),
        ("nlmsg_pid", ctypes.c_uint32),
    )


class NlAttr(ctypes.Structure):
    """``struct nlattr`` (netlink.h), 4 bytes."""

    nla_len: int
    nla_type: int
    _fields_ = (("nla_len", ctypes.c_uint16), ("nla_type", ctypes.c_uint16))


class IfInfoMsg(ctypes.Structure):
    """``struct ifinfomsg`` (rtnetlink.h), 16 bytes."""

    ifi_family: int
    ifi_type: int
    ifi_index: int
    ifi_flags: int
    ifi_change: int
    _fields_ = (
        ("ifi_family", ctypes.c_uint8),
        ("__ifi_pad", ctypes.c_uint8),
        ("ifi_type", ctypes.c_uint16),
        ("ifi_index", ctypes.c_int32),
        ("ifi_flags", ctypes.c_uint32),
        ("ifi_change", ctypes.c_uint32),
    )


class TcMsg(ctypes.Structure):
    """``struct tcmsg`` (rtnetlink.h), 20 bytes. ``tcm_info`` is ``prio << 16 | htons(proto)``."""

    tcm_family: int
    tcm_ifindex: int
    tcm_handle: int
    tcm_parent: int
    tcm_info: int
    _fields_ = (
        ("tcm_family", ctypes.c_uint8),
        ("tcm__pad1", ctypes.c_uint8),
        ("tcm__pad2", ctypes.c_uint16),
        ("tcm_ifindex", ctypes.c_int32),
        ("tcm_handle", ctypes.c_uint32),
        ("tcm_parent", ctypes.c_uint32),
        ("tcm_info", ctypes.c_uint32),
    )


class IfAddrMsg(ctypes.Structure):
    """``struct ifaddrmsg`` (if_addr.h), 8 bytes."""

    ifa_family: int
    ifa_prefixlen: int
    ifa_flags: int
    ifa_scope: int
    ifa_index: int
    _fields_ = (
        ("ifa_family", ctypes.c_uint8),
        ("ifa_prefixlen", ctypes.c_uint8),
        ("ifa_flags", ctypes.c_uint8),
        ("ifa_scope", ctypes.c_uint8),
        ("ifa_index", ctypes.c_uint32),
    )


#: Expected ``(size)`` of each header on every Linux ABI; a unit test checks ctypes agrees.
EXPECTED_SIZES = {"NlMsgHdr": 16, "NlAttr": 4, "IfInfoMsg": 16, "TcMsg": 20, "IfAddrMsg": 8}

NLMSG_HDRLEN = align(ctypes.sizeof(NlMsgHdr))  # NLMSG_HDRLEN of netlink.h
NLA_HDRLEN = align(ctypes.sizeof(NlAttr))  # NLA_HDRLEN of netlink.h


class NetlinkDecodeError(ParseError):
    """A netlink reply did not parse (truncated or inconsistent lengths).

    A :class:`~ebpf.errors.ParseError`, hence also a :class:`ValueError`; ``offset`` is where
    in the datagram or attribute stream it went wrong, when known.
    """


# --- attributes ------------------------------------------------------------------------------


def attr(kind: int, payload: bytes = b"") -> bytes:
    """One attribute: ``nlattr`` header, payload, zero padding to 4 bytes."""
    length = NLA_HDRLEN + len(payload)
    if length > 0xFFFF:
        raise ValueError(f"netlink attribute {kind} too long ({length} bytes)")
    hdr = bytes(NlAttr(nla_len=length, nla_type=kind))
    return hdr + payload + b"\0" * (align(length, NLA_ALIGNTO) - length)


def attr_u8(kind: int, value: int) -> bytes:
    """An 8-bit unsigned attribute."""
    return attr(kind, value.to_bytes(1, sys.byteorder))


def attr_u16(kind: int, value: int) -> bytes:
    """A 16-bit unsigned attribute in host order."""
    return attr(kind, value.to_bytes(2, sys.byteorder))


def attr_u32(kind: int, value: int) -> bytes:
    """A 32-bit unsigned attribute in host order."""
    return attr(kind, value.to_bytes(4, sys.byteorder))


def attr_s32(kind: int, value: int) -> bytes:
    """A 32-bit signed attribute in host order."""
    return attr(kind, value.to_bytes(4, sys.byteorder, signed=True))


def attr_str(kind: int, value: str) -> bytes:
    """A NUL-terminated string attribute (``NLA_NUL_STRING``/``NLA_STRING``)."""
    data = value.encode()
    if b"\0" in data:
        raise ValueError(f"netlink string attribute contains NUL: {value!r}")
    return attr(kind, data + b"\0")


def attr_nested(kind: int, *children: bytes) -> bytes:
    """A nested attribute; sets ``NLA_F_NESTED`` as strict validation requires."""
    return attr(kind | NLA_F_NESTED, b"".join(children))


def iter_attrs(data: bytes | memoryview) -> Iterator[tuple[int, bytes]]:
    """Yield ``(type, payload)`` of a packed attribute stream; flag bits are masked off."""
    view = memoryview(data)
    off = 0
    while off + NLA_HDRLEN <= len(view):
        hdr = NlAttr.from_buffer_copy(view[off : off + NLA_HDRLEN])
        if hdr.nla_len < NLA_HDRLEN or off + hdr.nla_len > len(view):
            raise NetlinkDecodeError(
                f"bad netlink attribute length {hdr.nla_len} in {len(view)} bytes", off
            )
        yield hdr.nla_type & NLA_TYPE_MASK, bytes(view[off + NLA_HDRLEN : off + hdr.nla_len])
        off += align(hdr.nla_len, NLA_ALIGNTO)


class Attrs:
    """Decoded attributes keyed by type (the last occurrence wins), with typed getters."""

    __slots__ = ("_items",)

    def __init__(self, data: bytes | memoryview = b"") -> None:
        self._items: dict[int, bytes] = dict(iter_attrs(data))

    def __contains__(self, kind: object) -> bool:
        return kind in self._items

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[int]:
        return iter(self._items)

    def __repr__(self) -> str:
        return f"Attrs({self._items!r})"

    def keys(self) -> list[int]:
        """Attribute types present."""
        return list(self._items)

    def raw(self, kind: int) -> bytes | None:
        """The raw payload, or ``None``."""
        return self._items.get(kind)

    def _int(self, kind: int, size: int, signed: bool = False) -> int | None:
        data = self._items.get(kind)
        if data is None:
            return None
        if len(data) < size:
            raise NetlinkDecodeError(f"attribute {kind}: {len(data)} bytes, expected {size}")
        return int.from_bytes(data[:size], sys.byteorder, signed=signed)

    def u8(self, kind: int) -> int | None:
        """An 8-bit unsigned value, or ``None``."""
        return self._int(kind, 1)

    def u16(self, kind: int) -> int | None:
        """A 16-bit unsigned value, or ``None``."""
        return self._int(kind, 2)

    def u32(self, kind: int) -> int | None:
        """A 32-bit unsigned value, or ``None``."""
        return self._int(kind, 4)

    def s32(self, kind: int) -> int | None:
        """A 32-bit signed value, or ``None``."""
        return self._int(kind, 4, signed=True)

    def str(self, kind: int) -> str | None:
        """A string value (up to the first NUL), or ``None``."""
        data = self._items.get(kind)
        if data is None:
            return None
        return data.split(b"\0", 1)[0].decode("utf-8", "replace")

    def nested(self, kind: int) -> Attrs:
        """The nested attributes (empty when absent)."""
        return Attrs(self._items.get(kind, b""))


# --- messages --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Message:
    """One netlink message: header fields and the payload after ``nlmsghdr``."""

    type: int
    flags: int
    seq: int
    pid: int
    payload: bytes


def encode_message(msg_type: int, flags: int, seq: int, body: bytes, pid: int = 0) -> bytes:
    """``nlmsghdr`` + ``body``; ``nlmsg_len`` counts the (4-aligned) body."""
    body = body + b"\0" * (align(len(body)) - len(body))
    hdr = NlMsgHdr(
        nlmsg_len=NLMSG_HDRLEN + len(body),
        nlmsg_type=msg_type,
        nlmsg_flags=flags,
        nlmsg_seq=seq,
        nlmsg_pid=pid,
    )
    return bytes(hdr) + body


def decode_messages(data: bytes | memoryview) -> list[Message]:
    """Split one datagram from the kernel into messages."""
    view = memoryview(data)
    out: list[Message] = []
    off = 0
    while off + NLMSG_HDRLEN <= len(view):
        hdr = NlMsgHdr.from_buffer_copy(view[off : off + NLMSG_HDRLEN])
        if hdr.nlmsg_len < NLMSG_HDRLEN or off + hdr.nlmsg_len > len(view):
            raise NetlinkDecodeError(
                f"bad nlmsg_len {hdr.nlmsg_len} in a {len(view)}-byte datagram", off
            )
        payload = bytes(view[off + NLMSG_HDRLEN : off + hdr.nlmsg_len])
        out.append(Message(hdr.nlmsg_type, hdr.nlmsg_flags, hdr.nlmsg_seq, hdr.nlmsg_pid, payload))
        off += align(hdr.nlmsg_len)
    if off < len(view) and any(view[off:]):
        raise NetlinkDecodeError(f"{len(view) - off} trailing bytes after netlink messages", off)
    return out


@dataclass(frozen=True, slots=True)
class Ack:
    """A decoded ``NLMSG_ERROR`` (an ACK when ``error == 0``) or ``NLMSG_DONE`` status.

    ``error`` is a positive errno (0 for success). ``message`` is the extended-ACK string
    (``NLMSGERR_ATTR_MSG``), ``offset`` the byte offset of the offending attribute in the
    request (``NLMSGERR_ATTR_OFFS``) and ``missing_type`` the attribute type the kernel wanted
    (``NLMSGERR_ATTR_MISS_TYPE``), when the kernel sent them.
    """

    error: int
    message: str = ""
    offset: int | None = None
    missing_type: int | None = None


def _ack_from_tlvs(error: int, tlvs: bytes) -> Ack:
    attrs = Attrs(tlvs)
    return Ack(
        error=error,
        message=(attrs.str(NLMSGERR_ATTR_MSG) or "").strip(),
        offset=attrs.u32(NLMSGERR_ATTR_OFFS),
        missing_type=attrs.u32(NLMSGERR_ATTR_MISS_TYPE),
    )


def decode_error(msg: Message) -> Ack:
    """Decode an ``NLMSG_ERROR`` message (``struct nlmsgerr`` plus extended-ACK TLVs).

    The layout is ``int error``, the echoed request header (only the header when the reply has
    ``NLM_F_CAPPED``, else the whole request), then the TLVs when ``NLM_F_ACK_TLVS`` is set.
    """
    if len(msg.payload) < 4 + NLMSG_HDRLEN:
        raise NetlinkDecodeError(f"NLMSG_ERROR payload too short ({len(msg.payload)} bytes)")
    error = -int.from_bytes(msg.payload[:4], sys.byteorder, signed=True)
    if not msg.flags & NLM_F_ACK_TLVS:
        return Ack(error)
    if msg.flags & NLM_F_CAPPED:
        tlv_off = 4 + NLMSG_HDRLEN
    else:
        orig = NlMsgHdr.from_buffer_copy(msg.payload[4 : 4 + NLMSG_HDRLEN])
        tlv_off = 4 + align(orig.nlmsg_len)
    return _ack_from_tlvs(error, msg.payload[tlv_off:])


def decode_done(msg: Message) -> Ack:
    """Decode the status of an ``NLMSG_DONE`` message (``int`` error plus optional TLVs)."""
    if len(msg.payload) < 4:
        return Ack(0)
    error = -int.from_bytes(msg.payload[:4], sys.byteorder, signed=True)
    if msg.flags & NLM_F_ACK_TLVS:
        return _ack_from_tlvs(error, msg.payload[4:])
    return Ack(error)
