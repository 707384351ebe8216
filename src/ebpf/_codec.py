"""Key and value codecs: Python objects <-> the fixed-size byte strings a map stores.

Pure layer: no kernel calls. A :class:`Codec` knows its ``size`` and checks every value
against it *before* anything reaches the kernel: a value of the wrong type raises
:class:`TypeError`, one of the wrong size or out of range raises :class:`ValueError`.

What a map can be typed with (:func:`make_codec`)::

    None            ints for sizes 1/2/4/8 (native byte order, unsigned), else bytes
    int / bytes     the same, explicitly
    ctypes type     c_uint64 & co. decode to Python scalars; Structure/Union/Array to instances
    struct format   "IHH" or a struct.Struct: tuples (a one-field format decodes to a scalar)
    numpy dtype     numpy scalars / structured records (numpy is imported only if used)
    Codec instance  anything implementing the interface below
    has .codec      an object whose ``codec`` is a Codec or a method returning one
                    (``bpf.u32``, ``bpf.i64``, a ``bpf.Struct`` class, a ``lib.structs`` layout)

Every codec also accepts a bytes-like object of exactly ``size`` bytes as the raw encoding,
and every decode returns an object that does not alias the buffer it was decoded from.
"""

from __future__ import annotations

import array
import copy
import ctypes
import importlib
import ipaddress
import struct
import sys
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "Codec",
    "CtypesCodec",
    "FdCodec",
    "IntCodec",
    "LPMKeyCodec",
    "NumpyCodec",
    "PerCPUCodec",
    "PerCPUValues",
    "RawCodec",
    "RecordCodec",
    "StructCodec",
    "make_codec",
    "round_up",
]

_BytesLike = (bytes, bytearray, memoryview)


def round_up(n: int, to: int) -> int:
    """``n`` rounded up to a multiple of ``to`` (a power of two)."""
    return (n + to - 1) & ~(to - 1)


def _raw(value: object, size: int, what: str) -> bytes | bytearray | memoryview | None:
    """``value`` as raw bytes if it is bytes-like; None if it is not. Checks the length."""
    if isinstance(value, _BytesLike):
        n = value.nbytes if isinstance(value, memoryview) else len(value)
        if n != size:
            raise ValueError(f"{what} must be {size} bytes, got {n}")
        return value.cast("B") if isinstance(value, memoryview) else value
    return None


class Codec:
    """Encode Python values into ``size`` bytes and back.

    Subclasses implement :meth:`_encode_into` (for non-raw values) and :meth:`decode`.
    ``fmt`` is a one-character native :mod:`struct`/:class:`memoryview` format when values
    are plain scalars (the map's fast path writes them through a cast memoryview).
    """

    __slots__ = ("fmt", "size", "what")

    def __init__(self, size: int, what: str = "value", fmt: str | None = None) -> None:
        if size < 0:
            raise ValueError(f"{what} size must be >= 0, got {size}")
        self.size = size
        self.what = what
        self.fmt = fmt

    def renamed(self, what: str) -> Codec:
        """This codec with another noun in its error messages (``"key"``, ``"value"``)."""
        c = copy.copy(self)
        c.what = what
        return c

    def encode(self, value: Any) -> bytes:
        """``value`` as exactly ``size`` bytes."""
        buf = bytearray(self.size)
        self.encode_into(value, buf)
        return bytes(buf)

    def encode_into(self, value: Any, buf: bytearray | memoryview, offset: int = 0) -> None:
        """Write ``value`` into ``buf[offset:offset+size]``; raises before writing anything
        if ``value`` has the wrong type (TypeError) or size/range (ValueError)."""
        raw = _raw(value, self.size, self.what)
        if raw is not None:
            buf[offset : offset + self.size] = raw
            return
        self._encode_into(value, buf, offset)

    def _encode_into(self, value: Any, buf: bytearray | memoryview, offset: int) -> None:
        raise TypeError(
            f"{self.what} must be a bytes-like object of {self.size} bytes, "
            f"not {type(value).__name__}"
        )

    def decode(self, data: bytes | bytearray | memoryview, offset: int = 0) -> Any:
        """The value stored in ``data[offset:offset+size]`` (never a view of ``data``)."""
        return bytes(data[offset : offset + self.size])

    def encode_many(self, values: Iterable[Any], count: int | None = None) -> bytearray:
        """``values`` encoded back to back (one buffer of ``count * size`` bytes)."""
        vals = values if isinstance(values, Sequence) else list(values)
        n = len(vals) if count is None else count
        if len(vals) != n:
            raise ValueError(f"expected {n} {self.what}s, got {len(vals)}")
        if self.fmt is not None and n and not isinstance(vals[0], _BytesLike):
            try:
                out = bytearray(array.array(self.fmt, vals))
            except (TypeError, OverflowError):
                pass
            else:
                if len(out) == n * self.size:
                    return out
        size = self.size
        buf = bytearray(n * size)
        mv = memoryview(buf)
        for i, v in enumerate(vals):
            self.encode_into(v, mv, i * size)
        return buf

    def decode_many(self, data: bytes | bytearray | memoryview, count: int) -> list[Any]:
        """``count`` values stored back to back at the start of ``data``."""
        size = self.size
        if self.fmt is not None and size:
            mv: Any = memoryview(data).cast("B")[: count * size]
            out: list[Any] = mv.cast(self.fmt).tolist()
            return out
        return [self.decode(data, i * size) for i in range(count)]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size})"


