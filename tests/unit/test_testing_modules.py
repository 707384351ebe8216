"""ebpf.testing.modules: importing files and generated sources as modules."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ebpf.testing.modules import import_file, import_source


def test_import_source_writes_imports_and_replaces(tmp_path: Path) -> None:
    mod = import_source(tmp_path, "gen_mod_a", """
        X = 1
    """)
    try:
        assert mod.X == 1 and sys.modules["gen_mod_a"] is mod
        assert (tmp_path / "gen_mod_a.py").read_text() == "\nX = 1\n"
        again = import_source(tmp_path, "gen_mod_a", "X = 2\n")
        assert again is not mod and again.X == 2
        assert import_file(tmp_path / "gen_mod_a.py") is again  # cached by name
    finally:
        sys.modules.pop("gen_mod_a", None)


def test_a_failing_module_is_not_left_registered(tmp_path: Path) -> None:
    with pytest.raises(ZeroDivisionError):
        import_source(tmp_path, "gen_mod_b", "1 / 0\n")
    assert "gen_mod_b" not in sys.modules


def test_a_path_that_is_not_python_is_an_import_error(tmp_path: Path) -> None:
    with pytest.raises(ImportError, match="cannot import"):
        import_file(tmp_path / "data.bin", "gen_mod_c")
