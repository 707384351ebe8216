"""ELF object (clang ``-target bpf``, libbpf conventions) -> :class:`~ebpf.CollectionSpec`.

Pure: the same bytes give the same spec on any host; nothing here enters the kernel.

What is understood:

* programs: every ``FUNC`` symbol of an executable section other than ``.text`` is a program
  (several may share a section); the section name gives type, expected attach type, flags
  and attach target by libbpf's ``SEC()`` table (:mod:`ebpf.elf.sections`);
* subprograms: functions in ``.text`` (or elsewhere) reached by ``call`` (bpf-to-bpf) or by
  address (``BPF_PSEUDO_FUNC``, callbacks of ``bpf_loop``, timers...) are appended to each
  program that uses them, and the call/address immediates rewritten;
* maps: BTF-defined (``.maps``: type, key/value or their sizes, max_entries, map_flags,
  numa_node, map_extra, pinning, inner maps and initial ``values``) and legacy
  (``maps``, ``struct bpf_map_def``);
* global data: ``.data*``, ``.rodata*`` (frozen, ``BPF_F_RDONLY_PROG``), ``.bss*`` become
  one-element array maps, referenced with ``BPF_PSEUDO_MAP_VALUE``; their variables are
  listed in ``CollectionSpec.variables``;
* externs in ``.ksyms``: kfunc calls, typed kernel variables (BTF ids) and untyped ones
  (``extern const void sym __ksym``: kallsyms addresses), resolved at load; a missing
  ``__weak`` one is 0;
  ``__kconfig`` externs become variables of a frozen ``.kconfig`` map filled at load;
* ``SEC("?...")`` programs have ``autoload=False`` (libbpf's optional programs);
* ``.BTF``/``.BTF.ext``: func info, line info and CO-RE relocations per program; the BTF is
  fixed up for the kernel (data section sizes and variable offsets, extern sections);
* ``license`` and ``version`` sections.

What is checked when: as libbpf splits ``bpf_object__open`` and ``bpf_object__load``, the
open (:func:`parse_object`) reads the ELF header, sections and symbols, the ``.BTF``
header and the records it needs (DATASECs, map definitions), the ``.BTF.ext`` header and
record sizes, the maps, global data sections and the programs' names, sections and types;
malformed input there raises :class:`~ebpf.errors.ParseError` at open. The rest runs at its
first use, once, and raises its :class:`~ebpf.errors.ParseError` then: the ``.BTF.ext``
records, code relocations (bad ones, references to unknown maps or externs) and linking at
the first read of a program's linked fields (``instructions``, ``references``...; the
relocations already at open for a section of several functions, to tell its programs from
its subprograms), the variables at the first read of
``CollectionSpec.variables``, the BTF fix-up at the first read of ``btf_blob``. The load
(:meth:`ebpf.Collection.load`) reads them inside its clean-up: a failure there closes what
it created, as any other.
"""

from __future__ import annotations

import struct
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from .. import btf as _btf
from .._spec_types import (
    MapSpec,
    ObjectParts,
    PinType,
    ProgramSpec,
    Reference,
    ReferenceKind,
    VariableSpec,
    _Linked,
)
from .._types import MapType
from .._uapi import _generated_types as _t
from ..btf.ext import CoreRelo, ExtInfo, FuncInfo, LineInfo, record_sizes
from ..errors import ParseError
from .reader import EM_BPF, SHN_LORESERVE, ELFFile, Section, Symbol
from .sections import SectionDef, match_section

__all__ = ["parse_object"]

_OP_LDDW = 0x18
_OP_CALL = 0x85
_PSEUDO_CALL = 1
_PSEUDO_FUNC = 4


@dataclass(slots=True)
class _Func:
    section: int
    name: str
    start: int  # instruction index in the section
    count: int
    is_global: bool


@dataclass(slots=True)
class _Reloc:
    kind: str   # "call", "func", "map", "data", "kfunc", "ksym", "kconfig"
    name: str = ""
    section: int = 0
    target: int = 0  # instruction index in ``section`` for call/func
    offset: int = 0  # byte offset for data


@dataclass(slots=True)
class _Obj:
    elf: ELFFile
    bo: str
    syms: tuple[Symbol, ...]
    btf: _btf.Spec | None
    #: ``.BTF.ext`` (parsed at the first link: :func:`_ext`) and its record sizes (at open)
    ext_sec: Section | None = None
    ext: ExtInfo | None = None
    func_info_rec_size: int = 8
    line_info_rec_size: int = 16
    license: str = "GPL"
    kern_version: int = 0
    maps: dict[str, MapSpec] = field(default_factory=dict)
    map_sections: set[int] = field(default_factory=set)
    data_sections: dict[int, str] = field(default_factory=dict)
    funcs: dict[int, list[_Func]] = field(default_factory=dict)
    #: (section, instruction) -> relocation, classified at the first link (:func:`_relocs`)
    relocs: dict[tuple[int, int], _Reloc] | None = None
    extern_kinds: dict[str, str] = field(default_factory=dict)
    datasecs: dict[str, _DataSec] | None = None
    #: ``__kconfig`` externs: name -> (offset in the ``.kconfig`` map, size, BTF var)
    kconfig: dict[str, tuple[int, int, _btf.Type]] = field(default_factory=dict)
    weak: set[str] | None = None
    by_section: dict[int, list[Symbol]] | None = None


#: ``sh_type``/``st_type`` values as plain ints for the hot loops.
_SHT_NOBITS = 8
_SHT_PROGBITS = 1
_STT_FUNC = 2
_STT_NOTYPE = 0
_STT_OBJECT = 1
_STT_SECTION = 3


