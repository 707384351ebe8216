"""Built-in programs for the exporter: the tools' hooks, keeping their maps for metrics.

Each builder takes an ``ExitStack`` (everything it loads and attaches closes with it) and
returns the maps by name, like an ELF object's collection:

* ``syscalls`` - ``counts``: u32 syscall number -> u64 calls (``raw_syscalls:sys_enter``)
* ``runqlat`` - ``hist``: log2 run-queue latency in microseconds (``sched`` tracepoints)
* ``execs`` - ``counts``: comm[16] -> u64 execs (``sched:sched_process_exec``)
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from .. import asm
from ..asm import R0, R1, R6, R7, R8, R9, R10, Helper
from ..hooks import tracepoint
from ..lib import fp, histogram, maps
from ..tools import _common as c

__all__ = ["BUILTINS"]


def syscalls(stack: ExitStack) -> dict[str, Any]:
    f = c.fmt("raw_syscalls", "sys_enter")
    counts = c.hash_map(stack, 4, 8, 1024)
    program: list[asm.Item] = [tracepoint.save_ctx(R6), *tracepoint.field(R7, f, "id", R6),
               asm.store(asm.W, R10, -8, R7), maps.increment(counts, fp(-8), 1, stack=-16),
               *tracepoint.ret(0)]
    c.attach_tp(stack, program, "raw_syscalls", "sys_enter", "exp_syscalls")
    return {"counts": counts}


def execs(stack: ExitStack) -> dict[str, Any]:
    counts = c.hash_map(stack, 16, 8, 4096)
    program = [*c.zero(R10, -16, 16), asm.mov(R1, R10), asm.add(R1, -16), asm.mov(asm.R2, 16),
               asm.call(Helper.GET_CURRENT_COMM),
               maps.increment(counts, fp(-16), 1, stack=-24), *tracepoint.ret(0)]
    c.attach_tp(stack, program, "sched", "sched_process_exec", "exp_execs")
    return {"counts": counts}


def runqlat(stack: ExitStack) -> dict[str, Any]:
    from .._maps import Map
    from .._types import MapType

    wake, switch = c.fmt("sched", "sched_wakeup"), c.fmt("sched", "sched_switch")
    start = c.hash_map(stack, 4, 8)
    hist = stack.enter_context(Map.create(MapType.ARRAY, key_size=4, value_size=8,
                                          max_entries=histogram.LOG2_SLOTS))

    def stamp(field: str, fmt: Any) -> list[asm.Item]:
        return [*tracepoint.field(R7, fmt, field, R6), asm.store(asm.W, R10, -8, R7),
                asm.call(Helper.KTIME_GET_NS), asm.store(asm.DW, R10, -16, R0),
                *maps.update(start, fp(-8), fp(-16))]

    for event in ("sched_wakeup", "sched_wakeup_new"):
        c.attach_tp(stack, [tracepoint.save_ctx(R6), *stamp("pid", wake), *tracepoint.ret(0)],
                    "sched", event, "exp_rq_wake")
    on_switch = [
        tracepoint.save_ctx(R6),
        *tracepoint.field(R7, switch, "prev_state", R6), asm.jne(R7, 0, "next"),
        *stamp("prev_pid", switch),
        asm.label("next"), *tracepoint.field(R7, switch, "next_pid", R6),
        asm.store(asm.W, R10, -8, R7), *maps.lookup(start, fp(-8), "out"),
        asm.load(asm.DW, R8, R0, 0), asm.call(Helper.KTIME_GET_NS), asm.sub(R0, R8),
        asm.div(R0, 1000), asm.mov(R8, R0),
        histogram.log2_increment(hist, R8, slot=R9, tmp=R1, key_stack=-20),
        *maps.delete(start, fp(-8)),
        asm.label("out"), *tracepoint.ret(0),
    ]
    c.attach_tp(stack, on_switch, "sched", "sched_switch", "exp_rq_switch")
    return {"hist": hist}


BUILTINS: dict[str, Callable[[ExitStack], dict[str, Any]]] = {
    "execs": execs, "runqlat": runqlat, "syscalls": syscalls,
}
