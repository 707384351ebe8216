"""cgroup v2 lookups: where a process is, what is below a cgroup, cgroup ids.

``current()`` reads the ``0::`` line of ``/proc/<pid>/cgroup``; paths are absolute paths
under the cgroup2 mount. A cgroup's id (what ``bpf_get_current_cgroup_id`` returns,
4.18) is the inode number of its directory.
"""

from __future__ import annotations

import os

from .. import platform
from ..errors import NotSupportedError

__all__ = ["cgroup_id", "children", "current", "exists", "root"]


def root() -> str:
    """Mount point of the cgroup v2 hierarchy."""
    mounts = platform.find_mount("cgroup2")
    if not mounts:
        raise NotSupportedError("cgroup v2", detail="no cgroup2 filesystem mounted")
    return mounts[0]


def current(pid: int | None = None) -> str:
    """Absolute path of the cgroup v2 of ``pid`` (default: this process)."""
    where = "self" if pid is None else str(pid)
    with open(f"/proc/{where}/cgroup") as f:
        for line in f:
            if line.startswith("0::"):
                rel = line[3:].strip()
                return os.path.normpath(os.path.join(root(), rel.lstrip("/")))
    raise NotSupportedError("cgroup v2", detail=f"process {where} has no cgroup v2 entry")


def exists(path: str) -> bool:
    """Whether ``path`` is a cgroup v2 directory (has ``cgroup.procs``)."""
    return os.path.isfile(os.path.join(path, "cgroup.procs"))


def children(path: str | None = None, *, recursive: bool = False) -> list[str]:
    """Child cgroups of ``path`` (default: the root), sorted."""
    base = path or root()
    out: list[str] = []
    for entry in sorted(os.scandir(base), key=lambda e: e.name):
        if entry.is_dir(follow_symlinks=False) and exists(entry.path):
            out.append(entry.path)
            if recursive:
                out += children(entry.path, recursive=True)
    return out


def cgroup_id(path: str | None = None) -> int:
    """The kernel's id of cgroup ``path`` (default: this process's cgroup)."""
    return os.stat(path or current()).st_ino
