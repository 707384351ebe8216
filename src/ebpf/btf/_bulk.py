"""Decode many type records at once, kind by kind, with map/zip pipelines that run in C.

:meth:`Spec.types` uses this to decode every record of the kinds it is asked for faster than
record by record (the whole blob is :meth:`Spec._kind_runs`' job): the records of one kind are
decoded column by column (all ids, all names, all ``size_or_type`` words...) and zipped into
types. Members, parameters and enumerators are decoded on demand, type by type
(:func:`decode_members`...), and all at once by :func:`decode_trailing` once many are asked
for: the trailing entries of every record of the group are joined into one buffer and split
into columns by strided slices. Both bulk paths run with the cyclic garbage collector paused,
which otherwise walks the new records again and again while they are built.

The result is exactly what the per-record decoders in :mod:`.spec` build. On malformed input
(a bad string offset, a bad linkage) a kind is left undecoded and the per-record decoder
raises the :class:`~ebpf.errors.ParseError` when that record is reached.
"""

from __future__ import annotations

import array
import gc
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import accumulate, chain, compress, islice, repeat
from operator import add, and_, getitem, itemgetter, lshift, mul, not_, or_, rshift, sub

from ..errors import ParseError
from .types import (
    KIND_CLASSES,
    Array,
    Composite,
    EnumValue,
    Func,
    FuncProto,
    Fwd,
    Int,
    Kind,
    Linkage,
    Member,
    Param,
    Struct,
    Type,
    TypeTag,
    Union,
)

TYPE_CHECKING = False  # the type checkers' constant, without importing typing (import time)
if TYPE_CHECKING:
    from typing import Any, TypeVar

    from .spec import Spec

__all__ = [
    "MEMBERS",
    "PARAMS",
    "VALUES",
    "decode_kinds",
    "decode_members",
    "decode_params",
    "decode_trailing",
    "getter",
    "kinds_of",
]

_tn = tuple.__new__
_WORD = "I" if array.array("I").itemsize == 4 else "L"
_LINKAGE = (Linkage.STATIC, Linkage.GLOBAL, Linkage.EXTERN)
#: The largest FUNC ``info`` word without kind_flag and with a known linkage (vlen bits).
_FUNC_INFO_MAX = Kind.FUNC << 24 | len(_LINKAGE) - 1
#: info >> 24 (kind_flag, unused bits, kind) -> kind
_LOW5 = bytes(b & 0x1F for b in range(256))
#: Records decoded at once from which the whole string section is decoded first.
_ALL_NAMES_AFTER = 1024
#: Records in a blob from which a bulk decode hands its objects to the oldest generation.
_SETTLE_RECORDS = 10_000


def kinds_of(spec: Spec) -> bytes:
    """The kind of every record of ``spec``'s blob, one byte per record (cached)."""
    kinds = spec._kind_bytes
    if kinds is None:
        spec._walk()
        # The top byte of each record's info word (word 1), read straight from the blob: a
        # view of every 4th byte from that byte of record 0 has record ``i``'s at its word
        # offset, so one itemgetter over the record offsets reads them all (no shift each).
        top = spec._ts + (7 if spec.byte_order == "<" else 4)
        end = spec._ts + spec.header.type_len
        with memoryview(spec._data) as view, view[top:end:4] as tops:
            kinds = spec._kind_bytes = bytes(getter(spec._offs)(tops)).translate(_LOW5)
    return kinds


def decode_kinds(spec: Spec, kinds: Iterable[int] | None) -> Iterable[int]:
    """Decode every record of the given kinds (all if ``None``) into ``spec``'s cache.

    Returns the local indices (type id - first id) of those records, in id order.
    """
    with spec._lock:
        was_enabled = gc.isenabled()
        # Hundreds of thousands of new immutable records that cannot form cycles: collecting
        # while they are built only costs time.
        gc.disable()
        try:
            return _decode_kinds(spec, kinds)
        finally:
            if was_enabled:
                settle(spec)
                gc.enable()


