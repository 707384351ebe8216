"""The optimiser's cost grows with the program, not faster (issue 11: a pass quadratic in a
block's length, or redone per change, made a 1000-line program take seconds).

Generated programs are compiled with ``compile_program`` and timed in CPU time of this
process (``time.process_time``), so other processes on a shared machine count little; the
bounds are generous (about 5x what they take here) and still fail for a quadratic pass.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from ebpf.bpf._compiler import compile_program


def _source(lines: int, straight: bool) -> str:
    """About ``lines`` lines of one XDP program: units of 10 lines (a map read, a branch
    with a helper call, arithmetic, a map write) or, ``straight``, straight-line units
    (arithmetic, helper calls, array writes at constant indexes: one long basic block)."""
    units = []
    for k in range(lines // 10):
        if straight:
            units.append("\n".join(
                f"    x = x * {k + 3} + y" if j % 4 == 0 else
                f"    y = y ^ (x >> {(k + j) % 29 + 1})" if j % 4 == 1 else
                "    z = z + bpf.ktime_get_ns() + x" if j % 4 == 2 else
                f"    counts[{(k + j) % 8}] = x + y + z" for j in range(10)))
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


def _program(tmp_path: Path, lines: int, straight: bool) -> Any:
    name = f"_scaling_{lines}_{int(straight)}"
    path = tmp_path / f"{name}.py"
    path.write_text(_source(lines, straight))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod: ModuleType = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.modules.pop(name, None)
    return mod.generated


def _cpu_seconds(prog: Any, repeats: int = 2) -> float:
    """The least CPU time of ``repeats`` compilations (after one warm-up)."""
    compile_program(prog)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.process_time()
        compile_program(prog)
        best = min(best, time.process_time() - t0)
    return best


@pytest.mark.parametrize("straight", [False, True], ids=["branches", "straight-line"])
def test_a_1000_line_program_compiles_within_two_seconds(tmp_path: Path,
                                                         straight: bool) -> None:
    prog = _program(tmp_path, 1000, straight)
    seconds = _cpu_seconds(prog, repeats=1)
    assert seconds < 2.0, f"{seconds:.2f} s of CPU time for 1000 lines"
    # the optimiser did its work: fewer instructions than the stack-slot code
    ours = compile_program(prog).instructions.slots
    plain = compile_program(prog, optimize=False).instructions.slots
    assert ours < plain * 0.9


def test_compile_time_grows_about_linearly(tmp_path: Path) -> None:
    """Per line, 1000 lines cost less than 3x what 200 lines do (linear: about 1x; a pass
    quadratic in the block's length: 5x), on the straight-line program (one block)."""
    small = _cpu_seconds(_program(tmp_path, 200, True), repeats=3) / 200
    large = _cpu_seconds(_program(tmp_path, 1000, True), repeats=2) / 1000
    assert large < 3 * small, f"{large * 1e5:.1f} vs {small * 1e5:.1f} ms per 100 lines"
