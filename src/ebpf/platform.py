"""Facts about the machine the library runs on, in one place.

Architecture, page size (queried, not assumed), possible CPUs (what per-CPU maps are sized by,
not the online count), kernel version, bpffs/tracefs mount points (mounted on request) and the
effective capabilities. Reads /proc and /sys only; never calls bpf(2).
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ._sys.mount import mount, umount
from ._uapi import _arch

__all__ = [
    "ARCH",
    "Capability",
    "KernelVersion",
    "bpffs_mounts",
    "capabilities",
    "find_mount",
    "has_capability",
    "kernel_config",
    "kernel_version",
    "mount",
    "mount_bpffs",
    "page_size",
    "possible_cpus",
    "require_tracefs",
    "tracefs_path",
    "umount",
]

#: Normalised machine name: x86_64, aarch64, riscv64, s390x, ppc64le, arm, i386, loongarch64.
ARCH: str = _arch.ARCH


@functools.cache
def page_size() -> int:
    """The kernel page size in bytes (``sysconf(_SC_PAGESIZE)``)."""
    return os.sysconf("SC_PAGE_SIZE")


def parse_cpu_list(text: str) -> list[int]:
    """Parse the kernel's CPU list format (``"0-3,5,7-8"``)."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus


@functools.cache
def possible_cpus() -> int:
    """Number of possible CPUs: the count the kernel sizes per-CPU map values by.

    From ``/sys/devices/system/cpu/possible`` (highest id + 1), not the online count.
    """
    text = Path("/sys/devices/system/cpu/possible").read_text()
    return max(parse_cpu_list(text)) + 1


def online_cpus() -> list[int]:
    """Ids of the CPUs online now."""
    return parse_cpu_list(Path("/sys/devices/system/cpu/online").read_text())


@functools.total_ordering
@dataclass(frozen=True, slots=True)
class KernelVersion:
    """A kernel release as ``(major, minor, patch)``; compares with tuples and ``"5.9"`` strings."""

    major: int
    minor: int = 0
    patch: int = 0

    @classmethod
    def parse(cls, text: str) -> KernelVersion:
        m = re.match(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?", text.strip())
        if not m:
            raise ValueError(f"not a kernel version: {text!r}")
        return cls(int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0))

    def _key(self, other: object) -> tuple[int, int, int] | None:
        if isinstance(other, KernelVersion):
            return (other.major, other.minor, other.patch)
        if isinstance(other, str):
            o = KernelVersion.parse(other)
            return (o.major, o.minor, o.patch)
        if isinstance(other, tuple):
            padded = (*(int(x) for x in other), 0, 0, 0)[:3]
            return (padded[0], padded[1], padded[2])
        return None

    def __eq__(self, other: object) -> bool:
        k = self._key(other)
        return k is not None and (self.major, self.minor, self.patch) == k

    def __lt__(self, other: object) -> bool:
        k = self._key(other)
        if k is None:
            return NotImplemented
        return (self.major, self.minor, self.patch) < k

    def __hash__(self) -> int:
        return hash((self.major, self.minor, self.patch))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    @property
    def code(self) -> int:
        """``LINUX_VERSION_CODE`` (what ``kern_version`` of old kprobe loads expects)."""
        return (self.major << 16) | (self.minor << 8) | min(self.patch, 255)


@functools.cache
def kernel_version() -> KernelVersion:
    """The running kernel's version, from ``uname -r`` (Ubuntu's signature file when present)."""
    sig = Path("/proc/version_signature")
    if sig.exists():  # Ubuntu: "Ubuntu 5.4.0-42.46-generic 5.4.44"
        parts = sig.read_text().split()
        if parts:
            try:
                return KernelVersion.parse(parts[-1])
            except ValueError:
                pass
    return KernelVersion.parse(os.uname().release)


def kernel_config(path: str | os.PathLike[str] | None = None) -> dict[str, str] | None:
    """The running kernel's build configuration as ``{"CONFIG_BPF": "y", ...}`` (values as
    written: ``y``/``m``, numbers, quoted strings), or ``None`` when there is none to read.

    From ``path``, else ``/proc/config.gz`` (``CONFIG_IKCONFIG_PROC``), else
    ``/boot/config-$(uname -r)``: where libbpf looks for ``__kconfig`` values.
    ``# CONFIG_X is not set`` lines are left out (an unset option is absent).
    """
    import gzip

    candidates = [os.fspath(path)] if path is not None else [
        "/proc/config.gz", f"/boot/config-{os.uname().release}"]
    for cand in candidates:
        try:
            with open(cand, "rb") as f:
                raw = f.read(64 << 20)
        except OSError:
            continue
        if raw[:2] == b"\x1f\x8b":
            try:
                raw = gzip.decompress(raw)
            except (OSError, EOFError):
                continue
        out: dict[str, str] = {}
        for line in raw.decode("utf-8", "replace").splitlines():
            if not line.startswith("CONFIG_"):
                continue
            key, sep, value = line.partition("=")
            if sep:
                out[key.strip()] = value.strip()
        return out
    return None


