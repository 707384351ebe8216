"""tools.vmtest's pure parts: junit parsing, the CI selection, the selection plugin, the table."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tools.vmtest import suite, table
from tools.vmtest.suite import Outcome

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest">
<testcase classname="tests.kernel.test_maps" name="test_hash[8]"/>
<testcase classname="tests.kernel.test_maps" name="test_array"/>
<testcase classname="tests.kernel.test_maps" name="test_lru"/>
<testcase classname="tests.kernel.test_link_lsm" name="test_lsm_file_open">
  <skipped message="Skipped: EPERM: this kernel refuses LSM loads"/></testcase>
<testcase classname="tests.kernel.test_link_cgroup" name="test_bind">
  <failure message="AssertionError: boom&#10;more"/></testcase>
<testcase classname="tests.kernel.test_link_cgroup" name="test_bind">
  <error message="teardown failed"/></testcase>
</testsuite></testsuites>
"""


def test_parse_junit_maps_node_ids_and_keeps_the_worse_result(tmp_path: Path) -> None:
    p = tmp_path / "j.xml"
    p.write_text(JUNIT)
    got = {o.nodeid: o for o in suite.parse_junit(p)}
    assert got["tests/kernel/test_maps.py::test_hash[8]"].result == "passed"
    lsm = got["tests/kernel/test_link_lsm.py::test_lsm_file_open"]
    assert (lsm.result, lsm.reason) == ("skipped", "EPERM: this kernel refuses LSM loads")
    assert got["tests/kernel/test_link_cgroup.py::test_bind"].result == "error"


def test_ci_selection_takes_skips_and_a_smoke_subset() -> None:
    host = [
        Outcome("tests/kernel/test_maps.py::test_a", "passed"),
        Outcome("tests/kernel/test_maps.py::test_b", "passed"),
        Outcome("tests/kernel/test_maps.py::test_c", "passed"),
        Outcome("tests/kernel/test_x.py::test_a", "passed"),
        Outcome("tests/kernel/test_x.py::test_b", "skipped", "EPERM"),
        Outcome("tests/kernel/test_x.py::test_c", "failed"),
        Outcome("tests/kernel/test_x.py::test_d", "passed"),
        Outcome("tests/kernel/test_x.py::test_e", "passed"),
        Outcome("tests/unit/test_u.py::test_a", "skipped"),
    ]
    sel = suite.ci_selection(host, smoke=2, files=("tests/kernel/test_maps.py",))
    assert sel == ["tests/kernel/test_maps.py", "tests/kernel/test_x.py::test_a",
                   "tests/kernel/test_x.py::test_b", "tests/kernel/test_x.py::test_d"]


def test_select_plugin_runs_only_the_selection_and_tolerates_unknown_ids(
        tmp_path: Path) -> None:
    (tmp_path / "test_one.py").write_text(
        "def test_a(): pass\ndef test_b(): pass\ndef test_c(): assert False\n")
    (tmp_path / "test_two.py").write_text("def test_z(): pass\n")
    sel = tmp_path / "sel.txt"
    sel.write_text("test_one.py::test_a\ntest_one.py::test_gone[x]\ntest_two.py\n")
    repo = Path(suite.REPO)
    env = {**os.environ, "EBPF_VMTEST_SELECT": str(sel),
           "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p",
                        "tools.vmtest._select", "-q", "-s", "test_one.py", "test_two.py"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 passed, 2 deselected" in r.stdout
    assert "1 ids not collected here" in r.stdout and "test_gone[x]" in r.stdout


def test_table_groups_by_family_and_kernel() -> None:
    host = [Outcome("tests/kernel/test_link_lsm.py::test_lsm_x", "skipped", "EPERM: no")]
    vm = [Outcome("tests/kernel/test_link_lsm.py::test_lsm_x", "passed")]
    text = table.render([("6.18", host), ("6.1", vm)])
    assert "| LSM | 1 skipped (EPERM: no) | 1 passed |" in text
