"""Spec: a parsed BTF blob, indexed as far as needed and decoded lazily.

Parsing (:meth:`Spec.from_bytes`) checks the header and the string section; nothing else is
read yet. The type section is indexed (where each record starts) by a walk that runs in C and
goes only as far as the ids or lookups asked for; a :class:`Type` is built the first time its
id is asked for, and cached; members, parameters and enumerators when first asked for.

Lookups by name search the string section, then the type section for the record whose
``name_off`` matches (the index only has to reach that record); a full name index is built
once lookups become frequent. :meth:`Spec.types` decodes whole kinds at once (:mod:`._bulk`);
the first walk over every type of a base blob reads each kind's columns at once and makes the
types as they are asked for without keeping them (most walks are made once: no dict of every
record, no collector pass over them); the next walk keeps them. Members, parameters and
enumerators are decoded in bulk, group by group, once many are asked for (sooner after such
a walk).

Errors: malformed input raises :class:`~ebpf.errors.ParseError` (a :class:`ValueError`), from
:meth:`Spec.from_bytes` / :meth:`Spec.from_file` for the header and strings, and from any
lookup or decode that reaches a bad record; :meth:`Spec.find` raises
:class:`~ebpf.errors.TypeNotFoundError` when nothing matches, ``spec[id]`` :class:`KeyError` for
an id out of range, ``Composite.member`` / ``Enum.value`` :class:`KeyError` for a missing name.
Nothing else (``tests/fuzz`` checks it). Every operation is linear (or better) in the blob.

Split BTF (kernel modules) is a spec with a ``base``: its type ids continue after the base's,
and its string offsets after the base's string section.

Speed matters here (vmlinux has ~150k types), so the hot loops run inside C builtins
(``list.extend``, ``map``, ``zip``, ``tuple.__new__``, ``bytes.find``) rather than in Python
bytecode, with the cyclic collector paused while records are built in bulk (and the records
then handed to its oldest generation, see :func:`._bulk.settle`). What is left is about one
C-level step per field per record: on CPython 3.11 (cachegrind) the walk costs ~1,200
instructions a record, making a record with ``tuple.__new__`` ~1,200, cutting a name from
the string section ~2,500 (``str.index`` alone ~1,200, most of it argument parsing), each
further column ~250. Tried and dropped for costing more: one id-ordered pass for every kind
(names of anonymous records cut too), one ``split`` of the whole string section with a dict
by offset, ``split`` of runs of names that follow each other (checking a run costs what
cutting does).
"""

from __future__ import annotations

import _thread
import array
import gc
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import accumulate, chain, compress, filterfalse, islice, repeat
from operator import add, and_, getitem, mul, rshift

from ..errors import ParseError, TypeNotFoundError
from . import _bulk, wire
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

TYPE_CHECKING = False  # the type checkers' constant, without importing typing (import time)
if not TYPE_CHECKING:

    def overload(func: object) -> object:
        """``typing.overload`` at run time: the stubs are replaced by the implementation."""
        return func


if TYPE_CHECKING:
    import mmap
    import os
    from typing import Any, TypeVar, overload

    _Blob = bytes | bytearray | memoryview | mmap.mmap
    _Words = memoryview | array.array[int]

    T = TypeVar("T", bound=Type)

__all__ = ["Spec", "TypeNotFoundError"]

_tn = tuple.__new__

#: Name lookups a spec serves by scanning before it builds its name index.
_COLD_FINDS = 16
#: Matches of a ``name_off`` pattern in the type section a cold lookup checks one by one
#: before it lists every record's ``name_off`` instead.
_COLD_HITS = 64
#: Copies of a name in the string section a lookup searches for one by one; past that it
#: checks every record's name offset once.
_FEW_COPIES = 8
#: Members/parameters/enumerators decoded type by type before all of them are decoded at
#: once (about where decoding one by one starts to cost more than the bulk decode), and the
#: same once every type was decoded by :meth:`Spec.types` (someone walks the whole blob).
_BULK_AFTER = 512
_BULK_AFTER_WHOLE = 32
#: Qualifier chains longer than this are checked for loops.
_SHORT_CHAIN = 32
#: Names decoded one by one before the whole string section is decoded at once.
_NAME_MISSES = 4096
#: String sections up to this size (an object file's) are decoded whole at the first name
#: asked for: one split costs less than a few names one by one.
_SMALL_STRINGS = 2 << 10

_WORD = "I" if array.array("I").itemsize == 4 else "L"

_LINKAGE = (Linkage.STATIC, Linkage.GLOBAL, Linkage.EXTERN)

#: Kinds whose only field is ``size_or_type``.
_PLAIN = frozenset((Kind.PTR, Kind.TYPEDEF, Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.FLOAT))
#: The largest FUNC ``info`` word without kind_flag and with a known linkage (vlen bits).
_FUNC_INFO_MAX = Kind.FUNC << 24 | len(_LINKAGE) - 1
#: Kinds :meth:`Spec._decode_whole` decodes record by record (few records, more checks).
_ONE_BY_ONE = frozenset((Kind.VOID, Kind.VAR, Kind.DATASEC, Kind.DECL_TAG))
#: Kinds with members, parameters or enumerators (:mod:`._bulk` decodes them in bulk).
_TRAILING = (Kind.STRUCT, Kind.UNION, Kind.FUNC_PROTO, Kind.ENUM, Kind.ENUM64)
#: info >> 24 (kind_flag, unused bits, kind) -> kind
_LOW5 = bytes(b & 0x1F for b in range(256))
_KIND_PTR, _KIND_ARRAY = int(Kind.PTR), int(Kind.ARRAY)

#: Records indexed per step of the walk at first; each step doubles, up to the maximum.
_WALK_CHUNK = 512
_WALK_CHUNK_MAX = 1 << 16


