"""BTF-typed tracing: fentry, fexit, fmod_ret, tp_btf, LSM and freplace programs.

These programs name their target at load time (``Program.load(..., attach_to="name")``
resolves it in kernel BTF); attaching needs nothing more::

    prog = ebpf.Program.load(ebpf.ProgramType.TRACING, insns,
                             expected_attach_type=ebpf.AttachType.TRACE_RAW_TP,
                             attach_to="sys_enter")            # tp_btf/sys_enter
    with attach_tracing(prog):
        ...

fentry/fexit/fmod_ret/LSM make a :class:`TracingLink`. A ``tp_btf`` program makes a
:class:`~ebpf.link.raw_tracepoint.RawTracepointLink`, as the kernel reports it.

Kernel: fentry/fexit >= 5.5, fmod_ret and freplace >= 5.6, LSM >= 5.7 (with ``bpf`` in the
active LSMs), tp_btf >= 5.5. The link is made with ``BPF_LINK_CREATE`` (>= 5.13 for these
types; needed for ``cookie``, >= 5.19) and falls back quietly to
``BPF_RAW_TRACEPOINT_OPEN`` with no name (>= 5.5) on kernels that refuse it.
"""

from __future__ import annotations

import errno as _errno
from dataclasses import dataclass
from typing import final

from .. import errors
from .._programs import Program
from .._sys import commands
from .._sys.fd import FD
from .._types import AttachType, LinkType, ProgramType
from .._uapi import _generated_types as _t
from .base import Link, link_create
from .perf_event import check_program
from .raw_tracepoint import RawTracepointLink, raw_tracepoint_open

__all__ = ["TracingLink", "TracingTarget", "attach_tracing"]

#: Expected attach types a TRACING program can be attached with here.
_TRACING_TYPES = (AttachType.TRACE_FENTRY, AttachType.TRACE_FEXIT, AttachType.MODIFY_RETURN,
                  AttachType.TRACE_RAW_TP)


@dataclass(frozen=True, slots=True)
class TracingTarget:
    """What a tracing link is attached to (``bpf_link_info.tracing``).

    ``target_obj_id`` is the id of the BTF object (vmlinux, a module) or, for freplace and
    fentry on BPF programs, of the target program; ``target_btf_id`` the function's BTF id.
    """

    attach_type: AttachType | int
    target_obj_id: int
    target_btf_id: int
    cookie: int


@final
class TracingLink(Link):
    """An fentry, fexit, fmod_ret, LSM or freplace program attached to its target.

    Kernel: ``BPF_LINK_TYPE_TRACING`` >= 5.8 (before that, the fd from
    ``BPF_RAW_TRACEPOINT_OPEN`` is not pinnable). The program of a tracing link cannot be
    replaced: :meth:`update` raises :class:`~ebpf.errors.NotSupportedError`.
    """

    link_type = LinkType.TRACING

    def target(self) -> TracingTarget:
        """The attach type and target ids, as the kernel reports them."""
        info = commands.obj_info(self.fileno(), _t.BpfLinkInfo()).tracing
        try:
            at: AttachType | int = AttachType(info.attach_type)
        except ValueError:
            at = info.attach_type
        return TracingTarget(at, info.target_obj_id, info.target_btf_id, info.cookie)

    def __enter__(self) -> TracingLink:
        return self


def _check(program: Program, target: Program | None, target_btf_id: int,
           cookie: int) -> AttachType | None:
    """Validate inputs; returns the attach type to pass to ``BPF_LINK_CREATE`` (``None``
    when the program was adopted from an fd and only the kernel knows it)."""
    check_program(program, (ProgramType.TRACING, ProgramType.LSM, ProgramType.EXT),
                  what="attach_tracing")
    if cookie < 0:
        raise ValueError("attach_tracing: cookie must be a u64")
    if (target is None) != (not target_btf_id):
        raise ValueError("attach_tracing: give both target and target_btf_id, or neither")
    eat = program.expected_attach_type
    if program.type == ProgramType.EXT:
        return AttachType(0)  # freplace: the kernel ignores the attach type
    if target is not None:
        raise ValueError("attach_tracing: only freplace (EXT) programs take a new target")
    if eat is None:
        if program._insns is None:
            return None  # adopted program: RAW_TRACEPOINT_OPEN works for every kind
        expected = "TRACE_FENTRY, TRACE_FEXIT, MODIFY_RETURN or TRACE_RAW_TP"
        if program.type == ProgramType.LSM:
            expected = "LSM_MAC"
        raise ValueError(f"attach_tracing: the program was loaded without "
                         f"expected_attach_type; expected {expected}")
    at = AttachType(eat)
    if program.type == ProgramType.LSM:
        if at == AttachType.LSM_CGROUP:
            raise ValueError("attach_tracing: LSM_CGROUP programs attach to a cgroup "
                             "(use the cgroup attach function)")
        if at != AttachType.LSM_MAC:
            raise ValueError(f"attach_tracing: LSM program has expected_attach_type "
                             f"{at.name}, expected LSM_MAC")
        return at
    if at == AttachType.TRACE_ITER:
        raise ValueError("attach_tracing: iterator programs attach with attach_iter")
    if at not in _TRACING_TYPES:
        raise ValueError(f"attach_tracing: TRACING program has expected_attach_type {at.name}, "
                         f"expected {', '.join(a.name for a in _TRACING_TYPES)}")
    return at


def attach_tracing(program: Program, *, cookie: int = 0, target: Program | None = None,
                   target_btf_id: int = 0) -> TracingLink | RawTracepointLink:
    """Attach a BTF-typed tracing program to the target it was loaded for.

    ``program`` is a ``TRACING`` program (fentry, fexit, fmod_ret, tp_btf), an ``LSM``
    program (``LSM_MAC``) or an ``EXT`` (freplace) program. ``cookie`` is what
    ``bpf_get_attach_cookie`` returns (>= 5.19). For freplace, ``target`` and
    ``target_btf_id`` (the BTF id of a function of ``target``'s BTF) re-target the program
    to another program than the one given as ``attach_prog_fd`` at load.

    Returns a :class:`TracingLink`, or a :class:`RawTracepointLink` for ``tp_btf``.
    Raises :class:`ValueError` for another program type or expected attach type (iterators
    go to :func:`~ebpf.link.attach_iter`).
    """
    at = _check(program, target, target_btf_id, cookie)
    fd: FD | None = None
    if at is not None:
        extra: dict[str, int] = {}
        if cookie:
            extra["tracing.cookie"] = cookie
        if target_btf_id:
            extra["tracing.target_btf_id"] = target_btf_id
        try:
            fd = link_create(program, target.fileno() if target is not None else 0, at,
                             **extra)
        except errors.SyscallError as e:
            # Kernels before 5.13 know no LINK_CREATE for these program types.
            if e.errno not in (_errno.EINVAL, errors.ENOTSUPP) or cookie or target is not None:
                raise
    if fd is None:
        if cookie:
            raise errors.NotSupportedError("tracing link with a cookie", "5.19")
        fd = raw_tracepoint_open(program, None)
    try:
        kind = commands.obj_info(fd.fileno(), _t.BpfLinkInfo()).type
    except errors.SyscallError:
        kind = LinkType.TRACING  # kernels before 5.8: an anonymous fd, not a bpf_link
    except BaseException:
        fd.close()
        raise
    if kind == LinkType.RAW_TRACEPOINT:
        return RawTracepointLink(fd, program)
    return TracingLink(fd, program)

