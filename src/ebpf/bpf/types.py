"""Fixed-width integer types and :class:`Struct`, shared by compiled programs and Python code.

``u8``..``i64`` are ``int`` subclasses: in Python, ``u8(300)`` is ``44`` (the cast a compiled
program does), and as annotations they type locals, parameters and struct fields. The
:func:`emulate` helpers give the exact results a compiled program computes, for tests that run
the same expression both ways.
"""

from __future__ import annotations

import contextlib
import struct as _struct
import sys
from typing import Any, ClassVar

from .._codec import Codec, IntCodec, RecordCodec, StructCodec
from ..errors import BPFError

__all__ = [
    "IntType",
    "Struct",
    "be16",
    "be32",
    "bytes_",
    "emulate",
    "i8",
    "i16",
    "i32",
    "i64",
    "int_type",
    "u8",
    "u16",
    "u32",
    "u64",
]


class IntType(int):
    """Base of the integer types: construction wraps to the width (two's complement)."""

    size: ClassVar[int] = 8
    signed: ClassVar[bool] = False
    big_endian: ClassVar[bool] = False

    def __new__(cls, value: int = 0) -> IntType:
        return int.__new__(cls, cls.wrap(int(value)))

    @classmethod
    def wrap(cls, value: int) -> int:
        """``value`` reduced to this type's range, as the BPF program computes it."""
        bits = cls.size * 8
        value &= (1 << bits) - 1
        if cls.signed and value >> (bits - 1):
            value -= 1 << bits
        return value

    @classmethod
    def bits(cls) -> int:
        return cls.size * 8

    @classmethod
    def min(cls) -> int:
        return -(1 << (cls.size * 8 - 1)) if cls.signed else 0

    @classmethod
    def max(cls) -> int:
        return (1 << (cls.size * 8 - (1 if cls.signed else 0))) - 1

    @classmethod
    def codec(cls) -> Codec:
        """The map key/value codec of this type, what ``bpf.load`` gives a map declared with
        it (``ebpf.Map.from_fd(fd, value=i64)`` takes the type itself): Python ints, negative
        for signed types; ``be16``/``be32`` are stored in network byte order."""
        if cls.big_endian:
            return StructCodec(">" + {2: "H", 4: "I"}[cls.size])
        return IntCodec(cls.size, cls.signed)


class u8(IntType):
    size, signed = 1, False


class u16(IntType):
    size, signed = 2, False


class u32(IntType):
    size, signed = 4, False


class u64(IntType):
    size, signed = 8, False


class i8(IntType):
    size, signed = 1, True


class i16(IntType):
    size, signed = 2, True


class i32(IntType):
    size, signed = 4, True


class i64(IntType):
    size, signed = 8, True


class be16(IntType):
    """A ``u16`` stored in network byte order; programs see it in host order."""

    size, signed, big_endian = 2, False, True


class be32(IntType):
    """A ``u32`` stored in network byte order; programs see it in host order."""

    size, signed, big_endian = 4, False, True


_BY_KEY: dict[tuple[int, bool], type[IntType]] = {
    (1, False): u8, (2, False): u16, (4, False): u32, (8, False): u64,
    (1, True): i8, (2, True): i16, (4, True): i32, (8, True): i64,
}


def int_type(size: int, signed: bool) -> type[IntType]:
    """The integer type of ``size`` bytes and that signedness."""
    return _BY_KEY[(size, signed)]


class _Bytes:
    """``bytes_[N]``: a fixed-size byte array field (``char comm[16]``)."""

    __slots__ = ("size",)
    _cache: ClassVar[dict[int, _Bytes]] = {}

    def __init__(self, size: int) -> None:
        self.size = size

    def __repr__(self) -> str:
        return f"bytes_[{self.size}]"


class _BytesFactory:
    def __getitem__(self, n: int) -> _Bytes:
        if not isinstance(n, int) or isinstance(n, bool) or not 0 < n <= 1 << 16:
            raise BPFError(f"bytes_[{n!r}]: the size must be an int in 1..65536")
        b = _Bytes._cache.get(n)
        if b is None:
            b = _Bytes._cache[n] = _Bytes(n)
        return b


#: ``bytes_[16]`` is a 16-byte array field; decoded in Python as ``bytes`` (NUL-trimmed for
#: :meth:`Struct.decode`).
bytes_ = _BytesFactory()

FieldType = Any  # type[IntType] | _Bytes | type[Struct]


class Field:
    """One laid-out field of a :class:`Struct`."""

    __slots__ = ("name", "offset", "size", "type")

    def __init__(self, name: str, type_: FieldType, offset: int, size: int) -> None:
        self.name = name
        self.type = type_
        self.offset = offset
        self.size = size

    def __repr__(self) -> str:
        return f"Field({self.name!r} @ {self.offset}, {self.size} bytes)"


