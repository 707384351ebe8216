"""The compiler's view of BTF: :class:`bpf.Struct` classes and integer types to type ids.

A thin layer over the public :class:`ebpf.btf.writer.BTFWriter`, which does the encoding,
the string and type deduplication and the checks; this keeps the calls the front end makes.
"""

from __future__ import annotations

from ..btf import writer as _writer
from ..btf.types import Linkage
from .types import IntType, Struct, _Bytes

LINKAGE_STATIC, LINKAGE_GLOBAL = int(Linkage.STATIC), int(Linkage.GLOBAL)


class BTFWriter:
    """Accumulates types and strings; :meth:`encode` gives the blob for ``BPF_BTF_LOAD``."""

    def __init__(self) -> None:
        self.writer = _writer.BTFWriter()
        self._structs: dict[type[Struct], int] = {}

    def string(self, s: str) -> int:
        """Offset of ``s`` in the string section (added once)."""
        return self.writer.string(s)

    def int_(self, name: str, size: int, signed: bool) -> int:
        return self.writer.int_(name, size, signed=signed)

    def ptr(self, target: int) -> int:
        return self.writer.pointer(target)

    def array(self, elem: int, n: int) -> int:
        return self.writer.array(elem, n)

    def int_type(self, t: type[IntType]) -> int:
        name = t.__name__
        return self.int_(name if not t.big_endian else f"__be{t.size * 8}", t.size, t.signed)

    def struct_(self, cls: type[Struct]) -> int:
        tid = self._structs.get(cls)
        if tid is None:
            members = [(f.name, self.field_type(f.type), f.offset * 8) for f in cls.fields]
            tid = self._structs[cls] = self.writer.struct(cls.__name__, members, size=cls.size)
        return tid

    def field_type(self, t: object) -> int:
        if isinstance(t, _Bytes):
            return self.array(self.int_("char", 1, True), t.size)
        if isinstance(t, type) and issubclass(t, Struct):
            return self.struct_(t)
        assert isinstance(t, type) and issubclass(t, IntType)
        return self.int_type(t)

    def func(self, name: str, ret: int, params: list[tuple[str, int]],
             linkage: int = LINKAGE_STATIC) -> int:
        proto = self.writer.func_proto(ret, params)
        return self.writer.func(name, proto, linkage)

    def encode(self) -> bytes:
        return self.writer.encode()
