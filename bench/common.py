"""Shared helpers for ``bench/``: statistics, timing loops, C floors, peers, report writers, plots.

Every benchmark module exposes ``run() -> list[dict]`` (optionally ``run(quick=..., out_dir=...)``)
and builds its rows with :func:`row`. A row is plain JSON::

    {"bench": "syscall", "name": "map lookup: bpf()", "unit": "ns/op", "higher_is_better": false,
     "ours": {"median": 310.0, "min": 301.0, "max": 330.0, "n": 7},
     "floors": [{"label": "ctypes", "median": ..., "min": ..., "max": ..., "n": ...},
                {"label": "C", ...}],
     "peers": [{"label": "bcc", "note": "peer unavailable: ..."}],
     "ratio_floor": {"ctypes": 1.07, "C": 1.9}, "ratio_peer": {},
     "target": "<= 1.15x ctypes (issue 2)", "target_met": true, "note": ""}

Ratios are *cost* ratios: how many times more time (or less throughput) ours takes than the
reference; ``1.07`` means 7 % slower, ``0.5`` twice as fast. Rows from other authors' benches,
in whatever shape, go through :func:`normalise`.

Nothing here imports ``ebpf``: the pure helpers are unit-tested without a kernel.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
BUILD_DIR = BENCH_DIR / "build"
REPO_DIR = BENCH_DIR.parent
#: Debian's interpreter, the one python3-bpfcc (bcc) is installed for.
SYSTEM_PYTHON = "/usr/bin/python3"
RESULT_MARKER = "@@BENCH-RESULT@@"

Number = float | int


# --- statistics -------------------------------------------------------------------------------
def median(samples: Iterable[Number]) -> float:
    """Median of the samples (mean of the middle two for an even count)."""
    xs = [float(x) for x in samples]
    if not xs:
        raise ValueError("median of no samples")
    return float(statistics.median(xs))


def summarize(samples: Iterable[Number]) -> dict[str, Any]:
    """``{"median", "min", "max", "n"}`` of repeated measurements."""
    xs = [float(x) for x in samples]
    if not xs:
        raise ValueError("summary of no samples")
    return {"median": median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def higher_is_better(unit: str) -> bool:
    """Rates (``.../s``) are better high; times and sizes are better low."""
    u = unit.strip().lower()
    return u.endswith("/s") or u.endswith("/sec") or u in ("x", "ops", "speedup")


def ratio(ours: Number | None, ref: Number | None, higher_better: bool = False) -> float | None:
    """Cost ratio of ours to a reference: > 1 means ours is slower by that factor.

    For times it is ``ours / ref``; for rates ``ref / ours``. ``None`` when either side is
    missing or zero.
    """
    if ours is None or ref is None:
        return None
    o, r = float(ours), float(ref)
    if o <= 0 or r <= 0 or math.isnan(o) or math.isnan(r):
        return None
    return r / o if higher_better else o / r


# --- timing ----------------------------------------------------------------------------------
def time_call(fn: Callable[[], object]) -> float:
    """Seconds one call of ``fn`` takes (perf_counter)."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def interleaved(
    variants: Mapping[str, Callable[[int], object]],
    n: int,
    repeats: int,
    warmup: int = 1,
) -> dict[str, list[float]]:
    """Per-op nanoseconds of each variant, ``repeats`` samples each, taken round-robin.

    Each variant is ``f(n)`` that performs ``n`` operations in its own loop (so that the
    harness adds nothing per op). Interleaving the variants spreads frequency and noise drift
    over all of them instead of biasing whichever ran last.
    """
    out: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(warmup):
        for fn in variants.values():
            fn(max(1, n // 10))
    for _ in range(repeats):
        for name, fn in variants.items():
            t0 = time.perf_counter_ns()
            fn(n)
            out[name].append((time.perf_counter_ns() - t0) / n)
    return out


# --- rows ------------------------------------------------------------------------------------
def _as_stat(value: Any, label: str | None = None) -> dict[str, Any] | None:
    """A stat dict from samples, a number, an existing stat dict, or a note string."""
    stat: dict[str, Any]
    if value is None:
        return None
    if isinstance(value, str):
        stat = {"note": value}
    elif isinstance(value, Mapping):
        stat = dict(value)
        if "median" not in stat and "value" in stat:
            stat["median"] = stat.pop("value")
        if "median" in stat and stat["median"] is not None:
            stat.setdefault("min", stat["median"])
            stat.setdefault("max", stat["median"])
    elif isinstance(value, (int, float)):
        stat = {"median": float(value), "min": float(value), "max": float(value), "n": 1}
    else:
        samples = list(value)
        stat = summarize(samples) if samples else {"note": "no samples"}
    if label is not None:
        stat["label"] = label
    return stat


def _labelled(items: Any, default: str) -> list[dict[str, Any]]:
    if items is None:
        return []
    if isinstance(items, Mapping) and not ({"median", "value", "note"} & set(items)):
        pairs = list(items.items())
    elif isinstance(items, Sequence) and not isinstance(items, str) and items and all(
        isinstance(x, Mapping) for x in items
    ):
        return [s for s in (_as_stat(x, str(x.get("label", default))) for x in items) if s]
    else:
        pairs = [(default, items)]
    out = []
    for label, val in pairs:
        s = _as_stat(val, str(label))
        if s is not None:
            out.append(s)
    return out


def evaluate_target(r: Mapping[str, Any]) -> bool | None:
    """Whether a row meets its target spec, or ``None`` when it cannot be judged.

    Target specs (``r["target_spec"]``):
    ``{"vs": LABEL, "max_ratio": X}`` — cost ratio to that floor/peer at most X;
    ``{"max": X}`` / ``{"min": X}`` — ours' median at most / at least X (in the row's unit).
    """
    spec = r.get("target_spec")
    if not spec:
        return None
    ours = (r.get("ours") or {}).get("median")
    if ours is None:
        return None
    if "vs" in spec:
        label = spec["vs"]
        rat = (r.get("ratio_floor") or {}).get(label)
        if rat is None:
            rat = (r.get("ratio_peer") or {}).get(label)
        if rat is None:
            return None
        return bool(rat <= float(spec["max_ratio"]))
    if "max" in spec:
        return bool(ours <= float(spec["max"]))
    if "min" in spec:
        return bool(ours >= float(spec["min"]))
    return None


def row(
    bench: str,
    name: str,
    unit: str,
    ours: Any,
    *,
    floors: Any = None,
    peers: Any = None,
    target: str = "",
    target_spec: Mapping[str, Any] | None = None,
    higher_better: bool | None = None,
    note: str = "",
    **extra: Any,
) -> dict[str, Any]:
    """One result row; ``ours``/``floors``/``peers`` take samples, numbers or stat dicts.

    ``floors``/``peers`` map a label (``"ctypes"``, ``"C"``, ``"bcc"``) to samples, or to a
    string that explains why that side is missing (``"peer unavailable: ..."``).
    """
    hib = higher_is_better(unit) if higher_better is None else higher_better
    r: dict[str, Any] = {
        "bench": bench,
        "name": name,
        "unit": unit,
        "higher_is_better": hib,
        "ours": _as_stat(ours) or {"note": "not measured"},
        "floors": _labelled(floors, "floor"),
        "peers": _labelled(peers, "peer"),
        "target": target,
        "note": note,
    }
    if target_spec:
        r["target_spec"] = dict(target_spec)
    r.update(extra)
    return finish(r)


def finish(r: dict[str, Any]) -> dict[str, Any]:
    """Fill ``ratio_floor``, ``ratio_peer`` and ``target_met`` from the stats."""
    hib = bool(r.get("higher_is_better"))
    ours = (r.get("ours") or {}).get("median")
    r["ratio_floor"] = {
        f["label"]: rat for f in r.get("floors", [])
        if (rat := ratio(ours, f.get("median"), hib)) is not None
    }
    r["ratio_peer"] = {
        p["label"]: rat for p in r.get("peers", [])
        if (rat := ratio(ours, p.get("median"), hib)) is not None
    }
    met = evaluate_target(r)
    if met is not None or "target_met" not in r:
        r["target_met"] = met
    return r


_FLOOR_KEYS = ("floor", "c", "libbpf", "ctypes", "floor_c", "floor_ctypes")
_PEER_KEYS = ("peer", "bcc", "peer_bcc")


def normalise(raw: Mapping[str, Any], bench: str) -> dict[str, Any]:
    """Turn a row in another bench's own format into the shape :func:`row` makes.

    Understands ``{name, ours, floor, peer, unit, ratio_floor, ratio_peer, target, met}`` with
    numbers or sample lists, ``*_min``/``*_max`` companions, ``floor_label``/``peer_label``
    (or ``*_name``), dicts of labelled floors, and ``target_met``/``met``. Rows already made by
    :func:`row` pass through (ratios recomputed).
    """
    if "floors" in raw and "bench" in raw and isinstance(raw.get("ours"), Mapping):
        r = dict(raw)
        return finish(r)
    raw = _unsuffix(raw)
    unit = str(raw.get("unit", ""))
    hib = raw.get("higher_is_better")
    if hib is None:
        hib = higher_is_better(unit)

    def side(key: str) -> Any:
        v = raw.get(key)
        if isinstance(v, (int, float)) and (f"{key}_min" in raw or f"{key}_max" in raw):
            st = {"median": float(v), "min": float(raw.get(f"{key}_min", v)),
                  "max": float(raw.get(f"{key}_max", v))}
            if raw.get(f"{key}_n") is not None:
                st["n"] = raw[f"{key}_n"]
            return st
        return v

    floors: dict[str, Any] = {}
    for k in _FLOOR_KEYS:
        if k in raw and raw[k] is not None:
            v = side(k)
            label = raw.get(f"{k}_label") or raw.get(f"{k}_name") or (
                "floor" if k == "floor" else k.replace("floor_", ""))
            if isinstance(v, Mapping) and not ({"median", "value", "note"} & set(v)):
                floors.update(v)
            else:
                floors[str(label)] = v
    peers: dict[str, Any] = {}
    for k in _PEER_KEYS:
        if k in raw and raw[k] is not None:
            v = side(k)
            label = raw.get(f"{k}_label") or raw.get(f"{k}_name") or (
                "peer" if k == "peer" else k.replace("peer_", ""))
            if isinstance(v, Mapping) and not ({"median", "value", "note"} & set(v)):
                peers.update(v)
            else:
                peers[str(label)] = v
    for k in ("peer_note", "peer_unavailable"):
        if raw.get(k) and not peers:
            peers[str(raw.get("peer_label", "peer"))] = str(raw[k])
    known = {"name", "workload", "ours", "unit", "target", "met", "target_met", "note", "notes",
             "target_spec", "ratio",
             "higher_is_better", "ratio_floor", "ratio_peer", "peer_note", "peer_unavailable",
             *_FLOOR_KEYS, *_PEER_KEYS}
    known |= {f"{k}{s}" for k in ("ours", *_FLOOR_KEYS, *_PEER_KEYS)
              for s in ("_min", "_max", "_n", "_label", "_name")}
    extra = {k: v for k, v in raw.items() if k not in known}
    met = raw.get("target_met", raw.get("met"))
    target = raw.get("target")
    spec = raw.get("target_spec")
    if isinstance(target, (int, float)) and not isinstance(target, bool):
        # a bare number is a bound on ours: at most for times, at least for rates
        spec = {"min": float(target)} if hib else {"max": float(target)}
        target = f"{'>=' if hib else '<='} {fmt_num(target)} {unit}".strip()
    r = row(
        bench,
        str(raw.get("name") or raw.get("workload") or "?"),
        unit,
        side("ours"),
        floors=floors,
        peers=peers,
        target=str(target or ""),
        target_spec=spec if isinstance(spec, Mapping) else None,
        higher_better=bool(hib),
        note=str(raw.get("note") or raw.get("notes") or ""),
    )
    if met is not None and r.get("target_met") is None:
        r["target_met"] = bool(met)
    # keep the author's ratios when ours could not be recomputed (e.g. no floor number given)
    for k in ("ratio_floor", "ratio_peer"):
        given = raw.get(k)
        if isinstance(given, (int, float)) and not r[k]:
            r[k] = {"floor" if k == "ratio_floor" else "peer": float(given)}
    if extra:
        r["extra"] = extra
    return r


_SCALE_TO = {"s": ("ms", 1e3), "ms": ("ms", 1.0), "us": ("us", 1.0), "ns": ("ns", 1.0)}
_SUFFIXED = re.compile(r"^(median|min|max|ours|ours_min|ours_max|floor|floor_min|floor_max|"
                       r"peer|peer_min|peer_max|target|c|bcc|ctypes)_(s|ms|us|ns)$")
_RENAME = {"median": "ours", "min": "ours_min", "max": "ours_max"}


def _unsuffix(raw: Mapping[str, Any]) -> dict[str, Any]:
    """``median_s``/``min_s``/``floor_s``/``target_s`` style keys to plain keys and a unit
    (seconds become milliseconds); bare ``median``/``min``/``max`` become ``ours*``."""
    out: dict[str, Any] = {}
    unit = raw.get("unit")
    for k, v in raw.items():
        m = _SUFFIXED.match(k)
        if m is None:
            if k in _RENAME and _RENAME[k] not in raw:
                out[_RENAME[k]] = v
            else:
                out[k] = v
            continue
        base, suffix = m.groups()
        new_unit, scale = _SCALE_TO[suffix]
        unit = unit or new_unit
        key = _RENAME.get(base, base)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[key] = float(v) * scale
        elif isinstance(v, list):
            out[key] = [float(x) * scale for x in v]
        else:
            out[key] = v
    if unit:
        out["unit"] = unit
    return out


def skipped(bench: str, name: str, reason: str) -> dict[str, Any]:
    """A row that records a workload which could not run, and why."""
    return row(bench, name, "", None, note=f"skipped: {reason}")


# --- subprocesses ----------------------------------------------------------------------------
def emit_result(obj: Any) -> None:
    """Print a child's result on one marked line (other output on stdout is allowed)."""
    sys.stdout.write(f"\n{RESULT_MARKER}{json.dumps(obj)}\n")
    sys.stdout.flush()


def parse_result(stdout: str) -> Any:
    """The object of the last :func:`emit_result` line in ``stdout``."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            return json.loads(line[len(RESULT_MARKER):])
    raise ValueError("no result line in output")


def run_child(argv: Sequence[str], timeout: float, cwd: Path | None = None,
              env: Mapping[str, str] | None = None) -> Any:
    """Run a process that ends with :func:`emit_result`; return its object.

    Raises ``RuntimeError`` with the tail of stderr when it fails or prints no result.
    """
    try:
        p = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                           cwd=cwd, env=dict(env) if env is not None else None)
    except subprocess.TimeoutExpired as e:
        raise RuntimeError(f"timed out after {timeout:.0f}s") from e
    except OSError as e:
        raise RuntimeError(f"{argv[0]}: {e.strerror}") from e
    if p.returncode != 0:
        raise RuntimeError(f"exit {p.returncode}: {tail(p.stderr or p.stdout)}")
    try:
        return parse_result(p.stdout)
    except ValueError as e:
        raise RuntimeError(f"no result: {tail(p.stderr or p.stdout)}") from e


def tail(text: str, lines: int = 3, width: int = 300) -> str:
    """Last non-empty lines of some output, joined, for error notes."""
    got = [ln.strip() for ln in text.strip().splitlines() if ln.strip()][-lines:]
    s = " | ".join(got)
    return s[-width:]


# --- C floors --------------------------------------------------------------------------------
class Unavailable(RuntimeError):
    """A floor or peer cannot run here; the message says why."""


def build_c(name: str, libs: Sequence[str] = ("-lbpf",)) -> Path:
    """Compile ``bench/<name>.c`` with ``gcc -O2`` into ``bench/build/<name>`` (cached by mtime)."""
    src = BENCH_DIR / f"{name}.c"
    exe = BUILD_DIR / name
    if not src.exists():
        raise Unavailable(f"{src.name} missing")
    if exe.exists() and exe.stat().st_mtime >= src.stat().st_mtime:
        return exe
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        raise Unavailable("no C compiler (run bench/setup.sh)")
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    cmd = [gcc, "-O2", "-Wall", "-o", str(exe), str(src), *libs]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise Unavailable(f"gcc {src.name} failed: {tail(p.stderr)} (run bench/setup.sh)")
    return exe


def parse_c_output(text: str) -> dict[str, list[float]]:
    """C floors print ``label value`` lines, one per repeat; collect values per label."""
    out: dict[str, list[float]] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 2:
            continue
        try:
            v = float(parts[1])
        except ValueError:
            continue
        out.setdefault(parts[0], []).append(v)
    return out


def run_c(name: str, *args: object, timeout: float = 120) -> dict[str, list[float]]:
    """Build (if needed) and run a C floor; return its ``label -> samples``."""
    exe = build_c(name)
    try:
        p = subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise Unavailable(f"{name} timed out after {timeout:.0f}s") from e
    if p.returncode != 0:
        raise Unavailable(f"{name} exit {p.returncode}: {tail(p.stderr or p.stdout)}")
    return parse_c_output(p.stdout)


# --- peers -----------------------------------------------------------------------------------
_bcc_cache: tuple[bool, str] | None = None

_BCC_PROBE = (
    "import bcc\n"
    "b = bcc.BPF(text='int f(void *c) { return 0; }')\n"
    "b.load_func('f', bcc.BPF.SOCKET_FILTER)\n"
    "print(getattr(bcc, '__version__', '?'))\n"
)


def bcc_status() -> tuple[bool, str]:
    """``(True, version)`` when bcc can compile and load a program here, else ``(False, why)``."""
    global _bcc_cache
    if _bcc_cache is not None:
        return _bcc_cache
    if not Path(SYSTEM_PYTHON).exists():
        _bcc_cache = (False, f"{SYSTEM_PYTHON} not found")
        return _bcc_cache
    try:
        p = subprocess.run([SYSTEM_PYTHON, "-c", _BCC_PROBE], capture_output=True, text=True,
                           timeout=60)
    except subprocess.TimeoutExpired:
        _bcc_cache = (False, "bcc probe timed out")
        return _bcc_cache
    if p.returncode == 0:
        _bcc_cache = (True, p.stdout.strip().splitlines()[-1] if p.stdout.strip() else "?")
    elif "No module named 'bcc'" in p.stderr:
        _bcc_cache = (False, "python3-bpfcc not installed (run bench/setup.sh)")
    elif "kernel headers" in p.stderr or "kconfig.h" in p.stderr:
        _bcc_cache = (False, "no kernel headers for bcc (run bench/setup.sh)")
    else:
        _bcc_cache = (False, f"bcc cannot load a program: {tail(p.stderr)}")
    return _bcc_cache


def run_bcc(script: str, *args: object, timeout: float = 180) -> Any:
    """Run a bcc script under Debian's python3; it must end with :func:`emit_result` output.

    Raises :class:`Unavailable` with the reason when bcc cannot run or the script fails.
    """
    ok, why = bcc_status()
    if not ok:
        raise Unavailable(f"peer unavailable: {why}")
    prelude = (
        "import json, sys\n"
        f"RESULT_MARKER = {RESULT_MARKER!r}\n"
        "def emit_result(obj):\n"
        "    sys.stdout.write('\\n' + RESULT_MARKER + json.dumps(obj) + '\\n')\n"
        "    sys.stdout.flush()\n"
    )
    try:
        return run_child([SYSTEM_PYTHON, "-c", prelude + script, *map(str, args)], timeout)
    except RuntimeError as e:
        raise Unavailable(f"peer unavailable: bcc run failed: {e}") from e


# --- machine ---------------------------------------------------------------------------------
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _cmd_version(argv: Sequence[str]) -> str:
    try:
        p = subprocess.run(list(argv), capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    out = (p.stdout or p.stderr).strip().splitlines()
    return out[0] if out and p.returncode == 0 else "?"


def machine_info() -> dict[str, Any]:
    """Date, kernel, CPU, interpreter and tool versions, for the report header."""
    ok, bcc = bcc_status()
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "kernel": platform.release(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "libbpf": _cmd_version(["pkg-config", "--modversion", "libbpf"]),
        "gcc": _cmd_version(["gcc", "-dumpfullversion"]),
        "bcc": bcc if ok else f"unavailable ({bcc})",
    }


# --- formatting ------------------------------------------------------------------------------
def fmt_num(v: Number | None) -> str:
    """Three significant digits, no exponent for everyday magnitudes: 0.0123, 1.23, 123, 12,300."""
    if v is None:
        return "-"
    x = float(v)
    if math.isnan(x):
        return "nan"
    if x == 0:
        return "0"
    a = abs(x)
    if a >= 1000:
        return f"{round(x, -math.floor(math.log10(a)) + 2):,.0f}"
    digits = max(0, 2 - math.floor(math.log10(a)))
    return f"{x:.{digits}f}"


def fmt_stat(s: Mapping[str, Any] | None, with_range: bool = True) -> str:
    """``median (min-max)``, or the stat's note."""
    if not s:
        return "-"
    if s.get("median") is None:
        return str(s.get("note") or "-")
    text = fmt_num(s["median"])
    if with_range and s.get("min") is not None and s.get("max") is not None and (
        s["min"] != s["median"] or s["max"] != s["median"]
    ):
        text += f" ({fmt_num(s['min'])}-{fmt_num(s['max'])})"
    return text


def fmt_ratio(r: float | None) -> str:
    """``1.07x``; two decimals below 10, fewer above."""
    if r is None:
        return "-"
    if r >= 100:
        return f"{r:.0f}x"
    if r >= 10:
        return f"{r:.1f}x"
    if r >= 0.1:
        return f"{r:.2f}x"
    return f"{r:.2g}x"


def _cell_sides(sides: Sequence[Mapping[str, Any]], sep: str) -> str:
    parts = []
    for s in sides:
        label = s.get("label", "")
        parts.append(f"{label}: {fmt_stat(s)}" if label else fmt_stat(s))
    return sep.join(parts) if parts else "-"


def _cell_ratios(ratios: Mapping[str, float], sep: str) -> str:
    if not ratios:
        return "-"
    return sep.join(f"{k}: {fmt_ratio(v)}" for k, v in ratios.items())


def _met(r: Mapping[str, Any]) -> str:
    if not r.get("target"):
        return ""
    m = r.get("target_met")
    return "met" if m is True else "**missed**" if m is False else "n/a"


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


COLUMNS = ("bench", "workload", "unit", "ours", "floor", "peer", "ours/floor", "ours/peer",
           "target", "met")


def table_cells(r: Mapping[str, Any], sep: str = "<br>") -> list[str]:
    """The cells of one row, in :data:`COLUMNS` order."""
    name = str(r.get("name", ""))
    if r.get("note"):
        name += f" ({r['note']})" if (r.get("ours") or {}).get("median") is not None else ""
    ours = r.get("ours") or {}
    ours_cell = fmt_stat(ours) if ours.get("median") is not None else (
        str(r.get("note") or ours.get("note") or "-"))
    return [
        str(r.get("bench", "")),
        name,
        str(r.get("unit", "")),
        ours_cell,
        _cell_sides(r.get("floors") or [], sep),
        _cell_sides(r.get("peers") or [], sep),
        _cell_ratios(r.get("ratio_floor") or {}, sep),
        _cell_ratios(r.get("ratio_peer") or {}, sep),
        str(r.get("target") or ""),
        _met(r),
    ]


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A GitHub markdown table of the rows (several floors/peers per cell on separate lines)."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        lines.append("| " + " | ".join(_escape(c) for c in table_cells(r)) + " |")
    return "\n".join(lines) + "\n"


def text_table(rows: Sequence[Mapping[str, Any]], max_width: int = 48) -> str:
    """A plain aligned table for the terminal."""
    body = [[c if len(c) <= max_width else c[: max_width - 1] + "…"
             for c in table_cells(r, sep="; ")] for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h)
              for i, h in enumerate(COLUMNS)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*COLUMNS), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*b) for b in body]
    return "\n".join(line.rstrip() for line in out) + "\n"


