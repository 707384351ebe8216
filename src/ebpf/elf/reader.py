"""The package's one ELF reader: header, program headers, sections, symbols (``.symtab`` and
``.dynsym`` with GNU symbol versions), REL/RELA relocations and notes.

ELF32 and ELF64, little and big endian, read from bytes or from a read-only mmap of a file
(:meth:`ELFFile.open`: big files such as libc are never read whole). Every offset and size read
from the file is checked against it, and malformed input raises
:class:`~ebpf.errors.ParseError` with the offset where it went wrong (never ``IndexError``,
``struct.error`` or ``UnicodeDecodeError``).

::

    elf = ELFFile(open("prog.o", "rb").read())
    for sec in elf.sections: print(sec.name, sec.type, sec.size)
    syms = elf.symbols()                       # .symtab
    rels = elf.relocations(elf.section(".relxdp"))

    with ELFFile.open("/lib/x86_64-linux-gnu/libc.so.6", name_errors="replace") as libc:
        libc.address_to_offset(libc.symbols(libc.section(".dynsym"))[1].value)

:mod:`ebpf._elfsym` builds the uprobe/USDT layer (symbol lookup, stapsdt probes) on this.
"""

from __future__ import annotations

import enum
import mmap
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import repeat
from operator import and_, attrgetter, getitem, rshift
from types import TracebackType
from typing import (
    TYPE_CHECKING,
    Literal,
    NamedTuple,
    cast,
)

from .._records import Record
from ..errors import ParseError

__all__ = [
    "EM_BPF",
    "ELFFile",
    "Header",
    "Note",
    "Relocation",
    "Section",
    "SectionFlags",
    "SectionType",
    "Segment",
    "Symbol",
    "SymbolBinding",
    "SymbolType",
]

EM_BPF = 247
ELFCLASS32, ELFCLASS64 = 1, 2
ELFDATA2LSB, ELFDATA2MSB = 1, 2
ET_EXEC, ET_DYN = 2, 3
PT_LOAD = 1
PF_X = 1
PN_XNUM = 0xFFFF
SHN_UNDEF = 0
SHN_LORESERVE = 0xFF00
SHN_ABS = 0xFFF1
SHN_COMMON = 0xFFF2
SHN_XINDEX = 0xFFFF
#: Largest ``SHT_NOBITS`` section accepted: INT_MAX, the kernel's limit for the value size of
#: an array map (``array_map_alloc_check``), which is what a ``.bss`` becomes.
MAX_NOBITS = 0x7FFF_FFFF


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
    GNU_VERDEF = 0x6FFFFFFD
    GNU_VERSYM = 0x6FFFFFFF


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
    GNU_UNIQUE = 10


class SymbolType(enum.IntEnum):
    """``ST_TYPE`` of ``st_info``."""

    NOTYPE = 0
    OBJECT = 1
    FUNC = 2
    SECTION = 3
    FILE = 4
    COMMON = 5
    TLS = 6
    GNU_IFUNC = 10


_VERSYM_HIDDEN = 0x8000


def _records(fmt32: str, fmt64: str) -> dict[tuple[str, int], struct.Struct]:
    return {(bo, bits): struct.Struct(bo + (fmt32 if bits == 32 else fmt64))
            for bo in "<>" for bits in (32, 64)}


# Records per (byte order, class): ELF header after e_ident, program header, section header,
# symbol, REL, RELA. ELF32 Sym: name, value, size, info, other, shndx; ELF64: name, info,
# other, shndx, value, size. ELF32 Phdr has p_flags after p_memsz, ELF64 after p_type.
_EHDR = _records("HHIIIIIHHHHHH", "HHIQQQIHHHHHH")
_PHDR = _records("IIIIIIII", "IIQQQQQQ")
_SHDR = _records("IIIIIIIIII", "IIQQQQIIQQ")
_SYM = _records("IIIBBH", "IBBHQQ")
_REL = _records("II", "QQ")
_RELA = _records("IIi", "QQq")
# Per byte order: note header, Elf_Verdef, Elf_Verdaux.
_NHDR = {bo: struct.Struct(bo + "III") for bo in "<>"}
_VERDEF = {bo: struct.Struct(bo + "HHHHIII") for bo in "<>"}
_VERDAUX = {bo: struct.Struct(bo + "II") for bo in "<>"}