# --- mounts ----------------------------------------------------------------------------------

def _mountinfo() -> list[tuple[str, str]]:
    """(mount point, fs type) for every mount of this process's mount namespace."""
    result = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields = left.split()
        fstype = right.split()[0] if right else ""
        point = fields[4].replace("\\040", " ") if len(fields) > 4 else ""
        result.append((point, fstype))
    return result


def find_mount(fstype: str) -> list[str]:
    """Mount points of filesystems of type ``fstype`` (e.g. ``"bpf"``, ``"tracefs"``)."""
    return [p for p, t in _mountinfo() if t == fstype]


def bpffs_mounts() -> list[str]:
    """Every bpffs mount point visible to this process."""
    return find_mount("bpf")


def is_mounted(path: str, fstype: str) -> bool:
    real = os.path.realpath(path)
    return any(os.path.realpath(p) == real and t == fstype for p, t in _mountinfo())


def mount_bpffs(path: str = "/sys/fs/bpf") -> str:
    """Make sure a bpffs is mounted at ``path`` (creating the directory); returns ``path``."""
    os.makedirs(path, exist_ok=True)
    if not is_mounted(path, "bpf"):
        mount("bpf", path, "bpf")
    return path


TRACEFS = "/sys/kernel/tracing"
DEBUGFS = "/sys/kernel/debug"
_TRACEFS_FIX = (f"mount -t tracefs tracefs {TRACEFS} (as root), or pass tracefs= the "
                "directory where it is mounted")


def _found_tracefs() -> str | None:
    points = find_mount("tracefs")
    for p in points:
        if p == TRACEFS:
            return p
    for p in points:
        if os.path.isfile(os.path.join(p, "available_events")):
            return p
    for p in find_mount("debugfs"):
        if os.path.isfile(os.path.join(p, "tracing", "available_events")):
            return os.path.join(p, "tracing")
    return None


def tracefs_path(mount_if_missing: bool = False) -> str | None:
    """Where tracefs is mounted (``/sys/kernel/tracing`` preferred, else another tracefs
    mount, else debugfs's ``tracing`` directory), or ``None``.

    With ``mount_if_missing`` it mounts tracefs at ``/sys/kernel/tracing`` (where the kernel
    creates the mount point, Linux 4.1) and, if that fails, debugfs at
    ``/sys/kernel/debug`` (whose ``tracing`` directory the kernel automounts); this needs
    ``CAP_SYS_ADMIN`` and raises :class:`OSError` from the first attempt when neither works.
    """
    found = _found_tracefs()
    if found is not None or not mount_if_missing:
        return found
    try:
        mount("tracefs", TRACEFS, "tracefs")
        return TRACEFS
    except OSError as first:
        try:
            if not is_mounted(DEBUGFS, "debugfs"):
                mount("debugfs", DEBUGFS, "debugfs")
        except OSError:
            raise first from None
        found = _found_tracefs()
        if found is None:
            raise first from None
        return found


def require_tracefs() -> str:
    """The tracefs directory, mounted first if this process may (root, ``CAP_SYS_ADMIN``):
    what tracepoint, kprobe and uprobe attachment use. Raises
    :class:`~ebpf.errors.NotSupportedError` naming the command that fixes it when tracefs
    is not mounted and cannot be mounted here."""
    from . import errors

    found = tracefs_path()
    if found is not None:
        return found
    if not has_capability(Capability.SYS_ADMIN):
        raise errors.NotSupportedError(
            "tracefs", detail=f"tracefs is not mounted and this process lacks CAP_SYS_ADMIN "
            f"to mount it: {_TRACEFS_FIX}")
    try:
        path = tracefs_path(mount_if_missing=True)
    except OSError as e:
        raise errors.NotSupportedError(
            "tracefs", detail=f"tracefs is not mounted and mounting it failed ({e}): "
            f"{_TRACEFS_FIX}; the kernel may lack CONFIG_TRACING") from None
    if path is None:
        raise errors.NotSupportedError(
            "tracefs", detail=f"tracefs is not mounted and could not be found after "
            f"mounting: {_TRACEFS_FIX}")
    return path


# --- capabilities ----------------------------------------------------------------------------

class Capability:
    """Capability numbers (``include/uapi/linux/capability.h``)."""

    NET_ADMIN = 12
    NET_RAW = 13
    SYS_ADMIN = 21
    SYS_RESOURCE = 24
    PERFMON = 38
    BPF = 39


def capabilities() -> int:
    """The effective capability set (``CapEff`` of ``/proc/self/status``) as a bit mask."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


def has_capability(*caps: int) -> bool:
    """True if every capability in ``caps`` is effective.

    ``CAP_BPF`` and ``CAP_PERFMON`` count as present when ``CAP_SYS_ADMIN`` is (kernels before
    5.8 know only the latter).
    """
    eff = capabilities()
    for c in caps:
        if eff & (1 << c):
            continue
        if c in (Capability.BPF, Capability.PERFMON) and eff & (1 << Capability.SYS_ADMIN):
            continue
        return False
    return True
