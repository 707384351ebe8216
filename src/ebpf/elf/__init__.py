"""BPF object files: a pure ELF reader and the loader that turns clang/libbpf-convention
objects into a :class:`~ebpf.CollectionSpec`.

::

    from ebpf import elf

    spec = elf.load_collection_spec(open("prog.bpf.o", "rb").read())
    spec.programs["handle_exec"].type, spec.maps["counts"].max_entries

Everything here is pure (no kernel calls); :meth:`ebpf.Collection.load` does the rest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .reader import ELFFile as ELFFile
from .reader import Relocation as Relocation
from .reader import Section as Section
from .reader import Symbol as Symbol
from .sections import SectionDef as SectionDef
from .sections import match_section as match_section

if TYPE_CHECKING:
    from .._spec import CollectionSpec


def load_collection_spec(data: bytes) -> CollectionSpec:
    """Parse a BPF ELF object (the same as :meth:`ebpf.CollectionSpec.from_bytes`). Raises
    :class:`~ebpf.errors.ParseError` for malformed or unsupported input."""
    from .._spec import CollectionSpec  # ebpf._spec imports this package's loader

    return CollectionSpec.from_bytes(data)


__all__ = ["ELFFile", "Relocation", "Section", "SectionDef", "Symbol", "load_collection_spec",
           "match_section"]
