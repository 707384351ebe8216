"""Raw tracepoints: ``BPF_PROG_TYPE_RAW_TRACEPOINT`` programs on a kernel tracepoint.

A raw tracepoint program gets the tracepoint's arguments unconverted: ``ctx`` points to an
array of u64, one per argument of the ``TP_PROTO`` (for ``sys_enter``: ``struct pt_regs *``
and ``long id``). It is cheaper than a tracepoint program, whose record is filled first.
The typed, BTF-enabled variant (``tp_btf``) is a ``BPF_PROG_TYPE_TRACING`` program, attached
with :func:`ebpf.link.attach_tracing`; it makes the same kind of link.

Example::

    prog = ebpf.Program.load(ebpf.ProgramType.RAW_TRACEPOINT, insns)
    with attach_raw_tracepoint(prog, "sys_enter"):
        ...
"""

from __future__ import annotations

import ctypes
import difflib
import errno as _errno
from typing import final

from .. import errors
from .._elfsym import SymbolNotFoundError
from .._programs import Program
from .._sys.fd import FD
from .._sys.syscall import bpf_fd
from .._types import LinkType, ProgramType
from .._uapi import _generated_types as _t
from .base import Link
from .perf_event import check_program

__all__ = ["RawTracepointLink", "attach_raw_tracepoint", "raw_tracepoint_open"]


@final
class RawTracepointLink(Link):
    """A program on a raw tracepoint: ``raw_tp``, ``raw_tp.w`` and ``tp_btf`` programs.

    Kernel: ``BPF_LINK_TYPE_RAW_TRACEPOINT`` >= 5.8 (``BPF_RAW_TRACEPOINT_OPEN`` itself is
    4.17; before 5.8 the fd is not a bpf_link and cannot be pinned). The kernel cannot swap
    the program of this link: :meth:`update` raises :class:`~ebpf.errors.NotSupportedError`.
    """

    link_type = LinkType.RAW_TRACEPOINT

    def tracepoint_name(self) -> str:
        """The tracepoint this link is on, as the kernel reports it."""
        from .._sys import commands

        buf = ctypes.create_string_buffer(256)
        info = _t.BpfLinkInfo()
        info.raw_tracepoint.tp_name = ctypes.addressof(buf)
        info.raw_tracepoint.tp_name_len = len(buf)
        commands.obj_info(self.fileno(), info)
        return buf.value.decode("utf-8", "replace")

    def __enter__(self) -> RawTracepointLink:
        return self


def raw_tracepoint_open(program: Program, name: str | None, *, cookie: int = 0) -> FD:
    """``BPF_RAW_TRACEPOINT_OPEN``: the link fd of ``program`` on tracepoint ``name``.

    ``name=None`` attaches a BTF-typed program (``tp_btf``, fentry, fexit, LSM, freplace) to
    the target it was loaded for. ``cookie`` needs kernel >= 6.10.
    """
    attr = _t.RawTracepointOpenAttr()
    attr.prog_fd = program.fileno()
    buf = None
    if name is not None:
        raw = name.encode() + b"\0"
        buf = ctypes.create_string_buffer(raw, len(raw))
        attr.name = ctypes.addressof(buf)
    attr.cookie = cookie
    return bpf_fd(_t.bpf_cmd.BPF_RAW_TRACEPOINT_OPEN, attr, keep=buf, what="raw tracepoint link")


def _suggest(name: str) -> list[str]:
    """Tracepoint names close to ``name`` from kernel BTF (``btf_trace_<name>`` typedefs)."""
    try:
        from .. import btf

        spec = btf.load_kernel()
        names = [t.name[len("btf_trace_"):] for t in spec.types(btf.Typedef)
                 if t.name.startswith("btf_trace_")]
    except Exception:  # no kernel BTF: no suggestions
        return []
    return difflib.get_close_matches(name, names, n=3)


def attach_raw_tracepoint(program: Program, name: str, *, cookie: int = 0) -> RawTracepointLink:
    """Run ``program`` on every hit of kernel tracepoint ``name`` (e.g. ``"sys_enter"``).

    ``program`` is a ``RAW_TRACEPOINT`` (>= 4.17) or ``RAW_TRACEPOINT_WRITABLE`` (>= 5.2)
    program. The name is the tracepoint's own (``sched_switch``), without a category.
    ``cookie`` (``bpf_get_attach_cookie``) needs kernel >= 6.10.

    Raises :class:`ValueError` for a program of another type (``tp_btf`` programs go to
    :func:`ebpf.link.attach_tracing`) and :class:`~ebpf._elfsym.SymbolNotFoundError` (a
    :class:`LookupError`) when the kernel has no such tracepoint.
    """
    check_program(program, (ProgramType.RAW_TRACEPOINT, ProgramType.RAW_TRACEPOINT_WRITABLE),
                  what="attach_raw_tracepoint")
    if not isinstance(name, str) or not name or "\0" in name or "/" in name:
        raise ValueError(f"attach_raw_tracepoint: invalid tracepoint name {name!r} "
                         "(a bare name such as 'sys_enter')")
    if cookie < 0:
        raise ValueError("attach_raw_tracepoint: cookie must be a u64")
    try:
        fd = raw_tracepoint_open(program, name, cookie=cookie)
    except errors.SyscallError as e:
        if e.errno == _errno.ENOENT:
            raise SymbolNotFoundError(name, "the kernel's tracepoints", _suggest(name),
                                      kind="raw tracepoint") from e
        raise
    return RawTracepointLink(fd, program)

