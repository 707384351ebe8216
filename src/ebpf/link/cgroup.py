"""cgroup v2 hooks: run a program for the sockets, devices, sysctls... of a cgroup's processes.

One function, :func:`attach_cgroup`, for every cgroup attach type (``CGROUP_INET_INGRESS``,
``CGROUP_INET4_CONNECT``, ``CGROUP_DEVICE``, ``CGROUP_SYSCTL``, ``CGROUP_SOCK_OPS``...), two
mechanisms chosen by :class:`CgroupMode`:

* ``LINK`` -> :class:`CgroupLink` (``BPF_LINK_CREATE``, kernel >= 5.7): pinnable, updatable,
  gone with its last fd; several links coexist on a hook (multi semantics);
* ``MULTI``/``OVERRIDE``/``EXCLUSIVE`` -> :class:`CgroupAttachment` (``BPF_PROG_ATTACH`` with
  ``BPF_F_ALLOW_MULTI``/``BPF_F_ALLOW_OVERRIDE``/no flag, kernel >= 4.10): stays attached
  until :meth:`~CgroupAttachment.detach`, even after this process exits.

:func:`query_cgroup` lists what is attached (``BPF_PROG_QUERY``).

Example::

    prog = ebpf.Program.load(ebpf.ProgramType.CGROUP_SKB, insns,
                             expected_attach_type=ebpf.AttachType.CGROUP_INET_EGRESS)
    with attach_cgroup(prog, "/sys/fs/cgroup/app", ebpf.AttachType.CGROUP_INET_EGRESS):
        ...
"""

from __future__ import annotations

import contextlib
import ctypes
import enum
import errno as _errno
import os
from typing import Literal, final, overload

from .. import errors
from .._programs import Program
from .._sys.fd import FD, check_fd
from .._sys.syscall import libc
from .._types import AttachType, LinkType, ProgramType
from .._uapi import _defines as _d
from .base import (
    Attachment,
    Link,
    ProgQuery,
    check_program_type,
    link_create,
    prog_attach,
    prog_detach,
    prog_query,
)

__all__ = [
    "CGROUP_ATTACH_TYPES",
    "CgroupAttachment",
    "CgroupLink",
    "CgroupMode",
    "attach_cgroup",
    "query_cgroup",
]

AT, PT = AttachType, ProgramType

#: Every cgroup attach type and the program type it runs.
CGROUP_ATTACH_TYPES: dict[AttachType, ProgramType] = {
    AT.CGROUP_INET_INGRESS: PT.CGROUP_SKB,
    AT.CGROUP_INET_EGRESS: PT.CGROUP_SKB,
    AT.CGROUP_INET_SOCK_CREATE: PT.CGROUP_SOCK,
    AT.CGROUP_INET_SOCK_RELEASE: PT.CGROUP_SOCK,
    AT.CGROUP_INET4_POST_BIND: PT.CGROUP_SOCK,
    AT.CGROUP_INET6_POST_BIND: PT.CGROUP_SOCK,
    AT.CGROUP_SOCK_OPS: PT.SOCK_OPS,
    AT.CGROUP_DEVICE: PT.CGROUP_DEVICE,
    AT.CGROUP_INET4_BIND: PT.CGROUP_SOCK_ADDR,
    AT.CGROUP_INET6_BIND: PT.CGROUP_SOCK_ADDR,
    AT.CGROUP_INET4_CONNECT: PT.CGROUP_SOCK_ADDR,
    AT.CGROUP_INET6_CONNECT: PT.CGROUP_SOCK_ADDR,
    AT.CGROUP_UDP4_SENDMSG: PT.CGROUP_SOCK_ADDR,
    AT.CGROUP_UDP6_SENDMSG: PT.CGROUP_SOCK_ADDR,
    AT.CGROUP_UDP4_RECVMSG: PT.CGROUP_SOCK_ADDR,
    AT.CGROUP_UDP6_RECVMSG: PT.CGROUP_SOCK_ADDR,
    AT.CGROUP_INET4_GETPEERNAME: PT.CGROUP_SOCK_ADDR,
    AT.CGROUP_INET6_GETPEERNAME: PT.CGROUP_SOCK_ADDR,
    AT.CGROUP_INET4_GETSOCKNAME: PT.CGROUP_SOCK_ADDR,
    AT.CGROUP_INET6_GETSOCKNAME: PT.CGROUP_SOCK_ADDR,
    AT.CGROUP_UNIX_CONNECT: PT.CGROUP_SOCK_ADDR,
    AT.CGROUP_UNIX_SENDMSG: PT.CGROUP_SOCK_ADDR,
    AT.CGROUP_UNIX_RECVMSG: PT.CGROUP_SOCK_ADDR,
    AT.CGROUP_UNIX_GETPEERNAME: PT.CGROUP_SOCK_ADDR,
    AT.CGROUP_UNIX_GETSOCKNAME: PT.CGROUP_SOCK_ADDR,
    AT.CGROUP_SYSCTL: PT.CGROUP_SYSCTL,
    AT.CGROUP_GETSOCKOPT: PT.CGROUP_SOCKOPT,
    AT.CGROUP_SETSOCKOPT: PT.CGROUP_SOCKOPT,
    AT.LSM_CGROUP: PT.LSM,
}

