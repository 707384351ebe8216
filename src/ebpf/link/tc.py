"""TC: run a ``SCHED_CLS`` program on every packet entering or leaving an interface.

Two mechanisms, one function (:func:`attach_tc`):

* **TCX** (``BPF_LINK_CREATE`` with ``BPF_TCX_INGRESS``/``EGRESS``, kernel >= 6.6) ->
  :class:`TCXLink`: a bpf_link in a per-device program list, ordered with ``before=``/
  ``after=``/``first=`` (``BPF_F_BEFORE``/``BPF_F_AFTER``), no qdisc needed;
* **clsact + cls_bpf** over rtnetlink (kernel >= 4.5) -> :class:`TCAttachment`: a
  direct-action ``bpf`` filter under the ``clsact`` qdisc (added if missing and left in place),
  for every protocol (``ETH_P_ALL``, sent in network byte order) unless ``protocol=`` says
  otherwise, at a ``priority``/``handle`` the caller or the kernel picks.

Both run before the stack (ingress) or the driver (egress). They coexist on one device, TCX
first; a TCX program returning ``TCX_PASS`` (0) ends processing there, so filters behind it
do not see the packet. Return codes: ``TC_ACT_OK``/``TCX_PASS`` 0, ``TC_ACT_SHOT``/``TCX_DROP``
2, ``TCX_NEXT`` -1 (TCX: run the next program).

List and delete filters with :func:`tc_filters` and :func:`delete_tc_filter`; see what TCX
runs with :func:`query_tcx`.
"""

from __future__ import annotations

import contextlib
import errno as _errno
from typing import Literal, final, overload

from .. import errors
from .._programs import Program
from .._sys import netlink
from .._sys._nlattr import ETH_P_ALL
from .._sys.fd import FD
from .._sys.netlink import FilterInfo
from .._types import AttachType, LinkType, ProgramType
from .._uapi import _defines as _d
from .._uapi import _generated_types as _t
from .base import (
    Attachment,
    Link,
    ProgQuery,
    check_program_type,
    current_netns,
    link_create,
    netns_arg,
    prog_query,
    resolve_interface,
)

__all__ = [
    "ETH_P_ALL",
    "FilterInfo",
    "TCAttachment",
    "TCXLink",
    "attach_tc",
    "delete_tc_filter",
    "query_tcx",
    "tc_filters",
]

Direction = Literal["ingress", "egress"]
Mode = Literal["tcx", "clsact"]

_TCX_ATTACH = {"ingress": AttachType.TCX_INGRESS, "egress": AttachType.TCX_EGRESS}
_BPF_F_LINK = int(_t.BPF_F_LINK)


def _check_direction(direction: str) -> Direction:
    if direction not in ("ingress", "egress"):
        raise ValueError(f"direction must be 'ingress' or 'egress', not {direction!r}")
    return direction  # type: ignore[return-value]


@final
class TCXLink(Link):
    """A ``SCHED_CLS`` program in a device's TCX list (``BPF_LINK_TYPE_TCX``, kernel >= 6.6)."""

    __slots__ = ()
    link_type = LinkType.TCX

    @property
    def ifindex(self) -> int:
        """The interface (0 once detached)."""
        return int(self.info().raw.tcx.ifindex)

    @property
    def direction(self) -> Direction:
        """``"ingress"`` or ``"egress"``."""
        at = self.info().raw.tcx.attach_type
        return "egress" if at == AttachType.TCX_EGRESS else "ingress"


