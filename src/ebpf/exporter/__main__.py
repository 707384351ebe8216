"""``python -m ebpf.exporter``: the same as ``python -m ebpf exporter``."""

from __future__ import annotations

import sys

from . import main

sys.exit(main(sys.argv[1:]))