def targets_summary(rows: Sequence[Mapping[str, Any]]) -> tuple[int, int, int]:
    """(met, missed, not judged) over the rows that name a target."""
    met = sum(1 for r in rows if r.get("target") and r.get("target_met") is True)
    missed = sum(1 for r in rows if r.get("target") and r.get("target_met") is False)
    na = sum(1 for r in rows if r.get("target") and r.get("target_met") is None)
    return met, missed, na


#: Why a target is missed, and what was tried: (bench, workload prefix, text). Shown under
#: the table for each row that misses its target; a row that meets it shows nothing.
MISS_REASONS: tuple[tuple[str, str, str], ...] = (
    ("testrun", "test_run repeat=1",
     "the one-shot call is ~7,600 user instructions against the ctypes loop's ~3,850 "
     "(callgrind); 1.1x allows ~5,260. Inlining the packet path into Program.test_run and "
     "keeping a runner per program took it from 7,943; the NamedTuple result is ~1,340 and "
     "the keyword/**options call ~550, and even a plain tuple result predicts 1.18x (XDP). "
     "TestRunner.run, the reusable form, meets 1.1x."),
    ("elf", "open globals.o",
     "about 55 us of Python object building (33 section and 24 symbol records, map and "
     "program specs) and ~35 us in the BTF record walk remain; variables, .BTF.ext records, "
     "code relocations, BTF fix-up and linking are already deferred to first use as libbpf "
     "does. Pausing the collector or deferring `programs` were rejected as moving cost out "
     "of the timer."),
    ("btf", "decode every type",
     "CPython's per-object cost: making a record object is ~1,200 instructions and cutting "
     "its name ~2,500; the benchmark's own loop over cached objects is ~6 ms (t.name) and "
     "~50 ms (members, 4.5x the C floor by itself). Tried: one id-ordered pass, a dict of "
     "all strings by offset, shared name runs, bytes/array columns (all more instructions). "
     "Done: bulk columns, lazy names, collector bypass for large blobs."),
)


