"""ebpf.bpf ``seq_printf`` in iterator programs, on the kernel.

A task iterator prints one line per task with ``bpf.seq_printf`` (integers with widths and
flags, ``%x``, ``%c``, ``%%``, a kernel char array and a record's ``bytes_`` field as
``%s``), one from a ``@bpf.func`` that takes the ctx, and ``seq_write`` from a subprogram
too; the text read from the iterator is parsed and compared with ``/proc``. Formats the
kernel would refuse at run time are compile errors.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from ebpf import bpf
from ebpf.bpf import i64, u32
from ebpf.link.iter import attach_iter


class Row(bpf.Struct):
    pid: u32
    comm: bpf.bytes_[16]


@bpf.func
def tail_line(ctx: Any, pid: u32) -> i64:
    n = bpf.seq_printf(ctx, "|sub %u\n", pid)
    r = Row()
    r.pid = pid
    bpf.seq_write(ctx, r)            # binary, from a subprogram: 20 bytes after the line
    return n


@bpf.iter("task")
def lines(ctx: Any) -> int:
    t = ctx.task
    if t is None:
        return 0
    if t.pid != t.tgid:              # one line per process
        return 0
    r = Row()
    r.comm = t.comm
    bpf.seq_printf(ctx, "%d %5d %-3x|%c%%|%s|%s", t.tgid, t.real_parent.tgid, 10, 65,
                   t.comm, r.comm)
    tail_line(ctx, t.tgid)
    return 0


def test_task_lines_match_proc() -> None:
    with bpf.load(lines) as coll, attach_iter(coll.lines) as it:
        data = it.read()
    assert data
    pat = re.compile(rb"(\d+) ([ \d]{5,}) a  \|A%\|([^|]*)\|([^|]*)\|sub (\d+)\n")
    rows: dict[int, tuple[int, bytes]] = {}
    pos = 0
    while pos < len(data):
        m = pat.match(data, pos)
        assert m is not None, data[pos:pos + 80]
        pid = int(m.group(1))
        assert int(m.group(5)) == pid
        assert m.group(3) == m.group(4)           # kernel array and bytes_ field alike
        rows[pid] = (int(m.group(2)), m.group(3))
        rec = Row.decode(data[m.end():m.end() + Row.size])
        assert rec.pid == pid and rec.comm == b""
        pos = m.end() + Row.size
    me = os.getpid()
    assert rows[me] == (os.getppid(), Path(f"/proc/{me}/comm").read_bytes().strip())
    assert len(rows) > 3
    assert rows[2] == (0, b"kthreadd")            # the idle task (tgid 0) is its parent


@pytest.mark.parametrize(("call", "message"), [
    ('bpf.seq_printf(ctx, "%.2d", 1)', "is not a conversion the kernel"),
    ('bpf.seq_printf(ctx, "%pI4", 1)', "is not a conversion the kernel"),
    ('bpf.seq_printf(ctx, "%d %d", 1)', "takes 2 value"),
    ('bpf.seq_printf(ctx, "%s", 1)', "%s prints a bytes_ field"),
    ('bpf.seq_printf(ctx, "%d", t.comm)', "printed as an integer"),
    ('bpf.seq_printf(ctx, "' + "%d" * 13 + '", ' + ", ".join(["1"] * 13) + ")",
     "at most 12 values"),
    ("bpf.seq_printf(ctx, fmt)", "literal format string"),
])
def test_bad_formats_are_compile_errors(call: str, message: str, tmp_path: Path) -> None:
    from ebpf.testing.modules import import_source

    src = ("from typing import Any\nfrom ebpf import bpf\nfmt = '%d'\n"
           "@bpf.iter('task')\ndef bad(ctx: Any) -> int:\n    t = ctx.task\n"
           "    if t is None:\n        return 0\n    " + call + "\n    return 0\n")
    m = import_source(tmp_path, "bpf_seq_printf_bad", src)
    try:
        with pytest.raises(bpf.CompileError, match=re.escape(message)):
            m.bad.compile()
    finally:
        import sys

        sys.modules.pop(m.__name__, None)


def test_seq_printf_outside_iterators_is_a_compile_error() -> None:
    @bpf.perf_event
    def not_iter(ctx: Any) -> int:
        bpf.seq_printf(ctx, "x")
        return 0

    with pytest.raises(bpf.CompileError, match="seq_printf is for iterator programs"):
        not_iter.compile()
