"""``TRACEPOINT`` programs: read the event record with offsets from the tracefs format.

``fmt`` is an :class:`ebpf.link.tracepoint.TracepointFormat`, read from the running kernel
by :func:`format` (``/sys/kernel/tracing/events/<category>/<name>/format``), or parsed
from text with :func:`ebpf.link.tracepoint.parse_format`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import asm
from .._types import ProgramType
from ..asm import R1, Register
from ..errors import AssemblerError
from ._common import ret, save_ctx

if TYPE_CHECKING:
    from ..link.tracepoint import TracepointFormat

__all__ = ["PROGRAM_TYPE", "data_loc", "field", "format", "ret", "save_ctx"]

PROGRAM_TYPE = ProgramType.TRACEPOINT
_SIZES = {1: asm.B, 2: asm.H, 4: asm.W, 8: asm.DW}


def format(category: str, name: str) -> TracepointFormat:
    """The running kernel's layout of tracepoint ``category:name`` (reads tracefs)."""
    from ..link.tracepoint import tracepoint_format

    return tracepoint_format(category, name)


def field(dst: Register, fmt: TracepointFormat, name: str, ctx: Register = R1, *,
          index: int | None = None, signed: bool | None = None) -> list[asm.Instruction]:
    """``dst = record->name`` (or ``record->name[index]``) with the field's offset and size.

    Signed fields narrower than 8 bytes are sign-extended (``signed=False`` to keep the raw
    bits) with a load and two shifts, not ISA v4's sign-extending load, so the code loads on
    every kernel (``ldsx`` needs 6.6); ``__data_loc`` fields give their u32 descriptor (see
    :func:`data_loc`).
    """
    f = fmt[name]
    size = f.size
    off = f.offset
    if f.is_array and not f.dynamic:
        if index is None:
            raise AssemblerError(f"{name} is an array: pass index=")
        n = f.array_len or 0
        elem = size // n if n else 1
        if n and not 0 <= index < n:
            raise AssemblerError(f"{name}[{index}] is out of range 0..{n - 1}")
        off, size = off + index * elem, elem
    elif index is not None:
        raise AssemblerError(f"{name} is not an array")
    if size not in _SIZES:
        raise AssemblerError(f"{name} is {size} bytes: not loadable into a register")
    sign = f.signed if signed is None else signed
    if sign and size < 8 and not f.dynamic:
        shift = 64 - 8 * size
        return [asm.load(_SIZES[size], dst, ctx, off), asm.lsh(dst, shift),
                asm.arsh(dst, shift)]
    return [asm.load(_SIZES[size], dst, ctx, off)]


def data_loc(dst: Register, fmt: TracepointFormat, name: str, ctx: Register = R1, *,
             length: Register | None = None) -> list[asm.Instruction]:
    """``dst`` = pointer to the data of a ``__data_loc`` field (a string, an array) inside
    the record, ``length`` (if given) = its size in bytes. Read it with
    ``bpf_probe_read_kernel`` (the record is not directly addressable past its fixed part).
    """
    f = fmt[name]
    if not f.dynamic:
        raise AssemblerError(f"{name} is not a __data_loc/__rel_loc field")
    if dst == ctx or length in (ctx, dst):
        raise AssemblerError("tracepoint.data_loc: dst, length and ctx must differ")
    out = [asm.load(asm.W, dst, ctx, f.offset)]
    if length is not None:
        out += [asm.mov(length, dst), asm.rsh(length, 16)]
    out.append(asm.and_(dst, 0xFFFF))
    if f.dynamic == "__rel_loc":
        out.append(asm.add(dst, f.offset + f.size))
    out.append(asm.add(dst, ctx))
    return out