def miss_reason(r: Mapping[str, Any]) -> str:
    """The recorded reason a row misses its target ('' if none is recorded)."""
    name = str(r.get("name") or r.get("workload") or "")
    for bench, prefix, text in MISS_REASONS:
        if r.get("bench") == bench and name.startswith(prefix):
            return text
    return ""


def render_markdown(rows: Sequence[Mapping[str, Any]], meta: Mapping[str, Any],
                    notes: Sequence[str] = (), plots: Sequence[str] = ()) -> str:
    """The whole results.md: header with date and machine, the table, notes, plots."""
    met, missed, na = targets_summary(rows)
    head = [
        "# Benchmark results",
        "",
        f"Generated by `{meta.get('command', 'python bench/run.py')}` on {meta.get('date', '?')}.",
        "",
        f"Machine: {meta.get('cpu', '?')}, {meta.get('cores', '?')} cores, Linux "
        f"{meta.get('kernel', '?')}; Python {meta.get('python', '?')}, libbpf "
        f"{meta.get('libbpf', '?')}, gcc {meta.get('gcc', '?')}, bcc {meta.get('bcc', '?')}.",
        "",
        "Values are medians over repeated runs with (min-max). Ratios are cost ratios "
        "ours/reference (for rates reference/ours): > 1 means ours is slower, < 1 faster. "
        "Floors: `ctypes` is a bare ctypes loop with pre-built buffers, `C` is the same work "
        "through libbpf/syscall() in C (gcc -O2). Peer: bcc (Debian's python3-bpfcc).",
        "",
        f"Targets: {met} met, {missed} missed, {na} not judged.",
        "",
    ]
    body = markdown_table(rows)
    tail_lines: list[str] = []
    misses = [r for r in rows if r.get("target") and r.get("target_met") is False]
    if misses:
        tail_lines += ["", "## Missed targets, and why", ""]
        for r in misses:
            why = miss_reason(r) or "no analysis recorded yet"
            tail_lines.append(f"- {r.get('bench')}: {r.get('name') or r.get('workload')} "
                              f"({r.get('target')}): {why}")
    if notes:
        tail_lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    if plots:
        tail_lines += ["", "## Plots", ""] + [f"![{Path(p).stem}]({Path(p).name})" for p in plots]
    return "\n".join(head) + "\n" + body + "\n".join(tail_lines) + ("\n" if tail_lines else "")


