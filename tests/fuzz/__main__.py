"""``python -m tests.fuzz --cases N``: a fuzz campaign of any length (see ``harness.py``)."""

from __future__ import annotations

import sys

from tests.fuzz.harness import main

sys.exit(main())
