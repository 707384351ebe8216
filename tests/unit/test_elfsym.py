"""The ELF symbol reader: synthetic files of both classes and byte orders, real system files
compared with readelf, USDT notes and argument strings, corrupt and fuzzed input."""

from __future__ import annotations

import contextlib
import mmap
import os
import re
import shutil
import struct
import subprocess
import sys
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ebpf import errors
from ebpf._elfsym import (
    ElfFile,
    SymbolBinding,
    SymbolNotFoundError,
    SymbolType,
    USDTArgument,
    parse_usdt_arguments,
)
from ebpf.elf.reader import ELFFile

TEXT_VADDR = 0x10000
DATA_VADDR_DELTA = 0x30000  # data segment: vaddr = offset + delta


@dataclass
class _Sec:
    name: str
    type: int
    data: bytes
    flags: int = 0
    addr: int = 0
    link: int = 0
    info: int = 0
    entsize: int = 0
    align: int = 8
    offset: int = 0


@dataclass
class Built:
    blob: bytes
    text_off: int
    text_addr: int
    sema_off: int
    sema_addr: int
    probe_pc: int
    symbols: dict[str, int] = field(default_factory=dict)  # name -> address


def build_elf(bits: int = 64, bo: str = "<") -> Built:
    """A small ET_DYN file with .text/.probes segments, .dynsym with GNU versions, .symtab,
    a stapsdt note whose base was moved (prelink) and a semaphore in a data segment."""
    a = "Q" if bits == 64 else "I"
    ehsize, phentsize, shentsize = (64, 56, 64) if bits == 64 else (52, 32, 40)
    phoff = ehsize
    body = bytearray(b"\0" * (phoff + 2 * phentsize))

    def put(data: bytes, align: int = 8) -> int:
        while len(body) % align:
            body.append(0)
        off = len(body)
        body.extend(data)
        return off

    # text segment content: .text (0x40 bytes) and .stapsdt.base (1 byte)
    text_off = put(b"\x90" * 0x40, 16)
    base_off = put(b"\0", 1)
    text_end = len(body)
    text_addr = TEXT_VADDR + text_off
    base_addr = TEXT_VADDR + base_off
    sema_off = put(b"\0\0", 8)
    sema_addr = sema_off + DATA_VADDR_DELTA
    data_end = len(body)

    # symbols: versions 1 = base (soname), 2 = V1, 3 = V2
    dynstr = b"\0libt.so\0V1\0V2\0foo\0bar\0amb\0weakfn\0"

    def s(name: str, tab: bytes) -> int:
        return tab.index(name.encode() + b"\0")

    def sym(name_off: int, value: int, size: int, typ: int, bind: int, shndx: int) -> bytes:
        info = (bind << 4) | typ
        if bits == 64:
            return struct.pack(bo + "IBBHQQ", name_off, info, 0, shndx, value, size)
        return struct.pack(bo + "IIIBBH", name_off, value, size, info, 0, shndx)

    TEXT_SHNDX = 1
    dyn = [
        sym(0, 0, 0, 0, 0, 0),
        sym(s("foo", dynstr), text_addr + 0x00, 8, 2, 1, TEXT_SHNDX),   # foo@V1 (hidden)
        sym(s("foo", dynstr), text_addr + 0x08, 8, 2, 1, TEXT_SHNDX),   # foo@@V2
        sym(s("bar", dynstr), text_addr + 0x20, 8, 2, 1, TEXT_SHNDX),   # bar@@libt.so
        sym(s("amb", dynstr), text_addr + 0x10, 4, 2, 1, TEXT_SHNDX),   # amb, twice
        sym(s("amb", dynstr), text_addr + 0x14, 4, 2, 1, TEXT_SHNDX),
        sym(s("weakfn", dynstr), text_addr + 0x18, 4, 10, 2, TEXT_SHNDX),  # IFUNC, WEAK
        sym(s("bar", dynstr), 0, 0, 2, 1, 0),                           # undefined twin
    ]
    versym = struct.pack(bo + "8H", 0, 0x8002, 3, 1, 1, 1, 1, 0)
    verdefs = b""
    for i, (ndx, name) in enumerate(((1, "libt.so"), (2, "V1"), (3, "V2"))):
        nxt = 28 if i < 2 else 0
        verdefs += struct.pack(bo + "HHHHIII", 1, 1 if ndx == 1 else 0, ndx, 1, 0, 20, nxt)
        verdefs += struct.pack(bo + "II", s(name, dynstr), 0)
    strtab = b"\0static_fn\0bar\0obj\0"
    symtab = [
        sym(0, 0, 0, 0, 0, 0),
        sym(s("static_fn", strtab), text_addr + 0x30, 16, 2, 0, TEXT_SHNDX),
        sym(s("bar", strtab), text_addr + 0x20, 8, 2, 1, TEXT_SHNDX),
        sym(s("obj", strtab), sema_addr, 2, 1, 1, 2),
    ]
    # stapsdt note: the base recorded in the note is 0x100 below where .stapsdt.base ended up
    pc = text_addr + 0x24
    note_base = base_addr - 0x100
    desc = struct.pack(bo + a * 3, pc - 0x100, note_base, sema_addr)
    desc += b"prov\0tick\0-4@%edi 8@-16(%rbp)\0"
    desc2 = struct.pack(bo + a * 3, text_addr + 0x2C, 0, 0) + b"prov\0plain\0\0"

    def note(d: bytes) -> bytes:
        n = struct.pack(bo + "III", 8, len(d), 3) + b"stapsdt\0" + d
        return n + b"\0" * (-len(n) % 4)

    secs = [
        _Sec("", 0, b""),
        _Sec(".text", 1, b"", flags=6, addr=text_addr, offset=text_off),
        _Sec(".probes", 1, b"", flags=3, addr=sema_addr, offset=sema_off),
        _Sec(".stapsdt.base", 1, b"", flags=2, addr=base_addr, offset=base_off),
        _Sec(".dynsym", 11, b"".join(dyn), flags=2, link=5, info=1, entsize=len(dyn[0])),
        _Sec(".dynstr", 3, dynstr, flags=2),
        _Sec(".gnu.version", 0x6FFFFFFF, versym, link=4, entsize=2),
        _Sec(".gnu.version_d", 0x6FFFFFFD, verdefs, link=5, info=3),
        _Sec(".symtab", 2, b"".join(symtab), link=9, info=1, entsize=len(symtab[0])),
        _Sec(".strtab", 3, strtab),
        _Sec(".note.stapsdt", 7, note(desc) + note(desc2), align=4),
        _Sec(".shstrtab", 3, b""),
    ]
    sizes = {".text": 0x40, ".probes": 2, ".stapsdt.base": 1}
    shstr = b"\0" + b"".join(x.name.encode() + b"\0" for x in secs[1:])
    secs[-1].data = shstr
    for x in secs[4:]:
        x.offset = put(x.data, x.align)
    shoff = put(b"", 8)
    names = {x.name: (shstr.index(x.name.encode() + b"\0") if x.name else 0) for x in secs}
    for x in secs:
        size = sizes.get(x.name, len(x.data))
        if bits == 64:
            body += struct.pack(bo + "IIQQQQIIQQ", names[x.name], x.type, x.flags, x.addr,
                                x.offset, size, x.link, x.info, x.align, x.entsize)
        else:
            body += struct.pack(bo + "IIIIIIIIII", names[x.name], x.type, x.flags, x.addr,
                                x.offset, size, x.link, x.info, x.align, x.entsize)
    # program headers: text (R+X) maps [0, text_end) at TEXT_VADDR; data (RW) the semaphore
    if bits == 64:
        ph = struct.pack(bo + "IIQQQQQQ", 1, 5, 0, TEXT_VADDR, TEXT_VADDR, text_end, text_end,
                         0x1000)
        ph += struct.pack(bo + "IIQQQQQQ", 1, 6, sema_off, sema_addr, sema_addr,
                          data_end - sema_off, data_end - sema_off, 0x1000)
    else:
        ph = struct.pack(bo + "IIIIIIII", 1, 0, TEXT_VADDR, TEXT_VADDR, text_end, text_end, 5,
                         0x1000)
        ph += struct.pack(bo + "IIIIIIII", 1, sema_off, sema_addr, sema_addr,
                          data_end - sema_off, data_end - sema_off, 6, 0x1000)
    body[phoff : phoff + len(ph)] = ph
    ident = b"\x7fELF" + bytes([2 if bits == 64 else 1, 1 if bo == "<" else 2, 1, 0, 0])
    ident += b"\0" * (16 - len(ident))
    hdr = struct.pack(bo + "HHI" + a * 3 + "IHHHHHH", 3, 62 if bits == 64 else 3, 1, 0, phoff,
                      shoff, 0, ehsize, phentsize, 2, shentsize, len(secs), len(secs) - 1)
    body[: 16 + len(hdr)] = ident + hdr
    return Built(bytes(body), text_off, text_addr, sema_off, sema_addr, pc,
                 {"static_fn": text_addr + 0x30, "bar": text_addr + 0x20})


