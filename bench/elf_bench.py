"""ELF objects: parse to a spec, and parse + load (maps, BTF, CO-RE, programs), vs libbpf.

Objects are compiled from tests/testdata/elf with clang-19 into bench/build/:

- ``globals.o``: 3 programs, 2 BTF maps, .data/.bss/.rodata, func/line info;
- ``core.o``: 2 programs with 10 CO-RE relocations against the kernel's BTF.

- ours ``open``: ``CollectionSpec.from_file`` (ELF + BTF + .BTF.ext + linking);
- ours ``open+load``: ``ebpf.load(path)`` then close (BTF load, map creation, relocation,
  BPF_PROG_LOAD per program). The kernel BTF used by CO-RE is parsed once per process and
  cached, as in a long-running tool; libbpf re-reads it on every load. For the CO-RE object
  a second row drops that cache before every load (the kernel BTF read and searched each
  time, as libbpf does), for the record.

Issue 13's targets: open at most 4x libbpf's, open+load of the CO-RE object at most 1.1x.
- floor ``C``: libbpf ``bpf_object__open_file`` and ``open_file`` + ``bpf_object__load``
  (bench/elf_load.c).
"""

from __future__ import annotations

import shutil
import subprocess
import sysconfig
import time
from pathlib import Path
from typing import Any

import common

BENCH = "elf"
HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "tests" / "testdata" / "elf"
BUILD = HERE / "build"
OBJECTS = ("globals", "core")


def _compile(name: str) -> Path:
    clang = shutil.which("clang-19")
    if clang is None:
        raise common.Unavailable("clang-19 not installed")
    BUILD.mkdir(parents=True, exist_ok=True)
    out = BUILD / f"elf_{name}.o"
    src = SRC / f"{name}.c"
    if out.exists() and out.stat().st_mtime >= src.stat().st_mtime:
        return out
    inc = [f"-I{BUILD}"]
    arch = sysconfig.get_config_var("MULTIARCH")
    if arch:
        inc.append(f"-I/usr/include/{arch}")
    vmlinux_h = BUILD / "vmlinux.h"
    if not vmlinux_h.exists():
        bpftool = shutil.which("bpftool")
        if bpftool is None:
            raise common.Unavailable("bpftool not installed (needed for vmlinux.h)")
        vmlinux_h.write_bytes(subprocess.run(
            [bpftool, "btf", "dump", "file", "/sys/kernel/btf/vmlinux", "format", "c"],
            check=True, capture_output=True).stdout)
    subprocess.run([clang, "-O2", "-g", "-target", "bpf", "-mcpu=v3", *inc, "-c", str(src),
                    "-o", str(out)], check=True)
    return out


def _measure(path: Path, repeats: int, cold: bool = False) -> dict[str, list[float]]:
    import ebpf._collection as coll
    from ebpf import btf
    from ebpf._spec import CollectionSpec

    btf.load_kernel()  # warm the cached kernel BTF

    def open_once() -> float:
        t0 = time.perf_counter()
        CollectionSpec.from_file(path)
        return time.perf_counter() - t0

    def load_once() -> float:
        if cold:
            btf.load_kernel.cache_clear()
        t0 = time.perf_counter()
        c = coll.load(path)
        dt = time.perf_counter() - t0
        c.close()
        return dt

    open_once(), load_once()
    btf.load_kernel()  # the cache is warm again for the next object
    out: dict[str, list[float]] = {"open": [], "load": []}
    for _ in range(repeats):
        out["open"].append(open_once() * 1e3)
        out["load"].append(load_once() * 1e3)
    btf.load_kernel()
    return out


def run(quick: bool = False) -> list[dict[str, Any]]:
    repeats = 11 if quick else 41
    rows: list[dict[str, Any]] = []
    for name in OBJECTS:
        try:
            path = _compile(name)
        except (common.Unavailable, subprocess.CalledProcessError, OSError) as e:
            rows.append(common.skipped(BENCH, f"{name}.o", str(e)))
            continue
        try:
            c = common.run_c("elf_load", repeats, path)
            floor_open: Any = c.get("open")
            floor_load: Any = c.get("open_load")
        except common.Unavailable as e:
            floor_open = floor_load = str(e)
        got = _measure(path, repeats)
        rows.append(common.row(BENCH, f"open {name}.o (CollectionSpec.from_file)", "ms",
                               got["open"], floors={"C": floor_open},
                               target="<= 4x C (issue 13)",
                               target_spec={"vs": "C", "max_ratio": 4.0},
                               note="libbpf bpf_object__open_file"))
        core = name == "core"
        rows.append(common.row(BENCH, f"open+load {name}.o (ebpf.load)", "ms", got["load"],
                               floors={"C": floor_load},
                               target="<= 1.1x C (issue 13)" if core else "",
                               target_spec={"vs": "C", "max_ratio": 1.1} if core else None,
                               note="libbpf open_file + bpf_object__load; kernel BTF cached "
                                    "in-process on our side"))
        if core:
            cold = _measure(path, max(3, repeats // 4), cold=True)
            rows.append(common.row(BENCH, f"open+load {name}.o, kernel BTF re-read per load",
                                   "ms", cold["load"], floors={"C": floor_load},
                                   note="our kernel BTF cache dropped before each load, as "
                                        "libbpf reads it every time; for the record"))
    return rows


if __name__ == "__main__":
    common.standalone(run)
