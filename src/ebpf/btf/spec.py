"""Spec: a parsed BTF blob, indexed once and decoded lazily.

Parsing (:meth:`Spec.from_bytes`) checks the header and makes one pass over the type section
to record where each type record starts; nothing else is decoded. A :class:`Type` is built the
first time its id is asked for, and cached. Names are looked up on demand: the first lookups
search the string section, then the type section for the record whose ``name_off`` matches;
a full name index is built once lookups become frequent.

Split BTF (kernel modules) is a spec with a ``base``: its type ids continue after the base's,
and its string offsets after the base's string section.

Speed matters here (vmlinux has ~150k types), so the hot loops run inside C builtins
(``map``, ``zip``, ``tuple.__new__``, ``bytes.find``) rather than Python bytecode.
"""

from __future__ import annotations

import array
from bisect import bisect_left
from collections.abc import Callable, Iterator
from itertools import accumulate, repeat
from operator import add, and_, getitem, rshift
from typing import TYPE_CHECKING, Any, TypeVar, overload

from ..errors import ParseError
from . import wire
from .types import (
    KIND_CLASSES,
    Array,
    Composite,
    Const,
    DataSec,
    DeclTag,
    Enum,
    Enum64,
    EnumValue,
    Float,
    Func,
    FuncProto,
    Fwd,
    Int,
    Kind,
    Linkage,
    Member,
    Param,
    Pointer,
    Qualifier,
    Restrict,
    Struct,
    Type,
    Typedef,
    TypeTag,
    Union,
    Var,
    VarSecinfo,
    Void,
    Volatile,
)

if TYPE_CHECKING:
    import mmap
    import os

    _Blob = bytes | bytearray | memoryview | mmap.mmap
    _Words = memoryview | array.array[int]

__all__ = ["Spec", "TypeNotFoundError"]

T = TypeVar("T", bound=Type)

_tn = tuple.__new__

#: Name lookups a spec serves by scanning before it builds its name index.
_COLD_FINDS = 16
#: Matches of a ``name_off`` pattern in the type section a cold lookup checks one by one
#: before it lists every record's ``name_off`` instead.
_COLD_HITS = 64
#: Names decoded one by one before the whole string section is decoded at once.
_NAME_MISSES = 4096

_WORD = "I" if array.array("I").itemsize == 4 else "L"

_LINKAGE = (Linkage.STATIC, Linkage.GLOBAL, Linkage.EXTERN)