@final
class TCAttachment(Attachment):
    """A direct-action ``cls_bpf`` filter under a ``clsact`` qdisc (rtnetlink, no bpf_link).

    ``filter`` is what the kernel reported when the filter was added (its priority, handle,
    protocol, program id). :meth:`detach` deletes this filter, only while it still runs the
    program attached here; the qdisc stays. Not pinnable. Built by :func:`attach_tc`.
    """

    __slots__ = ("_netns", "direction", "filter", "ifindex")

    def __init__(self, program: Program, ifindex: int, direction: Direction, found: FilterInfo,
                 netns: FD) -> None:
        super().__init__(program)
        self.ifindex = ifindex
        self.direction = direction
        self.filter = found
        self._netns = netns

    @property
    def priority(self) -> int:
        return self.filter.priority

    @property
    def handle(self) -> int:
        return self.filter.handle

    def _detach(self) -> None:
        f = self.filter
        try:
            ns = netns_arg(self._netns)
            current = [
                x for x in netlink.filter_list(self.ifindex, self.direction, netns=ns)
                if x.priority == f.priority and x.handle == f.handle
                and x.protocol == f.protocol
            ]
            if current and current[0].prog_id == f.prog_id:
                netlink.filter_del(self.ifindex, self.direction, f.priority, f.handle,
                                   f.protocol, netns=ns)
        except errors.SyscallError as e:
            # ENOENT: already gone; EINVAL/ENODEV: qdisc or device removed meanwhile.
            if e.errno not in (_errno.ENOENT, _errno.EINVAL, _errno.ENODEV):
                raise
        except ValueError:  # the interface is gone
            pass
        finally:
            self._netns.close()

    def __repr__(self) -> str:
        state = "detached" if self.closed else (
            f"ifindex={self.ifindex} {self.direction} pref {self.priority} "
            f"handle {self.handle:#x}")
        return f"<TCAttachment {state}>"


def _have_tcx() -> bool:
    from .. import features

    try:
        features.have_link_type(LinkType.TCX)
    except errors.NotSupportedError:
        return False
    except errors.ProbeError:
        return True  # inconclusive: just try
    return True


def _relative(target: Program | Link) -> tuple[int, int]:
    """(flags, relative_fd) for a program or a link named by ``before=``/``after=``."""
    if isinstance(target, Link):
        return _BPF_F_LINK, target.fileno()
    if isinstance(target, Program):
        return 0, target.fileno()
    raise TypeError(f"before=/after= take a Program or a Link, not {type(target).__name__}")


@overload
def attach_tc(program: Program, interface: int | str, *, direction: Direction = ...,
              mode: Literal["tcx"], before: Program | Link | None = ...,
              after: Program | Link | None = ..., first: bool = ...,
              expected_revision: int = ...) -> TCXLink: ...
@overload
def attach_tc(program: Program, interface: int | str, *, direction: Direction = ...,
              mode: Literal["clsact"], priority: int = ..., handle: int = ...,
              protocol: int = ..., name: str = ..., replace: bool = ...) -> TCAttachment: ...
@overload
def attach_tc(program: Program, interface: int | str, *, direction: Direction = ...,
              mode: None = ..., before: Program | Link | None = ...,
              after: Program | Link | None = ..., first: bool = ..., expected_revision: int = ...,
              priority: int = ..., handle: int = ..., protocol: int = ..., name: str = ...,
              replace: bool = ...) -> TCXLink | TCAttachment: ...


