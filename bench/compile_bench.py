"""The Python front end (``ebpf.bpf``, issue 11): compile time and code size against clang.

For each example written in Python (``examples/py_*.py``) and for a 100-line program kept
here (:data:`HUNDRED_LINES`):

- **compile time**: ``compile_program`` of every program of the example (source read, typing,
  code generation, optimisation, assembly), warm, per example, in CPU time of this process
  (``time.process_time``: on a shared machine wall-clock samples mostly measure the other
  processes). Target: < 50 ms for a 100-line program.
- **scaling**: compile time of generated programs of 300 and 1000 lines (:func:`generated`:
  branches, map reads and writes, helper calls and straight-line arithmetic, repeated), with
  and without the optimiser, so a pass that grows faster than the program shows here.
- **instructions after verification**: the program loaded by ``bpf.load``, its
  ``xlated_prog_len / 8`` from ``BPF_OBJ_GET_INFO_BY_FD``, against the same count for an
  equivalent C program (``bench/compile_<name>.c``, built here with ``clang-19 -O2 -target
  bpf -g`` and loaded by ``ebpf.load``). Target: within 1.3x of clang. The peer column is
  the same program compiled without the optimiser (``optimize=False``) and loaded in the
  same run: the before/after of the register allocator and peephole pass.

The examples are executed without their demo code: only their imports, classes, functions
and simple assignments run (the top-level statements that fail, such as a use of a result
the demo computes, are skipped), so nothing is attached or run.
"""

from __future__ import annotations

import ast
import inspect
import shutil
import subprocess
import sys
import sysconfig
import time
import types
from pathlib import Path
from typing import Any

import common

BENCH = "compile"
HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent / "examples"
BUILD = HERE / "build"
CLANG_LABEL = "clang-19 -O2"
#: The same program compiled without the register allocator and peephole pass (milestone 1).
UNOPT_LABEL = "unoptimised"

#: A program of 100 lines (decorator to last return) for the compile-time target: packet
#: parsing, maps, a loop, a subprogram, globals. Written to bench/build/ and imported.
HUNDRED_LINES = '''\
from ebpf import bpf
from ebpf.bpf import u16, u32, u64
from ebpf.bpf.net import ETH_P_IP, IPPROTO_TCP, IPPROTO_UDP, TCP, UDP, Ethernet, IPv4


class Flow(bpf.Struct):
    packets: u64
    bytes: u64
    last: u64


flows = bpf.Hash(u32, u64, max_entries=4096)
stats = bpf.Array(Flow, max_entries=1)
by_proto = bpf.PerCPUArray(u64, max_entries=256)
sizes = bpf.Array(u64, max_entries=16)
drops = bpf.var(u64)
limit = bpf.const(u32, 1000)


@bpf.func
def bucket(n: u64) -> u32:
    b: u32 = 0
    for i in range(15):
        if n >> (i + 6) == 0:
            break
        b = i + 1
    return b


@bpf.func
def mix(a: u32, b: u32) -> u32:
    h = a ^ (b << 7)
    h = h ^ (h >> 13)
    h = h * 0x9E3779B1
    if h == 0:
        h = 1
    return h ^ (h >> 16)


@bpf.xdp
def hundred(ctx: bpf.XDP) -> int:
    global drops
    eth = ctx.load(Ethernet)
    if eth is None:
        return bpf.XDP_PASS
    if eth.proto != ETH_P_IP:
        return bpf.XDP_PASS
    ip = ctx.load(IPv4, 14)
    if ip is None:
        return bpf.XDP_DROP
    ihl = ip.ver_ihl & 0xF
    if ihl < 5:
        drops += 1
        return bpf.XDP_DROP
    total = ip.tot_len
    by_proto[ip.protocol] += 1
    sizes[bucket(total)] += 1
    sport: u16 = 0
    dport: u16 = 0
    off = 14 + ihl * 4
    if ip.protocol == IPPROTO_UDP:
        udp = ctx.load(UDP, off)
        if udp is None:
            drops += 1
            return bpf.XDP_DROP
        sport = udp.sport
        dport = udp.dport
    elif ip.protocol == IPPROTO_TCP:
        tcp = ctx.load(TCP, off)
        if tcp is None:
            drops += 1
            return bpf.XDP_DROP
        sport = tcp.sport
        dport = tcp.dport
    else:
        return bpf.XDP_PASS
    key = ip.saddr ^ ip.daddr ^ (u32(sport) << 16 | dport)
    flows[key] += 1
    now = bpf.ktime_get_ns()
    f = stats.lookup(0)
    if f is None:
        return bpf.XDP_PASS
    f.packets += 1
    f.bytes += total
    gap = now - f.last
    f.last = now
    if flows[key] > limit and gap < 1000:
        drops += 1
        return bpf.XDP_DROP
    score: u64 = 0
    if sport < 1024:
        score += 2
    if dport < 1024:
        score += 1
    if total > 1400:
        score = score * 3
    elif total < 64:
        score = score + 7
    else:
        score = score // 2
    if score > 8 and ip.ttl < 2:
        drops += 1
        return bpf.XDP_DROP
    h = mix(key, u32(now))
    if h % 1024 == 0:
        sizes[15] += 1
    tos = ip.tos
    if tos & 0x3 == 0x3:
        score += 1
    elif tos >> 2 == 46:
        score = 0
    budget: u64 = 0
    for j in range(4):
        if total > (j + 1) * 256:
            budget += j
        else:
            break
    if budget > 4 or (score > 6 and gap < 100):
        drops += 1
        return bpf.XDP_DROP
    if sport == dport and sport != 0:
        return bpf.XDP_DROP
    return bpf.XDP_PASS
'''


