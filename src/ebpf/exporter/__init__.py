"""Prometheus exporter: ``python -m ebpf exporter --config exporter.yaml`` serves ``/metrics``.

The YAML config names programs, how to attach them, and which of their maps become which
metrics, in the spirit of cloudflare/ebpf_exporter::

    listen: 127.0.0.1:9435            # or --listen
    programs:
      - name: sys
        builtin: syscalls             # see ebpf.exporter.builtin
        metrics:
          counters:
            - name: syscalls_total
              help: System calls by name
              map: counts
              labels:
                - {name: syscall, size: 4, decoders: [{name: syscall}]}
      - name: mine
        object: /path/to/prog.o       # an ELF object, loaded with ebpf.load
        attach:
          - {program: on_exec, tracepoint: "sched:sched_process_exec"}
          - {program: count_rx, xdp: eth0}
          - {program: on_switch, raw_tracepoint: sched_switch}
        metrics:
          gauges: [...]               # like counters
          histograms:
            - name: runq_latency_seconds
              map: hist
              bucket_type: exp2       # log2 slots (ebpf.lib.histogram) or "linear"
              bucket_multiplier: 0.000001
              labels: []              # per-key histograms: key = labels then u32 slot

Map values are u64 (per-CPU values are summed). Metric names get the ``ebpf_`` prefix unless
they have it. Needs the ``exporter`` extra (``prometheus_client``, ``pyyaml``).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack
from typing import Any

from ..errors import BPFError
from .decoders import Skip, decode

__all__ = ["Exporter", "load_config", "main"]


def load_config(path: str) -> dict[str, Any]:
    """Read and check the YAML config (a :class:`~ebpf.errors.BPFError` when malformed)."""
    import yaml  # type: ignore[import-untyped, import-not-found, unused-ignore]

    with open(path) as f:
        conf = yaml.safe_load(f) or {}
    if not isinstance(conf, dict) or not isinstance(conf.get("programs"), list):
        raise BPFError(f"{path}: the config needs a 'programs' list")
    for p in conf["programs"]:
        if not isinstance(p, dict) or "name" not in p or ("builtin" in p) == ("object" in p):
            raise BPFError(f"{path}: each program needs a name and one of builtin/object: {p}")
    return conf


def _value(v: Any) -> int:
    if isinstance(v, int):
        return v
    if hasattr(v, "sum"):
        return int(v.sum())
    return int.from_bytes(bytes(v), sys.byteorder)


def _key_bytes(m: Any, k: Any) -> bytes:
    return k.to_bytes(m.key_size, sys.byteorder) if isinstance(k, int) else bytes(k)


def _labels(raw: bytes, specs: Sequence[Mapping[str, Any]]) -> list[str]:
    out, at = [], 0
    for spec in specs:
        size = int(spec["size"])
        out.append(decode(raw[at:at + size], spec.get("decoders") or [{"name": "uint"}]))
        at += size
    return out


def _metric_name(name: str) -> str:
    return name if name.startswith("ebpf_") else f"ebpf_{name}"


class Exporter:
    """Loads and attaches the configured programs and turns their maps into metrics at each
    scrape (a ``prometheus_client`` custom collector). Close it to detach everything."""

    def __init__(self, conf: Mapping[str, Any]) -> None:
        self.conf = conf
        self._stack = ExitStack()
        self.maps: dict[str, dict[str, Any]] = {}
        try:
            for p in conf["programs"]:
                self.maps[p["name"]] = self._load(p)
        except BaseException:
            self._stack.close()
            raise

    def _load(self, p: Mapping[str, Any]) -> dict[str, Any]:
        if "builtin" in p:
            from .builtin import BUILTINS

            if p["builtin"] not in BUILTINS:
                raise BPFError(f"unknown builtin {p['builtin']!r} (have: {', '.join(BUILTINS)})")
            return BUILTINS[p["builtin"]](self._stack)
        from .._collection import load

        coll = self._stack.enter_context(load(p["object"]))
        for a in p.get("attach") or []:
            prog = coll.programs[a["program"]]
            if "tracepoint" in a:
                from ..link.tracepoint import attach_tracepoint
                from ..tools._common import tracefs

                tracefs()
                cat, _, name = str(a["tracepoint"]).replace("/", ":").partition(":")
                self._stack.enter_context(attach_tracepoint(prog, cat, name))
            elif "raw_tracepoint" in a:
                from ..link.raw_tracepoint import attach_raw_tracepoint

                self._stack.enter_context(attach_raw_tracepoint(prog, a["raw_tracepoint"]))
            elif "xdp" in a:
                from ..link.xdp import attach_xdp

                self._stack.enter_context(attach_xdp(prog, a["xdp"]))
            else:
                raise BPFError(f"program {p['name']}: unknown attach entry {a}")
        return dict(coll.maps)

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> Exporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # prometheus_client collector protocol
    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        for p in self.conf["programs"]:
            metrics = p.get("metrics") or {}
            maps = self.maps[p["name"]]
            for kind, family in (("counters", CounterMetricFamily),
                                 ("gauges", GaugeMetricFamily)):
                for m in metrics.get(kind) or []:
                    specs = m.get("labels") or []
                    fam = family(_metric_name(m["name"]).removesuffix("_total")
                                 if kind == "counters" else _metric_name(m["name"]),
                                 m.get("help", m["name"]), labels=[s["name"] for s in specs])
                    sums: dict[tuple[str, ...], int] = {}
                    table = maps[m["map"]]
                    for k, v in table.items():
                        try:
                            labels = tuple(_labels(_key_bytes(table, k), specs))
                        except Skip:
                            continue
                        sums[labels] = sums.get(labels, 0) + _value(v)
                    for labels, total in sums.items():
                        fam.add_metric(list(labels), total)
                    yield fam
            for m in metrics.get("histograms") or []:
                yield self._histogram(m, maps[m["map"]], HistogramMetricFamily)

    def _histogram(self, m: Mapping[str, Any], table: Any, family: Any) -> Any:
        specs = m.get("labels") or []
        mult = float(m.get("bucket_multiplier", 1))
        exp2 = m.get("bucket_type", "exp2") == "exp2"
        hists: dict[tuple[str, ...], dict[int, int]] = {}
        for k, v in table.items():
            raw = _key_bytes(table, k)
            if specs:
                try:
                    labels = tuple(_labels(raw, specs))
                except Skip:
                    continue
                slot = int.from_bytes(raw[-4:], sys.byteorder)
            else:
                labels, slot = (), int.from_bytes(raw[:4], sys.byteorder)
            h = hists.setdefault(labels, {})
            h[slot] = h.get(slot, 0) + _value(v)
        fam = family(_metric_name(m["name"]), m.get("help", m["name"]),
                     labels=[s["name"] for s in specs])
        for labels, h in hists.items():
            top = max(h, default=0)
            buckets, running, total = [], 0, 0.0
            for slot in range(top + 1):
                n = h.get(slot, 0)
                running += n
                upper = ((1 << slot) if exp2 else slot + 1) * mult   # slot's exclusive top
                low = ((1 << slot) >> 1 if exp2 else slot) * mult
                total += n * low                                      # lower-bound estimate
                buckets.append((repr(upper), running))
            buckets.append(("+Inf", running))
            fam.add_metric(list(labels), buckets, sum_value=total)
        return fam


def main(argv: Sequence[str] | None = None) -> int:
    """``ebpf exporter --config FILE [--listen HOST:PORT]``: serve until SIGINT/SIGTERM."""
    ap = argparse.ArgumentParser(prog="ebpf exporter", description=__doc__.split("\n")[0])
    ap.add_argument("--config", required=True, help="YAML config file")
    ap.add_argument("--listen", help="HOST:PORT to serve /metrics on (default 0.0.0.0:9435)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    try:
        from prometheus_client import start_http_server
        from prometheus_client.core import REGISTRY
    except ImportError as e:
        print(f"ebpf exporter needs the exporter extra (pip install 'ebpf[exporter]'): {e}",
              file=sys.stderr)
        return 2
    conf = load_config(args.config)
    host, _, port = str(args.listen or conf.get("listen") or "0.0.0.0:9435").rpartition(":")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with Exporter(conf) as exporter:
        REGISTRY.register(exporter)
        server, thread = start_http_server(int(port), addr=host or "0.0.0.0")
        if args.verbose:
            print(f"serving /metrics on {host or '0.0.0.0'}:{port} for "
                  f"{', '.join(p['name'] for p in conf['programs'])}", file=sys.stderr,
                  flush=True)
        try:
            stop.wait()
        finally:
            server.shutdown()
            server.server_close()
            thread.join(5)
            REGISTRY.unregister(exporter)
    return 0