class RawCodec(Codec):
    """Bytes of exactly ``size`` (decodes to :class:`bytes`)."""

    __slots__ = ()


class IntCodec(Codec):
    """Integers of 1, 2, 4 or 8 bytes in native byte order (bytes-like values pass raw)."""

    __slots__ = ("_struct", "signed")

    _FMT = {1: "B", 2: "H", 4: "I", 8: "Q"}

    def __init__(self, size: int, signed: bool = False, what: str = "value") -> None:
        if size not in self._FMT:
            raise ValueError(f"integer {what}s must be 1, 2, 4 or 8 bytes, not {size}")
        fmt = self._FMT[size]
        if signed:
            fmt = fmt.lower()
        super().__init__(size, what, fmt)
        self.signed = signed
        self._struct = struct.Struct("=" + fmt)

    def _encode_into(self, value: Any, buf: bytearray | memoryview, offset: int) -> None:
        if isinstance(value, float) or not hasattr(value, "__index__"):
            raise TypeError(f"{self.what} must be an int or {self.size} bytes, "
                            f"not {type(value).__name__}")
        try:
            self._struct.pack_into(buf, offset, value)
        except struct.error:
            raise ValueError(
                f"{self.what} {value!r} does not fit in {self.size} "
                f"{'signed' if self.signed else 'unsigned'} byte(s)"
            ) from None

    def decode(self, data: bytes | bytearray | memoryview, offset: int = 0) -> int:
        v: int = self._struct.unpack_from(data, offset)[0]
        return v

    @property
    def dtype(self) -> Any:
        """The numpy dtype of these integers (native order; imports numpy)."""
        return _numpy().dtype(f"={'i' if self.signed else 'u'}{self.size}")


class FdCodec(IntCodec):
    """A file descriptor (anything with ``fileno()``, or an int) going in; an int coming out.

    Used by maps whose values are kernel objects named by fd on update and by id on lookup
    (prog_array, maps of maps, perf_event_array, sockmap, xskmap...), and by the storage
    maps whose *keys* are fds (sk/task/inode/cgrp storage).
    """

    __slots__ = ()

    def __init__(self, size: int = 4, what: str = "value") -> None:
        super().__init__(size, False, what)
        self.fmt = None  # values are objects, no memoryview fast path

    def _encode_into(self, value: Any, buf: bytearray | memoryview, offset: int) -> None:
        fileno = getattr(value, "fileno", None)
        if fileno is not None:
            value = fileno()
        super()._encode_into(value, buf, offset)


def _struct_fields(s: struct.Struct) -> int:
    return len(s.unpack(bytes(s.size)))