class _BadKind(Exception):
    pass


class _Steps(dict[int, int]):
    """``info`` word -> record length in words; fills itself, rejects unknown kinds."""

    __slots__ = ()

    def __missing__(self, info: int) -> int:
        try:
            words = self[info] = wire.record_words(info)
        except ValueError as exc:
            raise _BadKind(str(exc)) from None
        return words


#: Shared by every spec: the record length only depends on ``info``.
_STEPS = _Steps()


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
            if spec._base is None:
                raise ParseError(f"negative string offset {off}")
            name = self[off] = spec._base._names[off]
            return name
        if local >= spec.header.str_len:
            raise ParseError(
                f"string offset {off} beyond the string section ({spec.header.str_len} bytes)"
            )
        self.misses += 1
        if self.misses == _NAME_MISSES or (
            self.misses == 1 and spec.header.str_len <= _SMALL_STRINGS
        ):
            spec._decode_all_names()
            if off in self:
                return self[off]
        data = spec._data
        start = spec._ss + local
        end = data.find(b"\0", start, spec._ss + spec.header.str_len)  # found: checked at parse
        name = self[off] = data[start:end].decode("utf-8", "surrogateescape")
        return name


class Spec:
    """A parsed BTF blob: ``len(spec)`` type ids (including ``void``, id 0), each decoded on
    first access with ``spec[type_id]``.

    Build one with :meth:`from_bytes`, :meth:`from_file` or :func:`ebpf.btf.load_kernel`.
    A spec can be shared between threads (indexing is serialised; under contention a type may
    be decoded twice, and then two equal objects exist for it).
    """

    __slots__ = (
        "_bad_word",
        "_base",
        "_bulk_done",
        "_by_off",
        "_count",
        "_data",
        "_feed",
        "_finds",
        "_first",
        "_kind_bytes",
        "_kind_records",
        "_lock",
        "_member_cache",
        "_name_offs",
        "_names",
        "_names_complete",
        "_offs",
        "_param_cache",
        "_pointer_size",
        "_ss",
        "_str_by_bytes",
        "_str_dups",
        "_str_first",
        "_streamed",
        "_strings",
        "_trailing_misses",
        "_ts",
        "_types",
        "_value_cache",
        "_walk_chunk",
        "_walk_error",
        "_whole_done",
        "_words",
        "byte_order",
        "header",
    )

    header: wire.Header
    byte_order: str
    _bad_word: int
    _base: Spec | None
    _bulk_done: set[int]
    _by_off: dict[int, int] | None
    _count: int | None
    _data: bytes | bytearray | mmap.mmap
    _feed: Iterator[int] | None
    _finds: int
    _first: int
    _kind_bytes: bytes | None
    _kind_records: dict[int, tuple[list[int], Sequence[int]]]
    _lock: _thread.RLock
    _name_offs: list[int] | None
    _names: _Names
    _names_complete: bool
    _offs: list[int]
    _pointer_size: int | ParseError | None
    _ss: int
    _str_by_bytes: dict[bytes, int] | None
    _str_dups: dict[bytes, list[int]]
    _str_first: int
    _streamed: bool
    _strings: bytes | None
    _member_cache: dict[int, tuple[Member, ...]]
    _param_cache: dict[int, tuple[Param, ...]]
    _trailing_misses: list[int]
    _ts: int
    _types: dict[int, Type]
    _value_cache: dict[int, tuple[EnumValue, ...]]
    _walk_chunk: int
    _walk_error: ParseError | None
    _whole_done: bool | None
    _words: _Words

    def __init__(self) -> None:
        raise TypeError("use Spec.from_bytes(), Spec.from_file() or btf.load_kernel()")

    # --- construction -------------------------------------------------------------------

    @classmethod
    def from_bytes(cls, data: _Blob, *, base: Spec | None = None) -> Spec:
        """Parse a BTF blob (a ``.BTF`` section, ``/sys/kernel/btf/*`` contents).

        ``base`` is the spec that split BTF (a kernel module's) extends. The blob must not
        change while the spec is in use: types are decoded from it lazily.

        Raises :class:`~ebpf.errors.ParseError` for malformed input: here for a bad header or
        string section, and when they are reached for bad type records (the type section is
        indexed as far as lookups need).
        """
        if isinstance(data, memoryview):
            data = data.tobytes()
        header, order = wire.parse_header(data)
        ts = header.hdr_len + header.type_off
        ss = header.hdr_len + header.str_off
        if base is None and (not header.str_len or data[ss]):
            raise ParseError("BTF string section does not start with a NUL byte", ss)
        if header.str_len and data[ss + header.str_len - 1]:
            raise ParseError("BTF string section does not end with a NUL byte", ss)

        words: _Words
        if order == wire.NATIVE_ORDER and _WORD == "I":
            words = memoryview(data)[ts : ts + header.type_len].cast("I")
        else:
            words = array.array(_WORD, bytes(data[ts : ts + header.type_len]))
            if order != wire.NATIVE_ORDER:
                words.byteswap()

        self = object.__new__(cls)
        self._data = data
        self.header = header
        self.byte_order = order
        self._base = base
        self._first = len(base) if base is not None else 1
        self._words = words
        self._ts = ts
        self._ss = ss
        self._strings = None
        self._str_first = base._str_first + base.header.str_len if base is not None else 0
        self._types = {} if base is not None else {0: Void(self, 0, "")}
        self._names = _Names(self)
        self._member_cache = {}
        self._param_cache = {}
        self._value_cache = {}
        self._trailing_misses = [0, 0, 0]  # per _bulk group
        self._names_complete = False
        self._name_offs = None
        self._by_off = None
        self._str_by_bytes = None
        self._str_dups = {}
        self._finds = 0
        self._pointer_size = None
        self._kind_bytes = None
        self._kind_records = {}
        self._bulk_done = set()
        self._walk_error = None
        self._whole_done = None
        self._streamed = False
        self._bad_word = -1
        self._walk_chunk = _WALK_CHUNK
        self._lock = _thread.RLock()
        if len(words):
            # The record after the one at word ``o`` starts at ``o + steps[info at o + 1]``.
            # ``_offs`` feeds itself: extending it from ``_feed`` reads the very list being
            # extended, so the walk over the type section runs in C. (The running sum of the
            # steps is each next offset: ``accumulate`` adds them without a call per record.)
            self._offs = [0]
            info_at = words[1:]
            self._feed = accumulate(
                map(_STEPS.__getitem__, map(getitem, repeat(info_at), self._offs))
            )
            self._count = None
        else:
            self._offs = []
            self._feed = None
            self._count = self._first
        return self

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], *, base: Spec | None = None) -> Spec:
        """Read and parse a BTF file; a gzip file (gzip magic, e.g. ``.gz``) is decompressed.

        A gzip file is inflated as a stream: the BTF header is checked as soon as its bytes
        are out, then inflating stops at the size the header gives, so a small file that
        inflates to gigabytes is refused early. Raises :class:`~ebpf.errors.ParseError` for
        bad gzip data, a bad header, a blob over :data:`MAX_GZIP_SIZE` bytes, or data past
        the blob's end.
        """
        with open(path, "rb") as f:
            if f.read(2) == b"\x1f\x8b":
                f.seek(0)
                data = _gunzip_btf(f, str(path))
            else:
                f.seek(0)
                data = f.read()
        return cls.from_bytes(data, base=base)

    # --- the record index ---------------------------------------------------------------

    def _walk(self, need: int | None = None, *, past_word: int | None = None) -> None:
        """Index records until ``need`` are known, or one starts after ``past_word``, or all
        are (both ``None``). Raises the :class:`ParseError` of a bad record only when the
        records asked for reach it."""
        offs = self._offs
        with self._lock:  # one walker at a time: the feed is not reentrant
            while self._feed is not None:
                known = len(offs) - 1
                if need is not None and known >= need:
                    return
                if past_word is not None and offs[-1] > past_word:
                    return
                chunk = self._walk_chunk
                self._walk_chunk = min(chunk * 2, _WALK_CHUNK_MAX)
                try:
                    offs.extend(islice(self._feed, chunk))
                except IndexError:  # the next record would start at or past the end
                    self._finish_walk()
                except _BadKind as exc:
                    self._fail_walk(str(exc), offs[-1], 4)
                else:
                    if len(offs) - 1 - known < chunk:  # pragma: no cover - no self-feeding
                        self._walk_slowly()
        error = self._walk_error
        if error is not None:
            if need is not None and len(offs) >= need:
                return
            if past_word is not None and past_word < self._bad_word:
                return
            raise error

    def _finish_walk(self) -> None:
        offs = self._offs
        self._feed = None
        end = offs.pop()
        n = len(self._words)
        if end != n:
            bad = offs.pop() if end > n else end
            self._fail_walk(f"type record {len(offs) + 1} overruns the type section", bad, 0)
        self._count = self._first + len(offs)

    def _fail_walk(self, what: str, word: int, at: int) -> None:
        """Record that the record at ``word`` is bad; keep the records before it."""
        if self._feed is not None:
            self._offs.pop()
        self._feed = None
        self._count = self._first + len(self._offs)
        self._bad_word = word
        self._walk_error = ParseError(what, self._ts + 4 * word + at)

    def _walk_slowly(self) -> None:  # pragma: no cover - Pythons without self-feeding extend
        offs = self._offs
        info_at = self._words[1:]
        try:
            while True:
                offs.append(offs[-1] + _STEPS[info_at[offs[-1]]])
        except IndexError:
            self._finish_walk()
        except _BadKind as exc:
            self._fail_walk(str(exc), offs[-1], 4)

    def _known(self) -> int:
        """Number of records indexed so far."""
        return len(self._offs) - 1 if self._feed is not None else len(self._offs)

    def _has(self, type_id: int) -> bool:
        """``0 <= type_id < len(self)``, indexing only as far as needed. Raises the
        :class:`ParseError` of a bad record for ids at or past it."""
        if type_id < 0:
            return False
        if self._count is not None:
            if type_id < self._count:
                return True
            if self._walk_error is not None:  # it may have been a type but for the bad record
                raise self._walk_error
            return False
        i = type_id - self._first
        if i >= self._known():
            self._walk(i + 1)
        return i < self._known()

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
        strings = self._strings
        if strings is None:
            strings = self._strings = bytes(self._data[self._ss : self._ss + self.header.str_len])
        return strings

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

    def record_offsets(self) -> list[int]:
        """Byte offset of every record from the start of the type section, in id order
        (index: type id - :attr:`first_id`). Indexes the whole section: raises the
        :class:`ParseError` of a bad record."""
        self._walk()
        return list(map(mul, self._offs, repeat(4)))

    def ids_of_kinds(self, kinds: Iterable[int]) -> list[int]:
        """The ids of this blob's types whose ``BTF_KIND_*`` is one of ``kinds``, ascending,
        without decoding them (raises the :class:`ParseError` of a bad record)."""
        kb = _bulk.kinds_of(self)
        first = self._first
        found: list[int] = []
        for kind in set(kinds).intersection(kb):
            found.extend(_bulk.positions(kb, kind))
        found.sort()
        return list(map(add, found, repeat(first)))

    def raw_record(self, type_id: int) -> bytes:
        """The bytes of ``type_id``'s record (``struct btf_type`` and its trailing data), in
        the blob's byte order."""
        i = self._local(type_id)
        self._walk(i + 2)
        offs = self._offs
        end = offs[i + 1] if i + 1 < len(offs) else len(self._words)
        return bytes(self._data[self._ts + 4 * offs[i] : self._ts + 4 * end])

    def _pointee(self, type_id: int) -> int | None:
        """The target id of pointer ``type_id``, read from its record without decoding it;
        ``None`` when ``type_id`` is not a pointer of this indexed blob to one of its types
        (the caller then goes through the decoded types, and their errors)."""
        count = self._count
        first = self._first
        if count is None or not first <= type_id < count:
            return None
        o = self._offs[type_id - first]
        words = self._words
        target = words[o + 2]
        if (words[o + 1] >> 24) & 0x1F != _KIND_PTR or not first <= target < count:
            return None
        return int(target)

    def _pointee_nelems(self, type_id: int) -> int | None:
        """``nelems`` of the array that pointer ``type_id`` points to directly (how libbpf's
        ``__uint(name, n)`` encodes ``n``), as :meth:`_pointee` reads it."""
        target = self._pointee(type_id)
        if target is None:
            return None
        o = self._offs[target - self._first]
        words = self._words
        if (words[o + 1] >> 24) & 0x1F != _KIND_ARRAY:
            return None
        return int(words[o + 5])

    def _local(self, type_id: int) -> int:
        if not isinstance(type_id, int) or type_id < self._first or not self._has(type_id):
            raise KeyError(type_id)
        return type_id - self._first

    # --- lookup by id -------------------------------------------------------------------

    def __len__(self) -> int:
        if self._count is None or self._walk_error is not None:
            self._walk()
        assert self._count is not None
        return self._count

    def __iter__(self) -> Iterator[Type]:
        return self.types()

    def __getitem__(self, type_id: int) -> Type:
        t = self._types.get(type_id)
        if t is not None:
            return t
        if not isinstance(type_id, int) or not self._has(type_id):
            raise KeyError(type_id)
        return self._decode(type_id)

    def _ref(self, type_id: int) -> Type:
        """Resolve a reference found inside a type: a bad id is malformed input."""
        t = self._types.get(type_id)
        if t is not None:
            return t
        if not self._has(type_id):
            raise ParseError(f"reference to type id {type_id}, but there are {len(self)} types")
        i = type_id - self._first
        if i < 0:
            assert self._base is not None
            return self._base._ref(type_id)
        o = self._offs[i]
        info = self._words[o + 1]
        t = self._types[type_id] = _DECODERS[(info >> 24) & 0x1F](self, type_id, o, info)
        return t

    def _decode(self, type_id: int) -> Type:
        i = type_id - self._first
        if i < 0:
            assert self._base is not None
            return self._base._ref(type_id)
        t = self._types[type_id] = self._decode_record(i)
        return t

    def _decode_record(self, i: int) -> Type:
        """Build the type of record ``i`` (type id - first id), uncached."""
        o = self._offs[i]
        info = self._words[o + 1]
        return _DECODERS[(info >> 24) & 0x1F](self, self._first + i, o, info)

    def _members_of(self, type_id: int) -> tuple[Member, ...]:
        """The members of struct/union ``type_id`` of this blob (decoded once)."""
        found = self._member_cache.get(type_id)
        if found is None:
            if self._many_misses(_bulk.MEMBERS):
                found = self._member_cache.get(type_id)
            if found is None:
                o = self._offs[type_id - self._first]
                members = _bulk.decode_members(self, o, self._words[o + 1])
                found = self._member_cache[type_id] = members
        return found

    def _params_of(self, type_id: int) -> tuple[Param, ...]:
        """The parameters of func proto ``type_id`` of this blob (decoded once)."""
        found = self._param_cache.get(type_id)
        if found is None:
            if self._many_misses(_bulk.PARAMS):
                found = self._param_cache.get(type_id)
            if found is None:
                o = self._offs[type_id - self._first]
                params = _bulk.decode_params(self, o, self._words[o + 1])
                found = self._param_cache[type_id] = params
        return found

    def _values_of(self, type_id: int) -> tuple[EnumValue, ...]:
        """The enumerators of enum ``type_id`` of this blob (decoded once)."""
        found = self._value_cache.get(type_id)
        if found is None:
            if self._many_misses(_bulk.VALUES):
                found = self._value_cache.get(type_id)
            if found is None:
                o = self._offs[type_id - self._first]
                found = self._value_cache[type_id] = _enum_values(self, o, self._words[o + 1])
        return found

    def _variadic_of(self, type_id: int) -> bool:
        """``variadic`` of func proto ``type_id`` of this blob, from its record: a last
        parameter with neither name nor type stands for "..."."""
        w = self._words
        o = self._offs[type_id - self._first]
        vlen = w[o + 1] & 0xFFFF
        return vlen > 0 and not (w[o + 1 + 2 * vlen] or w[o + 2 + 2 * vlen])

    def _func_linkage(self, type_id: int) -> Linkage:
        """``linkage`` of func ``type_id`` of this blob, from its record (checked when the
        type was made)."""
        w = self._words
        return _linkage(w[self._offs[type_id - self._first] + 1] & 0xFFFF, type_id)

    def _many_misses(self, group: int) -> bool:
        """Count a cache miss of ``group`` (:data:`._bulk.MEMBERS`...); at the
        :data:`_BULK_AFTER`-th, decode the whole group at once and return ``True``. Once every
        type is decoded (:meth:`types` walks the blob), the :data:`_BULK_AFTER_WHOLE`-th miss
        of any group decodes every group not decoded yet, in one go (one pass of the cyclic
        collector over the new records instead of one per group)."""
        misses = self._trailing_misses
        n = misses[group] = misses[group] + 1
        walked = self._whole_done or self._streamed
        if n < (_BULK_AFTER_WHOLE if walked else _BULK_AFTER):
            return False
        groups = [group]
        if walked:
            groups = [g for g, m in enumerate(misses) if m >= 0]
        for g in groups:
            misses[g] = -(1 << 62)  # tried once: malformed input stays one by one
        _bulk.decode_trailing(self, groups)
        return True

    def _names_of(self, offsets: list[int]) -> Iterator[str]:
        """The strings at ``offsets`` (name offsets of many records), each decoded once:
        the distinct offsets not decoded yet are cut from the string section together (see
        :meth:`_names_at`), so that repeated names share one ``str``."""
        names = self._names
        if not self._names_complete and offsets:
            strings = self.strings
            if self._base is None and strings.isascii():
                missing = list(filterfalse(names.__contains__, dict.fromkeys(offsets)))
                if missing:
                    names.update(zip(missing, self._names_at(missing, strings.decode("ascii")),
                                     strict=True))
            else:
                self._decode_all_names()
        return map(names.__getitem__, offsets)

    def _decode_all_names(self) -> None:
        """Decode the whole string section at once (cheaper than name by name for most)."""
        if self._names_complete:
            return
        self._names_complete = True
        strings = self.strings
        if strings.isascii():  # then offsets in the decoded text are byte offsets
            parts: list[str] = strings.decode("ascii").split("\0")
        else:
            parts = [p.decode("utf-8", "surrogateescape") for p in strings.split(b"\0")]
        # Each part is followed by its NUL; the length of a decoded part can differ from its
        # byte length only when not ASCII, so count bytes then.
        lengths = map(len, parts) if strings.isascii() else map(len, strings.split(b"\0"))
        starts = accumulate(map(add, lengths, repeat(1)), initial=self._str_first)
        self._names.update(zip(starts, parts, strict=False))

    # --- iteration ----------------------------------------------------------------------

    @overload
    def types(self, kind: None = None) -> Iterator[Type]: ...
    @overload
    def types(self, kind: type[T]) -> Iterator[T]: ...
    def types(self, kind: type[Type] | None = None) -> Iterator[Type]:
        """Every type in id order (``void`` first), or only those of class ``kind`` (a
        concrete class such as :class:`Struct`, or a base such as :class:`Composite`).

        The types asked for are decoded together, which is much faster than one by one.
        Nothing is decoded before the first item is asked for. The first walk over every
        type of a base blob makes them as they are asked for and keeps none (the next walk
        keeps them all): its items are equal to ``spec[id]``, not always the same objects.
        """
        # The runs are iterators over many types: items then come from C, not a generator.
        return chain.from_iterable(self._type_runs(kind))

    def _type_runs(self, kind: type[Type] | None) -> Iterator[Iterable[Type]]:
        if self._base is not None:
            yield self._base.types(kind)
        elif kind is None or issubclass(Void, kind):
            yield (self._types[0],)
        kinds = None if kind is None else _kinds_of_class(kind)
        self._walk()
        first = self._first
        if kinds is None and self._base is None:
            if not self._streamed and self._whole_done is None and not self._bulk_done \
                    and self._walk_error is None:
                # The first walk over everything makes the types as it goes and keeps
                # none (a second one keeps them): most walks are made once.
                self._streamed = True
                stream = self._stream_whole()
                if stream is not None:
                    yield stream
                    return
            if self._whole():
                yield islice(self._types.values(), 1, None)  # every id, in id order
                return
        selected = _bulk.decode_kinds(self, kinds)
        cache = self._types
        present = set(_bulk.kinds_of(self))
        if self._bulk_done.issuperset(present if kinds is None else present.intersection(kinds)):
            yield map(cache.__getitem__, map(add, selected, repeat(first)))
            return
        yield self._one_by_one(selected)

    def _one_by_one(self, selected: Iterable[int]) -> Iterator[Type]:
        cache = self._types
        first = self._first
        for i in selected:
            # A malformed record is decoded (and raises) here.
            yield cache.get(first + i) or self._decode(first + i)

    def _whole(self) -> bool:
        """Decode every record of a well-formed base blob into the cache in one go; ``False``
        (nothing changed) if the blob is split, malformed, or already decoded by kinds.

        Once this returned ``True`` the cache holds every id, in id order."""
        with self._lock:
            if self._whole_done is not None:
                return self._whole_done
            if self._walk_error is not None or self._bulk_done:
                return False
            was_enabled = gc.isenabled()
            gc.disable()  # see _bulk.decode_kinds: new acyclic records, no point collecting
            try:
                fresh, present = self._decode_whole()
                fresh.update(self._types)  # keep the objects already handed out (order stays)
            except (ParseError, IndexError, _BadKind):
                self._whole_done = False  # malformed: decoded (and reported) record by record
                return False
            finally:
                if was_enabled:
                    _bulk.settle(self)
                    gc.enable()
            self._types = fresh
            self._bulk_done.update(present)
            self._whole_done = True
            return True

    def _decode_whole(self) -> tuple[dict[int, Type], list[int]]:
        """Every type of this (base, fully indexed) blob by id, in id order (``void`` first),
        and the kinds present. The dict's keys are made in id order first, so that its values
        come in id order."""
        fresh: dict[int, Type] = dict.fromkeys(range(len(self._offs) + 1))  # type: ignore[assignment]
        fresh[0] = self._types[0]
        runs, ids_of, present = self._kind_runs()
        for kind in present:
            fresh.update(zip(ids_of[kind], runs[kind], strict=True))
        return fresh, present

    def _stream_whole(self) -> Iterator[Type] | None:
        """Every type of this (base, fully indexed) blob but ``void``, in id order, made as
        they are asked for and not kept: the kinds' iterators merged back into id order by
        ``next`` over them picked by the kind bytes (in C). ``None`` if the blob is
        malformed (then it is decoded, and reported, record by record)."""
        with self._lock:
            was_enabled = gc.isenabled()
            # Large tuples and lists of columns, nothing cyclic: a collection in the middle
            # would only walk them (about 10 ms on vmlinux).
            gc.disable()
            try:
                runs, _ids, _present = self._kind_runs()
                return map(next, _getter(_bulk.kinds_of(self))(runs))
            except (ParseError, IndexError, _BadKind):
                return None
            finally:
                if was_enabled:
                    _bulk.settle(self)
                    gc.enable()

    def _kind_runs(self) -> tuple[list[Iterator[Type]], list[list[int]], list[int]]:
        """Per kind, an iterator making its types in id order, the ids of each kind, and the
        kinds present. Every column is read (and checked) here, so that consuming the
        iterators cannot fail.

        The ids and record offsets are dealt out to one list per kind (``list.append`` mapped
        over the kinds' lists picked by one ``itemgetter``), and each kind is built column by
        column: its words read with one ``itemgetter`` per column, its names cut from the
        decoded string section, its types made with ``tuple.__new__``, all in C."""
        w = self._words
        offs = self._offs
        n = len(offs)
        runs: list[Iterator[Type]] = [iter(())] * 32  # kind bytes are below 32
        ids_of: list[list[int]] = [[] for _ in range(32)]
        if not n:
            return runs, ids_of, []
        kb = _bulk.kinds_of(self)
        pick = _getter(kb)
        any(map(list.append, pick(ids_of), range(1, n + 1)))
        by_id = [0]  # record offsets by type id
        by_id += offs
        offs_of: list[Sequence[int]] = [() for _ in range(32)]
        strings = self.strings
        text = strings.decode("ascii") if strings.isascii() else None
        present = [kind for kind in range(32) if ids_of[kind]]
        for kind in present:
            offs_of[kind] = _getter(ids_of[kind])(by_id)
        for trailing in _TRAILING:  # kept for _bulk.decode_trailing
            self._kind_records[trailing] = (ids_of[trailing], offs_of[trailing])
        spec = self
        for kind in present:
            ids = ids_of[kind]
            if kind >= len(KIND_CLASSES) or kind in _ONE_BY_ONE:
                # VAR, DATASEC, DECL_TAG and bad kinds: record by record (raises)
                idx = map(add, ids, repeat(-1))
                runs[kind] = iter(list(map(self._decode_record, idx)))
                continue
            cls = KIND_CLASSES[kind]
            at = _getter(offs_of[kind])
            name_offs = at(w)
            names = self._names_at(name_offs, text) if any(name_offs) else repeat("")
            fields: Iterator[tuple[Any, ...]]
            if kind in _PLAIN:
                fields = zip(repeat(spec), ids, names, at(w[2:]))
            elif kind == Kind.FUNC:
                infos = at(w[1:])
                linkage: Iterable[Linkage | None]
                if max(infos) <= _FUNC_INFO_MAX:  # no flag, good linkage: read when asked
                    linkage = repeat(None)
                else:
                    vlens = map(and_, infos, repeat(0xFFFF))
                    linkage = list(map(_LINKAGE.__getitem__, vlens))  # IndexError: bad linkage
                fields = zip(repeat(spec), ids, names, at(w[2:]), linkage)
            elif kind == Kind.FUNC_PROTO:  # variadic: read from the record when asked for
                fields = zip(repeat(spec), ids, names, at(w[2:]), repeat(None), repeat(None))
            elif kind in (Kind.STRUCT, Kind.UNION):
                fields = zip(repeat(spec), ids, names, at(w[2:]), repeat(None))
            elif kind in (Kind.ENUM, Kind.ENUM64):
                signed = map(bool, map(rshift, at(w[1:]), repeat(31)))
                fields = zip(repeat(spec), ids, names, at(w[2:]), signed, repeat(None))
            elif kind == Kind.INT:
                enc = at(w[3:])
                bits = map(and_, enc, repeat(0xFF))
                offset = map(and_, map(rshift, enc, repeat(16)), repeat(0xFF))
                encoding = map(and_, map(rshift, enc, repeat(24)), repeat(0xF))
                fields = zip(repeat(spec), ids, names, at(w[2:]), bits, offset, encoding)
            elif kind == Kind.ARRAY:
                fields = zip(repeat(spec), ids, names, at(w[3:]), at(w[4:]), at(w[5:]))
            elif kind == Kind.FWD:
                is_union = map(bool, map(rshift, at(w[1:]), repeat(31)))
                fields = zip(repeat(spec), ids, names, is_union)
            else:  # TYPE_TAG
                flags = map(bool, map(rshift, at(w[1:]), repeat(31)))
                fields = zip(repeat(spec), ids, names, at(w[2:]), flags)
            runs[kind] = map(_tn, repeat(cls), fields)
        return runs, ids_of, present

    def _names_at(self, offsets: Sequence[int], text: str | None) -> tuple[str, ...]:
        """The strings at ``offsets`` of this (base) blob; ``text`` is the string section
        decoded, if it is ASCII: then each is cut from it where ``str.index`` finds its NUL."""
        if max(offsets) >= self.header.str_len:
            raise ParseError(f"string offset {max(offsets)} beyond the string section")
        if text is None:
            self._decode_all_names()
            return _getter(offsets)(self._names)
        ends = map(text.index, repeat("\0"), offsets)  # found: the section ends with NUL
        return tuple(map(getitem, repeat(text), map(slice, offsets, ends)))

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
        elif len(str_offs) <= _FEW_COPIES:
            found: list[int] = []
            for p in str_offs:
                found.extend(self._ids_with_name_off(p))
            yield from sorted(set(found))
        elif str_offs:
            # Many copies of the string (a malformed blob: "" matches every "\0\0"): one
            # pass over the records' name offsets, not one search per copy (quadratic).
            wanted = set(str_offs)
            names = self._record_name_offs()
            yield from compress(range(len(names)), map(wanted.__contains__, names))

    def _string_offsets(self, name: bytes) -> list[int]:
        """Global offsets of the strings equal to ``name`` (base strings first)."""
        found = self._base._string_offsets(name) if self._base is not None else []
        first = self._str_first
        by_bytes = self._str_by_bytes
        if by_bytes is not None:
            p = by_bytes.get(name)
            if p is not None:
                found.append(first + p)
                more = self._str_dups.get(name)
                if more:
                    found.extend(map(add, more, repeat(first)))
            return found
        data = self._data
        ss = self._ss
        se = ss + self.header.str_len
        if data[ss : ss + len(name) + 1] == name + b"\0":
            found.append(first)
        pat = b"\0" + name + b"\0"
        pos = data.find(pat, ss, se)
        while pos >= 0:
            found.append(first + pos + 1 - ss)
            pos = data.find(pat, pos + 1, se)
        return found

    def _ids_with_name_off(self, off: int) -> Iterator[int]:
        """Local indices of the records whose ``name_off`` is ``off``, ascending."""
        names = self._name_offs
        start = 0
        if names is None:
            # Search the type section for the 4-byte value and keep the hits that are the
            # first word of a record (found by bisection in the record index, which only
            # needs to reach the hit).
            ts = self._ts
            te = ts + self.header.type_len
            data = self._data
            pat = off.to_bytes(4, "little" if self.byte_order == "<" else "big")
            offs = self._offs
            hits = 0
            pos = data.find(pat, ts, te)
            while pos >= 0:
                hits += 1
                if hits > _COLD_HITS:
                    break
                rel = pos - ts
                if not rel & 3:
                    word = rel >> 2
                    self._walk(past_word=word)
                    i = bisect_left(offs, word, 0, self._known())
                    if i < self._known() and offs[i] == word:
                        start = i + 1
                        yield i
                pos = data.find(pat, pos + 1, te)
            else:
                return
            # Too many coincidental hits (a small offset): list every record's name_off.
            names = self._record_name_offs()
        by_off = self._by_off
        if by_off is not None and not start:
            i = by_off.get(off, -1)
            if i >= 0:  # the only record with this name: no scan of the rest
                yield i
                return
            if i < -1:  # the first of several (encoded -(index + 2))
                i = -i - 2
        else:
            i = _index_of(names, off, start)
        while i >= 0:
            yield i
            i = _index_of(names, off, i + 1)

    def _record_name_offs(self) -> list[int]:
        names = self._name_offs
        if names is None:
            self._walk()
            names = self._name_offs = list(map(getitem, repeat(self._words), self._offs))
        return names

    def _build_name_index(self) -> None:
        """Index names once lookups are frequent: one pass over each section."""
        names = self._record_name_offs()
        by_off = dict(zip(reversed(names), range(len(names) - 1, -1, -1), strict=True))
        if len(by_off) != len(names):
            # Mark the name offsets several records share (anonymous types' 0, and repeats),
            # so a lookup of a unique name stops at its hit instead of scanning to the end.
            last = dict(zip(names, range(len(names)), strict=True))
            for o, i in by_off.items():
                if last[o] != i:
                    by_off[o] = -i - 2
        self._by_off = by_off
        parts = self.strings.split(b"\0")
        starts = list(accumulate(map(add, map(len, parts), repeat(1)), initial=0))
        by_bytes = dict(zip(reversed(parts), reversed(starts[: len(parts)]), strict=True))
        dups: dict[bytes, list[int]] = {}
        if len(by_bytes) - (b"" in by_bytes) != len(parts) - parts.count(b""):
            # Some strings repeat (not what producers write, but legal): list their later
            # copies, so a lookup never scans the section (once per copy was quadratic).
            repeated = {p for p, n in Counter(parts).items() if n > 1 and p}
            for part, start in compress(zip(parts, starts, strict=False),
                                        map(repeated.__contains__, parts)):
                dups.setdefault(part, []).append(start)
            for offs in dups.values():
                del offs[0]  # the first copy is in by_bytes
        self._str_dups = dups
        self._str_by_bytes = by_bytes

    # --- type graph helpers -------------------------------------------------------------

    def resolve(self, t: Type | int) -> Type:
        """Skip typedef, const, volatile, restrict and type-tag chains.

        Raises :class:`~ebpf.errors.ParseError` on a reference loop.
        """
        if isinstance(t, int):
            t = self[t]
        steps = 0
        seen: set[int] = set()
        while isinstance(t, Qualifier):
            steps += 1
            if steps > _SHORT_CHAIN:  # real chains are short: only then look for a loop
                if t.id in seen:
                    raise ParseError(f"reference loop through type {t.id}")
                seen.add(t.id)
            t = t.type
        return t

    def sizeof(self, t: Type | int) -> int:
        """Size in bytes of ``t`` (arrays multiply, pointers are :attr:`pointer_size`).

        Raises :class:`~ebpf.errors.ParseError` (a :class:`ValueError`) for types without a
        size (void, functions, forward declarations, decl tags), where BTF that should
        describe a sized object (a map key, a field) is malformed, and on a loop.
        """
        if isinstance(t, int):
            t = self[t]
        n = 1
        seen: set[int] = set()
        while True:
            t = self.resolve(t)
            if isinstance(t, (Array, Var)):
                if t.id in seen:
                    raise ParseError(f"reference loop through type {t.id}")
                seen.add(t.id)
                if isinstance(t, Array):
                    n *= t.nelems
                    t = t.elem_type
                else:
                    t = t.type
            elif isinstance(t, (Int, Composite, Enum, Enum64, Float, DataSec)):
                return n * t.size
            elif isinstance(t, Pointer):
                return n * self.pointer_size
            else:
                raise ParseError(f"{type(t).__name__} {t.name or t.id} has no size")

    @property
    def pointer_size(self) -> int:
        """Pointer size of the target: the size of ``long`` if the blob has it, else 8."""
        size = self._pointer_size
        if size is None:
            size = 8
            try:
                for name in ("long", "unsigned long", "long int", "long unsigned int"):
                    found = self.find_all(name, Int)
                    if found and found[0].size in (4, 8):
                        size = found[0].size
                        break
            except ParseError as exc:
                # malformed: remember, so that every sizeof of a pointer does not search the
                # whole blob again to fail the same way
                self._pointer_size = exc
                raise
            self._pointer_size = size
        elif isinstance(size, ParseError):
            raise size
        return size

    def __repr__(self) -> str:
        order = "little" if self.byte_order == "<" else "big"
        split = f", split on {len(self._base)} base types" if self._base is not None else ""
        count = f"{self._count} types" if self._count is not None else "types"
        return f"<btf.Spec {count}, {order}-endian{split}>"


