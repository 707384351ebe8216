"""What every attachment has in common.

Two families:

* :class:`Link` wraps a kernel ``bpf_link`` (``BPF_LINK_CREATE``, ``BPF_RAW_TRACEPOINT_OPEN``,
  ``BPF_LINK_CREATE`` via perf events...): it can be pinned, reopened from its pin, updated to
  another program, detached and queried. One subclass per ``bpf_link_type``.
* :class:`Attachment` is for hooks that predate bpf_link (netlink XDP, clsact filters,
  ``BPF_PROG_ATTACH``, perf event ioctls, ``SO_ATTACH_BPF``): the same ``detach()``/``close()``
  and context-manager protocol, but no pinning.

Closing a link object releases the fd; a link that is not pinned then detaches. ``close()``
and ``detach()`` are idempotent.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno as _errno
import os
import socket
import warnings
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar

from .. import errors
from .._programs import Program
from .._sys import attrs as _attrs
from .._sys import commands, netlink
from .._sys.fd import FD, KernelObject, adopt
from .._sys.syscall import bpf, bpf_fd
from .._types import LinkType, ProgramType
from .._uapi import _defines as _d
from .._uapi import _generated_types as _t

__all__ = [
    "Attachment",
    "Link",
    "LinkInfo",
    "ProgQuery",
    "check_program_type",
    "current_netns",
    "link_create",
    "netns_arg",
    "prog_attach",
    "prog_detach",
    "prog_query",
    "resolve_interface",
]

C = _t.bpf_cmd

#: Link types without ``update_prog`` in the kernel: ``BPF_LINK_UPDATE`` is EINVAL/EOPNOTSUPP.
_NO_UPDATE = frozenset({LinkType.RAW_TRACEPOINT, LinkType.TRACING, LinkType.PERF_EVENT,
                        LinkType.KPROBE_MULTI, LinkType.UPROBE_MULTI, LinkType.NETFILTER})


@dataclass(frozen=True, slots=True)
class LinkInfo:
    """``struct bpf_link_info``: the common fields plus the raw struct for type specifics."""

    id: int
    type: LinkType | int
    prog_id: int
    raw: _t.BpfLinkInfo


def link_create(program: Program | int, target_fd: int, attach_type: int, flags: int = 0,
                **extra: Any) -> FD:
    """``BPF_LINK_CREATE``; ``extra`` sets fields of the attach-type union by dotted path.

    Example: ``link_create(prog, ifindex, AttachType.XDP, flags=2)`` or
    ``link_create(prog, 0, AttachType.NETFILTER, **{"netfilter.pf": 2, ...})``.
    """
    attr = _t.LinkCreateAttr()
    attr.prog_fd = program if isinstance(program, int) else program.fileno()
    _attrs.fill(attr, target_fd=target_fd, attach_type=attach_type, flags=flags)
    keep = []
    for path, value in extra.items():
        obj: Any = attr
        *parents, leaf = path.split(".")
        for p in parents:
            obj = getattr(obj, p)
        if isinstance(value, ctypes.Array):
            keep.append(value)
            setattr(obj, leaf, ctypes.addressof(value))
        elif isinstance(value, int):
            _attrs.check(obj, leaf, value, label=path)
        else:
            setattr(obj, leaf, value)
    return bpf_fd(C.BPF_LINK_CREATE, attr, keep=keep, what="link")


class Link(KernelObject):
    """A kernel ``bpf_link``. Built by an ``attach_*`` function or :meth:`from_pin`.

    ``program`` is the program attached (``None`` when the link was reopened from a pin or an
    id and the program object is not known here).
    """

    __slots__ = ("_fd", "_pinned", "program")

    #: bpf_link_type -> class, filled by subclasses (for :meth:`from_fd`).
    _registry: ClassVar[dict[int, type[Link]]] = {}
    link_type: ClassVar[LinkType | None] = None

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if cls.link_type is not None:
            Link._registry[int(cls.link_type)] = cls

    def __init__(self, fd: FD, program: Program | None = None) -> None:
        self._fd = fd
        self.program = program
        self._pinned: str | None = None

    # --- construction -------------------------------------------------------------------
    @classmethod
    def from_fd(cls, fd: FD | int) -> Link:
        """Adopt a link fd (an int is duplicated); the class follows the kernel's link type."""
        owned = adopt(fd, "link")
        try:
            commands.expect_kind(owned.fileno(), "link", f"fd {owned.fileno()}")
            info = commands.obj_info(owned.fileno(), _t.BpfLinkInfo())
        except BaseException:
            owned.close()
            raise
        klass = Link._registry.get(info.type, Link)
        if cls is not Link and not issubclass(klass, cls):
            owned.close()
            raise TypeError(f"link is of type {info.type}, not {cls.__name__}")
        link = klass.__new__(klass)
        Link.__init__(link, owned, None)
        return link

    @classmethod
    def from_pin(cls, path: str | os.PathLike[str]) -> Link:
        """Open a link pinned on a bpffs."""
        link = cls.from_fd(commands.obj_get(path, what="link"))
        link._pinned = os.fspath(path)
        return link

    @classmethod
    def from_id(cls, link_id: int) -> Link:
        """Open a link by its kernel id."""
        return cls.from_fd(commands.fd_by_id(commands.ObjKind.LINK, link_id, "link"))

    # --- the link protocol ----------------------------------------------------------------
    def info(self) -> LinkInfo:
        """``BPF_OBJ_GET_INFO_BY_FD`` for this link."""
        raw = commands.obj_info(self.fileno(), _t.BpfLinkInfo())
        try:
            lt: LinkType | int = LinkType(raw.type)
        except ValueError:
            lt = raw.type
        return LinkInfo(raw.id, lt, raw.prog_id, raw)

    @property
    def id(self) -> int:
        return self.info().id

    def pin(self, path: str | os.PathLike[str]) -> None:
        """Pin the link on a bpffs: it stays attached after this process closes it."""
        commands.obj_pin(self.fileno(), path)
        self._pinned = os.fspath(path)

    def unpin(self) -> None:
        """Remove the pin made by :meth:`pin` or opened by :meth:`from_pin`."""
        if self._pinned is None:
            raise ValueError("link is not pinned (by this object)")
        os.unlink(self._pinned)
        self._pinned = None

    @property
    def pinned_path(self) -> str | None:
        return self._pinned

    def update(self, program: Program, *, expected: Program | None = None) -> None:
        """Atomically replace the attached program (``BPF_LINK_UPDATE``, kernel >= 5.7).

        With ``expected``, the update fails unless that program is the one attached. Link
        types whose kernel side cannot swap programs (raw tracepoint, tracing, perf event,
        kprobe/uprobe multi, netfilter) raise :class:`~ebpf.errors.NotSupportedError` without
        a syscall.
        """
        lt = type(self).link_type
        if lt is None:
            lt_raw = self.info().type
            lt = lt_raw if isinstance(lt_raw, LinkType) else None
        if lt in _NO_UPDATE:
            raise errors.NotSupportedError(
                f"BPF_LINK_UPDATE of a {lt.name} link",
                detail="the kernel cannot swap its program: detach and attach the new one")
        attr = _t.LinkUpdateAttr()
        attr.link_fd = self.fileno()
        attr.new_prog_fd = program.fileno()
        if expected is not None:
            attr.old_prog_fd = expected.fileno()
            attr.flags = _d.BPF_F_REPLACE
        bpf(C.BPF_LINK_UPDATE, attr)
        self.program = program

    def detach(self) -> None:
        """Detach now (``BPF_LINK_DETACH``, >= 5.9), even if pinned; the fd stays open."""
        if self.closed:
            return
        attr = _t.LinkDetachAttr()
        attr.link_fd = self.fileno()
        try:
            bpf(C.BPF_LINK_DETACH, attr)
        except errors.SyscallError as e:
            # Some link types (e.g. tracing, perf_event on old kernels) cannot be detached
            # separately from close.
            if e.errno not in (22, 95, errors.ENOTSUPP):  # EINVAL, EOPNOTSUPP
                raise
            self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"fd={self._fd.fileno()}"
        return f"<{type(self).__name__} {state}>"


