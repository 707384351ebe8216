"""The one benchmark command: every bench of the project, side by side with floors and peers.

    python bench/run.py [--quick] [--only NAME[,NAME...]] [--out bench/out] [--list]

Each bench module (``bench/<module>.py`` with ``run() -> list[dict]``) runs in its own
process, so a crash, a leaked fd or a slow import in one cannot disturb the others. Missing
modules are skipped with a note. Writes ``results.md``, ``results.json`` and the plots to the
out dir and prints the table. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import inspect
import io
import os
import re
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

# The benches measure this working tree: its src/ goes first for us and for every child, so
# no install is needed (the package is pure Python) and an older installed copy is not used.
_SRC = str(common.REPO_DIR / "src")
sys.path.insert(1, _SRC)
os.environ["PYTHONPATH"] = os.pathsep.join(
    [_SRC, *(p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != _SRC)])

#: (short name, module file stem, what it measures), in run order.
BENCHES: list[tuple[str, str, str]] = [
    ("syscall", "syscall_bench", "one BPF_MAP_LOOKUP_ELEM through the syscall layer"),
    ("maps", "maps_bench", "map update/lookup per op and batched"),
    ("btf", "btf_parse", "vmlinux BTF parse and lookup"),
    ("asm", "asm_bench", "assembler/disassembler rates"),
    ("progload", "progload_bench", "program load 1k/100k insns, encode vs verify"),
    ("testrun", "testrun_bench", "test_run call overhead"),
    ("xdp_attach", "xdp_attach_bench", "XDP load + attach + detach"),
    ("ringbuf", "ringbuf_bench", "ring buffer drain"),
    ("perf", "perf_bench", "perf buffer drain"),
    ("drain", "drain_sweep", "ring buffer drain by record size, plot"),
    ("elf", "elf_bench", "ELF object open, open+load"),
    ("coldstart", "coldstart_bench", "fresh process: import, load, run"),
    ("compile", "compile_bench", "Python front end: compile time, insns vs clang -O2"),
]

#: What other authors' rows leave implicit: the label of an unnamed floor/peer, the issue
#: whose targets the bench measures.
FLOOR_LABEL = {"btf": "C libbpf", "xdp_attach": "C libbpf"}
PEER_LABEL = {"maps": "bcc", "ringbuf": "bcc", "perf": "bcc"}
ISSUE = {"syscall": 2, "btf": 2, "asm": 3, "progload": 3, "maps": 4, "ringbuf": 4, "perf": 4,
         "drain": 4, "testrun": 5, "xdp_attach": 5, "coldstart": 13, "compile": 11}

#: Per-bench wall-clock limits (seconds); the whole run is meant to stay under 10 minutes.
TIMEOUT = {"full": 240.0, "quick": 120.0}
TOTAL_BUDGET = {"full": 570.0, "quick": 300.0}


def discover() -> list[tuple[str, str, str]]:
    """The registry plus any other ``bench/*_bench.py`` someone added later that follows the
    bench protocol (a module-level ``run(quick)``); stand-alone scripts with their own command
    line (``tools_bench.py``, run as ``python bench/tools_bench.py``) are left out."""
    known = {m for _, m, _ in BENCHES}
    extra = sorted(p.stem for p in common.BENCH_DIR.glob("*_bench.py")
                   if p.stem not in known and "\ndef run(" in p.read_text())
    return BENCHES + [(m.removesuffix("_bench"), m, "(discovered)") for m in extra]


def select(benches: list[tuple[str, str, str]], only: list[str]) -> list[tuple[str, str, str]]:
    if not only:
        return benches
    want = {w.strip() for item in only for w in item.split(",") if w.strip()}
    chosen = [b for b in benches if b[0] in want or b[1] in want]
    unknown = want - {b[0] for b in chosen} - {b[1] for b in chosen}
    if unknown:
        names = ", ".join(b[0] for b in benches)
        raise SystemExit(f"unknown bench {', '.join(sorted(unknown))}; known: {names}")
    return chosen


# --- child side ------------------------------------------------------------------------------
def child(module: str, bench: str, quick: bool, out_dir: Path) -> int:
    """Import one bench module, call its run(), print the normalised rows."""
    mod = importlib.import_module(module)
    fn = getattr(mod, "run", None)
    if fn is None:
        main_fn = getattr(mod, "main", None)
        rows = [label_defaults(r, bench) for r in from_printed(bench, module, main_fn)] \
            if callable(main_fn) else []
        common.emit_result(rows or [
            common.skipped(bench, module, f"bench/{module}.py has no run()")])
        return 0
    params = inspect.signature(fn).parameters
    kwargs: dict[str, Any] = {}
    if "quick" in params:
        kwargs["quick"] = quick
    if "out_dir" in params:
        kwargs["out_dir"] = out_dir
    if quick and "quick" not in params:
        # benches without a quick mode: fewer repeats where they take a count
        for name in ("runs", "repeats", "repeat"):
            if name in params:
                kwargs[name] = 3
                break
    raw = fn(**kwargs)
    rows = []
    for r in raw or []:
        try:
            rows.append(label_defaults(common.normalise(r, bench), bench))
        except Exception as e:  # a row we cannot read is reported, not fatal
            rows.append(common.skipped(bench, str(r.get("name", "?")),
                                       f"unreadable row ({type(e).__name__}: {e})"))
    if not rows:
        rows.append(common.skipped(bench, module, "run() returned no rows"))
    common.emit_result(rows)
    return 0


#: Targets for rows parsed from a bench's printed output: (bench, name prefix) -> spec.
PRINTED_TARGETS: dict[tuple[str, str], tuple[str, dict[str, float]]] = {
    ("asm", "assemble (labels"): (">= 2M insns/s", {"min": 2.0}),
    ("asm", "disassemble bytes"): (">= 1M insns/s", {"min": 1.0}),
}
_PRINTED_RATE = re.compile(
    r"^(?P<name>[^:]+):\s*(?P<value>[0-9.]+)\s*(?P<unit>[kMG]?\s*[\w ]*/s)\b")


