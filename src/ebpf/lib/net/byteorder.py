"""Network byte order: loads and stores that convert, and the constants to compare with.

BPF runs in the host's byte order, packets are big-endian. Two representations of a header
field appear in programs:

* **host order**: the number itself (port 53 is ``53``). :func:`load_be` gives this:
  a load followed by ``to_be`` (``BPF_END | BPF_TO_BE``, a byte swap on little-endian hosts,
  nothing on big-endian ones; ``be16_to_cpu`` and ``cpu_to_be16`` are the same operation).
* **wire order**: what a plain ``asm.load`` of the field gives, the bytes as they are in the
  packet read as a native integer. Checksum arithmetic and copies work on these.
  :func:`htons`/:func:`htonl` turn a Python constant into its wire-order integer, so a field
  can be compared without swapping it at run time.

The seed library had ``to_be``/``to_le`` swapped (its "to big endian" emitted ``BPF_TO_LE``),
which made every conversion a no-op on x86; here the opcodes come from :mod:`ebpf.asm`, and a
kernel test reads a known EtherType and port through these functions.
"""

from __future__ import annotations

import sys

from ... import asm
from ...asm import Register
from ...errors import AssemblerError

__all__ = [
    "htonl",
    "htons",
    "load_be",
    "ntohl",
    "ntohs",
    "store_be",
    "store_be_imm",
    "wire",
]

_BITS = {asm.B: 8, asm.H: 16, asm.W: 32, asm.DW: 64}
_BYTES = {asm.B: 1, asm.H: 2, asm.W: 4, asm.DW: 8}


def wire(value: int, size: int | asm.Size) -> int:
    """The native integer whose bytes are ``value`` big-endian in ``size`` bytes."""
    n = _BYTES[size] if isinstance(size, asm.Size) else size
    if not 0 <= value < (1 << (8 * n)):
        raise ValueError(f"{value} does not fit in {n} bytes")
    return int.from_bytes(value.to_bytes(n, "big"), sys.byteorder)


def htons(value: int) -> int:
    """``htons`` for a constant: the wire-order integer of a 16-bit host value."""
    return wire(value, 2)


def htonl(value: int) -> int:
    """``htonl`` for a constant: the wire-order integer of a 32-bit host value."""
    return wire(value, 4)


ntohs = htons
ntohl = htonl


def load_be(size: asm.Size, dst: Register, base: Register, off: int = 0) -> list[asm.Instruction]:
    """``dst = be<size>_to_cpu(*(u<size> *)(base + off))``: a network-order field in host order."""
    insns = [asm.load(size, dst, base, off)]
    if size != asm.B:
        insns.append(asm.to_be(dst, _BITS[size]))
    return insns


def store_be(size: asm.Size, base: Register, off: int, src: Register, *,
             tmp: Register | None = None) -> list[asm.Instruction]:
    """``*(u<size> *)(base + off) = cpu_to_be<size>(src)``.

    The swap happens in ``tmp`` (src is kept); ``tmp=None`` or ``tmp=src`` swaps ``src`` in
    place, leaving it in wire order.
    """
    if size == asm.B:
        return [asm.store(size, base, off, src)]
    t = src if tmp is None else tmp
    if t == base:
        raise AssemblerError("store_be: tmp must not be the base register")
    insns = [] if t == src else [asm.mov(t, src)]
    return [*insns, asm.to_be(t, _BITS[size]), asm.store(size, base, off, t)]


def store_be_imm(size: asm.Size, base: Register, off: int, value: int) -> list[asm.Instruction]:
    """``*(u<size> *)(base + off) = cpu_to_be<size>(value)`` for a constant (B, H or W)."""
    if size == asm.DW:
        raise AssemblerError("store_be_imm: 64-bit immediates do not fit a store; use a register")
    return [asm.store_imm(size, base, off, wire(value, size))]
