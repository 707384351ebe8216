"""Clocks and pseudo-random numbers.

Each clock function calls its helper and leaves the value in R0 (or ``dst``); R1-R5 are
clobbered, as by any call.

* :func:`ktime_ns` - ``CLOCK_MONOTONIC`` (``bpf_ktime_get_ns``, Linux 4.1)
* :func:`boot_ns` - ``CLOCK_BOOTTIME``, counts suspend (``bpf_ktime_get_boot_ns``, 5.8)
* :func:`coarse_ns` - ``CLOCK_MONOTONIC_COARSE``, tick resolution (helper id 160, 5.11;
  the seed library called 190, which is ``xdp_store_bytes``)
* :func:`tai_ns` - ``CLOCK_TAI`` (``bpf_ktime_get_tai_ns``, 6.1)
* :func:`jiffies64` - the jiffies counter (5.5)
* :func:`prandom_u32` and friends - ``bpf_get_prandom_u32`` (not cryptographic)
"""

from __future__ import annotations

from .. import asm
from ..asm import R0, Helper, Register
from ..errors import AssemblerError

__all__ = [
    "boot_ns",
    "chance",
    "coarse_ns",
    "elapsed_ns",
    "jiffies64",
    "ktime_ns",
    "percentage",
    "prandom_u32",
    "random_below",
    "random_range",
    "tai_ns",
    "weighted_pick",
]


def _get(helper: Helper, dst: Register) -> list[asm.Instruction]:
    out = [asm.call(helper)]
    if dst != R0:
        out.append(asm.mov(dst, R0))
    return out


def ktime_ns(dst: Register = R0) -> list[asm.Instruction]:
    """``dst = bpf_ktime_get_ns()`` (CLOCK_MONOTONIC)."""
    return _get(Helper.KTIME_GET_NS, dst)


def boot_ns(dst: Register = R0) -> list[asm.Instruction]:
    """``dst = bpf_ktime_get_boot_ns()`` (CLOCK_BOOTTIME)."""
    return _get(Helper.KTIME_GET_BOOT_NS, dst)


def coarse_ns(dst: Register = R0) -> list[asm.Instruction]:
    """``dst = bpf_ktime_get_coarse_ns()`` (CLOCK_MONOTONIC_COARSE)."""
    return _get(Helper.KTIME_GET_COARSE_NS, dst)


def tai_ns(dst: Register = R0) -> list[asm.Instruction]:
    """``dst = bpf_ktime_get_tai_ns()`` (CLOCK_TAI)."""
    return _get(Helper.KTIME_GET_TAI_NS, dst)


def jiffies64(dst: Register = R0) -> list[asm.Instruction]:
    """``dst = bpf_jiffies64()``."""
    return _get(Helper.JIFFIES64, dst)


def prandom_u32(dst: Register = R0) -> list[asm.Instruction]:
    """``dst = bpf_get_prandom_u32()``."""
    return _get(Helper.GET_PRANDOM_U32, dst)


def elapsed_ns(dst: Register, since: Register) -> list[asm.Instruction]:
    """``dst = ktime_ns() - since``; ``since`` must survive the call (R6-R9)."""
    if not Register.R6 <= since <= Register.R9:
        raise AssemblerError("time.elapsed_ns: since must be in R6-R9 (the call clobbers R0-R5)")
    return [asm.call(Helper.KTIME_GET_NS), asm.sub(R0, since),
            *([] if dst == R0 else [asm.mov(dst, R0)])]


def random_below(n: int, dst: Register = R0) -> list[asm.Instruction]:
    """``dst = prandom_u32() % n`` for ``1 <= n <= 2**32`` (a mask when n is a power of 2;
    otherwise the modulo bias is below ``n / 2**32``)."""
    if not 1 <= n <= 1 << 32:
        raise AssemblerError(f"time.random_below: n={n} is not in 1..2**32")
    out = [asm.call(Helper.GET_PRANDOM_U32)]
    if n == 1 << 32:
        pass
    elif n & (n - 1) == 0:
        out.append(asm.and32(R0, n - 1))
    else:
        out.append(asm.mod32(R0, n))
    if dst != R0:
        out.append(asm.mov(dst, R0))
    return out


def random_range(lo: int, hi: int, dst: Register = R0) -> list[asm.Instruction]:
    """``dst`` = a pseudo-random integer in ``[lo, hi)``."""
    if not lo < hi:
        raise AssemblerError(f"time.random_range: empty range [{lo}, {hi})")
    out = random_below(hi - lo, R0)
    if lo:
        out.append(asm.add(R0, lo))
    if dst != R0:
        out.append(asm.mov(dst, R0))
    return out


def chance(numerator: int, denominator: int, target: str) -> list[asm.Instruction]:
    """Jump to ``target`` with probability ``numerator / denominator`` (clobbers R0-R5)."""
    if not 0 <= numerator <= denominator or denominator <= 0:
        raise AssemblerError(f"time.chance: bad probability {numerator}/{denominator}")
    return [*random_below(denominator), asm.jlt(R0, numerator, target)]


def percentage(pct: int, target: str) -> list[asm.Instruction]:
    """Jump to ``target`` in ``pct`` percent of the runs."""
    return chance(pct, 100, target)


def weighted_pick(weights: list[int], dst: Register) -> asm.Fragment:
    """``dst`` = an index into ``weights`` picked with probability ``weights[i] / sum``
    (clj-ebpf weighted random selection; e.g. backends of a load balancer). Clobbers R0-R5;
    ``dst`` may be any register but R10."""
    if not weights or any(w < 0 for w in weights) or not 0 < sum(weights) <= 1 << 32:
        raise AssemblerError(f"time.weighted_pick: bad weights {weights!r}")
    items: list[asm.Item] = [*random_below(sum(weights))]
    acc = 0
    live = [i for i, w in enumerate(weights) if w]
    for i in live[:-1]:
        acc += weights[i]
        items += [asm.mov(dst, i), asm.jlt(R0, acc, "done")] if acc <= 0x7FFF_FFFF else [
            asm.mov(dst, i), asm.mov32(asm.R1, acc), asm.jlt(R0, asm.R1, "done")]
    items += [asm.mov(dst, live[-1]), asm.label("done")]
    return asm.Fragment(items, name="weighted_pick")
