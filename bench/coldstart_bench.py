"""Cold start: a fresh process imports the library, loads a small program and runs it once.

Every side is a whole process timed by the parent from spawn to exit (wall clock):
- ours: ``python -c "import ebpf; ...Program.load(SOCKET_FILTER, [r0 = 0, exit]).test_run(...)"``
  under Debian's ``/usr/bin/python3`` with ``PYTHONPATH=src`` (the interpreter bcc uses, so
  both pay the same interpreter start); the interpreter running the bench is a second row;
- floor ``python``: the same interpreter doing nothing (``python -c pass``);
- floor ``C``: libbpf ``bpf_prog_load`` + ``bpf_prog_test_run_opts`` (bench/coldstart_prog.c);
- peer ``bcc``: ``from bcc import BPF; BPF(text=...)`` (compiles C with LLVM),
  ``load_func(..., SOCKET_FILTER)`` and one BPF_PROG_TEST_RUN through ctypes (bcc has no
  test_run API).
Also ``import ebpf`` alone against interpreter start, and (informational) the CPU time
(user + system) of our process and of the bare interpreter: on these shared cores a busy
machine stretches wall-clock starts 2-4x while the CPU time a start needs stays put.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import common

BENCH = "coldstart"

OURS = (
    "import ebpf\n"
    "from ebpf import asm\n"
    "p = ebpf.Program.load(ebpf.ProgramType.SOCKET_FILTER, [asm.mov(asm.R0, 0), asm.exit()])\n"
    "assert p.test_run(bytes(64)).retval == 0\n"
)

BCC = (
    "import ctypes\n"
    "from bcc import BPF\n"
    "b = BPF(text='int f(struct __sk_buff *skb) { return 0; }')\n"
    "fn = b.load_func('f', BPF.SOCKET_FILTER)\n"
    "class A(ctypes.Structure):\n"
    "    _fields_ = [('prog_fd', ctypes.c_uint32), ('retval', ctypes.c_uint32),\n"
    "                ('data_size_in', ctypes.c_uint32), ('data_size_out', ctypes.c_uint32),\n"
    "                ('data_in', ctypes.c_uint64), ('data_out', ctypes.c_uint64),\n"
    "                ('repeat', ctypes.c_uint32), ('pad', ctypes.c_uint8 * 52)]\n"
    "pkt = ctypes.create_string_buffer(64)\n"
    "a = A(prog_fd=fn.fd, data_size_in=64, data_in=ctypes.addressof(pkt), repeat=1)\n"
    "assert ctypes.CDLL(None).syscall(321, 10, ctypes.byref(a), ctypes.sizeof(a)) == 0\n"
    "assert a.retval == 0\n"
)


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _time_process(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall ms, CPU ms) of one process; the CPU time is the growth of the waited-for
    children's rusage, which is this child's alone (the bench runs one at a time)."""
    c0 = _children_cpu()
    t0 = time.perf_counter()
    p = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    dt = time.perf_counter() - t0
    cpu = _children_cpu() - c0
    if p.returncode != 0:
        raise RuntimeError(f"{argv[0]} exit {p.returncode}: {common.tail(p.stderr)}")
    return dt * 1e3, cpu * 1e3


def _samples(variants: dict[str, tuple[list[str], dict[str, str] | None]],
             repeats: int) -> tuple[dict[str, list[float] | str], dict[str, list[float]]]:
    """Interleaved process timings (wall ms; a failing variant becomes its error string)
    and the CPU ms of the same runs."""
    out: dict[str, list[float] | str] = {k: [] for k in variants}
    cpu: dict[str, list[float]] = {k: [] for k in variants}
    live = dict(variants)
    for i in range(repeats + 1):  # round 0 warms the page cache
        for name, (argv, env) in list(live.items()):
            try:
                dt, ct = _time_process(argv, env)
            except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
                out[name] = f"failed: {e}"
                del live[name]
                continue
            if i:
                samples = out[name]
                assert isinstance(samples, list)
                samples.append(dt)
                cpu[name].append(ct)
    return out, cpu


def run(quick: bool = False) -> list[dict[str, Any]]:
    repeats = 5 if quick else 11
    src = str(common.REPO_DIR / "src")
    sys_py = common.SYSTEM_PYTHON if Path(common.SYSTEM_PYTHON).exists() else sys.executable
    # As an installed package is used: bytecode compiled once (pip and Debian's bcc package
    # both do that at install time), so PYTHONDONTWRITEBYTECODE, which some environments set,
    # must not make every timed run compile the library from source.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for py in {sys_py, sys.executable}:
        subprocess.run([py, "-m", "compileall", "-q", src], env=env, check=True,
                       capture_output=True, timeout=300)
    env_src = {**env, "PYTHONPATH": src}
    variants: dict[str, tuple[list[str], dict[str, str] | None]] = {
        "ours": ([sys_py, "-c", OURS], env_src),
        "ours_this": ([sys.executable, "-c", OURS], env_src),
        "import": ([sys_py, "-c", "import ebpf"], env_src),
        "python": ([sys_py, "-c", "pass"], env),
    }
    try:
        variants["C"] = ([str(common.build_c("coldstart_prog"))], None)
    except common.Unavailable as e:
        c_note: str | None = str(e)
    else:
        c_note = None
    ok, why = common.bcc_status()
    if ok:
        variants["bcc"] = ([common.SYSTEM_PYTHON, "-c", BCC], env)
    got, cpu = _samples(variants, repeats)
    c = got.get("C", c_note)
    bcc = got.get("bcc") if ok else f"peer unavailable: {why}"
    if isinstance(bcc, str) and not bcc.startswith("peer unavailable"):
        bcc = f"peer unavailable: {bcc}"
    return [
        common.row(BENCH, "cold start: import, load, run once", "ms", got["ours"],
                   floors={"python": got["python"], "C": c}, peers={"bcc": bcc},
                   target="<= 40 ms", target_spec={"max": 40.0},
                   note=f"{sys_py}, as bcc; bytecode compiled, as installed"),
        common.row(BENCH, "cold start: import, load, run once", "ms", got["ours_this"],
                   floors={"C": c}, peers={"bcc": bcc},
                   note=f"bench interpreter, Python {sys.version.split()[0]}"),
        common.row(BENCH, "import ebpf", "ms", got["import"], floors={"python": got["python"]},
                   note="process incl. interpreter start"),
        common.row(BENCH, "cold start CPU time (user+sys)", "ms",
                   cpu["ours"] if isinstance(got["ours"], list) else got["ours"],
                   floors={"python": cpu["python"] if isinstance(got["python"], list)
                           else got["python"]},
                   note="the same runs as the first row; informational"),
    ]


if __name__ == "__main__":
    common.standalone(run)
