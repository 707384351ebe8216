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


def obj_pin(fd: int, path: str | os.PathLike[str]) -> None:
    """Pin the object behind ``fd`` at ``path`` on a bpffs (``BPF_OBJ_PIN``)."""
    raw = os.fsencode(path) + b"\0"
    buf = ctypes.create_string_buffer(raw, len(raw))
    attr = _t.ObjAttr()
    attr.pathname = ctypes.addressof(buf)
    attr.bpf_fd = fd
    bpf(C.BPF_OBJ_PIN, attr, keep=buf)


def obj_get(path: str | os.PathLike[str], flags: int = 0, what: str = "") -> FD:
    """Open a pinned object (``BPF_OBJ_GET``); ``flags`` is ``BPF_F_RDONLY``/``BPF_F_WRONLY``."""
    raw = os.fsencode(path) + b"\0"
    buf = ctypes.create_string_buffer(raw, len(raw))
    attr = _t.ObjAttr()
    attr.pathname = ctypes.addressof(buf)
    attr.file_flags = flags
    return bpf_fd(C.BPF_OBJ_GET, attr, keep=buf, what=what)


def enable_stats(stats_type: int = 0) -> FD:
    """``BPF_ENABLE_STATS``: run-time statistics are collected while the returned fd is open."""
    attr = _t.EnableStatsAttr()
    attr.type = stats_type
    return bpf_fd(C.BPF_ENABLE_STATS, attr, what="stats")