#: Largest BTF blob :meth:`Spec.from_file` inflates from a gzip file (a vmlinux is ~6 MiB).
MAX_GZIP_SIZE = 256 << 20
_GZ_CHUNK = 1 << 16


def _gunzip_btf(f: Any, path: str) -> bytes:
    """Inflate the gzip stream of ``f`` into a BTF blob, checking the header first and never
    producing more than the blob's size (from that header) plus one byte."""
    import zlib  # here, not at the top: only .gz files pay for it

    out = bytearray()
    want: int | None = None  # the blob's size, once the header is out
    d = zlib.decompressobj(wbits=31)
    pending = b""
    members = 1
    while True:
        if not pending:
            pending = f.read(_GZ_CHUNK)
            if not pending:
                break
        room = (want if want is not None else wire.HEADER_LEN) + 1 - len(out)
        try:
            out += d.decompress(pending, max(room, 1))
        except zlib.error as exc:
            raise ParseError(f"bad gzip data in {path}: {exc}", 0) from None
        pending = d.unconsumed_tail
        if want is None and len(out) >= wire.HEADER_LEN:
            try:
                # sizes unchecked here (from_bytes checks them against the whole blob)
                header, _ = wire.parse_header(out, size=1 << 62)
            except ParseError as exc:
                raise ParseError(f"{path}: {exc.what}", exc.offset) from None
            want = header.hdr_len + max(header.type_off + header.type_len,
                                        header.str_off + header.str_len)
            if want > MAX_GZIP_SIZE:
                raise ParseError(
                    f"{path}: the BTF header describes a {want}-byte blob, more than the "
                    f"{MAX_GZIP_SIZE} bytes a gzip file may inflate to", 0)
        if want is not None and len(out) > want:
            raise ParseError(f"{path}: gzip data continues past the end of the {want}-byte "
                             "BTF blob its header describes", want)
        if d.eof:
            # both are suffixes of the input given (unconsumed_tail may hold unused_data)
            rest = max(d.unused_data, pending, key=len) or f.read(_GZ_CHUNK)
            while rest and not rest.strip(b"\0"):  # zero padding after the last member
                rest = f.read(_GZ_CHUNK)
            if not rest:
                break
            members += 1  # another member follows (as gzip -c a b > c makes)
            d = zlib.decompressobj(wbits=31)
            pending = rest
    if not d.eof:
        raise ParseError(f"bad gzip data in {path}: truncated stream (member {members})", 0)
    return bytes(out)


