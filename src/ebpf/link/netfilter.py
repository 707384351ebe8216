"""Netfilter hooks: a ``NETFILTER`` program as a netfilter hook function (kernel >= 6.4).

:func:`attach_netfilter` registers the program at ``(protocol family, hook, priority)`` in the
calling thread's network namespace, through a bpf_link (:class:`NetfilterLink`; there is no
other way). The program returns a verdict: ``NF_ACCEPT`` (1) or ``NF_DROP`` (0).

Example::

    with attach_netfilter(prog, protocol=NFProto.IPV4, hook=NFHook.LOCAL_IN, priority=-128):
        ...
"""

from __future__ import annotations

import enum
from typing import final

from .._programs import Program
from .._types import AttachType, LinkType, ProgramType
from .._uapi import _defines as _d
from .base import Link, check_program_type, link_create

__all__ = ["NFHook", "NFProto", "NetfilterLink", "attach_netfilter"]

_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


class NFProto(enum.IntEnum):
    """Protocol families a BPF netfilter hook can use (``NFPROTO_*``, linux/netfilter.h)."""

    IPV4 = 2  #: ``NFPROTO_IPV4``
    IPV6 = 10  #: ``NFPROTO_IPV6``


class NFHook(enum.IntEnum):
    """Netfilter hook points (``enum nf_inet_hooks``)."""

    PRE_ROUTING = 0  #: ``NF_INET_PRE_ROUTING``
    LOCAL_IN = 1  #: ``NF_INET_LOCAL_IN``
    FORWARD = 2  #: ``NF_INET_FORWARD``
    LOCAL_OUT = 3  #: ``NF_INET_LOCAL_OUT``
    POST_ROUTING = 4  #: ``NF_INET_POST_ROUTING``


@final
class NetfilterLink(Link):
    """A program registered as a netfilter hook (``BPF_LINK_TYPE_NETFILTER``, >= 6.4).

    The kernel cannot swap its program: :meth:`update` raises
    :class:`~ebpf.errors.NotSupportedError`; detach and attach again instead.
    """

    __slots__ = ()
    link_type = LinkType.NETFILTER

    @property
    def protocol(self) -> NFProto:
        return NFProto(self.info().raw.netfilter.pf)

    @property
    def hook(self) -> NFHook:
        return NFHook(self.info().raw.netfilter.hooknum)

    @property
    def priority(self) -> int:
        return int(self.info().raw.netfilter.priority)

    @property
    def flags(self) -> int:
        return int(self.info().raw.netfilter.flags)


def attach_netfilter(program: Program, *, protocol: NFProto = NFProto.IPV4,
                     hook: NFHook = NFHook.LOCAL_IN, priority: int = 0,
                     defrag: bool = False) -> NetfilterLink:
    """Register ``program`` as a netfilter hook of the calling thread's network namespace.

    ``priority`` orders it among the other hooks at that point (lower runs first; the
    iptables ``filter`` table is at 0, conntrack at -200); ``INT_MIN``/``INT_MAX`` are reserved.
    ``defrag`` (``BPF_F_NETFILTER_IP_DEFRAG``, >= 6.6) has the program see reassembled
    packets; it needs a priority after defragmentation (> -400).

    Kernel >= 6.4 (``CONFIG_NETFILTER_BPF_LINK``).
    """
    check_program_type(program, ProgramType.NETFILTER, hook="netfilter")
    protocol = NFProto(protocol)
    hook = NFHook(hook)
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise TypeError(f"priority must be an int, not {priority!r}")
    if not _INT_MIN < priority < _INT_MAX:
        raise ValueError(f"priority {priority} out of range: INT_MIN and INT_MAX are reserved")
    flags = _d.BPF_F_NETFILTER_IP_DEFRAG if defrag else 0
    fd = link_create(program, 0, AttachType.NETFILTER, **{
        "netfilter.pf": int(protocol), "netfilter.hooknum": int(hook),
        "netfilter.priority": priority, "netfilter.flags": flags})
    return NetfilterLink(fd, program)
