"""Sphinx configuration: the API reference from the docstrings, plus the Markdown guides.

Build (no network needed): ``python -m sphinx -W -b html docs docs/_build/html``.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "src")))

project = "ebpf"
author = "the ebpf authors"
copyright = "2026, the ebpf authors"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.viewcode", "myst_parser"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False}
# Cross-references to names outside the documented set stay plain text.
nitpicky = False
# "ref.python": a bare `type`/`id` in a signature matches many attributes (ambiguous, harmless)
suppress_warnings = ["myst.xref_missing", "myst.header", "ref.python"]
myst_heading_anchors = 3
html_theme = "alabaster"
html_static_path: list[str] = []
