"""ebpf.bpf ``@bpf.func`` parameters that are the program's ctx, without a kernel: which
parameter is the context, how it is passed, and the compile errors with file:line:col."""

from __future__ import annotations

import textwrap
from pathlib import Path
from types import ModuleType

import pytest

from ebpf.testing.modules import import_source

HEADER = """\
from ebpf import bpf
from ebpf.bpf import u32, u64, i64

class Rec(bpf.Struct):
    x: u32

events = bpf.PerfEventArray()
progs = bpf.ProgArray(max_entries=2)
"""
LINES = HEADER.count("\n") + 1  # and the body's leading blank line


def module(tmp: Path, body: str, name: str = "bpf_subctx_case") -> ModuleType:
    return import_source(tmp, name, HEADER + textwrap.dedent(body))


@pytest.mark.parametrize(("body", "line", "col", "message"), [
    ("""
     @bpf.func
     def f(ctx, x: u32) -> u32:
         return x
     @bpf.xdp
     def prog(ctx: bpf.XDP) -> int:
         return f(7, 1)
     """, 6, 14, "argument ctx is the context: pass ctx"),
    ("""
     @bpf.func
     def f(c: bpf.XDP) -> u32:
         return 0
     @bpf.socket_filter
     def prog(skb) -> int:
         return f(skb)
     """, 2, 10, "bpf.XDP is not the context of prog"),
    ("""
     @bpf.func
     def f(ctx, c: bpf.XDP) -> u32:
         return 0
     @bpf.xdp
     def prog(ctx: bpf.XDP) -> int:
         return f(ctx, ctx)
     """, 2, 12, "takes the context once"),
    ("""
     @bpf.func
     def f(x: u32) -> u32:
         progs.tail_call(x, 1)
         return 0
     @bpf.xdp
     def prog(ctx: bpf.XDP) -> int:
         return f(1)
     """, 3, 5, "a ctx parameter"),
    ("""
     @bpf.func
     def f(x: u32) -> u32:
         return 0
     @bpf.xdp
     def prog(ctx: bpf.XDP) -> int:
         return f(ctx)
     """, 6, 14, "the context can only be used"),
    ("""
     @bpf.func
     def f(ctx) -> u32:
         ctx = 1
         return 0
     @bpf.xdp
     def prog(ctx: bpf.XDP) -> int:
         return f(ctx)
     """, 2, 1, "ctx is the context: it cannot be assigned"),
    ("""
     @bpf.func
     def cb(ctx) -> u32:
         return 1
     @bpf.xdp
     def prog(ctx: bpf.XDP) -> int:
         return bpf.loop(4, cb)
     """, 6, 24, "takes the index"),
])
def test_ctx_parameter_errors(tmp_path: Path, body: str, line: int, col: int,
                              message: str) -> None:
    from ebpf import bpf

    mod = module(tmp_path, body)
    with pytest.raises(bpf.CompileError) as ei:
        mod.prog.compile()
    e = ei.value
    assert message in e.message
    assert (e.line, e.col + 1) == (LINES + line, col), str(e)


def test_ctx_is_passed_in_its_register(tmp_path: Path) -> None:
    mod = module(tmp_path, """
     @bpf.func
     def send(x: u32, ctx) -> i64:
         r = Rec(x=x)
         progs.tail_call(ctx, x)
         return events.output(ctx, r)
     @bpf.xdp
     def prog(ctx: bpf.XDP) -> int:
         return send(ctx.rx_queue_index, ctx)
     """)
    listing = mod.prog.asm()
    sub = listing[listing.index("send:"):]
    assert "call bpf_tail_call" in sub and "call bpf_perf_event_output" in sub
    c = mod.prog.compile()
    assert [(name, params) for _pc, name, params, _ret in c.funcs[1:]] == [
        ("send", [("x", mod.u32), ("ctx", mod.u64)])]
