"""Specs: what an object file (or a user) asks the kernel to create, before anything is loaded.

A :class:`CollectionSpec` is pure data, the same for the same input bytes on any host. Specs
are frozen; change them with :meth:`replace` (or :meth:`CollectionSpec.set_variables` for
global variables) and load the result with :meth:`ebpf.Collection.load`::

    spec = CollectionSpec.from_file("prog.bpf.o")
    spec = spec.set_variables(verdict=1)          # a `const volatile` in .rodata
    with Collection.load(spec) as coll:
        coll.programs["count_xdp"].test_run(b"\\0" * 64)
"""

from __future__ import annotations

import dataclasses
import enum
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._types import AttachType, MapType, ProgramType

if TYPE_CHECKING:
    from .btf.ext import CoreRelo
    from .btf.spec import Spec as BTFSpec
    from .btf.types import Type as BTFType

__all__ = [
    "CollectionSpec",
    "MapSpec",
    "PinType",
    "ProgramSpec",
    "Reference",
    "ReferenceKind",
    "VariableSpec",
]


class PinType(enum.IntEnum):
    """``pinning`` of a BTF map definition (libbpf ``enum libbpf_pin_type``)."""

    NONE = 0
    BY_NAME = 1  #: ``LIBBPF_PIN_BY_NAME``: pinned as ``<pin_path>/<map name>``, reused if there


class ReferenceKind(enum.Enum):
    """What an instruction refers to; resolved when the collection is loaded."""

    MAP = "map"              #: ld_imm64 of a map fd (``BPF_PSEUDO_MAP_FD``)
    #: ld_imm64 of an address in a global-data map (``BPF_PSEUDO_MAP_VALUE``)
    MAP_VALUE = "map_value"
    KFUNC = "kfunc"          #: call of a kernel function (``BPF_PSEUDO_KFUNC_CALL``, BTF id)
    KSYM = "ksym"            #: ld_imm64 of a typed kernel variable (``BPF_PSEUDO_BTF_ID``)
    #: ld_imm64 of an untyped kernel symbol's address (``extern const void x __ksym``),
    #: from ``/proc/kallsyms``
    KSYM_ADDR = "ksym_addr"
    KCONFIG = "kconfig"      #: a ``__kconfig`` extern (resolved into the ``.kconfig`` map)


@dataclass(frozen=True, slots=True)
class Reference:
    """Instruction ``index`` refers to ``name`` (a map, kfunc or ksym); ``offset`` is the
    byte offset into a global-data map for :attr:`ReferenceKind.MAP_VALUE`. ``weak``: a
    ``__weak`` extern, 0 when the kernel lacks it."""

    index: int
    kind: ReferenceKind
    name: str
    offset: int = 0
    weak: bool = False


