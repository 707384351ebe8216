"""Behaviour of the generated :class:`~ebpf.asm.Helper` enum (kept apart from the data)."""

from __future__ import annotations

import enum
import re
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from .instruction import Instruction

__all__ = ["HelperBase", "HelperSignature"]

_PROTO = re.compile(r"^(?P<ret>.*?[\s*])bpf_(?P<name>\w+)\((?P<args>.*)\)$")


class HelperSignature(NamedTuple):
    """C prototype of a helper, from the uapi header's helper documentation.

    ``return_type`` (e.g. ``"void *"``), ``params`` as ``(type, name)`` pairs, and a one-line
    ``description``. ``str()`` gives the C prototype. (A named tuple, not a dataclass: importing
    :mod:`dataclasses` costs 6 ms of every cold start.)
    """

    name: str
    return_type: str
    params: tuple[tuple[str, str], ...]
    description: str

    def __str__(self) -> str:
        args = ", ".join(f"{t}{'' if t.endswith('*') else ' '}{n}" for t, n in self.params)
        ret = self.return_type
        return f"{ret}{'' if ret.endswith('*') else ' '}{self.name}({args or 'void'})"

    @classmethod
    def parse(cls, prototype: str, description: str = "") -> HelperSignature:
        """Parse ``"void *bpf_map_lookup_elem(struct bpf_map *map, const void *key)"``."""
        m = _PROTO.match(prototype.strip())
        if m is None:
            raise ValueError(f"not a helper prototype: {prototype!r}")
        params: list[tuple[str, str]] = []
        for raw_arg in m["args"].split(","):
            arg = raw_arg.strip()
            if not arg or arg == "void":
                continue
            am = re.match(r"^(.*?[\s*])(\w+)$", arg)
            if am is None:
                params.append((arg, ""))
            else:
                params.append((am[1].strip(), am[2]))
        return cls("bpf_" + m["name"], m["ret"].strip(), tuple(params), description)


class HelperBase(enum.IntEnum):
    """Base of the generated ``Helper`` enum: lookups and metadata."""

    @classmethod
    def by_name(cls, name: str) -> HelperBase:
        """``Helper.by_name("map_lookup_elem")``; also accepts ``bpf_map_lookup_elem``,
        ``BPF_FUNC_map_lookup_elem`` and ``MAP_LOOKUP_ELEM``."""
        key = name
        for prefix in ("BPF_FUNC_", "bpf_"):
            if key.startswith(prefix):
                key = key[len(prefix) :]
                break
        try:
            return cls[key.upper()]
        except KeyError:
            raise KeyError(f"no BPF helper named {name!r}") from None

    @property
    def c_name(self) -> str:
        """The C name, ``bpf_map_lookup_elem``."""
        return "bpf_" + self.name.lower()

    @property
    def kernel_name(self) -> str:
        """The kernel's enum constant, ``BPF_FUNC_map_lookup_elem``."""
        return "BPF_FUNC_" + self.name.lower()

    @property
    def signature(self) -> HelperSignature | None:
        """Prototype and description from the uapi header, None where the header lacks it."""
        from ._generated_helpers import SIGNATURES

        entry = SIGNATURES.get(int(self))
        if entry is None:
            return None
        return HelperSignature.parse(entry[0], entry[1])

    @property
    def description(self) -> str:
        """One-line description from the uapi header ('' if unknown)."""
        sig = self.signature
        return sig.description if sig else ""

    @property
    def program_types(self) -> frozenset[int] | None:
        """Values of the program types allowed to call this helper, or None if not recorded
        (``tools/gen_helpers.py --probe`` records them from a running kernel)."""
        from ._generated_helpers import PROGRAM_TYPES

        if PROGRAM_TYPES is None:
            return None
        return PROGRAM_TYPES.get(int(self), frozenset())

    def call(self) -> Instruction:
        """The ``call`` instruction for this helper."""
        from .dsl import call

        return call(int(self))
