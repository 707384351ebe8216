"""Per-network-namespace hooks: ``sk_lookup`` and the BPF flow dissector.

* :func:`attach_sk_lookup` -> :class:`NetNSLink` (``BPF_SK_LOOKUP``, kernel >= 5.9): the
  program picks the listening/receiving socket for each new connection or datagram in the
  namespace (``bpf_sk_assign``), before the normal socket lookup. Links only.
* :func:`attach_flow_dissector` -> :class:`NetNSLink` (kernel >= 5.7) or
  :class:`FlowDissectorAttachment` (``BPF_PROG_ATTACH`` with target fd 0, i.e. the caller's
  namespace, >= 4.20): replaces the kernel's flow dissector for the namespace.

``netns`` is a path (``/proc/<pid>/ns/net``, ``/run/netns/NAME``), an open namespace fd, an
object with ``fileno()`` (:class:`ebpf.testing.netns.NetNS`), or ``None`` for the calling
thread's namespace.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import os
from collections.abc import Callable
from typing import Literal, Protocol, final, overload

from .. import errors
from .._programs import Program
from .._sys import netlink
from .._sys.fd import FD, check_fd
from .._types import AttachType, LinkType, ProgramType
from .base import (
    Attachment,
    Link,
    ProgQuery,
    check_program_type,
    current_netns,
    link_create,
    netns_arg,
    prog_attach,
    prog_detach,
    prog_query,
)

__all__ = [
    "FlowDissectorAttachment",
    "NetNSLink",
    "attach_flow_dissector",
    "attach_sk_lookup",
    "query_netns",
]


class _HasFileno(Protocol):
    def fileno(self) -> int: ...


NetNSTarget = str | os.PathLike[str] | int | _HasFileno | None


def _open_netns(netns: NetNSTarget) -> FD:
    """An owned fd of the namespace; ValueError if ``netns`` is not a network namespace."""
    if netns is None:
        return current_netns()
    if isinstance(netns, bool):
        raise TypeError("netns must be a path, an fd or None")
    if isinstance(netns, (str, os.PathLike)):
        fd = FD(os.open(netns, os.O_RDONLY | os.O_CLOEXEC), "netns")
    else:
        raw = netns if isinstance(netns, int) else netns.fileno()
        fd = FD(os.dup(check_fd(raw, "netns")), "netns")
    try:
        # A network namespace fd refers to an nsfs inode; /proc/self/ns/net names it "net:[N]".
        link = os.readlink(f"/proc/self/fd/{fd.fileno()}")
        if not link.startswith("net:["):
            raise ValueError(f"{netns!r} is not a network namespace ({link})")
    except BaseException:
        fd.close()
        raise
    return fd


@final
class NetNSLink(Link):
    """A program on a network namespace hook through a bpf_link (``BPF_LINK_TYPE_NETNS``):
    ``SK_LOOKUP`` or ``FLOW_DISSECTOR``. The link does not keep the namespace alive; when the
    namespace goes, the link is auto-detached."""

    __slots__ = ()
    link_type = LinkType.NETNS

    @property
    def netns_ino(self) -> int:
        """The namespace's inode number (``/proc/self/ns/net`` ``net:[N]``); 0 once detached."""
        return int(self.info().raw.netns.netns_ino)

    @property
    def attach_type(self) -> AttachType:
        return AttachType(self.info().raw.netns.attach_type)


def attach_sk_lookup(program: Program, netns: NetNSTarget = None) -> NetNSLink:
    """Run an ``SK_LOOKUP`` program for every socket lookup in ``netns`` (default: the calling
    thread's). Several programs can be attached; they run in order until one assigns a socket
    (``bpf_sk_assign``) and returns ``SK_PASS``, or drops (``SK_DROP``).

    Kernel >= 5.9; a bpf_link only (``BPF_PROG_ATTACH`` is ``EINVAL``).
    """
    check_program_type(program, ProgramType.SK_LOOKUP, hook="sk_lookup")
    with _open_netns(netns) as ns:
        return NetNSLink(link_create(program, ns.fileno(), AttachType.SK_LOOKUP), program)