_Buffer = bytes | mmap.mmap
NameErrors = Literal["strict", "replace"]


@dataclass(frozen=True, slots=True)
class Header:
    """The ELF header (``ElfN_Ehdr``), counts as stored (before extended numbering)."""

    elf_class: int  #: 32 or 64
    byte_order: str  #: ``"<"`` (little endian) or ``">"``
    type: int  #: ``e_type`` (``ET_REL`` 1, ``ET_EXEC`` 2, ``ET_DYN`` 3, ...)
    machine: int  #: ``e_machine`` (62 x86-64, 183 AArch64, 247 BPF, ...)
    entry: int
    phoff: int
    shoff: int
    phentsize: int
    phnum: int
    shentsize: int
    shnum: int
    shstrndx: int
    version: int = 1
    flags: int = 0


_tn = tuple.__new__
_NAME = attrgetter("name")
#: ``st_info`` -> ``ST_TYPE``, ``ST_BIND``; ``st_other`` -> ``ST_VISIBILITY`` (per byte)
_LOW4 = bytes(b & 0xF for b in range(256))
_HIGH4 = bytes(b >> 4 for b in range(256))
_LOW2 = bytes(b & 0x3 for b in range(256))


class Segment(Record):
    """A program header (``ElfN_Phdr``)."""

    __slots__ = ()
    _fields = ("type", "flags", "offset", "vaddr", "filesz", "memsz")
    if TYPE_CHECKING:
        type: int
        flags: int
        offset: int
        vaddr: int
        filesz: int
        memsz: int

        def __new__(cls, type: int, flags: int, offset: int, vaddr: int, filesz: int,
                    memsz: int) -> Segment: ...

    @property
    def executable(self) -> bool:
        return bool(self.flags & PF_X)

    def contains(self, vaddr: int) -> bool:
        return self.vaddr <= vaddr < self.vaddr + max(self.memsz, self.filesz)


class Section(Record):
    """One section header. ``index`` is its position in the section header table."""

    __slots__ = ()
    _fields = ("index", "name", "type", "flags", "addr", "offset", "size", "link", "info",
               "addralign", "entsize")
    if TYPE_CHECKING:
        index: int  # type: ignore[assignment]  # a field, not tuple.index
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

        def __new__(cls, index: int, name: str, type: int, flags: int, addr: int,
                    offset: int, size: int, link: int, info: int, addralign: int,
                    entsize: int) -> Section: ...

    @property
    def executable(self) -> bool:
        return bool(self.flags & 0x4)  # SHF_EXECINSTR (an int test: IntFlag's & is slow)

    @property
    def nobits(self) -> bool:
        return self.type == 8  # SHT_NOBITS


class Symbol(Record):
    """One symbol table entry. ``section_index`` is ``st_shndx`` (extended indexes resolved).

    ``table`` names the symbol table it came from (``".symtab"``, ``".dynsym"``). ``version`` is
    the GNU symbol version (``"GLIBC_2.2.5"``) of a versioned dynamic symbol;
    ``hidden_version`` is true for a non-default version (``name@VER`` rather than
    ``name@@VER``).
    """

    __slots__ = ()
    _fields = ("index", "name", "value", "size", "type", "binding", "visibility",
               "section_index", "table", "version", "hidden_version")
    _defaults = ("", None, False)
    if TYPE_CHECKING:
        index: int  # type: ignore[assignment]  # a field, not tuple.index
        name: str
        value: int
        size: int
        type: int
        binding: int
        visibility: int
        section_index: int
        table: str
        version: str | None
        hidden_version: bool

        def __new__(cls, index: int, name: str, value: int, size: int, type: int,
                    binding: int, visibility: int, section_index: int, table: str = "",
                    version: str | None = None, hidden_version: bool = False) -> Symbol: ...

    @property
    def undefined(self) -> bool:
        return self.section_index == SHN_UNDEF

    @property
    def defined(self) -> bool:
        return self.section_index != SHN_UNDEF

    @property
    def shndx(self) -> int:
        return self.section_index

    @property
    def is_function(self) -> bool:
        return self.type in (SymbolType.FUNC, SymbolType.GNU_IFUNC)


