"""Build BTF from Python: every kind, the string table, and the func/line info of a program.

A :class:`BTFWriter` hands out type ids as types are added; :meth:`~BTFWriter.encode` gives
the blob that :meth:`ebpf.btf.handle.BTFHandle.load` (``BPF_BTF_LOAD``) and
:meth:`ebpf.btf.Spec.from_bytes` take. Strings are stored once; types that carry no identity
of their own (ints, pointers, arrays, qualifiers, prototypes, structs with equal members...)
are stored once too, so asking twice for ``u32`` gives the same id. Functions, variables and
sections are never merged.

::

    from ebpf.btf.writer import BTFWriter, Field

    w = BTFWriter()
    u32 = w.int_("u32", 4)
    u64 = w.int_("u64", 8)
    flags = w.int_("unsigned int", 4)
    event = w.struct("event", [           # C layout when no offset is given
        ("pid", u32),
        ("ts", u64),
        Field("kind", flags, bits=3),     # bitfields: a width in bits
        Field("urgent", flags, bits=1),
        ("comm", w.array(w.int_("char", 1, char=True), 16)),
    ])
    w.sizeof(event)                       # 40
    data = w.data_section(".data", [("counter", u64), ("limit", u32)])
    data.offsets                          # {'counter': 0, 'limit': 8}

    proto = w.func_proto(w.int_("int", 4, signed=True), [("ctx", w.pointer(0))])
    main = w.func("prog", proto, Linkage.GLOBAL)
    func_info = w.func_info([(0, main)])                         # bpf_func_info records
    line_info = w.line_info([(0, "prog.py", 3, 1, "return 0")])  # bpf_line_info records

    with BTFHandle.load(w.encode()) as h:
        Program.load(..., prog_btf_fd=h.fileno(), func_info=func_info, func_info_rec_size=8,
                     line_info=line_info, line_info_rec_size=16)

Offsets of members are in *bits* (as in :class:`ebpf.btf.Member` and the kernel); offsets of
variables in a section are in bytes. Bad input raises :class:`BTFError` (a
:class:`ValueError`) when the type is added, naming what is wrong, rather than a kernel
``EINVAL`` later. The checks follow the kernel's BTF verifier (``kernel/bpf/btf.c``); where
kernels differ the writer takes what every kernel since 5.2 accepts, except for what needs a
newer kind (``FLOAT`` 5.13, ``DECL_TAG`` 5.16, ``TYPE_TAG`` 5.17, ``ENUM64`` and signed
enums 6.0, tag ``attr`` flags 6.15).
"""

from __future__ import annotations

import array
import struct
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

from ..errors import BPFError
from . import wire
from .types import (
    Array,
    Composite,
    DataSec,
    DeclTag,
    Enum,
    Enum64,
    Float,
    Func,
    FuncProto,
    Fwd,
    Int,
    IntEncoding,
    Kind,
    Linkage,
    Pointer,
    Qualifier,
    Type,
    TypeTag,
    Var,
)

if TYPE_CHECKING:
    from .spec import Spec

__all__ = [
    "FUNC_INFO_SIZE",
    "LINE_INFO_SIZE",
    "MAX_NAME_LEN",
    "BTFError",
    "BTFWriter",
    "DataSection",
    "Field",
]

#: Longest name the kernel accepts, in bytes (``KSYM_NAME_LEN`` - 1, Linux 6.1+).
MAX_NAME_LEN = 511
#: Size of one ``struct bpf_func_info`` (insn_off, type_id).
FUNC_INFO_SIZE = 8
#: Size of one ``struct bpf_line_info`` (insn_off, file_name_off, line_off, line_col).
LINE_INFO_SIZE = 16

_MAX_TYPES = 0xFFFFF  # BTF_MAX_TYPE
_MAX_STR = 0xFFFFFF  # BTF_MAX_NAME_OFFSET
_MAX_VLEN = 0xFFFF
_U32 = 0xFFFFFFFF
#: Name styles: a C identifier; a variable name, which may also hold dots (clang's static
#: locals: "func.name"); an INT/FLOAT name, which may hold spaces ("unsigned int").
_IDENT, _VAR_NAME, _BASE_NAME = "C identifier", "variable name", "name"
_INT_SIZES = (1, 2, 4, 8, 16)
_ENUM_SIZES = (1, 2, 4, 8)
_FLOAT_SIZES = (2, 4, 8, 12, 16)
_POINTER_SIZE = 8
#: Kinds that may be merged with an equal record: their identity is their content.
_NO_DEDUP = frozenset((Kind.FUNC, Kind.VAR, Kind.DATASEC))
_QUALIFIERS = frozenset((Kind.TYPEDEF, Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.TYPE_TAG))
_UNSIZED = frozenset((Kind.VOID, Kind.FWD, Kind.FUNC, Kind.FUNC_PROTO, Kind.DATASEC,
                      Kind.DECL_TAG, Kind.VAR))
_INT_FLAGS = {(False, False, False): 0, (True, False, False): 1, (False, True, False): 2,
              (False, False, True): 4}


class BTFError(BPFError, ValueError):
    """Input that would make invalid BTF: an unknown type id, a bad name, a member outside
    its struct, a bitfield wider than its type..."""


class Field(NamedTuple):
    """A member of :meth:`BTFWriter.struct` / :meth:`BTFWriter.union`.

    ``bit_offset`` ``None`` places the member as a C compiler would after the previous one;
    ``bits`` > 0 makes it a bitfield that wide (its type an int or enum). A plain tuple
    ``(name, type_id[, bit_offset[, bits]])`` is taken as well.
    """

    name: str
    type_id: int
    bit_offset: int | None = None
    bits: int = 0


class DataSection(NamedTuple):
    """What :meth:`BTFWriter.data_section` built: the ``DATASEC`` id, its size in bytes, the
    byte offset and the ``VAR`` id of each variable (the map value is laid out the same)."""

    type_id: int
    size: int
    offsets: dict[str, int]
    var_ids: dict[str, int]


