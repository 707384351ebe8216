"""Disassembly of clang-compiled programs equals ``llvm-objdump-19 -d`` (whitespace-normalised).

The C sources are in ``tests/testdata/asm``; each is compiled with Debian's clang-19 for ISA v4
and every executable section is compared, with both ``--mcpu=v4`` (32-bit sub-registers) and
LLVM's default printing.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from ebpf import asm

CLANG = shutil.which("clang-19")
OBJDUMP = shutil.which("llvm-objdump-19")
pytestmark = pytest.mark.skipif(
    CLANG is None or OBJDUMP is None, reason="clang-19/llvm-objdump-19 not installed"
)
SOURCES = sorted((Path(__file__).parent.parent / "testdata" / "asm").glob("*.c"))
SHF_EXECINSTR = 0x4


def _sections(elf: bytes) -> dict[str, bytes]:
    """Executable sections of a little-endian ELF64 object (enough of a reader for a test)."""
    shoff, = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)
    headers = [struct.unpack_from("<IIQQQQIIQQ", elf, shoff + i * shentsize) for i in range(shnum)]
    strtab = headers[shstrndx]
    names = elf[strtab[4] : strtab[4] + strtab[5]]
    out = {}
    for name_off, _type, flags, _addr, offset, size, *_ in headers:
        if flags & SHF_EXECINSTR and size:
            name = names[name_off : names.index(b"\0", name_off)].decode()
            out[name] = elf[offset : offset + size]
    return out


def _symbols(obj: Path) -> dict[str, dict[int, str]]:
    assert OBJDUMP is not None
    table = subprocess.run([OBJDUMP, "-t", str(obj)], capture_output=True, text=True,
                           check=True).stdout
    out: dict[str, dict[int, str]] = {}
    for line in table.splitlines():
        m = re.match(r"^([0-9a-f]{16}) (.{7}) (\S+)\s+[0-9a-f]+ (\S+)$", line)
        if m and "F" in m[2]:
            out.setdefault(m[3], {})[int(m[1], 16)] = m[4]
    return out


def _objdump_sections(obj: Path, extra: list[str]) -> dict[str, list[str]]:
    assert OBJDUMP is not None
    text = subprocess.run([OBJDUMP, "-d", *extra, str(obj)], capture_output=True, text=True,
                          check=True).stdout
    out: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        m = re.match(r"^Disassembly of section (\S+):$", line)
        if m:
            current = out.setdefault(m[1], [])
        elif current is not None and line.strip():
            current.append(_norm(line))
    return out


def _norm(line: str) -> str:
    return " ".join(line.split())


@pytest.fixture(scope="module", params=SOURCES, ids=lambda p: p.stem)
def compiled(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert CLANG is not None
    src: Path = request.param
    obj = tmp_path_factory.mktemp("clang") / (src.stem + ".o")
    subprocess.run(
        [CLANG, "-O2", "-target", "bpf", "-mcpu=v4", "-g0", "-c", str(src), "-o", str(obj)],
        check=True,
    )
    return obj


def test_sources_exist() -> None:
    assert len(SOURCES) >= 3


@pytest.mark.parametrize("alu32", [True, False], ids=["mcpu=v4", "default"])
def test_disassembly_equals_objdump(compiled: Path, alu32: bool) -> None:
    theirs = _objdump_sections(compiled, ["--mcpu=v4"] if alu32 else [])
    symbols = _symbols(compiled)
    sections = _sections(compiled.read_bytes())
    assert sections.keys() == theirs.keys()
    for name, code in sections.items():
        ours = asm.objdump(code, symbols.get(name, {}), section=name, alu32=alu32)
        ours_lines = [_norm(line) for line in ours.splitlines() if line.strip()]
        assert ours_lines == theirs[name], name


def test_default_style_reassembles(compiled: Path) -> None:
    for code in _sections(compiled.read_bytes()).values():
        text = asm.disassemble(code)
        assert asm.Instructions(asm.assemble(text)).encode(check=False) == code
