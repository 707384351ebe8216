"""The CI fuzz budget: every parser target gets its share of ``EBPF_FUZZ_CASES`` (default
20,000 cases in total), seeded from objects compiled here with clang-19. A case that raises
anything but the parser's documented errors, breaks the disassembler round trip, allocates
past the address-space cap or runs over 1 s fails the test; its input is written under the
test's tmp dir (the path is in the failure message) for ``tests/unit/test_hardening_parsers.py``.

``EBPF_FUZZ_SEED`` picks another deterministic stream of mutations.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest


def _harness() -> ModuleType:
    # loaded by path: tests are imported in importlib mode, without a package on sys.path
    path = Path(__file__).with_name("harness.py")
    spec = importlib.util.spec_from_file_location("ebpf_fuzz_harness", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


H = _harness()
CASES = int(os.environ.get("EBPF_FUZZ_CASES", "20000"))
SEED = int(os.environ.get("EBPF_FUZZ_SEED", "0"))

pytestmark = pytest.mark.skipif(H.CLANG is None, reason="clang-19 not installed (seeds)")


@pytest.fixture(scope="module")
def targets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return H.build_seeds(tmp_path_factory.mktemp("fuzz-seeds"))  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", list(H.SHARES))
def test_fuzz(name: str, targets: dict[str, Any], tmp_path: Path) -> None:
    if name not in targets:
        pytest.skip(f"no seeds for {name} (needs bpftool and /sys/kernel/btf/vmlinux)")
    cases = H.budget(CASES, list(H.SHARES))[name]
    report = H.campaign(targets[name], cases, SEED)
    print(f"{name}: {report.cases} cases in {report.seconds:.1f} s "
          f"(slowest {report.slowest * 1000:.0f} ms)")
    if report.findings:
        paths = H.save(list(report.findings.values()), tmp_path)
        lines = [f.describe() for f in report.findings.values()]
        pytest.fail(f"{len(lines)} findings in {cases} cases (inputs: {paths[0].parent}):\n"
                    + "\n".join(lines))
