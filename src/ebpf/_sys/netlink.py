"""Minimal typed rtnetlink client: XDP and TC (cls_bpf) attachment, plus link plumbing for tests.

Everything goes through ``AF_NETLINK``/``NETLINK_ROUTE`` sockets of Python's :mod:`socket` module,
with ``NETLINK_EXT_ACK`` on, so the kernel's error strings reach the caller: a failed request
raises the exception :func:`ebpf.errors.from_errno` picks (a :class:`~ebpf.errors.SyscallError`
or subclass) with ``cmd`` set to the message type (``"RTM_NEWTFILTER"``) and ``detail`` set to the
extended-ACK message (``"Exclusivity flag on, cannot modify"``).

Each function opens a short-lived socket in the calling thread's network namespace, or, with
``netns=fd``, in the namespace that fd refers to (the socket is created by a helper thread that
``setns()``-es into it; the calling thread never moves). :class:`Netlink` keeps one socket open
for a series of requests.

Functions that take an interface accept its index (``int``) or its name (``str``); names are
checked for validity before any syscall, and an unknown name raises :class:`ValueError`.

The wire codec and every uapi constant live in :mod:`ebpf._sys._nlattr`.
"""

from __future__ import annotations

import ctypes
import enum
import errno as _errno
import ipaddress
import itertools
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NoReturn, Protocol, TypeVar

from ..errors import SyscallError, from_errno
from . import _nlattr as nl
from ._nlattr import Ack, Attrs, Message

__all__ = [
    "EGRESS",
    "INGRESS",
    "AddrInfo",
    "FilterInfo",
    "LinkInfo",
    "Netlink",
    "QdiscInfo",
    "XDPAttached",
    "XDPInfo",
    "addr_add",
    "addr_del",
    "addr_list",
    "bind_mount",
    "clsact_add",
    "clsact_del",
    "filter_add",
    "filter_del",
    "filter_list",
    "ifindex",
    "link_del",
    "link_info",
    "link_list",
    "link_set_netns",
    "link_set_up",
    "qdisc_list",
    "run_in_netns",
    "setns",
    "umount",
    "unshare",
    "veth_create",
    "xdp_attach",
    "xdp_detach",
    "xdp_query",
]

T = TypeVar("T")

#: ``parent`` of a clsact ingress filter: ``TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS)``.
INGRESS = nl.tc_h_make(nl.TC_H_CLSACT, nl.TC_H_MIN_INGRESS)
#: ``parent`` of a clsact egress filter: ``TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_EGRESS)``.
EGRESS = nl.tc_h_make(nl.TC_H_CLSACT, nl.TC_H_MIN_EGRESS)

Interface = int | str
Parent = Literal["ingress", "egress"] | int

_RECV_BUFSIZE = 1 << 20
_TIMEOUT = 30.0
_DUMP_RETRIES = 5
_EPERM_HINT = "rtnetlink changes need CAP_NET_ADMIN in the network namespace's user namespace"


# --- namespaces (libc) ----------------------------------------------------------------------

_libc: ctypes.CDLL | None = None


def _get_libc() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def setns(fd: int, nstype: int = nl.CLONE_NEWNET) -> None:
    """``setns(2)``: move the *calling thread* into the namespace ``fd`` refers to.

    ``os.setns`` exists only from Python 3.12, so this goes through libc.
    """
    if _get_libc().setns(ctypes.c_int(fd), ctypes.c_int(nstype)) != 0:
        code = ctypes.get_errno()
        raise from_errno("setns", code, hint="setns(CLONE_NEWNET) needs CAP_SYS_ADMIN")


def unshare(flags: int = nl.CLONE_NEWNET) -> None:
    """``unshare(2)`` for the calling thread (``CLONE_NEWNET`` by default)."""
    if _get_libc().unshare(ctypes.c_int(flags)) != 0:
        code = ctypes.get_errno()
        raise from_errno("unshare", code, hint="unshare(CLONE_NEWNET) needs CAP_SYS_ADMIN")


MS_BIND = 4096  # include/uapi/linux/mount.h
MNT_DETACH = 2  # include/linux/fs.h (glibc sys/mount.h); not in uapi


def bind_mount(source: str, target: str) -> None:
    """``mount(source, target, NULL, MS_BIND, NULL)``; used to name a namespace file."""
    rc = _get_libc().mount(
        os.fsencode(source), os.fsencode(target), None, ctypes.c_ulong(MS_BIND), None
    )
    if rc != 0:
        raise from_errno("mount", ctypes.get_errno(), hint=f"bind {source} on {target}")


def umount(target: str, flags: int = MNT_DETACH) -> None:
    """``umount2(target, flags)`` (lazy detach by default)."""
    if _get_libc().umount2(os.fsencode(target), ctypes.c_int(flags)) != 0:
        raise from_errno("umount2", ctypes.get_errno(), hint=target)