class StructCodec(Codec):
    """A :mod:`struct` layout: encodes tuples, decodes tuples (a scalar for one field).

    Without a byte-order prefix the format is native (``"@"``), as C lays it out.
    """

    __slots__ = ("_nfields", "_single_bytes", "struct")

    def __init__(self, fmt: str | struct.Struct, what: str = "value") -> None:
        s = fmt if isinstance(fmt, struct.Struct) else struct.Struct(fmt)
        super().__init__(s.size, what)
        self.struct = s
        self._nfields = _struct_fields(s)
        self._single_bytes = self._nfields == 1 and isinstance(s.unpack(bytes(s.size))[0], bytes)

    def encode_into(self, value: Any, buf: bytearray | memoryview, offset: int = 0) -> None:
        if self._single_bytes and isinstance(value, _BytesLike):
            value = (bytes(value),)
        super().encode_into(value, buf, offset)

    def _encode_into(self, value: Any, buf: bytearray | memoryview, offset: int) -> None:
        vals = tuple(value) if isinstance(value, (tuple, list)) else (value,)
        if len(vals) != self._nfields:
            raise ValueError(f"{self.what} needs {self._nfields} field(s) for "
                             f"{self.struct.format!r}, got {len(vals)}")
        try:
            self.struct.pack_into(buf, offset, *vals)
        except struct.error as e:
            raise (TypeError if "required argument" in str(e) else ValueError)(
                f"{self.what} {value!r}: {e}") from None

    def decode(self, data: bytes | bytearray | memoryview, offset: int = 0) -> Any:
        vals = self.struct.unpack_from(data, offset)
        return vals[0] if self._nfields == 1 else vals

    def __repr__(self) -> str:
        return f"StructCodec({self.struct.format!r})"


_SimpleCData: Any = ctypes.c_int.__mro__[1]  # ctypes._SimpleCData
_CDataTypes = (ctypes.Structure, ctypes.Union, ctypes.Array)


class CtypesCodec(Codec):
    """A ctypes type. Simple types (``c_uint64``, ``c_double``...) decode to Python scalars;
    structures, unions and arrays decode to a fresh instance (``from_buffer_copy``).

    Encoding accepts an instance of the type, a Python scalar for simple types, a tuple or dict
    of field values for structures, a sequence for arrays, or raw bytes.
    """

    __slots__ = ("_struct", "ctype")

    def __init__(self, ctype: type, what: str = "value") -> None:
        size = ctypes.sizeof(ctype)
        fmt: str | None = None
        self._struct: struct.Struct | None = None
        if issubclass(ctype, _SimpleCData):
            code = ctype._type_  # type: ignore[attr-defined]
            if not isinstance(code, str) or code not in "bBhHiIlLqQfd?":
                raise TypeError(f"unsupported ctypes type for a map {what}: {ctype.__name__}")
            fmt = code
            self._struct = struct.Struct("@" + code)
        elif not issubclass(ctype, _CDataTypes):
            raise TypeError(f"not a ctypes type: {ctype!r}")
        super().__init__(size, what, fmt)
        self.ctype: Any = ctype

    def _encode_into(self, value: Any, buf: bytearray | memoryview, offset: int) -> None:
        size = self.size
        if isinstance(value, self.ctype):
            buf[offset : offset + size] = memoryview(value).cast("B")
            return
        if self._struct is not None:
            if isinstance(value, _SimpleCData):
                value = value.value
            try:
                self._struct.pack_into(buf, offset, value)
            except struct.error as e:
                kind = TypeError if "required argument" in str(e) or isinstance(
                    value, (str, type(None))) else ValueError
                raise kind(f"{self.what} {value!r} is not a valid "
                           f"{self.ctype.__name__}: {e}") from None
            return
        if isinstance(value, ctypes.Structure | ctypes.Union | ctypes.Array):
            raise TypeError(f"{self.what} must be a {self.ctype.__name__}, "
                            f"not {type(value).__name__}")
        try:
            if isinstance(value, dict):
                inst = self.ctype(**value)
            elif isinstance(value, (tuple, list)):
                inst = self.ctype(*value)
            else:
                raise TypeError(f"{self.what} must be a {self.ctype.__name__}, "
                                f"not {type(value).__name__}")
        except (TypeError, IndexError) as e:
            raise TypeError(f"{self.what}: cannot build {self.ctype.__name__}: {e}") from None
        buf[offset : offset + size] = memoryview(inst).cast("B")

    def decode(self, data: bytes | bytearray | memoryview, offset: int = 0) -> Any:
        if self._struct is not None:
            return self._struct.unpack_from(data, offset)[0]
        return self.ctype.from_buffer_copy(data, offset)

    def __repr__(self) -> str:
        return f"CtypesCodec({self.ctype.__name__})"


