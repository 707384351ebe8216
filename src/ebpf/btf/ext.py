""".BTF.ext: per-section function info, line info and CO-RE relocation records.

The section accompanies ``.BTF`` in objects built by clang with ``-g``. Its string offsets
(section names, file names, source lines, CO-RE access strings) point into the ``.BTF``
string table, so parsing takes a function that reads a string at an offset (e.g.
:meth:`ebpf.btf.Spec.string`). ``insn_off`` stays in *bytes* from the start of the ELF
section, as in the file.

::

    ext = ExtInfo.from_bytes(elf_data_of_btf_ext, strings=spec.string)
    ext.func_info["xdp"]       # tuple[FuncInfo, ...]
    ext.core_relos["xdp"]      # tuple[CoreRelo, ...]
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from dataclasses import dataclass
from itertools import repeat
from typing import TYPE_CHECKING

from .._records import Record
from ..errors import ParseError

__all__ = [
    "CoreRelo",
    "CoreReloKind",
    "ExtHeader",
    "ExtInfo",
    "FuncInfo",
    "LineInfo",
    "record_sizes",
]

_MAGIC = 0xEB9F
_HDR = {bo: struct.Struct(bo + "HBBIIIII") for bo in "<>"}  # struct btf_ext_header (v1)
_CORE = {bo: struct.Struct(bo + "II") for bo in "<>"}  # core_relo_off/len
_U32 = {bo: struct.Struct(bo + "I") for bo in "<>"}
_SECHDR = {bo: struct.Struct(bo + "II") for bo in "<>"}  # sec_name_off, num_info
_FUNC = {bo: struct.Struct(bo + "II") for bo in "<>"}
_LINE = {bo: struct.Struct(bo + "IIII") for bo in "<>"}
_RELO = {bo: struct.Struct(bo + "IIII") for bo in "<>"}
_tn = tuple.__new__


class CoreReloKind(enum.IntEnum):
    """``enum bpf_core_relo_kind``."""

    FIELD_BYTE_OFFSET = 0
    FIELD_BYTE_SIZE = 1
    FIELD_EXISTS = 2
    FIELD_SIGNED = 3
    FIELD_LSHIFT_U64 = 4
    FIELD_RSHIFT_U64 = 5
    TYPE_ID_LOCAL = 6
    TYPE_ID_TARGET = 7
    TYPE_EXISTS = 8
    TYPE_SIZE = 9
    ENUMVAL_EXISTS = 10
    ENUMVAL_VALUE = 11
    TYPE_MATCHES = 12


class ExtHeader(Record):
    """``struct btf_ext_header``; the CO-RE fields are 0 in version-1 headers without them."""

    __slots__ = ()
    _fields = ("magic", "version", "flags", "hdr_len", "func_info_off", "func_info_len",
               "line_info_off", "line_info_len", "core_relo_off", "core_relo_len")
    _defaults = (0, 0)
    if TYPE_CHECKING:
        magic: int
        version: int
        flags: int
        hdr_len: int
        func_info_off: int
        func_info_len: int
        line_info_off: int
        line_info_len: int
        core_relo_off: int
        core_relo_len: int

        def __new__(cls, magic: int, version: int, flags: int, hdr_len: int,
                    func_info_off: int, func_info_len: int, line_info_off: int,
                    line_info_len: int, core_relo_off: int = 0,
                    core_relo_len: int = 0) -> ExtHeader: ...


class FuncInfo(Record):
    """``struct bpf_func_info``: the function starting at ``insn_off`` bytes has BTF
    ``type_id`` (a FUNC)."""

    __slots__ = ()
    _fields = ("insn_off", "type_id")
    if TYPE_CHECKING:
        insn_off: int
        type_id: int

        def __new__(cls, insn_off: int, type_id: int) -> FuncInfo: ...


class LineInfo(Record):
    """``struct bpf_line_info``; ``line_col`` is ``line << 10 | column``."""

    __slots__ = ()
    _fields = ("insn_off", "file_name_off", "line_off", "line_col")
    if TYPE_CHECKING:
        insn_off: int
        file_name_off: int
        line_off: int
        line_col: int

        def __new__(cls, insn_off: int, file_name_off: int, line_off: int,
                    line_col: int) -> LineInfo: ...

    @property
    def line(self) -> int:
        return self.line_col >> 10

    @property
    def column(self) -> int:
        return self.line_col & 0x3FF


class CoreRelo(Record):
    """``struct bpf_core_relo``: patch the instruction at ``insn_off`` bytes with the ``kind``
    property of local type ``type_id`` reached by ``access`` (e.g. ``"0:1:2"``)."""

    __slots__ = ()
    _fields = ("insn_off", "type_id", "access", "kind")
    if TYPE_CHECKING:
        insn_off: int
        type_id: int
        access: str
        kind: int

        def __new__(cls, insn_off: int, type_id: int, access: str, kind: int) -> CoreRelo: ...


@dataclass(frozen=True, slots=True)
class ExtInfo:
    """Parsed ``.BTF.ext``: records per ELF section name. ``*_rec_size`` are the sizes in the
    file (the kernel wants them with the records)."""

    header: ExtHeader
    func_info: dict[str, tuple[FuncInfo, ...]]
    func_info_rec_size: int
    line_info: dict[str, tuple[LineInfo, ...]]
    line_info_rec_size: int
    core_relos: dict[str, tuple[CoreRelo, ...]]

    @classmethod
    def from_bytes(
        cls, data: bytes, strings: Callable[[int], str], byteorder: str | None = None
    ) -> ExtInfo:
        """Parse ``data``. ``byteorder`` (``"<"``/``">"``) is detected from the magic when
        not given. Raises :class:`~ebpf.errors.ParseError` on malformed input."""
        data = bytes(data)
        header, bo = _header(data, byteorder)
        hdr_len = header.hdr_len
        body = data[hdr_len:]

        def parse(
            off: int,
            length: int,
            what: str,
            st: struct.Struct,
        ) -> tuple[dict[str, list[tuple[int, ...]]], int]:
            out: dict[str, list[tuple[int, ...]]] = {}
            rec_size = _rec_size(body, off, length, what, st, hdr_len, bo)
            if not length:
                return out, rec_size
            chunk = body[off : off + length]
            pos = 4
            while pos < len(chunk):
                if pos + 8 > len(chunk):
                    raise ParseError(
                        f"truncated .BTF.ext {what} section header", hdr_len + off + pos
                    )
                name_off, n = _SECHDR[bo].unpack_from(chunk, pos)
                pos += 8
                if n * rec_size > len(chunk) - pos:
                    raise ParseError(
                        f".BTF.ext {what}: {n} records do not fit", hdr_len + off + pos
                    )
                name = _string(strings, name_off, hdr_len + off + pos)
                recs = out.setdefault(name, [])
                if rec_size == st.size:
                    recs += st.iter_unpack(chunk[pos:pos + n * rec_size])
                    pos += n * rec_size
                else:
                    for _ in range(n):
                        recs.append(st.unpack_from(chunk, pos))
                        pos += rec_size
            return out, rec_size

        fi, fi_size = parse(header.func_info_off, header.func_info_len, "func_info", _FUNC[bo])
        li, li_size = parse(header.line_info_off, header.line_info_len, "line_info", _LINE[bo])
        cr, _ = parse(header.core_relo_off, header.core_relo_len, "core_relo", _RELO[bo])
        core_relos: dict[str, tuple[CoreRelo, ...]] = {}
        for sec, recs in cr.items():
            core_relos[sec] = tuple(
                _tn(CoreRelo, (r[0], r[1], _string(strings, r[2], hdr_len), r[3])) for r in recs
            )
        return cls(
            header,
            {s: tuple(map(_tn, repeat(FuncInfo), v)) for s, v in fi.items()},
            fi_size,
            {s: tuple(map(_tn, repeat(LineInfo), v)) for s, v in li.items()},
            li_size,
            core_relos,
        )


def _string(strings: Callable[[int], str], off: int, at: int) -> str:
    try:
        return strings(off)
    except ParseError:
        raise
    except (KeyError, IndexError, ValueError) as e:
        raise ParseError(f".BTF.ext string offset {off} is invalid ({e})", at) from None


def record_sizes(data: bytes, byteorder: str | None = None) -> tuple[int, int]:
    """The func info and line info record sizes of a ``.BTF.ext`` section (as
    :class:`ExtInfo` has them), from its header and the first word of each subsection,
    without parsing the records. Raises the :class:`~ebpf.errors.ParseError` that
    :meth:`ExtInfo.from_bytes` raises for a bad header, a subsection outside the section
    or a record size too small; bad records are found by :meth:`ExtInfo.from_bytes`."""
    header, bo = _header(data, byteorder)
    hdr_len = header.hdr_len
    body = memoryview(data)[hdr_len:]
    fi = _rec_size(body, header.func_info_off, header.func_info_len, "func_info", _FUNC[bo],
                   hdr_len, bo)
    li = _rec_size(body, header.line_info_off, header.line_info_len, "line_info", _LINE[bo],
                   hdr_len, bo)
    _rec_size(body, header.core_relo_off, header.core_relo_len, "core_relo", _RELO[bo],
              hdr_len, bo)
    return fi, li


def _header(data: bytes, byteorder: str | None) -> tuple[ExtHeader, str]:
    """The header of ``data`` and its byte order (detected from the magic if ``None``)."""
    if len(data) < _HDR["<"].size:
        raise ParseError("truncated .BTF.ext header", 0)
    if byteorder is None:
        magic = struct.unpack_from("<H", data)[0]
        if magic == _MAGIC:
            byteorder = "<"
        elif struct.unpack_from(">H", data)[0] == _MAGIC:
            byteorder = ">"
        else:
            raise ParseError(f"bad .BTF.ext magic {magic:#x}", 0)
    bo = byteorder
    fields = _HDR[bo].unpack_from(data)
    hdr_len = fields[3]
    if fields[0] != _MAGIC:
        raise ParseError(f"bad .BTF.ext magic {fields[0]:#x}", 0)
    if hdr_len < _HDR[bo].size or hdr_len > len(data):
        raise ParseError(f"bad .BTF.ext header length {hdr_len}", 4)
    core = (0, 0)
    if hdr_len >= _HDR[bo].size + _CORE[bo].size:
        core = _CORE[bo].unpack_from(data, _HDR[bo].size)
    return _tn(ExtHeader, fields + core), bo


def _rec_size(body: bytes | memoryview, off: int, length: int, what: str, st: struct.Struct,
              hdr_len: int, bo: str) -> int:
    """The record size of the subsection at ``off`` of ``body`` (after the header), checked
    to fit; ``st.size`` for an empty one."""
    if not length:
        return st.size
    if off + length > len(body) or length < 4:
        raise ParseError(f".BTF.ext {what} outside the section", hdr_len + off)
    rec_size: int = _U32[bo].unpack_from(body, off)[0]
    if rec_size < st.size:
        raise ParseError(f".BTF.ext {what} record size {rec_size} too small", hdr_len + off)
    return rec_size
