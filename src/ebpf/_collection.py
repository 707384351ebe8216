"""Collection: the maps, programs and global variables of a spec, created in the kernel.

This is the kernel-dependent step after the pure parse (:mod:`ebpf.elf`): BTF is loaded,
maps are created (and pinned or reused), global data written (``.rodata`` frozen),
instructions patched with map fds, kfunc/ksym BTF ids and CO-RE values from the kernel's
BTF, and programs loaded::

    with ebpf.load("prog.bpf.o") as coll:
        coll.programs["count_xdp"].test_run(frame)
        coll.maps["counts"][1]
        coll.variables["packets"].get()
"""

from __future__ import annotations

import errno as _errno
import os
import struct
from collections.abc import Mapping
from types import TracebackType
from typing import Any, final

from . import errors
from ._maps import Map
from ._programs import Program
from ._spec import CollectionSpec, MapSpec, PinType, ProgramSpec, ReferenceKind, VariableSpec
from ._types import MapType, ProgramType

__all__ = ["Collection", "Variable", "load"]

_PSEUDO_MAP_FD, _PSEUDO_MAP_VALUE, _PSEUDO_BTF_ID = 1, 2, 3
_PSEUDO_KFUNC_CALL = 2
_MAP_IN_MAP = (MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS)


@final
class Variable:
    """A global variable of a loaded collection, read and written through the data map's
    shared memory (``BPF_F_MMAPABLE``) or element lookups.

    ``get()`` returns an ``int`` for integer/enum (and, without BTF, 1/2/4/8-byte) variables,
    else ``bytes``; ``set(value)`` takes what :meth:`VariableSpec.encode` takes.
    ``.rodata`` variables are read-only once loaded.
    """

    __slots__ = ("_map", "readonly", "spec")

    def __init__(self, spec: VariableSpec, map_: Map, readonly: bool) -> None:
        self.spec = spec
        self._map = map_
        self.readonly = readonly

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def size(self) -> int:
        return self.spec.size

    def _mm(self) -> Any:
        if not self._map.flags & 0x400:  # BPF_F_MMAPABLE
            return None
        return self._map.mmap(writable=not self.readonly)

    def raw(self) -> bytes:
        """The variable's bytes."""
        off, size = self.spec.offset, self.spec.size
        mm = self._mm()
        if mm is not None:
            return bytes(mm[off:off + size])
        return bytes(self._map.lookup(0))[off:off + size]

    def get(self) -> int | bytes:
        raw = self.raw()
        if self._is_int():
            return int.from_bytes(raw, "little" if _native() == "<" else "big",
                                  signed=self._signed())
        return raw

    def set(self, value: Any) -> None:
        if self.readonly:
            raise PermissionError(f"variable {self.name!r} is in read-only {self.spec.map}")
        raw = self.spec.encode(value, _native())
        off = self.spec.offset
        mm = self._mm()
        if mm is not None:
            mm[off:off + len(raw)] = raw
            return
        cur = bytearray(bytes(self._map.lookup(0)))
        cur[off:off + len(raw)] = raw
        self._map[0] = bytes(cur)

    def _resolved(self) -> Any:
        t = self.spec.type
        if t is None:
            return None
        from .btf.types import Var

        if isinstance(t, Var):
            t = t.type
        return t.spec.resolve(t)

    def _is_int(self) -> bool:
        from .btf.types import Enum, Enum64, Int

        t = self._resolved()
        if t is None:
            return self.size in (1, 2, 4, 8)
        return isinstance(t, (Int, Enum, Enum64))

    def _signed(self) -> bool:
        t = self._resolved()
        return bool(getattr(t, "signed", False))

    def __repr__(self) -> str:
        return f"<Variable {self.name!r} in {self.spec.map} size={self.size}>"


def _native() -> str:
    import sys

    return "<" if sys.byteorder == "little" else ">"


