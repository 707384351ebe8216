"""Memory fragments: zero, set and copy bytes on the stack, in map values or packets.

Sizes and offsets are constants, so everything is unrolled into the widest stores the
alignment allows (the verifier rejects misaligned stack access; ``base`` is assumed
8-byte aligned, as R10 and map values are).
"""

from __future__ import annotations

from .. import asm
from ..asm import R10, Register
from ..errors import AssemblerError
from ._call import set_reg

__all__ = ["memcpy", "memset", "zero", "zero_stack"]

_BY_WIDTH = {8: asm.DW, 4: asm.W, 2: asm.H, 1: asm.B}


def _chunks(off: int, size: int, other: int | None = None) -> list[tuple[int, int]]:
    """(offset, width) pieces covering [off, off+size), each naturally aligned (and aligned
    at the matching position of a buffer starting at ``other``, for copies)."""
    out = []
    pos, end = off, off + size
    while pos < end:
        for w in (8, 4, 2, 1):
            o = pos if other is None else other + (pos - off)
            if pos % w == 0 and o % w == 0 and pos + w <= end:
                out.append((pos, w))
                pos += w
                break
    return out


def zero(base: Register, off: int, size: int) -> list[asm.Instruction]:
    """``memset(base + off, 0, size)`` with immediate stores."""
    if size <= 0:
        raise AssemblerError(f"memory.zero: size {size} must be positive")
    return [asm.store_imm(_BY_WIDTH[w], base, o, 0) for o, w in _chunks(off, size)]


def zero_stack(off: int, size: int) -> list[asm.Instruction]:
    """Zero ``size`` bytes of the stack at ``r10 + off`` (``off`` negative)."""
    if off >= 0 or off + size > 0:
        raise AssemblerError(f"memory.zero_stack: [{off}, {off + size}) is not in the frame")
    return zero(R10, off, size)


def memset(base: Register, off: int, size: int, byte: int, *, tmp: Register | None = None
           ) -> list[asm.Instruction]:
    """``memset(base + off, byte, size)``. With ``tmp``, 8-byte stores of a register replace
    the 4-byte immediate stores (immediates are only 32 bits)."""
    if not 0 <= byte <= 0xFF:
        raise AssemblerError(f"memory.memset: byte {byte} is not in 0..255")
    if byte == 0:
        return zero(base, off, size)
    out: list[asm.Instruction] = []
    if tmp is not None:
        if tmp == base:
            raise AssemblerError("memory.memset: tmp must differ from base")
        out += set_reg(tmp, int.from_bytes(bytes([byte]) * 8, "little"))
    for o, w in _chunks(off, size):
        if w == 8 and tmp is not None:
            out.append(asm.store(asm.DW, base, o, tmp))
        elif w == 8:
            pat = int.from_bytes(bytes([byte]) * 4, "little")
            out += [asm.store_imm(asm.W, base, o, pat), asm.store_imm(asm.W, base, o + 4, pat)]
        else:
            out.append(asm.store_imm(_BY_WIDTH[w], base, o,
                                     int.from_bytes(bytes([byte]) * w, "little")))
    return out


def memcpy(dst: Register, dst_off: int, src: Register, src_off: int, size: int, *,
           tmp: Register) -> list[asm.Instruction]:
    """``memcpy(dst + dst_off, src + src_off, size)`` through ``tmp``, in the widest moves
    both offsets allow."""
    if size <= 0:
        raise AssemblerError(f"memory.memcpy: size {size} must be positive")
    if tmp in (dst, src):
        raise AssemblerError("memory.memcpy: tmp must differ from dst and src")
    out: list[asm.Instruction] = []
    for o, w in _chunks(dst_off, size, other=src_off):
        s = src_off + (o - dst_off)
        out += [asm.load(_BY_WIDTH[w], tmp, src, s), asm.store(_BY_WIDTH[w], dst, o, tmp)]
    return out