class Relocation(Record):
    """One REL/RELA entry: at ``offset`` in the target section, against symbol ``symbol``
    (an index into the linked symbol table), of type ``type``. ``addend`` is 0 for REL."""

    __slots__ = ()
    _fields = ("offset", "symbol", "type", "addend")
    if TYPE_CHECKING:
        offset: int
        symbol: int
        type: int
        addend: int

        def __new__(cls, offset: int, symbol: int, type: int, addend: int) -> Relocation: ...


class Note(NamedTuple):
    """One entry of a note section: owner ``name``, ``type``, descriptor bytes and the file
    offset of the descriptor."""

    name: str
    type: int
    desc: bytes
    offset: int


#: ``sh_type``/``st_type`` values as plain ints for the hot loops (an IntEnum
#: member lookup and comparison costs several times an int's).
_SHT_DYNSYM = 11
_SHT_REL = 9
_SHT_RELA = 4
_SHT_SYMTAB = 2
_SHT_SYMTAB_SHNDX = 18


class ELFFile:
    """An ELF file parsed from bytes or a read-only mmap (:meth:`open`).

    The header, section headers and program headers are parsed at construction; section
    contents are sliced on demand, so a mapped file is only read where it is used.
    ``name_errors`` says what a section, symbol or version name that is not UTF-8 does:
    ``"strict"`` raises :class:`~ebpf.errors.ParseError`, ``"replace"`` decodes it with
    U+FFFD (for arbitrary binaries, where one odd name must not hide the others).
    """

    def __init__(self, data: bytes | bytearray | memoryview | mmap.mmap, path: str = "", *,
                 name_errors: NameErrors = "strict") -> None:
        self.data: _Buffer = data if isinstance(data, mmap.mmap) else bytes(data)
        self.path = path
        #: section offset -> contents, for a file in memory (a mapped one is sliced anew)
        self._contents: dict[int, bytes] = {}
        self._keep_contents = not isinstance(data, mmap.mmap)
        self._name_errors: NameErrors = name_errors
        self._by_name: dict[str, Section] | None = None
        #: ``sh_type`` of each section, in order
        self._sh_types: tuple[int, ...] = ()
        d = self.data
        if len(d) < 16:
            raise ParseError(f"not an ELF file: too short ({len(d)} bytes) for the magic and "
                             "e_ident", 0)
        if d[:4] != b"\x7fELF":
            raise ParseError("not an ELF file (bad magic)", 0)
        if d[4] not in (ELFCLASS32, ELFCLASS64):
            raise ParseError(f"bad ELF class {d[4]}", 4)
        if d[5] not in (ELFDATA2LSB, ELFDATA2MSB):
            raise ParseError(f"bad ELF data encoding {d[5]}", 5)
        self.bits = 64 if d[4] == ELFCLASS64 else 32
        self.byteorder = "<" if d[5] == ELFDATA2LSB else ">"
        key = (self.byteorder, self.bits)
        self._key = key
        (self.e_type, self.machine, self.version, entry, phoff, shoff, self.e_flags, _ehsize,
         phentsize, phnum, shentsize, shnum, shstrndx) = self._unpack(_EHDR[key], 16,
                                                                      "ELF header")
        self.header = Header(self.bits, self.byteorder, self.e_type, self.machine, entry, phoff,
                             shoff, phentsize, phnum, shentsize, shnum, shstrndx, self.version,
                             self.e_flags)
        self.sections: tuple[Section, ...] = self._parse_sections()
        self.segments: tuple[Segment, ...] = self._parse_segments()

    @classmethod
    def open(cls, path: str | os.PathLike[str], *,
             name_errors: NameErrors = "strict") -> ELFFile:
        """Map the file at ``path`` read-only; use as a context manager or call :meth:`close`."""
        p = os.fspath(path)
        with open(p, "rb") as f:
            if os.fstat(f.fileno()).st_size == 0:
                raise ParseError(f"{p}: empty file", 0)
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            return cls(mm, p, name_errors=name_errors)
        except BaseException:
            mm.close()
            raise

    def close(self) -> None:
        """Unmap the file (idempotent; a no-op for an in-memory file)."""
        if isinstance(self.data, mmap.mmap):
            self.data.close()

    def __enter__(self) -> ELFFile:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _parse_sections(self) -> tuple[Section, ...]:
        h = self.header
        if h.shoff == 0:
            return ()
        shdr = _SHDR[self._key]
        if h.shentsize < shdr.size:
            raise ParseError(f"section header entry size {h.shentsize}, expected {shdr.size}",
                             16 + _EHDR[self._key].size - 8)
        shnum, shstrndx = h.shnum, h.shstrndx
        raw_first = self._unpack(shdr, h.shoff, "section header 0")
        if shnum == 0:  # SHN_LORESERVE sections or more: the count is in section 0's sh_size
            shnum = raw_first[5]
        if shstrndx == SHN_XINDEX:  # ... and the name table index in its sh_link
            shstrndx = raw_first[6]
        if shnum > (len(self.data) - h.shoff) // h.shentsize:
            raise ParseError(f"{shnum} section headers do not fit in the file", h.shoff)
        raws: list[tuple[int, ...]]
        if h.shentsize == shdr.size and h.shoff + shnum * shdr.size <= len(self.data):
            # all of them in one pass (checked to fit just above)
            raws = list(shdr.iter_unpack(self.data[h.shoff:h.shoff + shnum * shdr.size]))
        else:
            raws = [self._unpack(shdr, h.shoff + i * h.shentsize, f"section header {i}")
                    for i in range(shnum)]
        names_data = b""
        if shstrndx:
            if shstrndx >= shnum:
                raise ParseError(f"section name table index {shstrndx} out of range", h.shoff)
            r = raws[shstrndx]
            names_data = self._slice(r[4], r[5], "section name table")
        if not raws:
            return ()
        columns = list(zip(*raws, strict=True))  # sh_name, sh_type, ...: one tuple each
        name_offs = list(columns[0])
        name_offs[0] = 0  # section 0 has no name
        names = self._cstrs(names_data, name_offs, "section name", h.shoff, h.shentsize)
        names[0] = ""
        self._sh_types = columns[1]
        return tuple(map(_tn, repeat(Section), zip(range(shnum), names, *columns[1:],
                                                   strict=True)))

    def _parse_segments(self) -> tuple[Segment, ...]:
        h = self.header
        phnum = h.phnum
        if h.phoff == 0 or phnum == 0:
            return ()
        if phnum == PN_XNUM and self.sections:  # extended numbering: in section 0's sh_info
            phnum = self.sections[0].info
        st = _PHDR[self._key]
        if h.phentsize < st.size:
            raise ParseError(f"program header entry size {h.phentsize} too small",
                             16 + _EHDR[self._key].size - 10)
        if phnum > (len(self.data) - h.phoff) // h.phentsize:
            raise ParseError(f"{phnum} program headers do not fit in the file", h.phoff)
        out = []
        for i in range(phnum):
            v = self._unpack(st, h.phoff + i * h.phentsize, f"program header {i}")
            if self.bits == 64:
                p_type, p_flags, p_offset, p_vaddr, _paddr, p_filesz, p_memsz, _align = v
            else:
                p_type, p_offset, p_vaddr, _paddr, p_filesz, p_memsz, p_flags, _align = v
            out.append(Segment(p_type, p_flags, p_offset, p_vaddr, p_filesz, p_memsz))
        return tuple(out)

    # --- low level --------------------------------------------------------------------------
    def _unpack(self, st: struct.Struct, off: int, what: str) -> tuple[int, ...]:
        if off < 0 or off + st.size > len(self.data):
            raise ParseError(f"truncated {what}", off)
        return st.unpack_from(self.data, off)

    def _slice(self, off: int, size: int, what: str) -> bytes:
        if off < 0 or size < 0 or off + size > len(self.data):
            raise ParseError(f"{what} ({size} bytes) extends past the end of the file", off)
        return self.data[off:off + size]

    def _cstr(self, data: bytes, off: int, what: str, at: int) -> str:
        if off == 0 and not data:
            return ""
        if off < 0 or off >= len(data):
            raise ParseError(f"{what} offset {off} outside the string table", at)
        end = data.find(b"\0", off)
        if end < 0:
            raise ParseError(f"{what} at {off} is not NUL-terminated", at)
        try:
            return data[off:end].decode("utf-8", self._name_errors)
        except UnicodeDecodeError:
            raise ParseError(f"{what} at {off} is not UTF-8", at) from None

    def _cstrs(self, data: bytes, offs: list[int], what: str, at: int, stride: int
               ) -> list[str]:
        """The NUL-terminated strings at ``offs`` in ``data`` (entry ``i`` was read from file
        offset ``at + i * stride``), cut and decoded together; a bad one is found (and
        reported as :meth:`_cstr` does) one by one."""
        if data and offs and max(offs) < len(data):
            if data.isascii():  # cut from the decoded table: str offsets are byte offsets
                text = data.decode("ascii")
                end = text.index
                try:
                    return [text[off:end("\0", off)] for off in offs]
                except ValueError:  # one without its NUL: reported below
                    pass
            else:
                ends = list(map(data.find, repeat(b"\0"), offs))
                if min(ends) >= 0:
                    pieces = cast("Iterator[bytes]",
                                  map(getitem, repeat(data), map(slice, offs, ends)))
                    try:
                        return list(map(bytes.decode, pieces, repeat("utf-8"),
                                        repeat(self._name_errors)))
                    except UnicodeDecodeError:
                        pass
        return [self._cstr(data, off, what, at + i * stride) for i, off in enumerate(offs)]

    def _table(self, sec: Section) -> bytes:
        """Contents of a table section (symbols, strings, versions, notes): none if NOBITS."""
        return b"" if sec.nobits else self.section_data(sec)

    # --- sections ---------------------------------------------------------------------------
    def section(self, name_or_index: str | int) -> Section:
        """A section by name (first match) or index; :class:`KeyError` if absent."""
        if isinstance(name_or_index, int):
            if 0 <= name_or_index < len(self.sections):
                return self.sections[name_or_index]
            raise KeyError(name_or_index)
        sec = self.get_section(name_or_index)
        if sec is None:
            raise KeyError(name_or_index)
        return sec

    def get_section(self, name: str) -> Section | None:
        """The first section called ``name``, or ``None``."""
        return self._sections_by_name.get(name)

    @property
    def _sections_by_name(self) -> dict[str, Section]:
        by_name = self._by_name
        if by_name is None:  # the first of several of a name wins
            secs = self.sections[::-1]
            by_name = self._by_name = dict(zip(map(_NAME, secs), secs, strict=True))
        return by_name

    def section_data(self, sec: Section) -> bytes:
        """Contents of a section as stored in the file.

        A ``SHT_NOBITS`` section (``.bss``) occupies no file space: its contents are
        ``sec.size`` zero bytes that are never materialised here, so this returns ``b""``
        (a 6 KB object claiming a 2 GiB ``.bss`` costs nothing to parse; whoever needs the
        zeros, e.g. a map the kernel zero-fills, pads to ``sec.size``). A ``SHT_NOBITS`` size
        above :data:`MAX_NOBITS` raises :class:`~ebpf.errors.ParseError` naming the section.
        """
        if sec.type == 8:  # SHT_NOBITS (an int test: no property call)
            if sec.size > MAX_NOBITS:
                raise ParseError(
                    f"section {sec.name!r}: SHT_NOBITS size {sec.size:#x} is more than "
                    f"{MAX_NOBITS:#x} bytes, the most a global-data map can hold (the kernel "
                    "refuses an array value_size above INT_MAX with E2BIG)", sec.offset)
            return b""
        off, size = sec.offset, sec.size
        cache = self._contents
        data = cache.get(off)
        if data is None or len(data) != size:
            if off < 0 or size < 0 or off + size > len(self.data):
                raise ParseError(f"section {sec.name!r} ({size} bytes) extends past the end of "
                                 "the file", off)
            data = self.data[off:off + size]
            if self._keep_contents:  # an in-memory file: keep the copy for the next caller
                cache[off] = data
        return data

    # --- addresses --------------------------------------------------------------------------
    def address_to_offset(self, vaddr: int, *, executable: bool | None = None) -> int:
        """File offset of virtual address ``vaddr``, through the ``PT_LOAD`` that maps it.

        ``executable`` restricts the search to code (True) or data (False) segments. Files
        without program headers fall back to the section headers. Raises
        :class:`~ebpf.errors.ParseError` (a :class:`ValueError`) when nothing maps it.
        """
        for seg in self.segments:
            if seg.type != PT_LOAD or not seg.contains(vaddr):
                continue
            if executable is not None and seg.executable != executable:
                continue
            return vaddr - seg.vaddr + seg.offset
        for sec in self.sections:
            if sec.addr and not sec.nobits and sec.addr <= vaddr < sec.addr + sec.size:
                return vaddr - sec.addr + sec.offset
        raise ParseError(f"address {vaddr:#x} is not in any loadable segment of "
                         f"{self.path or 'the ELF file'}")

    # --- symbols ----------------------------------------------------------------------------
    @property
    def symtab(self) -> Section | None:
        """The first ``SHT_SYMTAB`` section, or ``None``."""
        types = self._sh_types
        return self.sections[types.index(_SHT_SYMTAB)] if _SHT_SYMTAB in types else None

    def symbols(self, symtab: Section | None = None) -> tuple[Symbol, ...]:
        """Entries of ``symtab`` (default: the ``SHT_SYMTAB`` section); empty if there is none.

        Entry 0 (the null symbol) is included, so a relocation's symbol index indexes the
        result. Symbols of a ``SHT_DYNSYM`` table carry their GNU versions.
        """
        if symtab is None:
            if self.symtab is None:
                return ()
            if not hasattr(self, "_symbols"):
                self._symbols = self._read_symbols(self.symtab)
            return self._symbols
        return self._read_symbols(symtab)

    def _read_symbols(self, symtab: Section) -> tuple[Symbol, ...]:
        st = _SYM[self._key]
        entsize = symtab.entsize or st.size
        if entsize < st.size:
            raise ParseError(f"{symtab.name}: entry size {entsize} too small", symtab.offset)
        data = self._table(symtab)
        if symtab.link >= len(self.sections):
            raise ParseError(f"symbol table links to missing section {symtab.link}",
                             symtab.offset)
        strs = self._table(self.sections[symtab.link])
        shndx_data: bytes | None = None
        if _SHT_SYMTAB_SHNDX in self._sh_types:
            for s in self.sections:
                if s.type == _SHT_SYMTAB_SHNDX and s.link == symtab.index:
                    shndx_data = self._table(s)
        versions = self._versions(symtab) if symtab.type == _SHT_DYNSYM else None
        out: list[Symbol] = []
        count = len(data) // entsize
        entries: Iterable[tuple[int, ...]]
        if entsize == st.size:
            entries = st.iter_unpack(memoryview(data)[:count * entsize])
            if versions is None and count:
                fast = self._plain_symbols(list(entries), strs, symtab, shndx_data)
                if fast is not None:
                    return fast
                entries = st.iter_unpack(memoryview(data)[:count * entsize])
        else:
            entries = (st.unpack_from(data, i * entsize) for i in range(count))
        for i, entry in enumerate(entries):
            if self.bits == 64:
                name_off, info, other, shndx, value, size = entry
            else:
                name_off, value, size, info, other, shndx = entry
            if shndx == SHN_XINDEX and shndx_data is not None:
                at = i * 4
                if at + 4 > len(shndx_data):
                    raise ParseError("truncated SHT_SYMTAB_SHNDX", symtab.offset)
                shndx = struct.unpack_from(self.byteorder + "I", shndx_data, at)[0]
            name = self._cstr(strs, name_off, "symbol name", symtab.offset + i * entsize)
            version, hidden = None, False
            if versions is not None and i < len(versions[0]):
                vi = versions[0][i]
                hidden = bool(vi & _VERSYM_HIDDEN)
                version = versions[1].get(vi & ~_VERSYM_HIDDEN)
            out.append(Symbol(i, name, value, size, info & 0xF, info >> 4, other & 0x3, shndx,
                              symtab.name, version, hidden))
        return tuple(out)

    def _plain_symbols(self, entries: list[tuple[int, ...]], strs: bytes, symtab: Section,
                       shndx_data: bytes | None) -> tuple[Symbol, ...] | None:
        """Symbols without versions, column by column in C; ``None`` when one needs an
        extended section index (then :meth:`_read_symbols` goes entry by entry)."""
        if self.bits == 64:
            name_off, info, other, shndx, value, size = zip(*entries, strict=True)
        else:
            name_off, value, size, info, other, shndx = zip(*entries, strict=True)
        if shndx_data is not None and SHN_XINDEX in shndx:
            return None
        names = self._cstrs(strs, list(name_off), "symbol name", symtab.offset,
                            symtab.entsize or _SYM[self._key].size)
        infos = bytes(info)  # st_info and st_other are bytes: split by translation tables
        fields = zip(range(len(entries)), names, value, size, infos.translate(_LOW4),
                     infos.translate(_HIGH4), bytes(other).translate(_LOW2), shndx,
                     repeat(symtab.name), repeat(None), repeat(False), strict=False)
        return tuple(map(_tn, repeat(Symbol), fields))

    def _versions(self, dynsym: Section) -> tuple[tuple[int, ...], dict[int, str]] | None:
        """(``.gnu.version`` index per dynamic symbol, version index -> name), or None."""
        versym = next((s for s in self.sections if s.type == SectionType.GNU_VERSYM), None)
        if versym is None or versym.link != dynsym.index:
            return None
        raw = self._table(versym)
        idx = struct.unpack_from(f"{self.byteorder}{len(raw) // 2}H", raw)
        names: dict[int, str] = {}
        verdef = next((s for s in self.sections if s.type == SectionType.GNU_VERDEF), None)
        if verdef is not None and 0 < verdef.link < len(self.sections):
            data = self._table(verdef)
            strs = self._table(self.sections[verdef.link])
            vd, va = _VERDEF[self.byteorder], _VERDAUX[self.byteorder]
            off = 0
            for _ in range(verdef.info or 1 << 16):
                if off + vd.size > len(data):
                    break
                _v, _flags, ndx, cnt, _hash, aux, nxt = vd.unpack_from(data, off)
                if cnt:
                    if off + aux + va.size > len(data):
                        raise ParseError("truncated Elf_Verdaux", verdef.offset + off)
                    name_off = va.unpack_from(data, off + aux)[0]
                    names[ndx] = self._cstr(strs, name_off, "version name", verdef.offset + off)
                if not nxt:
                    break
                off += nxt
        return idx, names

    # --- relocations ------------------------------------------------------------------------
    def relocations(self, sec: Section) -> tuple[Relocation, ...]:
        """Entries of a ``SHT_REL`` or ``SHT_RELA`` section."""
        if sec.type == _SHT_REL:
            st = _REL[self._key]
        elif sec.type == _SHT_RELA:
            st = _RELA[self._key]
        else:
            raise ValueError(f"section {sec.name!r} is not a relocation section")
        data = self.section_data(sec)
        shift, mask = (32, 0xFFFFFFFF) if self.bits == 64 else (8, 0xFF)
        count = len(data) // st.size
        if not count:
            return ()
        columns = zip(*st.iter_unpack(memoryview(data)[:count * st.size]), strict=True)
        offset, info, *addend = columns
        fields = zip(offset, map(rshift, info, repeat(shift)), map(and_, info, repeat(mask)),
                     addend[0] if addend else repeat(0), strict=False)
        return tuple(map(_tn, repeat(Relocation), fields))

    def relocation_sections(self) -> dict[int, Section]:
        """``{target section index: its REL/RELA section}``."""
        out: dict[int, Section] = {}
        for s in self.sections:
            if s.type in (_SHT_REL, _SHT_RELA):
                out[s.info] = s
        return out

    # --- notes ------------------------------------------------------------------------------
    def notes(self, section: Section | str) -> Iterator[Note]:
        """Entries of a note section (none if there is no such section or it is NOBITS)."""
        sec = self.get_section(section) if isinstance(section, str) else section
        if sec is None:
            return
        data = self._table(sec)
        nh = _NHDR[self.byteorder]
        off = 0
        while off + nh.size <= len(data):
            namesz, descsz, ntype = nh.unpack_from(data, off)
            name_at = off + nh.size
            desc_at = name_at + ((namesz + 3) & ~3)
            if desc_at + descsz > len(data):
                raise ParseError(f"{sec.name}: truncated note", sec.offset + off)
            owner = data[name_at:name_at + namesz].rstrip(b"\0").decode("utf-8", "replace")
            yield Note(owner, ntype, data[desc_at:desc_at + descsz], sec.offset + desc_at)
            off = desc_at + ((descsz + 3) & ~3)
