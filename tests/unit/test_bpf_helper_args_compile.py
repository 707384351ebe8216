"""Compile errors (and the argument code) of pointer arguments to ``bpf.helper.<name>`` and
of ``ctx.optval_load`` in cgroup sockopt programs: each error names the Python line."""

from __future__ import annotations

from pathlib import Path

import pytest

from ebpf import bpf
from ebpf.bpf._helper_args import size_pairs
from ebpf.bpf.types import u32, u64
from ebpf.testing.modules import import_source

HEADER = """\
from ebpf import bpf
from ebpf.bpf import i32, u32, u64

class R(bpf.Struct):
    n: u64
    name: bpf.bytes_[16]

m = bpf.Array(R, max_entries=4)
counts = bpf.Array(u64, max_entries=4)
"""

#: the statement under test is line 16 of the module
BODY = """
@bpf.raw_tracepoint("sys_enter")
def prog(ctx) -> int:
    r = R()
    p = m.lookup(0)
    a = bpf.array(u32, 4)
    {statement}
    return 0
"""

SOCKOPT = """
@bpf.cgroup_sockopt("setsockopt")
def prog(ctx) -> int:
    r = R()
    p = m.lookup(0)
    n = 1
    {statement}
    return 1
"""


def _error(tmp_path: Path, body: str, statement: str) -> str:
    mod = import_source(tmp_path, "bpf_helper_args_case",
                        HEADER + body.format(statement=statement))
    with pytest.raises(bpf.CompileError) as ei:
        mod.prog.compile()
    assert "bpf_helper_args_case.py:16:" in str(ei.value), str(ei.value)
    return str(ei.value)


@pytest.mark.parametrize(("statement", "message"), [
    ("bpf.helper.probe_read_kernel(ctx.arg1, ctx.arg0)",
     "the size of dst (size) is known only for a struct, a bytes_[N] field or a stack array"),
    ("bpf.helper.get_ns_current_pid_tgid(1, 2)",
     "bpf_get_ns_current_pid_tgid takes 4 argument(s) (dev, ino, nsdata, size), or 3 with "
     "the size of nsdata implied (dev, ino, nsdata), got 2"),
    ("bpf.helper.get_current_comm(p.name)", "p may be None here"),
    ("bpf.helper.get_current_comm(p)", "p may be None here"),
    ("bpf.helper.get_ns_current_pid_tgid(m, 2, r)", "argument dev is an integer"),
    ("bpf.helper.get_current_comm(r.nope)", "nope"),
    ("bpf.helper.map_lookup_elem(m, r)",
     "returns void *, which is neither an integer nor a struct pointer"),
])
def test_pointer_argument_errors(tmp_path: Path, statement: str, message: str) -> None:
    assert message in _error(tmp_path, BODY, statement)


@pytest.mark.parametrize(("statement", "message"), [
    ("x = ctx.optval_load()", "ctx.optval_load(T) takes one type"),
    ("x = ctx.optval_load(5)", "needs an integer type or a bpf.Struct class, not 5"),
    ("x = ctx.optval_load(n)", "needs an integer type or a bpf.Struct class, not n"),
    ("x = ctx.optval(u32)", "ctx.optval() is not supported (sockopt programs have "
                            "ctx.optval_load(T))"),
    ("ctx.optval_load(i32).value = 1", "may be None here"),
])
def test_optval_load_errors(tmp_path: Path, statement: str, message: str) -> None:
    assert message in _error(tmp_path, SOCKOPT, statement)


def test_optval_load_is_for_sockopt_programs(tmp_path: Path) -> None:
    body = BODY.replace('@bpf.raw_tracepoint("sys_enter")', "@bpf.xdp")
    assert "ctx.optval_load() is not supported" in _error(tmp_path, body,
                                                          "x = ctx.optval_load(u32)")


def test_implied_sizes_and_pointer_kinds_compile(tmp_path: Path) -> None:
    body = BODY.format(statement="""if p is not None:
        counts[0] = bpf.helper.get_current_comm(p.name)          # 16: the field
    counts[1] = bpf.helper.probe_read_kernel(r, ctx.arg0)       # 24: the struct
    counts[2] = bpf.helper.probe_read_kernel(a, 12, ctx.arg0)   # all arguments
    counts[3] = bpf.helper.probe_read_kernel(a, None)           # 16: the array""")
    mod = import_source(tmp_path, "bpf_helper_args_ok", HEADER + body)
    listing = mod.prog.asm()
    calls = [k for k, line in enumerate(listing.splitlines()) if "call bpf_" in line]
    assert sum("call bpf_get_current_comm" in ln for ln in listing.splitlines()) == 1
    assert sum("call bpf_probe_read_kernel" in ln for ln in listing.splitlines()) == 3
    assert calls
    for size in ("r2 = 0x10", "r2 = 0x18", "r2 = 0xc"):
        assert size in listing, listing


def test_size_pairs_follow_pointer_parameters() -> None:
    assert size_pairs([("dst", None), ("size", u32), ("unsafe_ptr", None)]) == [0]
    assert size_pairs([("ctx", None), ("buf", None), ("size", u32), ("flags", u64)]) == [1]
    assert size_pairs([("str", None), ("str_size", u32), ("fmt", None), ("data", None),
                       ("data_len", u32)]) == [0, 3]
    assert size_pairs([("skb", None), ("offset", u32), ("to", None), ("len", u32)]) == [2]
    assert size_pairs([("map", None), ("key", None), ("flags", u64)]) == []