@final
class Collection:
    """Loaded maps (``.maps``), programs (``.programs``) and global variables
    (``.variables``) of a :class:`CollectionSpec`. A context manager: closing it closes
    every map and program it holds (the kernel keeps those still referenced elsewhere,
    e.g. attached programs or pins)."""

    __slots__ = ("btf_error", "maps", "programs", "variables")

    def __init__(self, maps: dict[str, Map], programs: dict[str, Program],
                 variables: dict[str, Variable], btf_error: BaseException | None = None
                 ) -> None:
        self.maps = maps
        self.programs = programs
        self.variables = variables
        #: Why the object's BTF could not be loaded (programs then load without func/line
        #: info), or ``None``.
        self.btf_error = btf_error

    @classmethod
    def load(cls, spec: CollectionSpec, *, kernel_btf: Any = None,
             pin_path: str | os.PathLike[str] | None = None, log_level: int = 0,
             programs: Mapping[str, object] | None = None) -> Collection:
        """Create everything in ``spec``.

        ``kernel_btf`` (an :class:`ebpf.btf.Spec`) is what CO-RE, kfunc and ksym references
        and BTF attach targets resolve against; by default the running kernel's, read only
        when needed. Maps with ``pinning=BY_NAME`` are pinned as ``pin_path/<name>`` and an
        existing pin there is reused (``pin_path`` is then required). ``programs``, when
        given, restricts which programs are loaded (its keys). Any failure closes what
        was created and re-raises; a rejected program raises
        :class:`~ebpf.errors.VerifierError` with the log.
        """
        wanted = dict(spec.programs) if programs is None else {
            n: spec.programs[n] for n in programs}
        kbtf = kernel_btf
        if kbtf is None and _needs_kernel_btf(wanted.values()):
            from . import btf as _btf

            kbtf = _btf.load_kernel()
        maps: dict[str, Map] = {}
        progs: dict[str, Program] = {}
        handle: Any = None
        btf_error: BaseException | None = None
        reused: set[str] = set()
        try:
            if spec.btf_blob is not None:
                from .btf.handle import BTFHandle

                try:
                    handle = BTFHandle.load(spec.btf_blob)
                except errors.SyscallError as e:
                    btf_error = e
            for name, ms in spec.maps.items():
                maps[name] = _create_map(ms, handle, pin_path)
                if ms.pinning == PinType.BY_NAME and maps[name].pinned_path is not None \
                        and ms.freeze:
                    reused.add(name)
            for name, ms in spec.maps.items():
                _fill_map(maps[name], ms, maps, None)
            for name, ps in wanted.items():
                progs[name] = _load_program(spec, ps, maps, handle, kbtf, log_level)
            for name, ms in spec.maps.items():
                if ms.type == MapType.PROG_ARRAY and ms.contents:
                    _fill_map(maps[name], ms, maps, progs)
            for name, ms in spec.maps.items():
                if ms.freeze and name not in reused:
                    maps[name].freeze()
        except BaseException:
            for p in progs.values():
                p.close()
            for m in maps.values():
                m.close()
            raise
        finally:
            if handle is not None:
                handle.close()
        variables: dict[str, Variable] = {}
        for vname, vs in spec.variables.items():
            if vs.map in maps:
                variables[vname] = Variable(vs, maps[vs.map], spec.maps[vs.map].freeze)
        return cls(maps, progs, variables, btf_error)

    def close(self) -> None:
        """Close every program and map (idempotent)."""
        for p in self.programs.values():
            p.close()
        for m in self.maps.values():
            m.close()

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<Collection maps={sorted(self.maps)} programs={sorted(self.programs)}>")


def load(path: str | os.PathLike[str], **kwargs: Any) -> Collection:
    """Parse the BPF object at ``path`` and load it: ``Collection.load(
    CollectionSpec.from_file(path), **kwargs)``."""
    return Collection.load(CollectionSpec.from_file(path), **kwargs)