def from_printed(bench: str, module: str, main_fn: Any) -> list[dict[str, Any]]:
    """Rows from ``name: 1.23M insns/s`` lines that a bench without ``run()`` prints from its
    ``main()`` (one sample each: the bench's own best-of figure)."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        main_fn()
    rows = []
    for line in buf.getvalue().splitlines():
        m = _PRINTED_RATE.match(line.strip())
        if not m:
            continue
        name = m["name"].strip()
        target, spec = next((t for (b, prefix), t in PRINTED_TARGETS.items()
                             if b == bench and name.startswith(prefix)), ("", None))
        rows.append(common.row(bench, name, m["unit"], float(m["value"]),
                               target=target, target_spec=spec,
                               note=f"printed by bench/{module}.py main()"))
    return rows


def label_defaults(r: dict[str, Any], bench: str) -> dict[str, Any]:
    """Name unnamed floors/peers and the issue of a target after the bench's defaults."""
    for side, default, names in (("floors", "floor", FLOOR_LABEL), ("peers", "peer", PEER_LABEL)):
        for s in r.get(side, []):
            if s.get("label") == default and bench in names:
                s["label"] = names[bench]
    if r.get("target") and "issue" not in r["target"] and bench in ISSUE:
        r["target"] = f"{r['target']} (issue {ISSUE[bench]})"
    spec = r.get("target_spec") or {}
    if spec.get("vs") in ("floor", "peer"):
        names = FLOOR_LABEL if spec["vs"] == "floor" else PEER_LABEL
        spec["vs"] = names.get(bench, spec["vs"])
    return common.finish(r)


# --- parent side -----------------------------------------------------------------------------
def elf_note() -> str | None:
    """The ELF open+load workload needs a loader (``ebpf.load`` / ``ebpf.elf``)."""
    if (common.BENCH_DIR / "elf_bench.py").exists():
        return None  # the elf bench runs (or reports why it cannot)
    try:
        import ebpf
    except ImportError as e:
        return f"ELF open+load: skipped, ebpf does not import ({e})"
    try:
        has_loader = callable(getattr(ebpf, "load", None))  # may be a lazy attribute
    except Exception:
        has_loader = False
    if not has_loader and importlib.util.find_spec("ebpf.elf") is not None:
        try:  # a package with an entry point, not a half-written namespace directory
            elf = importlib.import_module("ebpf.elf")
            has_loader = any(callable(getattr(elf, n, None)) for n in ("load", "open", "Object"))
        except Exception:
            has_loader = False
    if not has_loader:
        return "ELF object open+load: skipped, no ELF loader in ebpf yet (ebpf.load / ebpf.elf)"
    if not (common.BENCH_DIR / "elf_bench.py").exists():
        return "ELF object open+load: the loader exists but bench/elf_bench.py is not written yet"
    return None


def run_bench(name: str, module: str, quick: bool, out_dir: Path,
              timeout: float) -> tuple[list[dict[str, Any]], str | None]:
    """Rows of one bench in a child process; a note instead when it is missing or fails."""
    path = common.BENCH_DIR / f"{module}.py"
    if not path.exists():
        return [], f"{name}: skipped, bench/{module}.py does not exist yet"
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", module, "--bench", name,
            "--out", str(out_dir)]
    if quick:
        argv.append("--quick")
    try:
        rows = common.run_child(argv, timeout=timeout, cwd=common.BENCH_DIR)
    except RuntimeError as e:
        return [common.skipped(name, module, str(e))], f"{name}: failed: {e}"
    return list(rows), None


README_START = "<!-- results:start (written by python bench/run.py --update-readme) -->"
README_END = "<!-- results:end -->"


