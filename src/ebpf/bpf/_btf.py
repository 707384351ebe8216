"""A small BTF writer: the kinds the compiler emits (INT, PTR, ARRAY, STRUCT, FUNC_PROTO, FUNC).

Types are deduplicated by their encoding, strings by value. This belongs in :mod:`ebpf.btf`
as a public writer (issue 11); it lives here until that exists.
"""

from __future__ import annotations

import struct

from .types import IntType, Struct, _Bytes

_MAGIC = 0xEB9F
_INT, _PTR, _ARRAY, _STRUCT, _FUNC, _FUNC_PROTO = 1, 2, 3, 4, 12, 13
LINKAGE_STATIC, LINKAGE_GLOBAL = 0, 1


class BTFWriter:
    """Accumulates types and strings; :meth:`encode` gives the blob for ``BPF_BTF_LOAD``."""

    def __init__(self) -> None:
        self._types: list[bytes] = []
        self._index: dict[bytes, int] = {}
        self._strings = bytearray(b"\0")
        self._str_index: dict[str, int] = {"": 0}
        self._structs: dict[type[Struct], int] = {}

    def string(self, s: str) -> int:
        """Offset of ``s`` in the string section (added once)."""
        off = self._str_index.get(s)
        if off is None:
            off = self._str_index[s] = len(self._strings)
            self._strings += s.encode() + b"\0"
        return off

    def _add(self, raw: bytes, dedup: bool = True) -> int:
        if dedup:
            tid = self._index.get(raw)
            if tid is not None:
                return tid
        self._types.append(raw)
        tid = len(self._types)
        if dedup:
            self._index[raw] = tid
        return tid

    def int_(self, name: str, size: int, signed: bool) -> int:
        enc = 1 if signed else 0
        return self._add(struct.pack("=IIII", self.string(name), _INT << 24, size,
                                     (enc << 24) | size * 8))

    def ptr(self, target: int) -> int:
        return self._add(struct.pack("=III", 0, _PTR << 24, target))

    def array(self, elem: int, n: int) -> int:
        index = self.int_("__ARRAY_SIZE_TYPE__", 4, False)
        return self._add(struct.pack("=IIIIII", 0, _ARRAY << 24, 0, elem, index, n))

    def int_type(self, t: type[IntType]) -> int:
        name = t.__name__
        return self.int_(name if not t.big_endian else f"__be{t.size * 8}", t.size, t.signed)

    def struct_(self, cls: type[Struct]) -> int:
        tid = self._structs.get(cls)
        if tid is not None:
            return tid
        members: list[tuple[int, int, int]] = []
        for f in cls.fields:
            members.append((self.string(f.name), self.field_type(f.type), f.offset * 8))
        raw = struct.pack("=III", self.string(cls.__name__), (_STRUCT << 24) | len(members),
                          cls.size)
        raw += b"".join(struct.pack("=III", *m) for m in members)
        tid = self._structs[cls] = self._add(raw, dedup=False)
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
        raw = struct.pack("=III", 0, (_FUNC_PROTO << 24) | len(params), ret)
        raw += b"".join(struct.pack("=II", self.string(p), t) for p, t in params)
        proto = self._add(raw)
        return self._add(struct.pack("=III", self.string(name), (_FUNC << 24) | linkage, proto),
                         dedup=False)

    def encode(self) -> bytes:
        types = b"".join(self._types)
        hdr = struct.pack("=HBBIIIII", _MAGIC, 1, 0, 24, 0, len(types), len(types),
                          len(self._strings))
        return hdr + types + bytes(self._strings)
