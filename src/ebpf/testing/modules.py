"""Import Python files as modules, for tests of ``ebpf.bpf`` programs.

The front end compiles a program from its function's source file (``inspect`` needs one), so a
test that writes a program at run time, or keeps helper code next to its test files without a
package (pytest's ``--import-mode=importlib``), needs to import a file by path. These two do
that and register the module in :data:`sys.modules` under its name, as a normal import would
(``dataclasses`` and ``typing`` resolve the module through it).
"""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path
from types import ModuleType

__all__ = ["import_file", "import_source"]


def import_file(path: str | Path, name: str | None = None) -> ModuleType:
    """Import the Python file at ``path`` as module ``name`` (default: the file's stem).

    A module already imported under that name is returned as it is, so sibling helper files
    shared by several test modules are executed once.
    """
    path = Path(path)
    name = name or path.stem
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {str(path)!r} as a module")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        del sys.modules[name]
        raise
    return mod


def import_source(directory: str | Path, name: str, source: str) -> ModuleType:
    """Write ``source`` (dedented) to ``directory/name.py`` and import it as a fresh module
    ``name``, replacing any module of that name imported before."""
    path = Path(directory) / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    sys.modules.pop(name, None)
    return import_file(path, name)
