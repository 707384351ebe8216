"""Context accessors generated from the kernel's context structs (``ebpf._uapi``, from BTF)."""

from __future__ import annotations

import ctypes
import re
from collections.abc import Iterator
from typing import Any

from .. import asm
from ..asm import R0, R1, Register
from ..errors import AssemblerError

__all__ = ["Context", "ContextField"]

_SIZES = {1: asm.B, 2: asm.H, 4: asm.W, 8: asm.DW}
_INDEX = re.compile(r"^(\w+)\[(\d+)\]$")


class ContextField:
    """One loadable field of a context struct: name, offset, size, element count."""

    __slots__ = ("count", "name", "offset", "size")

    def __init__(self, name: str, offset: int, size: int, count: int = 0) -> None:
        self.name = name
        self.offset = offset
        self.size = size  # of one element
        self.count = count  # 0: not an array

    def __repr__(self) -> str:
        arr = f"[{self.count}]" if self.count else ""
        return f"ContextField({self.name}{arr} @ {self.offset}, {self.size} bytes)"


def _walk(struct: Any, base: int) -> Iterator[ContextField]:
    anonymous = set(getattr(struct, "_anonymous_", ()))
    for entry in struct._fields_:
        name, ctype = entry[0], entry[1]
        if name.startswith("_pad") or name == "_size":
            continue
        off = base + getattr(struct, name).offset
        if name in anonymous:
            yield from _walk(ctype, off)
            continue
        if issubclass(ctype, ctypes.Array):
            elem = ctype._type_
            yield ContextField(name, off, ctypes.sizeof(elem), ctype._length_)
        elif issubclass(ctype, (ctypes.Structure, ctypes.Union)):
            for sub in _walk(ctype, off):
                yield ContextField(f"{name}.{sub.name}", sub.offset, sub.size, sub.count)
        else:
            yield ContextField(name, off, ctypes.sizeof(ctype))


class Context:
    """Field access for one program type's context (``struct xdp_md``, ``__sk_buff``...).

    Built from the generated ctypes layout, so offsets always match the kernel's BTF. Field
    names are the C names; array elements are ``"cb[2]"``, nested members ``"a.b"``.
    """

    def __init__(self, struct: type[ctypes.Structure], c_name: str) -> None:
        self.struct = struct
        self.c_name = c_name
        self.size = ctypes.sizeof(struct)
        self.fields: dict[str, ContextField] = {f.name: f for f in _walk(struct, 0)}

    def __repr__(self) -> str:
        return f"Context({self.c_name}, {len(self.fields)} fields)"

    def __contains__(self, name: object) -> bool:
        try:
            self.field(str(name))
        except AssemblerError:
            return False
        return True

    def field(self, name: str) -> tuple[int, asm.Size]:
        """``(offset, size)`` of a field or array element."""
        m = _INDEX.match(name)
        index = None
        if m:
            name, index = m.group(1), int(m.group(2))
        f = self.fields.get(name)
        if f is None:
            raise AssemblerError(f"{self.c_name} has no field {name!r} "
                                 f"(fields: {', '.join(self.fields)})")
        if index is not None:
            if not f.count or not 0 <= index < f.count:
                raise AssemblerError(f"{self.c_name}.{name}: bad index {index}")
            return f.offset + index * f.size, _SIZES[f.size]
        if f.count:
            raise AssemblerError(f"{self.c_name}.{name} is an array: name an element, "
                                 f"like {name}[0]")
        return f.offset, _SIZES[f.size]

    def offset(self, name: str) -> int:
        return self.field(name)[0]

    def load(self, dst: Register, name: str, ctx: Register = R1) -> asm.Instruction:
        """``dst = ctx->name`` with the field's own size."""
        off, size = self.field(name)
        return asm.load(size, dst, ctx, off)

    def store(self, ctx: Register, name: str, src: Register | int, *,
              scratch: Register = R0) -> list[asm.Instruction]:
        """``ctx->name = src`` (only fields the verifier lets this program type write).

        An immediate goes through ``scratch`` (R0 unless given): the verifier refuses
        ``BPF_ST`` (store immediate) into the context before Linux 6.3."""
        off, size = self.field(name)
        if isinstance(src, Register):
            return [asm.store(size, ctx, off, src)]
        if scratch == ctx:
            raise AssemblerError(f"{self.c_name}.{name}: scratch must not be the ctx register")
        return [asm.mov(scratch, src), asm.store(size, ctx, off, scratch)]
