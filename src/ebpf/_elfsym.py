"""The uprobe/USDT layer over :mod:`ebpf.elf.reader`: symbol lookup and USDT probes.

The reader parses ELF32 and ELF64 of either byte order from bytes or a read-only mmap of a
file: the header, program headers, sections, ``.symtab`` and ``.dynsym`` (with GNU symbol
versions) and notes. On top of it, :class:`ElfFile` finds a symbol by name (versions,
ambiguity, close matches) and turns it, or a ``.note.stapsdt`` USDT probe, into the *file
offset* the kernel's uprobe interface wants: ``vaddr - PT_LOAD.p_vaddr + PT_LOAD.p_offset``;
:func:`parse_usdt_arguments` reads USDT argument strings. Malformed input raises
:class:`~ebpf.errors.ParseError` with the offset where it went wrong; nothing here enters the
kernel.

Example::

    with ElfFile.open("/lib/x86_64-linux-gnu/libc.so.6") as elf:
        off = elf.symbol_offset("malloc")          # file offset for attach_uprobe
        probes = elf.usdt_probes()                 # [] for libc
"""

from __future__ import annotations

import difflib
import mmap
import os
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from . import errors
from .elf.reader import (
    SHN_ABS,
    SHN_LORESERVE,
    ELFFile,
    Note,
    Section,
    SectionType,
    Segment,
    Symbol,
    SymbolBinding,
    SymbolType,
)
from .elf.reader import Header as ElfHeader
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

NT_STAPSDT = 3
_ADDR = {(bo, bits): struct.Struct(bo + ("QQQ" if bits == 64 else "III"))
         for bo in "<>" for bits in (32, 64)}


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


class ElfFile:
    """An ELF file for uprobes: an :class:`~ebpf.elf.reader.ELFFile` (``elf``) held as bytes
    or a read-only mmap, with symbol lookup and USDT probes on top.

    Build it with :meth:`from_bytes` or :meth:`open` (a context manager that unmaps the file
    on exit). The headers are parsed at construction; symbols and notes on first use. Names
    that are not UTF-8 are decoded with U+FFFD rather than rejected.
    """

    def __init__(self, data: bytes | mmap.mmap | ELFFile, path: str = "") -> None:
        self.elf = data if isinstance(data, ELFFile) else ELFFile(data, path,
                                                                  name_errors="replace")
        self.path = path or self.elf.path
        self.header: ElfHeader = self.elf.header
        self.sections: tuple[Section, ...] = self.elf.sections
        self.segments: tuple[Segment, ...] = self.elf.segments
        self._symbols: dict[str, list[Symbol]] | None = None

    # --- construction -------------------------------------------------------------------
    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview, path: str = "") -> ElfFile:
        """Parse ELF data held in memory."""
        return cls(bytes(data), path)

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> ElfFile:
        """Map the file at ``path`` read-only; use as a context manager or call :meth:`close`."""
        return cls(ELFFile.open(path, name_errors="replace"))

    def close(self) -> None:
        """Unmap the file (idempotent; a no-op for :meth:`from_bytes`)."""
        self.elf.close()

    def __enter__(self) -> ElfFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ElfFile {self.path or '(bytes)'} ELF{self.header.elf_class}>"

    # --- the reader's view ----------------------------------------------------------------
    def section(self, name: str) -> Section | None:
        """The first section called ``name``, or ``None``."""
        return self.elf.get_section(name)

    def section_data(self, sec: Section) -> bytes:
        """The bytes of a section (empty for ``SHT_NOBITS``)."""
        return b"" if sec.nobits else self.elf.section_data(sec)

    def address_to_offset(self, vaddr: int, *, executable: bool | None = None) -> int:
        """File offset of virtual address ``vaddr`` (see
        :meth:`ebpf.elf.reader.ELFFile.address_to_offset`)."""
        return self.elf.address_to_offset(vaddr, executable=executable)

    def notes(self, section: str) -> Iterator[Note]:
        """(owner name, type, descriptor bytes, descriptor file offset) of a note section."""
        return self.elf.notes(section)

    # --- symbols ------------------------------------------------------------------------
    def symbols(self) -> Iterator[Symbol]:
        """Every named symbol of ``.symtab`` then ``.dynsym``."""
        for table in (SectionType.SYMTAB, SectionType.DYNSYM):
            for sec in self.sections:
                if sec.type == table:
                    yield from (s for s in self.elf.symbols(sec) if s.index and s.name)

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
            if sec.addr <= sym.value < sec.addr + max(sec.size, 1) and not sec.nobits:
                return sym.value - sec.addr + sec.offset
        return self.address_to_offset(sym.value)

    def usdt_probes(self) -> list[USDTProbe]:
        """Every USDT probe of ``.note.stapsdt``, addresses converted to file offsets."""
        base_sec = self.section(".stapsdt.base")
        addr = _ADDR[self.header.byte_order, self.header.elf_class]
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


def _int(text: str) -> int:
    """``-0x10``, ``16``, ``016`` (decimal, unlike ``int(x, 0)``)."""
    body = text.lstrip("-")
    neg = len(text) - len(body) == 1
    v = int(body[2:], 16) if body[:2] in ("0x", "0X") else int(body, 10)
    return -v if neg else v


def _parse_one(spec: str) -> USDTArgument:
    """One argument; what does not parse (a number past Python's digit limit...) is
    ``"unknown"``, never an exception."""
    try:
        return _parse_one_or_raise(spec)
    except ValueError:
        return USDTArgument(8, False, "unknown", text=spec)


def _parse_one_or_raise(spec: str) -> USDTArgument:
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
                            offset=_int(m.group(1) or "0"), text=spec)
    if m := _X86_REG.match(loc):
        return USDTArgument(size, signed, "reg", register=m.group(1), text=spec)
    if m := _X86_CONST.match(loc):
        return USDTArgument(size, signed, "const", value=_int(m.group(1)), text=spec)
    if m := _ARM_DEREF.match(loc):
        return USDTArgument(size, signed, "deref", register=m.group(1),
                            offset=_int(m.group(2) or "0"), text=spec)
    if m := _PAREN_DEREF.match(loc):
        return USDTArgument(size, signed, "deref", register=m.group(2),
                            offset=_int(m.group(1) or "0"), text=spec)
    if m := _PLAIN_CONST.match(loc):
        return USDTArgument(size, signed, "const", value=_int(m.group(1)), text=spec)
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