class _Info:
    """What the writer knows about a type id, for checks and layout."""

    __slots__ = ("align", "bits", "kind", "name", "ref", "size", "vlen")

    def __init__(self, kind: Kind, name: str = "", *, size: int | None = None,
                 align: int = 1, ref: int = 0, bits: int = 0, vlen: int = 0) -> None:
        self.kind = kind
        self.name = name
        self.size = size  # None: no size (void, fwd, func...), or through ``ref``
        self.align = align
        self.ref = ref  # the type a pointer/array/qualifier/var refers to
        self.bits = bits  # value bits of an int, for bitfield checks
        self.vlen = vlen


_VOID = _Info(Kind.VOID)
_ENTRY = Field | tuple[str, int] | tuple[str, int, int | None] | tuple[str, int, int | None, int]


class BTFWriter:
    """Accumulates BTF types and strings. Every ``add`` method returns the new type id
    (or the id of an equal type already added; see the module docstring).

    ``byteorder`` (``"<"``, ``">"``, default: this machine's) is the order of the encoded
    blob and of the func/line info records; ``dedup=False`` keeps every type separate.
    """

    def __init__(self, *, byteorder: str | None = None, dedup: bool = True) -> None:
        if byteorder not in (None, "<", ">"):
            raise BTFError(f"byteorder must be '<' or '>', not {byteorder!r}")
        self.byteorder = byteorder or ("<" if sys.byteorder == "little" else ">")
        self.dedup = dedup
        self._records: list[tuple[int, ...] | None] = []
        self._infos: list[_Info] = [_VOID]
        self._index: dict[tuple[int, ...], int] = {}
        self._strings = bytearray(b"\0")
        self._str_index: dict[str, int] = {"": 0}
        self._array_index: int | None = None
        self._sized: dict[int, tuple[int, int]] = {}  # type id -> (size, align), once known
        self._valid_names: set[tuple[str, str]] = set()
        self._copiers: dict[int, _Copier] = {}  # id(spec) -> its copier (see copy)

    # --- strings and ids ----------------------------------------------------------------

    def string(self, s: str) -> int:
        """Offset of ``s`` in the string section, added once."""
        off = self._str_index.get(s)
        if off is not None:
            return off
        if not isinstance(s, str):
            raise BTFError(f"a BTF string must be a str, not {type(s).__name__}")
        if "\0" in s:
            raise BTFError(f"BTF string {s!r} contains a NUL character")
        raw = s.encode("utf-8", "surrogateescape")
        if len(self._strings) + len(raw) + 1 > _MAX_STR:
            raise BTFError(f"the BTF string section would exceed {_MAX_STR} bytes")
        off = self._str_index[s] = len(self._strings)
        self._strings += raw + b"\0"
        return off

    def __len__(self) -> int:
        """Number of types added (the last id)."""
        return len(self._records)

    def kind(self, type_id: int) -> Kind:
        """The kind of ``type_id`` (``Kind.VOID`` for 0)."""
        return self._info(type_id, "type_id").kind

    def sizeof(self, type_id: int) -> int:
        """Size in bytes of ``type_id`` (typedefs and qualifiers resolved; pointers are 8)."""
        size, _ = self._layout(type_id, "type_id")
        return size

    def alignof(self, type_id: int) -> int:
        """Alignment in bytes of ``type_id`` as the BPF target's C ABI has it."""
        _, align = self._layout(type_id, "type_id")
        return align

    def reserve(self) -> int:
        """A type id to be defined later by :meth:`struct` / :meth:`union` with ``id=``: for
        types that refer to themselves through a pointer (``struct node *next``)."""
        return self._append(None, _Info(Kind.VOID, "<reserved>"))

    # --- kinds --------------------------------------------------------------------------

    def int_(self, name: str, size: int, *, signed: bool = False, char: bool = False,
             bool_: bool = False, bits: int | None = None, bit_offset: int = 0) -> int:
        """``BTF_KIND_INT`` of ``size`` bytes (1, 2, 4, 8, 16); at most one of ``signed``,
        ``char``, ``bool_``. ``bits``/``bit_offset`` narrow the value bits (default all)."""
        self._name(name, "INT", allow_empty=False, pattern=_BASE_NAME)
        if not _is_int(size) or size not in _INT_SIZES:
            raise BTFError(f"INT {name!r}: size {size} is not one of {_INT_SIZES}")
        nbits = size * 8 if bits is None else bits
        if not _is_int(nbits) or not _is_int(bit_offset):
            raise BTFError(f"INT {name!r}: bits and bit_offset must be ints")
        if not 1 <= nbits <= size * 8 or bit_offset < 0 or bit_offset + nbits > size * 8:
            raise BTFError(f"INT {name!r}: {nbits} bits at bit {bit_offset} do not fit in "
                           f"{size} bytes")
        enc = _INT_FLAGS.get((bool(signed), bool(char), bool(bool_)))
        if enc is None:
            raise BTFError(f"INT {name!r}: signed, char and bool_ exclude each other")
        rec = (self.string(name), Kind.INT << 24, size, enc << 24 | bit_offset << 16 | nbits)
        return self._add(rec, _Info(Kind.INT, name, size=size, align=size, bits=nbits))

    def pointer(self, target: int) -> int:
        """``BTF_KIND_PTR`` to ``target`` (0: ``void *``)."""
        self._ref(target, "PTR target", void=True)
        return self._add((0, Kind.PTR << 24, target),
                         _Info(Kind.PTR, size=_POINTER_SIZE, align=_POINTER_SIZE, ref=target))

    def array(self, elem: int, nelems: int, *, index_type: int | None = None) -> int:
        """``BTF_KIND_ARRAY``: ``elem[nelems]``. The index type defaults to clang's
        ``__ARRAY_SIZE_TYPE__`` (a 4-byte unsigned int)."""
        esize, ealign = self._layout(elem, "ARRAY element")
        if not isinstance(nelems, int) or not 0 <= nelems <= _U32:
            raise BTFError(f"ARRAY: nelems {nelems!r} is not in 0..{_U32}")
        if esize * nelems > _U32:
            raise BTFError(f"ARRAY: {nelems} x {esize} bytes exceeds 4 GiB")
        if index_type is None:
            if self._array_index is None:
                self._array_index = self.int_("__ARRAY_SIZE_TYPE__", 4)
            index_type = self._array_index
        if self._resolved(index_type, "ARRAY index type").kind != Kind.INT:
            raise BTFError(f"ARRAY: index type {index_type} is not an INT")
        return self._add((0, Kind.ARRAY << 24, 0, elem, index_type, nelems),
                         _Info(Kind.ARRAY, size=esize * nelems, align=ealign, ref=elem))

    def struct(self, name: str, members: Iterable[_ENTRY], *, size: int | None = None,
               id: int | None = None) -> int:
        """``BTF_KIND_STRUCT`` ``name`` ("" for an anonymous struct) with ``members``
        (:class:`Field` or tuples). Members without an offset are laid out as C does;
        ``size`` defaults to the end of the last member rounded up to the alignment.
        ``id`` defines a type id from :meth:`reserve`."""
        return self._composite(Kind.STRUCT, name, members, size, id)

    def union(self, name: str, members: Iterable[_ENTRY], *, size: int | None = None,
              id: int | None = None) -> int:
        """``BTF_KIND_UNION``; members default to offset 0. Otherwise as :meth:`struct`."""
        return self._composite(Kind.UNION, name, members, size, id)

    def enum(self, name: str, values: Mapping[str, int] | Iterable[tuple[str, int]], *,
             size: int = 4, signed: bool | None = None) -> int:
        """``BTF_KIND_ENUM`` with 32-bit ``values`` (name -> value, in order). ``signed``
        defaults to whether a value is negative (signed enums need Linux 6.0)."""
        return self._enumeration(Kind.ENUM, name, values, size, signed)

    def enum64(self, name: str, values: Mapping[str, int] | Iterable[tuple[str, int]], *,
               size: int = 8, signed: bool | None = None) -> int:
        """``BTF_KIND_ENUM64`` (Linux 6.0): as :meth:`enum` with 64-bit values."""
        return self._enumeration(Kind.ENUM64, name, values, size, signed)

    def fwd(self, name: str, *, union: bool = False) -> int:
        """``BTF_KIND_FWD``: ``struct name;`` (``union name;`` with ``union=True``)."""
        self._name(name, "FWD", allow_empty=False)
        info = Kind.FWD << 24 | (1 << 31 if union else 0)
        return self._add((self.string(name), info, 0), _Info(Kind.FWD, name))

    def typedef(self, name: str, target: int) -> int:
        """``BTF_KIND_TYPEDEF``: ``typedef target name``."""
        self._name(name, "TYPEDEF", allow_empty=False)
        return self._qualifier(Kind.TYPEDEF, self.string(name), target, name)

    def volatile(self, target: int) -> int:
        """``BTF_KIND_VOLATILE`` ``target``."""
        return self._qualifier(Kind.VOLATILE, 0, target)

    def const(self, target: int) -> int:
        """``BTF_KIND_CONST`` ``target``."""
        return self._qualifier(Kind.CONST, 0, target)

    def restrict(self, target: int) -> int:
        """``BTF_KIND_RESTRICT`` ``target``."""
        return self._qualifier(Kind.RESTRICT, 0, target)

    def type_tag(self, value: str, target: int, *, attr: bool = False) -> int:
        """``BTF_KIND_TYPE_TAG`` (Linux 5.17): ``target __attribute__((btf_type_tag(value)))``
        (``attr=True``: a plain attribute, Linux 6.15). The kernel wants type tags before
        any const/volatile/restrict in a chain: ``ptr -> tag -> const -> int``."""
        self._tag_value(value, "TYPE_TAG")
        return self._qualifier(Kind.TYPE_TAG, self.string(value), target, value, flag=attr)

    def func_proto(self, ret: int, params: Iterable[tuple[str, int]] = (), *,
                   variadic: bool = False) -> int:
        """``BTF_KIND_FUNC_PROTO``: returns ``ret`` (0: void), takes ``(name, type_id)``
        ``params`` (names may be "" here, but a :meth:`func` needs them)."""
        self._ref(ret, "FUNC_PROTO return type", void=True)
        words: list[int] = []
        seen: set[str] = set()
        for i, entry in enumerate(params):
            pname, ptype = _pair(entry, f"FUNC_PROTO parameter {i}")
            self._name(pname, f"FUNC_PROTO parameter {i}", allow_empty=True)
            if pname and pname in seen:
                raise BTFError(f"FUNC_PROTO: parameter name {pname!r} repeats")
            seen.add(pname)
            pk = self._ref(ptype, f"FUNC_PROTO parameter {pname or i}").kind
            if pk in (Kind.FUNC, Kind.VAR, Kind.DATASEC, Kind.DECL_TAG):
                raise BTFError(f"FUNC_PROTO parameter {pname or i}: type {ptype} is a "
                               f"{pk.name}, not a value type")
            words += (self.string(pname), ptype)
        if variadic:
            words += (0, 0)
        vlen = len(words) // 2
        if vlen > _MAX_VLEN:
            raise BTFError(f"FUNC_PROTO: {vlen} parameters, at most {_MAX_VLEN}")
        rec = (0, Kind.FUNC_PROTO << 24 | vlen, ret, *words)
        return self._add(rec, _Info(Kind.FUNC_PROTO, ref=ret, vlen=vlen))

    def func(self, name: str, proto: int, linkage: Linkage | int = Linkage.STATIC) -> int:
        """``BTF_KIND_FUNC`` ``name`` of prototype ``proto``. The kernel loads ``STATIC`` and
        ``GLOBAL`` functions only (``EXTERN`` is for objects)."""
        self._name(name, "FUNC", allow_empty=False)
        p = self._info(proto, f"FUNC {name!r} prototype")
        if p.kind != Kind.FUNC_PROTO:
            raise BTFError(f"FUNC {name!r}: type {proto} is a {p.kind.name}, not a FUNC_PROTO")
        rec = self._records[proto - 1]
        assert rec is not None
        for i in range(p.vlen):
            poff, ptype = rec[3 + 2 * i], rec[4 + 2 * i]
            if not poff and ptype:
                raise BTFError(f"FUNC {name!r}: parameter {i} of prototype {proto} has no "
                               "name (the kernel wants every parameter of a function named)")
        lk = _linkage(linkage, f"FUNC {name!r}")
        return self._add((self.string(name), Kind.FUNC << 24 | lk, proto),
                         _Info(Kind.FUNC, name, ref=proto, vlen=p.vlen))

    def var(self, name: str, type_id: int, linkage: Linkage | int = Linkage.GLOBAL) -> int:
        """``BTF_KIND_VAR``: a global variable, listed in a :meth:`datasec`. The kernel
        loads ``STATIC`` and ``GLOBAL`` (allocated) variables only."""
        self._name(name, "VAR", allow_empty=False, pattern=_VAR_NAME)
        size, align = self._layout(type_id, f"VAR {name!r}")
        lk = _linkage(linkage, f"VAR {name!r}")
        return self._add((self.string(name), Kind.VAR << 24, type_id, lk),
                         _Info(Kind.VAR, name, size=size, align=align, ref=type_id))

    def datasec(self, name: str, variables: Iterable[tuple[int, int] | tuple[int, int, int]],
                *, size: int | None = None) -> int:
        """``BTF_KIND_DATASEC`` ``name`` (``.data``, ``.bss``, ``.rodata``...):
        ``(var_id, byte_offset[, size])`` entries in ascending order, not overlapping.
        ``size`` defaults to the end of the last variable. See :meth:`data_section` for the
        layout done for you."""
        self._section_name(name)
        words: list[int] = []
        end = 0
        for i, entry in enumerate(variables):
            if not isinstance(entry, tuple) or len(entry) not in (2, 3):
                raise BTFError(f"DATASEC {name!r}: entry {i} is not (var_id, offset[, size])")
            vid, off = entry[0], entry[1]
            v = self._info(vid, f"DATASEC {name!r} entry {i}")
            if v.kind not in (Kind.VAR, Kind.FUNC):
                raise BTFError(f"DATASEC {name!r}: entry {i} is type {vid}, a {v.kind.name}, "
                               "not a VAR")
            vsize = entry[2] if len(entry) == 3 else (v.size or 0)
            if not _is_int(off) or not _is_int(vsize) or off < 0 or vsize < 0:
                raise BTFError(f"DATASEC {name!r}: entry {i} has a bad offset/size")
            if v.size is not None and vsize < v.size:
                raise BTFError(f"DATASEC {name!r}: {v.name!r} takes {v.size} bytes, not "
                               f"{vsize}")
            if off < end:
                raise BTFError(f"DATASEC {name!r}: {v.name!r} at {off} overlaps or precedes "
                               f"the previous variable (ending at {end})")
            end = off + vsize
            words += (vid, off, vsize)
        vlen = len(words) // 3
        if vlen > _MAX_VLEN:
            raise BTFError(f"DATASEC {name!r}: {vlen} variables, at most {_MAX_VLEN}")
        total = end if size is None else size
        if not _is_int(total) or not end <= total <= _U32:
            raise BTFError(f"DATASEC {name!r}: size {total!r} does not hold its variables "
                           f"(which end at {end})")
        if not total:
            raise BTFError(f"DATASEC {name!r}: size 0 (the kernel refuses an empty section)")
        rec = (self.string(name), Kind.DATASEC << 24 | vlen, total, *words)
        return self._add(rec, _Info(Kind.DATASEC, name, vlen=vlen))

    def float_(self, name: str, size: int) -> int:
        """``BTF_KIND_FLOAT`` (Linux 5.13) of ``size`` bytes (2, 4, 8, 12, 16)."""
        self._name(name, "FLOAT", allow_empty=False, pattern=_BASE_NAME)
        if not _is_int(size) or size not in _FLOAT_SIZES:
            raise BTFError(f"FLOAT {name!r}: size {size} is not one of {_FLOAT_SIZES}")
        align = size if size & (size - 1) == 0 else 4
        return self._add((self.string(name), Kind.FLOAT << 24, size),
                         _Info(Kind.FLOAT, name, size=size, align=align))

    def decl_tag(self, value: str, target: int, component_idx: int = -1, *,
                 attr: bool = False) -> int:
        """``BTF_KIND_DECL_TAG`` (Linux 5.16): ``btf_decl_tag(value)`` on ``target`` (a
        struct, union, func, var or typedef), or on its member / parameter ``component_idx``.
        ``attr=True`` marks a plain attribute (Linux 6.15)."""
        self._tag_value(value, "DECL_TAG")
        t = self._info(target, "DECL_TAG target")
        if t.kind not in (Kind.STRUCT, Kind.UNION, Kind.FUNC, Kind.VAR, Kind.TYPEDEF):
            raise BTFError(f"DECL_TAG {value!r}: target {target} is a {t.kind.name}, not a "
                           "struct, union, func, var or typedef")
        if not isinstance(component_idx, int) or component_idx < -1:
            raise BTFError(f"DECL_TAG {value!r}: component_idx {component_idx!r} is not -1 "
                           "or a member/parameter index")
        if component_idx >= 0:
            if t.kind in (Kind.VAR, Kind.TYPEDEF):
                raise BTFError(f"DECL_TAG {value!r}: a {t.kind.name} has no components; "
                               "component_idx must be -1")
            if component_idx >= t.vlen:
                raise BTFError(f"DECL_TAG {value!r}: component {component_idx} of type "
                               f"{target}, which has {t.vlen}")
        info = Kind.DECL_TAG << 24 | (1 << 31 if attr else 0)
        return self._add((self.string(value), info, target, component_idx & _U32),
                         _Info(Kind.DECL_TAG, value, ref=target))

    def data_section(self, name: str, variables: Iterable[tuple[str, int]], *,
                     linkage: Linkage | int = Linkage.GLOBAL) -> DataSection:
        """A ``VAR`` per ``(name, type_id)`` and the ``DATASEC`` ``name`` holding them,
        each at the next offset aligned for its type (as clang lays out ``.data``,
        ``.bss``, ``.rodata``). Create the section's array map with ``value_size=size`` and
        ``btf_value_type_id=type_id``."""
        self._section_name(name)
        _linkage(linkage, f"data_section {name!r}")
        layout: list[tuple[str, int, int, int]] = []  # name, type, offset, size
        offsets: dict[str, int] = {}
        end = 0
        for entry in variables:  # everything checked before anything is added
            vname, vtype = _pair(entry, f"data_section {name!r} variable")
            if vname in offsets:
                raise BTFError(f"data_section {name!r}: variable {vname!r} repeats")
            self._name(vname, "VAR", allow_empty=False, pattern=_VAR_NAME)
            size, align = self._layout(vtype, f"VAR {vname!r}")
            off = offsets[vname] = -(-end // align) * align
            layout.append((vname, vtype, off, size))
            end = off + size
        if not end:
            raise BTFError(f"data_section {name!r}: no variable with a size")
        ids = {v: self.var(v, t, linkage) for v, t, _, _ in layout}
        sid = self.datasec(name, [(ids[v], off, size) for v, _, off, size in layout])
        return DataSection(sid, end, offsets, ids)

    def copy(self, t: Type) -> int:
        """Add ``t``, a type of a parsed :class:`~ebpf.btf.Spec` (vmlinux, a clang object),
        with every type it refers to; returns its id here. Copies of one spec share this
        writer's ids (copy ``task_struct`` and ``mm_struct`` and their common types are
        added once). Bitfields of structs without ``kind_flag`` are re-encoded with it.
        Copy an object file's BTF as fixed up for loading (``CollectionSpec.btf_blob``):
        clang leaves DATASEC sizes and offsets 0, which is refused here as by the kernel."""
        return _Copier.of(self, t.spec).full(t.id)

    # --- func_info / line_info ----------------------------------------------------------

    def func_info(self, records: Iterable[tuple[int, int]]) -> bytes:
        """``struct bpf_func_info`` records for ``BPF_PROG_LOAD`` (``func_info`` with
        ``func_info_rec_size=FUNC_INFO_SIZE``): ``(instruction index, FUNC id)`` per
        subprogram, the first at instruction 0, in ascending order."""
        return self._pack(self._func_words(records, "func_info"))

    def line_info(self, records: Iterable[tuple[int, str, int, int, str]]) -> bytes:
        """``struct bpf_line_info`` records for ``BPF_PROG_LOAD`` (``line_info`` with
        ``line_info_rec_size=LINE_INFO_SIZE``): ``(instruction index, file name, line,
        column, source text)``, in strictly ascending instruction order. The strings go into
        this writer, so encode it after this call. Line < 2**22, column < 1024. The kernel
        wants a record at the first instruction of every subprogram."""
        return self._pack(self._line_words(records, "line_info"))

    def ext(self, func_info: Mapping[str, Iterable[tuple[int, int]]] | None = None,
            line_info: Mapping[str, Iterable[tuple[int, str, int, int, str]]] | None = None
            ) -> bytes:
        """A ``.BTF.ext`` section (ELF objects) with func and line info per ELF section
        name, read back by :meth:`ebpf.btf.ext.ExtInfo.from_bytes`. Instruction offsets are
        in *bytes* from the section start here, as in files; the records are checked as
        :meth:`func_info` / :meth:`line_info` check them. No CO-RE relocations."""
        def block(rec_size: int, per_section: dict[str, list[int]]) -> list[int]:
            if not per_section:
                return []
            words = [rec_size]
            for sec, recs in per_section.items():
                words += (self.string(sec), len(recs) * 4 // rec_size, *recs)
            return words

        fw = block(FUNC_INFO_SIZE, {s: self._func_words(r, f"func_info[{s!r}]")
                                    for s, r in (func_info or {}).items()})
        lw = block(LINE_INFO_SIZE, {s: self._line_words(r, f"line_info[{s!r}]")
                                    for s, r in (line_info or {}).items()})
        flen, llen = 4 * len(fw), 4 * len(lw)
        head = struct.pack(self.byteorder + "HBBIIIIIII", wire.MAGIC, 1, 0, 32, 0, flen, flen,
                           llen, flen + llen, 0)
        return head + self._pack(fw + lw)

    def _func_words(self, records: Iterable[tuple[int, int]], what: str) -> list[int]:
        out: list[int] = []
        prev = -1
        for i, entry in enumerate(records):
            insn, fid = _int_pair(entry, f"{what}[{i}]")
            if i == 0 and insn != 0:
                raise BTFError(f"{what}[0] is at instruction {insn}; the kernel wants the "
                               "first function at instruction 0")
            if not 0 <= insn <= _U32 or insn <= prev:
                raise BTFError(f"{what}[{i}]: instruction {insn} is not after the previous "
                               f"record's ({prev})")
            kind = self._info(fid, f"{what}[{i}]").kind
            if kind != Kind.FUNC:
                raise BTFError(f"{what}[{i}]: type {fid} is a {kind.name}, not a FUNC")
            out += (insn, fid)
            prev = insn
        return out

    def _line_words(self, records: Iterable[tuple[int, str, int, int, str]],
                    what: str) -> list[int]:
        out: list[int] = []
        prev = -1
        for i, entry in enumerate(records):
            if not isinstance(entry, tuple) or len(entry) != 5:
                raise BTFError(f"{what}[{i}] is not (insn, file, line, column, text)")
            insn, file, line, col, text = entry
            if not _is_int(insn) or not 0 <= insn <= _U32 or insn <= prev:
                raise BTFError(f"{what}[{i}]: instruction {insn!r} is not after the "
                               f"previous record's ({prev})")
            if not _is_int(line) or not 0 <= line < 1 << 22:
                raise BTFError(f"{what}[{i}]: line {line!r} is not in 0..{(1 << 22) - 1}")
            if not _is_int(col) or not 0 <= col < 1 << 10:
                raise BTFError(f"{what}[{i}]: column {col!r} is not in 0..1023")
            out += (insn, self.string(file), self.string(text), line << 10 | col)
            prev = insn
        return out

    # --- output -------------------------------------------------------------------------

    def encode(self) -> bytes:
        """The BTF blob: header, type section, string section."""
        for tid, rec in enumerate(self._records, 1):
            if rec is None:
                raise BTFError(f"type {tid} was reserved but never defined")
        words = array.array("I")
        for rec in self._records:
            assert rec is not None
            words.extend(rec)
        if self.byteorder != _NATIVE:
            words.byteswap()
        types = words.tobytes()
        header = wire.Header(wire.MAGIC, wire.VERSION, 0, wire.HEADER_LEN, 0, len(types),
                             len(types), len(self._strings))
        return header.pack(self.byteorder) + types + bytes(self._strings)

    # --- internals ----------------------------------------------------------------------

    def _pack(self, words: list[int]) -> bytes:
        a = array.array("I", words)
        if self.byteorder != _NATIVE:
            a.byteswap()
        return a.tobytes()

    def _append(self, rec: tuple[int, ...] | None, info: _Info) -> int:
        if len(self._records) >= _MAX_TYPES:
            raise BTFError(f"BTF holds at most {_MAX_TYPES} types")
        self._records.append(rec)
        self._infos.append(info)
        return len(self._records)

    def _add(self, rec: tuple[int, ...], info: _Info) -> int:
        key = rec if self.dedup and info.kind not in _NO_DEDUP else None
        if key is not None:
            tid = self._index.get(key)
            if tid is not None:
                return tid
        tid = self._append(rec, info)
        if key is not None:
            self._index[key] = tid
        return tid

    def _info(self, type_id: int, what: str) -> _Info:
        if isinstance(type_id, bool) or not isinstance(type_id, int):
            raise BTFError(f"{what}: {type_id!r} is not a type id")
        if not 0 <= type_id < len(self._infos):
            raise BTFError(f"{what}: unknown type id {type_id} (this writer has ids "
                           f"1..{len(self._records)})")
        return self._infos[type_id]

    def _ref(self, type_id: int, what: str, *, void: bool = False) -> _Info:
        info = self._info(type_id, what)
        if type_id == 0 and not void:
            raise BTFError(f"{what}: type 0 (void) is not allowed here")
        return info

    def _resolved(self, type_id: int, what: str) -> _Info:
        """The type behind typedefs and qualifiers."""
        info = self._info(type_id, what)
        for _ in range(len(self._infos)):
            if info.kind not in _QUALIFIERS:
                return info
            info = self._infos[info.ref]
        raise BTFError(f"{what}: qualifier loop through type {type_id}")  # pragma: no cover

    def _layout(self, type_id: int, what: str) -> tuple[int, int]:
        """(size, alignment) of a type that can be stored; BTFError if it has no size."""
        if type_id.__class__ is int:
            known = self._sized.get(type_id)
            if known is not None:
                return known
        self._ref(type_id, what)
        r = self._resolved(type_id, what)
        if type_id and self._records[type_id - 1] is None:
            raise BTFError(f"{what}: type {type_id} is reserved, not yet defined (use a "
                           "pointer to it)")
        if r.kind in _UNSIZED or r.size is None:
            name = f" {r.name!r}" if r.name else ""
            raise BTFError(f"{what}: type {type_id} ({r.kind.name}{name}) has no size")
        known = self._sized[type_id] = (r.size, r.align)  # defined types never change
        return known

    def _name(self, name: str, what: str, *, allow_empty: bool,
              pattern: str = _IDENT) -> None:
        if (name, pattern) in self._valid_names:
            return
        if not isinstance(name, str):
            raise BTFError(f"{what}: name {name!r} is not a str")
        if not name:
            if allow_empty:
                return
            raise BTFError(f"{what}: a name is required")
        n = len(name.encode("utf-8", "surrogateescape"))
        if n > MAX_NAME_LEN:
            raise BTFError(f"{what}: name {name[:32]!r}... is {n} bytes, the kernel takes at "
                           f"most {MAX_NAME_LEN}")
        if not _valid_name(name, pattern):
            raise BTFError(f"{what}: {name!r} is not a valid {pattern}")
        self._valid_names.add((name, pattern))

    def _section_name(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise BTFError(f"DATASEC: name {name!r} must be a non-empty str")
        if len(name.encode("utf-8", "surrogateescape")) > MAX_NAME_LEN:
            raise BTFError(f"DATASEC: name {name[:32]!r}... is longer than {MAX_NAME_LEN} "
                           "bytes")
        if not (name.isascii() and name.isprintable()) or " " in name:
            raise BTFError(f"DATASEC: name {name!r} has a character the kernel refuses")

    def _tag_value(self, value: str, what: str) -> None:
        if not isinstance(value, str) or not value:
            raise BTFError(f"{what}: the tag value must be a non-empty str, not {value!r}")
        if len(value.encode("utf-8", "surrogateescape")) > MAX_NAME_LEN:
            raise BTFError(f"{what}: value {value[:32]!r}... is longer than {MAX_NAME_LEN} "
                           "bytes")

    def _qualifier(self, kind: Kind, name_off: int, target: int, name: str = "", *,
                   flag: bool = False) -> int:
        t = self._ref(target, f"{kind.name} target", void=True)
        if kind != Kind.TYPE_TAG:
            # The kernel's btf_check_type_tags: in a chain of modifiers, type tags come first.
            while t.kind in _QUALIFIERS:
                if t.kind == Kind.TYPE_TAG:
                    raise BTFError(f"{kind.name} of type {target}: a TYPE_TAG ({t.name!r}) "
                                   "follows it in the chain; the kernel wants type tags "
                                   "before typedef/const/volatile/restrict")
                t = self._infos[t.ref]
        rec = (name_off, kind << 24 | (1 << 31 if flag else 0), target)
        return self._add(rec, _Info(kind, name, ref=target))

    def _enumeration(self, kind: Kind, name: str,
                     values: Mapping[str, int] | Iterable[tuple[str, int]], size: int,
                     signed: bool | None) -> int:
        what = f"{kind.name} {name!r}" if name else kind.name
        self._name(name, what, allow_empty=True)
        if not _is_int(size) or size not in _ENUM_SIZES:
            raise BTFError(f"{what}: size {size} is not one of {_ENUM_SIZES}")
        pairs = list(values.items() if isinstance(values, Mapping) else values)
        vals: list[tuple[str, int]] = []
        for i, entry in enumerate(pairs):
            ename, value = _pair(entry, f"{what} value {i}")
            if isinstance(value, bool) or not isinstance(value, int):
                raise BTFError(f"{what}: value of {ename!r} is not an int")
            vals.append((ename, value))
        if signed is None:
            signed = any(v < 0 for _, v in vals)
        width = 32 if kind == Kind.ENUM else 64
        lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
        words: list[int] = []
        seen: set[str] = set()
        for ename, value in vals:
            self._name(ename, f"{what} enumerator", allow_empty=False)
            if ename in seen:
                raise BTFError(f"{what}: enumerator {ename!r} repeats")
            seen.add(ename)
            if not lo <= value <= hi:
                hint = " (use enum64)" if kind == Kind.ENUM and -(1 << 63) <= value < 1 << 64 \
                    else ""
                raise BTFError(f"{what}: {ename} = {value} does not fit a "
                               f"{'signed' if signed else 'unsigned'} {width}-bit value{hint}")
            u = value & ((1 << width) - 1)
            if kind == Kind.ENUM:
                words += (self.string(ename), u)
            else:
                words += (self.string(ename), u & _U32, u >> 32)
        vlen = len(vals)
        if vlen > _MAX_VLEN:
            raise BTFError(f"{what}: {vlen} enumerators, at most {_MAX_VLEN}")
        info = kind << 24 | vlen | (1 << 31 if signed else 0)
        rec = (self.string(name), info, size, *words)
        return self._add(rec, _Info(kind, name, size=size, align=size, bits=size * 8,
                                    vlen=vlen))

    def _composite(self, kind: Kind, name: str, members: Iterable[_ENTRY], size: int | None,
                   id: int | None) -> int:
        what = f"{kind.name} {name!r}" if name else f"anonymous {kind.name}"
        self._name(name, what, allow_empty=True)
        if id is not None and (self._info(id, f"{what} id=").name != "<reserved>"
                               or self._records[id - 1] is not None):
            raise BTFError(f"{what}: id {id} was not reserved with reserve(), or is "
                           "already defined")
        union = kind == Kind.UNION
        placed: list[tuple[str, int, int, int, int]] = []  # name, type, bit offset, bits, size
        seen: set[str] = set()
        cur = 0  # next free bit (struct), or the largest end so far (union)
        max_align = 1
        for i, entry in enumerate(members):
            f = _field(entry, f"{what} member {i}")
            mwhat = f"{what} member {f.name or i}"
            self._name(f.name, mwhat, allow_empty=True)
            if f.name:
                if f.name in seen:
                    raise BTFError(f"{what}: member name {f.name!r} repeats")
                seen.add(f.name)
            msize, malign = self._layout(f.type_id, mwhat)
            bits = f.bits
            if isinstance(bits, bool) or not isinstance(bits, int) or bits < 0:
                raise BTFError(f"{mwhat}: bitfield width {bits!r} is not a positive int")
            if bits:
                r = self._resolved(f.type_id, mwhat)
                if r.kind not in (Kind.INT, Kind.ENUM, Kind.ENUM64):
                    raise BTFError(f"{mwhat}: a bitfield must be an int or enum, not a "
                                   f"{r.kind.name}")
                if bits > r.bits:
                    raise BTFError(f"{mwhat}: bitfield of {bits} bits is wider than its "
                                   f"{r.bits}-bit type")
            off = f.bit_offset
            if off is None:
                if union:
                    off = 0
                elif bits:
                    unit = malign * 8  # a bitfield does not straddle a unit of its type
                    straddles = cur // unit != (cur + bits - 1) // unit
                    off = -(-cur // unit) * unit if straddles else cur
                else:
                    off = -(-cur // (malign * 8)) * malign * 8
            elif isinstance(off, bool) or not isinstance(off, int) or off < 0:
                raise BTFError(f"{mwhat}: bit offset {off!r} is not a non-negative int")
            elif union and off:
                raise BTFError(f"{mwhat}: bit offset {off}; every member of a union is at 0")
            if not bits and off % 8:
                raise BTFError(f"{mwhat}: bit offset {off} is not byte aligned (only "
                               "bitfields may start inside a byte)")
            if not union and placed and off < placed[-1][2]:
                raise BTFError(f"{mwhat}: bit offset {off} is before the previous member's "
                               f"({placed[-1][2]})")
            end = off + (bits or msize * 8)
            cur = max(cur, end) if union else end
            max_align = max(max_align, malign)
            placed.append((f.name, f.type_id, off, bits, msize))
        if size is None:
            size = -(-cur // (max_align * 8)) * max_align
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= _U32:
            raise BTFError(f"{what}: size {size!r} is not in 0..{_U32}")
        if size % max_align or any(not p[3] and p[2] % (self.alignof(p[1]) * 8)
                                   for p in placed):
            max_align = 1  # a packed layout (as libbpf's btf_dump infers it)
        kflag = any(p[3] for p in placed)
        words: list[int] = []
        for mname, mtype, off, bits, msize in placed:
            end = off + (bits or msize * 8)
            if end > size * 8:
                raise BTFError(f"{what}: member {mname or '(anonymous)'} ends at bit {end}, "
                               f"beyond the {size} bytes of the {kind.name.lower()}")
            limit = (1 << 24) - 1 if kflag else _U32
            if off > limit:
                raise BTFError(f"{what}: member {mname or '(anonymous)'} at bit offset {off} "
                               f"overflows the {24 if kflag else 32}-bit offset field"
                               + (" (a struct with bitfields)" if kflag else ""))
            words += (self.string(mname), mtype, bits << 24 | off if kflag else off)
        vlen = len(placed)
        if vlen > _MAX_VLEN:
            raise BTFError(f"{what}: {vlen} members, at most {_MAX_VLEN}")
        rec = (self.string(name), kind << 24 | vlen | (1 << 31 if kflag else 0), size, *words)
        info = _Info(kind, name, size=size, align=max_align, vlen=vlen)
        if id is not None:
            self._records[id - 1] = rec
            self._infos[id] = info
            return id
        return self._add(rec, info)


_NATIVE = "<" if sys.byteorder == "little" else ">"


class _Copier:
    """Copies types of one spec into a writer (see :meth:`BTFWriter.copy`).

    Structs and unions get a reserved id when first referred to and are defined once their
    by-value members are; pointers only need the id, so reference cycles through pointers
    are fine and the recursion is only as deep as by-value nesting."""

    def __init__(self, w: BTFWriter, spec: Spec) -> None:
        self.w = w
        self.spec = spec
        self.ids: dict[int, int] = {0: 0}
        self.pending: dict[int, int] = {}  # source composite id -> reserved id, undefined
        self.busy: set[int] = set()

    @classmethod
    def of(cls, w: BTFWriter, spec: Spec) -> _Copier:
        c = w._copiers.get(id(spec))
        if c is None or c.spec is not spec:
            c = w._copiers[id(spec)] = cls(w, spec)
        return c

    def full(self, tid: int) -> int:
        """The id of ``tid`` here, with whatever it names (through typedefs/qualifiers)
        defined, so that it has a size; then every pending struct is defined."""
        new = self._full(tid)
        while self.pending:
            self._define(next(iter(self.pending)))
        return new

    def _full(self, tid: int) -> int:
        new = self.ref(tid)
        t = self.spec[tid]
        for _ in range(64):
            if not isinstance(t, Qualifier):
                break
            t = t.type
        if isinstance(t, Composite) and t.id in self.pending and t.id not in self.busy:
            self._define(t.id)
        return new

    def ref(self, tid: int) -> int:
        """The id of ``tid`` here; a struct may only be reserved yet."""
        new = self.ids.get(tid)
        if new is not None:
            return new
        w = self.w
        t = self.spec[tid]
        if isinstance(t, Composite):
            new = self.ids[tid] = self.pending[tid] = w.reserve()
            return new
        if isinstance(t, Int):
            enc = t.encoding
            new = w.int_(t.name, t.size, signed=bool(enc & IntEncoding.SIGNED),
                         char=bool(enc & IntEncoding.CHAR), bool_=bool(enc & IntEncoding.BOOL),
                         bits=t.bits, bit_offset=t.bit_offset)
        elif isinstance(t, Pointer):
            new = w.pointer(self.ref(t.target_id))
        elif isinstance(t, Array):
            new = w.array(self._full(t.elem_type_id), t.nelems,
                          index_type=self._full(t.index_type_id))
        elif isinstance(t, Enum | Enum64):
            add = w.enum if isinstance(t, Enum) else w.enum64
            new = add(t.name, t.values, size=t.size, signed=t.signed)
        elif isinstance(t, Fwd):
            new = w.fwd(t.name, union=t.is_union)
        elif isinstance(t, TypeTag):
            new = w.type_tag(t.name, self.ref(t.type_id), attr=t.is_attr)
        elif isinstance(t, Qualifier):  # needs only the target's id (_full defines it)
            target = self.ref(t.type_id)
            new = w.typedef(t.name, target) if t.kind == Kind.TYPEDEF else \
                w._qualifier(t.kind, 0, target)
        elif isinstance(t, FuncProto):
            params = [(p.name, self.ref(p.type_id)) for p in t.params]
            new = w.func_proto(self.ref(t.return_type_id), params, variadic=t.variadic)
        elif isinstance(t, Func):
            new = w.func(t.name, self.ref(t.proto_id), t.linkage)
        elif isinstance(t, Var):
            new = w.var(t.name, self._full(t.type_id), t.linkage)
        elif isinstance(t, DataSec):
            new = w.datasec(t.name, [(self._full(v.type_id), v.offset, v.size)
                                     for v in t.vars], size=t.size)
        elif isinstance(t, Float):
            new = w.float_(t.name, t.size)
        elif isinstance(t, DeclTag):
            new = w.decl_tag(t.name, self._full(t.type_id), t.component_idx, attr=t.is_attr)
        else:  # pragma: no cover - every kind is handled above
            raise BTFError(f"copy: type {tid} is a {t.kind.name}, which cannot be copied")
        self.ids[tid] = new
        return new

    def _define(self, tid: int) -> None:
        t = self.spec[tid]
        assert isinstance(t, Composite)
        if tid in self.busy:
            raise BTFError(f"copy: type {tid} ({t.name!r}) contains itself by value")
        self.busy.add(tid)
        try:
            members: list[Field] = []
            for m in t.members:
                mtype = self._full(m.type_id)
                bits = m.bitfield_size
                if not bits:  # no kind_flag: a bitfield is a narrow int at any bit offset
                    r = self.spec.resolve(m.type_id)
                    if isinstance(r, Int) and (r.bits != r.size * 8 or m.offset % 8):
                        bits = r.bits
                members.append(Field(m.name, mtype, m.offset, bits))
            add = self.w.union if t.kind == Kind.UNION else self.w.struct
            add(t.name, members, size=t.size, id=self.pending.pop(tid))
        finally:
            self.busy.discard(tid)


def _linkage(value: Linkage | int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value not in (0, 1, 2):
        raise BTFError(f"{what}: linkage {value!r} is not a Linkage (0, 1 or 2)")
    return int(value)


def _valid_name(name: str, style: str) -> bool:
    """``name`` (not empty) is ASCII letters, digits and ``_`` not starting with a digit;
    dots are allowed anywhere in a variable name, inner spaces in an INT/FLOAT name."""
    if style == _VAR_NAME:
        name = name.replace(".", "_")
    elif style == _BASE_NAME and name[0] != " ":
        name = name.replace(" ", "_")
    return name.isascii() and name.isidentifier()


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _pair(entry: object, what: str) -> tuple[str, int]:
    """A ``(name, int)`` pair."""
    if not isinstance(entry, Sequence) or isinstance(entry, str) or len(entry) != 2:
        raise BTFError(f"{what}: {entry!r} is not a (name, type_id) pair")
    a, b = entry
    if not isinstance(a, str):
        raise BTFError(f"{what}: name {a!r} is not a str")
    if not _is_int(b):
        raise BTFError(f"{what}: {b!r} is not an int")
    return a, b


def _int_pair(entry: object, what: str) -> tuple[int, int]:
    if not isinstance(entry, Sequence) or isinstance(entry, str) or len(entry) != 2 or \
            not _is_int(entry[0]) or not _is_int(entry[1]):
        raise BTFError(f"{what}: {entry!r} is not a pair of ints")
    return entry[0], entry[1]


def _field(entry: object, what: str) -> Field:
    if isinstance(entry, Field):
        return entry
    if isinstance(entry, tuple) and 2 <= len(entry) <= 4 and isinstance(entry[0], str):
        return Field(*entry)
    raise BTFError(f"{what}: {entry!r} is not a Field or (name, type_id[, bit_offset[, bits]])")
