"""Architecture rules, checked on the source: who may enter the kernel, who may import whom."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "ebpf"


def _modules() -> list[tuple[Path, ast.Module]]:
    return [(p, ast.parse(p.read_text(), str(p))) for p in SRC.rglob("*.py")]


def test_only_sys_creates_cdll_or_calls_syscall() -> None:
    offenders = []
    for path, tree in _modules():
        if path.is_relative_to(SRC / "_sys"):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("CDLL", "LoadLibrary"):
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno} {node.attr}")
            if isinstance(node, ast.Name) and node.id in ("CDLL",):
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno} {node.id}")
    assert not offenders, offenders


def _imports(tree: ast.Module, pkg: str) -> set[str]:
    """Absolute dotted names of every ebpf module imported by a module in package ``pkg``."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join([*base, node.module] if node.module else base)
            else:
                mod = node.module or ""
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m.startswith("ebpf")}


def _package(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    return ".".join(rel.parts[:-1])  # a module's package; for __init__, the package itself


def test_pure_layers_do_not_import_the_kernel_layer() -> None:
    """asm, btf (but its kernel/handle modules), _uapi and errors never import ebpf._sys."""
    pure = ("asm", "_uapi")
    offenders = []
    for path, tree in _modules():
        rel = path.relative_to(SRC)
        top = rel.parts[0]
        if top in pure or rel.name == "errors.py" or (
                top == "btf" and rel.name not in ("handle.py", "kernel.py")):
            bad = [m for m in _imports(tree, _package(path))
                   if m.startswith("ebpf._sys") or m.startswith(("ebpf._maps", "ebpf._programs",
                                                                  "ebpf.link"))]
            if bad:
                offenders.append(f"{rel}: {sorted(bad)}")
    assert not offenders, offenders


def test_nothing_in_the_package_imports_testing() -> None:
    offenders = []
    for path, tree in _modules():
        rel = path.relative_to(SRC)
        if rel.parts[0] == "testing" or (rel.name == "__init__.py" and len(rel.parts) == 1):
            continue
        if any(m.startswith("ebpf.testing") for m in _imports(tree, _package(path))):
            offenders.append(str(rel))
    assert not offenders, offenders