def write_results(out_dir: Path, rows: Sequence[Mapping[str, Any]], meta: Mapping[str, Any],
                  notes: Sequence[str] = (), plots: Sequence[str] = ()) -> tuple[Path, Path]:
    """Write ``results.md`` and ``results.json`` into ``out_dir``; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / "results.md"
    js = out_dir / "results.json"
    md.write_text(render_markdown(rows, meta, notes, plots))
    js.write_text(json.dumps({"meta": dict(meta), "rows": list(rows), "notes": list(notes),
                              "plots": [Path(p).name for p in plots]}, indent=1) + "\n")
    return md, js


# --- plots -----------------------------------------------------------------------------------
def plot_sweep(
    path: Path,
    series: Mapping[str, Sequence[tuple[float, float]]],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    logx: bool = True,
    logy: bool = True,
    bytes_per_x: bool = False,
    y_unit: float = 1.0,
) -> Path | None:
    """Line plot of ``label -> [(x, y), ...]``; returns the PNG path, or None without matplotlib.

    With ``bytes_per_x`` a second panel shows throughput in MB/s: ``x`` bytes per item times
    ``y * y_unit`` items per second (``y_unit=1e6`` when y is in millions per second).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    ncols = 2 if bytes_per_x else 1
    fig, axes = plt.subplots(1, ncols, figsize=(6.5 * ncols, 4.5), squeeze=False)
    panels = [(axes[0][0], ylabel, False)]
    if bytes_per_x:
        panels.append((axes[0][1], "MB/s", True))
    for ax, label_y, as_bytes in panels:
        for label, raw_pts in series.items():
            pts = sorted(p for p in raw_pts if p[1] and p[1] > 0)
            if not pts:
                continue
            xs = [p[0] for p in pts]
            ys = [p[0] * p[1] * y_unit / 1e6 if as_bytes else p[1] for p in pts]
            ax.plot(xs, ys, marker="o", label=label)
        if logx:
            ax.set_xscale("log", base=2)
        if logy:
            ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(label_y)
        ax.grid(True, which="both", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(4, max(1, len(labels))), fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.06 + 0.045 * ((len(labels) + 3) // 4), 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def slug(text: str) -> str:
    """A file-name-safe version of a label."""
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower()


def standalone(run: Callable[..., list[dict[str, Any]]], argv: Sequence[str] | None = None) -> None:
    """``python bench/X.py [--quick]``: run one bench module and print its table."""
    args = list(sys.argv[1:] if argv is None else argv)
    kwargs: dict[str, Any] = {}
    import inspect

    params = inspect.signature(run).parameters
    if "quick" in params:
        kwargs["quick"] = "--quick" in args
    if "out_dir" in params:
        kwargs["out_dir"] = BENCH_DIR / "out"
    rows = [normalise(r, "") for r in run(**kwargs)]
    print(text_table(rows))
