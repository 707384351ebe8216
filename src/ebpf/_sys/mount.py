"""``mount(2)``/``umount2(2)`` and ``unshare(2)`` for bpffs/tracefs and namespaces."""

from __future__ import annotations

import ctypes
import os

from .syscall import libc

__all__ = ["mount", "umount"]


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
