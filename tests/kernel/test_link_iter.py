"""BPF iterators on the real kernel: a task iterator prints pids, and we read them."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ebpf
from ebpf import asm, btf
from ebpf._maps import Map
from ebpf.asm import R0, R1, R2, R3, R4, R5, R6, R7, R8, R10, Helper
from ebpf.link.iter import IterLink, attach_iter
from ebpf.testing.modules import import_file

H = import_file(Path(__file__).with_name("_trace_link_factories.py"))
P = ebpf.ProgramType
A = ebpf.AttachType
FMT = b"pid %d tid %d\n\0"


@pytest.fixture(scope="module")
def task_offsets() -> tuple[int, int]:
    """Byte offsets of task_struct.pid and .tgid on this kernel, from its BTF."""
    task = btf.load_kernel().find("task_struct", kind=btf.Struct)
    return task.member("tgid").offset // 8, task.member("pid").offset // 8


@pytest.fixture
def fmt_map() -> Iterator[Map]:
    """A frozen, program-read-only map holding the seq_printf format (ARG_PTR_TO_CONST_STR)."""
    with Map.create(ebpf.MapType.ARRAY, key_size=4, value_size=len(FMT), max_entries=1,
                    flags=ebpf.MapFlags.RDONLY_PROG) as m:
        m[0] = FMT
        m.freeze()
        yield m


def _task_printer(fmt: Map, offsets: tuple[int, int], prefix: int = 0) -> list[Any]:
    """For each task: seq_printf("pid %d tid %d\\n", task->tgid + prefix, task->pid)."""
    tgid_off, pid_off = offsets
    return [
        asm.load(asm.DW, R7, R1, 0),        # ctx->meta
        asm.load(asm.DW, R8, R1, 8),        # ctx->task (may be NULL at the end)
        asm.jeq(R8, 0, "out"),
        asm.load(asm.W, R6, R8, tgid_off),
        asm.add(R6, prefix),
        asm.store(asm.DW, R10, -16, R6),
        asm.load(asm.W, R6, R8, pid_off),
        asm.store(asm.DW, R10, -8, R6),
        asm.load(asm.DW, R1, R7, 0),        # meta->seq
        asm.load_map_value(R2, fmt, 0),
        asm.mov(R3, len(FMT)),
        asm.mov(R4, R10), asm.add(R4, -16),
        asm.mov(R5, 16),
        asm.call(Helper.SEQ_PRINTF),
        asm.label("out"),
        asm.mov(R0, 0),
        asm.exit(),
    ]


def _load_iter(insns: list[Any]) -> ebpf.Program:
    return H.load(P.TRACING, insns, expected_attach_type=A.TRACE_ITER, attach_to="task",
                  name="iter_task")


def _pids(text: bytes) -> list[tuple[int, int]]:
    out = []
    for line in text.decode().splitlines():
        _, pid, _, tid = line.split()
        out.append((int(pid), int(tid)))
    return out


def test_task_iterator_prints_our_pid(fmt_map: Map, task_offsets: tuple[int, int]) -> None:
    with _load_iter(_task_printer(fmt_map, task_offsets)) as prog, attach_iter(prog) as it:
        assert isinstance(it, IterLink)
        rows = _pids(it.read())
        assert (os.getpid(), os.getpid()) in rows
        assert len({pid for pid, _ in rows}) > 3  # other processes too
        assert it.target_name() == "task"
        assert it.info().type == ebpf.LinkType.ITER
        # each open is a fresh walk
        with it.open() as f1, it.open() as f2:
            assert _pids(f1.read()) and _pids(f2.read())


def test_task_iterator_restricted_to_one_process(fmt_map: Map,
                                                 task_offsets: tuple[int, int]) -> None:
    ready = threading.Event()
    stop = threading.Event()

    def worker() -> None:
        ready.set()
        stop.wait(10)

    t = threading.Thread(target=worker)
    t.start()
    ready.wait(5)
    try:
        with _load_iter(_task_printer(fmt_map, task_offsets)) as prog, \
                attach_iter(prog, pid=os.getpid()) as it:
            rows = _pids(it.read())
            assert rows
            assert {pid for pid, _ in rows} == {os.getpid()}
            assert len({tid for _, tid in rows}) >= 2  # the main thread and the worker
    finally:
        stop.set()
        t.join()


def test_iterator_update_and_pin(fmt_map: Map, task_offsets: tuple[int, int],
                                 bpffs: str) -> None:
    with _load_iter(_task_printer(fmt_map, task_offsets)) as a, \
            _load_iter(_task_printer(fmt_map, task_offsets, prefix=1_000_000_000)) as b, \
            attach_iter(a) as it:
        it.update(b)
        assert (os.getpid() + 1_000_000_000, os.getpid()) in _pids(it.read())
        pin = os.path.join(bpffs, "tasks")
        it.pin(pin)
        text = Path(pin).read_bytes()  # a pinned iterator reads like a file: `cat pin`
        assert (os.getpid() + 1_000_000_000, os.getpid()) in _pids(text)
        it.unpin()


def test_attach_iter_checks_inputs() -> None:
    with H.load(P.TRACING, H.ret0(), expected_attach_type=A.TRACE_RAW_TP,
                attach_to="sys_enter") as tp, H.load(P.KPROBE, H.ret0()) as kp:
        with pytest.raises(ValueError, match="expected TRACE_ITER"):
            attach_iter(tp)
        with pytest.raises(ValueError, match="expected TRACING"):
            attach_iter(kp)
    with _load_iter(H.ret0()) as it_prog:
        with pytest.raises(ValueError, match="at most one"):
            attach_iter(it_prog, pid=1, tid=1)
        with pytest.raises(ValueError, match="order needs"):
            attach_iter(it_prog, order=ebpf.link.iter.CgroupIterOrder.SELF_ONLY)
