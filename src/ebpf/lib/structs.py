"""Record layouts declared once in Python, used by programs and by userspace alike.

::

    Event = structs.Struct("Event", [
        ("ts", "u64"), ("pid", "u32"), ("saddr", "be32"), ("dport", "be16"),
        ("proto", "u8"), ("comm", "char[16]"),
    ])
    Event.size, Event.offset("pid")                 # C layout: natural alignment, padding
    Event.store(R0, "pid", R7)                       # in a program: *(u32 *)(r0 + 8) = r7
    Event.decode(record).pid                         # in Python: a named tuple
    ebpf.Map.create(..., value=Event.codec)          # maps encode/decode the same layout
    batch.numpy(Event.dtype)                         # numpy views of ring buffer batches

Field types: ``u8 u16 u32 u64 s8 s16 s32 s64`` (host order), ``be16 be32 be64`` (network
order: decoded to the number, stored from constants in host form), ``char[N]`` (decoded
as bytes up to the first NUL), ``u8[N]`` (raw bytes), and arrays of the integer types
(``u32[4]``, decoded as tuples). Fields are laid out as a C compiler would: each at its
natural alignment, the size rounded up to the largest alignment.

``Struct(..., packed=True)`` lays fields end to end with no padding, like
``__attribute__((packed))`` (clj-ebpf's ``defevent``: its 44-byte ``ConnectionEvent`` is
48 bytes with C alignment). Programs may store misaligned fields of a packed record in a
ring buffer record or map value (x86-64, arm64 allow it; loads with
``BPF_F_STRICT_ALIGNMENT`` do not), never on the stack, where the verifier always wants
natural alignment.
"""

from __future__ import annotations

import collections
import re
import struct
import sys
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from .. import asm
from .._codec import Codec
from ..asm import Register
from ..errors import AssemblerError
from . import memory

__all__ = ["Field", "Struct"]

_SCALARS: dict[str, tuple[int, bool, bool]] = {  # name -> (size, signed, big-endian)
    "u8": (1, False, False), "u16": (2, False, False), "u32": (4, False, False),
    "u64": (8, False, False), "s8": (1, True, False), "s16": (2, True, False),
    "s32": (4, True, False), "s64": (8, True, False), "be16": (2, False, True),
    "be32": (4, False, True), "be64": (8, False, True), "char": (1, False, False),
}
_FMT = {(1, False): "B", (2, False): "H", (4, False): "I", (8, False): "Q",
        (1, True): "b", (2, True): "h", (4, True): "i", (8, True): "q"}
_SIZE = {1: asm.B, 2: asm.H, 4: asm.W, 8: asm.DW}
_TYPE = re.compile(r"^\s*(\w+)\s*(?:\[\s*(\d+)\s*\])?\s*$")


class Field(NamedTuple):
    """One member of a :class:`Struct`."""

    name: str
    type: str  #: the declared type, e.g. ``"be16"`` or ``"char[16]"``
    offset: int
    elem_size: int
    array_len: int  #: 0 for a scalar, N for an array
    signed: bool
    big_endian: bool

    @property
    def size(self) -> int:
        return self.elem_size * max(self.array_len, 1)

    @property
    def is_bytes(self) -> bool:
        return self.array_len > 0 and self.elem_size == 1 and self.type.startswith(("char", "u8"))


