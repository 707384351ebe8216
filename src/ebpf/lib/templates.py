"""Program templates (clj-ebpf ``dsl.iter`` templates): whole programs for common jobs.

* :func:`task_iterator` - a ``bpf_iter/task`` program writing one fixed-size binary row
  per task (u32 fields of ``task_struct`` picked by name, offsets from kernel BTF) with
  ``bpf_seq_write``; :func:`task_rows` decodes what ``IterLink.read()`` returns.

Load with ``Program.load(ProgramType.TRACING, insns, expected_attach_type=TRACE_ITER,
attach_to="task")`` (5.8) and run with :func:`ebpf.link.iter.attach_iter`.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from .. import asm
from ..asm import R0, R1, R2, R3, R6, R7, R8, R10, Helper
from ..errors import AssemblerError

__all__ = ["task_iterator", "task_rows"]


def _u32_offset(field: str) -> int:
    from .. import btf

    task = btf.load_kernel().find("task_struct", kind=btf.Struct)
    try:
        m = task.member(field)
    except (KeyError, LookupError):
        raise AssemblerError(f"task_struct has no member {field!r}") from None
    size = btf.load_kernel().sizeof(m.type_id)
    if size != 4 or m.offset % 8:
        raise AssemblerError(f"task_struct.{field} is not a 4-byte field ({size} bytes)")
    return int(m.offset // 8)


def task_iterator(fields: Sequence[str] = ("tgid", "pid")) -> list[asm.Item]:
    """Instructions of a task iterator writing ``len(fields)`` u32s per task."""
    if not 1 <= len(fields) <= 16:
        raise AssemblerError("task_iterator: 1 to 16 fields")
    offs = [_u32_offset(f) for f in fields]
    size = 4 * len(fields)
    base = -((size + 7) // 8 * 8)
    items: list[asm.Item] = [
        asm.load(asm.DW, R7, R1, 0),          # ctx->meta
        asm.load(asm.DW, R8, R1, 8),          # ctx->task, NULL after the last one
        asm.jeq(R8, 0, "out"),
    ]
    for i, off in enumerate(offs):
        items += [asm.load(asm.W, R6, R8, off), asm.store(asm.W, R10, base + 4 * i, R6)]
    items += [asm.load(asm.DW, R1, R7, 0),    # meta->seq
              asm.mov(R2, R10), asm.add(R2, base), asm.mov(R3, size),
              asm.call(Helper.SEQ_WRITE),
              asm.label("out"), asm.mov(R0, 0), asm.exit()]
    return items


def task_rows(data: bytes, nfields: int = 2) -> list[tuple[int, ...]]:
    """Rows of a :func:`task_iterator` output."""
    row = struct.Struct(f"={nfields}I")
    if len(data) % row.size:
        raise AssemblerError(f"task_rows: {len(data)} bytes is no multiple of {row.size}")
    return [row.unpack_from(data, o) for o in range(0, len(data), row.size)]