def run_in_netns(netns: int, fn: Callable[[], T]) -> T:
    """Run ``fn()`` in a short-lived thread that first joins the network namespace ``netns``.

    The calling thread stays where it is. Sockets created by ``fn`` stay bound to ``netns``
    after it returns. Exceptions raised by ``fn`` propagate to the caller.
    """
    box: list[T] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            setns(netns, nl.CLONE_NEWNET)
            box.append(fn())
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=target, name="ebpf-netns", daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return box[0]


# --- socket ---------------------------------------------------------------------------------


class Transport(Protocol):
    """What :class:`Netlink` needs from a socket; unit tests plug in a scripted fake."""

    def send(self, data: bytes) -> None: ...
    def recv(self) -> bytes: ...
    def close(self) -> None: ...


class _SocketTransport:
    """A bound ``NETLINK_ROUTE`` socket with extended ACKs, capped ACKs and strict checking."""

    def __init__(self) -> None:
        sock = socket.socket(
            socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, nl.NETLINK_ROUTE
        )
        try:
            sock.setsockopt(nl.SOL_NETLINK, nl.NETLINK_EXT_ACK, 1)
            sock.setsockopt(nl.SOL_NETLINK, nl.NETLINK_CAP_ACK, 1)
            sock.setsockopt(nl.SOL_NETLINK, nl.NETLINK_GET_STRICT_CHK, 1)
            sock.bind((0, 0))
            sock.settimeout(_TIMEOUT)
        except BaseException:
            sock.close()
            raise
        self.sock = sock

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, (0, 0))

    def recv(self) -> bytes:
        data, _, flags, _ = self.sock.recvmsg(_RECV_BUFSIZE)
        if flags & socket.MSG_TRUNC:
            raise nl.NetlinkDecodeError("netlink reply truncated (MSG_TRUNC)")
        return data

    def close(self) -> None:
        self.sock.close()


def _raise(cmd: str, ack: Ack) -> NoReturn:
    err = from_errno(cmd, ack.error, hint=_EPERM_HINT if ack.error == _errno.EPERM else "")
    detail = ack.message
    if not detail and ack.missing_type is not None:
        detail = f"missing attribute type {ack.missing_type}"
    if not detail and ack.offset is not None:
        detail = f"invalid attribute at offset {ack.offset} of the request"
    err.detail = detail
    raise err


