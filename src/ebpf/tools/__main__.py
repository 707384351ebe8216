"""``python -m ebpf.tools NAME [options]``: the same as ``python -m ebpf tool NAME``."""

from __future__ import annotations

import sys

from .run import main

sys.exit(main(sys.argv[1:]))
