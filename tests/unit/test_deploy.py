"""deploy/: the example exporter config and the DaemonSet's embedded config are valid."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
yaml = pytest.importorskip("yaml", reason="pyyaml (exporter extra) is not installed")


def test_example_config_is_valid() -> None:
    from ebpf.exporter import load_config

    conf = load_config(str(ROOT / "deploy" / "exporter.yaml"))
    assert {p["builtin"] for p in conf["programs"]} == {"syscalls", "execs", "runqlat"}


def test_daemonset(tmp_path: Path) -> None:
    from ebpf.exporter import load_config

    docs = list(yaml.safe_load_all((ROOT / "deploy" / "daemonset.yaml").read_text()))
    cm = next(d for d in docs if d["kind"] == "ConfigMap")
    ds = next(d for d in docs if d["kind"] == "DaemonSet")
    (tmp_path / "c.yaml").write_text(cm["data"]["exporter.yaml"])
    load_config(str(tmp_path / "c.yaml"))
    spec = ds["spec"]["template"]["spec"]
    assert spec["hostPID"] is True
    assert spec["containers"][0]["securityContext"]["privileged"] is True
    paths = {v["hostPath"]["path"] for v in spec["volumes"] if "hostPath" in v}
    assert {"/sys/fs/bpf", "/sys/kernel/tracing", "/sys/fs/cgroup"} <= paths
