"""The examples/py_*.py programs, run as the user would (each checks its own result)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["py_xdp_counter.py", "py_rate_limiter.py",
                                  "py_syscall_latency.py"])
def test_example_runs(name: str) -> None:
    res = subprocess.run([sys.executable, str(ROOT / "examples" / name)], capture_output=True,
                         text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