class NumpyCodec(Codec):
    """A numpy dtype: decodes to a numpy scalar (``np.void`` record for structured dtypes)."""

    __slots__ = ("dtype",)

    def __init__(self, dtype: Any, what: str = "value") -> None:
        np = _numpy()
        dt = np.dtype(dtype)
        super().__init__(dt.itemsize, what)
        self.dtype = dt

    def _encode_into(self, value: Any, buf: bytearray | memoryview, offset: int) -> None:
        np = _numpy()
        try:
            arr = np.asarray(value, dtype=self.dtype) if not (
                isinstance(value, np.ndarray | np.generic) and value.dtype == self.dtype
            ) else np.asarray(value)
        except (TypeError, ValueError) as e:
            raise TypeError(f"{self.what} {value!r} is not a {self.dtype}: {e}") from None
        if arr.size != 1:
            raise ValueError(f"{self.what} must be a single {self.dtype} element, "
                             f"got {arr.size}")
        buf[offset : offset + self.size] = arr.tobytes()

    def decode(self, data: bytes | bytearray | memoryview, offset: int = 0) -> Any:
        np = _numpy()
        chunk = bytes(data[offset : offset + self.size])
        return np.frombuffer(chunk, dtype=self.dtype, count=1)[0]

    def decode_many(self, data: bytes | bytearray | memoryview, count: int) -> list[Any]:
        np = _numpy()
        arr = np.frombuffer(bytes(memoryview(data).cast("B")[: count * self.size]),
                            dtype=self.dtype, count=count)
        return list(arr)

    def __repr__(self) -> str:
        return f"NumpyCodec({self.dtype})"


class RecordCodec(Codec):
    """Instances of a record class: one with a ``size``, a ``decode(data)`` class method
    giving an instance, and ``encode()`` on instances giving ``size`` bytes
    (:class:`ebpf.bpf.Struct`). Encoding accepts an instance or raw bytes; decoding gives a
    new instance. ``dtype`` is the class's numpy dtype when it has one (``cls.dtype()``)."""

    __slots__ = ("cls",)

    def __init__(self, cls: Any, what: str = "value") -> None:
        super().__init__(int(cls.size), what)
        self.cls = cls

    def _encode_into(self, value: Any, buf: bytearray | memoryview, offset: int) -> None:
        if not isinstance(value, self.cls):
            raise TypeError(f"{self.what} must be a {self.cls.__name__} or {self.size} bytes, "
                            f"not {type(value).__name__}")
        try:
            data = value.encode()
        except (TypeError, ValueError, OverflowError, struct.error) as e:
            raise ValueError(f"{self.what} {value!r}: {e}") from None
        if len(data) != self.size:
            raise ValueError(f"{self.what} {value!r} encodes to {len(data)} bytes, "
                             f"not {self.size}")
        buf[offset : offset + self.size] = data

    def decode(self, data: bytes | bytearray | memoryview, offset: int = 0) -> Any:
        return self.cls.decode(bytes(data[offset : offset + self.size]))

    @property
    def dtype(self) -> Any:
        """The record's numpy structured dtype (``cls.dtype()``), or None if it has none."""
        dt = getattr(self.cls, "dtype", None)
        return dt() if callable(dt) else dt

    def __repr__(self) -> str:
        return f"RecordCodec({self.cls.__name__})"


class PerCPUValues(tuple):  # type: ignore[type-arg]
    """One value per possible CPU (index = CPU number), with aggregate helpers."""

    __slots__ = ()

    def sum(self) -> Any:
        """The values added up (ints and floats; other types must support ``+``)."""
        it = iter(self)
        total = next(it)
        for v in it:
            total = total + v
        return total

    def max(self) -> Any:
        return max(self)

    def min(self) -> Any:
        return min(self)

    def __repr__(self) -> str:
        return f"PerCPUValues({list(self)!r})"


