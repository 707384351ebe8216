"""Attaching programs to kernel hooks: one ``attach_*`` function and one class per hook.

Every attachment is a context manager with ``detach()``/``close()``; bpf_link based ones are
also pinnable (:class:`Link`), and :meth:`Link.from_pin`/:meth:`Link.from_id` return the class of
the kernel's link type (every hook module is imported here so that they are all registered).
Each function documents its minimum kernel and its fallback.

Network hooks: :func:`attach_xdp`, :func:`attach_tc`, :func:`attach_cgroup`,
:func:`attach_socket_filter`, :func:`attach_sockmap`, :func:`attach_sk_lookup`,
:func:`attach_flow_dissector`, :func:`attach_netfilter`, :func:`attach_struct_ops`.
Tracing hooks: :func:`attach_tracepoint`, :func:`attach_raw_tracepoint`, :func:`attach_tracing`
(fentry/fexit/fmod_ret/LSM/tp_btf/freplace), :func:`attach_kprobe`, :func:`attach_uprobe`,
:func:`attach_usdt`, :func:`attach_perf_event`, :func:`attach_iter`.
"""

from __future__ import annotations

from ..errors import SymbolNotFoundError as SymbolNotFoundError
from .base import Attachment as Attachment
from .base import Link as Link
from .base import LinkInfo as LinkInfo
from .base import ProgQuery as ProgQuery
from .base import link_create as link_create
from .base import prog_query as prog_query
from .cgroup import CgroupAttachment as CgroupAttachment
from .cgroup import CgroupLink as CgroupLink
from .cgroup import CgroupMode as CgroupMode
from .cgroup import attach_cgroup as attach_cgroup
from .cgroup import query_cgroup as query_cgroup
from .iter import CgroupIterOrder as CgroupIterOrder
from .iter import IterLink as IterLink
from .iter import attach_iter as attach_iter
from .kprobe import KprobeMultiInfo as KprobeMultiInfo
from .kprobe import KprobeMultiLink as KprobeMultiLink
from .kprobe import attach_kprobe as attach_kprobe
from .kprobe import attach_kprobe_multi as attach_kprobe_multi
from .netfilter import NetfilterLink as NetfilterLink
from .netfilter import NFHook as NFHook
from .netfilter import NFProto as NFProto
from .netfilter import attach_netfilter as attach_netfilter
from .netns import FlowDissectorAttachment as FlowDissectorAttachment
from .netns import NetNSLink as NetNSLink
from .netns import attach_flow_dissector as attach_flow_dissector
from .netns import attach_sk_lookup as attach_sk_lookup
from .netns import query_netns as query_netns
from .perf_event import HardwareEvent as HardwareEvent
from .perf_event import PerfEventKind as PerfEventKind
from .perf_event import PerfEventLink as PerfEventLink
from .perf_event import PerfEventLinkInfo as PerfEventLinkInfo
from .perf_event import PerfEventLinks as PerfEventLinks
from .perf_event import SoftwareEvent as SoftwareEvent
from .perf_event import attach_perf_event as attach_perf_event
from .perf_event import pt_regs_arg_offset as pt_regs_arg_offset
from .perf_event import pt_regs_offset as pt_regs_offset
from .perf_event import pt_regs_return_offset as pt_regs_return_offset
from .raw_tracepoint import RawTracepointLink as RawTracepointLink
from .raw_tracepoint import attach_raw_tracepoint as attach_raw_tracepoint
from .socket import ReuseportAttachment as ReuseportAttachment
from .socket import SocketFilter as SocketFilter
from .socket import SockmapAttachment as SockmapAttachment
from .socket import SockmapLink as SockmapLink
from .socket import attach_reuseport as attach_reuseport
from .socket import attach_socket_filter as attach_socket_filter
from .socket import attach_sockmap as attach_sockmap
from .struct_ops import StructOps as StructOps
from .struct_ops import StructOpsAttachment as StructOpsAttachment
from .struct_ops import StructOpsLink as StructOpsLink
from .struct_ops import StructOpsType as StructOpsType
from .struct_ops import attach_struct_ops as attach_struct_ops
from .struct_ops import load_struct_ops_program as load_struct_ops_program
from .tc import TCAttachment as TCAttachment
from .tc import TCXLink as TCXLink
from .tc import attach_tc as attach_tc
from .tc import delete_tc_filter as delete_tc_filter
from .tc import query_tcx as query_tcx
from .tc import tc_filters as tc_filters
from .tracepoint import TracepointField as TracepointField
from .tracepoint import TracepointFormat as TracepointFormat
from .tracepoint import attach_tracepoint as attach_tracepoint
from .tracepoint import tracepoint_format as tracepoint_format
from .tracepoint import tracepoint_id as tracepoint_id
from .tracing import TracingLink as TracingLink
from .tracing import TracingTarget as TracingTarget
from .tracing import attach_tracing as attach_tracing
from .uprobe import UprobeMultiInfo as UprobeMultiInfo
from .uprobe import UprobeMultiLink as UprobeMultiLink
from .uprobe import attach_uprobe as attach_uprobe
from .uprobe import attach_uprobe_multi as attach_uprobe_multi
from .uprobe import attach_usdt as attach_usdt
from .uprobe import resolve_binary as resolve_binary
from .uprobe import usdt_argument as usdt_argument
from .uprobe import usdt_probes as usdt_probes
from .xdp import XDPAttachment as XDPAttachment
from .xdp import XDPLink as XDPLink
from .xdp import attach_xdp as attach_xdp

__all__ = [
    "Attachment",
    "CgroupAttachment",
    "CgroupIterOrder",
    "CgroupLink",
    "CgroupMode",
    "FlowDissectorAttachment",
    "HardwareEvent",
    "IterLink",
    "KprobeMultiInfo",
    "KprobeMultiLink",
    "Link",
    "LinkInfo",
    "NFHook",
    "NFProto",
    "NetNSLink",
    "NetfilterLink",
    "PerfEventKind",
    "PerfEventLink",
    "PerfEventLinkInfo",
    "PerfEventLinks",
    "ProgQuery",
    "RawTracepointLink",
    "ReuseportAttachment",
    "SocketFilter",
    "SockmapAttachment",
    "SockmapLink",
    "SoftwareEvent",
    "StructOps",
    "StructOpsAttachment",
    "StructOpsLink",
    "StructOpsType",
    "SymbolNotFoundError",
    "TCAttachment",
    "TCXLink",
    "TracepointField",
    "TracepointFormat",
    "TracingLink",
    "TracingTarget",
    "UprobeMultiInfo",
    "UprobeMultiLink",
    "XDPAttachment",
    "XDPLink",
    "attach_cgroup",
    "attach_flow_dissector",
    "attach_iter",
    "attach_kprobe",
    "attach_kprobe_multi",
    "attach_netfilter",
    "attach_perf_event",
    "attach_raw_tracepoint",
    "attach_reuseport",
    "attach_sk_lookup",
    "attach_socket_filter",
    "attach_sockmap",
    "attach_struct_ops",
    "attach_tc",
    "attach_tracepoint",
    "attach_tracing",
    "attach_uprobe",
    "attach_uprobe_multi",
    "attach_usdt",
    "attach_xdp",
    "delete_tc_filter",
    "link_create",
    "load_struct_ops_program",
    "prog_query",
    "pt_regs_arg_offset",
    "pt_regs_offset",
    "pt_regs_return_offset",
    "query_cgroup",
    "query_netns",
    "query_tcx",
    "resolve_binary",
    "tc_filters",
    "tracepoint_format",
    "tracepoint_id",
    "usdt_argument",
    "usdt_probes",
]