#: The generated programs of the scaling rows: (lines, straight-line).
SCALING = ((300, False), (1000, False), (1000, True))


def generated(lines: int, straight: bool = False) -> str:
    """A program of about ``lines`` lines: a unit of 10 lines (a map read, an if/elif/else
    with a helper call, arithmetic, a map write), repeated, with the same few locals so the
    stack stays small; every fifth unit is 10 lines of straight-line arithmetic instead.
    ``straight``: every unit is straight-line (arithmetic, helper calls and writes to an
    array at constant indexes: one basic block of the whole program, the case where a pass
    that is quadratic in a block's length shows)."""
    units = []
    for k in range(max(1, lines // 10)):
        if straight:
            units.append("\n".join(
                f"    x = x * {k + 3} + y" if j % 4 == 0 else
                f"    y = y ^ (x >> {(k + j) % 29 + 1})" if j % 4 == 1 else
                "    z = z + bpf.ktime_get_ns() + x" if j % 4 == 2 else
                f"    counts[{(k + j) % 8}] = x + y + z" for j in range(10)))
            continue
        if k % 5 == 4:
            units.append("\n".join(
                f"    {a} = {b} * {k + j + 3} + ({a} >> {j + 1})"
                for j in range(10) for a, b in [("xyz"[j % 3], "xyz"[(j + 1) % 3])]))
            continue
        units.append(f"""    v = counts[{k % 8}]
    if v > {k}:
        acc = acc + v * {k + 3}
        x = x ^ (acc >> {k % 13 + 1})
    elif x & {k + 1} == 0:
        acc += 1
    else:
        x = x + bpf.ktime_get_ns()
    y = (y + x) & 0xFFFF
    counts[{(k + 1) % 8}] = acc + y""")
    body = "\n".join(units)
    return f'''from ebpf import bpf
from ebpf.bpf import u64

counts = bpf.Array(u64, max_entries=8)


@bpf.xdp
def generated(ctx: bpf.XDP) -> int:
    acc: u64 = 0
    x: u64 = 0
    y: u64 = 0
    z: u64 = 0
{body}
    return bpf.XDP_PASS if acc + x + y + z > 0 else bpf.XDP_DROP
'''


def generated_module(lines: int, straight: bool = False) -> types.ModuleType:
    BUILD.mkdir(parents=True, exist_ok=True)
    path = BUILD / f"compile_generated_{lines}{'_straight' if straight else ''}.py"
    src = generated(lines, straight)
    if not path.exists() or path.read_text() != src:
        path.write_text(src)
    return example_module(path)


# -- the examples, without their demo code ---------------------------------------------------
def example_module(path: Path) -> types.ModuleType:
    """Run ``path``'s imports, classes, functions and assignments in a fresh module."""
    tree = ast.parse(path.read_text(), str(path))
    mod = types.ModuleType(f"_compile_bench_{path.stem}")
    mod.__file__ = str(path)
    keep = (ast.Import, ast.ImportFrom, ast.ClassDef, ast.FunctionDef, ast.Assign,
            ast.AnnAssign)
    for stmt in tree.body:
        if not isinstance(stmt, keep):
            continue
        code = compile(ast.Module(body=[stmt], type_ignores=[]), str(path), "exec")
        try:
            exec(code, mod.__dict__)
        except Exception:  # e.g. `ok = verdicts == ...` after the demo that was not run
            continue
    return mod


def programs_of(mod: types.ModuleType) -> list[Any]:
    from ebpf.bpf._decl import ProgramDecl

    return [v for v in vars(mod).values() if isinstance(v, ProgramDecl)]


def source_lines(decl: Any) -> int:
    """Lines of the program function and of the ``@bpf.func`` functions it may call."""
    from ebpf.bpf._decl import FuncDecl

    fns = [decl.fn] + [v.fn for v in decl.fn.__globals__.values() if isinstance(v, FuncDecl)]
    return sum(len(inspect.getsourcelines(f)[0]) for f in fns)


def hundred_module() -> types.ModuleType:
    BUILD.mkdir(parents=True, exist_ok=True)
    path = BUILD / "compile_hundred.py"
    if not path.exists() or path.read_text() != HUNDRED_LINES:
        path.write_text(HUNDRED_LINES)
    return example_module(path)


# -- measurements ---------------------------------------------------------------------------
def compile_ms(progs: list[Any], repeats: int, optimize: bool = True) -> list[float]:
    from ebpf.bpf._compiler import compile_program

    for p in progs:  # warm: imports, tracefs formats, helper metadata
        compile_program(p, optimize=optimize)
    out = []
    for _ in range(repeats):
        t0 = time.process_time()
        for p in progs:
            compile_program(p, optimize=optimize)
        out.append((time.process_time() - t0) * 1e3)
    return out


def ours_insns(progs: list[Any], optimize: bool = True) -> dict[str, tuple[int, int, int]]:
    """name -> (insns emitted, insns after verification, insns processed by the verifier),
    compiled with or without the optimiser."""
    from ebpf import bpf
    from ebpf.bpf._compiler import compile_program

    saved = [p._compiled for p in progs]
    try:
        for p in progs:  # what bpf.load will use (ProgramDecl caches its compilation)
            p._compiled = compile_program(p, optimize=optimize)
        with bpf.load(*progs) as coll:
            out = {}
            for p in progs:
                info = coll.programs[p.name].info()
                n = p.compile().instructions.slots
                out[p.name] = (n, info.xlated_prog_len // 8, info.verified_insns)
            return out
    finally:
        for p, c in zip(progs, saved, strict=True):
            p._compiled = c


def clang_object(name: str) -> Path:
    clang = shutil.which("clang-19")
    if clang is None:
        raise common.Unavailable("clang-19 not installed (bench/setup.sh)")
    src = HERE / f"compile_{name}.c"
    if not src.exists():
        raise common.Unavailable(f"{src.name} missing")
    BUILD.mkdir(parents=True, exist_ok=True)
    out = BUILD / f"compile_{name}.o"
    inc = []
    arch = sysconfig.get_config_var("MULTIARCH")
    if arch:
        inc.append(f"-I/usr/include/{arch}")
    p = subprocess.run([clang, "-O2", "-target", "bpf", "-g", *inc, "-c", str(src), "-o",
                        str(out)], capture_output=True, text=True)
    if p.returncode != 0:
        raise common.Unavailable(f"clang-19 {src.name}: {common.tail(p.stderr)}")
    return out


def clang_insns(name: str) -> dict[str, tuple[int, int]]:
    """program name -> (insns after verification, processed) of the C twin."""
    import ebpf

    coll = ebpf.load(clang_object(name))
    try:
        return {n: (p.info().xlated_prog_len // 8, p.info().verified_insns)
                for n, p in coll.programs.items()}
    finally:
        coll.close()


def run(quick: bool = False) -> list[dict[str, Any]]:
    sys.path.insert(0, str(HERE.parent / "src"))
    repeats = 5 if quick else 21
    rows: list[dict[str, Any]] = []
    work: list[tuple[str, types.ModuleType]] = [
        (p.stem.removeprefix("py_"), example_module(p)) for p in sorted(EXAMPLES.glob("py_*.py"))]
    work.append(("hundred", hundred_module()))
    for name, mod in work:
        progs = programs_of(mod)
        if not progs:
            continue
        lines = sum(source_lines(p) for p in progs)
        try:
            ms = compile_ms(progs, repeats)
            before = compile_ms(progs, max(3, repeats // 3), optimize=False)
        except Exception as e:
            rows.append(common.skipped(BENCH, f"compile {name}", f"{type(e).__name__}: {e}"))
            continue
        rows.append(common.row(
            BENCH, f"compile {name} ({lines} lines)", "ms", ms,
            target="< 50 ms for 100 lines (issue 11)", target_spec={"max": 50.0 * max(
                1.0, lines / 100)},
            note=f"{len(progs)} program(s); without the optimiser {common.median(before):.2f} ms"))
        try:
            ours = ours_insns(progs)
            raw = ours_insns(progs, optimize=False)
        except Exception as e:
            rows.append(common.skipped(BENCH, f"insns {name}", f"load: {type(e).__name__}: {e}"))
            continue
        try:
            theirs: dict[str, tuple[int, int]] | None = clang_insns(name)
            why = ""
        except FileNotFoundError:
            theirs, why = None, "no C twin"
        except common.Unavailable as e:
            theirs, why = None, str(e)
        except Exception as e:
            theirs, why = None, f"clang object load: {type(e).__name__}: {e}"
        for p in progs:
            emitted, xlated, processed = ours[p.name]
            floors: dict[str, Any] = {}
            peers = {UNOPT_LABEL: raw[p.name][1]}
            note = (f"emitted {emitted} (unoptimised {raw[p.name][0]}), verifier processed "
                    f"{processed} (unoptimised {raw[p.name][2]})")
            if theirs is not None and p.name in theirs:
                floors[CLANG_LABEL] = theirs[p.name][0]
                note += f"; clang processed {theirs[p.name][1]}"
            elif name != "hundred":
                floors[CLANG_LABEL] = f"floor unavailable: {why or 'no such program in C'}"
            spec = {"vs": CLANG_LABEL, "max_ratio": 1.3} if CLANG_LABEL in floors else None
            rows.append(common.row(
                BENCH, f"insns after verification {name}/{p.name}", "insns", xlated,
                floors=floors, peers=peers,
                target="<= 1.3x clang -O2 (issue 11)" if spec else "",
                target_spec=spec, note=note))
    rows += scaling_rows(quick)
    return rows


def scaling_rows(quick: bool = False) -> list[dict[str, Any]]:
    """Compile time of the generated programs (:data:`SCALING`), ms per 100 lines in the
    note: the same for each size when every pass is linear in the program."""
    rows: list[dict[str, Any]] = []
    for lines, straight in SCALING:
        name = f"compile generated{' straight-line' if straight else ''} ({lines} lines)"
        try:
            progs = programs_of(generated_module(lines, straight))
            ms = compile_ms(progs, 3 if quick else 7)
            before = compile_ms(progs, 3, optimize=False)
        except Exception as e:
            rows.append(common.skipped(BENCH, name, f"{type(e).__name__}: {e}"))
            continue
        from ebpf.bpf._compiler import compile_program

        insns = [compile_program(p).instructions.slots for p in progs]
        med = common.median(ms)
        rows.append(common.row(
            BENCH, name, "ms", ms, target="< 50 ms per 100 lines (issue 11)",
            target_spec={"max": 50.0 * lines / 100},
            note=f"{med * 100 / lines:.1f} ms per 100 lines; without the optimiser "
                 f"{common.median(before):.2f} ms; emitted {sum(insns)} insns"))
    return rows


if __name__ == "__main__":
    common.standalone(run)
