"""Architectures and ``struct pt_regs`` offsets for kprobe/uprobe programs.

x86_64, aarch64 and riscv64 come from :mod:`ebpf.link.perf_event`; s390x and ppc64le are
added here (the layouts libbpf's ``bpf_tracing.h`` reads):

* s390x ``user_pt_regs``: ``args[1]``, ``psw`` (mask, addr), ``gprs[16]``; arguments in
  r2-r6, the return value in r2, the stack pointer r15, the ip ``psw.addr``.
* ppc64le ``struct pt_regs``: ``gpr[32]``, ``nip``, ``msr``, ``orig_gpr3``, ``ctr``,
  ``link``...; arguments in r3-r10, the return value in r3, the stack pointer r1.
"""

from __future__ import annotations

from .. import platform
from ..errors import BPFError, NotSupportedError

__all__ = ["SUPPORTED", "normalize", "pt_regs_arg_offset", "pt_regs_offset",
           "pt_regs_return_offset", "supported_arch"]

SUPPORTED = ("x86_64", "aarch64", "riscv64", "s390x", "ppc64le")
_ALIASES = {"amd64": "x86_64", "x86-64": "x86_64", "arm64": "aarch64", "s390": "s390x",
            "ppc64": "ppc64le", "powerpc64le": "ppc64le", "riscv": "riscv64"}

_PPC_NAMED = ("nip", "msr", "orig_gpr3", "ctr", "link", "xer", "ccr", "softe", "trap",
              "dar", "dsisr", "result")


def normalize(arch: str) -> str:
    """Canonical name of ``arch`` (``arm64`` -> ``aarch64``...)."""
    a = arch.strip().lower()
    return _ALIASES.get(a, a)


def supported_arch(arch: str | None = None) -> bool:
    """Whether the library knows the pt_regs layout and calling convention of ``arch``
    (default: this machine)."""
    return normalize(arch or platform.ARCH) in SUPPORTED


def _s390(reg: str) -> int:
    r = reg.lstrip("%")
    if r in ("ip", "pc", "psw.addr"):
        return 16
    if r == "psw.mask":
        return 8
    if r == "sp":
        r = "r15"
    if r.startswith(("r", "gpr")) and r.lstrip("gpr").isdigit() and int(r.lstrip("gpr")) < 16:
        return 24 + 8 * int(r.lstrip("gpr"))
    raise BPFError(f"unknown register {reg!r} for s390x")


def _ppc(reg: str) -> int:
    r = reg.lstrip("%")
    if r == "sp":
        r = "r1"
    if r in ("ip", "pc"):
        r = "nip"
    if r == "lr":
        r = "link"
    if r in _PPC_NAMED:
        return 32 * 8 + 8 * _PPC_NAMED.index(r)
    n = r[1:] if r.startswith("r") else r[3:] if r.startswith("gpr") else ""
    if n.isdigit() and int(n) < 32:
        return 8 * int(n)
    raise BPFError(f"unknown register {reg!r} for ppc64le")


def pt_regs_offset(register: str, arch: str | None = None) -> int:
    """Byte offset of ``register`` in a kprobe program's context on ``arch``."""
    a = normalize(arch or platform.ARCH)
    if a == "s390x":
        return _s390(register.lower())
    if a == "ppc64le":
        return _ppc(register.lower())
    if a not in SUPPORTED:
        raise NotSupportedError(f"pt_regs layout for {a}")
    from ..link import perf_event

    try:
        return perf_event.pt_regs_offset(register, a)
    except ValueError as e:
        raise BPFError(str(e)) from None


_ARGS = {"s390x": ("r2", "r3", "r4", "r5", "r6"),
         "ppc64le": tuple(f"r{i}" for i in range(3, 11))}
_RET = {"s390x": "r2", "ppc64le": "r3"}


def pt_regs_arg_offset(n: int, arch: str | None = None) -> int:
    """Offset of the ``n``-th (from 0) register argument (``PT_REGS_PARM{n+1}``)."""
    a = normalize(arch or platform.ARCH)
    if a in _ARGS:
        regs = _ARGS[a]
        if not 0 <= n < len(regs):
            raise BPFError(f"argument {n} is not passed in a register on {a} "
                           f"(0..{len(regs) - 1} are)")
        return pt_regs_offset(regs[n], a)
    from ..link import perf_event

    try:
        return perf_event.pt_regs_arg_offset(n, a)
    except ValueError as e:
        raise BPFError(str(e)) from None


def pt_regs_return_offset(arch: str | None = None) -> int:
    """Offset of the return value (``PT_REGS_RC``)."""
    a = normalize(arch or platform.ARCH)
    if a in _RET:
        return pt_regs_offset(_RET[a], a)
    from ..link import perf_event

    return perf_event.pt_regs_return_offset(a)
