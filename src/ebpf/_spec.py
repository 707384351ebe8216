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
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

# The shared spec types live in _spec_types, which the ELF reader imports too: the reader
# never imports this module (no import circle); these names stay public here.
from ._spec_types import (
    MapSpec,
    PinType,
    ProgramSpec,
    Reference,
    ReferenceKind,
    VariableSpec,
)

if TYPE_CHECKING:
    from .btf.spec import Spec as BTFSpec

__all__ = [
    "CollectionSpec",
    "MapSpec",
    "PinType",
    "ProgramSpec",
    "Reference",
    "ReferenceKind",
    "VariableSpec",
]


@dataclass(frozen=True, slots=True)
class CollectionSpec:
    """Maps, programs and global variables of an object, ready for
    :meth:`ebpf.Collection.load`.

    ``btf`` is the object's BTF as parsed; ``btf_blob`` the same BTF fixed up for
    ``BPF_BTF_LOAD`` (data section sizes, variable offsets, extern sections), or ``None``
    when the object has no BTF. Treat the mappings as read-only; use :meth:`replace`.

    For a parsed object two fields are computed when first read, once (a copy made by
    :meth:`replace` before that stays deferred): ``btf_blob`` (the fix-up; the load reads
    it, as libbpf fixes BTF up in ``bpf_object__load``) and ``variables``. Malformed input
    they reach raises :class:`~ebpf.errors.ParseError` then; see :mod:`ebpf.elf` for
    which errors come at open and which at first use.
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
        return cls.from_bytes(_read_file(path))

    @classmethod
    def from_bytes(cls, data: bytes) -> CollectionSpec:
        """Parse a BPF object from bytes."""
        from .elf.loader import parse_object

        p = parse_object(data)
        blob, variables = p.btf_blob, p.variables
        # computed by the btf_blob and variables properties at their first read
        if callable(blob):
            blob = cast(Any, _Deferred(blob))
        if callable(variables):
            variables = cast(Any, _Deferred(variables))
        return cls(maps=p.maps, programs=p.programs, variables=variables, btf=p.btf,
                   btf_blob=blob, func_info_rec_size=p.func_info_rec_size,
                   line_info_rec_size=p.line_info_rec_size, byteorder=p.byteorder)

    def replace(self, **changes: Any) -> CollectionSpec:
        """A copy with ``changes`` applied (``dataclasses.replace``); a BTF fix-up or
        variables not computed yet stay deferred in the copy."""
        for name, slot in _DEFERRED_SLOTS.items():
            if name not in changes:
                raw = slot.__get__(self, CollectionSpec)
                if type(raw) is _Deferred:
                    changes[name] = raw
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


def _read_file(path: str | os.PathLike[str]) -> bytes:
    """The contents of ``path``: read at the size ``fstat`` gives, then to the end (a file
    that grew, a size of 0); with ``os`` calls, no buffered file object."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        size = os.fstat(fd).st_size
        parts = [os.read(fd, size)] if size else []
        while True:
            more = os.read(fd, 1 << 16)
            if not more:
                return parts[0] if len(parts) == 1 else b"".join(parts)
            parts.append(more)
    finally:
        os.close(fd)


class _Deferred:
    """A field not computed yet (``btf_blob``, ``variables``): the function that
    computes it."""

    __slots__ = ("make",)

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make


#: The slots of the fields that may be deferred (their value, or a :class:`_Deferred`).
_DEFERRED_SLOTS: dict[str, Any] = {n: CollectionSpec.__dict__[n]
                                   for n in ("variables", "btf_blob")}
#: The slot that holds ``btf_blob`` (bytes, None or a :class:`_Deferred`).
_BLOB_SLOT: Any = _DEFERRED_SLOTS["btf_blob"]


def _deferred_field(slot: Any) -> property:
    def get(self: CollectionSpec) -> Any:
        raw = slot.__get__(self, CollectionSpec)
        if type(raw) is _Deferred:
            raw = raw.make()  # raises ParseError for input it cannot take (stays deferred)
            slot.__set__(self, raw)  # once: a frozen spec's cached field
        return raw

    return property(get, slot.__set__)


# The deferred fields read through their slots, computed at the first read; the dataclass
# __init__ (object.__setattr__) stores through them; instances stay frozen.
CollectionSpec.btf_blob = _deferred_field(_BLOB_SLOT)  # type: ignore[assignment,misc]
CollectionSpec.variables = _deferred_field(  # type: ignore[assignment,misc]
    _DEFERRED_SLOTS["variables"])
