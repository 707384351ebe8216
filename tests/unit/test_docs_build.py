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
    assert_public_api_documented(tmp_path / "html" / "objects.inv")


#: the public packages: each name in their ``__all__`` must have an API reference entry
PUBLIC = ("ebpf", "ebpf.asm", "ebpf.bpf", "ebpf.btf", "ebpf.catalog", "ebpf.consumer",
          "ebpf.elf", "ebpf.exporter", "ebpf.hooks", "ebpf.lib", "ebpf.link", "ebpf.script",
          "ebpf.skeleton", "ebpf.tools")


def assert_public_api_documented(inventory: Path) -> None:
    import importlib

    from sphinx.util.inventory import InventoryFile

    with open(inventory, "rb") as f:
        inv = InventoryFile.load(f, "", lambda base, uri: uri)
    documented = {name for kind, entries in inv.items() if kind.startswith("py:")
                  for name in entries}
    missing = [f"{pkg}.{name}" for pkg in PUBLIC
               for name in getattr(importlib.import_module(pkg), "__all__", ())
               if f"{pkg}.{name}" not in documented]
    tools = importlib.import_module("ebpf.tools")
    missing += [f"ebpf.tools.{t}" for t in tools.TOOLS if f"ebpf.tools.{t}" not in documented]
    assert not missing, f"not in the API reference: {missing}"


def test_guide_links_every_example() -> None:
    guide = (ROOT / "docs" / "guide.md").read_text()
    for ex in sorted((ROOT / "examples").glob("*.py")):
        assert f"examples/{ex.name}" in guide, ex.name
