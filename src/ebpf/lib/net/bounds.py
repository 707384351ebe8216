"""Bounds checks the verifier accepts for direct packet access.

The verifier lets a program read ``ptr[0..n)`` of a packet only after it has compared
``ptr + n`` with ``data_end`` on this path. Each check here is that comparison: it copies the
pointer to ``tmp``, adds the length, and jumps to ``on_short`` when the result is past
``data_end``. Afterwards every register derived from ``ptr`` by constant offsets carries the
proven range, so the header fields can be loaded from ``ptr`` itself.

A variable length (an IPv4 IHL, a TCP data offset) needs an upper bound known to the
verifier first: mask or compare it before :func:`check_var`.
"""

from __future__ import annotations

from ... import asm
from ...asm import Register
from ...errors import AssemblerError

__all__ = ["check", "check_var"]


def check(ptr: Register, end: Register, size: int, on_short: str, *, tmp: Register
          ) -> asm.Fragment:
    """Jump to ``on_short`` unless ``ptr + size <= end`` (``size`` bytes readable at ptr)."""
    if tmp in (ptr, end):
        raise AssemblerError("bounds.check: tmp must differ from ptr and end")
    if not 0 < size <= 0xFFFF:
        raise AssemblerError(f"bounds.check: size {size} is not in 1..65535")
    return asm.Fragment(
        [asm.mov(tmp, ptr), asm.add(tmp, size), asm.jgt(tmp, end, on_short)],
        name=f"bounds_check_{size}",
    )


def check_var(ptr: Register, length: Register, end: Register, on_short: str, *,
              tmp: Register) -> asm.Fragment:
    """Jump to ``on_short`` unless ``ptr + length <= end`` for a length in a register.

    The verifier must already know an upper bound of ``length`` (below 64 KiB): mask it
    (``and_``) or branch on it first.
    """
    if tmp in (ptr, end, length):
        raise AssemblerError("bounds.check_var: tmp must differ from ptr, length and end")
    return asm.Fragment(
        [asm.mov(tmp, ptr), asm.add(tmp, length), asm.jgt(tmp, end, on_short)],
        name="bounds_check_var",
    )