# Program types whose only cgroup attach type can be inferred.
_SINGLE = {PT.SOCK_OPS: AT.CGROUP_SOCK_OPS, PT.CGROUP_DEVICE: AT.CGROUP_DEVICE,
           PT.CGROUP_SYSCTL: AT.CGROUP_SYSCTL}
# Program types for which the kernel insists that expected_attach_type == attach type.
_STRICT = {PT.CGROUP_SOCK, PT.CGROUP_SOCK_ADDR, PT.CGROUP_SOCKOPT, PT.LSM}

_CGROUP2_SUPER_MAGIC = 0x63677270  # include/uapi/linux/magic.h


class CgroupMode(enum.Enum):
    """How :func:`attach_cgroup` attaches; :meth:`flags` gives ``BPF_PROG_ATTACH`` flags."""

    #: A bpf_link (:class:`CgroupLink`, kernel >= 5.7); runs alongside other programs.
    LINK = "link"
    #: ``BPF_F_ALLOW_MULTI``: one of several programs on the hook, sub-cgroups' run too.
    MULTI = "multi"
    #: ``BPF_F_ALLOW_OVERRIDE``: the only program here; a sub-cgroup's program replaces it.
    OVERRIDE = "override"
    #: No flag: the only program, and sub-cgroups cannot attach their own.
    EXCLUSIVE = "exclusive"

    def flags(self) -> int:
        """The ``attach_flags`` of ``BPF_PROG_ATTACH`` for this mode (0 for ``LINK``)."""
        return {"multi": _d.BPF_F_ALLOW_MULTI, "override": _d.BPF_F_ALLOW_OVERRIDE}.get(
            self.value, 0)


CgroupTarget = str | os.PathLike[str] | int


class _StatFS(ctypes.Structure):
    _fields_ = (("f_type", ctypes.c_long), ("_rest", ctypes.c_byte * 120))


def _open_cgroup(cgroup: CgroupTarget) -> FD:
    """An owned O_RDONLY fd of a cgroup v2 directory; ValueError for anything else."""
    if isinstance(cgroup, bool):
        raise TypeError("cgroup must be a path or a directory fd")
    if isinstance(cgroup, int):
        fd = FD(os.dup(check_fd(cgroup, "cgroup")), "cgroup")
    else:
        fd = FD(os.open(cgroup, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC), "cgroup")
    try:
        st = _StatFS()
        if libc.fstatfs(fd.fileno(), ctypes.byref(st)) != 0:
            raise errors.from_errno("fstatfs", ctypes.get_errno())
        if st.f_type != _CGROUP2_SUPER_MAGIC:
            raise ValueError(f"{cgroup!r} is not a cgroup v2 directory "
                             f"(filesystem magic {st.f_type & 0xFFFFFFFF:#x})")
    except BaseException:
        fd.close()
        raise
    return fd


