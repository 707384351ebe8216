"""Dispatch ``ebpf tool NAME [options]`` to the tool's module."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from . import TOOLS


def main(argv: Sequence[str]) -> int:
    """Run tool ``argv[0]`` with the remaining options; list the tools without a name."""
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: ebpf tool NAME [options]\n\ntools: " + ", ".join(TOOLS))
        return 0 if argv else 2
    name, rest = argv[0], list(argv[1:])
    if name not in TOOLS:
        print(f"ebpf tool: unknown tool {name!r} (have: {', '.join(TOOLS)})", file=sys.stderr)
        return 2
    module = importlib.import_module(f"ebpf.tools.{name}")
    rc: int = module.main(rest)
    return rc