def attach_tc(
    program: Program,
    interface: int | str,
    *,
    direction: Direction = "ingress",
    mode: Mode | None = None,
    before: Program | Link | None = None,
    after: Program | Link | None = None,
    first: bool = False,
    expected_revision: int = 0,
    priority: int = 0,
    handle: int = 0,
    protocol: int = ETH_P_ALL,
    name: str = "",
    replace: bool = False,
) -> TCXLink | TCAttachment:
    """Attach a ``SCHED_CLS`` program to the ingress or egress path of an interface.

    ``mode="tcx"`` makes a :class:`TCXLink`. Ordering options (TCX only): ``before=``/
    ``after=`` a program or link already in the list, ``first=True`` for the front (the default
    is the end); ``expected_revision`` makes the attach fail with ``ESTALE`` if the list
    changed since :func:`query_tcx` returned that revision.

    ``mode="clsact"`` adds a direct-action ``cls_bpf`` filter (:class:`TCAttachment`), creating
    the ``clsact`` qdisc if needed. Filter options (clsact only): ``priority`` (``pref``, 1-65535,
    0 lets the kernel choose), ``handle`` (0: kernel's choice), ``protocol`` (an ``ETH_P_*`` in
    host order, default ``ETH_P_ALL``: every frame, IPv4, IPv6, ARP and the rest), ``name``
    (shown by ``tc filter show``), ``replace`` (replace the filter at that priority/handle
    instead of failing with ``EEXIST``).

    ``mode=None`` picks TCX when the kernel has it, unless a clsact-only option is given;
    **without TCX (kernel < 6.6) it falls back to clsact**.

    Errors: :class:`ValueError` for a non-``SCHED_CLS`` program, an unknown interface, a bad
    direction, or options of the other mode (before any syscall); ``EEXIST`` when the same
    program is already in the TCX list.

    Kernel: ``BPF_LINK_TYPE_TCX`` >= 6.6; clsact >= 4.5, direct action >= 4.4.
    """
    check_program_type(program, ProgramType.SCHED_CLS, hook="TC")
    direction = _check_direction(direction)
    tcx_only = before is not None or after is not None or first or expected_revision != 0
    clsact_only = (priority != 0 or handle != 0 or protocol != ETH_P_ALL or name != ""
                   or replace)
    if mode not in (None, "tcx", "clsact"):
        raise ValueError(f"mode must be 'tcx', 'clsact' or None, not {mode!r}")
    if tcx_only and clsact_only:
        raise ValueError("before=/after=/first=/expected_revision= are TCX options and "
                         "priority=/handle=/protocol=/name=/replace= clsact options: not both")
    if mode == "tcx" and clsact_only:
        raise ValueError("priority=/handle=/protocol=/name=/replace= need mode='clsact'")
    if mode == "clsact" and tcx_only:
        raise ValueError("before=/after=/first=/expected_revision= need mode='tcx'")
    if sum(x is not None for x in (before, after)) + first > 1:
        raise ValueError("give at most one of before=, after=, first=")
    if not 0 <= priority <= 0xFFFF:
        raise ValueError(f"priority {priority} out of range 0..65535")
    if not 0 <= handle <= 0xFFFFFFFF:
        raise ValueError(f"handle {handle:#x} out of range")
    if not 0 <= protocol <= 0xFFFF:
        raise ValueError(f"protocol {protocol:#x} out of range (an ETH_P_* in host order)")
    ifindex = resolve_interface(interface)
    if mode is None:
        mode = "clsact" if clsact_only or (not tcx_only and not _have_tcx()) else "tcx"
    if mode == "tcx":
        flags, relative_fd = 0, 0
        if before is not None:
            f, relative_fd = _relative(before)
            flags = _d.BPF_F_BEFORE | f
        elif after is not None:
            f, relative_fd = _relative(after)
            flags = _d.BPF_F_AFTER | f
        elif first:
            flags = _d.BPF_F_BEFORE
        fd = link_create(program, ifindex, _TCX_ATTACH[direction], flags,
                         **{"tcx.relative_fd": relative_fd,
                            "tcx.expected_revision": expected_revision})
        return TCXLink(fd, program)
    ns = current_netns()
    try:
        netlink.clsact_add(ifindex, exist_ok=True)
        found = netlink.filter_add(ifindex, direction, program.fileno(), name=name,
                                   priority=priority, handle=handle, protocol=protocol,
                                   direct_action=True, replace=replace)
    except BaseException:
        ns.close()
        raise
    try:
        return TCAttachment(program, ifindex, direction, found, ns)
    except BaseException:
        with contextlib.suppress(Exception):
            netlink.filter_del(ifindex, direction, found.priority, found.handle, found.protocol)
        ns.close()
        raise


def tc_filters(interface: int | str, direction: Direction = "ingress") -> list[FilterInfo]:
    """The filters on the clsact ``direction`` hook of ``interface``, in kernel order.

    Empty when the interface has no clsact qdisc.
    """
    direction = _check_direction(direction)
    ifindex = resolve_interface(interface)
    try:
        return netlink.filter_list(ifindex, direction)
    except errors.SyscallError as e:
        if e.errno == _errno.EINVAL:  # no clsact qdisc: no such parent
            return []
        raise


def delete_tc_filter(interface: int | str, direction: Direction, priority: int,
                     handle: int = 0, protocol: int = ETH_P_ALL) -> None:
    """Delete one clsact filter (``handle`` != 0), or all filters at ``priority`` (``handle`` 0).

    ``ENOENT`` (:class:`~ebpf.errors.SyscallError`) if there is no such filter.
    """
    direction = _check_direction(direction)
    if not 0 < priority <= 0xFFFF:
        raise ValueError(f"priority {priority} out of range 1..65535")
    ifindex = resolve_interface(interface)
    netlink.filter_del(ifindex, direction, priority, handle, protocol)


def query_tcx(interface: int | str, direction: Direction = "ingress") -> ProgQuery:
    """The programs in the TCX list of ``interface`` (ids in run order, link ids, revision).

    Kernel >= 6.6 (``BPF_PROG_QUERY`` on an ifindex).
    """
    direction = _check_direction(direction)
    ifindex = resolve_interface(interface)
    return prog_query(ifindex, _TCX_ATTACH[direction])
