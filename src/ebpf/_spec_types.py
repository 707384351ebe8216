"""Spec types shared by :mod:`ebpf._spec` and the ELF reader (:mod:`ebpf.elf.loader`).

Pure data. This module imports neither of them, so the loader can build specs without
importing :mod:`ebpf._spec` and ``_spec`` can call the loader: no import circle. The public
names are re-exported from :mod:`ebpf._spec` and :mod:`ebpf`.
"""

from __future__ import annotations

import dataclasses
import enum
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._types import AttachType, MapType, ProgramType

if TYPE_CHECKING:
    from .btf.ext import CoreRelo
    from .btf.spec import Spec as BTFSpec
    from .btf.types import Type as BTFType

__all__ = [
    "MapSpec",
    "ObjectParts",
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

    @classmethod
    def _of(cls, *values: Any) -> MapSpec:
        """A spec of every field, positionally in field order, set straight into the slots
        (the ELF reader makes many; no keyword handling of the dataclass ``__init__``)."""
        self: MapSpec = _new_object(cls)
        for put, value in zip(_MAP_SETTERS, values, strict=True):
            put(self, value)
        return self


_new_object: Any = object.__new__
#: The slot setters of every field of a MapSpec, in field order (for MapSpec._of).
_MAP_SETTERS: tuple[Any, ...] = tuple(
    MapSpec.__dict__[f.name].__set__ for f in dataclasses.fields(MapSpec))


@dataclass(frozen=True, slots=True)
class ProgramSpec:
    """A program to load: ``instructions`` are linked (subprograms appended) but still refer
    to maps, kfuncs and CO-RE relocations symbolically (:attr:`references`,
    :attr:`core_relos`), which :meth:`ebpf.Collection.load` resolves.

    ``func_info``/``line_info`` are ``(instruction index, ...)`` records against the
    collection's BTF (type id; file name, line text offsets and ``line << 10 | column``).

    A program parsed from an object is linked when one of those linked fields
    (``instructions``, ``references``, ``core_relos``, ``func_info``, ``line_info``) is
    first read, once (as libbpf appends subprograms in ``bpf_object__load``, not at open);
    a call into no function raises :class:`~ebpf.errors.ParseError` then.
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
        """A copy with ``changes`` applied (``dataclasses.replace``); a program not linked
        yet stays so in the copy unless a linked field is changed."""
        raw = _LINK_SLOTS[0].__get__(self, ProgramSpec)
        if type(raw) is _Unlinked and not changes.keys() & _LINKED_FIELDS:
            changes.update(dict.fromkeys(_LINKED_FIELDS, raw))
        return dataclasses.replace(self, **changes)

    @classmethod
    def _link_later(cls, link: Callable[[], _Linked], name: str, type: ProgramType | int,
                    section: str, attach_type: AttachType | int | None,
                    attach_to: str | None, license: str, flags: int, kern_version: int,
                    byteorder: str, autoload: bool) -> ProgramSpec:
        """A spec whose linked fields ``link()`` computes at the first read of one (every
        field given; built without the dataclass ``__init__``'s keyword handling)."""
        pending = _Unlinked(link)
        self: ProgramSpec = _new_object(cls)
        for put, value in zip(_PROGRAM_SETTERS, (
                name, type, pending, section, attach_type, attach_to, license, flags,
                kern_version, pending, pending, pending, pending, byteorder, autoload),
                strict=True):
            put(self, value)
        return self

    @property
    def insn_count(self) -> int:
        return len(self.instructions) // 8


#: (instructions, references, core_relos, func_info, line_info)
_Linked = tuple[bytes, tuple[Reference, ...], tuple[tuple[int, "CoreRelo"], ...],
                tuple[tuple[int, int], ...], tuple[tuple[int, int, int, int], ...]]
_LINKED_FIELDS = ("instructions", "references", "core_relos", "func_info", "line_info")


class _Unlinked:
    """The linked fields of a :class:`ProgramSpec` not computed yet (one shared object)."""

    __slots__ = ("link",)

    def __init__(self, link: Callable[[], _Linked]) -> None:
        self.link = link


#: The slots that hold the linked fields (their values, or one :class:`_Unlinked`).
_LINK_SLOTS: tuple[Any, ...] = tuple(ProgramSpec.__dict__[n] for n in _LINKED_FIELDS)
#: The slot setters of every field of a ProgramSpec, in field order (for _link_later).
_PROGRAM_SETTERS: tuple[Any, ...] = tuple(
    ProgramSpec.__dict__[f.name].__set__ for f in dataclasses.fields(ProgramSpec))


def _linked_field(i: int) -> property:
    slot = _LINK_SLOTS[i]

    def get(self: ProgramSpec) -> Any:
        raw = slot.__get__(self, ProgramSpec)
        if type(raw) is _Unlinked:
            values = raw.link()  # raises ParseError for a bad call (then stays unlinked)
            for s, v in zip(_LINK_SLOTS, values, strict=True):
                s.__set__(self, v)
            return values[i]
        return raw

    return property(get, slot.__set__)


# The linked fields read through their slots, linking at the first read; the dataclass
# __init__ (object.__setattr__) stores through them; instances stay frozen.
ProgramSpec.instructions = _linked_field(0)  # type: ignore[assignment,misc]
ProgramSpec.references = _linked_field(1)  # type: ignore[assignment,misc]
ProgramSpec.core_relos = _linked_field(2)  # type: ignore[assignment,misc]
ProgramSpec.func_info = _linked_field(3)  # type: ignore[assignment,misc]
ProgramSpec.line_info = _linked_field(4)  # type: ignore[assignment,misc]


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
class ObjectParts:
    """What the ELF reader decodes from an object: the fields of a
    :class:`~ebpf.CollectionSpec`, without depending on that class."""

    maps: Mapping[str, MapSpec]
    programs: Mapping[str, ProgramSpec]
    #: the variables, or the function that lists them (run at first use)
    variables: Mapping[str, VariableSpec] | Callable[[], Mapping[str, VariableSpec]]
    btf: BTFSpec | None
    #: the fixed-up BTF, or the function that computes it (run at first use, as libbpf
    #: fixes BTF up in ``bpf_object__load``, not at open)
    btf_blob: bytes | Callable[[], bytes] | None
    func_info_rec_size: int
    line_info_rec_size: int
    byteorder: str