def _field_layout(t: FieldType, where: str) -> tuple[int, int]:
    """(size, alignment) of a field type."""
    if isinstance(t, type) and issubclass(t, IntType) and t is not IntType:
        return t.size, t.size
    if isinstance(t, _Bytes):
        return t.size, 1
    if isinstance(t, type) and issubclass(t, Struct) and t is not Struct:
        return t.size, t.align
    raise BPFError(f"{where}: {t!r} is not a field type (u8..i64, be16/be32, bytes_[N] or a "
                   "bpf.Struct)")


class Struct:
    """A C struct declared as a class with annotated fields::

        class Event(bpf.Struct):
            pid: u32
            comm: bpf.bytes_[16]

    Fields are laid out with C's natural alignment (the layout clang gives the same C struct).
    The class is the BPF side's type (with its BTF) and the Python side's decoder:
    ``Event.size``, ``Event.fields``, ``Event.decode(buf)``, ``Event(pid=1).encode()``,
    ``Event.dtype`` (numpy). Instances are plain records with one attribute per field.

    ``class Key(bpf.Struct, frozen=True)`` makes instances immutable and hashable (by their
    field values), so keys read from a map can be ``dict`` keys and set members: a field store
    raises ``AttributeError``, and nested struct fields must be frozen classes too. Freezing
    is a Python-side property only; programs build and fill such records as any other.
    """

    size: ClassVar[int] = 0
    align: ClassVar[int] = 1
    fields: ClassVar[tuple[Field, ...]] = ()
    _by_name: ClassVar[dict[str, Field]] = {}
    _fmt: ClassVar[_struct.Struct]
    _frozen: ClassVar[bool] = False

    def __init_subclass__(cls, frozen: bool | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if frozen is not None:
            cls._frozen = bool(frozen)
        import inspect
        import typing

        own = inspect.get_annotations(cls)
        try:
            hints = typing.get_type_hints(cls, include_extras=False)
        except Exception:  # string annotations of a class made in a function: evaluate them
            hints = dict(own)  # where the class statement runs
            frame = sys._getframe(1)
            scope = {**frame.f_globals, **frame.f_locals}
            for k, v in own.items():
                if isinstance(v, str):
                    with contextlib.suppress(Exception):
                        hints[k] = eval(v, scope)  # the class's own annotation text
        fields: list[Field] = []
        off = 0
        align = 1
        fmt = "<"
        for name in own:
            t = hints.get(name, own[name])
            if isinstance(t, str):
                raise BPFError(f"{cls.__name__}.{name}: cannot resolve annotation {t!r}")
            size, al = _field_layout(t, f"{cls.__name__}.{name}")
            if cls._frozen and isinstance(t, type) and issubclass(t, Struct) and not t._frozen:
                raise BPFError(f"{cls.__name__}.{name}: a frozen struct's struct fields must "
                               f"be frozen too ({t.__name__} is not)")
            pad = -off % al
            if pad:
                fmt += f"{pad}x"
            off += pad
            fields.append(Field(name, t, off, size))
            fmt += _fmt_of(t)
            off += size
            align = max(align, al)
        tail = -off % align
        if tail:
            fmt += f"{tail}x"
        cls.size = off + tail
        cls.align = align
        cls.fields = tuple(fields)
        cls._by_name = {f.name: f for f in fields}
        cls._fmt = _struct.Struct(fmt)

    def __init__(self, **values: Any) -> None:
        for f in self.fields:
            if f.name in values:
                _set(self, f.name, values.pop(f.name))
            elif isinstance(f.type, _Bytes):
                _set(self, f.name, b"")
            elif isinstance(f.type, type) and issubclass(f.type, Struct):
                _set(self, f.name, f.type())  # a zeroed nested record
            else:
                _set(self, f.name, 0)
        if values:
            raise BPFError(f"{type(self).__name__} has no field(s) {sorted(values)}")

    @classmethod
    def field(cls, name: str) -> Field:
        try:
            return cls._by_name[name]
        except KeyError:
            raise BPFError(f"{cls.__name__} has no field {name!r}") from None

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview) -> Any:
        """An instance from ``data`` (at least :attr:`size` bytes; records padded by the ring
        buffer are fine). ``bytes_`` fields are cut at the first NUL."""
        if len(data) < cls.size:
            raise BPFError(f"{cls.__name__} needs {cls.size} bytes, got {len(data)}")
        vals = cls._fmt.unpack_from(data)
        obj = cls.__new__(cls)
        for f, raw in zip(cls.fields, vals, strict=True):
            v: Any = raw
            if isinstance(f.type, _Bytes):
                v = raw.split(b"\0", 1)[0]
            elif isinstance(f.type, type) and issubclass(f.type, Struct):
                v = f.type.decode(raw)
            elif isinstance(raw, bytes):  # a big-endian integer
                v = int.from_bytes(raw, "big")
            _set(obj, f.name, v)
        return obj

    def encode(self) -> bytes:
        """The C layout of this record."""
        vals: list[Any] = []
        for f in self.fields:
            v = getattr(self, f.name)
            if isinstance(f.type, type) and issubclass(f.type, Struct):
                v = v.encode()
            elif isinstance(f.type, type) and issubclass(f.type, IntType):
                v = f.type.wrap(int(v))
                if f.type.big_endian:
                    v = v.to_bytes(f.type.size, "big")
            vals.append(v)
        return self._fmt.pack(*vals)

    @classmethod
    def codec(cls) -> Codec:
        """The map key/value codec of this struct, what ``bpf.load`` gives a map declared with
        it (``ebpf.Map.from_fd(fd, value=Event)`` takes the class itself): values decode to
        instances and encode from an instance or exactly :attr:`size` bytes; the codec's
        ``dtype`` is :meth:`dtype`."""
        return RecordCodec(cls)

    @classmethod
    def dtype(cls) -> Any:
        """The numpy structured dtype of the layout (imports numpy)."""
        import numpy as np

        names, formats, offsets = [], [], []
        for f in cls.fields:
            names.append(f.name)
            t = f.type
            if isinstance(t, _Bytes):
                formats.append(f"S{t.size}")
            elif isinstance(t, type) and issubclass(t, Struct):
                formats.append(t.dtype())
            else:
                assert isinstance(t, type) and issubclass(t, IntType)
                order = ">" if t.big_endian else "<"
                formats.append(f"{order}{'i' if t.signed else 'u'}{t.size}")
            offsets.append(f.offset)
        return np.dtype({"names": names, "formats": formats, "offsets": offsets,
                         "itemsize": cls.size})

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, f.name) == getattr(other, f.name) for f in self.fields)

    def __hash__(self) -> int:
        if not self._frozen:
            raise TypeError(f"unhashable type: {type(self).__name__!r} (declare it with "
                            f"frozen=True to use instances as dict keys)")
        return hash((type(self), *(getattr(self, f.name) for f in self.fields)))

    def __setattr__(self, name: str, value: Any) -> None:
        if self._frozen:
            raise AttributeError(f"{type(self).__name__} is frozen: cannot set {name!r}")
        _set(self, name, value)

    def __repr__(self) -> str:
        inner = ", ".join(f"{f.name}={getattr(self, f.name, None)!r}" for f in self.fields)
        return f"{type(self).__name__}({inner})"