def settle(spec: Spec) -> None:
    """After a bulk decode of a large blob (with the collector paused): move every object
    the collector tracks to its oldest generation without a pass over them (``gc.freeze``
    then ``gc.unfreeze``: list splices), unless someone froze objects (then nothing is done).

    Else the next young collection walks every new record and column (vmlinux: 5-20 ms), and
    the next two again as they age. Other young objects only age sooner: a full collection
    still finds any cycle among them. Small blobs (object files) are left alone, so that a
    program loading many of them keeps its usual collections."""
    if len(spec._offs) >= _SETTLE_RECORDS and not gc.get_freeze_count():
        gc.freeze()
        gc.unfreeze()


def positions(kb: bytes, kind: int) -> list[int]:
    """Indices of the bytes equal to ``kind`` in ``kb``, without a Python-level loop: the
    lengths of the pieces between them, accumulated."""
    pieces = kb.split(bytes((kind,)))
    pieces.pop()
    return list(accumulate(map(add, map(len, pieces), repeat(1)), initial=-1))[1:]


def _decode_kinds(spec: Spec, kinds: Iterable[int] | None) -> Iterable[int]:
    kb = kinds_of(spec)
    present = set(kb)
    wanted = sorted(present if kinds is None else present.intersection(kinds))
    groups = {kind: positions(kb, kind) for kind in wanted if kind not in spec._bulk_done}
    if kinds is None:
        selected: Iterable[int] = range(len(kb))
    elif len(wanted) == 1:
        selected = groups.get(wanted[0]) or positions(kb, wanted[0])
    else:
        selected = list(compress(range(len(kb)), map(frozenset(wanted).__contains__, kb)))
    if not groups:
        return selected
    if sum(map(len, groups.values())) >= _ALL_NAMES_AFTER:
        spec._decode_all_names()  # else the few names are decoded one by one
    fresh: dict[int, Type] = {}
    for kind, indices in groups.items():
        try:
            objs = _DECODERS.get(kind, _one_by_one)(spec, kind, indices)
        except (ParseError, IndexError):
            continue  # malformed: decoded (and reported) record by record
        fresh.update(zip(map(add, indices, repeat(spec._first)), objs, strict=True))
        spec._bulk_done.add(kind)
    fresh.update(spec._types)  # keep the objects already handed out
    spec._types = fresh
    return selected


class _Columns:
    """Columns of the records ``indices`` of one kind."""

    __slots__ = ("_infos", "_spec", "ids", "names", "offs", "sizes")

    def __init__(self, spec: Spec, indices: list[int]) -> None:
        w = spec._words
        self._spec = spec
        self._infos: list[int] | None = None
        self.offs = offs = list(map(spec._offs.__getitem__, indices))
        self.ids = list(map(add, indices, repeat(spec._first)))
        self.names = list(map(spec._names.__getitem__, map(getitem, repeat(w), offs)))
        self.sizes = list(map(getitem, repeat(w[2:]), offs))  # size_or_type

    @property
    def infos(self) -> list[int]:
        infos = self._infos
        if infos is None:
            infos = self._infos = list(map(getitem, repeat(self._spec._words[1:]), self.offs))
        return infos

    def word(self, spec: Spec, n: int) -> list[int]:
        """Word ``n`` of every record (3 is the first after ``struct btf_type``)."""
        return list(map(getitem, repeat(spec._words[n:]), self.offs))

    def flags(self) -> list[int]:
        return list(map(rshift, self.infos, repeat(31)))

    def vlens(self) -> list[int]:
        return list(map(and_, self.infos, repeat(0xFFFF)))


def _one_by_one(spec: Spec, kind: int, indices: list[int]) -> list[Type]:
    """Rare kinds: the per-record decoder in a loop."""
    return list(map(spec._decode_record, indices))


def _plain(spec: Spec, kind: int, indices: list[int]) -> list[Type]:
    """Kinds whose only field is ``size_or_type``: PTR, TYPEDEF, qualifiers, FLOAT."""
    c = _Columns(spec, indices)
    return list(map(_tn, repeat(KIND_CLASSES[kind]), zip(repeat(spec), c.ids, c.names, c.sizes)))


def _flagged(spec: Spec, kind: int, indices: list[int]) -> list[Type]:
    """FWD (``is_union``) and TYPE_TAG (``type``, ``is_attr``)."""
    c = _Columns(spec, indices)
    flags = map(bool, c.flags())
    if kind == Kind.FWD:
        return list(map(_tn, repeat(Fwd), zip(repeat(spec), c.ids, c.names, flags)))
    return list(map(_tn, repeat(TypeTag), zip(repeat(spec), c.ids, c.names, c.sizes, flags)))