_getter = _bulk.getter


def _index_of(names: list[int], value: int, start: int) -> int:
    try:
        return names.index(value, start)
    except ValueError:
        return -1


_CLASS_KINDS: dict[type[Type], list[int]] = {}


def _kinds_of_class(cls: type[Type]) -> list[int]:
    """The ``BTF_KIND_*`` whose class is ``cls`` or a subclass of it (cached)."""
    kinds = _CLASS_KINDS.get(cls)
    if kinds is None:
        kinds = [k for k, c in enumerate(KIND_CLASSES) if k and issubclass(c, cls)]
        _CLASS_KINDS[cls] = kinds
    return kinds


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
        return _tn(cls, (spec, tid, spec._names[w[o]], w[o + 2], None))  # members: on demand

    return decode


def _enumeration(cls: type[Enum | Enum64]) -> _Decoder:
    def decode(spec: Spec, tid: int, o: int, info: int) -> Type:
        w = spec._words
        signed = bool(info >> 31)
        return _tn(cls, (spec, tid, spec._names[w[o]], w[o + 2], signed, None))  # values later

    return decode


def _enum_values(spec: Spec, o: int, info: int) -> tuple[EnumValue, ...]:
    w = spec._words
    names = spec._names
    vlen = info & 0xFFFF
    signed = info >> 31
    if (info >> 24) & 0x1F == Kind.ENUM:
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
    return tuple(map(_tn, repeat(EnumValue), pairs))


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
    vlen = info & 0xFFFF
    # A last parameter with neither name nor type stands for "...".
    variadic = vlen > 0 and not (w[o + 1 + 2 * vlen] or w[o + 2 + 2 * vlen])
    return _tn(FuncProto, (spec, tid, spec._names[w[o]], w[o + 2], None, variadic))


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