def _needs_kernel_btf(progs: Any) -> bool:
    for p in progs:
        if p.core_relos or (p.attach_to and _attach_btf(p)):
            return True
        if any(r.kind in (ReferenceKind.KFUNC, ReferenceKind.KSYM) for r in p.references):
            return True
    return False


def _attach_btf(p: ProgramSpec) -> bool:
    from .elf.sections import match_section

    m = match_section(p.section)
    return bool(m and m[0].attach_btf)


# --- maps ----------------------------------------------------------------------------------

def _create_map(ms: MapSpec, handle: Any, pin_path: str | os.PathLike[str] | None) -> Map:
    path: str | None = None
    if ms.pinning == PinType.BY_NAME:
        if pin_path is None:
            raise ValueError(f"map {ms.name!r} is pinned by name: pass pin_path=")
        path = os.path.join(os.fspath(pin_path), ms.name)
        if os.path.exists(path):
            old = Map.from_pin(path)
            if (int(old.type), old.key_size, old.value_size, old.max_entries) != (
                    int(ms.type), ms.key_size or old.key_size,
                    ms.value_size or old.value_size, ms.max_entries or old.max_entries):
                old.close()
                raise errors.BPFError(f"pinned map {path} does not match {ms.name!r}")
            return old
    inner: Map | None = None
    try:
        if ms.type in _MAP_IN_MAP:
            if ms.inner is None:
                raise ValueError(f"map-in-map {ms.name!r} has no inner map definition")
            inner = _create_map(ms.inner.replace(pinning=PinType.NONE), handle, None)
        kw: dict[str, Any] = dict(
            key_size=ms.key_size, value_size=ms.value_size, max_entries=ms.max_entries,
            flags=ms.flags, name=ms.name, inner_map=inner, map_extra=ms.map_extra,
            numa_node=ms.numa_node)
        m: Map
        if handle is not None and ms.btf_value_type_id:
            try:
                m = Map.create(ms.type, btf=handle, btf_key_type_id=ms.btf_key_type_id,
                               btf_value_type_id=ms.btf_value_type_id, **kw)
            except errors.SyscallError as e:
                if e.errno not in (_errno.EINVAL, _errno.ENOTSUP, errors.ENOTSUPP):
                    raise
                m = Map.create(ms.type, **kw)  # the kernel refused the BTF: go without
        else:
            m = Map.create(ms.type, **kw)
    finally:
        if inner is not None:
            inner.close()
    if path is not None:
        try:
            m.pin(path)
        except BaseException:
            m.close()
            raise
    return m


def _fill_map(m: Map, ms: MapSpec, maps: Mapping[str, Map],
              progs: Mapping[str, Program] | None) -> None:
    is_prog_array = ms.type == MapType.PROG_ARRAY
    if is_prog_array != (progs is not None):
        return
    for key, value in ms.contents:
        if isinstance(value, str):
            target = progs.get(value) if progs is not None else maps.get(value)
            if target is None:
                if progs is not None:
                    continue  # program not loaded (a subset was asked for)
                raise errors.BPFError(f"map {ms.name!r} refers to unknown map {value!r}")
            m[key] = target.fileno()
        elif isinstance(value, bytes) and len(value) < m.value_size:
            m[key] = value + bytes(m.value_size - len(value))
        else:
            m[key] = value


# --- programs ------------------------------------------------------------------------------

def _set(insns: bytearray, i: int, bo: str, *, src: int | None = None, imm: int | None = None,
         off: int | None = None) -> None:
    if i * 8 + 8 > len(insns):
        raise errors.BPFError(f"reference to instruction {i} past the end of the program")
    if src is not None:
        regs = insns[i * 8 + 1]
        insns[i * 8 + 1] = ((regs & 0x0F) | (src << 4)) if bo == "<" else (
            (regs & 0xF0) | src)
    if off is not None:
        struct.pack_into(bo + "h", insns, i * 8 + 2, off)
    if imm is not None:
        struct.pack_into(bo + "I", insns, i * 8 + 4, imm & 0xFFFFFFFF)