VARIANTS = [(64, "<"), (64, ">"), (32, "<"), (32, ">")]
IDS = ["elf64-le", "elf64-be", "elf32-le", "elf32-be"]


@pytest.fixture(params=VARIANTS, ids=IDS)
def built(request: pytest.FixtureRequest) -> Built:
    return build_elf(*request.param)


def _off(b: Built, addr: int) -> int:
    return addr - b.text_addr + b.text_off


def test_header_sections_segments(built: Built) -> None:
    elf = ElfFile.from_bytes(built.blob)
    assert elf.header.type == 3
    assert [s.name for s in elf.sections][:3] == ["", ".text", ".probes"]
    assert len(elf.segments) == 2 and elf.segments[0].executable
    assert not elf.segments[1].executable
    assert elf.address_to_offset(built.text_addr + 4) == built.text_off + 4
    assert elf.address_to_offset(built.sema_addr) == built.sema_off
    with pytest.raises(errors.ParseError, match="not in any loadable segment"):
        elf.address_to_offset(0x7FFF0000)


def test_symbols_and_offsets(built: Built) -> None:
    elf = ElfFile.from_bytes(built.blob)
    static = elf.find_symbol("static_fn")
    assert static.table == ".symtab" and static.binding == SymbolBinding.LOCAL
    assert static.type == SymbolType.FUNC and static.size == 16
    assert elf.symbol_offset("static_fn") == _off(built, built.symbols["static_fn"])
    bar = elf.find_symbol("bar")  # in both tables at the same address: .symtab wins
    assert bar.table == ".symtab" and bar.defined
    assert elf.symbol_offset("bar") == _off(built, built.symbols["bar"])
    weak = elf.find_symbol("weakfn")
    assert weak.type == SymbolType.GNU_IFUNC and weak.binding == SymbolBinding.WEAK
    assert {s.name for s in elf.symbols()} >= {"foo", "bar", "amb", "static_fn", "obj"}