def _enum(spec: Spec, kind: int, indices: list[int]) -> list[Type]:
    """ENUM and ENUM64 (the enumerators are decoded on demand)."""
    c = _Columns(spec, indices)
    fields = zip(repeat(spec), c.ids, c.names, c.sizes, map(bool, c.flags()), repeat(None))
    return list(map(_tn, repeat(KIND_CLASSES[kind]), fields))


def _func(spec: Spec, kind: int, indices: list[int]) -> list[Type]:
    c = _Columns(spec, indices)
    linkage: Iterable[Linkage | None] = repeat(None)  # checked: read from the record on demand
    if max(c.infos) > _FUNC_INFO_MAX:
        linkage = map(_LINKAGE.__getitem__, c.vlens())  # IndexError: bad linkage
    return list(map(_tn, repeat(Func), zip(repeat(spec), c.ids, c.names, c.sizes, linkage)))


def _int(spec: Spec, kind: int, indices: list[int]) -> list[Type]:
    c = _Columns(spec, indices)
    enc = c.word(spec, 3)
    bits = map(and_, enc, repeat(0xFF))
    offset = map(and_, map(rshift, enc, repeat(16)), repeat(0xFF))
    encoding = map(and_, map(rshift, enc, repeat(24)), repeat(0xF))
    fields = zip(repeat(spec), c.ids, c.names, c.sizes, bits, offset, encoding)
    return list(map(_tn, repeat(Int), fields))


def _array(spec: Spec, kind: int, indices: list[int]) -> list[Type]:
    c = _Columns(spec, indices)
    fields = zip(repeat(spec), c.ids, c.names, c.word(spec, 3), c.word(spec, 4), c.word(spec, 5))
    return list(map(_tn, repeat(Array), fields))


def _composite(spec: Spec, kind: int, indices: list[int]) -> list[Type]:
    c = _Columns(spec, indices)
    cls: type[Composite] = Struct if kind == Kind.STRUCT else Union
    fields = zip(repeat(spec), c.ids, c.names, c.sizes, repeat(None))  # members: on demand
    return list(map(_tn, repeat(cls), fields))


def _func_proto(spec: Spec, kind: int, indices: list[int]) -> list[Type]:
    c = _Columns(spec, indices)
    # params and variadic: read from the record on demand
    fields = zip(repeat(spec), c.ids, c.names, c.sizes, repeat(None), repeat(None))
    return list(map(_tn, repeat(FuncProto), fields))


#: What :func:`decode_trailing` decodes: the members of every STRUCT and UNION, the
#: parameters of every FUNC_PROTO, the enumerators of every ENUM and ENUM64.
MEMBERS, PARAMS, VALUES = 0, 1, 2


def decode_trailing(spec: Spec, groups: Iterable[int]) -> None:
    """Decode the trailing entries of ``groups`` (:data:`MEMBERS`, :data:`PARAMS`,
    :data:`VALUES`) of every record into the spec's caches, keeping the tuples already
    handed out.

    The entries of all the records are cut from the type section and joined into one buffer
    (one ``bytes.join``), read as one list of words, and split into columns by slicing with a
    step; the records are built from the columns with ``map``/``zip`` and grouped per type
    with ``islice``, all in C. On malformed input (a bad string offset, a truncated blob)
    nothing is cached for the group: its types are decoded (and the error raised) one by one.
    """
    with spec._lock:
        was_enabled = gc.isenabled()
        gc.disable()  # see decode_kinds
        try:
            for group in groups:
                try:
                    if group == MEMBERS:
                        spec._member_cache = _merge(_all_members(spec), spec._member_cache)
                    elif group == PARAMS:
                        spec._param_cache = _merge(_all_params(spec), spec._param_cache)
                    else:
                        spec._value_cache = _merge(_all_values(spec), spec._value_cache)
                except (ParseError, IndexError):
                    pass  # malformed: decoded (and reported) type by type
        finally:
            if was_enabled:
                settle(spec)
                gc.enable()


if TYPE_CHECKING:
    _T = TypeVar("_T")


def _merge(fresh: dict[int, _T], cached: dict[int, _T]) -> dict[int, _T]:
    fresh.update(cached)  # the tuples already handed out win
    return fresh