def update_readme(readme: Path, results_md: str, plots: list[str]) -> None:
    """Replace the README's generated block with results.md (its title dropped); the plots
    are copied to bench/results/ (tracked, unlike the out dir) and linked from there."""
    body = results_md.split("\n", 1)[1].lstrip("\n") if results_md.startswith("# ") else results_md
    body = body.replace("\n## ", "\n### ")  # nested under the README's Performance section
    keep = common.BENCH_DIR / "results"
    keep.mkdir(exist_ok=True)
    for p in plots:
        shutil.copy2(p, keep / Path(p).name)
        link = os.path.relpath(keep / Path(p).name, readme.parent)
        body = body.replace(f"]({Path(p).name})", f"]({link})")
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        raise SystemExit(f"{readme}: no {README_START!r} ... {README_END!r} block")
    head, rest = text.split(README_START, 1)
    _, tail_ = rest.split(README_END, 1)
    readme.write_text(f"{head}{README_START}\n{body.rstrip()}\n{README_END}{tail_}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repeats and smaller sizes")
    ap.add_argument("--only", action="append", default=[], metavar="NAME",
                    help="run only these benches (short name or module; repeat or comma-list)")
    ap.add_argument("--out", type=Path, default=common.BENCH_DIR / "out",
                    help="output directory (default bench/out)")
    ap.add_argument("--list", action="store_true", help="list the benches and exit")
    ap.add_argument("--timeout", type=float, default=None, help="seconds per bench")
    ap.add_argument("--update-readme", action="store_true",
                    help="also put the results into the performance sections of README.md "
                         "and bench/README.md")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--bench", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    out_dir: Path = args.out.resolve()

    if args.child:
        return child(args.child, args.bench or args.child, args.quick, out_dir)

    benches = discover()
    if args.list:
        for name, module, what in benches:
            state = "" if (common.BENCH_DIR / f"{module}.py").exists() else "  [missing]"
            print(f"{name:12} bench/{module}.py  {what}{state}")
        return 0
    chosen = select(benches, args.only)
    mode = "quick" if args.quick else "full"
    per_bench = args.timeout or TIMEOUT[mode]
    budget = TOTAL_BUDGET[mode]

    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.time()
    load_before = os.getloadavg()
    meta = common.machine_info()
    cmd = "python bench/run.py" + (" --quick" if args.quick else "") + "".join(
        f" --only {o}" for o in args.only)
    meta.update({"command": cmd, "mode": mode,
                 "loadavg_start": [round(x, 2) for x in load_before]})
    notes: list[str] = []
    rows: list[dict[str, Any]] = []
    for name, module, _ in chosen:
        left = budget - (time.time() - start)
        if left < 15:
            notes.append(f"{name}: skipped, the {budget:.0f}s budget of the run was spent")
            continue
        t0 = time.time()
        print(f"[bench] {name} ({module}) ...", file=sys.stderr, flush=True)
        got, note = run_bench(name, module, args.quick, out_dir, min(per_bench, left))
        print(f"[bench] {name}: {len(got)} rows in {time.time() - t0:.1f}s"
              + (f" ({note})" if note else ""), file=sys.stderr, flush=True)
        rows += got
        if note:
            notes.append(note)
    if not args.only:
        n = elf_note()
        if n:
            notes.append(n)
    for r in rows:
        for p in r.get("peers", []):
            if p.get("note", "").startswith("peer unavailable") and p["note"] not in notes:
                notes.append(f"{r['bench']}: {p['note']}")
    plots = sorted({str(Path(p)) for r in rows for p in [r.get("plot")] if p})
    plots += sorted(str(p) for p in out_dir.glob("*.png")
                    if p.stat().st_mtime >= start and str(p) not in plots)
    meta["elapsed_s"] = round(time.time() - start, 1)
    meta["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    if max(load_before[0], meta["loadavg_end"][0]) > 1.5:
        notes.append(f"the machine was busy (load average {load_before[0]:.1f} at start, "
                     f"{meta['loadavg_end'][0]:.1f} at end on {meta['cores']} cores): "
                     "expect wide min-max ranges")
    md, js = common.write_results(out_dir, rows, meta, notes, plots)
    if args.update_readme:
        for readme in (common.BENCH_DIR.parent / "README.md", common.BENCH_DIR / "README.md"):
            if README_START in readme.read_text():
                update_readme(readme, md.read_text(), plots)
    print(common.text_table(rows))
    for n in notes:
        print(f"note: {n}")
    met, missed, na = common.targets_summary(rows)
    print(f"\ntargets: {met} met, {missed} missed, {na} not judged; "
          f"{meta['elapsed_s']:.0f}s; wrote {md}, {js}" + "".join(f", {p}" for p in plots))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
    except SystemExit:
        raise
    except BaseException:
        traceback.print_exc()
        sys.exit(1)

