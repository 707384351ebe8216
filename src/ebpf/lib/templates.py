"""Program templates (clj-ebpf ``dsl.iter`` templates): whole programs for common jobs.

* :func:`task_iterator` - a ``bpf_iter/task`` program writing one fixed-size binary row
  per task (u32 fields of ``task_struct`` picked by name, offsets from kernel BTF) with
  ``bpf_seq_write``; :func:`task_rows` decodes what ``IterLink.read()`` returns.

Load with ``Program.load(ProgramType.TRACING, insns, expected_attach_type=TRACE_ITER,
attach_to="task")`` (5.8) and run with :func:`ebpf.link.iter.attach_iter`.

* :func:`aimd_congestion_control` - the callbacks of a ``tcp_congestion_ops`` struct_ops
  (5.6): slow start, then additive increase by ``increase`` segments per window and
  multiplicative decrease to ``cwnd >> decrease_shift`` on loss (clj-ebpf's AIMD template).
  Load each with :func:`ebpf.link.struct_ops.load_struct_ops_program` and register them
  with ``StructOps.create("tcp_congestion_ops", programs, fields={"name": ...})``.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from .. import asm
from ..asm import R0, R1, R2, R3, R4, R6, R7, R8, R10, Helper
from ..errors import AssemblerError

__all__ = ["aimd_congestion_control", "task_iterator", "task_rows"]


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


def _tcp_sock_u32(field: str) -> int:
    from .. import btf

    spec = btf.load_kernel()
    m = spec.find("tcp_sock", kind=btf.Struct).member(field)
    if spec.sizeof(m.type_id) != 4 or m.offset % 8:
        raise AssemblerError(f"tcp_sock.{field} is not a 4-byte field")
    return int(m.offset // 8)


def aimd_congestion_control(*, increase: int = 1, decrease_shift: int = 1,
                            min_cwnd: int = 2) -> dict[str, list[asm.Item]]:
    """``ssthresh``, ``cong_avoid`` and ``undo_cwnd`` of an AIMD congestion control
    (``tcp_sock`` offsets from kernel BTF)."""
    if not 1 <= increase <= 1024 or not 1 <= decrease_shift <= 8 or not 1 <= min_cwnd <= 1024:
        raise AssemblerError("aimd_congestion_control: increase 1..1024, decrease_shift "
                             "1..8, min_cwnd 1..1024")
    cwnd, cnt, ssth = (_tcp_sock_u32(f) for f in ("snd_cwnd", "snd_cwnd_cnt",
                                                     "snd_ssthresh"))
    return {
        "ssthresh": [  # max(cwnd >> shift, min)
            asm.load(asm.DW, R1, R1, 0), asm.load(asm.W, R0, R1, cwnd),
            asm.rsh(R0, decrease_shift), asm.jge(R0, min_cwnd, "ok"), asm.mov(R0, min_cwnd),
            asm.label("ok"), asm.exit()],
        "undo_cwnd": [asm.load(asm.DW, R1, R1, 0), asm.load(asm.W, R0, R1, cwnd), asm.exit()],
        "cong_avoid": [  # (sk, ack, acked)
            asm.load(asm.DW, R6, R1, 0), asm.load(asm.DW, R7, R1, 16), asm.mov32(R7, R7),
            asm.load(asm.W, R2, R6, cwnd), asm.load(asm.W, R3, R6, ssth),
            asm.jge(R2, R3, "avoid"),
            asm.add(R2, R7), asm.store(asm.W, R6, cwnd, R2), asm.ja("out"),   # slow start
            asm.label("avoid"),
            asm.load(asm.W, R4, R6, cnt), asm.add(R4, R7), asm.jlt(R4, R2, "keep"),
            asm.mov(R4, 0), asm.add(R2, increase), asm.store(asm.W, R6, cwnd, R2),
            asm.label("keep"), asm.store(asm.W, R6, cnt, R4),
            asm.label("out"), asm.mov(R0, 0), asm.exit()],
    }