class Attachment:
    """An attachment without a kernel link object: ``detach()`` undoes it, ``close()`` too.

    Subclasses implement :meth:`_detach`. Not pinnable; :meth:`pin` raises
    :class:`~ebpf.errors.NotSupportedError` naming the link-based alternative.
    """

    __slots__ = ("_attached", "program")

    def __init__(self, program: Program | None) -> None:
        self.program = program
        self._attached = True

    def _detach(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def closed(self) -> bool:
        return not self._attached

    def detach(self) -> None:
        """Undo the attachment. Idempotent."""
        if self._attached:
            self._attached = False
            self._detach()

    def close(self) -> None:
        self.detach()

    def pin(self, path: str | os.PathLike[str]) -> None:
        raise errors.NotSupportedError(f"pinning a {type(self).__name__}",
                                       detail="only bpf_link attachments can be pinned")

    def __enter__(self) -> Attachment:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.detach()

    def __del__(self) -> None:
        if getattr(self, "_attached", False):
            warnings.warn(f"{type(self).__name__} was never detached; detaching now",
                          ResourceWarning, stacklevel=1)
            with contextlib.suppress(Exception):  # interpreter shutdown or already gone
                self.detach()


# --- shared by the attach_* modules ---------------------------------------------------------


def check_program_type(program: Program, *expected: ProgramType, hook: str = "") -> None:
    """Raise :class:`ValueError` naming the expected type unless ``program`` is one of them.

    Called by every ``attach_*`` function before any syscall.
    """
    if not isinstance(program, Program):
        raise TypeError(f"expected an ebpf.Program, not {type(program).__name__}")
    if program.type in expected:
        return
    got = program.type.name if isinstance(program.type, ProgramType) else str(program.type)
    want = " or ".join(t.name for t in expected)
    where = f" for {hook}" if hook else ""
    raise ValueError(f"invalid program type {got}{where}, expected {want}")


def prog_attach(program: Program | int, target_fd: int, attach_type: int, flags: int = 0, *,
                replace: Program | int | None = None, relative_fd: int = 0,
                relative_id: int = 0, expected_revision: int = 0) -> None:
    """``BPF_PROG_ATTACH``: the pre-bpf_link attachment (cgroups, sockmaps, flow dissector,
    mprog hooks such as TCX).

    ``replace`` sets ``BPF_F_REPLACE`` with ``replace_bpf_fd`` (cgroup multi mode, >= 5.6).
    """
    attr = _t.ProgAttachAttr()
    _attrs.fill(attr, target_fd=target_fd, attach_type=attach_type)
    attr.attach_bpf_fd = program if isinstance(program, int) else program.fileno()
    if replace is not None:
        flags |= _d.BPF_F_REPLACE
        attr.replace_bpf_fd = replace if isinstance(replace, int) else replace.fileno()
    _attrs.check(attr, "attach_flags", flags, label="flags")
    if relative_fd:
        attr.relative_fd = relative_fd
    elif relative_id:
        attr.relative_id = relative_id
    attr.expected_revision = expected_revision
    bpf(C.BPF_PROG_ATTACH, attr)


def prog_detach(program: Program | int | None, target_fd: int, attach_type: int,
                flags: int = 0) -> None:
    """``BPF_PROG_DETACH``; ``program`` selects which one when several are attached."""
    attr = _t.ProgAttachAttr()
    attr.target_fd = target_fd
    if program is not None:
        attr.attach_bpf_fd = program if isinstance(program, int) else program.fileno()
    attr.attach_type = int(attach_type)
    attr.attach_flags = flags
    bpf(C.BPF_PROG_DETACH, attr)


@dataclass(frozen=True, slots=True)
class ProgQuery:
    """Result of ``BPF_PROG_QUERY``: what is attached to one hook, in execution order.

    ``attach_flags`` are the hook's ``BPF_F_ALLOW_*`` flags (cgroups); ``link_ids`` has the
    link id for each program attached through a bpf_link, else 0 (mprog hooks, >= 6.6);
    ``revision`` changes on every attach/detach (mprog hooks, cgroups >= 6.12).
    """

    prog_ids: tuple[int, ...]
    attach_flags: int = 0
    prog_attach_flags: tuple[int, ...] = ()
    link_ids: tuple[int, ...] = ()
    revision: int = 0


def prog_query(target_fd: int, attach_type: int, *, effective: bool = False) -> ProgQuery:
    """``BPF_PROG_QUERY`` on a cgroup fd, an ifindex (TCX), a netns fd or a map fd.

    ``effective`` (cgroups) lists the programs that run, inherited ones included.
    """
    mprog = int(attach_type) in _MPROG_ATTACH_TYPES
    want_flags = not effective
    count = 16
    while True:
        ids = (ctypes.c_uint32 * count)()
        pflags = (ctypes.c_uint32 * count)()
        lids = (ctypes.c_uint32 * count)()
        attr = _t.ProgQueryAttr()
        attr.target_fd = target_fd
        attr.attach_type = int(attach_type)
        attr.query_flags = _d.BPF_F_QUERY_EFFECTIVE if effective else 0
        attr.prog_ids = ctypes.addressof(ids)
        attr.prog_cnt = count
        if want_flags:  # per-program flags: kernel >= 6.0
            attr.prog_attach_flags = ctypes.addressof(pflags)
        if mprog:  # link_ids is only known to (and only filled by) the mprog hooks, >= 6.6
            attr.link_ids = ctypes.addressof(lids)
        try:
            bpf(C.BPF_PROG_QUERY, attr, keep=(ids, pflags, lids))
        except errors.SyscallError as e:
            if e.errno == _errno.ENOSPC and attr.prog_cnt > count:
                count = attr.prog_cnt
                continue
            if e.errno == _errno.EINVAL and want_flags and not mprog:
                want_flags = False  # a kernel < 6.0 rejects the unknown field
                continue
            raise
        n = min(attr.prog_cnt, count)
        return ProgQuery(
            prog_ids=tuple(ids[:n]),
            attach_flags=attr.attach_flags,
            prog_attach_flags=tuple(pflags[:n]) if want_flags else (),
            link_ids=tuple(lids[:n]) if mprog else (),
            revision=attr.revision,
        )


_MPROG_ATTACH_TYPES = frozenset(
    int(getattr(_t, name)) for name in ("BPF_TCX_INGRESS", "BPF_TCX_EGRESS",
                                        "BPF_NETKIT_PRIMARY", "BPF_NETKIT_PEER")
    if hasattr(_t, name)
)


def resolve_interface(interface: int | str) -> int:
    """The index of ``interface`` (a name or an index) in the calling thread's namespace.

    An invalid or unknown name raises :class:`ValueError`.
    """
    if isinstance(interface, bool) or not isinstance(interface, (int, str)):
        raise TypeError(f"interface must be a name or an index, not {interface!r}")
    if isinstance(interface, int):
        if not 0 < interface <= 0x7FFFFFFF:
            raise ValueError(f"invalid interface index {interface}")
        return interface
    netlink.check_ifname(interface)
    try:
        return socket.if_nametoindex(interface)
    except OSError:
        raise ValueError(f"no network interface named {interface!r}") from None


_SELF_NS = "/proc/thread-self/ns/net"


def current_netns() -> FD:
    """An owned fd of the calling thread's network namespace."""
    return FD(os.open(_SELF_NS, os.O_RDONLY | os.O_CLOEXEC), "netns")


def netns_arg(ns: FD) -> int | None:
    """``ns`` as the ``netns=`` of :mod:`ebpf._sys.netlink`: ``None`` (no helper thread) when
    the calling thread is already in that namespace."""
    st, here = os.fstat(ns.fileno()), os.stat(_SELF_NS)
    return None if (st.st_dev, st.st_ino) == (here.st_dev, here.st_ino) else ns.fileno()