def test_versioned_symbols(built: Built) -> None:
    elf = ElfFile.from_bytes(built.blob)
    default = elf.find_symbol("foo")
    assert (default.version, default.hidden_version) == ("V2", False)
    assert default.value == built.text_addr + 8
    old = elf.find_symbol("foo@V1")
    assert (old.version, old.hidden_version, old.value) == ("V1", True, built.text_addr)
    assert elf.find_symbol("foo@@V2") == default
    with pytest.raises(SymbolNotFoundError):
        elf.find_symbol("foo@@V1")  # V1 is not the default version
    assert elf.find_symbol("bar@libt.so").version == "libt.so"


def test_missing_and_ambiguous_symbols(built: Built) -> None:
    elf = ElfFile.from_bytes(built.blob, path="/x/libt.so")
    with pytest.raises(SymbolNotFoundError) as ei:
        elf.find_symbol("static_fm")
    e = ei.value
    assert isinstance(e, LookupError) and isinstance(e, errors.BPFError)
    assert e.suggestions == ("static_fn",)
    assert str(e) == "symbol 'static_fm' not found in /x/libt.so (did you mean 'static_fn'?)"
    with pytest.raises(SymbolNotFoundError, match="is ambiguous"):
        elf.find_symbol("amb")
    assert elf.find_symbol("obj").type == SymbolType.OBJECT


