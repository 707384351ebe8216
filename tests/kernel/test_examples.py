"""Every script in examples/ runs and exits 0 (each checks its own results)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ebpf import platform
from ebpf.platform import Capability

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.py"))
NEEDS_TRACEFS = {"tracepoint_writes.py"}
#: Examples of program types some kernels refuse to load (fentry/fexit/LSM give EPERM on
#: the 6.18 host; they run in the 6.1 VM of tools/vmtest).
TRACING = {"py_fentry_unlinks.py"}

pytestmark = pytest.mark.capabilities(Capability.BPF, Capability.NET_ADMIN)


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 5


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(path: Path, tracefs: str) -> None:
    assert len(path.read_text().splitlines()) < 80, "keep examples short"
    if path.name in NEEDS_TRACEFS and not platform.has_capability(Capability.PERFMON):
        pytest.skip("attaching a tracepoint needs CAP_PERFMON (or CAP_SYS_ADMIN)")
    env = dict(os.environ, PYTHONWARNINGS="error")
    res = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                         timeout=120, env=env, cwd=path.parent)
    if (res.returncode and path.name in TRACING
            and "BPFPermissionError: BPF_PROG_LOAD: Operation not permitted" in res.stderr):
        pytest.skip(f"{path.name}: BPF_PROG_LOAD of a tracing program refused with EPERM on "
                    "this kernel (it runs in the VM: python -m tools.vmtest)")
    assert res.returncode == 0, f"{path.name} failed:\n{res.stdout}\n{res.stderr}"
    assert res.stdout.strip(), f"{path.name} printed nothing"