def _attach_type(program: Program, attach_type: AttachType | int | None) -> AttachType:
    if attach_type is None:
        eat = program.expected_attach_type
        if eat is not None and eat in CGROUP_ATTACH_TYPES:
            attach_type = eat
        elif program.type in _SINGLE:
            attach_type = _SINGLE[program.type]  # type: ignore[index]
        else:
            raise ValueError("attach_type is required (the program was loaded without a cgroup "
                             "expected_attach_type)")
    try:
        at = AttachType(attach_type)
    except ValueError:
        raise ValueError(f"unknown attach type {attach_type}") from None
    if at not in CGROUP_ATTACH_TYPES:
        raise ValueError(f"{at.name} is not a cgroup attach type")
    want = CGROUP_ATTACH_TYPES[at]
    check_program_type(program, want, hook=at.name)
    eat = program.expected_attach_type
    if want in _STRICT and eat is not None and int(eat) != at:
        name = eat.name if isinstance(eat, AttachType) else str(eat)
        raise ValueError(f"program was loaded with expected_attach_type {name}, "
                         f"cannot attach it to {at.name}")
    return at


@final
class CgroupLink(Link):
    """A program on a cgroup hook through a bpf_link (``BPF_LINK_TYPE_CGROUP``, >= 5.7)."""

    __slots__ = ()
    link_type = LinkType.CGROUP

    @property
    def cgroup_id(self) -> int:
        """The cgroup's id (its inode number on cgroupfs); 0 once detached."""
        return int(self.info().raw.cgroup.cgroup_id)

    @property
    def attach_type(self) -> AttachType:
        return AttachType(self.info().raw.cgroup.attach_type)


@final
class CgroupAttachment(Attachment):
    """A program on a cgroup hook through ``BPF_PROG_ATTACH`` (no bpf_link).

    It stays attached after this process exits, until :meth:`detach` (``BPF_PROG_DETACH`` of
    this very program). Built by :func:`attach_cgroup`.
    """

    __slots__ = ("_cgroup", "attach_type", "mode")

    def __init__(self, program: Program, cgroup: FD, attach_type: AttachType,
                 mode: CgroupMode) -> None:
        super().__init__(program)
        self._cgroup = cgroup
        self.attach_type = attach_type
        self.mode = mode

    def update(self, program: Program) -> None:
        """Put ``program`` in place of ours (``BPF_F_REPLACE`` in ``MULTI`` mode)."""
        if self.closed:
            raise ValueError("cgroup attachment is detached")
        _attach_type(program, self.attach_type)
        if self.mode is CgroupMode.MULTI:
            prog_attach(program, self._cgroup.fileno(), self.attach_type, self.mode.flags(),
                        replace=self.program)
        else:
            prog_attach(program, self._cgroup.fileno(), self.attach_type, self.mode.flags())
        self.program = program

    def _detach(self) -> None:
        try:
            prog_detach(self.program, self._cgroup.fileno(), self.attach_type)
        except errors.SyscallError as e:
            if e.errno != _errno.ENOENT:  # replaced or detached by someone else
                raise
        finally:
            self._cgroup.close()

    def __repr__(self) -> str:
        state = "detached" if self.closed else self.attach_type.name
        return f"<CgroupAttachment {self.mode.name} {state}>"


def _have_cgroup_link() -> bool:
    from .. import features

    try:
        features.have_link_type(LinkType.CGROUP)
    except errors.NotSupportedError:
        return False
    except errors.ProbeError:
        return True
    return True


@overload
def attach_cgroup(program: Program, cgroup: CgroupTarget,
                  attach_type: AttachType | int | None = ..., *,
                  mode: Literal[CgroupMode.LINK], replace: None = ...) -> CgroupLink: ...
@overload
def attach_cgroup(program: Program, cgroup: CgroupTarget,
                  attach_type: AttachType | int | None = ..., *,
                  mode: Literal[CgroupMode.MULTI, CgroupMode.OVERRIDE, CgroupMode.EXCLUSIVE],
                  replace: Program | None = ...) -> CgroupAttachment: ...