def _kernel_id(kbtf: Any, name: str, kind: Any, what: str) -> int:
    try:
        return int(kbtf.find(name, kind).id)
    except KeyError:
        raise errors.NotSupportedError(f"{what} {name!r}", detail="not in kernel BTF") from None


def relocate(spec: CollectionSpec, ps: ProgramSpec, maps: Mapping[str, Any],
             kernel_btf: Any) -> bytes:
    """``ps``'s instructions with every reference resolved: map fds (objects with
    ``fileno()``), kfunc and ksym BTF ids and CO-RE values from ``kernel_btf``."""
    bo = ps.byteorder
    insns = bytearray(ps.instructions)
    for r in ps.references:
        i = r.index
        if r.kind is ReferenceKind.MAP or r.kind is ReferenceKind.MAP_VALUE:
            m = maps.get(r.name)
            if m is None:
                raise errors.BPFError(f"program {ps.name!r} uses map {r.name!r}, which "
                                      "the collection does not have")
            if r.kind is ReferenceKind.MAP:
                _set(insns, i, bo, src=_PSEUDO_MAP_FD, imm=m.fileno())
                _set(insns, i + 1, bo, imm=0)
            else:
                _set(insns, i, bo, src=_PSEUDO_MAP_VALUE, imm=m.fileno())
                _set(insns, i + 1, bo, imm=r.offset)
        elif r.kind is ReferenceKind.KFUNC:
            from .btf.types import Func

            _set(insns, i, bo, src=_PSEUDO_KFUNC_CALL, off=0,
                 imm=_kernel_id(kernel_btf, r.name, Func, "kfunc"))
        elif r.kind is ReferenceKind.KSYM:
            from .btf.types import Var

            _set(insns, i, bo, src=_PSEUDO_BTF_ID,
                 imm=_kernel_id(kernel_btf, r.name, Var, "kernel variable"))
            _set(insns, i + 1, bo, imm=0)
        else:
            raise errors.NotSupportedError(f"__kconfig extern {r.name!r}",
                                           detail="not supported by this loader")
    if ps.core_relos:
        from .btf.core import apply_relocations

        if spec.btf is None:
            raise errors.BPFError(f"program {ps.name!r} has CO-RE relocations but no BTF")
        apply_relocations(insns, ps.core_relos, spec.btf, kernel_btf, byteorder=bo)
    return bytes(insns)


def _load_program(spec: CollectionSpec, ps: ProgramSpec, maps: Mapping[str, Map],
                  handle: Any, kbtf: Any, log_level: int) -> Program:
    if not int(ps.type):
        raise ValueError(f"program {ps.name!r} in section {ps.section!r} has no program "
                         "type (unknown SEC name): set one with spec.replace()")
    code = relocate(spec, ps, maps, kbtf)
    kw: dict[str, Any] = {}
    if handle is not None and ps.func_info:
        fsz, lsz = spec.func_info_rec_size, spec.line_info_rec_size
        kw["prog_btf_fd"] = handle.fileno()
        kw["func_info"] = b"".join(struct.pack("=II", i, t).ljust(fsz, b"\0")
                                   for i, t in ps.func_info)
        kw["func_info_rec_size"] = fsz
        if ps.line_info:
            kw["line_info"] = b"".join(struct.pack("=IIII", *li).ljust(lsz, b"\0")
                                       for li in ps.line_info)
            kw["line_info_rec_size"] = lsz
    if ps.attach_to and _attach_btf(ps):
        kw["attach_to"] = ps.attach_to
    pt: ProgramType | int = ps.type
    return Program.load(pt, code, license=ps.license, name=ps.name,
                        expected_attach_type=ps.attach_type, flags=ps.flags,
                        kern_version=ps.kern_version, log_level=log_level, **kw)

