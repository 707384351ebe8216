"""From compiled programs to a loaded collection: one :class:`CollectionSpec` with the maps,
``.rodata`` and BTF (func and line info) they need, loaded by :class:`ebpf.Collection`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any

from .. import errors
from .._codec import make_codec
from .._collection import Collection, Variable
from .._maps import Map
from .._programs import Program
from .._spec import CollectionSpec, MapSpec, ProgramSpec, Reference, ReferenceKind, VariableSpec
from .._types import MapType
from ._btf import LINKAGE_GLOBAL, LINKAGE_STATIC, BTFWriter
from ._compiler import CompiledProgram
from ._decl import Const, MapDecl, ProgArray, ProgramDecl, Var
from ._struct_ops import StructOpsDecl
from .types import IntType, Struct

__all__ = ["GlobalView", "Loaded", "PerfView", "RingView", "build_spec", "load"]

_BPF_F_RDONLY_PROG = 0x80
_BPF_F_MMAPABLE = 0x400
_SRC_MAP_VALUE = 2


def _value_type_id(btf: BTFWriter, t: Any) -> int:
    if isinstance(t, type) and issubclass(t, Struct):
        return btf.struct_(t)
    if isinstance(t, type) and issubclass(t, IntType):
        return btf.int_type(t)
    return 0


def build_spec(programs: tuple[ProgramDecl | StructOpsDecl, ...],
               constants: Mapping[str, int] | None = None
               ) -> tuple[CollectionSpec, dict[str, CompiledProgram]]:
    """Compile ``programs`` and describe everything they need as one collection spec."""
    if not programs:
        raise errors.BPFError("bpf.load: no programs given")
    compiled: dict[str, CompiledProgram] = {}
    maps: dict[str, MapDecl] = {}
    consts: dict[str, Const[Any]] = {}
    strings: dict[str, bytes] = {}
    todo = list(programs)
    while todo:
        p = todo.pop(0)
        if isinstance(p, StructOpsDecl):  # its methods' programs
            todo[:0] = list(p.programs.values())
            continue
        if isinstance(p, ProgramDecl) and compiled.get(p.name) is not None and \
                compiled[p.name].decl is p:
            continue  # a tail call target already loaded
        if not isinstance(p, ProgramDecl):
            raise errors.BPFError(f"bpf.load: {p!r} is not a @bpf program")
        if p.name in compiled:
            raise errors.BPFError(f"bpf.load: two programs are called {p.name!r}")
        c = p.compile()
        compiled[p.name] = c
        for name, m in c.maps.items():
            if maps.setdefault(name, m) is not m:
                raise errors.BPFError(f"bpf.load: two different maps are called {name!r}")
            if isinstance(m, ProgArray):
                todo.extend(m.slots.values())
        for name, k in c.consts.items():
            if consts.setdefault(name, k) is not k:
                raise errors.BPFError(f"bpf.load: two different constants are called {name!r}")
        strings.update(c.strings)
    clash = set(compiled) & set(maps)
    if clash:
        raise errors.BPFError(f"bpf.load: {sorted(clash)} name both a program and a map")
    values = dict(constants or {})
    unknown = set(values) - set(consts)
    if unknown:
        raise errors.BPFError(f"bpf.load: no constant or variable {sorted(unknown)} used "
                              f"by these programs (globals: {sorted(consts) or 'none'})")
    btf = BTFWriter()
    map_specs: dict[str, MapSpec] = {}
    for name, m in maps.items():
        if isinstance(m, ProgArray):
            map_specs[name] = MapSpec(
                name, m.map_type, key_size=4, value_size=4, max_entries=m.max_entries,
                contents=tuple((i, p.name) for i, p in sorted(m.slots.items())))
            continue
        if m.map_type == MapType.RINGBUF:
            map_specs[name] = MapSpec(name, m.map_type, max_entries=m.max_entries)
            continue
        map_specs[name] = MapSpec(
            name, m.map_type, key_size=m.key_size, value_size=m.value_size,
            max_entries=m.max_entries, flags=m.map_flags,
            btf_key_type_id=_value_type_id(btf, m.key),
            btf_value_type_id=_value_type_id(btf, m.value))
    variables: dict[str, VariableSpec] = {}
    placed: dict[str, tuple[str, int]] = {}  # global name -> (section, offset)
    sections: dict[str, bytearray] = {}
    for name, k in consts.items():
        value = values.get(name, k.value)
        if not isinstance(value, int) or not k.type.min() <= value <= k.type.max():
            raise errors.BPFError(f"bpf.load: global {name!r} is a {k.type.__name__}; "
                                  f"{value!r} does not fit")
        sec = ".rodata" if not isinstance(k, Var) else ".data" if value else ".bss"
        data = sections.setdefault(sec, bytearray())
        size = k.type.size
        data += bytes(-len(data) % size)
        placed[name] = (sec, len(data))
        data += int(value).to_bytes(size, "little", signed=k.type.signed)
        variables[name] = VariableSpec(name, sec, placed[name][1], size)
    for name, text in sorted(strings.items()):  # helper string literals: not variables
        data = sections.setdefault(".rodata", bytearray())
        placed[name] = (".rodata", len(data))
        data += text
    for sec, buf in sections.items():
        data = buf + bytes(-len(buf) % 8)
        ro = sec == ".rodata"
        map_specs[sec] = MapSpec(
            sec, MapType.ARRAY, key_size=4, value_size=len(data), max_entries=1,
            flags=(_BPF_F_RDONLY_PROG if ro else 0) | _BPF_F_MMAPABLE,
            contents=((0, bytes(data)),) if sec != ".bss" else (), freeze=ro)
    ret_id = btf.int_("int", 4, True)
    ctx_id = btf.ptr(0)
    prog_specs: dict[str, ProgramSpec] = {}
    for name, c in compiled.items():
        refs: list[Reference] = []
        placeholders: dict[object, int] = {}
        for pc, key in c.instructions.references:
            assert isinstance(key, str)
            placeholders[key] = 0
            if key.startswith("global:"):
                sec, off = placed[key.split(":", 1)[1]]
                refs.append(Reference(pc, ReferenceKind.MAP_VALUE, sec, off))
            else:
                refs.append(Reference(pc, ReferenceKind.MAP, key))
        code = c.instructions.encode(maps=placeholders, byteorder="little")
        for st in c.structs:
            btf.struct_(st)
        func_info = [(0, btf.func(name, ret_id, [("ctx", ctx_id)], LINKAGE_GLOBAL))]
        for pc, fname, params, ret in c.funcs[1:]:
            func_info.append((pc, btf.func(
                fname, btf.int_type(ret) if ret is not None else 0,
                [(p, btf.int_type(t)) for p, t in params], LINKAGE_STATIC)))
        lines = tuple((pc, btf.string(file), btf.string(text), (line << 10) | (col + 1))
                      for pc, line, col, text, file in c.lines)
        prog_specs[name] = ProgramSpec(
            name, c.decl.program_type, code, section=c.decl.section,
            attach_type=c.decl.attach_type, attach_to=c.decl.attach_to,
            flags=c.decl.prog_flags,
            references=tuple(refs), func_info=tuple(func_info), line_info=lines)
    spec = CollectionSpec(maps=map_specs, programs=prog_specs, variables=variables,
                          btf_blob=btf.encode())
    return spec, compiled


class RingView:
    """A ring buffer map of a loaded collection, read as records of a :class:`Struct`."""

    def __init__(self, m: Map) -> None:
        self.map = m
        self._reader: Any = None

    def _ring(self) -> Any:
        if self._reader is None:
            from ..ringbuf import RingBuffer

            self._reader = RingBuffer(self.map)
        return self._reader

    def read(self, t: type[Struct] | None = None, timeout: float | None = 0.0) -> Iterator[Any]:
        """Records waiting in the ring (waiting up to ``timeout`` when there are none),
        decoded with ``t`` (``bytes`` without it)."""
        for rec in self._ring().read(timeout, copy=True):
            yield rec if t is None else t.decode(rec)

    def read_batch(self, t: type[Struct], *, timeout: float | None = 0.0,
                   max_records: int | None = None) -> Any:
        """Records as a numpy structured array of ``t.dtype()`` (no Python call per record)."""
        return self._ring().read_batch(dtype=t.dtype(), timeout=timeout,
                                       max_records=max_records)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


class PerfView:
    """A perf event array of a loaded collection, read as records of a :class:`Struct`
    (one perf ring per CPU, opened on first read)."""

    def __init__(self, m: Map) -> None:
        self.map = m
        self._reader: Any = None

    def open(self) -> PerfView:
        """Open the per-CPU rings now (records sent before this are not seen)."""
        if self._reader is None:
            from ..perf import PerfBuffer

            self._reader = PerfBuffer(self.map)
        return self

    def read(self, t: type[Struct] | None = None, timeout: float | None = 0.0) -> Iterator[Any]:
        """Records waiting (waiting up to ``timeout`` when there are none), decoded with
        ``t`` (``bytes`` without it). Perf samples are padded to 8 bytes: ``t.size`` is cut."""
        self.open()
        for _cpu, rec in self._reader.read(timeout):
            raw = bytes(rec)
            yield raw if t is None else t.decode(raw[:t.size])

    @property
    def lost(self) -> int:
        return 0 if self._reader is None else int(self._reader.lost)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


class GlobalView:
    """A loaded ``bpf.const``/``bpf.var``, read and written with its declared integer type."""

    def __init__(self, var: Variable, t: type[IntType] | None) -> None:
        self.variable = var
        self.type = t

    def get(self) -> int:
        raw = self.variable.raw()
        if self.type is None:
            return int.from_bytes(raw, "little")
        return self.type.wrap(int.from_bytes(raw, "little"))

    def set(self, value: int) -> None:
        if self.type is not None and not self.type.min() <= value <= self.type.max():
            raise errors.BPFError(f"{self.variable.name} is a {self.type.__name__}; "
                                  f"{value!r} does not fit")
        self.variable.set(int(value) & ((1 << (self.variable.size * 8)) - 1))

    def __repr__(self) -> str:
        return f"<bpf global {self.variable.name} = {self.get()}>"


def _typed_map(m: Map, decl: MapDecl | None) -> Map:
    """``m`` typed by its declaration: a second :class:`Map` on a duplicate of its fd (closed
    with the :class:`Loaded`) whose codecs are the declared key and value types'
    (``T.codec()``). Maps without element types (ring buffers, perf event and program arrays,
    globals) stay ``m``."""
    if decl is None or decl.value is None or isinstance(decl, ProgArray) or \
            m.type in (MapType.RINGBUF, MapType.PERF_EVENT_ARRAY):
        return m
    if decl.key is None:  # a queue or stack: values only
        value = make_codec(decl.value.codec(), m.value_size, "value")
        return Map.from_fd(m.fd, value=value)
    key = make_codec(decl.key.codec(), m.key_size, "key")  # checked before sharing the fd
    value = make_codec(decl.value.codec(), m.value_size, "value")
    return Map.from_fd(m.fd, key=key, value=value)


class Loaded:
    """The loaded programs and maps, as attributes named like the Python objects:
    ``coll.firewall`` (an :class:`ebpf.Program`), ``coll.counts`` (an :class:`ebpf.Map`
    typed by the declaration), ``coll.events`` (a :class:`RingView`). A context manager;
    closing closes everything."""

    def __init__(self, collection: Collection, compiled: dict[str, CompiledProgram]) -> None:
        self.collection = collection
        self.compiled = compiled
        self.programs: dict[str, Program] = dict(collection.programs)
        decls = {n: d for c in compiled.values() for n, d in c.maps.items()}
        #: The maps by name, typed by their declarations: keys and values encode and decode
        #: with the declared types (``bpf.Struct`` instances, negative ints for signed types,
        #: a :class:`ebpf.PerCPUValues` of them per key for per-CPU maps). Each holds a duplicate
        #: of the fd of ``collection.maps[name]``, the same kernel map with the default codecs
        #: (ints of 1/2/4/8 bytes, else ``bytes``): the untyped view.
        self.maps: dict[str, Map] = {}
        try:
            for n, m in collection.maps.items():
                self.maps[n] = _typed_map(m, decls.get(n))
        except BaseException:
            self._close_typed()
            raise
        types = {n: k.type for c in compiled.values() for n, k in c.consts.items()}
        #: ``bpf.const`` and ``bpf.var`` globals by name: ``get()`` gives the declared type's
        #: value (signed types read negative), ``set(v)`` writes a ``bpf.var`` (mmapped).
        self.variables: dict[str, GlobalView] = {
            n: GlobalView(v, types.get(n)) for n, v in collection.variables.items()}
        self._rings: dict[str, RingView | PerfView] = {}
        #: ``bpf.struct_ops`` tables by class name (``ebpf.link.struct_ops.StructOps``)
        self.struct_ops: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self.programs:
            return self.programs[name]
        if name in self.struct_ops:
            return self.struct_ops[name]
        m = self.maps.get(name)
        if m is not None:
            if m.type in (MapType.RINGBUF, MapType.PERF_EVENT_ARRAY):
                rv = self._rings.get(name)
                if rv is None:
                    rv = self._rings[name] = (RingView(m) if m.type == MapType.RINGBUF
                                              else PerfView(m))
                return rv
            return m
        raise AttributeError(f"no program or map {name!r} (programs: {sorted(self.programs)}, "
                             f"maps: {sorted(self.maps)})")

    def _close_typed(self) -> None:
        raw = {id(m) for m in self.collection.maps.values()}
        for m in self.maps.values():
            if id(m) not in raw:
                m.close()

    def close(self) -> None:
        for r in self._rings.values():
            r.close()
        for t in self.struct_ops.values():
            t.close()
        self._close_typed()
        self.collection.close()

    def __enter__(self) -> Loaded:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<bpf.Loaded programs={sorted(self.programs)} maps={sorted(self.maps)}>"


def _locate(e: errors.VerifierError, spec: CollectionSpec,
            compiled: dict[str, CompiledProgram], log_level: int) -> None:
    """Name the Python line of the instruction the verifier stopped at."""
    culprit: str | None = next(iter(compiled)) if len(compiled) == 1 else None
    if culprit is None:
        for name in compiled:
            try:
                Collection.load(spec, programs={name: None}, log_level=log_level).close()
            except errors.VerifierError:
                culprit = name
                break
            except errors.BPFError:
                continue
    if culprit is None or e.insn is None:
        return
    where = compiled[culprit].line_of(e.insn)
    if where is None:
        return
    fname, line, text = where
    e.source = f"{fname}:{line}: {text}"
    e.detail = f"{culprit} at {e.source}: {e.detail}"


def load(*programs: ProgramDecl | StructOpsDecl, constants: Mapping[str, int] | None = None,
         log_level: int = 0) -> Loaded:
    """Compile ``programs``, create the maps and constants they use, load everything.

    ``constants`` sets ``bpf.const`` values by name (before load: the verifier sees them).
    A rejected program raises :class:`ebpf.VerifierError` whose message and ``source`` name
    the Python line of the instruction the verifier stopped at.
    """
    spec, compiled = build_spec(programs, constants)
    try:
        coll = Collection.load(spec, log_level=log_level)
    except errors.VerifierError as e:
        _locate(e, spec, compiled, log_level)
        raise
    try:
        loaded = Loaded(coll, compiled)
    except BaseException:
        coll.close()
        raise
    try:  # struct_ops tables hold the loaded programs' fds (registered by attach_struct_ops)
        for t in dict.fromkeys(p for p in programs if isinstance(p, StructOpsDecl)):
            loaded.struct_ops[t.name] = t.create(loaded.programs)
    except BaseException:
        loaded.close()
        raise
    return loaded