@final
class FlowDissectorAttachment(Attachment):
    """A flow dissector attached with ``BPF_PROG_ATTACH`` to a namespace (no bpf_link).

    It remembers its namespace: :meth:`detach` works from any thread. Built by
    :func:`attach_flow_dissector`.
    """

    __slots__ = ("_netns",)

    def __init__(self, program: Program, netns: FD) -> None:
        super().__init__(program)
        self._netns = netns

    def _detach(self) -> None:
        def run() -> None:
            try:
                prog_detach(self.program, 0, AttachType.FLOW_DISSECTOR)
            except errors.SyscallError as e:
                if e.errno != _errno.ENOENT:  # replaced or detached by someone else
                    raise

        try:
            _in_netns(self._netns, run)
        finally:
            self._netns.close()


def _in_netns(ns: FD, fn: Callable[[], None]) -> None:
    """Call ``fn`` in namespace ``ns``: here if the calling thread is in it, else in a helper
    thread that enters it."""
    target = netns_arg(ns)
    if target is None:
        fn()
    else:
        netlink.run_in_netns(target, fn)


def _have_netns_link() -> bool:
    from .. import features

    try:
        features.have_link_type(LinkType.NETNS)
    except errors.NotSupportedError:
        return False
    except errors.ProbeError:
        return True
    return True


@overload
def attach_flow_dissector(program: Program, netns: NetNSTarget = ..., *,
                          method: Literal["link"]) -> NetNSLink: ...
@overload
def attach_flow_dissector(program: Program, netns: NetNSTarget = ..., *,
                          method: Literal["attach"]) -> FlowDissectorAttachment: ...
@overload
def attach_flow_dissector(program: Program, netns: NetNSTarget = ..., *,
                          method: None = ...) -> NetNSLink | FlowDissectorAttachment: ...


def attach_flow_dissector(program: Program, netns: NetNSTarget = None, *,
                          method: Literal["link", "attach"] | None = None,
                          ) -> NetNSLink | FlowDissectorAttachment:
    """Replace the flow dissector of ``netns`` (default: the calling thread's namespace).

    ``method="link"`` (:class:`NetNSLink`, >= 5.7) or ``"attach"`` (``BPF_PROG_ATTACH`` with
    target fd 0, :class:`FlowDissectorAttachment`, >= 4.20; the kernel attaches to the
    caller's namespace, so for another ``netns`` a helper thread enters it first). By default
    a link, **falling back to** ``BPF_PROG_ATTACH`` **on kernels without netns links**.

    One flow dissector per namespace: a second link fails with ``E2BIG``, mixing a link and
    ``BPF_PROG_ATTACH`` with ``EEXIST``; ``BPF_PROG_ATTACH`` over ``BPF_PROG_ATTACH`` replaces.
    """
    check_program_type(program, ProgramType.FLOW_DISSECTOR, hook="flow dissector")
    if method not in (None, "link", "attach"):
        raise ValueError(f"method must be 'link', 'attach' or None, not {method!r}")
    ns = _open_netns(netns)
    try:
        if method is None:
            method = "link" if _have_netns_link() else "attach"
        if method == "link":
            with ns:
                return NetNSLink(link_create(program, ns.fileno(), AttachType.FLOW_DISSECTOR),
                                 program)
        _in_netns(ns, lambda: prog_attach(program, 0, AttachType.FLOW_DISSECTOR))
    except BaseException:
        ns.close()
        raise
    try:
        return FlowDissectorAttachment(program, ns)
    except BaseException:
        with contextlib.suppress(Exception):
            _in_netns(ns, lambda: prog_detach(program, 0, AttachType.FLOW_DISSECTOR))
        ns.close()
        raise


def query_netns(attach_type: AttachType | int, netns: NetNSTarget = None) -> ProgQuery:
    """The program attached to a namespace hook (``SK_LOOKUP`` or ``FLOW_DISSECTOR``)."""
    at = AttachType(attach_type)
    if at not in (AttachType.SK_LOOKUP, AttachType.FLOW_DISSECTOR):
        raise ValueError(f"{at.name} is not a network namespace attach type")
    with _open_netns(netns) as ns:
        return prog_query(ns.fileno(), at)