class PerCPUCodec(Codec):
    """A per-CPU value: ``ncpus`` slots of ``round_up(inner.size, 8)`` bytes each.

    That is the layout the kernel reads and writes for per-CPU maps (``bpf_map_value_size``);
    ``ncpus`` must be the number of *possible* CPUs. Encoding accepts one value (written to
    every CPU) or a sequence of exactly ``ncpus`` values.
    """

    __slots__ = ("inner", "ncpus", "stride")

    def __init__(self, inner: Codec, ncpus: int) -> None:
        if ncpus < 1:
            raise ValueError("ncpus must be >= 1")
        stride = round_up(inner.size, 8)
        super().__init__(stride * ncpus, inner.what)
        self.inner = inner
        self.ncpus = ncpus
        self.stride = stride

    def encode_into(self, value: Any, buf: bytearray | memoryview, offset: int = 0) -> None:
        inner, stride, n = self.inner, self.stride, self.ncpus
        per_cpu = (
            isinstance(value, (PerCPUValues, list))
            or (isinstance(value, tuple) and len(value) == n
                and not isinstance(inner, StructCodec | CtypesCodec))
        )
        if isinstance(value, _BytesLike) and _raw_len(value) == self.size and (
            self.size != inner.size
        ):
            buf[offset : offset + self.size] = value
            return
        if per_cpu:
            if len(value) != n:
                raise ValueError(f"per-CPU {self.what} needs {n} values (one per possible "
                                 f"CPU), got {len(value)}")
            tmp = bytearray(self.size)
            for i, v in enumerate(value):
                inner.encode_into(v, tmp, i * stride)
        else:
            tmp = bytearray(self.size)
            inner.encode_into(value, tmp, 0)
            one = bytes(tmp[:stride])
            tmp[:] = one * n
        buf[offset : offset + self.size] = tmp

    def decode(self, data: bytes | bytearray | memoryview, offset: int = 0) -> PerCPUValues:
        inner, stride = self.inner, self.stride
        if inner.fmt is not None and stride == inner.size:
            mv: Any = memoryview(data).cast("B")[offset : offset + self.size]
            return PerCPUValues(mv.cast(inner.fmt).tolist())
        return PerCPUValues(inner.decode(data, offset + i * stride) for i in range(self.ncpus))

    def decode_many(self, data: bytes | bytearray | memoryview, count: int) -> list[Any]:
        return [self.decode(data, i * self.size) for i in range(count)]

    def encode_many(self, values: Iterable[Any], count: int | None = None) -> bytearray:
        vals = values if isinstance(values, Sequence) else list(values)
        n = len(vals) if count is None else count
        if len(vals) != n:
            raise ValueError(f"expected {n} {self.what}s, got {len(vals)}")
        buf = bytearray(n * self.size)
        for i, v in enumerate(vals):
            self.encode_into(v, buf, i * self.size)
        return buf

    def __repr__(self) -> str:
        return f"PerCPUCodec({self.inner!r}, ncpus={self.ncpus})"


def _raw_len(value: bytes | bytearray | memoryview) -> int:
    return value.nbytes if isinstance(value, memoryview) else len(value)