def test_usdt_notes(built: Built) -> None:
    elf = ElfFile.from_bytes(built.blob)
    tick, plain = elf.usdt_probes()
    assert (tick.provider, tick.name) == ("prov", "tick")
    assert tick.address == built.probe_pc  # moved by .stapsdt.base - note base
    assert tick.offset == _off(built, built.probe_pc)
    assert tick.semaphore_address == built.sema_addr
    assert tick.semaphore_offset == built.sema_off
    assert tick.arguments == (
        USDTArgument(4, True, "reg", register="edi", text="-4@%edi"),
        USDTArgument(8, False, "deref", register="rbp", offset=-16, text="8@-16(%rbp)"),
    )
    assert plain.semaphore_offset == 0 and plain.arguments == ()


def test_open_maps_a_file(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(os.fspath(tmp_path), "libt.so")
    b = build_elf()
    with open(path, "wb") as f:
        f.write(b.blob)
    with ElfFile.open(path) as elf:
        assert elf.path == path
        assert elf.symbol_offset("static_fn") == _off(b, b.symbols["static_fn"])
    elf.close()  # idempotent
    empty = os.path.join(os.fspath(tmp_path), "empty")
    open(empty, "wb").close()
    with pytest.raises(errors.ParseError, match="empty"):
        ElfFile.open(empty)


def test_the_reader_underneath(built: Built, tmp_path: os.PathLike[str]) -> None:
    """ebpf.elf.reader.ELFFile is the one parser: segments, .dynsym versions and notes."""
    elf = ELFFile(built.blob)
    assert ElfFile.from_bytes(built.blob).sections == elf.sections
    assert [(g.type, g.executable) for g in elf.segments] == [(1, True), (1, False)]
    assert elf.address_to_offset(built.sema_addr, executable=False) == built.sema_off
    dyn = elf.symbols(elf.section(".dynsym"))
    assert dyn[0].index == 0 and dyn[0].name == ""  # the null entry: relocations index it
    assert [(s.name, s.version, s.hidden_version) for s in dyn[1:3]] == [
        ("foo", "V1", True), ("foo", "V2", False)]
    assert all(s.table == ".dynsym" for s in dyn) and dyn[1].shndx == dyn[1].section_index
    notes = list(elf.notes(".note.stapsdt"))
    assert [(n.name, n.type) for n in notes] == [("stapsdt", 3)] * 2
    assert elf.data[notes[0].offset:notes[0].offset + len(notes[0].desc)] == notes[0].desc
    assert list(elf.notes(".note.missing")) == []
    path = os.path.join(os.fspath(tmp_path), "libt.so")
    with open(path, "wb") as f:
        f.write(built.blob)
    with ELFFile.open(path) as mapped:
        assert isinstance(mapped.data, mmap.mmap) and mapped.path == path
        assert mapped.symbols(mapped.section(".dynsym")) == dyn
    with ElfFile.open(path) as wrapped:
        assert isinstance(wrapped.elf.data, mmap.mmap)


def test_non_utf8_names_strict_for_the_loader_replaced_for_uprobes() -> None:
    b = build_elf()
    blob = b.blob.replace(b"\0static_fn\0", b"\0static\xfffn\0")
    with pytest.raises(errors.ParseError, match="not UTF-8"):
        ELFFile(blob).symbols()
    elf = ElfFile.from_bytes(blob)
    assert elf.symbol_offset("static\ufffdfn") == _off(b, b.symbols["static_fn"])


def test_extended_section_name_index() -> None:
    """e_shstrndx == SHN_XINDEX: the index is in section 0's sh_link (gABI)."""
    b = build_elf()
    elf = ELFFile(b.blob)
    h = elf.header
    data = bytearray(b.blob)
    struct.pack_into("<H", data, 62, 0xFFFF)  # e_shstrndx
    struct.pack_into("<I", data, h.shoff + 40, h.shstrndx)  # sh_link of section 0
    assert [s.name for s in ELFFile(bytes(data)).sections] == [s.name for s in elf.sections]


@pytest.mark.parametrize("text,expected", [
    ("-4@%edi", [USDTArgument(4, True, "reg", register="edi", text="-4@%edi")]),
    ("8@$5 -2@$-3", [USDTArgument(8, False, "const", value=5, text="8@$5"),
                     USDTArgument(2, True, "const", value=-3, text="-2@$-3")]),
    ("8@(%rax)", [USDTArgument(8, False, "deref", register="rax", text="8@(%rax)")]),
    ("4@16(%rax,%rbx,8)", [USDTArgument(4, False, "sib", register="rax", index_register="rbx",
                                        scale=8, offset=16, text="4@16(%rax,%rbx,8)")]),
    ("-8@x0 8@[sp, 16] 4@[x1] 4@5", [
        USDTArgument(8, True, "reg", register="x0", text="-8@x0"),
        USDTArgument(8, False, "deref", register="sp", offset=16, text="8@[sp, 16]"),
        USDTArgument(4, False, "deref", register="x1", text="4@[x1]"),
        USDTArgument(4, False, "const", value=5, text="4@5")]),
    ("8@a0 -8@-8(s0)", [USDTArgument(8, False, "reg", register="a0", text="8@a0"),
                        USDTArgument(8, True, "deref", register="s0", offset=-8,
                                     text="-8@-8(s0)")]),
    ("4@var(%rip)", [USDTArgument(4, False, "unknown", text="4@var(%rip)")]),
    ("nonsense", [USDTArgument(8, False, "unknown", text="nonsense")]),
    ("", []),
])
def test_usdt_argument_strings(text: str, expected: list[USDTArgument]) -> None:
    assert list(parse_usdt_arguments(text)) == expected


# --- real files -----------------------------------------------------------------------------------

def _libc() -> str:
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and os.path.basename(parts[5]).startswith("libc.so"):
                return parts[5]
    return "/lib/libc.so.6"


READELF = shutil.which("readelf")


@pytest.mark.skipif(READELF is None, reason="readelf (binutils) is not installed")
@pytest.mark.parametrize("path", [_libc(), os.path.realpath(sys.executable)],
                         ids=["libc", "python"])
def test_functions_agree_with_readelf(path: str) -> None:
    out = subprocess.run([READELF or "readelf", "-Ws", "--dyn-syms", path], capture_output=True,
                         text=True, check=True).stdout
    want: dict[str, set[int]] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 8 and parts[3] == "FUNC" and parts[6] != "UND":
            want.setdefault(parts[7].split("@")[0], set()).add(int(parts[1], 16))
    assert want
    with ElfFile.open(path) as elf:
        got: dict[str, set[int]] = {}
        for s in elf.symbols():
            if s.type == SymbolType.FUNC and s.defined:
                got.setdefault(s.name, set()).add(s.value)
        assert got == want
        checked = 0
        for name in sorted(want)[:: max(1, len(want) // 50)]:
            if len(want[name]) == 1:
                sym = elf.find_symbol(name)
                off = elf.symbol_offset(name)
                seg = next(g for g in elf.segments if g.type == 1 and g.contains(sym.value))
                assert off == sym.value - seg.vaddr + seg.offset
                checked += 1
        assert checked > 5


@pytest.mark.skipif(READELF is None or not os.path.exists("/usr/bin/python3.11"),
                    reason="needs readelf and Debian's python3.11 (it has USDT notes)")
def test_usdt_notes_agree_with_readelf() -> None:
    out = subprocess.run([READELF or "readelf", "-n", "/usr/bin/python3.11"], capture_output=True,
                         text=True, check=True).stdout
    want = re.findall(r"Name: (\S+)\s+Location: (0x[0-9a-f]+), Base: (0x[0-9a-f]+), "
                      r"Semaphore: (0x[0-9a-f]+)\s+Arguments: (.*)", out)
    with ElfFile.open("/usr/bin/python3.11") as elf:
        got = [(p.name, p.address, p.base, p.semaphore_address, p.args)
               for p in elf.usdt_probes()]
    assert got == [(n, int(loc, 16), int(b, 16), int(s, 16), args.strip())
                   for n, loc, b, s, args in want]
    assert any(n == "function__entry" for n, *_ in got)


# --- corrupt input ------------------------------------------------------------------------------

def _exercise(data: bytes) -> None:
    """Everything a caller does with a file; must raise ParseError or work."""
    try:
        elf = ElfFile.from_bytes(data)
        list(elf.symbols())
        elf.usdt_probes()
        for name in ("foo", "bar", "static_fn", "amb"):
            with contextlib.suppress(SymbolNotFoundError):
                elf.symbol_offset(name)
    except errors.ParseError:
        pass


@pytest.mark.parametrize("variant", VARIANTS, ids=IDS)
def test_every_truncation(variant: tuple[int, str]) -> None:
    blob = build_elf(*variant).blob
    for n in range(0, len(blob), 7):
        _exercise(blob[:n])


def test_bad_headers() -> None:
    with pytest.raises(errors.ParseError, match="bad magic"):
        ElfFile.from_bytes(b"\x7fELG" + bytes(60))
    with pytest.raises(errors.ParseError, match="too short"):
        ElfFile.from_bytes(b"\x7fEL")
    with pytest.raises(errors.ParseError, match="ELF class"):
        ElfFile.from_bytes(b"\x7fELF\x03\x01" + bytes(58))
    with pytest.raises(errors.ParseError, match="data encoding"):
        ElfFile.from_bytes(b"\x7fELF\x02\x03" + bytes(58))


_BASE = build_elf().blob


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(_BASE) - 1), st.integers(0, 255)), max_size=12))
def test_fuzz_mutations(changes: list[tuple[int, int]]) -> None:
    data = bytearray(_BASE)
    for pos, value in changes:
        data[pos] = value
    _exercise(bytes(data))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_random_bytes(data: bytes) -> None:
    _exercise(b"\x7fELF" + data)


