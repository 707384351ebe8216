"""Queue and stack maps in programs: ``q.push(v, overwrite=False)``, ``q.pop()`` and
``q.peek()`` of :class:`ebpf.bpf.Queue` / :class:`ebpf.bpf.Stack`
(``bpf_map_push_elem``/``_pop_elem``/``_peek_elem``, Linux 5.0).

``pop``/``peek`` copy the value into a stack slot of the function and give a pointer to it,
or None when the map is empty, so the program reads it as it reads a map value.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from .. import asm
from ..asm import R0, R1, R2, R3, R10
from ._decl import Queue
from .types import IntType, Struct, i64

if TYPE_CHECKING:
    from ._compiler import V, _FunctionCompiler

_BPF_EXIST = 2
_SIZE = {1: asm.B, 2: asm.H, 4: asm.W, 8: asm.DW}


def _err(node: ast.AST | None, msg: str) -> Exception:
    from ._compiler import _Err

    return _Err(node, msg)


def method(c: _FunctionCompiler, node: ast.Call, name: str, m: Queue, meth: str) -> V:
    """``name.push(v, overwrite=...)``, ``name.pop()`` or ``name.peek()``."""
    from ._compiler import Ptr, V, _cell

    kind = type(m).__name__.lower()
    if meth == "push":
        return _push(c, node, name, m, kind)
    if meth not in ("pop", "peek"):
        raise _err(node, f"{name} is a {kind}: it has push(v), pop() and peek(), not {meth}")
    if node.args or node.keywords:
        raise _err(node, f"{name}.{meth}() takes no arguments")
    st = m.value if isinstance(m.value, type) and issubclass(m.value, Struct) else \
        _cell(m.value)  # type: ignore[arg-type]
    slot = c.alloc(st.size + (-st.size % 8))
    c.emit(asm.load_map(R1, name), asm.mov(R2, R10), asm.add(R2, slot),
           asm.call(asm.Helper.MAP_POP_ELEM if meth == "pop" else asm.Helper.MAP_PEEK_ELEM))
    out = c.temp(node)
    empty = c.label("qempty")
    c.emit(asm.mov(out, 0), asm.jne(R0, 0, empty), asm.mov(out, R10), asm.add(out, slot))
    c.place(empty)
    return V(reg=out, ptr=Ptr(st, "stack"), nullable=True)


def _push(c: _FunctionCompiler, node: ast.Call, name: str, m: Queue, kind: str) -> V:
    from ._compiler import V, _host

    if len(node.args) != 1:
        raise _err(node, f"{name}.push(value, overwrite=False) takes one value")
    flags = 0
    for kw in node.keywords:
        if kw.arg != "overwrite" or not isinstance(kw.value, ast.Constant) or \
                not isinstance(kw.value.value, bool):
            raise _err(kw.value, f"{name}.push takes overwrite=True or overwrite=False "
                                 "(a literal)")
        flags = _BPF_EXIST if kw.value.value else 0
    a = node.args[0]
    if isinstance(m.value, type) and issubclass(m.value, Struct):
        r = c.struct_key(m.value, a, f"{name} holds")   # a record pointer, or Rec(...) in place
        c.emit(asm.mov(R2, r))
        c.release(r)
    else:
        vt = m.value
        assert isinstance(vt, type) and issubclass(vt, IntType)
        v = c.expr(a)
        if not v.is_int:
            c.release(v)
            raise _err(a, f"{name} holds {vt.__name__} values: push an integer")
        r = c.to_reg(v, _host(vt), a)
        if vt.big_endian:
            c.emit(asm.to_be(r, vt.size * 8))
        c.emit(asm.store(_SIZE[vt.size], R10, c.val_slot, r), asm.mov(R2, R10),
               asm.add(R2, c.val_slot))
        c.release(r)
    c.emit(asm.load_map(R1, name), asm.mov(R3, flags), asm.call(asm.Helper.MAP_PUSH_ELEM))
    out = c.temp(node)
    c.emit(asm.mov(out, R0))
    return V(ty=i64, reg=out)
