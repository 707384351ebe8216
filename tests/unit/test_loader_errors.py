"""What can never load is refused at parse time with the library's error types (issue 14),
and SEC("?...") programs parse with autoload off (issue 10)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ebpf.elf import load_collection_spec
from ebpf.errors import ParseError

CLANG = shutil.which("clang-19")
pytestmark = pytest.mark.skipif(CLANG is None, reason="clang-19 not installed")


def _asm(tmp_path: Path, text: str) -> bytes:
    s = tmp_path / "prog.s"
    s.write_text(text)
    o = tmp_path / "prog.o"
    assert CLANG is not None
    subprocess.run([CLANG, "-target", "bpf", "-c", str(s), "-o", str(o)], check=True)
    return o.read_bytes()


def test_program_without_instructions_is_a_parse_error(tmp_path: Path) -> None:
    data = _asm(tmp_path, """
        .section "socket","ax"
        .globl empty
        .type empty,@function
empty:
        .globl real
        .type real,@function
real:
        r0 = 0
        exit
        .size real, 16
""")
    with pytest.raises(ParseError, match=r"'empty'.*no instructions"):
        load_collection_spec(data)


def test_optional_section_parses_with_autoload_off(tmp_path: Path) -> None:
    data = _asm(tmp_path, """
        .section "?socket","ax"
        .globl maybe
        .type maybe,@function
maybe:
        r0 = 0
        exit
        .size maybe, 16
""")
    spec = load_collection_spec(data)
    p = spec.programs["maybe"]
    assert (p.autoload, p.section, int(p.type)) == (False, "socket", 1)  # SOCKET_FILTER
