"""Network namespaces, veth pairs and tiny traffic helpers for tests.

Nothing here uses ``ip netns exec``, which remounts ``/sys`` and so hides bpffs, tracefs and
cgroups from the command. A namespace is entered with ``setns(fd, CLONE_NEWNET)`` on the
calling thread only (:meth:`NetNS.enter`), or a function is run in a helper thread inside it
(:meth:`NetNS.run`); the rest of the process stays where it is.

Typical use::

    from ebpf.testing.netns import veth_pair, icmp_echo

    with veth_pair() as pair:                     # two namespaces, a veth across, addresses up
        assert pair.a.run(icmp_echo, pair.b.ip, count=3) == 3
        with pair.b.enter():                      # this thread now lives in namespace b
            ...                                   # attach XDP to pair.b.ifindex, open sockets

Everything a helper creates is removed on ``close()``/exit, also when creation fails half-way.
Namespaces are anonymous by default: they live as long as their fd (and any socket or thread
inside them), so even a crashed test leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import select
import socket
import struct
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from .. import packet
from .._sys import _nlattr as nl
from .._sys import netlink

__all__ = [
    "Endpoint",
    "NetNS",
    "VethPair",
    "icmp_echo",
    "packet_socket",
    "send_frame",
    "udp_listen",
    "udp_send",
    "veth_pair",
]

P = ParamSpec("P")
T = TypeVar("T")

_NETNS_RUN_DIR = "/run/netns"
_SELF_NS = "/proc/thread-self/ns/net"


def _new_netns_fd() -> int:
    """Create a network namespace in a throw-away thread and return an fd that keeps it alive."""
    box: list[int] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            netlink.unshare(nl.CLONE_NEWNET)
            box.append(os.open(_SELF_NS, os.O_RDONLY | os.O_CLOEXEC))
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=target, name="ebpf-unshare", daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return box[0]


def _release(fd: int, mount_path: str | None) -> None:
    if mount_path is not None:
        with contextlib.suppress(OSError):
            netlink.umount(mount_path)
        with contextlib.suppress(OSError):
            os.unlink(mount_path)
    with contextlib.suppress(OSError):
        os.close(fd)


def _finalize(fd: int, mount_path: str | None, what: str) -> None:
    _release(fd, mount_path)
    warnings.warn(f"unclosed {what}; call close() or use a with block", ResourceWarning, 2)


class NetNS:
    """A network namespace this object owns.

    ``NetNS()`` creates an anonymous namespace, ``NetNS("name")`` one that ``ip netns`` sees
    (bind-mounted at ``/run/netns/name``; ``FileExistsError`` if that exists). Its loopback
    interface is brought up unless ``lo_up=False``. ``fd`` refers
    to it (pass it as ``netns=`` to :mod:`ebpf._sys.netlink` or to :func:`os.setns`).
    :meth:`close` deletes every interface in it (so veth peers elsewhere go at once), the
    name, and the fd. Use it as a context manager.
    """

    def __init__(self, name: str | None = None, *, lo_up: bool = True) -> None:
        self._name = name
        self._mount: str | None = None
        if name is not None and (not name or "/" in name or name in (".", "..")):
            raise ValueError(f"invalid netns name {name!r}")
        fd = _new_netns_fd()
        try:
            if name is not None:
                os.makedirs(_NETNS_RUN_DIR, mode=0o755, exist_ok=True)
                path = os.path.join(_NETNS_RUN_DIR, name)
                os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o444))
                try:
                    netlink.bind_mount(f"/proc/self/fd/{fd}", path)
                except BaseException:
                    os.unlink(path)
                    raise
                self._mount = path
            if lo_up:
                netlink.link_set_up("lo", netns=fd)
        except BaseException:
            _release(fd, self._mount)
            raise
        self._fd: int | None = fd
        self._finalizer = weakref.finalize(
            self, _finalize, fd, self._mount, f"NetNS({name!r}, fd {fd})"
        )

    def __repr__(self) -> str:
        state = "closed" if self._fd is None else f"fd {self._fd}"
        return f"NetNS({self._name!r}, {state})"

    @property
    def fd(self) -> int:
        """The namespace fd (``ValueError`` once closed)."""
        if self._fd is None:
            raise ValueError("NetNS is closed")
        return self._fd

    def fileno(self) -> int:
        """Same as :attr:`fd`."""
        return self.fd

    @property
    def name(self) -> str | None:
        """The ``ip netns`` name, or ``None`` for an anonymous namespace."""
        return self._name

    @property
    def path(self) -> str:
        """A path that refers to the namespace, e.g. for ``nsenter --net=PATH``.

        For an anonymous namespace it is ``/proc/<pid>/fd/<fd>``: valid only while this
        process runs (pass the fd to children with ``pass_fds``).
        """
        return self._mount or f"/proc/{os.getpid()}/fd/{self.fd}"

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._fd is None

    @contextlib.contextmanager
    def enter(self) -> Iterator[NetNS]:
        """Switch the *calling thread* into this namespace for the ``with`` block.

        The thread switches back afterwards, also when the block raises. Other threads stay
        where they are, but threads *started* inside the block inherit this namespace. Sockets
        opened inside stay in this namespace after the block.
        """
        origin = os.open(_SELF_NS, os.O_RDONLY | os.O_CLOEXEC)
        try:
            netlink.setns(self.fd, nl.CLONE_NEWNET)
            try:
                yield self
            finally:
                netlink.setns(origin, nl.CLONE_NEWNET)
        finally:
            os.close(origin)

    def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Call ``fn(*args, **kwargs)`` in a helper thread inside this namespace."""
        return netlink.run_in_netns(self.fd, lambda: fn(*args, **kwargs))

    def close(self) -> None:
        """Delete the namespace's interfaces, its name and its fd (idempotent)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        self._finalizer.detach()
        try:
            for link in netlink.link_list(netns=fd):
                if link.flags & nl.IFF_LOOPBACK:
                    continue
                # The peer of a veth deleted a moment ago is gone already (ENODEV/ValueError).
                with contextlib.suppress(OSError, ValueError):
                    netlink.link_del(link.index, netns=fd)
        finally:
            _release(fd, self._mount)

    def __enter__(self) -> NetNS:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One side of a :class:`VethPair`: its namespace, interface and addresses."""

    ns: NetNS
    ifname: str
    ifindex: int  #: index inside ``ns``
    mac: str  #: ``"aa:bb:cc:dd:ee:ff"``
    ipv4: ipaddress.IPv4Interface  #: e.g. ``10.77.13.1/24``
    ipv6: ipaddress.IPv6Interface  #: e.g. ``fd00:77:13::1/64`` (no DAD)

    @property
    def ip(self) -> str:
        """The IPv4 address as a string."""
        return str(self.ipv4.ip)

    @property
    def ip6(self) -> str:
        """The IPv6 address as a string."""
        return str(self.ipv6.ip)

    @contextlib.contextmanager
    def enter(self) -> Iterator[Endpoint]:
        """Switch the calling thread into this endpoint's namespace (see :meth:`NetNS.enter`)."""
        with self.ns.enter():
            yield self

    def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` in a helper thread inside this endpoint's namespace."""
        return self.ns.run(fn, *args, **kwargs)


class VethPair:
    """Two fresh namespaces joined by a veth pair, addressed and up (see :func:`veth_pair`)."""

    def __init__(self, a: Endpoint, b: Endpoint) -> None:
        self.a = a
        self.b = b

    def __repr__(self) -> str:
        return f"VethPair({self.a.ifname}={self.a.ipv4} <-> {self.b.ifname}={self.b.ipv4})"

    def close(self) -> None:
        """Delete both namespaces and the veth pair (idempotent)."""
        try:
            self.a.ns.close()
        finally:
            self.b.ns.close()

    def __enter__(self) -> VethPair:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def veth_pair(
    names: tuple[str, str] = ("veth0", "veth1"),
    *,
    subnet: int | None = None,
    ns_names: tuple[str, str] | None = None,
) -> VethPair:
    """Create namespaces *a* and *b*, a veth pair ``names`` across them, addresses, all up.

    *a* gets ``10.77.<subnet>.1/24`` and ``fd00:77:<subnet>::1/64``, *b* the ``.2``/``::2``
    twins; ``subnet`` is random unless given (the kernel is shared with concurrent runs; each
    pair lives in its own namespaces anyway). Loopback is up in both. Nothing is created in
    the caller's namespace. ``ns_names`` makes the namespaces visible to ``ip netns``.
    Use the result as a context manager; a failure part-way removes what was made.
    """
    y = random.randrange(256) if subnet is None else subnet
    if not 0 <= y <= 255:
        raise ValueError(f"subnet {y} out of range 0..255")
    netlink.check_ifname(names[0])
    netlink.check_ifname(names[1])
    with contextlib.ExitStack() as stack:
        ns_a = stack.enter_context(NetNS(ns_names[0] if ns_names else None))
        ns_b = stack.enter_context(NetNS(ns_names[1] if ns_names else None))
        netlink.veth_create(names[0], names[1], peer_netns=ns_b.fd, netns=ns_a.fd)
        ends = []
        for ns, ifname, host in ((ns_a, names[0], 1), (ns_b, names[1], 2)):
            v4 = ipaddress.IPv4Interface(f"10.77.{y}.{host}/24")
            v6 = ipaddress.IPv6Interface(f"fd00:77:{y:x}::{host}/64")
            netlink.addr_add(ifname, v4, netns=ns.fd)
            netlink.addr_add(ifname, v6, netns=ns.fd)
            netlink.link_set_up(ifname, netns=ns.fd)
            info = netlink.link_info(ifname, netns=ns.fd)
            ends.append(Endpoint(ns, ifname, info.index, info.address, v4, v6))
        stack.pop_all()
    return VethPair(ends[0], ends[1])


# --- traffic ----------------------------------------------------------------------------------


def icmp_echo(
    dst: str,
    count: int = 1,
    *,
    timeout: float = 1.0,
    payload: bytes = b"ebpf-testing-echo",
    interval: float = 0.0,
) -> int:
    """Send ``count`` ICMP (or ICMPv6) echo requests to ``dst``; return how many were answered.

    Pure Python over a raw socket (no ``ping`` needed), in the calling thread's namespace (wrap
    it in :meth:`NetNS.run` or :meth:`NetNS.enter` to use another). Replies are matched by a
    random identifier and the sequence numbers sent. Waits up to ``timeout`` seconds after
    the last request.
    """
    addr = ipaddress.ip_address(dst)
    ident = random.randrange(1, 0x10000)
    v6 = addr.version == 6
    family, proto = (
        (socket.AF_INET6, socket.IPPROTO_ICMPV6) if v6 else (socket.AF_INET, socket.IPPROTO_ICMP)
    )
    answered: set[int] = set()
    with socket.socket(family, socket.SOCK_RAW, proto) as sock:
        for seq in range(count):
            if v6:  # the kernel computes the ICMPv6 checksum of raw sockets itself
                msg = bytes(packet.ICMPv6(id=ident, seq=seq, checksum=0) / payload)
            else:
                msg = bytes(packet.ICMP(id=ident, seq=seq) / payload)
            sock.sendto(msg, (str(addr), 0))
            if interval and seq + 1 < count:
                time.sleep(interval)
        deadline = time.monotonic() + timeout
        while len(answered) < count:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([sock], [], [], left)[0]:
                break
            data, _ = sock.recvfrom(65535)
            if not v6:  # raw IPv4 sockets deliver the IP header too
                data = data[(data[0] & 0xF) * 4 :]
            if len(data) < 8:
                continue
            typ, _code, _sum, rid, rseq = struct.unpack_from("!BBHHH", data)
            want = packet.ICMPv6Type.ECHO_REPLY if v6 else packet.ICMPType.ECHO_REPLY
            if typ == want and rid == ident and rseq < count:
                answered.add(rseq)
    return len(answered)


def udp_listen(port: int = 0, *, addr: str = "0.0.0.0", timeout: float = 2.0) -> socket.socket:
    """A UDP socket bound to ``(addr, port)`` in the calling thread's namespace.

    Read with ``sock.recvfrom(n)``; it times out after ``timeout`` seconds. ``port`` 0 picks a
    free port (see ``sock.getsockname()``). Create it inside :meth:`NetNS.enter`/``run`` to
    listen in another namespace; the socket stays there.
    """
    family = socket.AF_INET6 if ipaddress.ip_address(addr).version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.bind((addr, port))
        sock.settimeout(timeout)
    except BaseException:
        sock.close()
        raise
    return sock


def udp_send(dst: str, port: int, data: bytes, *, src_port: int = 0) -> None:
    """Send one UDP datagram from the calling thread's namespace."""
    family = socket.AF_INET6 if ipaddress.ip_address(dst).version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        if src_port:
            sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", src_port))
        sock.sendto(data, (dst, port))


_ETH_P_ALL = nl.ETH_P_ALL


def packet_socket(ifname: str, *, timeout: float = 2.0) -> socket.socket:
    """An ``AF_PACKET`` raw socket bound to ``ifname`` (every protocol) in the calling namespace.

    ``recv`` returns whole Ethernet frames seen on the interface (both directions);
    ``send`` injects a frame. It times out after ``timeout`` seconds.
    """
    netlink.check_ifname(ifname)
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(_ETH_P_ALL))
    try:
        sock.bind((ifname, _ETH_P_ALL))
        sock.settimeout(timeout)
    except BaseException:
        sock.close()
        raise
    return sock


def send_frame(ifname: str, frame: bytes | packet.Packet) -> None:
    """Transmit one raw Ethernet frame on ``ifname`` (calling thread's namespace)."""
    with packet_socket(ifname) as sock:
        sock.send(bytes(frame))
