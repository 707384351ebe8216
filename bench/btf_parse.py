"""Benchmark: ebpf.btf on the running kernel's BTF, against libbpf in C (the floor).

    python bench/btf_parse.py [--runs N]

Each measurement runs in a fresh process, several times; the table shows the median and the
min-max of the time measured inside the process (Python: from before ``from ebpf import btf``,
so the import of ``ebpf.btf`` is included; C: from the start of ``main``), and the ratio of the
medians to the C floor (``bench/btf_parse.c``, built here with gcc and libbpf when needed).
``import ebpf`` (the package root) is measured on its own row, and once included. The process
wall time (interpreter start-up included) is reported next to it.

``run()`` returns the rows as dicts for an aggregating bench runner.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "bench" / "build"
C_SOURCE = ROOT / "bench" / "btf_parse.c"
C_BINARY = BUILD / "btf_parse"
VMLINUX = "/sys/kernel/btf/vmlinux"

#: Time from before ``from ebpf import btf``; ``import ebpf`` (the package root, which other
#: parts of the library own) is done first and reported in a row of its own.
_PRELUDE = "import time\nimport ebpf\nt0 = time.perf_counter()\nfrom ebpf import btf\n"
#: The same, with the package root's import counted.
_PRELUDE_ROOT = "import time\nt0 = time.perf_counter()\nfrom ebpf import btf\n"
_EPILOGUE = "\nprint(f'{time.perf_counter() - t0:.9f}', sink)\n"

_FIND = (
    "spec = btf.load_kernel()\n"
    "task = spec.find('task_struct', kind=btf.Struct)\n"
    "sink = sum(m.type.id for m in task.members)"
)
_TYPES = "spec = btf.load_kernel()\nsink = 0\nfor t in spec.types():\n    sink += len(t.name)\n"
_EVERYTHING = (
    "spec = btf.load_kernel()\n"
    "sink = 0\n"
    "Composite, FuncProto, Enums = btf.Composite, btf.FuncProto, (btf.Enum, btf.Enum64)\n"
    "for t in spec.types():\n"
    "    sink += len(t.name)\n"
    "    if isinstance(t, Composite):\n"
    "        for m in t.members:\n"
    "            sink += len(m.name) + m.type_id + m.offset\n"
    "    elif isinstance(t, FuncProto):\n"
    "        for p in t.params:\n"
    "            sink += len(p.name) + p.type_id\n"
    "    elif isinstance(t, Enums):\n"
    "        for v in t.values:\n"
    "            sink += len(v.name)\n"
)

#: name -> (prelude, Python snippet, C floor mode or None, target in seconds or None)
CASES: dict[str, tuple[str, str, str | None, float | None]] = {
    "import ebpf (package root only)": (
        "import time\nt0 = time.perf_counter()\nimport ebpf\n",
        "sink = 0",
        None,
        None,
    ),
    "index every record (len)": (_PRELUDE, "sink = len(btf.load_kernel())", "parse", None),
    "find task_struct + member types": (_PRELUDE, _FIND, "find", 0.040),
    "find, with import ebpf counted": (_PRELUDE_ROOT, _FIND, "find", 0.040),
    "decode every type (t.name)": (_PRELUDE, _TYPES, "all", 0.200),
    "decode every type, member, param": (_PRELUDE, _EVERYTHING, "all", None),
}
#: Issue 13's targets, as the most a case's median may be times the C floor's (they replace
#: an absolute target of the same case in the aggregated table).
RATIO_TARGETS: dict[str, float] = {
    "decode every type (t.name)": 5.0,
    "decode every type, member, param": 10.0,
}


def build_floor() -> Path | None:
    """Compile the C floor if it is missing or stale; ``None`` if it cannot be built."""
    if C_BINARY.exists() and C_BINARY.stat().st_mtime >= C_SOURCE.stat().st_mtime:
        return C_BINARY
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        return None
    BUILD.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [gcc, "-O2", str(C_SOURCE), "-lbpf", "-o", str(C_BINARY)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        print(f"cannot build the C floor (libbpf-dev missing?):\n{proc.stderr}", file=sys.stderr)
        return None
    return C_BINARY


def _python_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # measure with cached bytecode, as installed
    env["PYTHONPYCACHEPREFIX"] = str(BUILD / "pycache")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), *filter(None, [env.get("PYTHONPATH")])])
    return env


def _run(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run one fresh process; return (time it measured itself, wall time of the process)."""
    start = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True, env=env, check=True).stdout
    wall = time.perf_counter() - start
    return float(out.split()[0]), wall


def _stats(samples: list[float]) -> tuple[float, float, float]:
    return statistics.median(samples), min(samples), max(samples)


def run(runs: int = 7) -> list[dict[str, object]]:
    """Measure every case; one row per case (times in seconds, ratio = median / floor)."""
    if not os.access(VMLINUX, os.R_OK):
        raise SystemExit(f"{VMLINUX} is not readable: nothing to measure")
    floor_bin = build_floor()
    env = _python_env()
    rows: list[dict[str, object]] = []
    for name, (prelude, snippet, mode, target) in CASES.items():
        argv = [sys.executable, "-c", prelude + snippet + _EPILOGUE]
        _run(argv, env)  # warm-up: writes the bytecode cache, warms the page cache
        py = [_run(argv, env) for _ in range(runs)]
        c: list[tuple[float, float]] = []
        if floor_bin is not None and mode is not None:
            _run([str(floor_bin), mode])
            c = [_run([str(floor_bin), mode]) for _ in range(runs)]
        median, lo, hi = _stats([s for s, _ in py])
        floor = statistics.median([s for s, _ in c]) if c else None
        r: dict[str, object] = {
            "name": name,
            "median_s": median,
            "min_s": lo,
            "max_s": hi,
            "floor_s": floor,
            "ratio": median / floor if floor else None,
            "wall_median_s": statistics.median([w for _, w in py]),
            "floor_wall_s": statistics.median([w for _, w in c]) if c else None,
        }
        max_ratio = RATIO_TARGETS.get(name)
        if max_ratio is not None:
            r["target"] = f"<= {max_ratio:g}x C libbpf (issue 13)"
            r["target_spec"] = {"vs": "floor", "max_ratio": max_ratio}
        else:
            r["target_s"] = target
        rows.append(r)
    return rows


def _ms(value: object) -> str:
    return f"{value * 1e3:7.1f}" if isinstance(value, float) else "      -"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh processes per measurement")
    args = parser.parse_args()
    rows = run(args.runs)
    print(f"ebpf.btf vs libbpf (C) on {VMLINUX}, {args.runs} fresh processes each, times in ms")
    print(
        f"{'case':36} {'median':>7} {'min':>7} {'max':>7} {'C floor':>7} {'ratio':>6}"
        f" {'target':>7} {'wall':>7} {'C wall':>7}"
    )
    for r in rows:
        ratio = r["ratio"]
        if r.get("target_s") is None and r["name"] in RATIO_TARGETS:
            r["target_s"] = RATIO_TARGETS[str(r["name"])] * r["floor_s"] if isinstance(
                r["floor_s"], float) else None
        ratio_s = f"{ratio:6.2f}" if isinstance(ratio, float) else "     -"
        print(
            f"{r['name']!s:36} {_ms(r['median_s'])} {_ms(r['min_s'])} {_ms(r['max_s'])}"
            f" {_ms(r['floor_s'])} {ratio_s} {_ms(r['target_s'])} {_ms(r['wall_median_s'])}"
            f" {_ms(r['floor_wall_s'])}"
        )
    print("(median/min/max: time inside the process, import included; wall: whole process)")


if __name__ == "__main__":
    main()