def getter(indices: Sequence[int]) -> Callable[[Any], tuple[Any, ...]]:
    """``seq -> tuple(seq[i] for i in indices)``, in one C call (``itemgetter``)."""
    if len(indices) == 1:
        (i,) = indices
        return lambda seq: (seq[i],)
    if not indices:
        return lambda seq: ()
    return itemgetter(*indices)


def _records(
    spec: Spec, kinds: tuple[int, ...]
) -> tuple[list[int], list[int], tuple[int, ...]]:
    """(type ids, word offsets, ``info`` words) of the records of ``kinds``."""
    ids: list[int] = []
    offs: list[int] = []
    known = spec._kind_records  # dealt out per kind by Spec._decode_whole
    for kind in kinds:
        if kind in known:
            kind_ids, kind_offs = known[kind]
            ids += kind_ids
            offs += kind_offs
        else:
            indices = positions(kinds_of(spec), kind)
            ids += map(add, indices, repeat(spec._first))
            offs += getter(indices)(spec._offs)
    return ids, offs, getter(offs)(spec._words[1:])


def _gather(spec: Spec, offs: Iterable[int], counts: Iterable[int], width: int) -> list[int]:
    """The first ``counts[j]`` trailing entries (``width`` words each) of the record at word
    ``offs[j]``, for every ``j``, concatenated into one list of words."""
    w = spec._words
    starts = list(map(add, offs, repeat(3)))  # trailing entries follow struct btf_type
    ends = map(add, starts, map(mul, counts, repeat(width)))
    joined = b"".join(map(w.__getitem__, map(slice, starts, ends)))
    return array.array(_WORD, joined).tolist()  # native order: the words already are


def _spread(values: Iterable[int], counts: Iterable[int]) -> Iterator[int]:
    """Each of ``values`` repeated as many times as the matching count."""
    return chain.from_iterable(map(repeat, values, counts))


def _grouped(items: Iterable[_T], counts: Iterable[int]) -> Iterator[tuple[_T, ...]]:
    """``items`` cut into consecutive tuples of ``counts`` items."""
    it = iter(items)
    return map(tuple, map(islice, repeat(it), counts))


def _all_members(spec: Spec) -> dict[int, tuple[Member, ...]]:
    ids, offs, infos = _records(spec, (Kind.STRUCT, Kind.UNION))
    flags = list(map(rshift, infos, repeat(31)))
    flagged = sum(flags)
    if flagged * 8 <= len(flags):
        fresh = _members(spec, ids, offs, infos, False)
        # kind_flag (offset = bitfield_size << 24 | bit offset) on a few (vmlinux: 368 of
        # 13k): those again, one by one (their names are decoded now)
        for tid, o, info in compress(zip(ids, offs, infos, strict=True), flags):
            fresh[tid] = decode_members(spec, o, info)
        return fresh
    # kind_flag on many: each half on its own
    plain = list(map(not_, flags))
    fresh = _members(spec, list(compress(ids, plain)), list(compress(offs, plain)),
                     list(compress(infos, plain)), False)
    fresh.update(_members(spec, list(compress(ids, flags)), list(compress(offs, flags)),
                          list(compress(infos, flags)), True))
    return fresh


def _members(
    spec: Spec, ids: list[int], offs: Sequence[int], infos: Sequence[int], kind_flag: bool
) -> dict[int, tuple[Member, ...]]:
    vlens = list(map(and_, infos, repeat(0xFFFF)))
    flat = _gather(spec, offs, vlens, 3)
    names = spec._names_of(flat[0::3])
    offset: Iterable[int] = flat[2::3]
    bitfield: Iterable[int] = repeat(0)
    if kind_flag:
        bitfield = map(rshift, offset, repeat(24))
        offset = map(and_, offset, repeat(0xFFFFFF))
    members = map(_tn, repeat(Member), zip(repeat(spec), names, flat[1::3], offset, bitfield))
    return dict(zip(ids, _grouped(members, vlens), strict=True))


