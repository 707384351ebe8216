"""Write BPF programs as Python functions: a restricted-Python to BPF compiler, no LLVM.

::

    from ebpf import bpf
    from ebpf.bpf import u64

    counts = bpf.Array(u64, max_entries=4)

    @bpf.xdp
    def count(ctx: bpf.XDP) -> int:
        counts[ctx.rx_queue_index & 3] += 1
        return bpf.XDP_PASS

    with bpf.load(count) as coll:
        coll.count.test_run(bytes(64))

The language subset, its fixed-width integer semantics and the compiler's structure are in
``docs/python-frontend.md``. Anything outside the subset raises :class:`CompileError` naming
the Python file and line.
"""

from __future__ import annotations

from typing import Any

from . import net as net
from ._compiler import CompiledProgram as CompiledProgram
from ._compiler import CompileError as CompileError
from ._compiler import _helper_marker, helper_namespace
from ._decl import XDP as XDP
from ._decl import Array as Array
from ._decl import CgroupStorage as CgroupStorage
from ._decl import Const as Const
from ._decl import FuncDecl as FuncDecl
from ._decl import Hash as Hash
from ._decl import InodeStorage as InodeStorage
from ._decl import LPMTrie as LPMTrie
from ._decl import LRUHash as LRUHash
from ._decl import LRUPerCPUHash as LRUPerCPUHash
from ._decl import MapDecl as MapDecl
from ._decl import PerCPUArray as PerCPUArray
from ._decl import PerCPUHash as PerCPUHash
from ._decl import PerfEventArray as PerfEventArray
from ._decl import ProgArray as ProgArray
from ._decl import ProgramDecl as ProgramDecl
from ._decl import Queue as Queue
from ._decl import RingBuf as RingBuf
from ._decl import SkStorage as SkStorage
from ._decl import SocketFilter as SocketFilter
from ._decl import Stack as Stack
from ._decl import TaskStorage as TaskStorage
from ._decl import TracepointContext as TracepointContext
from ._decl import Var as Var
from ._decl import array as array
from ._decl import cgroup_skb as cgroup_skb
from ._decl import const as const
from ._decl import func as func
from ._decl import raw_tracepoint as raw_tracepoint
from ._decl import socket_filter as socket_filter
from ._decl import tc as tc
from ._decl import tracepoint as tracepoint
from ._decl import var as var
from ._decl import xdp as xdp
from ._kfunc import kfunc as kfunc
from ._kinds import cgroup_sock_addr as cgroup_sock_addr
from ._kinds import cgroup_sockopt as cgroup_sockopt
from ._kinds import iter as iter
from ._kinds import perf_event as perf_event
from ._kinds import seq_printf as seq_printf
from ._kinds import seq_write as seq_write
from ._kinds import session_cookie as session_cookie
from ._kinds import uprobe as uprobe
from ._kinds import uprobe_multi as uprobe_multi
from ._kinds import uprobe_session as uprobe_session
from ._kinds import uretprobe as uretprobe
from ._kinds import usdt as usdt
from ._kstruct import core_read as core_read
from ._kstruct import get_current_task as get_current_task
from ._kstruct import get_current_task_btf as get_current_task_btf
from ._kstruct import kernel as kernel
from ._load import Loaded as Loaded
from ._load import PerfView as PerfView
from ._load import RingView as RingView
from ._load import build_spec as build_spec
from ._load import load as load
from ._loop import loop as loop
from ._struct_ops import struct_ops as struct_ops
from ._tracing import fentry as fentry
from ._tracing import fexit as fexit
from ._tracing import fmod_ret as fmod_ret
from ._tracing import kprobe as kprobe
from ._tracing import kretprobe as kretprobe
from ._tracing import lsm as lsm
from ._tracing import lsm_cgroup as lsm_cgroup
from ._tracing import tp_btf as tp_btf
from .types import Struct as Struct
from .types import be16 as be16
from .types import be32 as be32
from .types import bytes_ as bytes_
from .types import emulate as emulate
from .types import i8 as i8
from .types import i16 as i16
from .types import i32 as i32
from .types import i64 as i64
from .types import u8 as u8
from .types import u16 as u16
from .types import u32 as u32
from .types import u64 as u64

