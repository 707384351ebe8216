"""Per-architecture syscall numbers and ioctl encoding, chosen once at import.

Numbers are the kernel's ``__NR_bpf`` / ``__NR_perf_event_open`` for each ABI (from
``arch/*/entry/syscalls`` tables and ``include/uapi/asm-generic/unistd.h``). The generic table
(aarch64, riscv64, loongarch64) shares one set of numbers.
"""

from __future__ import annotations

import os
import struct

__all__ = [
    "ARCH",
    "NR_BPF",
    "NR_PERF_EVENT_OPEN",
    "POINTER_SIZE",
    "SYSCALLS",
    "UnsupportedArchitectureError",
    "ioc",
    "normalize_machine",
]


class UnsupportedArchitectureError(RuntimeError):
    """The machine's architecture has no known bpf(2) syscall number."""


#: machine name -> (bpf, perf_event_open)
SYSCALLS: dict[str, tuple[int, int]] = {
    "x86_64": (321, 298),
    "i386": (357, 336),
    "aarch64": (280, 241),
    "riscv64": (280, 241),
    "loongarch64": (280, 241),
    "arm": (386, 364),
    "s390x": (351, 331),
    "ppc64le": (361, 319),
    "ppc64": (361, 319),
}

_ALIASES = {
    "amd64": "x86_64",
    "x64": "x86_64",
    "i486": "i386",
    "i586": "i386",
    "i686": "i386",
    "x86": "i386",
    "arm64": "aarch64",
    "armv7l": "arm",
    "armv6l": "arm",
    "armv8l": "arm",
    "loong64": "loongarch64",
}


def normalize_machine(machine: str) -> str:
    """Map ``uname -m`` spellings to the names used in :data:`SYSCALLS`."""
    m = machine.lower()
    m = _ALIASES.get(m, m)
    if m.startswith("arm") and m not in SYSCALLS:
        m = "arm"
    return m


def _detect() -> str:
    m = normalize_machine(os.uname().machine)
    # A 32-bit Python on a 64-bit kernel uses the 32-bit syscall ABI.
    if struct.calcsize("P") == 4:
        m = {"x86_64": "i386", "aarch64": "arm"}.get(m, m)
    return m


ARCH: str = _detect()
POINTER_SIZE: int = struct.calcsize("P")

try:
    NR_BPF, NR_PERF_EVENT_OPEN = SYSCALLS[ARCH]
except KeyError:  # pragma: no cover - exotic machines
    NR_BPF = NR_PERF_EVENT_OPEN = -1


# ioctl request encoding (include/uapi/asm-generic/ioctl.h; powerpc and mips differ).
if ARCH.startswith("ppc") or ARCH.startswith("mips"):
    _IOC_NONE, _IOC_WRITE, _IOC_READ, _SIZEBITS = 1, 4, 2, 13
else:
    _IOC_NONE, _IOC_WRITE, _IOC_READ, _SIZEBITS = 0, 1, 2, 14
_NRSHIFT, _TYPESHIFT, _SIZESHIFT = 0, 8, 16
_DIRSHIFT = _SIZESHIFT + _SIZEBITS


def ioc(direction: str, type_: str, nr: int, size: int = 0) -> int:
    """Encode an ioctl request: ``direction`` is "" (none), "w", "r" or "rw"."""
    d = {"": _IOC_NONE, "w": _IOC_WRITE, "r": _IOC_READ, "rw": _IOC_READ | _IOC_WRITE}[direction]
    return (d << _DIRSHIFT) | (ord(type_) << _TYPESHIFT) | (nr << _NRSHIFT) | (size << _SIZESHIFT)