@overload
def attach_cgroup(program: Program, cgroup: CgroupTarget,
                  attach_type: AttachType | int | None = ..., *, mode: None = ...,
                  replace: Program | None = ...) -> CgroupLink | CgroupAttachment: ...


def attach_cgroup(program: Program, cgroup: CgroupTarget,
                  attach_type: AttachType | int | None = None, *,
                  mode: CgroupMode | None = None,
                  replace: Program | None = None) -> CgroupLink | CgroupAttachment:
    """Attach ``program`` to a cgroup v2 hook.

    ``cgroup`` is the directory (``/sys/fs/cgroup/app``) or an open fd of it. ``attach_type``
    defaults to the program's ``expected_attach_type``, or the only hook of its type
    (``SOCK_OPS``, ``CGROUP_DEVICE``, ``CGROUP_SYSCTL``).

    ``mode`` (:class:`CgroupMode`): by default a bpf_link (:class:`CgroupLink`); **when the
    kernel has no cgroup links (< 5.7) it falls back to** ``BPF_PROG_ATTACH`` with
    ``BPF_F_ALLOW_MULTI``, the same multi semantics. ``MULTI``/``OVERRIDE``/``EXCLUSIVE`` ask
    for ``BPF_PROG_ATTACH`` with that flag (:class:`CgroupAttachment`). ``replace=old`` (MULTI
    only, >= 5.6) swaps ``old`` for ``program`` in place (``BPF_F_REPLACE``); in OVERRIDE or
    EXCLUSIVE mode attaching again replaces the single program anyway.

    Errors: :class:`ValueError` when the program type does not run on that hook, for a
    non-cgroup attach type, or for a directory that is not on cgroup v2 (all before any bpf
    syscall); ``EPERM`` when the hook's existing attachments use other flags.

    Kernel: ``BPF_PROG_ATTACH`` on cgroups >= 4.10, ``BPF_LINK_TYPE_CGROUP`` >= 5.7; each
    attach type has its own minimum (e.g. ``CGROUP_UNIX_*`` >= 6.7).
    """
    at = _attach_type(program, attach_type)
    if mode is not None and not isinstance(mode, CgroupMode):
        raise TypeError(f"mode must be an ebpf.link.CgroupMode, not {mode!r}")
    if replace is not None:
        check_program_type(replace, CGROUP_ATTACH_TYPES[at], hook=at.name)
        if mode is None:
            mode = CgroupMode.MULTI
        if mode is not CgroupMode.MULTI:
            raise ValueError("replace= needs mode=CgroupMode.MULTI (BPF_F_REPLACE); use "
                             "link.update() for a link")
    cg = _open_cgroup(cgroup)
    try:
        if mode is None:
            mode = CgroupMode.LINK if _have_cgroup_link() else CgroupMode.MULTI
        if mode is CgroupMode.LINK:
            fd = link_create(program, cg.fileno(), at)
            cg.close()
            return CgroupLink(fd, program)
        prog_attach(program, cg.fileno(), at, mode.flags(), replace=replace)
    except BaseException:
        cg.close()
        raise
    try:
        return CgroupAttachment(program, cg, at, mode)
    except BaseException:
        with contextlib.suppress(Exception):
            prog_detach(program, cg.fileno(), at)
        cg.close()
        raise


def query_cgroup(cgroup: CgroupTarget, attach_type: AttachType | int, *,
                 effective: bool = False) -> ProgQuery:
    """The programs attached to one hook of a cgroup (``BPF_PROG_QUERY``, >= 4.10).

    ``effective=True`` lists those that run for the cgroup's processes, inherited from
    ancestors included. ``attach_flags`` tells the hook's mode (``BPF_F_ALLOW_*``).
    """
    at = AttachType(attach_type)
    if at not in CGROUP_ATTACH_TYPES:
        raise ValueError(f"{at.name} is not a cgroup attach type")
    with _open_cgroup(cgroup) as cg:
        return prog_query(cg.fileno(), at, effective=effective)
