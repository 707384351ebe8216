"""Run pytest in the guest and read back what happened to each test.

The guest runs the repository's own interpreter (``.venv/bin/python`` when there is one, so the
guest sees exactly the packages the host tested with) with ``--junitxml`` into the scratch dir;
:func:`parse_junit` turns that file into :class:`Outcome` records (passed / failed / skipped with
the skip's reason), which :mod:`tools.vmtest.table` groups into the README's kernel table.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from . import vm
from .kernel import Kernel, VMTestError

REPO = Path(__file__).resolve().parents[2]

#: What the host skips and the VM must prove, plus a smoke subset of the rest: the CI run.
CI_TESTS: tuple[str, ...] = (
    "tests/kernel/test_link_trace_kprobe.py",
    "tests/kernel/test_link_trace_btf.py",
    "tests/kernel/test_link_lsm.py",
    "tests/kernel/test_link_trace.py",
    "tests/kernel/test_link_uprobe.py",
    "tests/kernel/test_link_perf.py",
    "tests/kernel/test_link_xdp.py",
    "tests/kernel/test_link_tc.py",
    "tests/kernel/test_ringbuf.py",
    "tests/kernel/test_maps.py",
    "tests/kernel/test_cli.py",
)


#: How many host-passed tests of each module the CI run repeats in the guest, as a smoke test.
SMOKE_PER_MODULE = 2


@dataclasses.dataclass(frozen=True)
class Outcome:
    """One test's result in the guest."""

    nodeid: str  # e.g. tests/kernel/test_maps.py::test_hash[8]
    result: str  # passed, failed, error or skipped
    reason: str = ""  # the skip reason or the failure's first line


@dataclasses.dataclass
class SuiteResult:
    """A guest pytest run: its status, output, outcomes and timings."""

    run: vm.Result
    outcomes: list[Outcome]

    def counts(self) -> dict[str, int]:
        out = {"passed": 0, "failed": 0, "error": 0, "skipped": 0}
        for o in self.outcomes:
            out[o.result] = out.get(o.result, 0) + 1
        return out

    def summary(self) -> str:
        c = self.counts()
        return (f"vmtest: {self.run.accel} guest up in {self.run.boot_seconds:.1f} s, "
                f"suite wall {self.run.wall_seconds:.0f} s: {c['passed']} passed, "
                f"{c['failed']} failed, {c['error']} errors, {c['skipped']} skipped")


def _nodeid(case: ET.Element) -> str:
    cls = case.get("classname", "")
    name = case.get("name", "")
    # junit classname is the dotted module path (plus a class, if any).
    parts = cls.split(".")
    for i in range(len(parts), 0, -1):
        path = "/".join(parts[:i]) + ".py"
        if (REPO / path).exists():
            rest = parts[i:]
            return "::".join([path, *rest, name])
    return f"{cls}::{name}"


def parse_junit(path: str | os.PathLike[str]) -> list[Outcome]:
    """Outcomes from a pytest ``--junitxml`` file, one per test (an error in a passed test's
    teardown is reported by pytest as a second entry; the worse result wins)."""
    rank = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}
    root = ET.parse(path).getroot()
    out: dict[str, Outcome] = {}
    for case in root.iter("testcase"):
        result, reason = "passed", ""
        for child in case:
            message = child.get("message", "") or ""
            if child.tag == "skipped":
                result, reason = "skipped", message.removeprefix("Skipped: ")
            elif child.tag in ("failure", "error"):
                result = "failed" if child.tag == "failure" else "error"
                reason = message.splitlines()[0] if message else ""
        node = _nodeid(case)
        prev = out.get(node)
        if prev is None or rank[result] > rank[prev.result]:
            out[node] = Outcome(node, result, reason)
    return list(out.values())


def ci_selection(host: Sequence[Outcome], *, smoke: int = SMOKE_PER_MODULE,
                 files: Sequence[str] = CI_TESTS) -> list[str]:
    """The guest's share of a CI run, from the host's outcomes: the whole of ``files``, every
    test the host skipped (what only another kernel can prove), and the first ``smoke``
    host-passed tests of each other kernel-test module (does the module work there at all)."""
    whole = [f for f in files if (REPO / f).exists()]
    out: list[str] = list(whole)
    per_module: dict[str, int] = {}
    for o in host:
        module = o.nodeid.split("::", 1)[0]
        if module in whole or not module.startswith("tests/kernel/") or "::" not in o.nodeid:
            continue
        if o.result == "skipped":
            out.append(o.nodeid)
        elif o.result == "passed" and per_module.get(module, 0) < smoke:
            per_module[module] = per_module.get(module, 0) + 1
            out.append(o.nodeid)
    return out


def python() -> str:
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def run_pytest(kernel: Kernel, tests: Sequence[str], *, extra: Sequence[str] = (),
               accel: str = "auto", timeout: float = 3600.0, stream: IO[str] | None = None,
               cpus: int = 2, memory: str = "3G", junit_out: str | None = None,
               select: Sequence[str] | None = None) -> SuiteResult:
    """Run ``pytest tests`` in the guest; the junit report comes back through the scratch dir
    (and is copied to ``junit_out`` when given). ``select``: node ids or test files; only
    those run (see :mod:`tools.vmtest._select`), and ``tests`` defaults to their files."""
    with tempfile.TemporaryDirectory(prefix="ebpf-vmtest-") as scratch:
        junit = os.path.join(scratch, "junit.xml")
        env = {"EBPF_VMTEST_GUEST": kernel.release, "PYTHONUNBUFFERED": "1"}
        plugin: list[str] = []
        if select is not None:
            sel_file = os.path.join(scratch, "select.txt")
            Path(sel_file).write_text("".join(f"{s}\n" for s in select))
            env["EBPF_VMTEST_SELECT"] = sel_file
            plugin = ["-p", "tools.vmtest._select"]
            if not tests:
                tests = sorted({s.split("::", 1)[0] for s in select})
        argv = [python(), "-m", "pytest", "-p", "no:cacheprovider", *plugin, "-q", "-rs",
                f"--junitxml={junit}", *extra, *tests]
        res = vm.run(kernel, argv, accel=accel, timeout=timeout, cwd=str(REPO), stream=stream,
                     scratch=scratch, cpus=cpus, memory=memory, env=env)
        if not os.path.exists(junit):
            raise VMTestError(f"pytest in the guest wrote no report (status {res.status}); "
                              f"output tail:\n{res.output[-3000:]}")
        if junit_out is not None:
            shutil.copyfile(junit, junit_out)
        return SuiteResult(res, parse_junit(junit))
