"""``python -m ebpf``: see :mod:`ebpf.cli`."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
