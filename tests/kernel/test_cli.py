"""The ``ebpf`` command runs its demo and inspects the kernel."""

from __future__ import annotations

import json
import subprocess
import sys


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ebpf", *args], capture_output=True, text=True,
                          timeout=120)


def test_demo() -> None:
    r = _run("demo", "--repeat", "50")
    assert r.returncode == 0, r.stderr
    assert "packets=50" in r.stdout and r.stdout.rstrip().endswith("OK")


def test_feature_json() -> None:
    r = _run("feature", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["map_types"]["HASH"] is True and data["isa"]["v1"] is True


def test_prog_list_and_btf_show() -> None:
    r = _run("prog", "list", "--json")
    assert r.returncode == 0, r.stderr
    assert isinstance(json.loads(r.stdout), list)
    r = _run("btf", "show", "xdp_md")
    assert r.returncode == 0, r.stderr
    assert "data_end" in r.stdout
