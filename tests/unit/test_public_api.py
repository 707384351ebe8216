"""The public surface is declared and snapshotted: a change to it is a reviewed diff.

Regenerate after an intended change with ``EBPF_UPDATE_API=1 pytest tests/unit/test_public_api.py``.
"""

from __future__ import annotations

import importlib
import inspect
import os
from pathlib import Path

SNAPSHOT = Path(__file__).with_name("public_api.txt")
MODULES = ["ebpf", "ebpf.asm", "ebpf.btf", "ebpf.errors", "ebpf.features", "ebpf.link",
           "ebpf.platform", "ebpf.testing.plugin", "ebpf.elf", "ebpf.lib", "ebpf.hooks"]


def _describe(name: str, obj: object) -> str:
    if inspect.isclass(obj):
        return f"class {name}"
    if callable(obj):
        try:
            return f"def {name}{inspect.signature(obj)}"
        except (TypeError, ValueError):
            return f"def {name}(...)"
    return f"{name}: {type(obj).__name__}"


def _surface() -> str:
    lines = []
    for modname in MODULES:
        mod = importlib.import_module(modname)
        names = getattr(mod, "__all__", None)
        assert names is not None, f"{modname} has no __all__"
        for name in sorted(names):
            lines.append(f"{modname}: {_describe(name, getattr(mod, name))}")
    return "\n".join(lines) + "\n"


def test_every_public_name_exists() -> None:
    for modname in MODULES:
        mod = importlib.import_module(modname)
        for name in mod.__all__:
            assert hasattr(mod, name), f"{modname}.{name}"


def test_public_api_snapshot() -> None:
    current = _surface()
    if os.environ.get("EBPF_UPDATE_API") or not SNAPSHOT.exists():
        SNAPSHOT.write_text(current)
    assert current == SNAPSHOT.read_text(), "public API changed: review, then EBPF_UPDATE_API=1"
