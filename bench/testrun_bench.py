"""Per-call overhead of ``Program.test_run(data, repeat=1)`` on a 64-byte packet.

Target (issues 5 and 13): within 1.1x of a bare ctypes BPF_PROG_TEST_RUN with a pre-built attr.

- ours, one-shot: ``prog.test_run(packet, repeat=1)`` (returns a ``TestRunResult`` with the
  output packet; the program keeps a runner for it);
- ours, runner: ``run = prog.test_runner(repeat=1).run`` then ``run(packet)`` (returns
  ``(retval, output packet)``; attr and buffers built once);
- floor ``ctypes``: ``libc.syscall(NR_bpf, BPF_PROG_TEST_RUN, attr_ptr, size)`` with an attr,
  input and output buffers built once (no result decoding);
- floor ``C``: libbpf ``bpf_prog_test_run_opts()`` and a bare ``syscall()`` loop
  (bench/testrun_run.c).

Two trivial programs: XDP (``return XDP_PASS``) and SOCKET_FILTER (``return 0``; the kernel
builds an skb per run, so its fixed cost is higher).

Python variants are timed in per-thread CPU time (``time.thread_time_ns``, which counts the
syscall's kernel time too), interleaved in short rounds: on the 2 shared cores wall-clock
samples of a ~1.5 us call mostly measure who else was scheduled, while ours and the floor are
both CPU-bound in this one thread. The C floors time themselves (CLOCK_MONOTONIC).
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Callable, Mapping
from typing import Any

import common

BENCH = "testrun"
TARGET = 1.1
PACKET = bytes(64)


def _interleaved_cpu(variants: Mapping[str, Callable[[int], object]], n: int,
                     repeats: int) -> dict[str, list[float]]:
    """Per-op CPU ns of each variant: ``repeats`` samples of ``n`` ops, taken round-robin."""
    out: dict[str, list[float]] = {k: [] for k in variants}
    clock = time.thread_time_ns
    for fn in variants.values():
        fn(max(1, n // 10))  # warm-up
    for _ in range(repeats):
        for name, fn in variants.items():
            t0 = clock()
            fn(n)
            out[name].append((clock() - t0) / n)
    return out


def _measure(n: int, repeats: int) -> dict[str, dict[str, list[float]]]:
    import ebpf
    from ebpf import asm
    from ebpf._uapi import _arch
    from ebpf._uapi import _generated_types as t

    out: dict[str, dict[str, list[float]]] = {}
    for kind, ptype, ret in (("xdp", ebpf.ProgramType.XDP, 2),
                             ("socket_filter", ebpf.ProgramType.SOCKET_FILTER, 0)):
        prog = ebpf.Program.load(ptype, [asm.mov(asm.R0, ret), asm.exit()])
        try:
            din = ctypes.create_string_buffer(PACKET, len(PACKET))
            dout = ctypes.create_string_buffer(len(PACKET) + 256)
            attr = t.ProgTestRunAttr()
            attr.prog_fd = prog.fileno()
            attr.repeat = 1
            attr.data_in = ctypes.addressof(din)
            attr.data_size_in = len(PACKET)
            attr.data_out = ctypes.addressof(dout)
            attr.data_size_out = len(dout)
            bare = ctypes.CDLL(None, use_errno=True).syscall
            nr = _arch.NR_BPF
            cmd = int(t.bpf_cmd.BPF_PROG_TEST_RUN)
            ptr = ctypes.c_void_p(ctypes.addressof(attr))
            size = ctypes.sizeof(attr)
            test_run = prog.test_run
            run = prog.test_runner(data_size_hint=len(PACKET), repeat=1).run
            assert bare(nr, cmd, ptr, size) == 0 and attr.retval == ret
            assert test_run(PACKET, repeat=1).retval == ret
            assert run(PACKET) == (ret, PACKET)

            def ours(k: int, test_run: Any = test_run) -> None:
                for _ in range(k):
                    test_run(PACKET, repeat=1)

            def runner(k: int, run: Any = run) -> None:
                for _ in range(k):
                    run(PACKET)

            def floor(k: int, bare: Any = bare, nr: int = nr, cmd: int = cmd, ptr: Any = ptr,
                      size: int = size) -> None:
                for _ in range(k):
                    bare(nr, cmd, ptr, size)

            out[kind] = _interleaved_cpu({"ours": ours, "runner": runner, "ctypes": floor},
                                         n, repeats)
        finally:
            prog.close()
    return out


def run(quick: bool = False) -> list[dict[str, Any]]:
    n, repeats = (1_000, 15) if quick else (1_000, 61)
    got = _measure(n, repeats)
    try:
        cres = common.run_c("testrun_run", n, repeats)
    except common.Unavailable as e:
        cres = {}
        cnote = str(e)
    rows = []
    for kind, label in (("xdp", "XDP"), ("socket_filter", "SOCKET_FILTER")):
        c: dict[str, Any] = (
            {"C libbpf": cres.get(f"{kind}_libbpf"), "C syscall": cres.get(f"{kind}_syscall")}
            if cres else {"C": cnote})
        for variant, what in (("ours", "test_run repeat=1"), ("runner", "TestRunner.run")):
            rows.append(common.row(
                BENCH, f"{what}, {label}, 64 B", "ns/op", got[kind][variant],
                floors={"ctypes": got[kind]["ctypes"], **c},
                peers={"bcc": "n/a: bcc has no test_run API"},
                target=f"<= {TARGET}x ctypes (issue 13)",
                target_spec={"vs": "ctypes", "max_ratio": TARGET},
            ))
    return rows


if __name__ == "__main__":
    common.standalone(run)