def parse_object(data: bytes) -> ObjectParts:
    """Parse a BPF ELF object into the parts of a :class:`~ebpf.CollectionSpec` (use
    :func:`ebpf.elf.load_collection_spec` or :meth:`~ebpf.CollectionSpec.from_bytes`).
    Raises :class:`~ebpf.errors.ParseError` for malformed or unsupported input."""
    elf = ELFFile(data)
    if elf.machine != EM_BPF:
        raise ParseError(f"not a BPF object (e_machine {elf.machine}, expected {EM_BPF})", 18)
    if elf.e_type != 1:
        raise ParseError(f"not a relocatable object (e_type {elf.e_type})", 16)
    bo = elf.byteorder
    obj = _Obj(elf, bo, elf.symbols(), None)
    _read_meta(obj)
    _read_btf(obj)
    _collect_externs(obj)
    _read_data_sections(obj)
    _kconfig_map(obj)
    _read_legacy_maps(obj)
    _read_btf_maps(obj)
    _collect_funcs(obj)
    programs = _build_programs(obj)
    # The fix-up for BPF_BTF_LOAD runs at first use (the load), as libbpf's does; the
    # object's tables it reads are immutable. The variables are listed at first use too.
    blob = _deferred_fixup(obj.btf, obj.elf.sections, obj.syms) if obj.btf is not None else None
    return ObjectParts(maps=obj.maps, programs=programs, variables=partial(_variables, obj),
                       btf=obj.btf, btf_blob=blob, func_info_rec_size=obj.func_info_rec_size,
                       line_info_rec_size=obj.line_info_rec_size, byteorder=bo)


# --- metadata, BTF ---------------------------------------------------------------------------

def _read_meta(obj: _Obj) -> None:
    lic = obj.elf.get_section("license")
    if lic is not None:
        obj.license = obj.elf.section_data(lic).split(b"\0", 1)[0].decode("utf-8", "replace")
    ver = obj.elf.get_section("version")
    if ver is not None:
        raw = obj.elf.section_data(ver)
        if len(raw) != 4:
            raise ParseError(f"version section is {len(raw)} bytes, expected 4", ver.offset)
        obj.kern_version = struct.unpack(obj.bo + "I", raw)[0]


def _read_btf(obj: _Obj) -> None:
    sec = obj.elf.get_section(".BTF")
    if sec is None:
        return
    try:
        obj.btf = _btf.Spec.from_bytes(obj.elf.section_data(sec))
    except ParseError as e:
        raise ParseError(f".BTF: {e.what}", sec.offset + (e.offset or 0)) from None
    ext = obj.elf.get_section(".BTF.ext")
    if ext is not None:  # its header now, its records when a program is first linked
        try:
            obj.func_info_rec_size, obj.line_info_rec_size = record_sizes(
                obj.elf.section_data(ext), obj.btf.byte_order)
        except ParseError as e:
            raise ParseError(f".BTF.ext: {e.what}", ext.offset + (e.offset or 0)) from None
        obj.ext_sec = ext


def _ext(obj: _Obj) -> ExtInfo | None:
    """The object's ``.BTF.ext``, parsed at the first call (the first link)."""
    sec = obj.ext_sec
    if obj.ext is None and sec is not None:
        assert obj.btf is not None
        try:
            obj.ext = ExtInfo.from_bytes(obj.elf.section_data(sec), obj.btf.string,
                                         obj.btf.byte_order)
        except ParseError as e:
            raise ParseError(f".BTF.ext: {e.what}", sec.offset + (e.offset or 0)) from None
    return obj.ext


#: A DATASEC read from its record: (type id, [(variable type id, offset, size), ...]).
_DataSec = tuple[int, list[tuple[int, int, int]]]


def _datasecs(obj: _Obj) -> dict[str, _DataSec]:
    """The object's DATASECs by name (the last of a name), read from their records: the
    ids of their variables, decoded by who needs them."""
    if obj.btf is None:
        return {}
    if obj.datasecs is None:
        spec = obj.btf
        st = _SECINFO[spec.byte_order]
        head, entries = st.unpack_from, st.iter_unpack
        found: dict[str, _DataSec] = {}
        try:  # only the DATASEC records are read (found by their kind bytes)
            for tid in spec.ids_of_kinds((_KIND_DATASEC,)):
                rec = spec.raw_record(tid)
                name_off, info, _size = head(rec)
                vars_end = 12 + 12 * (info & 0xFFFF)
                found[spec.string(name_off)] = (tid, list(entries(rec[12:vars_end])))
        except (KeyError, ValueError, TypeError, struct.error) as e:
            raise ParseError(f".BTF: bad DATASEC ({e})") from None
        obj.datasecs = found
    return obj.datasecs


def _extern_size(spec: _btf.Spec, t: _btf.Type) -> int:
    """Bytes an extern takes in its section (kfuncs and sizeless types: 4)."""
    if isinstance(t, _btf.Func):
        return 4
    try:
        return spec.sizeof(t)
    except (ValueError, KeyError):
        return 4


def _collect_externs(obj: _Obj) -> None:
    """Which undefined symbols are kfuncs, typed ksyms or kconfig values (from BTF).

    ``__kconfig`` externs get 8-byte aligned slots of the ``.kconfig`` map in DATASEC order,
    the same layout :class:`_BTFFixer` gives the kernel."""
    spec = obj.btf
    for name, (_tid, entries) in _datasecs(obj).items():
        if name not in (".ksyms", ".kconfig"):
            continue
        assert spec is not None
        off = 0
        for type_id, _o, _s in entries:
            t = spec._ref(type_id)
            if name == ".kconfig":
                size = _extern_size(spec, t)
                obj.extern_kinds[t.name] = "kconfig"
                obj.kconfig[t.name] = (off, size, t)
                off += (size + 7) // 8 * 8
            elif isinstance(t, _btf.Func):
                obj.extern_kinds[t.name] = "kfunc"
            elif isinstance(t, _btf.Var) and isinstance(t.spec.resolve(t.type), _btf.Void):
                obj.extern_kinds[t.name] = "ksym_addr"  # untyped: its kallsyms address
            else:
                obj.extern_kinds[t.name] = "ksym"


