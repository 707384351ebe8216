"""``bpf.loop``: loops run by the ``bpf_loop`` helper (Linux 5.17), for trip counts the
verifier cannot walk.

``for i in bpf.loop(n):`` compiles the loop body as a callback subprogram
``long cb(u64 index, void *ctx)``; the enclosing function's integer locals that the body
uses travel through a block on the caller's stack (``ctx``): copied in before the call,
read and written by the callback through the pointer, copied back after it. ``continue``
returns 0 from the callback, ``break`` returns 1, and ``return x`` stores ``x`` and a flag
in the block, returns 1, and the caller returns ``x`` when the flag is set.

``bpf.loop(n, fn)`` calls a ``@bpf.func`` ``fn(i)`` as the callback directly and gives the
number of iterations run (``bpf_loop``'s result): ``fn`` returns 0 to go on, 1 to stop.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

from .. import asm
from ..asm import R0, R1, R2, R3, R4, R10, Register
from ..errors import AssemblerError
from ._compiler import Local, V, _Err, _FunctionCompiler
from ._decl import FuncDecl
from .types import IntType, i32, i64, u32, u64

__all__ = ["LoopBody", "compile_for", "loop"]

#: ``BPF_MAX_LOOPS``: bpf_loop refuses larger counts (``-E2BIG``, no iteration)
MAX_LOOPS = 1 << 23


class _Loop:
    """``bpf.loop(n)`` / ``bpf.loop(n, fn)`` (see the module docstring). From Python,
    ``loop(n)`` is ``range(n)`` and ``loop(n, fn)`` runs ``fn(0), fn(1)...`` until one
    returns nonzero, giving the number of calls made, as the helper does."""

    _bpf_kcall = True
    _bpf_loop = True

    def __repr__(self) -> str:
        return "<bpf loop (bpf_loop helper)>"

    def __call__(self, n: int, fn: Callable[[int], Any] | None = None) -> Any:
        if fn is None:
            return range(n)
        if not 0 <= n <= MAX_LOOPS:
            return -7  # -E2BIG
        for i in range(n):
            if fn(i):
                return i + 1
        return n

    def compile(self, c: _FunctionCompiler, node: ast.Call) -> V:
        """The expression form ``bpf.loop(n, fn)``."""
        if len(node.args) != 2 or node.keywords:
            raise _Err(node, "bpf.loop(n) is a `for i in bpf.loop(n):` loop; as an "
                             "expression, bpf.loop(n, fn) calls a @bpf.func fn(i)")
        fn = c.static(node.args[1]) if c.is_static(node.args[1]) else None
        if not isinstance(fn, FuncDecl):
            raise _Err(node.args[1], "bpf.loop(n, fn): fn must be a @bpf.func")
        callee = _FunctionCompiler(c.decl, fn)
        try:
            params, ret = callee.signature()
        except _Err as e:
            raise callee.error(e) from None
        if len(params) > 1 or ret is None or callee.ctx_param is not None:
            raise _Err(node.args[1], f"bpf.loop(n, {fn.name}): {fn.name} takes the index "
                                     "(i: u32) or nothing and returns 0 (go on) or 1 (stop)")
        r = _count(c, node.args[0])
        c.calls[fn] = None
        c.emit(asm.mov(R1, r), asm.load_func(R2, f"{fn.name}/entry"), asm.mov(R3, 0),
               asm.mov(R4, 0), asm.call(asm.Helper.LOOP))
        c.release(r)
        out = c.temp(node)
        c.emit(asm.mov(out, R0))
        # a count up to 2**23 or -E2BIG; the verifier's inlined bpf_loop sets only the low
        # 32 bits (mov32), so the result is typed i32 and sign-extended from them
        c.normalize(out, i32)
        return V(ty=i32, reg=out)


loop: Any = _Loop()


def _count(c: _FunctionCompiler, node: ast.expr) -> Register:
    n = c.static_int(node)
    if n is not None and not 0 <= n <= MAX_LOOPS:
        raise _Err(node, f"bpf.loop runs at most {MAX_LOOPS} iterations (BPF_MAX_LOOPS)")
    v = c.expr(node)
    if not v.is_int:
        raise _Err(node, "the trip count of bpf.loop is an integer")
    return c.to_reg(v, u32, node)


def _names(stmts: list[ast.stmt]) -> tuple[set[str], set[str], bool]:
    """Names used, names assigned, and whether a ``return`` appears, in ``stmts``."""
    used: set[str] = set()
    stored: set[str] = set()
    ret = False
    for s in stmts:
        for n in ast.walk(s):
            if isinstance(n, ast.Name):
                used.add(n.id)
                if isinstance(n.ctx, ast.Store):
                    stored.add(n.id)
            elif isinstance(n, ast.Return):
                ret = True
    return used, stored, ret


class LoopBody(_FunctionCompiler):
    """The body of ``for i in bpf.loop(n):`` compiled as a ``bpf_loop`` callback."""

    def __init__(self, parent: _FunctionCompiler, s: ast.For, name: str, var: str,
                 shared: dict[str, tuple[int, type[IntType]]], assigned: set[str],
                 local_names: set[str], has_return: bool) -> None:
        fake = FuncDecl(parent.fn)
        fake.name = name
        super().__init__(parent.decl, fake)
        self.parent = parent
        self.node = s
        self.var = var
        self.shared = shared  # name -> (offset in the block, type)
        self.assigned = assigned
        self.local_names = local_names
        self.has_return = has_return
        self.global_names = parent.global_names
        self.ctxp = 0
        if isinstance(parent, LoopBody):
            self.ret_t: type[IntType] | None = parent.ret_t
            self.ret_none: bool = parent.ret_none
        elif parent.sub is not None:
            self.ret_t, self.ret_none = parent.ret_type, parent.ret_type is None
        else:
            self.ret_t, self.ret_none = None, False

    def signature(self) -> tuple[list[tuple[str, type[IntType]]], type[IntType] | None]:
        return [("index", u64), ("ctx", u64)], i64

    def run(self) -> None:
        try:
            self.callback()
        except _Err as e:
            raise self.error(e) from None
        except AssemblerError as e:
            raise self.error(_Err(self.node, str(e))) from None

    def callback(self) -> None:
        s = self.node
        self.key_slot = self.alloc(8)
        self.val_slot = self.alloc(8)
        self.ctxp = self.alloc(8)
        self.scalar_slots.add(self.ctxp)
        for n in sorted(self.local_names | {self.var}):
            self.locals[n] = Local(self.alloc(8))
            self.scalar_slots.add(self.locals[n].slot)
        entry = f"{self.prefix}entry"
        self.place(entry)
        self.record(entry, s)
        idx = self.locals[self.var]
        idx.ty, idx.defined = u32, True
        self.emit(asm.store(asm.DW, R10, self.ctxp, R2), asm.store(asm.DW, R10, idx.slot, R1))
        for name, (off, t) in self.shared.items():
            loc = self.locals[name]
            r = self.temp(s)
            self.emit(asm.load(asm.DW, r, R10, self.ctxp), asm.load(asm.DW, r, r, off),
                      asm.store(asm.DW, R10, loc.slot, r))
            self.release(r)
            loc.ty, loc.defined = t, True
        cont, brk = self.label("next"), self.label("break")
        self.loops.append((cont, brk))
        self.block(s.body)
        self.loops.pop()
        self.place(cont)
        self.leave(0)
        self.place(brk)
        self.leave(1)

    def leave(self, verdict: int) -> None:
        """Write the shared locals the body assigns back to the block; return ``verdict``."""
        p: Register | None = None
        for name, (off, _t) in self.shared.items():
            if name not in self.assigned:
                continue
            if p is None:
                p = self.temp(self.node)
                self.emit(asm.load(asm.DW, p, R10, self.ctxp))
            r = self.temp(self.node)
            self.emit(asm.load(asm.DW, r, R10, self.locals[name].slot),
                      asm.store(asm.DW, p, off, r))
            self.release(r)
        self.release(p)
        self.emit(asm.mov(R0, verdict), asm.exit())

    def return_reg(self, r: Register) -> None:
        """``return`` (value in ``r``) from inside the body: flag and value to the block."""
        p = self.temp(self.node)
        self.emit(asm.load(asm.DW, p, R10, self.ctxp), asm.store(asm.DW, p, 8, r),
                  asm.store_imm(asm.DW, p, 0, 1))
        self.release(p)
        self.release(r)
        self.leave(1)

    def return_(self, s: ast.Return) -> None:
        if s.value is None:
            r = self.temp(s)
            self.emit(asm.mov(r, 0))
            self.return_reg(r)
            return
        if self.ret_none:
            raise _Err(s.value, "the enclosing function is annotated to return None")
        v = self.expr(s.value)
        if not v.is_int:
            raise _Err(s.value, "a program returns an integer")
        t = self.ret_t or v.ty or i64
        self.return_reg(self.to_reg(v, t, s.value))


def compile_for(c: _FunctionCompiler, s: ast.For) -> None:
    """``for i in bpf.loop(n): body`` in ``c``: the body as a callback, then the call."""
    it = s.iter
    assert isinstance(it, ast.Call)
    if s.orelse:
        raise _Err(s, "for ... else is not supported")
    if not isinstance(s.target, ast.Name):
        raise _Err(s.target, "the loop variable must be one name")
    if len(it.args) != 1 or it.keywords:
        raise _Err(it, "for i in bpf.loop(n): takes the trip count only")
    var = s.target.id
    used, stored, has_return = _names(s.body)
    if c.ctx_name and c.ctx_name in used:
        raise _Err(s, f"{c.ctx_name} cannot be used inside a bpf.loop body (a separate "
                      "function): read the ctx fields you need into locals before the loop")
    local_names = {n for n in used if n in c.locals and n != var}
    shared: dict[str, tuple[int, type[IntType]]] = {}
    base = 16 if has_return else 0
    for name in sorted(local_names):
        loc = c.locals[name]
        if not loc.defined:
            continue  # private to the body (each iteration assigns it before use)
        if loc.ty is None or loc.obj is not None or loc.ptr is not None or loc.kt is not None:
            raise _Err(s, f"{name}: only integer locals can be shared with a bpf.loop body "
                          "(pointers, stack structs and arrays cannot; use a map or bpf.var)")
        shared[name] = (base + 8 * len(shared), loc.ty)
    block = c.alloc(max(base + 8 * len(shared), 8))
    c._nloops = getattr(c, "_nloops", 0) + 1  # type: ignore[attr-defined]
    owner = c.sub.name if c.sub is not None else c.decl.name
    name = f"{owner}_loop{c._nloops}"  # type: ignore[attr-defined]
    body = LoopBody(c, s, name, var, shared, stored, local_names, has_return)
    body.run()
    c.callbacks.append(body)
    n = _count(c, it.args[0])
    for nm, (off, _t) in shared.items():
        r = c.temp(s)
        c.emit(asm.load(asm.DW, r, R10, c.locals[nm].slot), asm.store(asm.DW, R10, block + off, r))
        c.release(r)
    if has_return:
        c.emit(asm.store_imm(asm.DW, R10, block, 0))
    c.emit(asm.mov(R1, n), asm.load_func(R2, f"{name}/entry"), asm.mov(R3, R10),
           asm.add(R3, block), asm.mov(R4, 0), asm.call(asm.Helper.LOOP))
    c.release(n)
    for nm, (off, _t) in shared.items():
        if nm in stored:
            r = c.temp(s)
            c.emit(asm.load(asm.DW, r, R10, block + off),
                   asm.store(asm.DW, R10, c.locals[nm].slot, r))
            c.release(r)
    if has_return:
        r = c.temp(s)
        done = c.label("looped")
        c.emit(asm.load(asm.DW, r, R10, block), asm.jeq(r, 0, done),
               asm.load(asm.DW, r, R10, block + 8))
        if isinstance(c, LoopBody):
            c.return_reg(r)
        else:
            c.emit(asm.mov(R0, r), asm.exit())
            c.release(r)
        c.place(done)
