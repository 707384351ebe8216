"""Typed wrappers for the bpf(2) commands shared by every object kind.

Introspection (``BPF_OBJ_GET_INFO_BY_FD``, ``*_GET_NEXT_ID``, ``*_GET_FD_BY_ID``), pinning
(``BPF_OBJ_PIN``/``BPF_OBJ_GET``) and statistics (``BPF_ENABLE_STATS``).
"""

from __future__ import annotations

import ctypes
import errno as _errno
import os
from collections.abc import Iterator
from typing import TypeVar

from .. import errors
from .._uapi import _generated_types as _t
from . import mount
from .fd import FD
from .syscall import bpf, bpf_fd

__all__ = [
    "ObjKind",
    "enable_stats",
    "fd_by_id",
    "iter_ids",
    "obj_get",
    "obj_info",
    "obj_pin",
]

C = _t.bpf_cmd
InfoT = TypeVar("InfoT", bound=ctypes.Structure)


class ObjKind:
    """The object kinds that have ids: (next-id command, fd-by-id command)."""

    PROG = (C.BPF_PROG_GET_NEXT_ID, C.BPF_PROG_GET_FD_BY_ID)
    MAP = (C.BPF_MAP_GET_NEXT_ID, C.BPF_MAP_GET_FD_BY_ID)
    BTF = (C.BPF_BTF_GET_NEXT_ID, C.BPF_BTF_GET_FD_BY_ID)
    LINK = (C.BPF_LINK_GET_NEXT_ID, C.BPF_LINK_GET_FD_BY_ID)


def obj_info(fd: int, info: InfoT) -> InfoT:
    """Fill ``info`` (a zeroed ``Bpf*Info``) with ``BPF_OBJ_GET_INFO_BY_FD``; returns it.

    Pointer fields set by the caller in ``info`` (e.g. ``xlated_prog_insns``) are honoured.
    """
    attr = _t.ObjInfoAttr()
    attr.bpf_fd = fd
    attr.info_len = ctypes.sizeof(info)
    attr.info = ctypes.addressof(info)
    bpf(C.BPF_OBJ_GET_INFO_BY_FD, attr, keep=info)
    return info


def iter_ids(kind: tuple[int, int]) -> Iterator[int]:
    """Every id of ``kind`` loaded in the kernel (all processes), ascending."""
    attr = _t.GetIdAttr()
    start = 0
    while True:
        attr.start_id = start
        attr.next_id = 0
        try:
            bpf(kind[0], attr)
        except errors.SyscallError as e:
            if e.errno == _errno.ENOENT:
                return
            raise
        start = attr.next_id
        yield start


def fd_by_id(kind: tuple[int, int], obj_id: int, what: str = "") -> FD:
    """An owned fd for the object with ``obj_id`` (``ENOENT`` if it is gone)."""
    attr = _t.GetIdAttr()
    attr.start_id = obj_id
    return bpf_fd(kind[1], attr, what=what)


def _path_bytes(path: str | os.PathLike[str]) -> bytes:
    raw = os.fsencode(path)
    if b"\0" in raw:
        raise errors.InvalidArgumentError(
            "path", f"{os.fspath(path)!r} contains a NUL byte (the kernel would stop there)")
    if not raw:
        raise errors.InvalidArgumentError("path", "empty path")
    return raw


def _bpffs_note(path: str) -> str:
    where = mount.mounts_of("bpf")
    return f"bpffs is mounted at {', '.join(where)}" if where else "no bpffs is mounted"


def _on_bpffs(path: str) -> bool | None:
    magic = mount.fs_magic(path)
    return None if magic is None else magic == mount.BPF_FS_MAGIC


#: Paths pinned by this process, when a leak check (the pytest plugin) asks for them.
pinned: list[str] | None = None


