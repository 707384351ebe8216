"""ebpf.bpf variable indexes into kernel arrays, on the kernel.

A tracepoint on ``sys_enter_getppid`` reads ``task.comm[i]`` with ``i`` from a map (so the
compiler cannot fold it): through the BTF task pointer (``bpf.get_current_task_btf()``)
and through an address read with ``core_read`` (``bpf.get_current_task()``). Every index of
the 16-byte array gives this process's comm byte; indexes past it (and negative ones, as
u64) read 0.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from ebpf.link.tracepoint import attach_tracepoint
from ebpf.testing.modules import import_source

SOURCE = '''
from ebpf import bpf
from ebpf.bpf import u32, u64, i64

cfg = bpf.Array(u64, max_entries=1)
out = bpf.Array(i64, max_entries=2)

@bpf.tracepoint("syscalls/sys_enter_getppid")
def comm_at(ctx) -> int:
    if bpf.get_current_pid_tgid() >> 32 != pid:
        return 0
    i = cfg[0]
    out[0] = bpf.get_current_task_btf().comm[i]
    out[1] = bpf.core_read(bpf.get_current_task().comm[i])
    return 0
'''


@pytest.fixture(scope="module")
def mod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    m = import_source(tmp_path_factory.mktemp("karr"), "bpf_kernel_array_index_mod",
                      SOURCE + f"\npid = bpf.const(u32, {os.getpid()})\n")
    yield m
    sys.modules.pop(m.__name__, None)


def test_variable_index_reads_comm(mod: ModuleType, tracefs: str) -> None:
    from ebpf import bpf

    comm = Path(f"/proc/{os.getpid()}/comm").read_bytes().strip().ljust(16, b"\0")
    with bpf.load(mod.comm_at) as coll, \
            attach_tracepoint(coll.comm_at, "syscalls", "sys_enter_getppid"):
        got: list[Any] = []
        for i in [*range(16), 16, 100, (1 << 64) - 1]:
            coll.cfg[0] = i
            coll.out[0] = coll.out[1] = -1
            os.getppid()
            got.append((coll.out[0], coll.out[1]))
    assert got[:16] == [(b, b) for b in comm]
    assert got[16:] == [(0, 0)] * 3
