"""A small, pure ELF reader for what uprobes and USDT need: symbols, segments and notes.

Reads ELF32 and ELF64 of either byte order from bytes (or an mmap of a file): the header,
program headers, section headers, ``.symtab`` and ``.dynsym`` (with GNU symbol versions), and
``.note.stapsdt`` (USDT probes). It turns a symbol or a virtual address into the *file
offset* the kernel's uprobe interface wants: ``vaddr - PT_LOAD.p_vaddr + PT_LOAD.p_offset``.

Each on-disk record is a :class:`struct.Struct` per byte order and a frozen, slotted
dataclass (house style rule 2). Malformed input raises :class:`~ebpf.errors.ParseError` with
the offset where it went wrong; nothing here enters the kernel.

Example::

    with ElfFile.open("/lib/x86_64-linux-gnu/libc.so.6") as elf:
        off = elf.symbol_offset("malloc")          # file offset for attach_uprobe
        probes = elf.usdt_probes()                 # [] for libc
"""

from __future__ import annotations

import difflib
import enum
import mmap
import os
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType

from . import errors
from .errors import SymbolNotFoundError

__all__ = [
    "ElfFile",
    "ElfHeader",
    "Section",
    "Segment",
    "Symbol",
    "SymbolBinding",
    "SymbolNotFoundError",
    "SymbolType",
    "USDTArgument",
    "USDTProbe",
    "parse_usdt_arguments",
]

_Buffer = bytes | mmap.mmap

# --- constants (include/uapi/linux/elf.h) ---------------------------------------------------
_ELFMAG = b"\x7fELF"
ELFCLASS32, ELFCLASS64 = 1, 2
ELFDATA2LSB, ELFDATA2MSB = 1, 2
ET_EXEC, ET_DYN = 2, 3
PT_LOAD = 1
PF_X = 1
SHT_SYMTAB, SHT_NOTE, SHT_NOBITS, SHT_DYNSYM = 2, 7, 8, 11
SHT_GNU_VERDEF, SHT_GNU_VERSYM = 0x6FFFFFFD, 0x6FFFFFFF
SHN_UNDEF, SHN_LORESERVE, SHN_ABS, SHN_XINDEX = 0, 0xFF00, 0xFFF1, 0xFFFF
PN_XNUM = 0xFFFF
NT_STAPSDT = 3
_VERSYM_HIDDEN = 0x8000


class SymbolType(enum.IntEnum):
    """``STT_*``: the low nibble of ``st_info``."""

    NOTYPE = 0
    OBJECT = 1
    FUNC = 2
    SECTION = 3
    FILE = 4
    COMMON = 5
    TLS = 6
    GNU_IFUNC = 10


class SymbolBinding(enum.IntEnum):
    """``STB_*``: the high nibble of ``st_info``."""

    LOCAL = 0
    GLOBAL = 1
    WEAK = 2
    GNU_UNIQUE = 10


# --- records ---------------------------------------------------------------------------------
# (byte order, class) -> struct; "<"/">" and 32/64.
_IDENT = struct.Struct("4sBBBBB7x")
_EHDR = {
    (bo, 64): struct.Struct(bo + "HHIQQQIHHHHHH") for bo in "<>"
} | {(bo, 32): struct.Struct(bo + "HHIIIIIHHHHHH") for bo in "<>"}
_PHDR = {
    (bo, 64): struct.Struct(bo + "IIQQQQQQ") for bo in "<>"
} | {(bo, 32): struct.Struct(bo + "IIIIIIII") for bo in "<>"}
_SHDR = {
    (bo, 64): struct.Struct(bo + "IIQQQQIIQQ") for bo in "<>"
} | {(bo, 32): struct.Struct(bo + "IIIIIIIIII") for bo in "<>"}
_SYM = {
    (bo, 64): struct.Struct(bo + "IBBHQQ") for bo in "<>"
} | {(bo, 32): struct.Struct(bo + "IIIBBH") for bo in "<>"}
_NHDR = {bo: struct.Struct(bo + "III") for bo in "<>"}
_VERDEF = {bo: struct.Struct(bo + "HHHHIII") for bo in "<>"}
_VERDAUX = {bo: struct.Struct(bo + "II") for bo in "<>"}
_U16 = {bo: struct.Struct(bo + "H") for bo in "<>"}
_ADDR = {(bo, 64): struct.Struct(bo + "QQQ") for bo in "<>"} | {
    (bo, 32): struct.Struct(bo + "III") for bo in "<>"
}


