"""libbpf's ``SEC()`` names: section name -> program type, expected attach type, flags.

The table follows ``section_defs`` in libbpf's ``libbpf.c`` (v1.5), in the same order (the
first match wins, so ``tc/ingress`` precedes ``tc``). A name matches an entry when it equals
it or continues it with ``/`` (``kprobe/do_unlinkat``, ``xdp/foo``); for entries that take a
target (``+`` in libbpf) what follows the ``/`` is the attach target.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._types import AttachType, ProgramType
from .._uapi import _generated_types as _t

__all__ = ["SectionDef", "match_section"]

SLEEPABLE = 1 << 4       # BPF_F_SLEEPABLE
XDP_HAS_FRAGS = 1 << 5   # BPF_F_XDP_HAS_FRAGS


@dataclass(frozen=True, slots=True)
class SectionDef:
    """One ``SEC()`` convention. ``attach_btf`` marks types whose target is a BTF id
    (tracing, LSM, iterators): the part after ``/`` names it."""

    prefix: str
    prog_type: ProgramType | int
    attach_type: AttachType | int | None
    flags: int = 0
    takes_target: bool = False
    attach_btf: bool = False


def _pt(name: str) -> ProgramType | int:
    value = int(getattr(_t, f"BPF_PROG_TYPE_{name}"))
    try:
        return ProgramType(value)
    except ValueError:
        return value


def _at(name: str | None) -> AttachType | int | None:
    if name is None:
        return None
    member = _t.bpf_attach_type.__members__.get(f"BPF_{name}")
    if member is None:  # newer than the generated header: keep the entry, no attach type
        return None
    try:
        return AttachType(int(member))
    except ValueError:
        return int(member)


# (prefix, program type, attach type, flags, takes a target, target is a BTF id)
_RAW: tuple[tuple[str, str, str | None, int, bool, bool], ...] = (
    ("socket", "SOCKET_FILTER", None, 0, False, False),
    ("sk_reuseport/migrate", "SK_REUSEPORT", "SK_REUSEPORT_SELECT_OR_MIGRATE", 0, False, False),
    ("sk_reuseport", "SK_REUSEPORT", "SK_REUSEPORT_SELECT", 0, False, False),
    ("kprobe.multi", "KPROBE", "TRACE_KPROBE_MULTI", 0, True, False),
    ("kretprobe.multi", "KPROBE", "TRACE_KPROBE_MULTI", 0, True, False),
    ("kprobe.session", "KPROBE", "TRACE_KPROBE_SESSION", 0, True, False),
    ("uprobe.multi.s", "KPROBE", "TRACE_UPROBE_MULTI", SLEEPABLE, True, False),
    ("uretprobe.multi.s", "KPROBE", "TRACE_UPROBE_MULTI", SLEEPABLE, True, False),
    ("uprobe.multi", "KPROBE", "TRACE_UPROBE_MULTI", 0, True, False),
    ("uretprobe.multi", "KPROBE", "TRACE_UPROBE_MULTI", 0, True, False),
    ("uprobe.session", "KPROBE", "TRACE_UPROBE_SESSION", 0, True, False),
    ("kprobe", "KPROBE", None, 0, True, False),
    ("uprobe.s", "KPROBE", None, SLEEPABLE, True, False),
    ("uprobe", "KPROBE", None, 0, True, False),
    ("kretprobe", "KPROBE", None, 0, True, False),
    ("uretprobe.s", "KPROBE", None, SLEEPABLE, True, False),
    ("uretprobe", "KPROBE", None, 0, True, False),
    ("ksyscall", "KPROBE", None, 0, True, False),
    ("kretsyscall", "KPROBE", None, 0, True, False),
    ("usdt.s", "KPROBE", None, SLEEPABLE, True, False),
    ("usdt", "KPROBE", None, 0, True, False),
    ("tc/ingress", "SCHED_CLS", "TCX_INGRESS", 0, False, False),
    ("tc/egress", "SCHED_CLS", "TCX_EGRESS", 0, False, False),
    ("tcx/ingress", "SCHED_CLS", "TCX_INGRESS", 0, False, False),
    ("tcx/egress", "SCHED_CLS", "TCX_EGRESS", 0, False, False),
    ("tc", "SCHED_CLS", None, 0, False, False),
    ("classifier", "SCHED_CLS", None, 0, False, False),
    ("action", "SCHED_ACT", None, 0, False, False),
    ("netkit/primary", "SCHED_CLS", "NETKIT_PRIMARY", 0, False, False),
    ("netkit/peer", "SCHED_CLS", "NETKIT_PEER", 0, False, False),
    ("tracepoint", "TRACEPOINT", None, 0, True, False),
    ("tp_btf", "TRACING", "TRACE_RAW_TP", 0, True, True),
    ("tp", "TRACEPOINT", None, 0, True, False),
    ("raw_tracepoint.w", "RAW_TRACEPOINT_WRITABLE", None, 0, True, False),
    ("raw_tp.w", "RAW_TRACEPOINT_WRITABLE", None, 0, True, False),
    ("raw_tracepoint", "RAW_TRACEPOINT", None, 0, True, False),
    ("raw_tp", "RAW_TRACEPOINT", None, 0, True, False),
    ("fentry.s", "TRACING", "TRACE_FENTRY", SLEEPABLE, True, True),
    ("fmod_ret.s", "TRACING", "MODIFY_RETURN", SLEEPABLE, True, True),
    ("fexit.s", "TRACING", "TRACE_FEXIT", SLEEPABLE, True, True),
    ("fentry", "TRACING", "TRACE_FENTRY", 0, True, True),
    ("fmod_ret", "TRACING", "MODIFY_RETURN", 0, True, True),
    ("fexit", "TRACING", "TRACE_FEXIT", 0, True, True),
    ("freplace", "EXT", None, 0, True, False),
    ("lsm.s", "LSM", "LSM_MAC", SLEEPABLE, True, True),
    ("lsm_cgroup", "LSM", "LSM_CGROUP", 0, True, True),
    ("lsm", "LSM", "LSM_MAC", 0, True, True),
    ("iter.s", "TRACING", "TRACE_ITER", SLEEPABLE, True, True),
    ("iter", "TRACING", "TRACE_ITER", 0, True, True),
    ("syscall", "SYSCALL", None, SLEEPABLE, False, False),
    ("xdp.frags/devmap", "XDP", "XDP_DEVMAP", XDP_HAS_FRAGS, False, False),
    ("xdp/devmap", "XDP", "XDP_DEVMAP", 0, False, False),
    ("xdp.frags/cpumap", "XDP", "XDP_CPUMAP", XDP_HAS_FRAGS, False, False),
    ("xdp/cpumap", "XDP", "XDP_CPUMAP", 0, False, False),
    ("xdp.frags", "XDP", "XDP", XDP_HAS_FRAGS, False, False),
    ("xdp", "XDP", "XDP", 0, False, False),
    ("perf_event", "PERF_EVENT", None, 0, False, False),
    ("lwt_in", "LWT_IN", None, 0, False, False),
    ("lwt_out", "LWT_OUT", None, 0, False, False),
    ("lwt_xmit", "LWT_XMIT", None, 0, False, False),
    ("lwt_seg6local", "LWT_SEG6LOCAL", None, 0, False, False),
    ("sockops", "SOCK_OPS", "CGROUP_SOCK_OPS", 0, False, False),
    ("sk_skb/stream_parser", "SK_SKB", "SK_SKB_STREAM_PARSER", 0, False, False),
    ("sk_skb/stream_verdict", "SK_SKB", "SK_SKB_STREAM_VERDICT", 0, False, False),
    ("sk_skb/verdict", "SK_SKB", "SK_SKB_VERDICT", 0, False, False),
    ("sk_skb", "SK_SKB", None, 0, False, False),
    ("sk_msg", "SK_MSG", "SK_MSG_VERDICT", 0, False, False),
    ("lirc_mode2", "LIRC_MODE2", "LIRC_MODE2", 0, False, False),
    ("flow_dissector", "FLOW_DISSECTOR", "FLOW_DISSECTOR", 0, False, False),
    ("cgroup_skb/ingress", "CGROUP_SKB", "CGROUP_INET_INGRESS", 0, False, False),
    ("cgroup_skb/egress", "CGROUP_SKB", "CGROUP_INET_EGRESS", 0, False, False),
    ("cgroup/skb", "CGROUP_SKB", None, 0, False, False),
    ("cgroup/sock_create", "CGROUP_SOCK", "CGROUP_INET_SOCK_CREATE", 0, False, False),
    ("cgroup/sock_release", "CGROUP_SOCK", "CGROUP_INET_SOCK_RELEASE", 0, False, False),
    ("cgroup/sock", "CGROUP_SOCK", "CGROUP_INET_SOCK_CREATE", 0, False, False),
    ("cgroup/post_bind4", "CGROUP_SOCK", "CGROUP_INET4_POST_BIND", 0, False, False),
    ("cgroup/post_bind6", "CGROUP_SOCK", "CGROUP_INET6_POST_BIND", 0, False, False),
    ("cgroup/bind4", "CGROUP_SOCK_ADDR", "CGROUP_INET4_BIND", 0, False, False),
    ("cgroup/bind6", "CGROUP_SOCK_ADDR", "CGROUP_INET6_BIND", 0, False, False),
    ("cgroup/connect4", "CGROUP_SOCK_ADDR", "CGROUP_INET4_CONNECT", 0, False, False),
    ("cgroup/connect6", "CGROUP_SOCK_ADDR", "CGROUP_INET6_CONNECT", 0, False, False),
    ("cgroup/connect_unix", "CGROUP_SOCK_ADDR", "CGROUP_UNIX_CONNECT", 0, False, False),
    ("cgroup/sendmsg4", "CGROUP_SOCK_ADDR", "CGROUP_UDP4_SENDMSG", 0, False, False),
    ("cgroup/sendmsg6", "CGROUP_SOCK_ADDR", "CGROUP_UDP6_SENDMSG", 0, False, False),
    ("cgroup/sendmsg_unix", "CGROUP_SOCK_ADDR", "CGROUP_UNIX_SENDMSG", 0, False, False),
    ("cgroup/recvmsg4", "CGROUP_SOCK_ADDR", "CGROUP_UDP4_RECVMSG", 0, False, False),
    ("cgroup/recvmsg6", "CGROUP_SOCK_ADDR", "CGROUP_UDP6_RECVMSG", 0, False, False),
    ("cgroup/recvmsg_unix", "CGROUP_SOCK_ADDR", "CGROUP_UNIX_RECVMSG", 0, False, False),
    ("cgroup/getpeername4", "CGROUP_SOCK_ADDR", "CGROUP_INET4_GETPEERNAME", 0, False, False),
    ("cgroup/getpeername6", "CGROUP_SOCK_ADDR", "CGROUP_INET6_GETPEERNAME", 0, False, False),
    ("cgroup/getpeername_unix", "CGROUP_SOCK_ADDR", "CGROUP_UNIX_GETPEERNAME", 0, False,
     False),
    ("cgroup/getsockname4", "CGROUP_SOCK_ADDR", "CGROUP_INET4_GETSOCKNAME", 0, False, False),
    ("cgroup/getsockname6", "CGROUP_SOCK_ADDR", "CGROUP_INET6_GETSOCKNAME", 0, False, False),
    ("cgroup/getsockname_unix", "CGROUP_SOCK_ADDR", "CGROUP_UNIX_GETSOCKNAME", 0, False,
     False),
    ("cgroup/sysctl", "CGROUP_SYSCTL", "CGROUP_SYSCTL", 0, False, False),
    ("cgroup/getsockopt", "CGROUP_SOCKOPT", "CGROUP_GETSOCKOPT", 0, False, False),
    ("cgroup/setsockopt", "CGROUP_SOCKOPT", "CGROUP_SETSOCKOPT", 0, False, False),
    ("cgroup/dev", "CGROUP_DEVICE", "CGROUP_DEVICE", 0, False, False),
    ("struct_ops.s", "STRUCT_OPS", None, SLEEPABLE, True, False),
    ("struct_ops", "STRUCT_OPS", None, 0, True, False),
    ("sk_lookup", "SK_LOOKUP", "SK_LOOKUP", 0, False, False),
    ("netfilter", "NETFILTER", "NETFILTER", 0, False, False),
)

SECTION_DEFS: tuple[SectionDef, ...] = tuple(
    SectionDef(p, _pt(t), _at(a), f, tgt, btf) for p, t, a, f, tgt, btf in _RAW)


#: prefix -> index of the first entry with it (entries are tried in table order).
_FIRST_WITH_PREFIX: dict[str, int] = {}
for _i, _d in enumerate(SECTION_DEFS):
    _FIRST_WITH_PREFIX.setdefault(_d.prefix, _i)


def match_section(name: str) -> tuple[SectionDef, str | None] | None:
    """The convention for section ``name`` and its attach target (the text after the
    entry's ``/``, or ``None``); ``None`` when no entry matches.

    The first entry in table order whose prefix is ``name`` or is followed in ``name`` by a
    ``/`` wins: the candidates are ``name`` and its parts before each ``/``, looked up in a
    dict rather than tried entry by entry."""
    first = _FIRST_WITH_PREFIX
    best = first.get(name, -1)
    exact = best
    slash = name.find("/")
    while slash >= 0:
        i = first.get(name[:slash], -1)
        if i >= 0 and (best < 0 or i < best):
            best = i
        slash = name.find("/", slash + 1)
    if best < 0:
        return None
    d = SECTION_DEFS[best]
    if best == exact:
        return d, None
    rest = name[len(d.prefix) + 1:]
    return d, (rest or None) if d.takes_target else None
