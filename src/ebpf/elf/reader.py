"""A small, pure ELF reader: headers, sections, symbols and REL/RELA relocations.

ELF32 and ELF64, little and big endian. Everything is read from one ``bytes`` object; every
offset and size read from the file is checked against it, and malformed input raises
:class:`~ebpf.errors.ParseError` with the offset where it went wrong (never ``IndexError``,
``struct.error`` or ``UnicodeDecodeError``).

::

    elf = ELFFile(open("prog.o", "rb").read())
    for sec in elf.sections: print(sec.name, sec.type, sec.size)
    syms = elf.symbols()                       # .symtab
    rels = elf.relocations(elf.section(".relxdp"))
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from functools import cached_property

from ..errors import ParseError

__all__ = [
    "EM_BPF",
    "ELFFile",
    "Relocation",
    "Section",
    "SectionFlags",
    "SectionType",
    "Symbol",
    "SymbolBinding",
    "SymbolType",
]

EM_BPF = 247
SHN_UNDEF = 0
SHN_LORESERVE = 0xFF00
SHN_ABS = 0xFFF1
SHN_COMMON = 0xFFF2
SHN_XINDEX = 0xFFFF


class SectionType(enum.IntEnum):
    """``sh_type`` values this reader knows (others are kept as plain ints)."""

    NULL = 0
    PROGBITS = 1
    SYMTAB = 2
    STRTAB = 3
    RELA = 4
    HASH = 5
    DYNAMIC = 6
    NOTE = 7
    NOBITS = 8
    REL = 9
    DYNSYM = 11
    SYMTAB_SHNDX = 18
    LLVM_ADDRSIG = 0x6FFF4C03


class SectionFlags(enum.IntFlag):
    """``sh_flags`` bits."""

    WRITE = 0x1
    ALLOC = 0x2
    EXECINSTR = 0x4
    MERGE = 0x10
    STRINGS = 0x20


class SymbolBinding(enum.IntEnum):
    """``ST_BIND`` of ``st_info``."""

    LOCAL = 0
    GLOBAL = 1
    WEAK = 2


class SymbolType(enum.IntEnum):
    """``ST_TYPE`` of ``st_info``."""

    NOTYPE = 0
    OBJECT = 1
    FUNC = 2
    SECTION = 3
    FILE = 4


# Records per (byte order, class): ELF header after e_ident, section header, symbol, REL, RELA.
_EHDR = {("<", 32): struct.Struct("<HHIIIIIHHHHHH"), (">", 32): struct.Struct(">HHIIIIIHHHHHH"),
         ("<", 64): struct.Struct("<HHIQQQIHHHHHH"), (">", 64): struct.Struct(">HHIQQQIHHHHHH")}
_SHDR = {("<", 32): struct.Struct("<IIIIIIIIII"), (">", 32): struct.Struct(">IIIIIIIIII"),
         ("<", 64): struct.Struct("<IIQQQQIIQQ"), (">", 64): struct.Struct(">IIQQQQIIQQ")}
# ELF32 Sym: name, value, size, info, other, shndx; ELF64: name, info, other, shndx, value, size
_SYM = {("<", 32): struct.Struct("<IIIBBH"), (">", 32): struct.Struct(">IIIBBH"),
        ("<", 64): struct.Struct("<IBBHQQ"), (">", 64): struct.Struct(">IBBHQQ")}
_REL = {("<", 32): struct.Struct("<II"), (">", 32): struct.Struct(">II"),
        ("<", 64): struct.Struct("<QQ"), (">", 64): struct.Struct(">QQ")}
_RELA = {("<", 32): struct.Struct("<IIi"), (">", 32): struct.Struct(">IIi"),
         ("<", 64): struct.Struct("<QQq"), (">", 64): struct.Struct(">QQq")}


@dataclass(frozen=True, slots=True)
class Section:
    """One section header. ``index`` is its position in the section header table."""

    index: int
    name: str
    type: int
    flags: int
    addr: int
    offset: int
    size: int
    link: int
    info: int
    addralign: int
    entsize: int

    @property
    def executable(self) -> bool:
        return bool(self.flags & SectionFlags.EXECINSTR)

    @property
    def nobits(self) -> bool:
        return self.type == SectionType.NOBITS


@dataclass(frozen=True, slots=True)
class Symbol:
    """One symbol table entry. ``section_index`` is ``st_shndx`` (extended indexes resolved)."""

    index: int
    name: str
    value: int
    size: int
    type: int
    binding: int
    visibility: int
    section_index: int

    @property
    def undefined(self) -> bool:
        return self.section_index == SHN_UNDEF


@dataclass(frozen=True, slots=True)
class Relocation:
    """One REL/RELA entry: at ``offset`` in the target section, against symbol ``symbol``
    (an index into the linked symbol table), of type ``type``. ``addend`` is 0 for REL."""

    offset: int
    symbol: int
    type: int
    addend: int


class ELFFile:
    """An ELF file parsed from bytes. Section contents are sliced lazily."""

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self.data = bytes(data)
        d = self.data
        if len(d) < 16 or d[:4] != b"\x7fELF":
            raise ParseError("not an ELF file (bad magic)", 0)
        if d[4] == 1:
            self.bits = 32
        elif d[4] == 2:
            self.bits = 64
        else:
            raise ParseError(f"bad ELF class {d[4]}", 4)
        if d[5] == 1:
            self.byteorder = "<"
        elif d[5] == 2:
            self.byteorder = ">"
        else:
            raise ParseError(f"bad ELF data encoding {d[5]}", 5)
        key = (self.byteorder, self.bits)
        self._key = key
        hdr = self._unpack(_EHDR[key], 16, "ELF header")
        (self.e_type, self.machine, self.version, _entry, _phoff, shoff, self.e_flags,
         _ehsize, _phentsize, _phnum, shentsize, shnum, shstrndx) = hdr
        if shoff == 0:
            self.sections: tuple[Section, ...] = ()
            return
        shdr = _SHDR[key]
        if shentsize != shdr.size:
            raise ParseError(f"section header entry size {shentsize}, expected {shdr.size}",
                             16 + _EHDR[key].size - 8)
        raw_first = self._unpack(shdr, shoff, "section header 0")
        if shnum == 0:  # more than SHN_LORESERVE sections: the count is in section 0
            shnum = raw_first[5]
        if shstrndx == SHN_XINDEX:
            shstrndx = raw_first[7]
        if shnum * shdr.size > len(d) - shoff:
            raise ParseError(f"{shnum} section headers do not fit in the file", shoff)
        raws = [self._unpack(shdr, shoff + i * shdr.size, f"section header {i}")
                for i in range(shnum)]
        names_data = b""
        if shstrndx:
            if shstrndx >= shnum:
                raise ParseError(f"section name table index {shstrndx} out of range", shoff)
            r = raws[shstrndx]
            names_data = self._slice(r[4], r[5], "section name table")
        secs: list[Section] = []
        for i, r in enumerate(raws):
            name = _cstr(names_data, r[0], "section name", shoff + i * shdr.size) if i else ""
            secs.append(Section(i, name, r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9]))
        self.sections = tuple(secs)

    # --- low level --------------------------------------------------------------------------
    def _unpack(self, st: struct.Struct, off: int, what: str) -> tuple[int, ...]:
        if off < 0 or off + st.size > len(self.data):
            raise ParseError(f"truncated {what}", off)
        return st.unpack_from(self.data, off)

    def _slice(self, off: int, size: int, what: str) -> bytes:
        if off < 0 or size < 0 or off + size > len(self.data):
            raise ParseError(f"{what} ({size} bytes) extends past the end of the file", off)
        return self.data[off:off + size]

    # --- sections ---------------------------------------------------------------------------
    def section(self, name_or_index: str | int) -> Section:
        """A section by name (first match) or index; :class:`KeyError` if absent."""
        if isinstance(name_or_index, int):
            if 0 <= name_or_index < len(self.sections):
                return self.sections[name_or_index]
            raise KeyError(name_or_index)
        for s in self.sections:
            if s.name == name_or_index:
                return s
        raise KeyError(name_or_index)

    def get_section(self, name: str) -> Section | None:
        for s in self.sections:
            if s.name == name:
                return s
        return None

    def section_data(self, sec: Section) -> bytes:
        """Contents of a section (zeros for ``SHT_NOBITS``, which has none in the file)."""
        if sec.nobits:
            if sec.size > 1 << 31:
                raise ParseError(f"section {sec.name!r} is implausibly large", sec.offset)
            return bytes(sec.size)
        return self._slice(sec.offset, sec.size, f"section {sec.name!r}")

    # --- symbols ----------------------------------------------------------------------------
    @cached_property
    def symtab(self) -> Section | None:
        for s in self.sections:
            if s.type == SectionType.SYMTAB:
                return s
        return None

    def symbols(self, symtab: Section | None = None) -> tuple[Symbol, ...]:
        """Entries of ``symtab`` (default: the ``SHT_SYMTAB`` section); empty if there is none."""
        if symtab is None:
            if self.symtab is None:
                return ()
            if not hasattr(self, "_symbols"):
                self._symbols = self._read_symbols(self.symtab)
            return self._symbols
        return self._read_symbols(symtab)

    def _read_symbols(self, symtab: Section) -> tuple[Symbol, ...]:
        st = _SYM[self._key]
        data = self.section_data(symtab)
        if symtab.link >= len(self.sections):
            raise ParseError(f"symbol table links to missing section {symtab.link}",
                             symtab.offset)
        strs = self.section_data(self.sections[symtab.link])
        shndx_data: bytes | None = None
        for s in self.sections:
            if s.type == SectionType.SYMTAB_SHNDX and s.link == symtab.index:
                shndx_data = self.section_data(s)
        out: list[Symbol] = []
        n = len(data) // st.size
        for i in range(n):
            if self.bits == 64:
                name_off, info, other, shndx, value, size = st.unpack_from(data, i * st.size)
            else:
                name_off, value, size, info, other, shndx = st.unpack_from(data, i * st.size)
            if shndx == SHN_XINDEX and shndx_data is not None:
                at = i * 4
                if at + 4 > len(shndx_data):
                    raise ParseError("truncated SHT_SYMTAB_SHNDX", symtab.offset)
                shndx = struct.unpack_from(self.byteorder + "I", shndx_data, at)[0]
            name = _cstr(strs, name_off, "symbol name", symtab.offset + i * st.size)
            out.append(Symbol(i, name, value, size, info & 0xF, info >> 4, other & 0x3, shndx))
        return tuple(out)

    # --- relocations ------------------------------------------------------------------------
    def relocations(self, sec: Section) -> tuple[Relocation, ...]:
        """Entries of a ``SHT_REL`` or ``SHT_RELA`` section."""
        if sec.type == SectionType.REL:
            st = _REL[self._key]
        elif sec.type == SectionType.RELA:
            st = _RELA[self._key]
        else:
            raise ValueError(f"section {sec.name!r} is not a relocation section")
        data = self.section_data(sec)
        shift, mask = (32, 0xFFFFFFFF) if self.bits == 64 else (8, 0xFF)
        out: list[Relocation] = []
        for i in range(len(data) // st.size):
            rec = st.unpack_from(data, i * st.size)
            info = rec[1]
            out.append(Relocation(rec[0], info >> shift, info & mask,
                                  rec[2] if len(rec) > 2 else 0))
        return tuple(out)

    def relocation_sections(self) -> dict[int, Section]:
        """``{target section index: its REL/RELA section}``."""
        out: dict[int, Section] = {}
        for s in self.sections:
            if s.type in (SectionType.REL, SectionType.RELA):
                out[s.info] = s
        return out


def _cstr(data: bytes, off: int, what: str, at: int) -> str:
    if off == 0 and not data:
        return ""
    if off < 0 or off >= len(data):
        raise ParseError(f"{what} offset {off} outside the string table", at)
    end = data.find(b"\0", off)
    if end < 0:
        raise ParseError(f"{what} at {off} is not NUL-terminated", at)
    try:
        return data[off:end].decode()
    except UnicodeDecodeError:
        raise ParseError(f"{what} at {off} is not UTF-8", at) from None