# --- maps ---------------------------------------------------------------------------------

def _is_data_section(sec: Section) -> bool:
    n = sec.name  # the name first: most sections are not data (debug info, relocations)
    if n not in _DATA_NAMES and not n.startswith(_DATA_PREFIXES):
        return False
    # SHF_ALLOC and not SHF_EXECINSTR (int tests: the Section properties cost a call)
    return sec.type in (_SHT_PROGBITS, _SHT_NOBITS) and sec.flags & 0x6 == 0x2


_DATA_NAMES = frozenset((".data", ".rodata", ".bss"))
_MMAPABLE_RDONLY = _t.BPF_F_MMAPABLE | _t.BPF_F_RDONLY_PROG
#: ``.data.foo`` and the like (one ``str.startswith`` over the tuple)
_DATA_PREFIXES = (".data.", ".rodata.", ".bss.")


#: What every data section name starts with (a first filter, in one C call per name).
_DATA_STARTS = (".data", ".rodata", ".bss")


def _read_data_sections(obj: _Obj) -> None:
    secs = _datasecs(obj)
    # the names first: most sections are not data (debug info, relocations)
    for sec in [s for s in obj.elf.sections if s.name.startswith(_DATA_STARTS)]:
        if not _is_data_section(sec) or sec.size == 0:
            continue
        contents = obj.elf.section_data(sec)
        readonly = sec.name.startswith(".rodata")
        flags = _MMAPABLE_RDONLY if readonly else _t.BPF_F_MMAPABLE
        ds = secs.get(sec.name)
        obj.maps[sec.name] = MapSpec._of(  # name, type, key/value size, max_entries, flags,
            # map_extra, numa_node, pinning, inner, contents, freeze, BTF key/value
            sec.name, MapType.ARRAY, 4, sec.size, 1, flags, 0, None, PinType.NONE, None,
            ((0, contents),), readonly, 0, ds[0] if ds is not None else 0)
        obj.data_sections[sec.index] = sec.name


