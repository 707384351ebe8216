"""Atomic counters and bits in map values (clj-ebpf ``atomic-increment``... and
``cas-loop``). ``ptr`` is a map value pointer (or any writable non-stack memory);
``tmp`` is clobbered. Fetching forms (``fetch=True``, ``xchg``, ``cmpxchg``) need 5.12;
plain ``atomic_add`` is older (4.x, ``BPF_XADD``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .. import asm
from ..asm import R0, Register
from ..errors import AssemblerError
from ._call import set_reg

__all__ = ["cas_loop", "clear_bit", "decrement", "increment", "set_bit", "toggle_bit"]

_SIZES = {4: asm.W, 8: asm.DW}


def _size(size: int, what: str) -> asm.Size:
    if size not in _SIZES:
        raise AssemblerError(f"atomics.{what}: size {size} is not 4 or 8")
    return _SIZES[size]


def increment(ptr: Register, off: int = 0, *, by: int = 1, tmp: Register, size: int = 8,
              fetch: bool = False) -> list[asm.Instruction]:
    """``lock *(ptr + off) += by``; with ``fetch``, ``tmp`` gets the old value."""
    if tmp == ptr:
        raise AssemblerError("atomics.increment: tmp must differ from ptr")
    return [*set_reg(tmp, by), asm.atomic_add(_size(size, "increment"), ptr, tmp, off,
                                              fetch=fetch)]


def decrement(ptr: Register, off: int = 0, *, by: int = 1, tmp: Register, size: int = 8,
              fetch: bool = False) -> list[asm.Instruction]:
    """``lock *(ptr + off) -= by``."""
    return increment(ptr, off, by=-by, tmp=tmp, size=size, fetch=fetch)


def _bit(op: str, ptr: Register, bit: int, off: int, tmp: Register, size: int, fetch: bool
         ) -> list[asm.Instruction]:
    sz = _size(size, op)
    if not 0 <= bit < size * 8:
        raise AssemblerError(f"atomics.{op}: bit {bit} outside a {size}-byte word")
    if tmp == ptr:
        raise AssemblerError(f"atomics.{op}: tmp must differ from ptr")
    mask = 1 << bit
    if op == "clear_bit":
        mask = ~mask & ((1 << (size * 8)) - 1)
        if size == 8:
            mask -= 1 << 64 if mask >> 63 else 0
    fn = {"set_bit": asm.atomic_or, "clear_bit": asm.atomic_and,
          "toggle_bit": asm.atomic_xor}[op]
    return [*set_reg(tmp, mask), fn(sz, ptr, tmp, off, fetch=fetch)]


def set_bit(ptr: Register, bit: int, off: int = 0, *, tmp: Register, size: int = 8,
            fetch: bool = False) -> list[asm.Instruction]:
    """``lock *(ptr + off) |= 1 << bit``."""
    return _bit("set_bit", ptr, bit, off, tmp, size, fetch)


def clear_bit(ptr: Register, bit: int, off: int = 0, *, tmp: Register, size: int = 8,
              fetch: bool = False) -> list[asm.Instruction]:
    """``lock *(ptr + off) &= ~(1 << bit)``."""
    return _bit("clear_bit", ptr, bit, off, tmp, size, fetch)


def toggle_bit(ptr: Register, bit: int, off: int = 0, *, tmp: Register, size: int = 8,
               fetch: bool = False) -> list[asm.Instruction]:
    """``lock *(ptr + off) ^= 1 << bit``."""
    return _bit("toggle_bit", ptr, bit, off, tmp, size, fetch)


def cas_loop(ptr: Register, off: int, update: Callable[[Register, Register],
                                                         Sequence[asm.Item]], *,
             new: Register, tries: int = 8, on_fail: str, size: int = 8) -> asm.Fragment:
    """Read-modify-write with ``cmpxchg``.

    ``update(old, new)`` computes ``new`` from ``old`` (R1) without calls, leaving R0 and R1
    alone; the store is retried while another CPU changed the value, at most ``tries`` times
    (unrolled: the verifier wants bounded loops), then ``on_fail``. R0 holds the value
    replaced. Clobbers R0, R1. 5.12."""
    sz = _size(size, "cas_loop")
    if new in (ptr, R0) or ptr == R0:
        raise AssemblerError("atomics.cas_loop: new and ptr must differ from each other and R0")
    if not 1 <= tries <= 64:
        raise AssemblerError(f"atomics.cas_loop: tries={tries} is not in 1..64")
    items: list[asm.Item] = []
    for i in range(tries):
        items += [asm.label(f"try{i}"), asm.load(sz, R0, ptr, off), asm.mov(asm.R1, R0),
                  asm.Fragment(list(update(asm.R1, new)), name=f"update{i}"),
                  asm.atomic_cmpxchg(sz, ptr, new, off),
                  asm.jeq(R0, asm.R1, "done")]
    items += [asm.ja(on_fail), asm.label("done")]
    return asm.Fragment(items, name="cas_loop")