# --- code for USDT arguments (ebpf.link.uprobe.usdt_argument) -------------------------------------

def test_usdt_argument_code() -> None:
    from ebpf import asm
    from ebpf.asm import R6, R7
    from ebpf.link.uprobe import usdt_argument

    (c,) = parse_usdt_arguments("-2@$-1234")
    assert usdt_argument(c, R7) == [asm.mov(R7, -1234)]
    (big,) = parse_usdt_arguments("8@$0x123456789")
    assert usdt_argument(big, R7) == [asm.load_imm64(R7, 0x123456789)]
    (r,) = parse_usdt_arguments("-4@%edi")
    assert usdt_argument(r, R7, arch="x86_64") == [
        asm.load(asm.DW, R7, R6, 112), asm.lsh(R7, 32), asm.arsh(R7, 32)]
    (u,) = parse_usdt_arguments("2@x3")
    assert usdt_argument(u, R7, arch="aarch64") == [
        asm.load(asm.DW, R7, R6, 24), asm.lsh(R7, 48), asm.rsh(R7, 48)]
    (m,) = parse_usdt_arguments("-8@24(%rsp)")
    code = usdt_argument(m, R7, arch="x86_64")
    assert code[0] == asm.load(asm.DW, asm.R3, R6, 152)  # rsp
    assert code[1] == asm.add(asm.R3, 24)
    assert asm.call(asm.Helper.PROBE_READ_USER) in code
    assert code[-1] == asm.load(asm.DW, R7, asm.R10, -8)
    with pytest.raises(ValueError, match="r6-r9"):
        usdt_argument(m, R7, ctx=asm.R1)
    (sib,) = parse_usdt_arguments("4@16(%rax,%rbx,8)")
    with pytest.raises(errors.NotSupportedError):
        usdt_argument(sib, R7)