def _kconfig_map(obj: _Obj) -> None:
    """The ``.kconfig`` map of ``__kconfig`` externs: read-only to programs, frozen, its
    contents computed from the running kernel at load (:mod:`ebpf._collection`)."""
    if not obj.kconfig:
        return
    size = max(off + (sz + 7) // 8 * 8 for off, sz, _t_ in obj.kconfig.values())
    ds = _datasecs(obj).get(".kconfig")
    obj.maps[".kconfig"] = MapSpec(
        name=".kconfig", type=MapType.ARRAY, key_size=4, value_size=size, max_entries=1,
        flags=_t.BPF_F_MMAPABLE | _t.BPF_F_RDONLY_PROG, freeze=True,
        btf_value_type_id=ds[0] if ds is not None else 0)


def _read_legacy_maps(obj: _Obj) -> None:
    sec = obj.elf.get_section("maps")
    if sec is None:
        return
    obj.map_sections.add(sec.index)
    data = obj.elf.section_data(sec)
    syms = [s for s in _in_section(obj, sec.index)
            if s.type in (_STT_OBJECT, _STT_NOTYPE) and s.name]
    if not syms:
        return
    syms.sort(key=lambda s: s.value)
    for i, s in enumerate(syms):
        size = s.size or ((syms[i + 1].value if i + 1 < len(syms) else len(data)) - s.value)
        if size < 20 or s.value + 20 > len(data):
            raise ParseError(f"legacy map {s.name!r} definition is {size} bytes (< 20)",
                             sec.offset + s.value)
        mt, ks, vs, me, fl = struct.unpack_from(obj.bo + "5I", data, s.value)
        obj.maps[s.name] = MapSpec(name=s.name, type=_map_type(mt), key_size=ks,
                                   value_size=vs, max_entries=me, flags=fl)


#: ``MapType`` by value (a dict lookup: calling an enum class costs several of them)
_MAP_TYPES: dict[int, MapType] = {int(m): m for m in MapType}
_PIN_TYPES: dict[int, PinType] = {int(p): p for p in PinType}


#: The ``__uint()`` members of a BTF map definition.
_UINT_ATTRS = frozenset(("type", "max_entries", "map_flags", "numa_node", "key_size",
                         "value_size", "pinning", "map_extra"))


def _map_type(v: int) -> MapType | int:
    return _MAP_TYPES.get(v, v)


def _uint_member(spec: _btf.Spec, m: _btf.Member, map_name: str) -> int:
    n = spec._pointee_nelems(m.type_id)  # the usual pointer to an array, from the words
    if n is not None:
        return n
    t = spec.resolve(m.type)
    if not isinstance(t, _btf.Pointer):
        raise ParseError(f"map {map_name!r}: {m.name} is not a __uint() pointer")
    arr = spec.resolve(t.target)
    if not isinstance(arr, _btf.Array):
        raise ParseError(f"map {map_name!r}: {m.name} does not point to an array")
    return arr.nelems


def _btf_map(spec: _btf.Spec, name: str, t: _btf.Type, depth: int = 0
             ) -> tuple[MapSpec, int | None]:
    """A map definition struct -> (spec, byte offset of its ``values`` member or None)."""
    if depth > 2:
        raise ParseError(f"map {name!r}: map-in-map nesting too deep")
    st = spec.resolve(t)
    if not isinstance(st, _btf.Struct):
        raise ParseError(f"map {name!r} is not defined by a struct")
    kw: dict[str, int] = {}
    key_size = value_size = None
    key_id = value_id = 0
    inner: MapSpec | None = None
    values_off: int | None = None
    pointee_nelems = spec._pointee_nelems
    for m in st.members:
        mname = m.name
        if mname in _UINT_ATTRS:
            n = pointee_nelems(m.type_id)  # the usual pointer to an array, from the words
            kw[mname] = n if n is not None else _uint_member(spec, m, name)
        elif mname in ("key", "value"):
            pointee = spec._pointee(m.type_id)  # the usual direct pointer, from its words
            if pointee is None:
                p = spec.resolve(m.type)
                if not isinstance(p, _btf.Pointer):
                    raise ParseError(f"map {name!r}: {mname} is not a __type() pointer")
                pointee = p.target.id  # a bad target id is a ParseError
            try:
                size = spec.sizeof(pointee)
            except ValueError as e:
                raise ParseError(f"map {name!r}: {mname} has no size ({e})") from None
            if mname == "key":
                key_size, key_id = size, pointee
            else:
                value_size, value_id = size, pointee
        elif mname == "values":
            arr = spec.resolve(m.type)
            if not isinstance(arr, _btf.Array):
                raise ParseError(f"map {name!r}: values is not an array")
            p = spec.resolve(arr.elem_type)
            if not isinstance(p, _btf.Pointer):
                raise ParseError(f"map {name!r}: values is not an array of pointers")
            target = spec.resolve(p.target)
            if isinstance(target, _btf.Struct):
                inner, _ = _btf_map(spec, f"{name}.inner", target, depth + 1)
            values_off = m.offset // 8
            value_size = 4
        else:
            raise ParseError(f"map {name!r}: unknown map attribute {mname!r}")
    map_type = kw.get("type")
    if map_type is None:
        raise ParseError(f"map {name!r} has no type")
    ks = kw.get("key_size")
    vs = kw.get("value_size")
    if key_size is not None and ks is not None and ks != key_size:
        raise ParseError(f"map {name!r}: key_size {ks} disagrees with key type ({key_size})")
    if value_size is not None and vs is not None and vs != value_size and values_off is None:
        raise ParseError(f"map {name!r}: value_size {vs} disagrees with value type "
                         f"({value_size})")
    pin = kw.get("pinning", 0)
    pinning = _PIN_TYPES.get(pin)
    if pinning is None:
        raise ParseError(f"map {name!r}: unknown pinning {pin}")
    plain = values_off is None
    ms = MapSpec._of(  # every field, in order
        name, _MAP_TYPES.get(map_type, map_type),
        key_size if key_size is not None else ks, value_size if value_size is not None else vs,
        kw.get("max_entries"), kw.get("map_flags", 0), kw.get("map_extra", 0),
        kw.get("numa_node"), pinning, inner, (), False, key_id if plain else 0,
        value_id if plain else 0)
    return ms, values_off


def _read_btf_maps(obj: _Obj) -> None:
    sec = obj.elf.get_section(".maps")
    if sec is None:
        return
    obj.map_sections.add(sec.index)
    if obj.btf is None:
        raise ParseError(".maps section without .BTF (compile with -g)", sec.offset)
    ds = _datasecs(obj).get(".maps")
    if ds is None:
        raise ParseError(".maps section has no BTF DATASEC", sec.offset)
    offsets: dict[str, int] = {s.name: s.value for s in _in_section(obj, sec.index) if s.name}
    values_at: list[tuple[int, int, str]] = []  # (values start, end, map name)
    for type_id, voff, vsize in ds[1]:
        var = obj.btf._ref(type_id)
        if not isinstance(var, _btf.Var):
            raise ParseError(f".maps entry {type_id} is not a variable")
        try:
            ms, values_off = _btf_map(obj.btf, var.name, var.type)
        except (KeyError, ValueError) as e:
            if isinstance(e, ParseError):
                raise
            raise ParseError(f"map {var.name!r}: bad BTF ({e})") from None
        obj.maps[var.name] = ms
        if values_off is not None:
            start = offsets.get(var.name, voff) + values_off
            values_at.append((start, offsets.get(var.name, voff) + vsize, var.name))
    if not values_at:
        return
    rel = obj.elf.relocation_sections().get(sec.index)
    if rel is None:
        return
    contents: dict[str, list[tuple[int, str]]] = {}
    for r in obj.elf.relocations(rel):
        for start, end, mname in values_at:
            if start <= r.offset < end:
                sym = _symbol(obj, r.symbol, rel)
                contents.setdefault(mname, []).append(((r.offset - start) // 8, sym.name))
    for mname, entries in contents.items():
        obj.maps[mname] = obj.maps[mname].replace(contents=tuple(sorted(entries)))


def _in_section(obj: _Obj, shndx: int) -> list[Symbol]:
    """The symbols defined in section ``shndx``, in symbol table order (grouped once)."""
    groups = obj.by_section
    if groups is None:
        groups = obj.by_section = {}
        for sym in obj.syms:
            found = groups.get(sym.section_index)
            if found is None:
                groups[sym.section_index] = [sym]
            else:
                found.append(sym)
    return groups.get(shndx, [])


def _symbol(obj: _Obj, index: int, where: Section) -> Symbol:
    if not 0 <= index < len(obj.syms):
        raise ParseError(f"relocation against missing symbol {index}", where.offset)
    return obj.syms[index]


# --- functions and relocations ---------------------------------------------------------------

def _collect_funcs(obj: _Obj) -> None:
    code = [s for s in obj.elf.sections if s.flags & 0x4]  # SHF_EXECINSTR, in one pass
    for sec in code:
        if sec.type != _SHT_PROGBITS or sec.size == 0:
            continue
        if sec.size % 8:
            raise ParseError(f"section {sec.name!r} is not a whole number of instructions",
                             sec.offset)
        n = sec.size // 8
        funcs: list[_Func] = []
        for s in _in_section(obj, sec.index):
            if s.type != _STT_FUNC:
                continue
            if s.value % 8 or s.size % 8 or s.value + s.size > sec.size:
                raise ParseError(f"function {s.name!r} is outside section {sec.name!r}",
                                 sec.offset)
            count = s.size // 8 if s.size else 0
            funcs.append(_Func(sec.index, s.name, s.value // 8, count, s.binding != 0))
        funcs.sort(key=lambda f: f.start)
        if not funcs:
            funcs = [_Func(sec.index, sec.name, 0, n, sec.name != ".text")]
        for i, f in enumerate(funcs):  # symbols without a size run to the next one
            if f.count == 0:
                f.count = (funcs[i + 1].start if i + 1 < len(funcs) else n) - f.start
        obj.funcs[sec.index] = funcs


_INSN = {bo: struct.Struct(bo + "BBhi").unpack_from for bo in "<>"}


def _insn(data: bytes, i: int, bo: str) -> tuple[int, int, int, int, int]:
    """(code, dst, src, off, imm) of instruction ``i``."""
    code, regs, off, imm = _INSN[bo](data, i * 8)
    if bo == "<":
        return code, regs & 0xF, regs >> 4, off, imm
    return code, regs >> 4, regs & 0xF, off, imm


def _relocs(obj: _Obj) -> dict[tuple[int, int], _Reloc]:
    """The code relocations of the object, read and classified at the first call (the first
    link, or a section of several functions telling its programs from its subprograms), as
    the linking that uses them; a relocation it cannot take raises its ParseError then."""
    if obj.relocs is None:
        relocs: dict[tuple[int, int], _Reloc] = {}
        _collect_relocs(obj, relocs)
        obj.relocs = relocs
    return obj.relocs


def _collect_relocs(obj: _Obj, out: dict[tuple[int, int], _Reloc]) -> None:
    elf = obj.elf
    rels = elf.relocation_sections()
    for sec_index in obj.funcs:
        sec = elf.sections[sec_index]
        rel = rels.get(sec_index)
        if rel is None:
            continue
        code_bytes = elf.section_data(sec)
        for r in elf.relocations(rel):
            if r.offset % 8 or r.offset + 8 > len(code_bytes):
                raise ParseError(f"relocation at {r.offset} outside the code of {sec.name!r}",
                                 rel.offset)
            idx = r.offset // 8
            sym = _symbol(obj, r.symbol, rel)
            code, _dst, src, _off, imm = _insn(code_bytes, idx, obj.bo)
            out[(sec_index, idx)] = _classify(obj, sec, idx, code, src, imm, sym)


def _classify(obj: _Obj, sec: Section, idx: int, code: int, src: int, imm: int,
              sym: Symbol) -> _Reloc:
    shndx = sym.section_index
    if shndx in obj.funcs:  # the common cases first
        if code == _OP_CALL and src == _PSEUDO_CALL and not sym.value % 8:
            return _Reloc("call", section=shndx, target=sym.value // 8 + imm + 1)
        if code == _OP_LDDW and not (sym.value + imm) % 8:
            return _Reloc("func", section=shndx, target=(sym.value + imm) // 8)
    elif code == _OP_LDDW:
        if shndx in obj.data_sections:
            return _Reloc("data", obj.data_sections[shndx], offset=sym.value + imm)
        if shndx in obj.map_sections and sym.name and sym.name in obj.maps \
                and sym.type != _STT_SECTION:
            return _Reloc("map", sym.name)
    return _classify_checked(obj, sec, idx, code, src, imm, sym)


def _classify_checked(obj: _Obj, sec: Section, idx: int, code: int, src: int, imm: int,
                      sym: Symbol) -> _Reloc:
    """:func:`_classify`, every case, with the error for a relocation it cannot take."""
    where = f"{sec.name!r} instruction {idx}"
    shndx = sym.section_index
    if sym.undefined:
        kind = obj.extern_kinds.get(sym.name)
        if code == _OP_CALL:
            return _Reloc("kfunc", sym.name)
        if code != _OP_LDDW:
            raise ParseError(f"extern {sym.name!r} used by a non-ld_imm64 at {where}")
        if kind is None:
            raise ParseError(f"unresolved extern {sym.name!r} at {where} (not __ksym or "
                             "__kconfig)")
        return _Reloc(kind, sym.name)
    if shndx >= SHN_LORESERVE or shndx >= len(obj.elf.sections):
        raise ParseError(f"relocation at {where} against symbol {sym.name!r} in special "
                         f"section {shndx:#x}")
    target_sec = obj.elf.sections[shndx]
    if code == _OP_CALL:
        if src != _PSEUDO_CALL:
            raise ParseError(f"relocated call at {where} is not a bpf-to-bpf call")
        if shndx not in obj.funcs:
            raise ParseError(f"call at {where} into non-code section {target_sec.name!r}")
        if sym.value % 8:
            raise ParseError(f"call at {where} to a misaligned symbol")
        return _Reloc("call", section=shndx, target=sym.value // 8 + imm + 1)
    if code != _OP_LDDW:
        raise ParseError(f"unsupported relocation on opcode {code:#04x} at {where}")
    if shndx in obj.funcs:
        off = sym.value + imm
        if off % 8:
            raise ParseError(f"function address at {where} is misaligned")
        return _Reloc("func", section=shndx, target=off // 8)
    if shndx in obj.map_sections:
        name = sym.name
        if sym.type == _STT_SECTION or not name:
            name = _map_at(obj, shndx, sym.value + imm, where)
        if name not in obj.maps:
            raise ParseError(f"reference to unknown map {name!r} at {where}")
        return _Reloc("map", name)
    if shndx in obj.data_sections:
        return _Reloc("data", obj.data_sections[shndx], offset=sym.value + imm)
    raise ParseError(f"relocation at {where} against {sym.name!r} in unsupported section "
                     f"{target_sec.name!r}")


def _map_at(obj: _Obj, shndx: int, offset: int, where: str) -> str:
    for s in _in_section(obj, shndx):
        if s.value == offset and s.type != _STT_SECTION:
            return s.name
    raise ParseError(f"no map symbol at offset {offset} for {where}")


def _find_func(obj: _Obj, sec: int, idx: int) -> _Func | None:
    funcs = obj.funcs.get(sec)
    if not funcs:
        return None
    i = bisect_right([f.start for f in funcs], idx) - 1
    if i < 0:
        return None
    f = funcs[i]
    return f if idx < f.start + f.count else None


def _weak_externs(obj: _Obj) -> set[str]:
    """Names of undefined ``STB_WEAK`` symbols (``__weak`` externs)."""
    weak = obj.weak
    if weak is None:
        weak = obj.weak = {s.name for s in obj.syms if s.binding == 2 and not s.section_index}
    return weak


def _set_insn(buf: bytearray, i: int, bo: str, *, src: int | None = None,
              imm: int | None = None) -> None:
    if src is not None:
        regs = buf[i * 8 + 1]
        if bo == "<":
            buf[i * 8 + 1] = (regs & 0x0F) | (src << 4)
        else:
            buf[i * 8 + 1] = (regs & 0xF0) | src
    if imm is not None:
        struct.pack_into(bo + "i", buf, i * 8 + 4, imm)


def _build_programs(obj: _Obj) -> dict[str, ProgramSpec]:
    out: dict[str, ProgramSpec] = {}
    text = obj.elf.get_section(".text")
    for sec_index, funcs in obj.funcs.items():
        sec = obj.elf.sections[sec_index]
        if text is not None and sec_index == text.index:
            continue
        optional = sec.name.startswith("?")  # SEC("?..."): not loaded unless asked for
        match = match_section(sec.name[1:] if optional else sec.name)
        for f in funcs:
            if not f.is_global and len(funcs) > 1 and _is_called(obj, f):
                continue  # a static subprogram of this section, not a program
            if f.name in out:
                raise ParseError(f"two programs named {f.name!r}")
            if f.count <= 0:
                raise ParseError(f"program {f.name!r} in {sec.name!r} has no instructions",
                                 sec.offset)
            out[f.name] = _program(obj, f, sec, match, optional)
    return out


def _program(obj: _Obj, main: _Func, sec: Section,
             match: tuple[SectionDef, str | None] | None, optional: bool) -> ProgramSpec:
    """The spec of program ``main``; linked (:func:`_link`) when first read, as libbpf
    appends subprograms at load (``bpf_object__relocate``), not at open."""
    name = sec.name[1:] if optional else sec.name
    if match is None:  # BPF_PROG_TYPE_UNSPEC: the caller must set it with replace()
        return ProgramSpec._link_later(partial(_link, obj, main), main.name, 0, name, None,
                                       None, obj.license, 0, obj.kern_version, obj.bo,
                                       not optional)
    d, attach_to = match
    return ProgramSpec._link_later(partial(_link, obj, main), main.name, d.prog_type, name,
                                   d.attach_type, attach_to, obj.license, d.flags,
                                   obj.kern_version, obj.bo, not optional)


def _is_called(obj: _Obj, f: _Func) -> bool:
    relocs = _relocs(obj)
    for (sec, _idx), r in relocs.items():
        if r.kind in ("call", "func") and r.section == f.section and r.target == f.start:
            return True
        _ = sec
    code = obj.elf.section_data(obj.elf.sections[f.section])
    for other in obj.funcs[f.section]:
        for i in range(other.start, other.start + other.count):
            c, _d, src, _o, imm = _insn(code, i, obj.bo)
            if c == _OP_CALL and src == _PSEUDO_CALL and (f.section, i) not in relocs \
                    and i + imm + 1 == f.start:
                return True
    return False


def _ext_for(obj: _Obj, sec_name: str
             ) -> tuple[tuple[FuncInfo, ...], tuple[LineInfo, ...], tuple[CoreRelo, ...]]:
    ext = _ext(obj)
    if ext is None:
        return (), (), ()
    return (ext.func_info.get(sec_name, ()), ext.line_info.get(sec_name, ()),
            ext.core_relos.get(sec_name, ()))


def _link_candidates(obj: _Obj, f: _Func, body: bytes) -> list[int]:
    """Indices (in ``f``) of the instructions linking may change: those with a relocation,
    and every call or ld_imm64 (bpf-to-bpf calls and function addresses); ascending."""
    opcodes = body[::8]
    found = [i - f.start for s, i in _relocs(obj) if s == f.section
             and f.start <= i < f.start + f.count]
    for op in (_OP_CALL, _OP_LDDW):
        j = opcodes.find(op)
        while j >= 0:
            found.append(j)
            j = opcodes.find(op, j + 1)
    return sorted(set(found))


def _link(obj: _Obj, main: _Func) -> _Linked:
    """Program ``main`` with its subprograms appended: (instructions, references, CO-RE
    relocations, func info, line info), for :class:`~ebpf.ProgramSpec`."""
    bo = obj.bo
    relocs = _relocs(obj)
    placed: dict[tuple[int, int], int] = {(main.section, main.start): 0}
    order: list[_Func] = [main]
    code = bytearray()
    refs: list[Reference] = []
    core: list[tuple[int, CoreRelo]] = []
    finfo: list[tuple[int, int]] = []
    linfo: list[tuple[int, int, int, int]] = []
    func_info_complete = True
    n = 0
    while n < len(order):
        f = order[n]
        n += 1
        base = placed[(f.section, f.start)]
        fsec = obj.elf.sections[f.section]
        sec_code = obj.elf.section_data(fsec)
        body = sec_code[f.start * 8:(f.start + f.count) * 8]
        code += body
        for j in _link_candidates(obj, f, body):
            i = f.start + j
            out_i = base + j
            r = relocs.get((f.section, i))
            c, _d, src, _o, imm = _insn(sec_code, i, bo)
            target: tuple[int, int] | None = None
            if r is not None and r.kind in ("call", "func"):
                target = (r.section, r.target)
            elif r is None and ((c == _OP_CALL and src == _PSEUDO_CALL)
                                or (c == _OP_LDDW and src == _PSEUDO_FUNC)):
                target = (f.section, i + imm + 1)
            if target is not None:
                tf = _find_func(obj, *target)
                if tf is None:
                    raise ParseError(f"call in {f.name!r} to instruction {target[1]} of "
                                     f"{obj.elf.sections[target[0]].name!r}, not a function")
                key = (tf.section, tf.start)
                if key not in placed:
                    placed[key] = sum(x.count for x in order)
                    order.append(tf)
                new = placed[key] + (target[1] - tf.start)
                is_call = c == _OP_CALL
                _set_insn(code, out_i, bo, src=_PSEUDO_CALL if is_call else _PSEUDO_FUNC,
                          imm=new - out_i - 1)
                continue
            if r is None:
                continue
            if r.kind == "map":
                refs.append(Reference(out_i, ReferenceKind.MAP, r.name))
            elif r.kind == "data":
                refs.append(Reference(out_i, ReferenceKind.MAP_VALUE, r.name, r.offset))
                _set_insn(code, out_i, bo, imm=0)
            elif r.kind == "kfunc":
                refs.append(Reference(out_i, ReferenceKind.KFUNC, r.name,
                                      weak=r.name in _weak_externs(obj)))
            elif r.kind in ("ksym", "ksym_addr"):
                kind = ReferenceKind.KSYM if r.kind == "ksym" else ReferenceKind.KSYM_ADDR
                refs.append(Reference(out_i, kind, r.name, weak=r.name in _weak_externs(obj)))
            elif r.kind == "kconfig":
                refs.append(Reference(out_i, ReferenceKind.MAP_VALUE, ".kconfig",
                                      obj.kconfig[r.name][0]))
                _set_insn(code, out_i, bo, imm=0)
        fi, li, cr = _ext_for(obj, fsec.name)
        lo, hi = f.start * 8, (f.start + f.count) * 8
        got = [x for x in fi if x.insn_off == lo]
        if got:
            finfo.append((base, got[0].type_id))
        else:
            func_info_complete = False
        for x in li:
            if lo <= x.insn_off < hi:
                linfo.append((base + (x.insn_off - lo) // 8, x.file_name_off, x.line_off,
                               x.line_col))
        for c_r in cr:
            if lo <= c_r.insn_off < hi:
                core.append((base + (c_r.insn_off - lo) // 8, c_r))
    return (bytes(code), tuple(refs), tuple(core),
            tuple(finfo) if func_info_complete else (), tuple(sorted(linfo)))


# --- variables ---------------------------------------------------------------------------------

def _variables(obj: _Obj) -> dict[str, VariableSpec]:
    out: dict[str, VariableSpec] = {}
    secs = _datasecs(obj)
    for shndx, mname in obj.data_sections.items():
        by_name: dict[str, _btf.Type] = {}
        ds = secs.get(mname)
        if ds is not None:
            assert obj.btf is not None
            for type_id, _o, _s in ds[1]:
                t = obj.btf._ref(type_id)
                by_name[t.name] = t
        for s in _in_section(obj, shndx):
            if s.type != _STT_OBJECT or not s.name:
                continue
            if s.name in out:
                continue  # two statics of the same name: the first wins
            out[s.name] = VariableSpec(s.name, mname, s.value, s.size, by_name.get(s.name))
    weak = _weak_externs(obj)
    for name, (off, size, t) in obj.kconfig.items():
        out.setdefault(name, VariableSpec(name, ".kconfig", off, size, t, weak=name in weak))
    return out


# --- BTF fix-up for the kernel ---------------------------------------------------------------

_KIND_INT, _KIND_TYPEDEF, _KIND_FUNC, _KIND_VAR, _KIND_DATASEC = 1, 8, 12, 14, 15
_SECINFO = {bo: struct.Struct(bo + "III") for bo in "<>"}  # struct btf_var_secinfo
_U32 = {bo: struct.Struct(bo + "I") for bo in "<>"}


class _BTFFixer:
    """Rewrites records in place (same ids) and appends new types and strings."""

    def __init__(self, spec: _btf.Spec, sections: tuple[Section, ...],
                 syms: tuple[Symbol, ...]) -> None:
        self.spec = spec
        self.bo = spec.byte_order
        self.strings = bytearray(spec.strings)
        self.extra: list[bytes] = []
        self.int_id = 0
        self.sym_off: dict[tuple[str, str], int] = {}
        #: section name -> size (the first section of a name, as ``ELFFile.get_section``)
        self.sec_size: dict[str, int] = {}
        for sec in reversed(sections):
            self.sec_size[sec.name] = sec.size
        limit = min(len(sections), SHN_LORESERVE)
        for s in syms:
            if 0 < s.section_index < limit:
                self.sym_off[(sections[s.section_index].name, s.name)] = s.value

    def add_str(self, s: str) -> int:
        raw = s.encode() + b"\0"
        at = self.strings.find(b"\0" + raw)
        if at >= 0:
            return at + 1
        off = len(self.strings)
        self.strings.extend(raw)
        return off

    def add_type(self, rec: bytes) -> int:
        self.extra.append(rec)
        return len(self.spec) + len(self.extra) - 1

    def dummy_int(self) -> int:
        if not self.int_id:
            self.int_id = self.add_type(struct.pack(self.bo + "IIII", self.add_str("int"),
                                                    _KIND_INT << 24, 4, (1 << 24) | 32))
        return self.int_id

    def blob(self) -> bytes:
        spec, bo = self.spec, self.bo
        raw = spec.raw
        ts = spec.header.hdr_len + spec.header.type_off
        te = ts + spec.header.type_len
        info_at = _U32[bo].unpack_from
        parts: list[bytes] = []
        done = ts  # copy unchanged records in runs; rewrite only the few that need it
        n = len(spec)
        offset_of = spec.record_offset
        for tid in spec.ids_of_kinds((_KIND_FUNC, _KIND_VAR, _KIND_DATASEC)):
            at = ts + offset_of(tid)
            info = info_at(raw, at + 4)[0]
            kind = (info >> 24) & 0x1F
            vlen = info & 0xFFFF
            rec: bytes | None = None
            if kind == _KIND_FUNC and vlen == 2:
                # An extern (kfunc) declaration: the kernel refuses extern linkage and the
                # unnamed parameters of its prototype; a typedef of the prototype keeps the
                # record (and every type id) without either check.
                name_off, _info, proto = struct.unpack_from(bo + "III", raw, at)
                rec = struct.pack(bo + "III", name_off, _KIND_TYPEDEF << 24, proto)
            elif kind == _KIND_VAR and info_at(raw, at + 12)[0] == 2:  # extern -> allocated
                rec = raw[at:at + 12] + struct.pack(bo + "I", 1)
            elif kind == _KIND_DATASEC:
                rec = self.datasec(spec.raw_record(tid))
            if rec is None:
                continue
            end = ts + offset_of(tid + 1) if tid + 1 < n else te
            parts.append(raw[done:at])
            parts.append(rec)
            done = end
        parts.append(raw[done:te])
        types = b"".join(parts) + b"".join(self.extra)
        hdr = struct.pack(bo + "HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types),
                          len(self.strings))
        return hdr + types + bytes(self.strings)

    def datasec(self, rec: bytes) -> bytes:
        spec, bo = self.spec, self.bo
        name_off, info, size = struct.unpack_from(bo + "III", rec)
        vlen = info & 0xFFFF
        name = spec.string(name_off)
        entries = list(_SECINFO[bo].iter_unpack(rec[12:12 + 12 * vlen]))
        fixed: list[tuple[int, int, int]] = []
        if name in (".ksyms", ".kconfig"):
            off = 0
            for orig_id, _o, _s in entries:
                t = spec[orig_id]
                type_id = orig_id
                if isinstance(t, _btf.Func):
                    type_id = self.add_type(struct.pack(bo + "IIII", self.add_str(t.name),
                                                        _KIND_VAR << 24, self.dummy_int(), 1))
                sz = _extern_size(spec, t)
                fixed.append((type_id, off, sz))
                off += (sz + 7) // 8 * 8
            size = off
        else:
            size = self.sec_size.get(name, size)
            for type_id, o, s in entries:
                fixed.append((type_id, self.sym_off.get((name, spec[type_id].name), o), s))
            fixed.sort(key=lambda e: e[1])
        if not fixed and size == 0:
            size = 1  # the kernel rejects a zero size; nothing refers into it
        words = [name_off, (info & ~0xFFFF) | len(fixed), size]
        for e in fixed:
            words += e
        return struct.pack(f"{bo}{len(words)}I", *words)


def _deferred_fixup(spec: _btf.Spec, sections: tuple[Section, ...],
                    syms: tuple[Symbol, ...]) -> Callable[[], bytes]:
    """:func:`_fixup_btf` to run later (keeping the section and symbol tables, not the
    file's bytes)."""
    return lambda: _fixup_btf(spec, sections, syms)


def _fixup_btf(spec: _btf.Spec, sections: tuple[Section, ...],
               syms: tuple[Symbol, ...]) -> bytes:
    """The object's BTF as the kernel accepts it: DATASEC sizes and variable offsets from
    the ELF sections and symbols (clang leaves sizes 0), ``.ksyms``/``.kconfig`` functions
    turned into ``int`` variables, extern linkage made global.

    Run when the blob is first asked for (``CollectionSpec.btf_blob``, read by the load);
    malformed BTF it reaches raises :class:`~ebpf.errors.ParseError` then."""
    try:
        return _BTFFixer(spec, sections, syms).blob()
    except (KeyError, ValueError, struct.error) as e:
        if isinstance(e, ParseError):
            raise
        raise ParseError(f".BTF: cannot prepare for the kernel ({e})") from None


def __getattr__(name: str) -> object:
    # ``ebpf.elf.loader.load_collection_spec`` predates ``parse_object``; it is
    # ``ebpf.elf.load_collection_spec`` (looked up late: this module never imports _spec).
    if name == "load_collection_spec":
        from . import load_collection_spec

        return load_collection_spec
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
