"""``mount(2)``/``umount2(2)`` and ``unshare(2)`` for bpffs/tracefs and namespaces."""

from __future__ import annotations

import ctypes
import os
import sys

from .syscall import libc

__all__ = ["BPF_FS_MAGIC", "fs_magic", "mount", "mounts_of", "umount"]

#: ``f_type`` of a bpffs (``include/uapi/linux/magic.h``).
BPF_FS_MAGIC = 0xCAFE4A11


def mount(source: str, target: str, fstype: str, flags: int = 0, data: str | None = None) -> None:
    """``mount(2)``. Raises :class:`OSError` with the errno on failure."""
    r = libc.mount(source.encode(), target.encode(), fstype.encode(), ctypes.c_ulong(flags),
                   data.encode() if data else None)
    if r != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {fstype} on {target}: {os.strerror(err)}")


def umount(target: str, lazy: bool = False) -> None:
    """``umount2(2)``; ``lazy`` adds ``MNT_DETACH``."""
    r = libc.umount2(target.encode(), 2 if lazy else 0)
    if r != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"umount {target}: {os.strerror(err)}")


def fs_magic(path: str) -> int | None:
    """``statfs(path).f_type`` (the filesystem's magic number), or None if it cannot be read."""
    buf = ctypes.create_string_buffer(256)  # struct statfs is 120 bytes on 64-bit Linux
    if libc.statfs(os.fsencode(path), buf) != 0:
        return None
    return int.from_bytes(buf.raw[: ctypes.sizeof(ctypes.c_long)], sys.byteorder) & 0xFFFFFFFF


def mounts_of(fstype: str) -> list[str]:
    """Mount points of ``fstype`` in this process's mount namespace (``/proc/self/mountinfo``)."""
    out: list[str] = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                fields = left.split()
                if len(fields) > 4 and right.split(" ", 1)[0] == fstype:
                    out.append(fields[4].replace("\\040", " "))
    except OSError:
        pass
    return out
