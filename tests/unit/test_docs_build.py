"""The Sphinx docs (API reference + guides) build with warnings as errors, offline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_docs_build(tmp_path: Path) -> None:
    pytest.importorskip("sphinx", reason="the docs extra (sphinx) is not installed")
    pytest.importorskip("myst_parser", reason="the docs extra (myst-parser) is not installed")
    r = subprocess.run([sys.executable, "-m", "sphinx", "-q", "-W", "--keep-going", "-b",
                        "html", "-d", str(tmp_path / "doctrees"), str(ROOT / "docs"),
                        str(tmp_path / "html")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    html = (tmp_path / "html" / "api" / "lib.html").read_text()
    assert "log2_increment" in html and "print_log2" in html
    for page in ("guide", "tools", "exporter", "examples"):
        assert (tmp_path / "html" / f"{page}.html").exists()


def test_guide_links_every_example() -> None:
    guide = (ROOT / "docs" / "guide.md").read_text()
    for ex in sorted((ROOT / "examples").glob("*.py")):
        assert f"examples/{ex.name}" in guide, ex.name
