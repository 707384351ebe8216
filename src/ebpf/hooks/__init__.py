"""Per-program-type builders: context access generated from the kernel's BTF, prologues,
return codes.

Each module covers one hook: ``xdp.data(R2)`` loads ``xdp_md->data`` with the offset and
size the kernel's ``struct xdp_md`` has, ``skb.field(R3, "mark")`` reads ``__sk_buff.mark``,
``tc.Action.SHOT`` is a verdict. Offsets come from the generated ABI layer (``ebpf._uapi``,
itself generated from vmlinux BTF), from the kernel's BTF (:mod:`kernel_types`), or from
tracefs for tracepoints; none is hand-typed.

============================ =============================================================
module                       program types
============================ =============================================================
:mod:`.xdp`                  ``XDP``
:mod:`.tc`, :mod:`.skb`      ``SCHED_CLS``/``SCHED_ACT`` (tcx), any ``__sk_buff`` program
:mod:`.socket`               ``SOCKET_FILTER``, ``SK_SKB``, ``SK_MSG``
:mod:`.cgroup`               ``CGROUP_SKB``/``SOCK``/``SOCK_ADDR``/``SYSCTL``/``SOCKOPT``/
                             ``DEVICE``, ``SOCK_OPS``
:mod:`.sk_lookup`            ``SK_LOOKUP``
:mod:`.flow_dissector`       ``FLOW_DISSECTOR``
:mod:`.tracepoint`           ``TRACEPOINT`` (fields from tracefs)
:mod:`.raw_tracepoint`       ``RAW_TRACEPOINT``
:mod:`.kprobe`               ``KPROBE`` (kprobes, uprobes: ``pt_regs``)
:mod:`.perf_event`           ``PERF_EVENT``
:mod:`.tracing`              ``TRACING`` (fentry/fexit/fmod_ret, tp_btf), ``LSM``,
                             ``STRUCT_OPS``
:mod:`.iter`                 iterators
:mod:`.kernel_types`         members of kernel structs behind BTF pointers
============================ =============================================================

Every module has ``ret(value)`` (set R0 and exit) and ``save_ctx``.
"""

from __future__ import annotations

from . import (
    cgroup,
    flow_dissector,
    iter,
    kernel_types,
    kprobe,
    perf_event,
    raw_tracepoint,
    sk_lookup,
    skb,
    socket,
    tc,
    tracepoint,
    tracing,
    xdp,
)
from ._context import Context, ContextField

__all__ = [
    "Context",
    "ContextField",
    "cgroup",
    "flow_dissector",
    "iter",
    "kernel_types",
    "kprobe",
    "perf_event",
    "raw_tracepoint",
    "sk_lookup",
    "skb",
    "socket",
    "tc",
    "tracepoint",
    "tracing",
    "xdp",
]