class LPMKeyCodec(Codec):
    """Keys of an LPM trie: ``struct { u32 prefixlen; u8 data[size - 4]; }``.

    Encodes an :mod:`ipaddress` network or address (``"10.0.0.0/8"``, ``"10.1.2.3"``,
    ``IPv6Network(...)``), a ``(prefixlen, data)`` pair where ``data`` is bytes, an int
    (big-endian, network order) or an address, or the raw key bytes. Tries whose data is 4 or
    16 bytes decode to ``IPv4Network``/``IPv6Network``; others to ``(prefixlen, bytes)``.
    """

    __slots__ = ("data_size",)

    def __init__(self, size: int, what: str = "key") -> None:
        if size < 5:
            raise ValueError(f"LPM trie keys are a u32 prefix length plus data; size {size} "
                             "is too small")
        super().__init__(size, what)
        self.data_size = size - 4

    def _data(self, data: Any) -> bytes:
        n = self.data_size
        if isinstance(data, ipaddress.IPv4Address | ipaddress.IPv6Address):
            data = data.packed
        elif isinstance(data, str):
            data = ipaddress.ip_address(data).packed
        elif isinstance(data, int) and not isinstance(data, bool):
            if not 0 <= data < 1 << (8 * n):
                raise ValueError(f"LPM data {data} does not fit in {n} bytes")
            data = data.to_bytes(n, "big")
        if not isinstance(data, _BytesLike):
            raise TypeError(f"LPM data must be bytes, an int or an IP address, "
                            f"not {type(data).__name__}")
        out = bytes(data)
        if len(out) != n:
            raise ValueError(f"LPM data must be {n} bytes, got {len(out)}")
        return out

    def _encode_into(self, value: Any, buf: bytearray | memoryview, offset: int) -> None:
        if isinstance(value, str):
            value = ipaddress.ip_network(value, strict=False) if "/" in value else (
                ipaddress.ip_address(value))
        if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
            prefix, data = value.prefixlen, value.network_address.packed
        elif isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
            prefix, data = value.max_prefixlen, value.packed
        elif isinstance(value, tuple) and len(value) == 2:
            prefix, data = value
        else:
            raise TypeError(f"LPM {self.what} must be a network, an address, "
                            f"(prefixlen, data) or raw bytes, not {type(value).__name__}")
        raw = self._data(data)
        if not isinstance(prefix, int) or isinstance(prefix, bool):
            raise TypeError("LPM prefix length must be an int")
        if not 0 <= prefix <= 8 * self.data_size:
            raise ValueError(f"LPM prefix length {prefix} out of range "
                             f"0..{8 * self.data_size}")
        struct.pack_into("=I", buf, offset, prefix)
        buf[offset + 4 : offset + self.size] = raw

    def decode(self, data: bytes | bytearray | memoryview, offset: int = 0) -> Any:
        (prefix,) = struct.unpack_from("=I", data, offset)
        raw = bytes(data[offset + 4 : offset + self.size])
        if self.data_size in (4, 16) and prefix <= 8 * self.data_size:
            return ipaddress.ip_network((raw, prefix), strict=False)
        return (prefix, raw)


def _numpy() -> Any:
    """numpy, imported on first use (it is an optional dependency)."""
    return importlib.import_module("numpy")


def _is_numpy_dtype(spec: object) -> bool:
    np = sys.modules.get("numpy")
    if np is None:
        return False
    return isinstance(spec, np.dtype) or (
        isinstance(spec, type) and issubclass(spec, np.generic)
    )


def _codec_of(spec: Any) -> Codec | None:
    """``spec.codec`` (or ``spec.codec()``) when it is a :class:`Codec`."""
    c = getattr(spec, "codec", None)
    if callable(c) and not isinstance(c, Codec):
        try:
            c = c()
        except TypeError:  # a method that wants arguments: not a codec provider
            return None
    return c if isinstance(c, Codec) else None


def make_codec(spec: Any, size: int | None, what: str = "value") -> Codec:
    """Resolve a key/value type description into a :class:`Codec`.

    ``size`` is the map's key/value size when known (None: take it from ``spec``). A
    mismatch between the two raises :class:`ValueError`.
    """
    codec: Codec
    if isinstance(spec, Codec):
        codec = spec if spec.what == what else spec.renamed(what)
    elif spec is None or spec is int:
        if size is None:
            raise TypeError(f"{what}_size is required when no {what} type is given")
        if size in IntCodec._FMT:
            codec = IntCodec(size, what=what)
        elif spec is int:
            raise ValueError(f"integer {what}s must be 1, 2, 4 or 8 bytes, not {size}")
        else:
            codec = RawCodec(size, what)
    elif spec is bytes:
        if size is None:
            raise TypeError(f"{what}_size is required for raw bytes {what}s")
        codec = RawCodec(size, what)
    elif isinstance(spec, (str, struct.Struct)):
        codec = StructCodec(spec, what)
    elif isinstance(spec, type) and issubclass(spec, (_SimpleCData, *_CDataTypes)):
        codec = CtypesCodec(spec, what)
    elif _is_numpy_dtype(spec) or (
        type(spec).__module__.startswith("numpy") and hasattr(spec, "itemsize")
    ):
        codec = NumpyCodec(spec, what)
    elif isinstance(_provided := _codec_of(spec), Codec):
        codec = _provided if _provided.what == what else _provided.renamed(what)
    else:
        raise TypeError(f"cannot use {spec!r} as a map {what} type (expected None, int, bytes, "
                        "a ctypes type, a struct format, a numpy dtype or a Codec)")
    if size is not None and codec.size != size:
        raise ValueError(f"{what} type {spec!r} is {codec.size} bytes but the map's "
                         f"{what}_size is {size}")
    return codec
