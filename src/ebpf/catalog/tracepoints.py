"""Tracepoints of the running kernel, from tracefs (``events/<category>/<name>``).

::

    categories()                     # ['alarmtimer', 'block', ..., 'syscalls', ...]
    tracepoints("sched")             # ['sched_process_exec', ...]
    exists("syscalls", "sys_enter_openat")

Formats: :func:`ebpf.link.tracepoint.tracepoint_format`.
"""

from __future__ import annotations

import os

from .. import platform
from ..errors import NotSupportedError

__all__ = ["categories", "exists", "search", "tracepoints"]


def _events(tracefs: str | None) -> str:
    base = tracefs or platform.tracefs_path()
    if base is None:
        raise NotSupportedError("tracepoints", detail="tracefs is not mounted")
    return os.path.join(base, "events")


def categories(*, tracefs: str | None = None) -> list[str]:
    """Tracepoint categories (subsystems), sorted."""
    ev = _events(tracefs)
    return sorted(e.name for e in os.scandir(ev) if e.is_dir())


def tracepoints(category: str, *, tracefs: str | None = None) -> list[str]:
    """Tracepoints of ``category``, sorted ([] for an unknown category)."""
    d = os.path.join(_events(tracefs), category)
    if "/" in category or not os.path.isdir(d):
        return []
    return sorted(e.name for e in os.scandir(d)
                  if e.is_dir() and os.path.exists(os.path.join(e.path, "id")))


def exists(category: str, name: str, *, tracefs: str | None = None) -> bool:
    if "/" in category or "/" in name or not category or not name:
        return False
    return os.path.exists(os.path.join(_events(tracefs), category, name, "id"))


def search(text: str, *, tracefs: str | None = None) -> list[tuple[str, str]]:
    """``(category, name)`` of every tracepoint whose name contains ``text``."""
    return [(c, n) for c in categories(tracefs=tracefs)
            for n in tracepoints(c, tracefs=tracefs) if text in n]
