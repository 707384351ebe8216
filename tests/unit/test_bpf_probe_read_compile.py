"""Compile errors of ``bpf.probe_read_*``: each names the Python line."""

from __future__ import annotations

from pathlib import Path

import pytest

from ebpf import bpf
from ebpf.testing.modules import import_source

HEADER = """\
from ebpf import bpf
from ebpf.bpf import u32, u64

class R(bpf.Struct):
    n: u64
    name: bpf.bytes_[16]

rb = bpf.RingBuf(size=4096)
"""


#: one record filled by the statement under test (line 15 of the module)
BODY = """
@bpf.raw_tracepoint("sys_enter")
def prog(ctx) -> int:
    e = rb.reserve(R)
    if e is None:
        return 0
    {statement}
    rb.submit(e)
    return 0
"""


@pytest.mark.parametrize(("statement", "message"), [
    ("bpf.probe_read_user_str(e.n, ctx.arg1)", "fills a bytes_[N] field; n is not one"),
    ("bpf.probe_read_user_str(ctx.arg1)", "takes a bytes_[N] field to fill and an address"),
    ("e.name = bpf.probe_read_kernel_str(ctx.arg1, 3)", "takes one address"),
    ("e.name = bpf.probe_read_user(e)", "reads from an address"),
])
def test_probe_read_errors(tmp_path: Path, statement: str, message: str) -> None:
    mod = import_source(tmp_path, "bpf_probe_read_case",
                        HEADER + BODY.format(statement=statement))
    with pytest.raises(bpf.CompileError) as ei:
        mod.prog.compile()
    assert "bpf_probe_read_case.py:15:" in str(ei.value)
    assert message in str(ei.value)


def test_struct_map_update_needs_a_record_of_its_type(tmp_path: Path) -> None:
    body = """
class Other(bpf.Struct):
    n: u64

h = bpf.Hash(u32, R, max_entries=4)

@bpf.raw_tracepoint("sys_enter")
def prog(ctx) -> int:
    o = Other()
    h[1] = o
    h[2] = 5
    return 0
"""
    mod = import_source(tmp_path, "bpf_struct_update_case", HEADER + body)
    with pytest.raises(bpf.CompileError) as ei:
        mod.prog.compile()
    assert "bpf_struct_update_case.py:18:" in str(ei.value)
    assert "h holds R records: assign a R" in str(ei.value)
