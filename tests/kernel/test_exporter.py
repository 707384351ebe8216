"""The Prometheus exporter end to end: ``python -m ebpf exporter`` serves metrics from the
built-in programs' maps, a real Prometheus server (Debian's ``prometheus``) started here
scrapes it, and the test reads the values back through Prometheus's HTTP API."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("prometheus_client", reason="the exporter extra is not installed")
pytest.importorskip("yaml", reason="the exporter extra is not installed")

pytestmark = pytest.mark.usefixtures("tracefs")

CONFIG = """
programs:
  - name: sys
    builtin: syscalls
    metrics:
      counters:
        - name: syscalls_total
          help: System calls by name
          map: counts
          labels:
            - {name: syscall, size: 4, decoders: [{name: syscall}]}
  - name: rq
    builtin: runqlat
    metrics:
      histograms:
        - name: runq_latency_seconds
          help: Run queue latency
          map: hist
          bucket_type: exp2
          bucket_multiplier: 0.000001
  - name: ex
    builtin: execs
    metrics:
      counters:
        - name: execs_total
          help: Execs by command
          map: counts
          labels:
            - {name: comm, size: 16, decoders: [{name: string},
                                              {name: regexp, regexps: ["^true$"]}]}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def get(url: str, timeout: float = 5) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        body: bytes = r.read()
        return body.decode()


def wait_for(fn: Any, what: str, timeout: float = 40) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except OSError as e:
            last = e
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}: {last!r}")


@pytest.fixture
def exporter(tmp_path) -> Iterator[int]:
    cfg = tmp_path / "exporter.yaml"
    cfg.write_text(CONFIG)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ebpf", "exporter", "--config", str(cfg),
                             "--listen", f"127.0.0.1:{port}"], stderr=subprocess.PIPE,
                            text=True)
    try:
        wait_for(lambda: proc.poll() is None and get(f"http://127.0.0.1:{port}/metrics"),
                 "the exporter")
        yield port
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    assert proc.returncode == 0, err


def test_metrics_page(exporter: int) -> None:
    for _ in range(100):
        os.getppid()
    subprocess.run(["/bin/true"])
    text = get(f"http://127.0.0.1:{exporter}/metrics")
    assert 'ebpf_syscalls_total{syscall="getppid"}' in text
    assert 'ebpf_execs_total{comm="true"}' in text
    assert "ebpf_runq_latency_seconds_bucket{le=" in text
    assert 'comm="python' not in text          # the regexp decoder dropped other commands


@pytest.mark.skipif(shutil.which("prometheus") is None,
                    reason="Debian's prometheus package is not installed")
def test_real_prometheus_scrapes_the_exporter(exporter: int, tmp_path) -> None:
    port = free_port()
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: ebpf\n    static_configs: [{{targets: ['127.0.0.1:{exporter}']}}]\n")
    prom = subprocess.Popen(
        ["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        def query(q: str) -> list[Any]:
            url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": q})
            res: list[Any] = json.loads(get(url))["data"]["result"]
            return res

        for _ in range(1000):
            os.getppid()
        got = wait_for(lambda: [r for r in query('ebpf_syscalls_total{syscall="getppid"}')
                                if float(r["value"][1]) >= 1000], "the getppid count")
        assert got[0]["metric"]["job"] == "ebpf"
        hist = wait_for(lambda: query("sum(ebpf_runq_latency_seconds_count)"), "histogram")
        assert float(hist[0]["value"][1]) > 0
        q = wait_for(lambda: query(
            "histogram_quantile(0.5, sum by (le) (ebpf_runq_latency_seconds_bucket))"),
            "a quantile")
        assert 0 <= float(q[0]["value"][1]) < 10
    finally:
        prom.terminate()
        try:
            prom.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            prom.kill()
            prom.communicate()


def test_bad_config(tmp_path) -> None:
    from ebpf.errors import BPFError
    from ebpf.exporter import load_config

    cfg = tmp_path / "bad.yaml"
    cfg.write_text("programs: [{name: x}]\n")
    with pytest.raises(BPFError, match="builtin/object"):
        load_config(str(cfg))


PROG_C = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 64);
    __type(key, __u32);
    __type(value, __u64);
} calls SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
    __u32 k = bpf_get_current_pid_tgid() >> 32;
    __u64 one = 1, *v = bpf_map_lookup_elem(&calls, &k);
    if (v)
        __sync_fetch_and_add(v, 1);
    else
        bpf_map_update_elem(&calls, &k, &one, BPF_NOEXIST);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""


@pytest.mark.skipif(shutil.which("clang-19") is None, reason="clang-19 not installed")
def test_elf_object_program(tmp_path) -> None:
    import sysconfig

    from ebpf.exporter import Exporter

    arch = sysconfig.get_config_var("MULTIARCH")
    (tmp_path / "p.c").write_text(PROG_C)
    subprocess.run(["clang-19", "-O2", "-g", "-target", "bpf",
                    *([f"-I/usr/include/{arch}"] if arch else []), "-c",
                    str(tmp_path / "p.c"), "-o", str(tmp_path / "p.o")], check=True)
    me = str(os.getpid())
    conf = {"programs": [{
        "name": "obj", "object": str(tmp_path / "p.o"),
        "attach": [{"program": "on_getppid", "tracepoint": "syscalls:sys_enter_getppid"}],
        "metrics": {
            "counters": [{"name": "getppid_total", "map": "calls",
                          "labels": [{"name": "who", "size": 4, "decoders": [
                              {"name": "uint"},
                              {"name": "static_map", "mapping": {me: "the-test"}}]}]}],
            "gauges": [{"name": "getppid_callers", "map": "calls",
                        "labels": [{"name": "pid", "size": 4}]}],
        }}]}
    with Exporter(conf) as exp:
        for _ in range(250):
            os.getppid()
        fams = {f.name: f for f in exp.collect()}
    samples = {tuple(s.labels.items()): s.value for s in fams["ebpf_getppid"].samples
               if s.name == "ebpf_getppid_total"}
    assert samples[(("who", "the-test"),)] >= 250
    assert any(s.labels == {"pid": me} for s in fams["ebpf_getppid_callers"].samples)