class Struct:
    """A C struct layout with emitters for programs and codecs for Python (see module docs)."""

    def __init__(self, name: str, fields: Sequence[tuple[str, str]], *,
                 packed: bool = False) -> None:
        if not fields:
            raise ValueError(f"struct {name} has no fields")
        self.name = name
        self.packed = packed
        out: list[Field] = []
        off = 0
        align = 1
        for fname, ftype in fields:
            if not fname.isidentifier() or fname.startswith("_"):
                raise ValueError(f"{name}: bad field name {fname!r}")
            m = _TYPE.match(ftype)
            if not m or m.group(1) not in _SCALARS:
                raise ValueError(f"{name}.{fname}: unknown type {ftype!r} "
                                 f"(known: {', '.join(_SCALARS)}, arrays as u32[4])")
            size, signed, be = _SCALARS[m.group(1)]
            count = int(m.group(2)) if m.group(2) else 0
            if m.group(1) == "char" and not count:
                count = 1
            if m.group(2) and count == 0:
                raise ValueError(f"{name}.{fname}: zero-length array")
            if not packed:
                off = (off + size - 1) // size * size
                align = max(align, size)
            out.append(Field(fname, ftype.replace(" ", ""), off, size, count, signed, be))
            off += size * max(count, 1)
        self.align = align
        self.size = (off + align - 1) // align * align
        self.fields: dict[str, Field] = {f.name: f for f in out}
        if len(self.fields) != len(out):
            raise ValueError(f"struct {name}: duplicate field names")
        self.tuple_type: type[Any] = collections.namedtuple(name, [f.name for f in out])  # type: ignore[misc]
        self._struct = struct.Struct("=" + self._format())
        self._codec: StructLayoutCodec | None = None

    # --- layout ---------------------------------------------------------------------------
    def _format(self) -> str:
        parts = []
        pos = 0
        for f in self.fields.values():
            if f.offset > pos:
                parts.append(f"{f.offset - pos}x")
            if f.is_bytes:
                parts.append(f"{f.array_len}s")
            else:
                parts.append(f"{max(f.array_len, 1)}{_FMT[(f.elem_size, f.signed)]}")
            pos = f.offset + f.size
        if self.size > pos:
            parts.append(f"{self.size - pos}x")
        return "".join(parts)

    @property
    def format(self) -> str:
        """A native :mod:`struct` format of the layout (big-endian fields read as native)."""
        return self._struct.format

    def offset(self, name: str) -> int:
        return self.field(name).offset

    def field(self, name: str) -> Field:
        try:
            return self.fields[name]
        except KeyError:
            raise AssemblerError(f"struct {self.name} has no field {name!r} "
                                 f"(fields: {', '.join(self.fields)})") from None

    def __repr__(self) -> str:
        inner = ", ".join(f"{f.name}: {f.type} @{f.offset}" for f in self.fields.values())
        return f"Struct({self.name}, size={self.size}{', packed' if self.packed else ''}, {inner})"

    def _elem(self, name: str, index: int | None) -> tuple[Field, int]:
        f = self.field(name)
        if index is None:
            if f.array_len and not f.is_bytes:
                raise AssemblerError(f"{self.name}.{name} is an array: pass index=")
            if f.is_bytes and f.array_len > 1:
                raise AssemblerError(f"{self.name}.{name} is {f.array_len} bytes: use store_bytes")
            return f, f.offset
        if not 0 <= index < max(f.array_len, 1):
            raise AssemblerError(f"{self.name}.{name}: index {index} out of range")
        return f, f.offset + index * f.elem_size

    # --- program side ---------------------------------------------------------------------
    def store(self, base: Register, name: str, src: Register | int, *, off: int = 0,
              index: int | None = None) -> asm.Instruction:
        """``((struct name *)(base + off))->name = src``.

        A register is stored as it is (for a ``be*`` field it must already be in network
        order, e.g. loaded from a packet); a constant is converted for ``be*`` fields. An
        8-byte constant must fit a sign-extended s32 (use a register otherwise).
        """
        f, o = self._elem(name, index)
        size = _SIZE[f.elem_size]
        if isinstance(src, Register):
            return asm.store(size, base, off + o, src)
        value = int(src)
        if f.big_endian:
            value = int.from_bytes(value.to_bytes(f.elem_size, "big"), sys.byteorder)
        if f.elem_size == 8 and not -0x8000_0000 <= value <= 0x7FFF_FFFF:
            raise AssemblerError(f"{self.name}.{name}: {value} does not fit a store "
                                 "immediate; put it in a register")
        return asm.store_imm(size, base, off + o, value)

    def load(self, dst: Register, base: Register, name: str, *, off: int = 0,
             index: int | None = None) -> asm.Instruction:
        """``dst = ((struct name *)(base + off))->name`` (as stored: no byte swap)."""
        f, o = self._elem(name, index)
        return asm.load(_SIZE[f.elem_size], dst, base, off + o)

    def zero(self, base: Register, off: int = 0) -> list[asm.Instruction]:
        """Zero the whole record at ``base + off`` (fields and padding)."""
        return memory.zero(base, off, self.size)

    def store_bytes(self, base: Register, name: str, src: Register, src_off: int, *,
                    tmp: Register, off: int = 0) -> list[asm.Instruction]:
        """Copy a ``char[N]``/``u8[N]`` field from ``src + src_off`` (e.g. a stack buffer)."""
        f = self.field(name)
        if not f.is_bytes:
            raise AssemblerError(f"{self.name}.{name} is not a byte array")
        return memory.memcpy(base, off + f.offset, src, src_off, f.size, tmp=tmp)

    # --- Python side ----------------------------------------------------------------------
    def decode(self, data: bytes | bytearray | memoryview, offset: int = 0) -> Any:
        """A named tuple of the record at ``data[offset:]``."""
        raw = self._struct.unpack_from(data, offset)
        vals: list[Any] = []
        i = 0
        for f in self.fields.values():
            if f.is_bytes:
                v: Any = raw[i]
                if f.type.startswith("char"):
                    v = v.split(b"\0", 1)[0]
                i += 1
            else:
                n = max(f.array_len, 1)
                items = list(raw[i:i + n])
                if f.big_endian:
                    items = [_swap(x, f.elem_size) for x in items]
                v = tuple(items) if f.array_len else items[0]
                i += n
            vals.append(v)
        return self.tuple_type(*vals)

    def encode(self, values: Mapping[str, Any] | Sequence[Any] | None = None, **kw: Any
               ) -> bytes:
        """The record's bytes from a mapping, a (named) tuple, or keywords; missing fields
        are 0 (or empty)."""
        if values is None:
            given: dict[str, Any] = {}
        elif isinstance(values, Mapping):
            given = dict(values)
        else:
            if len(values) != len(self.fields):
                raise ValueError(f"{self.name} has {len(self.fields)} fields, got "
                                 f"{len(values)} values")
            given = dict(zip(self.fields, values, strict=True))
        given.update(kw)
        unknown = set(given) - set(self.fields)
        if unknown:
            raise ValueError(f"{self.name} has no field(s) {sorted(unknown)}")
        flat: list[Any] = []
        for f in self.fields.values():
            v = given.get(f.name)
            if f.is_bytes:
                b = bytes(v or b"")
                if len(b) > f.array_len:
                    raise ValueError(f"{self.name}.{f.name}: {len(b)} bytes > {f.array_len}")
                flat.append(b)
                continue
            n = max(f.array_len, 1)
            items = [0] * n if v is None else (list(v) if f.array_len else [v])
            if len(items) != n:
                raise ValueError(f"{self.name}.{f.name} needs {n} values")
            if f.big_endian:
                items = [_swap(int(x), f.elem_size) for x in items]
            flat += items
        try:
            return self._struct.pack(*flat)
        except struct.error as e:
            raise ValueError(f"{self.name}: {e}") from None

    @property
    def dtype(self) -> Any:
        """A numpy structured dtype of the layout (big-endian fields as ``>u2``...)."""
        import numpy as np

        names, formats, offsets = [], [], []
        for f in self.fields.values():
            if f.is_bytes:
                fmt = f"S{f.array_len}" if f.type.startswith("char") else f"({f.array_len},)u1"
            else:
                order = ">" if f.big_endian else "="
                base = f"{order}{'i' if f.signed else 'u'}{f.elem_size}"
                fmt = f"({f.array_len},){base}" if f.array_len else base
            names.append(f.name)
            formats.append(fmt)
            offsets.append(f.offset)
        return np.dtype({"names": names, "formats": formats, "offsets": offsets,
                         "itemsize": self.size})

    @property
    def codec(self) -> StructLayoutCodec:
        """A map key/value codec: ``Map.create(..., value=Event.codec)``."""
        if self._codec is None:
            self._codec = StructLayoutCodec(self)
        return self._codec


def _swap(x: int, n: int) -> int:
    return int.from_bytes(x.to_bytes(n, sys.byteorder), "big")


class StructLayoutCodec(Codec):
    """Encodes mappings/tuples, decodes named tuples, for one :class:`Struct`."""

    __slots__ = ("layout",)

    def __init__(self, layout: Struct, what: str = "value") -> None:
        super().__init__(layout.size, what)
        self.layout = layout

    def _encode_into(self, value: Any, buf: bytearray | memoryview, offset: int) -> None:
        if not isinstance(value, (Mapping, tuple, list)):
            raise TypeError(f"{self.what} must be a mapping or a tuple for "
                            f"{self.layout.name}, not {type(value).__name__}")
        buf[offset:offset + self.size] = self.layout.encode(value)

    def decode(self, data: bytes | bytearray | memoryview, offset: int = 0) -> Any:
        return self.layout.decode(data, offset)

    def __repr__(self) -> str:
        return f"StructLayoutCodec({self.layout.name})"