_set = object.__setattr__


def _fmt_of(t: FieldType) -> str:
    if isinstance(t, _Bytes):
        return f"{t.size}s"
    if isinstance(t, type) and issubclass(t, Struct):
        return f"{t.size}s"
    assert isinstance(t, type) and issubclass(t, IntType)
    code = {1: "b", 2: "h", 4: "i", 8: "q"}[t.size]
    if not t.signed:
        code = code.upper()
    if t.big_endian:  # one struct format has one byte order: these go through bytes
        return f"{t.size}s"
    return code


class emulate:
    """The results a compiled program computes, in plain Python (for differential tests).

    ``emulate.binop("+", a, b, t)`` with ``t`` an integer type; operands are taken as values
    of ``t`` (wrapped first).
    """

    @staticmethod
    def binop(op: str, a: int, b: int, t: type[IntType]) -> int:
        a, b = t.wrap(a), t.wrap(b)
        bits = t.size * 8
        if op == "+":
            r = a + b
        elif op == "-":
            r = a - b
        elif op == "*":
            r = a * b
        elif op == "//":
            if b == 0:
                return 0
            q = abs(a) // abs(b)
            r = q if (a < 0) == (b < 0) else -q
        elif op == "%":
            if b == 0:
                return a
            q = abs(a) // abs(b)
            q = q if (a < 0) == (b < 0) else -q
            r = a - q * b
        elif op == "&":
            r = a & b
        elif op == "|":
            r = a | b
        elif op == "^":
            r = a ^ b
        elif op == "<<":
            r = a << (b & (bits - 1))
        elif op == ">>":
            r = a >> (b & (bits - 1)) if t.signed else (a & ((1 << bits) - 1)) >> (b & (bits - 1))
        else:
            raise BPFError(f"emulate: unknown operator {op!r}")
        return t.wrap(r)

    @staticmethod
    def compare(op: str, a: int, b: int, t: type[IntType]) -> bool:
        a, b = t.wrap(a), t.wrap(b)
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b, "==": a == b,
                "!=": a != b}[op]