@dataclass(frozen=True, slots=True)
class ElfHeader:
    """The parts of ``ElfN_Ehdr`` this reader uses."""

    elf_class: int  #: 32 or 64
    byte_order: str  #: ``"<"`` (little endian) or ``">"``
    type: int  #: ``e_type`` (``ET_EXEC`` 2, ``ET_DYN`` 3, ...)
    machine: int  #: ``e_machine`` (62 x86-64, 183 AArch64, ...)
    entry: int
    phoff: int
    shoff: int
    phentsize: int
    phnum: int
    shentsize: int
    shnum: int
    shstrndx: int


@dataclass(frozen=True, slots=True)
class Segment:
    """A program header (``ElfN_Phdr``)."""

    type: int
    flags: int
    offset: int
    vaddr: int
    filesz: int
    memsz: int

    @property
    def executable(self) -> bool:
        return bool(self.flags & PF_X)

    def contains(self, vaddr: int) -> bool:
        return self.vaddr <= vaddr < self.vaddr + max(self.memsz, self.filesz)


@dataclass(frozen=True, slots=True)
class Section:
    """A section header (``ElfN_Shdr``) with its resolved name."""

    index: int
    name: str
    type: int
    flags: int
    addr: int
    offset: int
    size: int
    link: int
    info: int
    entsize: int


@dataclass(frozen=True, slots=True)
class Symbol:
    """A symbol of ``.symtab`` or ``.dynsym``.

    ``version`` is the GNU symbol version (``"GLIBC_2.2.5"``) for versioned dynamic symbols;
    ``hidden_version`` is true for a non-default version (``name@VER`` rather than
    ``name@@VER``).
    """

    name: str
    value: int
    size: int
    type: SymbolType | int
    binding: SymbolBinding | int
    visibility: int
    shndx: int
    table: str  #: ``".symtab"`` or ``".dynsym"``
    version: str | None = None
    hidden_version: bool = False

    @property
    def defined(self) -> bool:
        return self.shndx != SHN_UNDEF

    @property
    def is_function(self) -> bool:
        return self.type in (SymbolType.FUNC, SymbolType.GNU_IFUNC)


@dataclass(frozen=True, slots=True)
class USDTArgument:
    """One argument of a USDT probe, parsed from the note's argument string.

    ``kind`` is ``"const"`` (``value``), ``"reg"`` (the value is in ``register``),
    ``"deref"`` (the value is at ``register + offset`` in the traced process's memory),
    ``"sib"`` (x86 ``offset(base, index, scale)``: ``register``, ``index_register``,
    ``scale``) or ``"unknown"`` (kept as ``text``). ``size`` is in bytes and ``signed`` tells
    whether the value must be sign extended.
    """

    size: int
    signed: bool
    kind: str
    register: str = ""
    offset: int = 0
    value: int = 0
    index_register: str = ""
    scale: int = 1
    text: str = ""


@dataclass(frozen=True, slots=True)
class USDTProbe:
    """One ``.note.stapsdt`` entry (a ``DTRACE_PROBE``/``STAP_PROBE`` site).

    ``address`` is the probe's virtual address after the prelink adjustment against
    ``.stapsdt.base``; ``offset`` is the file offset a uprobe attaches at.
    ``semaphore_address``/``semaphore_offset`` are 0 when the probe has no semaphore;
    otherwise the kernel increments the 16-bit counter at ``semaphore_offset`` (passed as
    ``ref_ctr_offset``) while a uprobe is attached.
    """

    provider: str
    name: str
    address: int
    offset: int
    base: int
    semaphore_address: int
    semaphore_offset: int
    args: str

    @property
    def arguments(self) -> tuple[USDTArgument, ...]:
        """The argument string parsed (see :func:`parse_usdt_arguments`)."""
        return parse_usdt_arguments(self.args)