@dataclass(frozen=True, slots=True)
class MapSpec:
    """A map to create. ``None`` sizes take the map type's default (see ``Map.create``).

    ``contents`` are ``(key, value)`` pairs written after creation: ``bytes``/``int`` values,
    or a ``str`` naming another map (map-in-map) or a program (``PROG_ARRAY``) of the same
    collection. ``freeze`` makes the map read-only to syscalls after that (``.rodata``).
    ``inner`` is the template of a map-in-map's values. ``btf_key_type_id`` and
    ``btf_value_type_id`` are ids in the collection's BTF.
    """

    name: str
    type: MapType | int
    key_size: int | None = None
    value_size: int | None = None
    max_entries: int | None = None
    flags: int = 0
    map_extra: int = 0
    numa_node: int | None = None
    pinning: PinType = PinType.NONE
    inner: MapSpec | None = None
    contents: tuple[tuple[int | bytes, int | bytes | str], ...] = ()
    freeze: bool = False
    btf_key_type_id: int = 0
    btf_value_type_id: int = 0

    def replace(self, **changes: Any) -> MapSpec:
        """A copy with ``changes`` applied (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, slots=True)
class ProgramSpec:
    """A program to load: ``instructions`` are linked (subprograms appended) but still refer
    to maps, kfuncs and CO-RE relocations symbolically (:attr:`references`,
    :attr:`core_relos`), which :meth:`ebpf.Collection.load` resolves.

    ``func_info``/``line_info`` are ``(instruction index, ...)`` records against the
    collection's BTF (type id; file name, line text offsets and ``line << 10 | column``).
    """

    name: str
    type: ProgramType | int
    instructions: bytes
    section: str = ""
    attach_type: AttachType | int | None = None
    attach_to: str | None = None
    license: str = "GPL"
    flags: int = 0
    kern_version: int = 0
    references: tuple[Reference, ...] = ()
    core_relos: tuple[tuple[int, CoreRelo], ...] = ()
    func_info: tuple[tuple[int, int], ...] = ()
    line_info: tuple[tuple[int, int, int, int], ...] = ()
    byteorder: str = "<"
    #: Loaded by :meth:`ebpf.Collection.load` without being asked for by name. ``False`` for
    #: ``SEC("?...")`` programs (libbpf's optional programs) until set.
    autoload: bool = True

    def replace(self, **changes: Any) -> ProgramSpec:
        """A copy with ``changes`` applied (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    @property
    def insn_count(self) -> int:
        return len(self.instructions) // 8


@dataclass(frozen=True, slots=True)
class VariableSpec:
    """A global variable: ``size`` bytes at ``offset`` of global-data map ``map``.
    ``type`` is its BTF type when the object has BTF (``None`` otherwise). ``weak`` marks
    a ``__weak`` extern (``__kconfig``): 0 when the kernel has no value for it."""

    name: str
    map: str
    offset: int
    size: int
    type: BTFType | None = field(default=None, compare=False)
    weak: bool = False

    def encode(self, value: Any, byteorder: str = "<") -> bytes:
        """``value`` as this variable's bytes: ``bytes`` of the exact size, an ``int``
        (signedness from BTF), a ``float`` (4 or 8 bytes) or a ``bool``."""
        if isinstance(value, (bytes, bytearray, memoryview)):
            raw = bytes(value)
            if len(raw) != self.size:
                raise ValueError(f"variable {self.name!r} is {self.size} bytes, got {len(raw)}")
            return raw
        if isinstance(value, float):
            if self.size not in (4, 8):
                raise TypeError(f"variable {self.name!r} ({self.size} bytes) is not a float")
            return struct.pack(byteorder + ("f" if self.size == 4 else "d"), value)
        if isinstance(value, int):
            signed = value < 0 or _btf_signed(self.type)
            return int(value).to_bytes(self.size, "little" if byteorder == "<" else "big",
                                       signed=signed)
        if hasattr(value, "_fields_") or hasattr(value, "_type_"):  # ctypes
            return self.encode(bytes(memoryview(value).cast("B")), byteorder)
        raise TypeError(f"cannot encode {type(value).__name__} into variable {self.name!r}")


def _btf_signed(t: Any) -> bool:
    if t is None:
        return False
    from .btf.types import Enum, Enum64, Int, Var

    spec = t.spec
    if isinstance(t, Var):
        t = t.type
    t = spec.resolve(t)
    return bool(isinstance(t, (Int, Enum, Enum64)) and t.signed)


@dataclass(frozen=True, slots=True)
class CollectionSpec:
    """Maps, programs and global variables of an object, ready for
    :meth:`ebpf.Collection.load`.

    ``btf`` is the object's BTF as parsed; ``btf_blob`` the same BTF fixed up for
    ``BPF_BTF_LOAD`` (data section sizes, variable offsets, extern sections), or ``None``
    when the object has no BTF. Treat the mappings as read-only; use :meth:`replace`.
    """

    maps: Mapping[str, MapSpec] = field(default_factory=dict)
    programs: Mapping[str, ProgramSpec] = field(default_factory=dict)
    variables: Mapping[str, VariableSpec] = field(default_factory=dict)
    btf: BTFSpec | None = field(default=None, compare=False, repr=False)
    btf_blob: bytes | None = field(default=None, repr=False)
    func_info_rec_size: int = 8
    line_info_rec_size: int = 16
    byteorder: str = "<"

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> CollectionSpec:
        """Parse a clang/libbpf-convention BPF object file (see :mod:`ebpf.elf`)."""
        from .elf.loader import load_collection_spec

        with open(path, "rb") as f:
            return load_collection_spec(f.read())

    @classmethod
    def from_bytes(cls, data: bytes) -> CollectionSpec:
        """Parse a BPF object from bytes."""
        from .elf.loader import load_collection_spec

        return load_collection_spec(data)

    def replace(self, **changes: Any) -> CollectionSpec:
        """A copy with ``changes`` applied (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    def with_map(self, name: str, **changes: Any) -> CollectionSpec:
        """A copy whose map ``name`` has ``changes`` applied, e.g. ``max_entries=1024``,
        ``value_size=``, ``flags=``, ``pinning=PinType.BY_NAME`` or ``inner=MapSpec(...)``
        (a map-in-map's template). Call before :meth:`ebpf.Collection.load`."""
        if name not in self.maps:
            raise KeyError(f"no map {name!r} in this spec (maps: {sorted(self.maps)})")
        return self.replace(maps={**self.maps, name: self.maps[name].replace(**changes)})

    def with_program(self, name: str, **changes: Any) -> CollectionSpec:
        """A copy whose program ``name`` has ``changes`` applied, e.g. ``autoload=True`` for
        a ``SEC("?...")`` program or ``type=`` for an unknown section name."""
        if name not in self.programs:
            raise KeyError(f"no program {name!r} in this spec "
                           f"(programs: {sorted(self.programs)})")
        return self.replace(programs={**self.programs,
                                      name: self.programs[name].replace(**changes)})

    def set_autoload(self, **programs: bool) -> CollectionSpec:
        """A copy with the ``autoload`` flag of each named program set (``name=False``
        skips it at load, ``name=True`` loads an optional ``SEC("?...")`` program)."""
        spec = self
        for name, on in programs.items():
            spec = spec.with_program(name, autoload=bool(on))
        return spec

    def set_variables(self, values: Mapping[str, Any] | None = None,
                      **kwargs: Any) -> CollectionSpec:
        """A copy whose global variables start with ``values`` (``const volatile`` settings
        in ``.rodata``, initial ``.data``/``.bss`` contents). Unknown names raise
        :class:`KeyError`."""
        wanted = dict(values or {}, **kwargs)
        data: dict[str, bytearray] = {}
        for name, value in wanted.items():
            var = self.variables[name]
            ms = self.maps[var.map]
            if var.map not in data:
                current = ms.contents[0][1] if ms.contents else b""
                if not isinstance(current, bytes):
                    raise TypeError(f"map {var.map!r} does not hold global data")
                buf = bytearray(current)
                buf.extend(bytes(max(0, (ms.value_size or 0) - len(buf))))
                data[var.map] = buf
            raw = var.encode(value, self.byteorder)
            data[var.map][var.offset:var.offset + var.size] = raw
        maps = dict(self.maps)
        for name, buf in data.items():
            maps[name] = maps[name].replace(contents=((0, bytes(buf)),))
        return self.replace(maps=maps)