class TypeNotFoundError(KeyError):
    """No type has the requested name (and kind). Also a :class:`KeyError`."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "type not found"


class _Steps(dict[int, int]):
    """``info`` word -> record length in words; fills itself, rejects unknown kinds."""

    __slots__ = ()

    def __missing__(self, info: int) -> int:
        try:
            words = self[info] = wire.record_words(info)
        except ValueError as exc:
            raise _BadKind(str(exc)) from None
        return words


class _BadKind(Exception):
    pass


#: Shared by every spec: the record length only depends on ``info``.
_STEPS = _Steps()


def _index_records(words: _Words, type_start: int) -> list[int]:
    """Word offset of each record of the type section ``words``, in id order."""
    n = len(words)
    if not n:
        return []
    info_at = words[1:]  # info_at[i] is the info word of a record starting at word i
    offs = [0]
    # The record after the one at ``o`` starts at ``o + steps[info_at[o]]``. ``offs`` feeds
    # itself: list.extend pulls from map iterators that read the very list it appends to,
    # so the whole walk runs in C. It ends when info_at[o] is out of range (IndexError).
    try:
        offs.extend(map(add, offs, map(_STEPS.__getitem__, map(getitem, repeat(info_at), offs))))
    except IndexError:
        pass
    except _BadKind as exc:
        raise ParseError(str(exc), type_start + 4 * offs[-1] + 4) from None
    else:  # pragma: no cover - a Python whose list iterator does not see appended items
        offs = _index_records_slow(info_at, type_start)
    end = offs.pop()
    if end != n:
        last = offs[-1] if end > n else end
        raise ParseError(
            f"type record {len(offs) if end > n else len(offs) + 1} overruns the type section",
            type_start + 4 * last,
        )
    return offs


def _index_records_slow(info_at: _Words, type_start: int) -> list[int]:  # pragma: no cover
    offs = []
    i = 0
    try:
        while True:
            offs.append(i)
            i += _STEPS[info_at[i]]
    except IndexError:
        return offs
    except _BadKind as exc:
        raise ParseError(str(exc), type_start + 4 * i + 4) from None


class _Names(dict[int, str]):
    """``name_off`` -> decoded string; decodes on a miss (``dict.__missing__``)."""

    __slots__ = ("misses", "spec")

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.misses = 0

    def __missing__(self, off: int) -> str:
        spec = self.spec
        local = off - spec._str_first
        if local < 0:
            assert spec._base is not None
            name = self[off] = spec._base._names[off]
            return name
        strings = spec._strings
        if local >= len(strings):
            raise ParseError(
                f"string offset {off} beyond the string section ({len(strings)} bytes)"
            )
        self.misses += 1
        if self.misses == _NAME_MISSES:
            spec._decode_all_names()
            if off in self:
                return self[off]
        name = self[off] = strings[local : strings.index(b"\0", local)].decode(
            "utf-8", "surrogateescape"
        )
        return name


class Spec:
    """A parsed BTF blob: ``len(spec)`` type ids (including ``void``, id 0), each decoded on
    first access with ``spec[type_id]``.

    Build one with :meth:`from_bytes`, :meth:`from_file` or :func:`ebpf.btf.load_kernel`.
    """

    __slots__ = (
        "_base",
        "_by_off",
        "_count",
        "_data",
        "_finds",
        "_first",
        "_name_offs",
        "_names",
        "_names_complete",
        "_offs",
        "_pointer_size",
        "_str_by_bytes",
        "_str_first",
        "_strings",
        "_types",
        "_words",
        "byte_order",
        "header",
    )

    header: wire.Header
    byte_order: str
    _base: Spec | None
    _by_off: dict[int, int] | None
    _count: int
    _data: bytes | bytearray | mmap.mmap
    _finds: int
    _first: int
    _name_offs: list[int] | None
    _names: _Names
    _names_complete: bool
    _offs: list[int]
    _pointer_size: int | None
    _str_by_bytes: dict[bytes, int] | None
    _str_first: int
    _strings: bytes
    _types: dict[int, Type]
    _words: _Words

    def __init__(self) -> None:
        raise TypeError("use Spec.from_bytes(), Spec.from_file() or btf.load_kernel()")

    # --- construction -------------------------------------------------------------------

    @classmethod
    def from_bytes(cls, data: _Blob, *, base: Spec | None = None) -> Spec:
        """Parse a BTF blob (a ``.BTF`` section, ``/sys/kernel/btf/*`` contents).

        ``base`` is the spec that split BTF (a kernel module's) extends. The blob must not
        change while the spec is in use: types are decoded from it lazily.
        Raises :class:`~ebpf.errors.ParseError` for malformed input.
        """
        if isinstance(data, memoryview):
            data = data.tobytes()
        header, order = wire.parse_header(data)
        ts = header.hdr_len + header.type_off
        te = ts + header.type_len
        ss = header.hdr_len + header.str_off
        strings = bytes(data[ss : ss + header.str_len])
        if base is None and (not strings or strings[0]):
            raise ParseError("BTF string section does not start with a NUL byte", ss)
        if strings and strings[-1]:
            raise ParseError("BTF string section does not end with a NUL byte", ss)

        words: _Words
        if order == wire.NATIVE_ORDER and _WORD == "I":
            words = memoryview(data)[ts:te].cast("I")
        else:
            words = array.array(_WORD, bytes(data[ts:te]))
            if order != wire.NATIVE_ORDER:
                words.byteswap()
        offs = _index_records(words, ts)

        self = object.__new__(cls)
        self._data = data
        self.header = header
        self.byte_order = order
        self._base = base
        self._first = len(base) if base is not None else 1
        self._count = self._first + len(offs)
        self._words = words
        self._offs = offs
        self._strings = strings
        self._str_first = base._str_first + len(base._strings) if base is not None else 0
        self._types = {} if base is not None else {0: Void(self, 0, "")}
        self._names = _Names(self)
        self._names_complete = False
        self._name_offs = None
        self._by_off = None
        self._str_by_bytes = None
        self._finds = 0
        self._pointer_size = None
        return self

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], *, base: Spec | None = None) -> Spec:
        """Read and parse a BTF file; a gzip file (gzip magic, e.g. ``.gz``) is decompressed."""
        with open(path, "rb") as f:
            data = f.read()
        if data[:2] == b"\x1f\x8b":
            import gzip  # here, not at the top: only .gz files pay its import time
            import zlib

            try:
                data = gzip.decompress(data)
            except (OSError, EOFError, zlib.error) as exc:
                raise ParseError(f"bad gzip data in {path!s}: {exc}", 0) from None
        return cls.from_bytes(data, base=base)

    # --- the blob (for object BTF, CO-RE and a writer) ----------------------------------

    @property
    def raw(self) -> bytes:
        """The whole blob this spec was parsed from."""
        data = self._data
        return data if isinstance(data, bytes) else bytes(data)

    @property
    def base(self) -> Spec | None:
        """The spec this split BTF extends, or ``None``."""
        return self._base

    @property
    def first_id(self) -> int:
        """The first type id this blob defines (1, or ``len(base)`` for split BTF)."""
        return self._first

    @property
    def strings(self) -> bytes:
        """This blob's string section."""
        return self._strings

    @property
    def string_offset_base(self) -> int:
        """Offset of this blob's first string (0, or the base's string size for split BTF)."""
        return self._str_first

    def string(self, offset: int) -> str:
        """The NUL-terminated string at ``offset`` (split BTF: base offsets included)."""
        if offset < 0:
            raise ParseError(f"negative string offset {offset}")
        return self._names[offset]

    def record_offset(self, type_id: int) -> int:
        """Byte offset of ``type_id``'s record from the start of the type section."""
        return 4 * self._offs[self._local(type_id)]

    def raw_record(self, type_id: int) -> bytes:
        """The bytes of ``type_id``'s record (``struct btf_type`` and its trailing data), in
        the blob's byte order."""
        i = self._local(type_id)
        start = self._offs[i]
        end = self._offs[i + 1] if i + 1 < len(self._offs) else len(self._words)
        ts = self.header.hdr_len + self.header.type_off
        return bytes(self._data[ts + 4 * start : ts + 4 * end])

    def _local(self, type_id: int) -> int:
        if not isinstance(type_id, int) or not self._first <= type_id < self._count:
            raise KeyError(type_id)
        return type_id - self._first

    # --- lookup by id -------------------------------------------------------------------

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Type]:
        return self.types()

    def __getitem__(self, type_id: int) -> Type:
        t = self._types.get(type_id)
        if t is not None:
            return t
        if not isinstance(type_id, int) or not 0 <= type_id < self._count:
            raise KeyError(type_id)
        return self._decode(type_id)

    def _ref(self, type_id: int) -> Type:
        """Resolve a reference found inside a type: a bad id is malformed input."""
        t = self._types.get(type_id)
        if t is not None:
            return t
        if not 0 <= type_id < self._count:
            raise ParseError(f"reference to type id {type_id}, but there are {self._count} types")
        return self._decode(type_id)

    def _decode(self, type_id: int) -> Type:
        i = type_id - self._first
        if i < 0:
            assert self._base is not None
            return self._base._ref(type_id)
        o = self._offs[i]
        w = self._words
        info = w[o + 1]
        t = _DECODERS[(info >> 24) & 0x1F](self, type_id, o, info)
        self._types[type_id] = t
        return t

    def _decode_all_names(self) -> None:
        """Decode the whole string section at once (cheaper than name by name for most)."""
        if self._names_complete:
            return
        self._names_complete = True
        strings = self._strings
        parts = strings.split(b"\0")
        starts = accumulate(map(add, map(len, parts), repeat(1)), initial=self._str_first)
        if strings.isascii():
            self._names.update(zip(starts, strings.decode("ascii").split("\0"), strict=False))
        else:
            decoded = [p.decode("utf-8", "surrogateescape") for p in parts]
            self._names.update(zip(starts, decoded, strict=False))

    # --- iteration ----------------------------------------------------------------------

    def types(self, kind: type[T] | None = None) -> Iterator[T]:
        """Every type in id order (``void`` first), or only those of class ``kind``."""
        if self._base is not None:
            yield from self._base.types(kind)
        elif kind is None or issubclass(Void, kind):
            yield self._types[0]  # type: ignore[misc]
        want = _kind_number(kind)
        if want is None:
            self._decode_all_names()
        w = self._words
        cache = self._types
        first = self._first
        decode = self._decode
        for i, o in enumerate(self._offs):
            if want is not None and (w[o + 1] >> 24) & 0x1F != want:
                continue
            t = cache.get(first + i) or decode(first + i)
            if want is not None or kind is None or isinstance(t, kind):
                yield t  # type: ignore[misc]

    # --- lookup by name -----------------------------------------------------------------

    @overload
    def find(self, name: str) -> Type: ...
    @overload
    def find(self, name: str, kind: type[T]) -> T: ...
    def find(self, name: str, kind: type[Type] | None = None) -> Type:
        """The first type (lowest id) called ``name``, of class ``kind`` if given.

        Raises :class:`TypeNotFoundError` (a :class:`KeyError`) when there is none.
        """
        for t in self._named(name, kind):
            return t
        what = f"{kind.__name__} {name!r}" if kind is not None else repr(name)
        raise TypeNotFoundError(f"no BTF type {what}")

    @overload
    def find_all(self, name: str) -> list[Type]: ...
    @overload
    def find_all(self, name: str, kind: type[T]) -> list[T]: ...
    def find_all(self, name: str, kind: type[Type] | None = None) -> list[Any]:
        """Every type called ``name`` (of class ``kind`` if given), in id order."""
        return list(self._named(name, kind))

    def _named(self, name: str, kind: type[Type] | None) -> Iterator[Type]:
        if self._base is not None:
            yield from self._base._named(name, kind)
        want = _kind_number(kind)
        w = self._words
        offs = self._offs
        first = self._first
        for i in self._local_ids_named(name.encode("utf-8", "surrogateescape")):
            if want is not None and (w[offs[i] + 1] >> 24) & 0x1F != want:
                continue
            t = self._types.get(first + i) or self._decode(first + i)
            if kind is None or isinstance(t, kind):
                yield t

    def _local_ids_named(self, name: bytes) -> Iterator[int]:
        """Local indices (id - first_id) of this blob's types called ``name``, ascending.

        Names are matched where BTF producers put them: at the start of a string.
        """
        self._finds += 1
        if self._finds == _COLD_FINDS:
            self._build_name_index()
        str_offs = self._string_offsets(name)
        if len(str_offs) == 1:
            yield from self._ids_with_name_off(str_offs[0])
        elif str_offs:
            found: list[int] = []
            for p in str_offs:
                found.extend(self._ids_with_name_off(p))
            yield from sorted(set(found))

    def _string_offsets(self, name: bytes) -> list[int]:
        """Global offsets of the strings equal to ``name`` (base strings first)."""
        found = self._base._string_offsets(name) if self._base is not None else []
        first = self._str_first
        by_bytes = self._str_by_bytes
        if by_bytes is not None:
            p = by_bytes.get(name)
            if p is not None:
                found.append(first + p)
            return found
        strings = self._strings
        if strings.startswith(name + b"\0"):
            found.append(first)
        pat = b"\0" + name + b"\0"
        pos = strings.find(pat)
        while pos >= 0:
            found.append(first + pos + 1)
            pos = strings.find(pat, pos + 1)
        return found

    def _ids_with_name_off(self, off: int) -> Iterator[int]:
        """Local indices of the records whose ``name_off`` is ``off``, ascending."""
        names = self._name_offs
        if names is None:
            # Search the type section for the 4-byte value and keep the hits that are
            # the first word of a record (found by bisection in the record index).
            ts = self.header.hdr_len + self.header.type_off
            te = ts + self.header.type_len
            data = self._data
            pat = off.to_bytes(4, "little" if self.byte_order == "<" else "big")
            offs = self._offs
            nrec = len(offs)
            found: list[int] = []
            pos = data.find(pat, ts, te)
            hits = 0
            while pos >= 0:
                hits += 1
                if hits > _COLD_HITS:
                    break
                rel = pos - ts
                if not rel & 3:
                    i = bisect_left(offs, rel >> 2)
                    if i < nrec and offs[i] == rel >> 2:
                        found.append(i)
                pos = data.find(pat, pos + 1, te)
            else:
                yield from found
                return
            names = self._record_name_offs()
        by_off = self._by_off
        i = by_off.get(off, -1) if by_off is not None else _index_of(names, off, 0)
        while i >= 0:
            yield i
            i = _index_of(names, off, i + 1)

    def _record_name_offs(self) -> list[int]:
        names = self._name_offs
        if names is None:
            names = self._name_offs = list(map(getitem, repeat(self._words), self._offs))
        return names

    def _build_name_index(self) -> None:
        """Index names once lookups are frequent: one pass over each section."""
        names = self._record_name_offs()
        self._by_off = dict(zip(reversed(names), range(len(names) - 1, -1, -1), strict=True))
        parts = self._strings.split(b"\0")
        starts = accumulate(map(add, map(len, parts), repeat(1)), initial=0)
        by_bytes = dict(zip(reversed(parts), reversed(list(starts)[: len(parts)]), strict=True))
        # Only usable when every string is unique (else scanning finds all copies).
        if len(by_bytes) - (b"" in by_bytes) == len(parts) - parts.count(b""):
            self._str_by_bytes = by_bytes

    # --- type graph helpers -------------------------------------------------------------

    def resolve(self, t: Type | int) -> Type:
        """Skip typedef, const, volatile, restrict and type-tag chains.

        Raises :class:`~ebpf.errors.ParseError` on a reference loop.
        """
        if isinstance(t, int):
            t = self[t]
        steps = 0
        limit = self._count
        while isinstance(t, Qualifier):
            steps += 1
            if steps > limit:
                raise ParseError(f"reference loop through type {t.id}")
            t = t.type
        return t

    def sizeof(self, t: Type | int) -> int:
        """Size in bytes of ``t`` (arrays multiply, pointers are :attr:`pointer_size`).

        Raises :class:`ValueError` for types without a size (void, functions, forward
        declarations, decl tags) and :class:`~ebpf.errors.ParseError` on a loop.
        """
        if isinstance(t, int):
            t = self[t]
        n = 1
        for _ in range(self._count + 1):
            t = self.resolve(t)
            if isinstance(t, Array):
                n *= t.nelems
                t = t.elem_type
            elif isinstance(t, Var):
                t = t.type
            elif isinstance(t, (Int, Composite, Enum, Enum64, Float, DataSec)):
                return n * t.size
            elif isinstance(t, Pointer):
                return n * self.pointer_size
            else:
                raise ValueError(f"{type(t).__name__} {t.name or t.id} has no size")
        raise ParseError(f"reference loop through type {t.id}")

    @property
    def pointer_size(self) -> int:
        """Pointer size of the target: the size of ``long`` if the blob has it, else 8."""
        size = self._pointer_size
        if size is None:
            size = 8
            for name in ("long", "unsigned long", "long int", "long unsigned int"):
                found = self.find_all(name, Int)
                if found and found[0].size in (4, 8):
                    size = found[0].size
                    break
            self._pointer_size = size
        return size

    def __repr__(self) -> str:
        order = "little" if self.byte_order == "<" else "big"
        split = f", split on {len(self._base)} base types" if self._base is not None else ""
        return f"<btf.Spec {self._count} types, {order}-endian{split}>"


def _index_of(names: list[int], value: int, start: int) -> int:
    try:
        return names.index(value, start)
    except ValueError:
        return -1


def _kind_number(kind: type[Type] | None) -> int | None:
    """The ``BTF_KIND_*`` of a concrete type class, else ``None`` (filter by isinstance)."""
    if kind is None:
        return None
    k = kind.__dict__.get("kind")
    if isinstance(k, Kind) and KIND_CLASSES[k] is kind:
        return int(k)
    return None


# --- record decoders ------------------------------------------------------------------------
# Each takes (spec, id, word offset of the record, info word) and builds the type with
# tuple.__new__ (see types._Record); trailing entries are decoded with map/zip, in C.

_Decoder = Callable[[Spec, int, int, int], Type]


def _bad_kind(spec: Spec, tid: int, o: int, info: int) -> Type:
    raise ParseError(f"type {tid} has unknown kind {(info >> 24) & 0x1F}")


def _int(spec: Spec, tid: int, o: int, info: int) -> Type:
    w = spec._words
    enc = w[o + 3]
    return _tn(
        Int,
        (spec, tid, spec._names[w[o]], w[o + 2], enc & 0xFF, (enc >> 16) & 0xFF, enc >> 24 & 0xF),
    )


def _composite(cls: type[Composite]) -> _Decoder:
    def decode(spec: Spec, tid: int, o: int, info: int) -> Type:
        w = spec._words
        names = spec._names
        vlen = info & 0xFFFF
        if not vlen:
            return _tn(cls, (spec, tid, names[w[o]], w[o + 2], ()))
        raw = w[o + 3 : o + 3 + 3 * vlen].tolist()
        offsets = raw[2::3]
        if info >> 31:  # kind_flag: offset = bitfield_size << 24 | bit offset
            fields = zip(
                repeat(spec),
                map(names.__getitem__, raw[0::3]),
                raw[1::3],
                map(and_, offsets, repeat(0xFFFFFF)),
                map(rshift, offsets, repeat(24)),
            )
        else:
            fields = zip(
                repeat(spec), map(names.__getitem__, raw[0::3]), raw[1::3], offsets, repeat(0)
            )
        members = tuple(map(_tn, repeat(Member), fields))
        return _tn(cls, (spec, tid, names[w[o]], w[o + 2], members))

    return decode


def _enumeration(cls: type[Enum | Enum64]) -> _Decoder:
    def decode(spec: Spec, tid: int, o: int, info: int) -> Type:
        w = spec._words
        names = spec._names
        vlen = info & 0xFFFF
        signed = bool(info >> 31)
        if cls is Enum:
            raw = w[o + 3 : o + 3 + 2 * vlen].tolist()
            keys = raw[0::2]
            values = raw[1::2]
            if signed:
                values = [v - ((v & 0x80000000) << 1) for v in values]
        else:
            raw = w[o + 3 : o + 3 + 3 * vlen].tolist()
            keys = raw[0::3]
            values = [lo | hi << 32 for lo, hi in zip(raw[1::3], raw[2::3], strict=True)]
            if signed:
                values = [v - ((v & (1 << 63)) << 1) for v in values]
        pairs = zip(map(names.__getitem__, keys), values, strict=True)
        enumerators = tuple(map(_tn, repeat(EnumValue), pairs))
        return _tn(cls, (spec, tid, names[w[o]], w[o + 2], signed, enumerators))

    return decode


def _one_ref(cls: type[Pointer | Qualifier | Float]) -> _Decoder:
    """Kinds whose only field is ``size_or_type``."""

    def decode(spec: Spec, tid: int, o: int, info: int) -> Type:
        w = spec._words
        return _tn(cls, (spec, tid, spec._names[w[o]], w[o + 2]))

    return decode


def _with_flag(cls: type[Fwd | TypeTag]) -> _Decoder:
    """Kinds whose fields are ``size_or_type`` (unless FWD) and ``kind_flag``."""
    fwd = cls is Fwd

    def decode(spec: Spec, tid: int, o: int, info: int) -> Type:
        w = spec._words
        if fwd:
            return _tn(cls, (spec, tid, spec._names[w[o]], bool(info >> 31)))
        return _tn(cls, (spec, tid, spec._names[w[o]], w[o + 2], bool(info >> 31)))

    return decode


def _array(spec: Spec, tid: int, o: int, info: int) -> Type:
    w = spec._words
    return _tn(Array, (spec, tid, spec._names[w[o]], w[o + 3], w[o + 4], w[o + 5]))


def _linkage(value: int, tid: int) -> Linkage:
    if value < len(_LINKAGE):
        return _LINKAGE[value]
    raise ParseError(f"type {tid} has bad linkage {value}")


def _func(spec: Spec, tid: int, o: int, info: int) -> Type:
    w = spec._words
    vlen = info & 0xFFFF
    linkage = _LINKAGE[vlen] if vlen < 3 else _linkage(vlen, tid)
    return _tn(Func, (spec, tid, spec._names[w[o]], w[o + 2], linkage))


def _func_proto(spec: Spec, tid: int, o: int, info: int) -> Type:
    w = spec._words
    names = spec._names
    vlen = info & 0xFFFF
    if not vlen:
        return _tn(FuncProto, (spec, tid, names[w[o]], w[o + 2], (), False))
    raw = w[o + 3 : o + 3 + 2 * vlen].tolist()
    variadic = raw[-2] == 0 and raw[-1] == 0
    if variadic:
        del raw[-2:]
    fields = zip(repeat(spec), map(names.__getitem__, raw[0::2]), raw[1::2])
    params = tuple(map(_tn, repeat(Param), fields))
    return _tn(FuncProto, (spec, tid, names[w[o]], w[o + 2], params, variadic))


def _var(spec: Spec, tid: int, o: int, info: int) -> Type:
    w = spec._words
    return _tn(Var, (spec, tid, spec._names[w[o]], w[o + 2], _linkage(w[o + 3], tid)))


def _datasec(spec: Spec, tid: int, o: int, info: int) -> Type:
    w = spec._words
    raw = w[o + 3 : o + 3 + 3 * (info & 0xFFFF)].tolist()
    fields = zip(repeat(spec), raw[0::3], raw[1::3], raw[2::3])
    variables = tuple(map(_tn, repeat(VarSecinfo), fields))
    return _tn(DataSec, (spec, tid, spec._names[w[o]], w[o + 2], variables))


def _decl_tag(spec: Spec, tid: int, o: int, info: int) -> Type:
    w = spec._words
    idx = w[o + 3]
    idx -= (idx & 0x80000000) << 1
    return _tn(DeclTag, (spec, tid, spec._names[w[o]], w[o + 2], idx, bool(info >> 31)))


_DECODERS: tuple[_Decoder, ...] = (
    _bad_kind,  # 0: BTF_KIND_UNKN
    _int,
    _one_ref(Pointer),
    _array,
    _composite(Struct),
    _composite(Union),
    _enumeration(Enum),
    _with_flag(Fwd),
    _one_ref(Typedef),
    _one_ref(Volatile),
    _one_ref(Const),
    _one_ref(Restrict),
    _func,
    _func_proto,
    _var,
    _datasec,
    _one_ref(Float),
    _decl_tag,
    _with_flag(TypeTag),
    _enumeration(Enum64),
    *([_bad_kind] * 12),
)