def obj_pin(fd: int, path: str | os.PathLike[str]) -> None:
    """Pin the object behind ``fd`` at ``path`` on a bpffs (``BPF_OBJ_PIN``). A path outside
    a bpffs gets an error that says so (the kernel's EPERM does not)."""
    raw = _path_bytes(path) + b"\0"
    buf = ctypes.create_string_buffer(raw, len(raw))
    attr = _t.ObjAttr()
    attr.pathname = ctypes.addressof(buf)
    attr.bpf_fd = fd
    try:
        bpf(C.BPF_OBJ_PIN, attr, keep=buf)
        if pinned is not None:
            pinned.append(os.path.abspath(os.fspath(path)))
    except errors.SyscallError as e:
        parent = os.path.dirname(os.path.abspath(os.fspath(path)))
        if e.errno in (_errno.EPERM, _errno.EACCES, _errno.EINVAL) and (
                _on_bpffs(parent) is False):
            raise errors.from_errno(
                "BPF_OBJ_PIN", e.errno or 0,
                hint=f"not a bpffs path: {parent} is not on a bpffs ({_bpffs_note(parent)})",
            ) from None
        raise


_KINDS = {"anon_inode:bpf-map": "map", "anon_inode:bpf-prog": "program",
          "anon_inode:bpf_link": "link", "anon_inode:bpf-link": "link",  # new / reopened
          "anon_inode:btf": "BTF"}


def obj_kind(fd: int) -> str | None:
    """What ``fd`` is: ``"map"``, ``"program"``, ``"link"``, ``"BTF"``, ``"other"`` (not a
    BPF object), or None when ``/proc`` cannot tell (not mounted). Read from the name of its
    anonymous inode, as cilium/ebpf does."""
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
    return _KINDS.get(target, "other")


def expect_kind(fd: int, kind: str, what: str) -> None:
    """Raise :class:`~ebpf.errors.ObjectKindError` unless ``fd`` is a BPF ``kind``."""
    got = obj_kind(fd)
    if got is None or got == kind:
        return
    actual = "not a BPF object" if got == "other" else f"a BPF {got}"
    raise errors.ObjectKindError(what, kind, actual)


def obj_get(path: str | os.PathLike[str], flags: int = 0, what: str = "") -> FD:
    """Open a pinned object (``BPF_OBJ_GET``); ``flags`` is ``BPF_F_RDONLY``/``BPF_F_WRONLY``.
    A path that is not a BPF object (a file outside bpffs, a directory) gets an error that
    says so; with ``what`` (``"map"``, ``"program"``, ``"link"``) the object's kind is
    checked too."""
    raw = _path_bytes(path) + b"\0"
    buf = ctypes.create_string_buffer(raw, len(raw))
    attr = _t.ObjAttr()
    attr.pathname = ctypes.addressof(buf)
    attr.file_flags = flags
    p = os.fspath(path)
    try:
        fd = bpf_fd(C.BPF_OBJ_GET, attr, keep=buf, what=what)
    except errors.SyscallError as e:
        if e.errno in (_errno.EPERM, _errno.EACCES, _errno.EINVAL) and os.path.exists(p):
            if _on_bpffs(p) is False:
                raise errors.ObjectKindError(
                    f"pin {p!r}", what or "object",
                    f"not a BPF object (not on a bpffs; {_bpffs_note(p)})") from None
            if os.path.isdir(p):
                raise errors.ObjectKindError(f"pin {p!r}", what or "object",
                                             "not a BPF object (a directory)") from None
        raise
    if what in ("map", "program", "link"):
        try:
            expect_kind(fd.fileno(), what, f"pin {p!r}")
        except BaseException:
            fd.close()
            raise
    return fd


def enable_stats(stats_type: int = 0) -> FD:
    """``BPF_ENABLE_STATS``: run-time statistics are collected while the returned fd is open."""
    attr = _t.EnableStatsAttr()
    attr.type = stats_type
    return bpf_fd(C.BPF_ENABLE_STATS, attr, what="stats")
