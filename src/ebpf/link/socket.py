"""Socket hooks: a filter on one socket, and verdict/parser programs on a sockmap or sockhash.

* :func:`attach_socket_filter` -> :class:`SocketFilter`: ``setsockopt(SO_ATTACH_BPF)`` of a
  ``SOCKET_FILTER`` program on one socket (kernel >= 3.19). The program's return value is how
  many bytes of each packet the socket keeps (0 drops it).
* :func:`attach_reuseport` -> :class:`ReuseportAttachment`: ``SO_ATTACH_REUSEPORT_EBPF`` of a
  ``SK_REUSEPORT`` (or ``SOCKET_FILTER``) program on a ``SO_REUSEPORT`` group (>= 4.5).
* :func:`attach_sockmap` -> :class:`SockmapLink` (``BPF_LINK_CREATE`` on the map, >= 6.10) or
  :class:`SockmapAttachment` (``BPF_PROG_ATTACH`` with the map fd as target, >= 4.14): an
  ``SK_SKB`` stream parser/verdict or an ``SK_MSG`` verdict program for every socket in a
  ``SOCKMAP``/``SOCKHASH``. Attach before inserting sockets: a socket picks up the
  programs attached when it is added.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import os
import socket
from typing import Literal, Protocol, final, overload

from .. import errors
from .._programs import Program
from .._sys.fd import FD, check_fd
from .._types import AttachType, LinkType, MapType, ProgramType
from .base import (
    Attachment,
    Link,
    check_program_type,
    link_create,
    prog_attach,
    prog_detach,
)

__all__ = [
    "SOCKMAP_ATTACH_TYPES",
    "ReuseportAttachment",
    "SocketFilter",
    "SockmapAttachment",
    "SockmapLink",
    "attach_reuseport",
    "attach_socket_filter",
    "attach_sockmap",
]

# include/uapi/asm-generic/socket.h
SO_ATTACH_BPF = 50
SO_DETACH_BPF = 27  # == SO_DETACH_FILTER
SO_ATTACH_REUSEPORT_EBPF = 52
SO_DETACH_REUSEPORT_BPF = 68

#: The sockmap attach types and the program type each runs.
SOCKMAP_ATTACH_TYPES: dict[AttachType, ProgramType] = {
    AttachType.SK_SKB_STREAM_PARSER: ProgramType.SK_SKB,
    AttachType.SK_SKB_STREAM_VERDICT: ProgramType.SK_SKB,
    AttachType.SK_SKB_VERDICT: ProgramType.SK_SKB,
    AttachType.SK_MSG_VERDICT: ProgramType.SK_MSG,
}


class _HasFileno(Protocol):
    def fileno(self) -> int: ...


SocketLike = socket.socket | int


def _sock(sock: SocketLike) -> socket.socket:
    """A socket object for ``sock`` (an int fd is wrapped without taking ownership)."""
    if isinstance(sock, socket.socket):
        if sock.fileno() < 0:
            raise ValueError("socket is closed")
        return sock
    if isinstance(sock, bool) or not isinstance(sock, int) or sock < 0:
        raise TypeError(f"expected a socket or a socket fd, not {sock!r}")
    return socket.socket(fileno=sock)


def _release(s: socket.socket, original: SocketLike) -> None:
    if s is not original:
        s.detach()  # the caller owns the fd


class _SockOpt(Attachment):
    __slots__ = ("_opt", "_sock")

    def __init__(self, program: Program, sock: SocketLike, detach_opt: int) -> None:
        super().__init__(program)
        self._sock = sock
        self._opt = detach_opt

    def _detach(self) -> None:
        if isinstance(self._sock, socket.socket) and self._sock.fileno() < 0:
            return  # the socket is closed: nothing left to detach from
        s = _sock(self._sock)
        try:
            s.setsockopt(socket.SOL_SOCKET, self._opt, 0)
        except OSError as e:
            if e.errno != _errno.ENOENT:  # nothing attached (any more)
                raise
        finally:
            _release(s, self._sock)


@final
class SocketFilter(_SockOpt):
    """A ``SOCKET_FILTER`` program on one socket (``SO_ATTACH_BPF``); ``detach()`` removes it
    (``SO_DETACH_BPF``). Closing the socket removes it too. Built by
    :func:`attach_socket_filter`."""

    __slots__ = ()


@final
class ReuseportAttachment(_SockOpt):
    """A program selecting the socket of a ``SO_REUSEPORT`` group (``SO_ATTACH_REUSEPORT_EBPF``).
    Built by :func:`attach_reuseport`."""

    __slots__ = ()


def attach_socket_filter(program: Program, sock: SocketLike) -> SocketFilter:
    """Attach a ``SOCKET_FILTER`` program to ``sock`` (a socket object or fd).

    The program sees each packet the socket is about to queue and returns how many bytes of it
    to keep (``0`` drops it, anything >= its length keeps it whole). Attaching again replaces
    the previous filter. Kernel >= 3.19.
    """
    check_program_type(program, ProgramType.SOCKET_FILTER, hook="SO_ATTACH_BPF")
    s = _sock(sock)
    try:
        s.setsockopt(socket.SOL_SOCKET, SO_ATTACH_BPF, program.fileno())
    except OSError as e:
        raise errors.from_errno("setsockopt(SO_ATTACH_BPF)", e.errno or 0) from None
    finally:
        _release(s, sock)
    return SocketFilter(program, sock, SO_DETACH_BPF)


def attach_reuseport(program: Program, sock: SocketLike) -> ReuseportAttachment:
    """Attach a ``SK_REUSEPORT`` (or ``SOCKET_FILTER``) program to the ``SO_REUSEPORT`` group
    of ``sock`` (which must have ``SO_REUSEPORT`` set and be bound). Kernel >= 4.5 (4.19 for
    ``SK_REUSEPORT``)."""
    check_program_type(program, ProgramType.SK_REUSEPORT, ProgramType.SOCKET_FILTER,
                       hook="SO_ATTACH_REUSEPORT_EBPF")
    s = _sock(sock)
    try:
        s.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF, program.fileno())
    except OSError as e:
        raise errors.from_errno("setsockopt(SO_ATTACH_REUSEPORT_EBPF)", e.errno or 0) from None
    finally:
        _release(s, sock)
    return ReuseportAttachment(program, sock, SO_DETACH_REUSEPORT_BPF)


# --- sockmap / sockhash ----------------------------------------------------------------------


@final
class SockmapLink(Link):
    """An ``SK_SKB``/``SK_MSG`` program on a sockmap through a bpf_link
    (``BPF_LINK_TYPE_SOCKMAP``, kernel >= 6.10)."""

    __slots__ = ()
    link_type = LinkType.SOCKMAP

    @property
    def map_id(self) -> int:
        """The id of the sockmap/sockhash (0 once detached)."""
        return int(self.info().raw.sockmap.map_id)

    @property
    def attach_type(self) -> AttachType:
        return AttachType(self.info().raw.sockmap.attach_type)


@final
class SockmapAttachment(Attachment):
    """An ``SK_SKB``/``SK_MSG`` program attached to a sockmap with ``BPF_PROG_ATTACH``.

    It holds the map fd, and :meth:`detach` is ``BPF_PROG_DETACH`` of this program. Built by
    :func:`attach_sockmap`.
    """

    __slots__ = ("_map", "attach_type")

    def __init__(self, program: Program, map_fd: int, attach_type: AttachType) -> None:
        super().__init__(program)
        self._map = FD(os.dup(check_fd(map_fd, "map_fd")), "sockmap")
        self.attach_type = attach_type

    def _detach(self) -> None:
        try:
            prog_detach(self.program, self._map.fileno(), self.attach_type)
        except errors.SyscallError as e:
            if e.errno != _errno.ENOENT:
                raise
        finally:
            self._map.close()


def _sockmap_attach_type(program: Program, attach_type: AttachType | int | None) -> AttachType:
    if attach_type is None:
        eat = program.expected_attach_type
        if eat is not None and eat in SOCKMAP_ATTACH_TYPES:
            attach_type = eat
        elif program.type == ProgramType.SK_MSG:
            attach_type = AttachType.SK_MSG_VERDICT
        else:
            check_program_type(program, ProgramType.SK_SKB, ProgramType.SK_MSG, hook="sockmap")
            raise ValueError("attach_type is required for SK_SKB programs (SK_SKB_STREAM_PARSER,"
                             " SK_SKB_STREAM_VERDICT or SK_SKB_VERDICT)")
    try:
        at = AttachType(attach_type)
    except ValueError:
        raise ValueError(f"unknown attach type {attach_type}") from None
    if at not in SOCKMAP_ATTACH_TYPES:
        raise ValueError(f"{at.name} is not a sockmap attach type")
    check_program_type(program, SOCKMAP_ATTACH_TYPES[at], hook=at.name)
    return at


def _map_fd(sockmap: _HasFileno | int) -> int:
    if isinstance(sockmap, bool):
        raise TypeError("expected a SOCKMAP/SOCKHASH map or its fd")
    if isinstance(sockmap, int):
        return sockmap
    mt = getattr(sockmap, "type", None)
    if mt is not None and mt not in (MapType.SOCKMAP, MapType.SOCKHASH):
        name = mt.name if isinstance(mt, MapType) else str(mt)
        raise ValueError(f"invalid map type {name}, expected SOCKMAP or SOCKHASH")
    return sockmap.fileno()


def _have_sockmap_link() -> bool:
    from .. import features

    try:
        features.have_link_type(LinkType.SOCKMAP)
    except errors.NotSupportedError:
        return False
    except errors.ProbeError:
        return True
    return True


@overload
def attach_sockmap(program: Program, sockmap: _HasFileno | int,
                   attach_type: AttachType | int | None = ..., *,
                   method: Literal["link"]) -> SockmapLink: ...
@overload
def attach_sockmap(program: Program, sockmap: _HasFileno | int,
                   attach_type: AttachType | int | None = ..., *,
                   method: Literal["attach"]) -> SockmapAttachment: ...
@overload
def attach_sockmap(program: Program, sockmap: _HasFileno | int,
                   attach_type: AttachType | int | None = ..., *,
                   method: None = ...) -> SockmapLink | SockmapAttachment: ...


def attach_sockmap(program: Program, sockmap: _HasFileno | int,
                   attach_type: AttachType | int | None = None, *,
                   method: Literal["link", "attach"] | None = None,
                   ) -> SockmapLink | SockmapAttachment:
    """Attach an ``SK_SKB`` or ``SK_MSG`` program to a ``SOCKMAP``/``SOCKHASH``.

    ``attach_type``: ``SK_MSG_VERDICT`` (the default for ``SK_MSG``), ``SK_SKB_STREAM_PARSER``,
    ``SK_SKB_STREAM_VERDICT`` or ``SK_SKB_VERDICT`` (default: the program's
    ``expected_attach_type``). ``method``: ``"link"`` (:class:`SockmapLink`, >= 6.10),
    ``"attach"`` (``BPF_PROG_ATTACH``, :class:`SockmapAttachment`); by default a link, **falling
    back to** ``BPF_PROG_ATTACH`` **on kernels without sockmap links**.

    A map holds one program per attach type: a second attach of the same type fails with
    ``EBUSY`` (links) or replaces it (``BPF_PROG_ATTACH``).
    """
    at = _sockmap_attach_type(program, attach_type)
    if method not in (None, "link", "attach"):
        raise ValueError(f"method must be 'link', 'attach' or None, not {method!r}")
    fd = _map_fd(sockmap)
    if method is None:
        method = "link" if _have_sockmap_link() else "attach"
    if method == "link":
        return SockmapLink(link_create(program, fd, at), program)
    prog_attach(program, fd, at)
    try:
        return SockmapAttachment(program, fd, at)
    except BaseException:
        with contextlib.suppress(Exception):
            prog_detach(program, fd, at)
        raise