__all__ = [
    "TC_ACT_OK",
    "TC_ACT_SHOT",
    "XDP",
    "XDP_ABORTED",
    "XDP_DROP",
    "XDP_PASS",
    "XDP_REDIRECT",
    "XDP_TX",
    "Array",
    "CgroupStorage",
    "CompileError",
    "CompiledProgram",
    "Const",
    "FuncDecl",
    "Hash",
    "InodeStorage",
    "LPMTrie",
    "LRUHash",
    "LRUPerCPUHash",
    "Loaded",
    "MapDecl",
    "PerCPUArray",
    "PerCPUHash",
    "PerfEventArray",
    "PerfView",
    "ProgArray",
    "ProgramDecl",
    "Queue",
    "RingBuf",
    "RingView",
    "SkStorage",
    "SocketFilter",
    "Stack",
    "Struct",
    "TaskStorage",
    "TracepointContext",
    "Var",
    "array",
    "be16",
    "be32",
    "build_spec",
    "bytes_",
    "cgroup_skb",
    "cgroup_sock_addr",
    "cgroup_sockopt",
    "const",
    "copy_from_user",
    "core_read",
    "emulate",
    "fentry",
    "fexit",
    "fmod_ret",
    "func",
    "get_current_comm",
    "get_current_pid_tgid",
    "get_current_task",
    "get_current_task_btf",
    "get_current_uid_gid",
    "get_prandom_u32",
    "get_smp_processor_id",
    "helper",
    "i8",
    "i16",
    "i32",
    "i64",
    "iter",
    "kernel",
    "kfunc",
    "kprobe",
    "kretprobe",
    "ktime_get_boot_ns",
    "ktime_get_ns",
    "load",
    "loop",
    "lsm",
    "lsm_cgroup",
    "net",
    "perf_event",
    "probe_read_kernel",
    "probe_read_kernel_str",
    "probe_read_user",
    "probe_read_user_str",
    "raw_tracepoint",
    "seq_printf",
    "seq_write",
    "session_cookie",
    "socket_filter",
    "struct_ops",
    "tc",
    "tp_btf",
    "trace_printk",
    "tracepoint",
    "u8",
    "u16",
    "u32",
    "u64",
    "uprobe",
    "uprobe_multi",
    "uprobe_session",
    "uretprobe",
    "usdt",
    "var",
    "xdp",
]

XDP_ABORTED = 0
XDP_DROP = 1
XDP_PASS = 2
XDP_TX = 3
XDP_REDIRECT = 4
TC_ACT_OK = 0
TC_ACT_SHOT = 2

#: Every BPF helper as a typed function: ``bpf.helper.get_numa_node_id()``. Prototypes come
#: from ``ebpf.asm.Helper(...).signature``; integer-only helpers are supported for now.
helper: Any = helper_namespace()

#: ``u64``: ``tgid << 32 | pid`` of the current task.
get_current_pid_tgid: Any = _helper_marker("get_current_pid_tgid")
#: ``u64``: ``gid << 32 | uid`` of the current task.
get_current_uid_gid: Any = _helper_marker("get_current_uid_gid")
#: ``u64``: CLOCK_MONOTONIC in ns.
ktime_get_ns: Any = _helper_marker("ktime_get_ns")
#: ``u64``: CLOCK_BOOTTIME in ns (Linux 5.8).
ktime_get_boot_ns: Any = _helper_marker("ktime_get_boot_ns")
#: ``u32``: the CPU running the program.
get_smp_processor_id: Any = _helper_marker("get_smp_processor_id")
#: ``u32``: a pseudo-random number.
get_prandom_u32: Any = _helper_marker("get_prandom_u32")
#: The current task's ``comm``; only as ``record.field = bpf.get_current_comm()`` where the
#: field is a ``bytes_[N]``.
get_current_comm: Any = _helper_marker("get_current_comm")
#: ``trace_printk("fmt %d", x)``: up to 3 integers to the trace pipe (debugging only).
trace_printk: Any = _helper_marker("trace_printk")
#: Copy memory into a ``bytes_[N]`` field: ``n = bpf.probe_read_user_str(e.fname, addr)``
#: (the result is the length with the NUL, or -errno) or ``e.fname =
#: bpf.probe_read_user_str(addr)``. ``_user`` reads user memory (a syscall's pointer
#: argument), ``_kernel`` kernel memory; ``_str`` stops after the NUL (5.5+).
probe_read_user: Any = _helper_marker("probe_read_user")
#: A NUL-terminated string from user memory into a ``bytes_[N]`` field (at most N bytes with
#: the NUL): ``n = bpf.probe_read_user_str(e.fname, ctx.filename)``.
probe_read_user_str: Any = _helper_marker("probe_read_user_str")
#: N bytes of kernel memory at an address into a ``bytes_[N]`` field.
probe_read_kernel: Any = _helper_marker("probe_read_kernel")
#: A NUL-terminated string from kernel memory into a ``bytes_[N]`` field.
probe_read_kernel_str: Any = _helper_marker("probe_read_kernel_str")
#: N bytes of user memory into a ``bytes_[N]`` field, faulting pages in: only in sleepable
#: programs (``@bpf.uprobe(..., sleepable=True)``; Linux 5.10, uprobes 6.0).
copy_from_user: Any = _helper_marker("copy_from_user")