class Netlink:
    """One rtnetlink socket, bound to the network namespace it was opened in.

    ``Netlink()`` opens it in the calling thread's namespace, ``Netlink(netns=fd)`` in the one
    ``fd`` refers to. Use it as a context manager; :meth:`close` is idempotent.
    """

    def __init__(self, netns: int | None = None, *, transport: Transport | None = None) -> None:
        if transport is None:
            transport = (
                _SocketTransport() if netns is None else run_in_netns(netns, _SocketTransport)
            )
        self._transport: Transport | None = transport
        self._seq = itertools.count(1)

    def __enter__(self) -> Netlink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the socket (idempotent)."""
        if self._transport is not None:
            transport, self._transport = self._transport, None
            transport.close()

    def _io(self) -> Transport:
        if self._transport is None:
            raise ValueError("I/O on a closed Netlink socket")
        return self._transport

    def request(
        self, msg_type: int, body: bytes, flags: int = 0, *, cmd: str | None = None
    ) -> list[Message]:
        """Send one request with ``NLM_F_REQUEST | NLM_F_ACK`` and wait for its ACK.

        Returns the messages that arrived before the ACK (replies to GET requests, or the
        object echoed back with ``NLM_F_ECHO``). A negative ACK raises the exception that
        :func:`ebpf.errors.from_errno` chooses, with the extended-ACK message as ``detail``.
        """
        cmd = cmd or nl.RTM_NAMES.get(msg_type, f"RTM_{msg_type}")
        io = self._io()
        seq = next(self._seq)
        io.send(nl.encode_message(msg_type, flags | nl.NLM_F_REQUEST | nl.NLM_F_ACK, seq, body))
        replies: list[Message] = []
        while True:
            for msg in nl.decode_messages(io.recv()):
                if msg.seq != seq:
                    continue  # a late reply to an earlier, abandoned request
                if msg.type == nl.NLMSG_ERROR:
                    ack = nl.decode_error(msg)
                    if ack.error:
                        _raise(cmd, ack)
                    return replies
                if msg.type == nl.NLMSG_DONE:
                    ack = nl.decode_done(msg)
                    if ack.error:
                        _raise(cmd, ack)
                    return replies
                if msg.type in (nl.NLMSG_NOOP, nl.NLMSG_OVERRUN):
                    continue
                replies.append(msg)

    def dump(self, msg_type: int, body: bytes, *, cmd: str | None = None) -> list[Message]:
        """Send a ``NLM_F_DUMP`` request and collect every message up to ``NLMSG_DONE``.

        A dump the kernel marks inconsistent (``NLM_F_DUMP_INTR``) is retried a few times.
        """
        cmd = cmd or nl.RTM_NAMES.get(msg_type, f"RTM_{msg_type}")
        for _ in range(_DUMP_RETRIES):
            replies, interrupted = self._dump_once(msg_type, body, cmd)
            if not interrupted:
                return replies
        raise from_errno(cmd, _errno.EINTR, hint="dump kept changing under us (NLM_F_DUMP_INTR)")

    def _dump_once(self, msg_type: int, body: bytes, cmd: str) -> tuple[list[Message], bool]:
        io = self._io()
        seq = next(self._seq)
        io.send(nl.encode_message(msg_type, nl.NLM_F_REQUEST | nl.NLM_F_DUMP, seq, body))
        replies: list[Message] = []
        interrupted = False
        while True:
            for msg in nl.decode_messages(io.recv()):
                if msg.seq != seq:
                    continue
                interrupted = interrupted or bool(msg.flags & nl.NLM_F_DUMP_INTR)
                if msg.type == nl.NLMSG_ERROR:
                    ack = nl.decode_error(msg)
                    if ack.error:
                        _raise(cmd, ack)
                    return replies, interrupted
                if msg.type == nl.NLMSG_DONE:
                    ack = nl.decode_done(msg)
                    if ack.error:
                        _raise(cmd, ack)
                    return replies, interrupted
                if msg.type in (nl.NLMSG_NOOP, nl.NLMSG_OVERRUN):
                    continue
                replies.append(msg)


def _connect(netns: int | None) -> Netlink:
    """Open the socket each module-level function uses (a seam for unit tests)."""
    return Netlink(netns)


# --- interfaces -----------------------------------------------------------------------------


def check_ifname(name: str) -> None:
    """Raise :class:`ValueError` unless the kernel would accept ``name`` (``dev_valid_name``)."""
    if not isinstance(name, str):
        raise TypeError(f"interface name must be str, not {type(name).__name__}")
    raw = name.encode()
    if not raw or len(raw) >= nl.IFNAMSIZ:
        raise ValueError(f"invalid interface name {name!r}: must be 1-{nl.IFNAMSIZ - 1} bytes")
    if name in (".", "..") or any(c in name for c in "/:\0") or any(c.isspace() for c in name):
        raise ValueError(f"invalid interface name {name!r}")


def _ifinfomsg(index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    return bytes(
        nl.IfInfoMsg(
            ifi_family=socket.AF_UNSPEC, ifi_index=index, ifi_flags=flags, ifi_change=change
        )
    )


def _check_index(index: int) -> int:
    if isinstance(index, bool) or not isinstance(index, int):
        raise TypeError(f"interface must be an int index or a str name, not {index!r}")
    if not 0 < index <= 0x7FFFFFFF:
        raise ValueError(f"invalid interface index {index}")
    return index


def _resolve(conn: Netlink, link: Interface) -> int:
    if not isinstance(link, str):
        return _check_index(link)
    check_ifname(link)
    try:
        (msg,) = conn.request(nl.RTM_GETLINK, _ifinfomsg() + nl.attr_str(nl.IFLA_IFNAME, link))
    except SyscallError as exc:
        if exc.errno == _errno.ENODEV:
            raise ValueError(f"no network interface named {link!r}") from None
        raise
    return _decode_link(msg).index


def ifindex(name_or_index: Interface, *, netns: int | None = None) -> int:
    """The index of an interface given by name (or an index, returned as is after a check).

    Raises :class:`ValueError` for an invalid name (before any syscall) or an unknown one.
    """
    if not isinstance(name_or_index, str):
        return _check_index(name_or_index)
    check_ifname(name_or_index)
    with _connect(netns) as conn:
        return _resolve(conn, name_or_index)


class XDPAttached(enum.IntEnum):
    """What ``IFLA_XDP_ATTACHED`` reports (if_link.h ``XDP_ATTACHED_*``)."""

    NONE = nl.XDP_ATTACHED_NONE  #: ``XDP_ATTACHED_NONE``
    DRV = nl.XDP_ATTACHED_DRV  #: ``XDP_ATTACHED_DRV`` (native)
    SKB = nl.XDP_ATTACHED_SKB  #: ``XDP_ATTACHED_SKB`` (generic)
    HW = nl.XDP_ATTACHED_HW  #: ``XDP_ATTACHED_HW`` (offloaded)
    MULTI = nl.XDP_ATTACHED_MULTI  #: ``XDP_ATTACHED_MULTI`` (more than one mode)


@dataclass(frozen=True, slots=True)
class XDPInfo:
    """The XDP state of an interface (``IFLA_XDP``).

    ``prog_id`` is the id of the one attached program; it is 0 when none is attached and also
    when programs are attached in several modes (``MULTI``): then read the per-mode ids.
    """

    attached: XDPAttached = XDPAttached.NONE
    prog_id: int = 0
    drv_prog_id: int = 0
    skb_prog_id: int = 0
    hw_prog_id: int = 0


@dataclass(frozen=True, slots=True)
class LinkInfo:
    """Basic facts about a network interface (``RTM_GETLINK``)."""

    index: int
    name: str
    flags: int  #: ``IFF_*`` flags
    mtu: int
    address: str  #: hardware address as ``"aa:bb:cc:dd:ee:ff"``, or ``""``
    kind: str  #: ``IFLA_INFO_KIND`` (``"veth"``...), ``""`` for devices without one (``lo``)
    operstate: int  #: ``IF_OPER_*``
    link: int  #: ``IFLA_LINK``: the peer's index for a veth (in the peer's namespace), else 0
    xdp: XDPInfo

    @property
    def up(self) -> bool:
        """``IFF_UP`` is set (administratively up)."""
        return bool(self.flags & nl.IFF_UP)

    @property
    def mac(self) -> bytes:
        """The hardware address as bytes."""
        return bytes.fromhex(self.address.replace(":", ""))


def _decode_xdp(attrs: Attrs) -> XDPInfo:
    return XDPInfo(
        attached=XDPAttached(attrs.u8(nl.IFLA_XDP_ATTACHED) or 0),
        prog_id=attrs.u32(nl.IFLA_XDP_PROG_ID) or 0,
        drv_prog_id=attrs.u32(nl.IFLA_XDP_DRV_PROG_ID) or 0,
        skb_prog_id=attrs.u32(nl.IFLA_XDP_SKB_PROG_ID) or 0,
        hw_prog_id=attrs.u32(nl.IFLA_XDP_HW_PROG_ID) or 0,
    )


_IFINFOMSG_LEN = nl.align(ctypes.sizeof(nl.IfInfoMsg))


def _decode_link(msg: Message) -> LinkInfo:
    if len(msg.payload) < _IFINFOMSG_LEN:
        raise nl.NetlinkDecodeError("RTM_NEWLINK payload shorter than ifinfomsg")
    ifi = nl.IfInfoMsg.from_buffer_copy(msg.payload[: ctypes.sizeof(nl.IfInfoMsg)])
    attrs = Attrs(msg.payload[_IFINFOMSG_LEN:])
    hwaddr = attrs.raw(nl.IFLA_ADDRESS) or b""
    return LinkInfo(
        index=ifi.ifi_index,
        name=attrs.str(nl.IFLA_IFNAME) or "",
        flags=ifi.ifi_flags,
        mtu=attrs.u32(nl.IFLA_MTU) or 0,
        address=":".join(f"{b:02x}" for b in hwaddr),
        kind=attrs.nested(nl.IFLA_LINKINFO).str(nl.IFLA_INFO_KIND) or "",
        operstate=attrs.u8(nl.IFLA_OPERSTATE) or 0,
        link=attrs.u32(nl.IFLA_LINK) or 0,
        xdp=_decode_xdp(attrs.nested(nl.IFLA_XDP)),
    )


def link_info(link: Interface, *, netns: int | None = None) -> LinkInfo:
    """Facts about one interface. An unknown name raises :class:`ValueError`."""
    with _connect(netns) as conn:
        index = _resolve(conn, link)
        (msg,) = conn.request(nl.RTM_GETLINK, _ifinfomsg(index))
        return _decode_link(msg)


def link_list(*, netns: int | None = None) -> list[LinkInfo]:
    """Every interface of the namespace."""
    with _connect(netns) as conn:
        msgs = conn.dump(nl.RTM_GETLINK, _ifinfomsg())
    return [_decode_link(m) for m in msgs if m.type == nl.RTM_NEWLINK]


def veth_create(
    name: str, peer_name: str, peer_netns: int | None = None, *, netns: int | None = None
) -> int:
    """Create a veth pair and return the index of ``name``.

    ``name`` is created in ``netns`` (default: the caller's namespace); ``peer_name`` in
    ``peer_netns`` when given (an fd of a network namespace), else next to ``name``. Both start
    down; see :func:`link_set_up`.
    """
    check_ifname(name)
    check_ifname(peer_name)
    peer = _ifinfomsg() + nl.attr_str(nl.IFLA_IFNAME, peer_name)
    if peer_netns is not None:
        peer += nl.attr_u32(nl.IFLA_NET_NS_FD, peer_netns)
    body = (
        _ifinfomsg()
        + nl.attr_str(nl.IFLA_IFNAME, name)
        + nl.attr_nested(
            nl.IFLA_LINKINFO,
            nl.attr_str(nl.IFLA_INFO_KIND, "veth"),
            # VETH_INFO_PEER holds an ifinfomsg followed by attributes, so no NLA_F_NESTED.
            nl.attr_nested(nl.IFLA_INFO_DATA, nl.attr(nl.VETH_INFO_PEER, peer)),
        )
    )
    with _connect(netns) as conn:
        conn.request(nl.RTM_NEWLINK, body, nl.NLM_F_CREATE | nl.NLM_F_EXCL)
        return _resolve(conn, name)


def link_set_up(link: Interface, up: bool = True, *, netns: int | None = None) -> None:
    """Set an interface administratively up (or down with ``up=False``)."""
    with _connect(netns) as conn:
        index = _resolve(conn, link)
        body = _ifinfomsg(index, nl.IFF_UP if up else 0, nl.IFF_UP)
        conn.request(nl.RTM_SETLINK, body)


def link_del(link: Interface, *, netns: int | None = None) -> None:
    """Delete an interface (for a veth, both ends go)."""
    with _connect(netns) as conn:
        conn.request(nl.RTM_DELLINK, _ifinfomsg(_resolve(conn, link)))


def link_set_netns(link: Interface, netns_fd: int, *, netns: int | None = None) -> None:
    """Move an interface into the network namespace ``netns_fd`` refers to."""
    with _connect(netns) as conn:
        index = _resolve(conn, link)
        conn.request(nl.RTM_SETLINK, _ifinfomsg(index) + nl.attr_u32(nl.IFLA_NET_NS_FD, netns_fd))


# --- addresses ------------------------------------------------------------------------------

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface


@dataclass(frozen=True, slots=True)
class AddrInfo:
    """An address of an interface (``RTM_GETADDR``)."""

    ifindex: int
    address: IPInterface  #: with its prefix length, e.g. ``IPv4Interface("10.77.0.1/24")``
    flags: int  #: ``IFA_F_*``
    scope: int
    label: str


def _addr_body(index: int, address: str | IPInterface, flags: int) -> bytes:
    iface = ipaddress.ip_interface(address)
    family = socket.AF_INET if iface.version == 4 else socket.AF_INET6
    msg = nl.IfAddrMsg(
        ifa_family=family,
        ifa_prefixlen=iface.network.prefixlen,
        ifa_flags=flags & 0xFF,
        ifa_scope=0,
        ifa_index=index,
    )
    packed = iface.ip.packed
    body = bytes(msg) + nl.attr(nl.IFA_LOCAL, packed) + nl.attr(nl.IFA_ADDRESS, packed)
    if flags > 0xFF:
        body += nl.attr_u32(nl.IFA_FLAGS, flags)
    return body


def addr_add(
    link: Interface,
    address: str | IPInterface,
    *,
    nodad: bool = True,
    netns: int | None = None,
) -> None:
    """Add an IPv4 or IPv6 address with prefix, e.g. ``"10.77.0.1/24"`` or ``"fd00::1/64"``.

    IPv6 addresses skip duplicate address detection by default (``IFA_F_NODAD``) so they are
    usable at once. The string is checked before any syscall.
    """
    iface = ipaddress.ip_interface(address)
    flags = nl.IFA_F_NODAD if (nodad and iface.version == 6) else 0
    with _connect(netns) as conn:
        index = _resolve(conn, link)
        conn.request(
            nl.RTM_NEWADDR, _addr_body(index, iface, flags), nl.NLM_F_CREATE | nl.NLM_F_EXCL
        )


def addr_del(link: Interface, address: str | IPInterface, *, netns: int | None = None) -> None:
    """Remove an address (given with its prefix length) from an interface."""
    iface = ipaddress.ip_interface(address)
    with _connect(netns) as conn:
        conn.request(nl.RTM_DELADDR, _addr_body(_resolve(conn, link), iface, 0))


def addr_list(link: Interface | None = None, *, netns: int | None = None) -> list[AddrInfo]:
    """Addresses of one interface, or of all of them."""
    out: list[AddrInfo] = []
    with _connect(netns) as conn:
        index = 0 if link is None else _resolve(conn, link)
        msgs = conn.dump(nl.RTM_GETADDR, bytes(nl.IfAddrMsg(ifa_index=index)))
    hdr_len = nl.align(ctypes.sizeof(nl.IfAddrMsg))
    for msg in msgs:
        if msg.type != nl.RTM_NEWADDR:
            continue
        ifa = nl.IfAddrMsg.from_buffer_copy(msg.payload[: ctypes.sizeof(nl.IfAddrMsg)])
        if index and ifa.ifa_index != index:
            continue
        attrs = Attrs(msg.payload[hdr_len:])
        raw = attrs.raw(nl.IFA_LOCAL) or attrs.raw(nl.IFA_ADDRESS) or b""
        ip = ipaddress.ip_address(raw)
        out.append(
            AddrInfo(
                ifindex=ifa.ifa_index,
                address=ipaddress.ip_interface(f"{ip}/{ifa.ifa_prefixlen}"),
                flags=attrs.u32(nl.IFA_FLAGS) or ifa.ifa_flags,
                scope=ifa.ifa_scope,
                label=attrs.str(nl.IFA_LABEL) or "",
            )
        )
    return out


# --- XDP ------------------------------------------------------------------------------------


def _check_xdp_flags(flags: int) -> None:
    if flags & ~nl.XDP_FLAGS_MASK:
        raise ValueError(f"unknown XDP flags {flags & ~nl.XDP_FLAGS_MASK:#x}")
    if bin(flags & nl.XDP_FLAGS_MODES).count("1") > 1:
        raise ValueError("at most one of XDP_FLAGS_SKB_MODE, _DRV_MODE, _HW_MODE may be set")


def _xdp_set(conn: Netlink, index: int, prog_fd: int, flags: int, expected_fd: int | None) -> None:
    attrs = [nl.attr_s32(nl.IFLA_XDP_FD, prog_fd)]
    if expected_fd is not None:
        flags |= nl.XDP_FLAGS_REPLACE
        attrs.append(nl.attr_s32(nl.IFLA_XDP_EXPECTED_FD, expected_fd))
    if flags:
        attrs.append(nl.attr_u32(nl.IFLA_XDP_FLAGS, flags))
    conn.request(nl.RTM_SETLINK, _ifinfomsg(index) + nl.attr_nested(nl.IFLA_XDP, *attrs))


def xdp_attach(
    link: Interface,
    prog_fd: int,
    flags: int = 0,
    expected_fd: int | None = None,
    *,
    netns: int | None = None,
) -> None:
    """Attach an XDP program through ``IFLA_XDP`` (the pre-bpf_link way).

    ``flags`` are ``XDP_FLAGS_*``: at most one mode (``SKB_MODE`` generic, ``DRV_MODE`` native,
    ``HW_MODE`` offload; none lets the kernel pick native when the driver has it) plus
    ``UPDATE_IF_NOEXIST``. ``expected_fd`` replaces atomically only if that program is the one
    attached (``XDP_FLAGS_REPLACE`` + ``IFLA_XDP_EXPECTED_FD``; -1 means "nothing attached").
    Errors: ``EBUSY`` (:class:`~ebpf.errors.BusyError`) when a bpf_link holds the interface,
    ``EEXIST`` for another mode or with ``UPDATE_IF_NOEXIST``, ``EOPNOTSUPP`` when the driver
    has no native XDP.
    """
    _check_xdp_flags(flags)
    if prog_fd < 0:
        raise ValueError(f"invalid program fd {prog_fd}")
    with _connect(netns) as conn:
        _xdp_set(conn, _resolve(conn, link), prog_fd, flags, expected_fd)


def xdp_detach(
    link: Interface,
    flags: int = 0,
    expected_fd: int | None = None,
    *,
    netns: int | None = None,
) -> None:
    """Detach the XDP program of the mode ``flags`` selects (pass the mode used to attach).

    Without a mode flag the kernel picks native mode when the driver supports it, so a
    generic-mode program is detached only with ``XDP_FLAGS_SKB_MODE``. Detaching when
    nothing is attached succeeds.
    """
    _check_xdp_flags(flags)
    with _connect(netns) as conn:
        _xdp_set(conn, _resolve(conn, link), -1, flags, expected_fd)


def xdp_query(link: Interface, *, netns: int | None = None) -> XDPInfo:
    """The XDP programs attached to an interface (``IFLA_XDP`` of ``RTM_GETLINK``)."""
    return link_info(link, netns=netns).xdp


# --- TC: clsact and cls_bpf ---------------------------------------------------------------


def tc_parent(parent: Parent) -> int:
    """``"ingress"``/``"egress"`` as a clsact ``tcm_parent``; an ``int`` passes through."""
    if isinstance(parent, bool):
        raise TypeError("parent must be 'ingress', 'egress' or an int handle")
    if isinstance(parent, int):
        if not 0 <= parent <= 0xFFFFFFFF:
            raise ValueError(f"parent handle {parent:#x} out of range")
        return parent
    if parent == "ingress":
        return INGRESS
    if parent == "egress":
        return EGRESS
    raise ValueError(f"parent must be 'ingress', 'egress' or an int handle, not {parent!r}")


def _tcmsg(index: int, handle: int = 0, parent: int = 0, info: int = 0) -> bytes:
    return bytes(
        nl.TcMsg(
            tcm_family=socket.AF_UNSPEC,
            tcm_ifindex=index,
            tcm_handle=handle,
            tcm_parent=parent,
            tcm_info=info,
        )
    )


_TCMSG_LEN = nl.align(ctypes.sizeof(nl.TcMsg))


def _split_tc(msg: Message) -> tuple[nl.TcMsg, Attrs]:
    if len(msg.payload) < ctypes.sizeof(nl.TcMsg):
        raise nl.NetlinkDecodeError("tc message payload shorter than tcmsg")
    tcm = nl.TcMsg.from_buffer_copy(msg.payload[: ctypes.sizeof(nl.TcMsg)])
    return tcm, Attrs(msg.payload[_TCMSG_LEN:])


@dataclass(frozen=True, slots=True)
class QdiscInfo:
    """A queueing discipline of an interface (``RTM_GETQDISC``)."""

    ifindex: int
    handle: int
    parent: int
    kind: str


def qdisc_list(link: Interface, *, netns: int | None = None) -> list[QdiscInfo]:
    """The qdiscs of an interface."""
    with _connect(netns) as conn:
        index = _resolve(conn, link)
        msgs = conn.dump(nl.RTM_GETQDISC, _tcmsg(index))
    out = []
    for msg in msgs:
        if msg.type != nl.RTM_NEWQDISC:
            continue
        tcm, attrs = _split_tc(msg)
        if tcm.tcm_ifindex == index:
            out.append(
                QdiscInfo(index, tcm.tcm_handle, tcm.tcm_parent, attrs.str(nl.TCA_KIND) or "")
            )
    return out


_CLSACT_HANDLE = nl.tc_h_make(nl.TC_H_CLSACT, 0)


def clsact_add(link: Interface, *, exist_ok: bool = True, netns: int | None = None) -> bool:
    """Add the ``clsact`` qdisc (the home of ingress/egress cls_bpf filters).

    Returns ``True`` if it was created, ``False`` if a clsact qdisc was already there and
    ``exist_ok``. Another qdisc in its place (e.g. ``ingress``) raises ``EEXIST``.
    """
    body_tail = nl.attr_str(nl.TCA_KIND, "clsact")
    with _connect(netns) as conn:
        index = _resolve(conn, link)
        try:
            conn.request(
                nl.RTM_NEWQDISC,
                _tcmsg(index, _CLSACT_HANDLE, nl.TC_H_CLSACT) + body_tail,
                nl.NLM_F_CREATE | nl.NLM_F_EXCL,
            )
        except SyscallError as exc:
            if exc.errno != _errno.EEXIST or not exist_ok:
                raise
            existing = conn.dump(nl.RTM_GETQDISC, _tcmsg(index))
            for msg in existing:
                tcm, attrs = _split_tc(msg)
                if (
                    msg.type == nl.RTM_NEWQDISC
                    and tcm.tcm_ifindex == index
                    and tcm.tcm_parent == nl.TC_H_CLSACT
                    and attrs.str(nl.TCA_KIND) == "clsact"
                ):
                    return False
            raise
        return True


def clsact_del(link: Interface, *, missing_ok: bool = False, netns: int | None = None) -> None:
    """Delete the ``clsact`` qdisc, and with it every ingress/egress filter of the interface.

    With ``missing_ok`` a missing qdisc (``ENOENT``/``EINVAL``) is not an error.
    """
    with _connect(netns) as conn:
        index = _resolve(conn, link)
        try:
            conn.request(
                nl.RTM_DELQDISC,
                _tcmsg(index, _CLSACT_HANDLE, nl.TC_H_CLSACT) + nl.attr_str(nl.TCA_KIND, "clsact"),
            )
        except SyscallError as exc:
            if not (missing_ok and exc.errno in (_errno.ENOENT, _errno.EINVAL)):
                raise


@dataclass(frozen=True, slots=True)
class FilterInfo:
    """A TC filter (``RTM_NEWTFILTER``); the ``bpf`` fields are zero/empty for other kinds.

    ``protocol`` is in host byte order (``ETH_P_ALL`` is ``3``), ``priority`` is the filter's
    preference (``tc ... pref``), ``tag`` the program tag (8 bytes).
    """

    ifindex: int
    parent: int
    handle: int
    priority: int
    protocol: int
    kind: str
    prog_id: int = 0
    name: str = ""
    direct_action: bool = False
    tag: bytes = b""
    chain: int = 0


def _tc_info(priority: int, protocol: int) -> int:
    if not 0 <= priority <= 0xFFFF:
        raise ValueError(f"TC priority {priority} out of range 0..65535")
    if not 0 <= protocol <= 0xFFFF:
        raise ValueError(f"protocol {protocol:#x} out of range (an ETH_P_* value in host order)")
    return (priority << 16) | nl.htons(protocol)


def _decode_filter(msg: Message) -> FilterInfo:
    tcm, attrs = _split_tc(msg)
    kind = attrs.str(nl.TCA_KIND) or ""
    prog_id, name, direct, tag = 0, "", False, b""
    if kind == "bpf":
        opts = attrs.nested(nl.TCA_OPTIONS)
        prog_id = opts.u32(nl.TCA_BPF_ID) or 0
        name = opts.str(nl.TCA_BPF_NAME) or ""
        direct = bool((opts.u32(nl.TCA_BPF_FLAGS) or 0) & nl.TCA_BPF_FLAG_ACT_DIRECT)
        tag = opts.raw(nl.TCA_BPF_TAG) or b""
    return FilterInfo(
        ifindex=tcm.tcm_ifindex,
        parent=tcm.tcm_parent,
        handle=tcm.tcm_handle,
        priority=tcm.tcm_info >> 16,
        protocol=nl.htons(tcm.tcm_info & 0xFFFF),
        kind=kind,
        prog_id=prog_id,
        name=name,
        direct_action=direct,
        tag=tag,
        chain=attrs.u32(nl.TCA_CHAIN) or 0,
    )


def filter_add(
    link: Interface,
    parent: Parent,
    prog_fd: int,
    *,
    name: str = "",
    priority: int = 0,
    handle: int = 0,
    protocol: int = nl.ETH_P_ALL,
    direct_action: bool = True,
    replace: bool = False,
    netns: int | None = None,
) -> FilterInfo:
    """Add a ``cls_bpf`` filter running ``prog_fd`` (a ``SCHED_CLS`` program) and return it.

    ``parent`` is ``"ingress"``/``"egress"`` of a clsact qdisc (see :func:`clsact_add`) or a raw
    handle. ``priority`` 0 and ``handle`` 0 let the kernel choose; the returned
    :class:`FilterInfo` (echoed back by the kernel) carries what it chose and the program id.
    ``protocol`` is an ``ETH_P_*`` value in host order; it is sent in network order as the
    kernel wants. ``replace`` replaces the filter at the same priority/handle instead of
    failing with ``EEXIST``.
    """
    parent_h = tc_parent(parent)
    info = _tc_info(priority, protocol)
    if prog_fd < 0:
        raise ValueError(f"invalid program fd {prog_fd}")
    if not 0 <= handle <= 0xFFFFFFFF:
        raise ValueError(f"filter handle {handle:#x} out of range")
    opts = [nl.attr_u32(nl.TCA_BPF_FD, prog_fd)]
    if name:
        opts.append(nl.attr_str(nl.TCA_BPF_NAME, name))
    if direct_action:
        opts.append(nl.attr_u32(nl.TCA_BPF_FLAGS, nl.TCA_BPF_FLAG_ACT_DIRECT))
    tail = nl.attr_str(nl.TCA_KIND, "bpf") + nl.attr_nested(nl.TCA_OPTIONS, *opts)
    flags = nl.NLM_F_CREATE | nl.NLM_F_ECHO | (nl.NLM_F_REPLACE if replace else nl.NLM_F_EXCL)
    with _connect(netns) as conn:
        index = _resolve(conn, link)
        replies = conn.request(
            nl.RTM_NEWTFILTER, _tcmsg(index, handle, parent_h, info) + tail, flags
        )
        for msg in replies:
            if msg.type == nl.RTM_NEWTFILTER:
                found = _decode_filter(msg)
                if found.handle:
                    return found
        # No echo (should not happen): find it in a dump.
        for msg in conn.dump(nl.RTM_GETTFILTER, _tcmsg(index, 0, parent_h)):
            if msg.type == nl.RTM_NEWTFILTER:
                found = _decode_filter(msg)
                if (
                    found.handle
                    and (not priority or found.priority == priority)
                    and (not handle or found.handle == handle)
                ):
                    return found
    raise from_errno("RTM_NEWTFILTER", _errno.ENOENT, hint="filter added but not found again")


def filter_list(link: Interface, parent: Parent, *, netns: int | None = None) -> list[FilterInfo]:
    """The filters under ``parent`` (``"ingress"``/``"egress"``), in kernel order.

    The per-priority chain headers of the dump (handle 0) are left out.
    """
    parent_h = tc_parent(parent)
    with _connect(netns) as conn:
        index = _resolve(conn, link)
        msgs = conn.dump(nl.RTM_GETTFILTER, _tcmsg(index, 0, parent_h))
    out = []
    for msg in msgs:
        if msg.type != nl.RTM_NEWTFILTER:
            continue
        found = _decode_filter(msg)
        if found.handle and found.ifindex == index and found.parent == parent_h:
            out.append(found)
    return out


def filter_del(
    link: Interface,
    parent: Parent,
    priority: int,
    handle: int = 0,
    protocol: int = nl.ETH_P_ALL,
    *,
    netns: int | None = None,
) -> None:
    """Delete one filter (``handle`` != 0) or every filter at ``priority`` (``handle`` 0)."""
    parent_h = tc_parent(parent)
    info = _tc_info(priority, protocol)
    if priority == 0:
        raise ValueError("filter_del needs the priority of the filter")
    with _connect(netns) as conn:
        index = _resolve(conn, link)
        conn.request(nl.RTM_DELTFILTER, _tcmsg(index, handle, parent_h, info))
