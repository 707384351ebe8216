"""``ebpf._spec`` and the ELF reader share their types through ``ebpf._spec_types``: the
reader never imports ``_spec`` (no import circle), and either imports first in a fresh
interpreter."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "ebpf"

_ORDERS = [
    ("ebpf._spec", "ebpf.elf.loader"),
    ("ebpf.elf.loader", "ebpf._spec"),
    ("ebpf.elf", "ebpf._spec"),
    ("ebpf._spec_types", "ebpf.elf"),
    ("ebpf.elf.loader", "ebpf"),
]


@pytest.mark.parametrize("first,second", _ORDERS)
def test_fresh_interpreter_import_order(first: str, second: str) -> None:
    code = (f"import {first}, {second}\n"
            "from ebpf._spec import CollectionSpec, MapSpec, PinType, ProgramSpec, "
            "Reference, ReferenceKind, VariableSpec\n"
            "from ebpf.elf import load_collection_spec\n"
            "import ebpf\n"
            "assert ebpf.MapSpec is MapSpec and ebpf.CollectionSpec is CollectionSpec\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def _imported(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(("." * node.level) + node.module)
    return out


def test_loader_and_spec_types_do_not_import_spec() -> None:
    assert ".._spec" not in _imported(SRC / "elf" / "loader.py")
    assert not {m for m in _imported(SRC / "_spec_types.py")
                if m.lstrip(".").startswith(("_spec", "elf"))}