def _all_params(spec: Spec) -> dict[int, tuple[Param, ...]]:
    ids, offs, infos = _records(spec, (Kind.FUNC_PROTO,))
    w = spec._words
    vlens = list(map(and_, infos, repeat(0xFFFF)))
    # A last parameter with neither name nor type stands for "..." and is not a Param.
    # (For vlen 0 these words belong to the record itself; the vlen test discards them.)
    last = getter(list(map(add, offs, map(mul, vlens, repeat(2)))))
    variadic = map(and_, map(bool, vlens), map(not_, map(or_, last(w[1:]), last(w[2:]))))
    counts = list(map(sub, vlens, variadic))
    flat = _gather(spec, offs, counts, 2)
    # Few distinct (name, type) pairs (vmlinux: 20k of 82k parameters): one Param each,
    # shared (immutable, equal by value), so fewer objects to make and to keep.
    keys = list(map(or_, map(lshift, flat[0::2], repeat(32)), flat[1::2]))
    distinct = list(dict.fromkeys(keys))
    names = spec._names_of(list(map(rshift, distinct, repeat(32))))
    fields = zip(repeat(spec), names, map(and_, distinct, repeat(0xFFFFFFFF)))
    one = dict(zip(distinct, map(_tn, repeat(Param), fields), strict=True))
    return dict(zip(ids, _grouped(map(one.__getitem__, keys), counts), strict=True))


def _all_values(spec: Spec) -> dict[int, tuple[EnumValue, ...]]:
    fresh: dict[int, tuple[EnumValue, ...]] = {}
    for kind, width, sign in ((Kind.ENUM, 2, 1 << 31), (Kind.ENUM64, 3, 1 << 63)):
        ids, offs, infos = _records(spec, (kind,))
        if not ids:
            continue
        vlens = list(map(and_, infos, repeat(0xFFFF)))
        flat = _gather(spec, offs, vlens, width)
        values = flat[1::2] if width == 2 else list(
            map(or_, flat[1::3], map(lshift, flat[2::3], repeat(32))))
        signs = list(map(mul, map(rshift, infos, repeat(31)), repeat(sign)))
        if any(signs):  # kind_flag: signed, v - 2 * (v & sign bit)
            sign_bits = map(and_, values, _spread(signs, vlens))
            values = list(map(sub, values, map(lshift, sign_bits, repeat(1))))
        names = spec._names_of(flat[0::width])
        pairs = map(_tn, repeat(EnumValue), zip(names, values, strict=True))
        fresh.update(zip(ids, _grouped(pairs, vlens), strict=True))
    return fresh


def decode_members(spec: Spec, o: int, info: int) -> tuple[Member, ...]:
    """The members of the STRUCT/UNION record at word ``o``."""
    vlen = info & 0xFFFF
    if not vlen:
        return ()
    names = spec._names
    raw = spec._words[o + 3 : o + 3 + 3 * vlen].tolist()
    triples = zip(raw[0::3], raw[1::3], raw[2::3], strict=True)
    if info >> 31:  # kind_flag: offset = bitfield_size << 24 | bit offset
        return tuple(
            [_tn(Member, (spec, names[n], t, off & 0xFFFFFF, off >> 24)) for n, t, off in triples]
        )
    return tuple([_tn(Member, (spec, names[n], t, off, 0)) for n, t, off in triples])


def decode_params(spec: Spec, o: int, info: int) -> tuple[Param, ...]:
    """The parameters of the FUNC_PROTO record at word ``o`` (without a final ``...``)."""
    vlen = info & 0xFFFF
    if not vlen:
        return ()
    names = spec._names
    raw = spec._words[o + 3 : o + 3 + 2 * vlen].tolist()
    if not (raw[-2] or raw[-1]):
        del raw[-2:]
    pairs = zip(raw[0::2], raw[1::2], strict=True)
    return tuple([_tn(Param, (spec, names[n], t)) for n, t in pairs])


_Decoder = Callable[["Spec", int, list[int]], list[Type]]

_DECODERS: dict[int, _Decoder] = {
    Kind.INT: _int,
    Kind.PTR: _plain,
    Kind.ARRAY: _array,
    Kind.STRUCT: _composite,
    Kind.UNION: _composite,
    Kind.ENUM: _enum,
    Kind.FWD: _flagged,
    Kind.TYPEDEF: _plain,
    Kind.VOLATILE: _plain,
    Kind.CONST: _plain,
    Kind.RESTRICT: _plain,
    Kind.FUNC: _func,
    Kind.FUNC_PROTO: _func_proto,
    Kind.FLOAT: _plain,
    Kind.TYPE_TAG: _flagged,
    Kind.ENUM64: _enum,
}
