"""BTF wire format: the header record and the per-kind record sizes.

Layout (``include/uapi/linux/btf.h``)::

    struct btf_header {            /* hdr_len bytes, at least 24 */
        __u16 magic;               /* 0xeB9F, in the blob's byte order */
        __u8  version;             /* 1 */
        __u8  flags;
        __u32 hdr_len;
        __u32 type_off, type_len;  /* relative to the end of the header */
        __u32 str_off, str_len;
    };
    struct btf_type {              /* 12 bytes, then kind-specific trailing data */
        __u32 name_off;
        __u32 info;                /* vlen 0-15, kind 24-28, kind_flag 31 */
        __u32 size_or_type;
    };

Every record is a whole number of 32-bit words, so the type section is read as an array of
words in the blob's byte order. :data:`BASE_WORDS` and :data:`VLEN_WORDS` give, per kind, the
fixed record length and the length of each of the ``vlen`` trailing entries.
"""

from __future__ import annotations

import struct
import sys
from collections import namedtuple

from ..errors import ParseError

TYPE_CHECKING = False  # the type checkers' constant, without importing typing (import time)

if TYPE_CHECKING:
    import mmap

__all__ = [
    "BASE_WORDS",
    "HEADER",
    "HEADER_LEN",
    "MAGIC",
    "NATIVE_ORDER",
    "VERSION",
    "VLEN_WORDS",
    "Header",
    "parse_header",
    "record_words",
]

MAGIC = 0xEB9F
VERSION = 1
#: Size of the header fields this reader knows; ``hdr_len`` may be larger (newer kernels).
HEADER_LEN = 24
#: ``struct btf_header`` per byte order.
HEADER = {bo: struct.Struct(bo + "HBBIIIII") for bo in "<>"}
NATIVE_ORDER = "<" if sys.byteorder == "little" else ">"

#: Fixed length in 32-bit words of a record of each kind (index = ``BTF_KIND_*``).
#: ``None`` marks an invalid kind (0 is BTF_KIND_UNKN, never present in the type section).
BASE_WORDS: tuple[int | None, ...] = (
    None,  # UNKN
    4,  # INT: + u32 encoding
    3,  # PTR
    6,  # ARRAY: + struct btf_array
    3,  # STRUCT
    3,  # UNION
    3,  # ENUM
    3,  # FWD
    3,  # TYPEDEF
    3,  # VOLATILE
    3,  # CONST
    3,  # RESTRICT
    3,  # FUNC
    3,  # FUNC_PROTO
    4,  # VAR: + u32 linkage
    3,  # DATASEC
    3,  # FLOAT
    4,  # DECL_TAG: + s32 component_idx
    3,  # TYPE_TAG
    3,  # ENUM64
)
#: Length in words of each of the ``vlen`` trailing entries of a record of each kind.
VLEN_WORDS: tuple[int, ...] = (
    0,
    0,
    0,
    0,
    3,  # STRUCT: struct btf_member {name_off, type, offset}
    3,  # UNION
    2,  # ENUM: struct btf_enum {name_off, s32 val}
    0,
    0,
    0,
    0,
    0,
    0,  # FUNC: vlen is the linkage
    2,  # FUNC_PROTO: struct btf_param {name_off, type}
    0,
    3,  # DATASEC: struct btf_var_secinfo {type, offset, size}
    0,
    0,
    0,
    3,  # ENUM64: struct btf_enum64 {name_off, val_lo32, val_hi32}
)


def record_words(info: int) -> int:
    """Length in words of a type record whose ``info`` word is ``info``.

    Raises :class:`ValueError` (not :class:`ParseError`; the caller adds the offset) for an
    unknown kind.
    """
    kind = (info >> 24) & 0x1F
    base = BASE_WORDS[kind] if kind < len(BASE_WORDS) else None
    if base is None:
        raise ValueError(f"unknown BTF kind {kind}")
    return base + (info & 0xFFFF) * VLEN_WORDS[kind]


if TYPE_CHECKING:
    from typing import NamedTuple

    class _HeaderFields(NamedTuple):
        magic: int
        version: int
        flags: int
        hdr_len: int
        type_off: int
        type_len: int
        str_off: int
        str_len: int
else:  # the same fields; collections.namedtuple does not need the typing module
    _HeaderFields = namedtuple(
        "_HeaderFields", "magic version flags hdr_len type_off type_len str_off str_len"
    )


class Header(_HeaderFields):
    """``struct btf_header``. Section offsets are relative to the end of the header."""

    __slots__ = ()

    @property
    def type_start(self) -> int:
        """Absolute offset of the type section in the blob."""
        return self.hdr_len + self.type_off

    @property
    def str_start(self) -> int:
        """Absolute offset of the string section in the blob."""
        return self.hdr_len + self.str_off

    def pack(self, byte_order: str) -> bytes:
        """The 24 known header bytes (a writer pads them to ``hdr_len``)."""
        return HEADER[byte_order].pack(*self)


def parse_header(
    data: bytes | bytearray | memoryview | mmap.mmap, size: int | None = None
) -> tuple[Header, str]:
    """Parse and check the header of a BTF blob; return it with the byte order ("<" or ">").

    ``size`` is the length of ``data`` (for buffers where ``len`` is costly). Section bounds
    are checked against it.
    """
    if size is None:
        size = len(data)
    if size < HEADER_LEN:
        raise ParseError(f"BTF header truncated: {size} bytes, need {HEADER_LEN}", 0)
    for order in "<>":
        fields = HEADER[order].unpack_from(data, 0)
        if fields[0] == MAGIC:
            break
    else:
        raise ParseError(f"bad BTF magic {bytes(data[:2]).hex()}", 0)
    header = Header(*fields)
    if header.version != VERSION:
        raise ParseError(f"unsupported BTF version {header.version}", 2)
    if header.hdr_len < HEADER_LEN or header.hdr_len > size:
        raise ParseError(f"bad BTF hdr_len {header.hdr_len} (blob is {size} bytes)", 4)
    body = size - header.hdr_len
    if header.type_off % 4 or header.type_len % 4:
        raise ParseError(
            f"BTF type section not 4-byte aligned (off {header.type_off}, len {header.type_len})",
            8,
        )
    if header.type_off + header.type_len > body:
        raise ParseError(
            f"BTF type section [{header.type_off}, +{header.type_len}) beyond the "
            f"{body} bytes after the header",
            8,
        )
    if header.str_off + header.str_len > body:
        raise ParseError(
            f"BTF string section [{header.str_off}, +{header.str_len}) beyond the "
            f"{body} bytes after the header",
            16,
        )
    return header, order