def _cstr(data: _Buffer, off: int, limit: int | None = None) -> str:
    """The NUL-terminated string at ``off`` (``limit`` bounds the search)."""
    end = len(data) if limit is None else min(limit, len(data))
    if off < 0 or off >= end:
        raise errors.ParseError("string offset out of range", off)
    stop = data.find(b"\0", off, end)
    if stop < off:
        raise errors.ParseError("unterminated string", off)
    return bytes(data[off:stop]).decode("utf-8", "replace")


class ElfFile:
    """An ELF file held as bytes or a read-only mmap.

    Build it with :meth:`from_bytes` or :meth:`open` (a context manager that unmaps the file
    on exit). Parsing of the headers happens at construction; symbols and notes are parsed
    on first use and cached.
    """

    def __init__(self, data: _Buffer, path: str = "") -> None:
        self._data = data
        self.path = path
        self._mmap: mmap.mmap | None = data if isinstance(data, mmap.mmap) else None
        self.header = self._parse_header()
        bo, cls = self.header.byte_order, self.header.elf_class
        self._bo = bo
        self._cls = cls
        self.sections: tuple[Section, ...] = self._parse_sections()
        self.segments: tuple[Segment, ...] = self._parse_segments()
        self._symbols: dict[str, list[Symbol]] | None = None

    # --- construction -------------------------------------------------------------------
    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview, path: str = "") -> ElfFile:
        """Parse ELF data held in memory."""
        return cls(bytes(data), path)

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> ElfFile:
        """Map the file at ``path`` read-only; use as a context manager or call :meth:`close`."""
        p = os.fspath(path)
        with open(p, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                raise errors.ParseError(f"{p}: empty file", 0)
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            return cls(mm, p)
        except BaseException:
            mm.close()
            raise

    def close(self) -> None:
        """Unmap the file (idempotent; a no-op for :meth:`from_bytes`)."""
        if self._mmap is not None:
            self._mmap.close()
            self._mmap = None

    def __enter__(self) -> ElfFile:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ElfFile {self.path or '(bytes)'} ELF{self.header.elf_class}>"

    # --- headers ------------------------------------------------------------------------
    def _unpack(self, st: struct.Struct, off: int, what: str) -> tuple[int, ...]:
        if off < 0 or off + st.size > len(self._data):
            raise errors.ParseError(f"truncated {what}", off)
        return st.unpack_from(self._data, off)

    def _parse_header(self) -> ElfHeader:
        data = self._data
        if len(data) < _IDENT.size:
            raise errors.ParseError("not an ELF file: too short", 0)
        magic, ei_class, ei_data, _ver, _abi, _abiver = _IDENT.unpack_from(data, 0)
        if magic != _ELFMAG:
            raise errors.ParseError("not an ELF file: bad magic", 0)
        if ei_class not in (ELFCLASS32, ELFCLASS64):
            raise errors.ParseError(f"unknown ELF class {ei_class}", 4)
        if ei_data not in (ELFDATA2LSB, ELFDATA2MSB):
            raise errors.ParseError(f"unknown ELF data encoding {ei_data}", 5)
        bo = "<" if ei_data == ELFDATA2LSB else ">"
        cls = 64 if ei_class == ELFCLASS64 else 32
        (e_type, machine, _version, entry, phoff, shoff, _flags, _ehsize, phentsize, phnum,
         shentsize, shnum, shstrndx) = self._unpack(_EHDR[bo, cls], 16, "ELF header")
        return ElfHeader(cls, bo, e_type, machine, entry, phoff, shoff, phentsize, phnum,
                         shentsize, shnum, shstrndx)

    def _raw_section(self, index: int) -> tuple[int, ...]:
        h = self.header
        st = _SHDR[self._bo, self._cls]
        if h.shentsize < st.size:
            raise errors.ParseError(f"section header entry size {h.shentsize} too small", 0)
        return self._unpack(st, h.shoff + index * h.shentsize, "section header")

    def _parse_sections(self) -> tuple[Section, ...]:
        h = self.header
        if h.shoff == 0:
            return ()
        shnum, shstrndx = h.shnum, h.shstrndx
        if shnum == 0 or shstrndx == SHN_XINDEX:  # extended numbering lives in section 0
            first = self._raw_section(0)
            if shnum == 0:
                shnum = first[5]
            if shstrndx == SHN_XINDEX:
                shstrndx = first[6]
        if shnum > (len(self._data) - h.shoff) // max(h.shentsize, 1):
            raise errors.ParseError(f"{shnum} section headers do not fit in the file", h.shoff)
        raw = [self._raw_section(i) for i in range(shnum)]
        names_off = names_end = 0
        if 0 < shstrndx < shnum:
            names_off = raw[shstrndx][4]
            names_end = names_off + raw[shstrndx][5]
            if names_end > len(self._data):
                raise errors.ParseError("section name table out of range", names_off)
        out = []
        for i, (name, typ, flags, addr, off, size, link, info, _align, entsize) in enumerate(raw):
            nm = _cstr(self._data, names_off + name, names_end) if names_end else ""
            out.append(Section(i, nm, typ, flags, addr, off, size, link, info, entsize))
        return tuple(out)

    def _parse_segments(self) -> tuple[Segment, ...]:
        h = self.header
        if h.phoff == 0:
            return ()
        phnum = h.phnum
        if phnum == PN_XNUM and self.sections:
            phnum = self.sections[0].info
        st = _PHDR[self._bo, self._cls]
        if h.phentsize < st.size and phnum:
            raise errors.ParseError(f"program header entry size {h.phentsize} too small", 0)
        out = []
        for i in range(phnum):
            v = self._unpack(st, h.phoff + i * h.phentsize, "program header")
            if self._cls == 64:
                p_type, p_flags, p_offset, p_vaddr, _paddr, p_filesz, p_memsz, _align = v
            else:
                p_type, p_offset, p_vaddr, _paddr, p_filesz, p_memsz, p_flags, _align = v
            out.append(Segment(p_type, p_flags, p_offset, p_vaddr, p_filesz, p_memsz))
        return tuple(out)

    def section(self, name: str) -> Section | None:
        """The first section called ``name``, or ``None``."""
        for s in self.sections:
            if s.name == name:
                return s
        return None

    def section_data(self, sec: Section) -> bytes:
        """The bytes of a section (empty for ``SHT_NOBITS``)."""
        if sec.type == SHT_NOBITS:
            return b""
        if sec.offset + sec.size > len(self._data):
            raise errors.ParseError(f"section {sec.name or sec.index} out of range", sec.offset)
        return bytes(self._data[sec.offset : sec.offset + sec.size])

    # --- addresses ----------------------------------------------------------------------
    def address_to_offset(self, vaddr: int, *, executable: bool | None = None) -> int:
        """File offset of virtual address ``vaddr``, through the ``PT_LOAD`` that maps it.

        ``executable`` restricts the search to code (True) or data (False) segments.
        Raises :class:`~ebpf.errors.ParseError` (a :class:`ValueError`) when no loadable
        segment holds the address.
        """
        for seg in self.segments:
            if seg.type != PT_LOAD or not seg.contains(vaddr):
                continue
            if executable is not None and seg.executable != executable:
                continue
            return vaddr - seg.vaddr + seg.offset
        # Files without program headers (or addresses in sections outside any segment):
        for sec in self.sections:
            if sec.addr and sec.type != SHT_NOBITS and sec.addr <= vaddr < sec.addr + sec.size:
                return vaddr - sec.addr + sec.offset
        raise errors.ParseError(f"address {vaddr:#x} is not in any loadable segment of "
                                f"{self.path or 'the ELF file'}")

    # --- symbols ------------------------------------------------------------------------
    def _versions(self, dynsym: Section) -> tuple[list[int], dict[int, str]] | None:
        """(versym index per dynamic symbol, version index -> name) or None if unversioned."""
        versym = next((s for s in self.sections if s.type == SHT_GNU_VERSYM), None)
        if versym is None or versym.link != dynsym.index:
            return None
        raw = self.section_data(versym)
        u16 = _U16[self._bo]
        idx = [u16.unpack_from(raw, i)[0] for i in range(0, len(raw) - 1, 2)]
        names: dict[int, str] = {}
        verdef = next((s for s in self.sections if s.type == SHT_GNU_VERDEF), None)
        if verdef is not None and 0 < verdef.link < len(self.sections):
            strtab = self.sections[verdef.link]
            vd, va = _VERDEF[self._bo], _VERDAUX[self._bo]
            off = verdef.offset
            end = verdef.offset + verdef.size
            for _ in range(max(verdef.info, 0) or 1 << 16):
                if off + vd.size > end:
                    break
                _v, _flags, ndx, cnt, _hash, aux, nxt = self._unpack(vd, off, "verdef")
                if cnt:
                    name_off, _n = self._unpack(va, off + aux, "verdaux")
                    names[ndx] = _cstr(self._data, strtab.offset + name_off,
                                       strtab.offset + strtab.size)
                if not nxt:
                    break
                off += nxt
        return idx, names

    def _read_table(self, sec: Section) -> Iterator[Symbol]:
        if not 0 < sec.link < len(self.sections):
            raise errors.ParseError(f"{sec.name}: bad string table link {sec.link}", sec.offset)
        strtab = self.sections[sec.link]
        str_lo, str_hi = strtab.offset, strtab.offset + strtab.size
        if str_hi > len(self._data):
            raise errors.ParseError(f"{strtab.name}: out of range", strtab.offset)
        st = _SYM[self._bo, self._cls]
        entsize = sec.entsize or st.size
        if entsize < st.size:
            raise errors.ParseError(f"{sec.name}: entry size {entsize} too small", sec.offset)
        if sec.offset + sec.size > len(self._data):
            raise errors.ParseError(f"{sec.name}: out of range", sec.offset)
        versions = self._versions(sec) if sec.type == SHT_DYNSYM else None
        count = sec.size // entsize
        for i in range(1, count):  # entry 0 is the null symbol
            v = st.unpack_from(self._data, sec.offset + i * entsize)
            if self._cls == 64:
                name_off, info, other, shndx, value, size = v
            else:
                name_off, value, size, info, other, shndx = v
            name = _cstr(self._data, str_lo + name_off, str_hi) if name_off else ""
            styp: SymbolType | int
            bind: SymbolBinding | int
            try:
                styp = SymbolType(info & 0xF)
            except ValueError:
                styp = info & 0xF
            try:
                bind = SymbolBinding(info >> 4)
            except ValueError:
                bind = info >> 4
            version, hidden = None, False
            if versions is not None and i < len(versions[0]):
                vi = versions[0][i]
                hidden = bool(vi & _VERSYM_HIDDEN)
                version = versions[1].get(vi & 0x7FFF)
            yield Symbol(name, value, size, styp, bind, other & 3, shndx, sec.name, version,
                         hidden)

    def symbols(self) -> Iterator[Symbol]:
        """Every named symbol of ``.symtab`` then ``.dynsym``."""
        for table in (SHT_SYMTAB, SHT_DYNSYM):
            for sec in self.sections:
                if sec.type == table:
                    yield from (s for s in self._read_table(sec) if s.name)

    def _index(self) -> dict[str, list[Symbol]]:
        if self._symbols is None:
            idx: dict[str, list[Symbol]] = {}
            for s in self.symbols():
                idx.setdefault(s.name, []).append(s)
            self._symbols = idx
        return self._symbols

    def find_symbol(self, name: str) -> Symbol:
        """The defined function (or other code symbol) called ``name``.

        ``name`` may carry a GNU version: ``"memcpy@GLIBC_2.2.5"`` (that version) or
        ``"memcpy@@GLIBC_2.14"`` (the default one). Without one, the default version wins
        when several versions have different addresses. Raises
        :class:`SymbolNotFoundError` (with close matches) when there is none.
        """
        base, sep, ver = name.partition("@")
        want_default = ver.startswith("@")
        ver = ver.lstrip("@")
        index = self._index()
        cands = [s for s in index.get(base, ()) if s.defined and s.shndx != SHN_ABS]
        if sep:
            cands = [s for s in cands if s.version == ver and (not want_default
                                                               or not s.hidden_version)]
        if not cands:
            close = difflib.get_close_matches(base, list(index), n=3, cutoff=0.75)
            raise SymbolNotFoundError(name, self.path, close)
        funcs = [s for s in cands if s.is_function] or cands
        addrs = {s.value for s in funcs}
        if len(addrs) > 1:
            default = [s for s in funcs if s.version is not None and not s.hidden_version]
            if {s.value for s in default} and len({s.value for s in default}) == 1:
                return default[0]
            strong = [s for s in funcs if s.binding == SymbolBinding.GLOBAL]
            if len({s.value for s in strong}) == 1:
                return strong[0]
            versions = sorted({f"{s.name}@{s.version}" for s in funcs if s.version})
            raise SymbolNotFoundError(
                name, self.path, versions,
                reason=f"is ambiguous ({len(addrs)} addresses); name a version")
        # Prefer .symtab (sizes are there), then GLOBAL over WEAK/LOCAL.
        funcs.sort(key=lambda s: (s.table != ".symtab", s.binding != SymbolBinding.GLOBAL))
        return funcs[0]

    def symbol_offset(self, name: str) -> int:
        """File offset of the symbol ``name`` (what a uprobe attaches at)."""
        sym = self.find_symbol(name)
        return self.symbol_to_offset(sym)

    def symbol_to_offset(self, sym: Symbol) -> int:
        """File offset of ``sym``: through its section header, else the segments."""
        if 0 < sym.shndx < min(len(self.sections), SHN_LORESERVE):
            sec = self.sections[sym.shndx]
            if sec.addr <= sym.value < sec.addr + max(sec.size, 1) and sec.type != SHT_NOBITS:
                return sym.value - sec.addr + sec.offset
        return self.address_to_offset(sym.value)

    # --- notes --------------------------------------------------------------------------
    def notes(self, section: str) -> Iterator[tuple[str, int, bytes, int]]:
        """(owner name, type, descriptor bytes, descriptor file offset) of a note section."""
        sec = self.section(section)
        if sec is None or sec.type == SHT_NOBITS:
            return
        nh = _NHDR[self._bo]
        off, end = sec.offset, sec.offset + sec.size
        if end > len(self._data):
            raise errors.ParseError(f"{section}: out of range", sec.offset)
        while off + nh.size <= end:
            namesz, descsz, ntype = nh.unpack_from(self._data, off)
            name_at = off + nh.size
            desc_at = name_at + ((namesz + 3) & ~3)
            nxt = desc_at + ((descsz + 3) & ~3)
            if desc_at + descsz > end:
                raise errors.ParseError(f"{section}: truncated note", off)
            owner = bytes(self._data[name_at : name_at + namesz]).rstrip(b"\0").decode(
                "utf-8", "replace")
            yield owner, ntype, bytes(self._data[desc_at : desc_at + descsz]), desc_at
            off = nxt

    def usdt_probes(self) -> list[USDTProbe]:
        """Every USDT probe of ``.note.stapsdt``, addresses converted to file offsets."""
        base_sec = self.section(".stapsdt.base")
        addr = _ADDR[self._bo, self._cls]
        out = []
        for owner, ntype, desc, at in self.notes(".note.stapsdt"):
            if owner != "stapsdt" or ntype != NT_STAPSDT:
                continue
            if len(desc) < addr.size:
                raise errors.ParseError("stapsdt note too short", at)
            pc, base, sema = addr.unpack_from(desc, 0)
            strings = desc[addr.size :].split(b"\0")
            if len(strings) < 3:
                raise errors.ParseError("stapsdt note: missing provider/name/arguments", at)
            provider, name, args = (s.decode("utf-8", "replace") for s in strings[:3])
            if base_sec is not None and base:
                pc += base_sec.addr - base  # prelink moved the file; libbpf does the same
            try:
                pc_off = self.address_to_offset(pc, executable=True)
            except errors.ParseError:
                pc_off = self.address_to_offset(pc)
            sema_off = self.address_to_offset(sema, executable=False) if sema else 0
            out.append(USDTProbe(provider, name, pc, pc_off, base, sema, sema_off, args))
        return out


# --- USDT argument strings ---------------------------------------------------------------------
_X86_SIB = re.compile(r"^(-?\d+)?\(%(\w+),%(\w+),(\d+)\)$")
_X86_DEREF = re.compile(r"^(-?(?:0x[0-9a-fA-F]+|\d+))?\(%(\w+)\)$")
_X86_REG = re.compile(r"^%(\w+)$")
_X86_CONST = re.compile(r"^\$(-?(?:0x[0-9a-fA-F]+|\d+))$")
_ARM_DEREF = re.compile(r"^\[(\w+)(?:,\s*#?(-?(?:0x[0-9a-fA-F]+|\d+)))?\]$")
_PAREN_DEREF = re.compile(r"^(-?(?:0x[0-9a-fA-F]+|\d+))?\((\w+)\)$")  # RISC-V: 8@-8(s0)
_PLAIN_CONST = re.compile(r"^#?(-?(?:0x[0-9a-fA-F]+|\d+))$")
_PLAIN_REG = re.compile(r"^([a-z]+\d*)$")


def _parse_one(spec: str) -> USDTArgument:
    size_text, at, loc = spec.partition("@")
    try:
        size = int(size_text) if at else 0
    except ValueError:
        size = 0
    if not at or not size:
        return USDTArgument(8, False, "unknown", text=spec)
    signed, size = size < 0, abs(size)
    if m := _X86_SIB.match(loc):
        return USDTArgument(size, signed, "sib", register=m.group(2), index_register=m.group(3),
                            scale=int(m.group(4)), offset=int(m.group(1) or 0), text=spec)
    if m := _X86_DEREF.match(loc):
        return USDTArgument(size, signed, "deref", register=m.group(2),
                            offset=int(m.group(1) or "0", 0), text=spec)
    if m := _X86_REG.match(loc):
        return USDTArgument(size, signed, "reg", register=m.group(1), text=spec)
    if m := _X86_CONST.match(loc):
        return USDTArgument(size, signed, "const", value=int(m.group(1), 0), text=spec)
    if m := _ARM_DEREF.match(loc):
        return USDTArgument(size, signed, "deref", register=m.group(1),
                            offset=int(m.group(2) or "0", 0), text=spec)
    if m := _PAREN_DEREF.match(loc):
        return USDTArgument(size, signed, "deref", register=m.group(2),
                            offset=int(m.group(1) or "0", 0), text=spec)
    if m := _PLAIN_CONST.match(loc):
        return USDTArgument(size, signed, "const", value=int(m.group(1), 0), text=spec)
    if m := _PLAIN_REG.match(loc):
        return USDTArgument(size, signed, "reg", register=m.group(1), text=spec)
    return USDTArgument(size, signed, "unknown", text=spec)


def parse_usdt_arguments(args: str) -> tuple[USDTArgument, ...]:
    """Parse a stapsdt argument string such as ``"-4@%edi 8@-16(%rbp) 4@$5"``.

    Understands the x86 (AT&T) and AArch64/RISC-V spellings that GCC and clang emit;
    anything else becomes an argument of kind ``"unknown"`` keeping its text.
    """
    out = []
    # AArch64 memory operands contain ", " inside brackets: split on spaces outside [].
    parts: list[str] = []
    depth = 0
    cur = ""
    for ch in args.strip():
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth = max(depth - 1, 0)
        if ch == " " and depth == 0:
            if cur:
                parts.append(cur)
            cur = ""
            continue
        cur += ch
    if cur:
        parts.append(cur)
    for p in parts:
        out.append(_parse_one(p))
    return tuple(out)
