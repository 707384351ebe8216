"""The compiler: a decorated Python function's ``ast`` -> ``ebpf.asm`` instructions.

Milestone 1 code generation (see docs/python-frontend.md): locals in 8-byte stack slots,
expressions in the callee-saved temporaries r6..r9 (they survive helper calls), helper
arguments moved to r1..r5 just before each ``call``. Typing happens while lowering, so every
error names the expression that caused it.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import linecache
import re
import textwrap
import types as _pytypes
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .. import asm
from .._types import ProgramType
from ..asm import R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10, Register
from ..asm.helpers import check_helper_allowed
from ..errors import AssemblerError, BPFError
from . import _regalloc
from ._decl import (
    Const,
    FuncDecl,
    Hash,
    LocalStorage,
    LPMTrie,
    MapDecl,
    PerCPUArray,
    PerCPUHash,
    PerfEventArray,
    ProgArray,
    ProgramDecl,
    Queue,
    RingBuf,
    Var,
    array,
)
from .types import IntType, Struct, _Bytes, i32, i64, int_type, u8, u32, u64

__all__ = ["CompileError", "CompiledProgram", "compile_program"]

_SIZE = {1: asm.B, 2: asm.H, 4: asm.W, 8: asm.DW}
_TEMPS = (R9, R8, R7, R6)


class CompileError(BPFError):
    """A construct outside the supported subset, or a type error, at ``filename:line:col``."""

    def __init__(self, message: str, filename: str = "<unknown>", line: int = 0,
                 col: int = 0) -> None:
        self.message = message
        self.filename = filename
        self.line = line
        self.col = col
        super().__init__(f"{filename}:{line}:{col + 1}: {message}")


class _Err(Exception):
    """Raised inside the compiler with the offending node; turned into CompileError."""

    def __init__(self, node: ast.AST | None, message: str) -> None:
        super().__init__(message)
        self.node = node
        self.message = message


# -- values ---------------------------------------------------------------------------------
@dataclass
class Ptr:
    """Type of a pointer to a struct in ``region`` (map, pkt, ringbuf, stack)."""

    struct: type[Struct]
    region: str


@dataclass
class V:
    """A value during code generation: an int of ``ty`` in ``reg``, an untyped literal
    ``lit``, a pointer (``ptr``, nullable or not), or ``None``."""

    ty: type[IntType] | None = None
    reg: Register | None = None
    lit: int | None = None
    ptr: Ptr | None = None
    nullable: bool = False
    none: bool = False
    kt: Any = None  # a kernel type (_kstruct.KType): a BTF struct pointer or a place in one

    @property
    def is_int(self) -> bool:
        return self.ty is not None or self.lit is not None


@dataclass
class Local:
    slot: int  # offset from r10 (negative)
    ty: type[IntType] | None = None
    ptr: Ptr | None = None
    nullable: bool = False
    defined: bool = False
    obj: int | None = None  # stack struct / array: its offset from r10
    elem: type[IntType] | None = None  # stack array element type
    count: int = 0  # stack array length
    kt: Any = None  # kernel struct pointer type (_kstruct.KType)


@dataclass
class LineRecord:
    label: str
    line: int  # absolute, in filename
    col: int
    filename: str


@dataclass
class CompiledProgram:
    """The output of compiling one program: instructions and what they refer to."""

    decl: ProgramDecl
    instructions: asm.Instructions
    maps: dict[str, MapDecl]
    consts: dict[str, Const[Any]]
    filename: str
    #: (pc, line, col, source text, file) at the first instruction of each statement
    lines: list[tuple[int, int, int, str, str]] = field(default_factory=list)
    structs: list[type[Struct]] = field(default_factory=list)  # for the BTF
    #: NUL-terminated string literals for ``.rodata`` (helper arguments), by global name
    strings: dict[str, bytes] = field(default_factory=dict)
    #: (pc, name, params, return type) of the program (pc 0) and of each subprogram
    funcs: list[tuple[int, str, list[tuple[str, type[IntType]]], type[IntType] | None]] = \
        field(default_factory=list)

    def listing(self) -> str:
        from ..asm.disasm import format_instruction

        by_pc: dict[int, list[str]] = {}
        for pc, line, _col, text, fname in self.lines:
            by_pc.setdefault(pc, []).append(f"; {fname}:{line}: {text.strip()}")
        for pc, name, *_ in self.funcs[1:]:
            by_pc.setdefault(pc, []).insert(0, f"{name}:")
        out: list[str] = []
        pc = 0
        for insn in self.instructions:
            out.extend(by_pc.get(pc, []))
            out.append(f"{pc:4}: {format_instruction(insn)}")
            pc += 2 if insn.opcode == 0x18 else 1
        return "\n".join(out)

    def line_of(self, pc: int) -> tuple[str, int, str] | None:
        """The Python (file, line number, text) of instruction ``pc``."""
        best: tuple[str, int, str] | None = None
        for start, line, _col, text, fname in self.lines:
            if start <= pc:
                best = (fname, line, text.strip())
            else:
                break
        return best


# -- program contexts -----------------------------------------------------------------------
def _ctx_fields(decl: ProgramDecl) -> dict[str, tuple[int, type[IntType]]]:
    """name -> (offset, type) of the ctx fields a program may read."""
    from .._uapi import _generated_types as _t

    if decl.ctx_layout is not None:  # tracing kinds (_tracing.py): BTF arguments, pt_regs
        return decl.ctx_layout()
    if decl.ctx_kind in ("xdp", "skb", "tc", "cgskb"):
        st: Any = _t.XdpMd if decl.ctx_kind == "xdp" else _t.SkBuff
        hidden = {"data", "data_end", "data_meta"}
        out: dict[str, tuple[int, type[IntType]]] = {}
        for name, ctype, *_ in st._fields_:
            if name.startswith("_") or name in hidden:
                continue
            import ctypes

            size = ctypes.sizeof(ctype)
            if size in (4, 8) and not issubclass(ctype, ctypes.Array):
                out[name] = (getattr(st, name).offset, int_type(size, False))
        return out
    if decl.ctx_kind == "rawtp":  # struct bpf_raw_tracepoint_args: u64 args[]
        return {f"arg{i}": (8 * i, u64) for i in range(12)}
    assert decl.tracepoint is not None
    from ..link.tracepoint import tracepoint_format

    fmt = tracepoint_format(*decl.tracepoint)
    tp: dict[str, tuple[int, type[IntType]]] = {}
    for f in fmt.event_fields if hasattr(fmt, "event_fields") else fmt.fields:
        if f.dynamic or f.is_array or f.size not in _SIZE:
            continue
        tp[f.name] = (f.offset, int_type(f.size, bool(f.signed)))
    return tp


# -- the compiler ---------------------------------------------------------------------------
_BINOPS: dict[type[ast.operator], str] = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.FloorDiv: "//", ast.Mod: "%",
    ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^", ast.LShift: "<<", ast.RShift: ">>",
}
_CMP: dict[type[ast.cmpop], str] = {
    ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
}
_NEG = {"==": "!=", "!=": "==", "<": ">=", ">=": "<", ">": "<=", "<=": ">"}
_SWAP = {"==": "==", "!=": "!=", "<": ">", ">": "<", "<=": ">=", ">=": "<="}


def _jump(op: str, signed: bool) -> Any:
    if op == "==":
        return asm.jeq
    if op == "!=":
        return asm.jne
    table = {"<": (asm.jlt, asm.jslt), "<=": (asm.jle, asm.jsle), ">": (asm.jgt, asm.jsgt),
             ">=": (asm.jge, asm.jsge)}
    return table[op][1 if signed else 0]


def common_type(a: type[IntType], b: type[IntType]) -> type[IntType]:
    """C's usual arithmetic conversions, without promotion of narrow types."""
    a, b = _host(a), _host(b)
    if a.signed == b.signed:
        return a if a.size >= b.size else b
    uns, sig = (a, b) if not a.signed else (b, a)
    if uns.size >= sig.size:
        return uns
    return sig


def _host(t: type[IntType]) -> type[IntType]:
    """The host-order type of a (possibly big-endian) field type."""
    return int_type(t.size, t.signed) if t.big_endian else t


def _fits_imm(v: int) -> bool:
    return -(1 << 31) <= v < (1 << 31)


class _FunctionCompiler:
    def __init__(self, decl: ProgramDecl, sub: FuncDecl | None = None) -> None:
        self.decl = decl  # the program (for subprograms: the one being compiled)
        self.sub = sub
        fn = decl.fn if sub is None else sub.fn
        self.fn = fn
        self.prefix = "" if sub is None else f"{sub.name}/"
        self.calls: dict[FuncDecl, None] = {}
        self.callbacks: list[_FunctionCompiler] = []  # bpf.loop bodies (_loop.py)
        try:
            self.filename = inspect.getsourcefile(fn) or fn.__code__.co_filename
            lines, first = inspect.getsourcelines(fn)
        except (OSError, TypeError) as e:
            raise CompileError(f"cannot read the source of {fn.__qualname__}: {e}",
                               fn.__code__.co_filename, fn.__code__.co_firstlineno) from None
        dedented = textwrap.dedent("".join(lines))
        first_line = lines[0] if lines else ""
        self.col_shift = len(first_line) - len(first_line.lstrip())
        self.line_shift = first - 1
        tree = ast.parse(dedented)
        fdef = tree.body[0]
        if not isinstance(fdef, (ast.FunctionDef, ast.AsyncFunctionDef)):
            raise CompileError("not a function", self.filename, first)
        if isinstance(fdef, ast.AsyncFunctionDef):
            raise CompileError("async functions cannot be compiled", self.filename, first)
        rewrite = getattr(decl, "rewrite_def", None) if sub is None else None
        if rewrite is not None:  # struct_ops methods: callback arguments as parameters
            fdef = rewrite(fdef)
        self.fdef: ast.FunctionDef = fdef
        self.globals: dict[str, Any] = dict(fn.__globals__)
        if fn.__closure__:
            for name, cell in zip(fn.__code__.co_freevars, fn.__closure__, strict=True):
                with contextlib.suppress(ValueError):  # an unbound cell
                    self.globals[name] = cell.cell_contents
        self.items: list[asm.Item] = []
        self.free: list[Register] = list(_TEMPS)
        self.locals: dict[str, Local] = {}
        self.stack = 0
        self.nlabel = 0
        self.loops: list[tuple[str, str]] = []
        self.lines: list[LineRecord] = []
        self.maps: dict[str, MapDecl] = {}
        self.consts: dict[str, Const[Any]] = {}
        self.strings: dict[str, bytes] = {}
        self.structs: dict[type[Struct], None] = {}
        self.ctx_name = ""
        self.global_names: dict[str, ast.Global] = {}
        self.ret_type: type[IntType] | None = i64
        self.ctx_slot = 0
        #: a subprogram's parameter that is the program's ctx (its index), see signature()
        self.ctx_param: int | None = None
        self.key_slot = 0
        self.val_slot = 0
        #: stack offsets of scalar locals, the saved ctx and loop bounds: each is only ever
        #: read and written whole at its offset (the register allocator's candidates)
        self.scalar_slots: set[int] = set()
        self._ctx_fields: dict[str, tuple[int, type[IntType]]] | None = None

    # -- errors / positions --------------------------------------------------------------
    def error(self, e: _Err) -> CompileError:
        node = e.node
        line = getattr(node, "lineno", self.fdef.lineno) + self.line_shift
        col = getattr(node, "col_offset", 0) + self.col_shift
        return CompileError(e.message, self.filename, line, col)

    def source_line(self, line: int) -> str:
        return linecache.getline(self.filename, line).rstrip("\n")

    # -- emission helpers ----------------------------------------------------------------
    def emit(self, *insns: asm.Item) -> None:
        self.items.extend(insns)

    def label(self, hint: str) -> str:
        self.nlabel += 1
        return f"{self.prefix}{hint}.{self.nlabel}"

    def place(self, name: str) -> None:
        self.items.append(asm.label(name))

    def alloc(self, size: int, align: int = 8) -> int:
        self.stack += size
        self.stack += -self.stack % align
        if self.stack > 512:
            raise _Err(None, f"the program needs {self.stack} bytes of stack; BPF allows 512")
        return -self.stack

    def temp(self, node: ast.AST | None) -> Register:
        if not self.free:
            raise _Err(node, "expression too complex for this compiler version (4 temporaries):"
                             " split it with local variables")
        return self.free.pop()

    def release(self, v: V | Register | None) -> None:
        r = v.reg if isinstance(v, V) else v
        if r is not None and r in _TEMPS and r not in self.free:
            self.free.append(r)

    def not_none(self, v: V, node: ast.expr) -> None:
        """Refuse ``v`` (releasing it) if it may be None: a pointer the program has not
        checked yet."""
        if v.nullable:
            self.release(v)
            raise _Err(node, f"{ast.unparse(node)} may be None here: check "
                             f"`if {ast.unparse(node)} is None:` first")

    # -- entry -----------------------------------------------------------------------------
    def run(self) -> None:
        """Compile the function into :attr:`items` (raises CompileError)."""
        try:
            if self.sub is None:
                self.program_body()
            else:
                self.func_body()
        except _Err as e:
            raise self.error(e) from None
        except AssemblerError as e:
            raise CompileError(str(e), self.filename, self.fdef.lineno + self.line_shift) \
                from None

    def record(self, label: str, node: ast.AST) -> None:
        self.lines.append(LineRecord(label, getattr(node, "lineno", 1) + self.line_shift,
                                     getattr(node, "col_offset", 0) + self.col_shift,
                                     self.filename))

    def prologue(self, nparams: int) -> ast.FunctionDef:
        f = self.fdef
        args = f.args
        if args.posonlyargs or args.vararg or args.kwonlyargs or args.kwarg or args.defaults:
            raise _Err(f, "only plain positional parameters are supported")
        if self.sub is None and len(args.args) != nparams:
            raise _Err(f, "a program takes exactly one parameter, ctx")
        self.key_slot = self.alloc(8)
        self.val_slot = self.alloc(8)
        names = _assigned_names(f)
        self.global_names = _global_names(f)
        for name, g in self.global_names.items():
            obj = self.globals.get(name)
            if not isinstance(obj, Var):
                raise _Err(g, f"global {name}: only a module-level bpf.var can be assigned "
                              "from a program")
            if name in {a.arg for a in args.args}:
                raise _Err(g, f"{name} is a parameter and global")
        names -= set(self.global_names)
        for name in sorted(names | {a.arg for a in args.args}):
            if name == self.ctx_name:
                if name in names:
                    raise _Err(f, f"{name} is the context: it cannot be assigned")
                continue
            self.locals[name] = Local(self.alloc(8))
            self.scalar_slots.add(self.locals[name].slot)
        first = f"{self.prefix}entry" if self.sub is not None else self.label("fn")
        self.place(first)
        self.record(first, f)
        return f

    def epilogue(self, body: list[ast.stmt]) -> None:
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            body = body[1:]  # docstring
        if not self.block(body):
            self.emit(asm.mov(R0, 0), asm.exit())

    def program_body(self) -> None:
        self.ctx_name = self.fdef.args.args[0].arg if self.fdef.args.args else ""
        self.ctx_slot = self.alloc(8)
        self.scalar_slots.add(self.ctx_slot)
        f = self.prologue(1)
        self.emit(asm.store(asm.DW, R10, self.ctx_slot, R1))
        self.epilogue(f.body)

    def signature(self) -> tuple[list[tuple[str, type[IntType]]], type[IntType] | None]:
        """Parameter and return types of a subprogram, from its annotations. The parameter
        that is the context (``ctx`` unannotated, or annotated ``bpf.XDP``...; see
        :meth:`is_ctx_param`) is listed as a ``u64`` and its index kept in
        :attr:`ctx_param`."""
        f = self.fdef
        params: list[tuple[str, type[IntType]]] = []
        self.ctx_param = None
        for k, a in enumerate(f.args.args):
            if self.is_ctx_param(a):
                if self.ctx_param is not None:
                    raise _Err(a, f"{a.arg}: a function takes the context once")
                self.ctx_param = k
                params.append((a.arg, u64))  # BTF: static, so the verifier keeps PTR_TO_CTX
                continue
            if a.annotation is None:
                raise _Err(a, f"parameter {a.arg} needs an integer type annotation (a: u32)")
            params.append((a.arg, self.type_of_annotation(a.annotation)))
        if len(params) > 5:
            raise _Err(f, "a BPF function takes at most 5 parameters")
        ret: type[IntType] | None = None
        if f.returns is not None and not (isinstance(f.returns, ast.Constant)
                                          and f.returns.value is None):
            ret = self.type_of_annotation(f.returns)
        return params, ret

    def is_ctx_param(self, a: ast.arg) -> bool:
        """Whether subprogram parameter ``a`` is the program's context: named ``ctx`` and
        unannotated or annotated ``typing.Any``, or annotated with a context class that
        fits the program being compiled (``bpf.XDP``, ``bpf.SocketFilter`` for
        socket/TC/cgroup skb programs, ``bpf.TracepointContext``). It is passed in a
        register as the caller has it, so the verifier still sees the ctx pointer and
        ``ctx.field``, ``ctx.load``, ``events.output(ctx, r)``, ``progs.tail_call(ctx, i)``
        and ``bpf.seq_write(ctx, r)`` work in the function."""
        from ._decl import XDP, SocketFilter, TracepointContext

        if a.annotation is None:
            return a.arg == "ctx"
        if not self.is_static(a.annotation):
            return False
        t = self.static(a.annotation)
        if t is Any:  # ``ctx: Any``, as typed code writes a kind without a context class
            return a.arg == "ctx"
        kinds = {XDP: ("xdp",), SocketFilter: ("skb", "tc", "cgskb")}
        if t is TracepointContext:
            ok = self.decl.tracepoint is not None
        elif t in kinds:
            ok = self.decl.ctx_kind in kinds[t]
        else:
            return False
        if not ok:
            raise _Err(a.annotation, f"{a.arg}: {ast.unparse(a.annotation)} is not the context "
                                     f"of {self.decl.name}, which calls {self.fn.__name__} "
                                     f"(annotate it as that program's, or leave ctx bare)")
        return True

    def func_body(self) -> None:
        params, ret = self.signature()
        self.ret_type = ret
        if self.ctx_param is not None:
            self.ctx_name = self.fdef.args.args[self.ctx_param].arg
            self.ctx_slot = self.alloc(8)
            self.scalar_slots.add(self.ctx_slot)
        f = self.prologue(len(params))
        for k, (name, t) in enumerate(params):
            if k == self.ctx_param:
                self.emit(asm.store(asm.DW, R10, self.ctx_slot, Register(k + 1)))
                continue
            loc = self.locals[name]
            loc.ty, loc.defined = t, True
            self.emit(asm.store(asm.DW, R10, loc.slot, Register(k + 1)))
        self.epilogue(f.body)

    # -- statements ----------------------------------------------------------------------
    def block(self, stmts: list[ast.stmt]) -> bool:
        """Compile ``stmts``; True if control never falls off the end."""
        # the rest of a block after a return/break/continue is unreachable: not compiled
        return any(self.stmt(s) for s in stmts)

    def stmt(self, s: ast.stmt) -> bool:
        lab = self.label("line")
        self.place(lab)
        self.record(lab, s)
        if isinstance(s, ast.Return):
            self.return_(s)
            return True
        if isinstance(s, ast.Pass):
            return False
        if isinstance(s, ast.Global):
            return False  # checked in the prologue
        if isinstance(s, ast.Expr):
            if isinstance(s.value, ast.Constant) and isinstance(s.value.value, str):
                return False
            v = self.expr(s.value, discard=True)
            self.release(v)
            return False
        if isinstance(s, ast.Assign):
            if len(s.targets) != 1:
                raise _Err(s, "chained assignment (a = b = ...) is not supported")
            self.assign(s.targets[0], s.value, None)
            return False
        if isinstance(s, ast.AnnAssign):
            if s.value is None:
                raise _Err(s, "a declaration needs a value: x: u32 = 0")
            t = self.type_of_annotation(s.annotation)
            self.assign(s.target, s.value, t)
            return False
        if isinstance(s, ast.AugAssign):
            self.augassign(s)
            return False
        if isinstance(s, ast.Delete):
            for target in s.targets:
                if not isinstance(target, ast.Subscript):
                    raise _Err(target, "del only removes map elements: del m[key]")
                self.map_delete(target)
            return False
        if isinstance(s, ast.If):
            return self.if_(s)
        if isinstance(s, ast.While):
            self.while_(s)
            return False
        if isinstance(s, ast.For):
            self.for_(s)
            return False
        if isinstance(s, ast.Break):
            if not self.loops:
                raise _Err(s, "break outside a loop")
            self.emit(asm.ja(self.loops[-1][1]))
            return True
        if isinstance(s, ast.Continue):
            if not self.loops:
                raise _Err(s, "continue outside a loop")
            self.emit(asm.ja(self.loops[-1][0]))
            return True
        raise _Err(s, f"{type(s).__name__} statements are not supported in BPF programs")

    def return_(self, s: ast.Return) -> None:
        if s.value is None:
            self.emit(asm.mov(R0, 0), asm.exit())
            return
        v = self.expr(s.value)
        if not v.is_int:
            raise _Err(s.value, "a program returns an integer")
        if self.sub is not None and self.ret_type is None:
            raise _Err(s.value, f"{self.sub.name} is annotated to return None")
        self.load_into(R0, v, s.value, self.ret_type if self.sub is not None else None)
        self.release(v)
        self.emit(asm.exit())

    def type_of_annotation(self, node: ast.expr) -> type[IntType]:
        t = self.static(node)
        if isinstance(t, type) and issubclass(t, IntType) and t is not IntType:
            return _host(t)
        if t is int:
            return i64
        if t is bool:
            return u8
        raise _Err(node, f"{ast.unparse(node)} is not an integer type (u8..u64, i8..i64)")

    # assignments
    def assign(self, target: ast.expr, value: ast.expr, decl: type[IntType] | None) -> None:
        if isinstance(target, ast.Name) and target.id in self.global_names:
            gv = self.globals[target.id]
            if decl is not None and _host(gv.type) is not decl:
                raise _Err(target, f"{target.id} is a {gv.type.__name__}")
            v = self.expr(value)
            if not v.is_int:
                raise _Err(value, f"{target.id} is an integer variable")
            r = self.to_reg(v, _host(gv.type), value)
            base = self.global_addr(gv, target)
            self.emit(asm.store(_SIZE[gv.type.size], base, 0, r))
            self.release(r)
            self.release(base)
        elif isinstance(target, ast.Name):
            self.assign_local(target, value, decl)
        elif isinstance(target, ast.Attribute):
            self.store_field(target, value)
        elif isinstance(target, ast.Subscript) and (aloc := self.stack_array(target)) is not None:
            if decl is not None:
                raise _Err(target, "an array element has its array's type")
            self.array_store(aloc, target, value)
        elif isinstance(target, ast.Subscript):
            self.map_update(target, value)
        else:
            raise _Err(target, f"cannot assign to {type(target).__name__} (one name, field or "
                               "map element at a time)")

    def assign_local(self, target: ast.Name, value: ast.expr, decl: type[IntType] | None
                     ) -> None:
        loc = self.locals[target.id]
        if isinstance(value, ast.Call) and self.is_static(value.func):
            fn = self.static(value.func)
            if fn is array or (isinstance(fn, type) and issubclass(fn, Struct)
                               and fn is not Struct):
                self.stack_object(target, loc, fn, value)
                return
        if loc.obj is not None:
            raise _Err(target, f"{target.id} is a stack {'array' if loc.elem else 'struct'}: "
                               "assign its elements or fields")
        v = self.expr(value)
        if v.none:
            raise _Err(value, "a local cannot be assigned None")
        if v.kt is not None or loc.kt is not None:
            from . import _kstruct

            _kstruct.check_assign(self, loc, v, target)
        if v.ptr is not None:
            if loc.ty is not None or decl is not None:
                raise _Err(value, f"{target.id} holds an integer; this is a pointer")
            if loc.ptr is not None and loc.ptr != v.ptr:
                raise _Err(value, f"{target.id} already points to a "
                                  f"{loc.ptr.struct.__name__} in {loc.ptr.region}")
            loc.ptr, loc.nullable, loc.defined = v.ptr, v.nullable, True
            assert v.reg is not None
            self.emit(asm.store(asm.DW, R10, loc.slot, v.reg))
            self.release(v)
            return
        if loc.ptr is not None:
            raise _Err(value, f"{target.id} holds a pointer; this is an integer")
        if decl is not None:
            if loc.ty is not None and loc.ty is not decl:
                raise _Err(target, f"{target.id} is already a {loc.ty.__name__}")
            loc.ty = decl
        elif loc.ty is None:
            loc.ty = v.ty if v.ty is not None else i64
        loc.defined = True
        r = self.to_reg(v, loc.ty, value)
        self.emit(asm.store(asm.DW, R10, loc.slot, r))
        self.release(r)

    def stack_object(self, target: ast.Name, loc: Local, fn: Any, call: ast.Call) -> None:
        """``x = T()`` / ``x = T(f=v, ...)`` (a zeroed stack struct) or ``x = bpf.array(t, n)``
        (a zeroed stack array). The storage is fixed per local; assigning again re-zeroes."""
        if fn is array:
            if len(call.args) != 2 or call.keywords:
                raise _Err(call, "bpf.array(type, n) takes an element type and a constant length")
            t = self.type_of_annotation(call.args[0])
            n = self.static_int(call.args[1])
            if n is None or n <= 0:
                raise _Err(call.args[1], "the length of a stack array is a positive constant")
            size, ptr, elem = t.size * n, None, t
        else:
            if call.args:
                raise _Err(call, f"{fn.__name__}(...) takes field values by keyword only")
            size, ptr, elem, n = fn.size, Ptr(fn, "stack"), None, 0
            self.structs[fn] = None
        if loc.defined and (loc.obj is None or loc.ptr != ptr or loc.elem is not elem
                            or loc.count != n):
            raise _Err(target, f"{target.id} already holds something else")
        if loc.obj is None:
            try:
                loc.obj = self.alloc(size, 8)
            except _Err as e:
                raise _Err(call, e.message) from None
            loc.ptr, loc.elem, loc.count, loc.defined = ptr, elem, n, True
        zero = self.temp(call)
        self.emit(asm.mov(zero, 0))
        off = 0
        total = size + (-size % 8)
        while off < total:
            w = 8 if total - off >= 8 else 4 if total - off >= 4 else 1
            self.emit(asm.store(_SIZE[w], R10, loc.obj + off, zero))
            off += w
        self.release(zero)
        for kw in call.keywords:
            if kw.arg is None:
                raise _Err(kw, "**kwargs is not supported")
            self.store_field(ast.Attribute(value=target, attr=kw.arg, ctx=ast.Store(),
                                           lineno=kw.value.lineno,
                                           col_offset=kw.value.col_offset), kw.value)

    def stack_array(self, node: ast.Subscript) -> Local | None:
        v = node.value
        if isinstance(v, ast.Name) and v.id in self.locals and \
                self.locals[v.id].elem is not None:
            return self.locals[v.id]
        return None

    def array_elem(self, loc: Local, index: ast.expr, miss: str) -> Register:
        """A register with the element's address; jumps to ``miss`` when out of range."""
        assert loc.elem is not None and loc.obj is not None
        c = self.static_int(index)
        r = self.temp(index)
        if c is not None:
            if not 0 <= c < loc.count:
                raise _Err(index, f"index {c} is out of range 0..{loc.count - 1}")
            self.emit(asm.mov(r, R10), asm.add(r, loc.obj + c * loc.elem.size))
            return r
        v = self.expr(index)
        if not v.is_int:
            raise _Err(index, "an array index is an integer")
        assert v.ty is not None
        ir = self.to_reg(v, u64 if not v.ty.signed else i64, index)
        # unsigned compare: a negative index is huge, so one check covers both ends
        self.emit(asm.jge(ir, loc.count, miss))
        if loc.elem.size > 1:
            self.emit(asm.lsh(ir, loc.elem.size.bit_length() - 1))
        self.emit(asm.mov(r, R10), asm.add(r, loc.obj), asm.add(r, ir))
        self.release(ir)
        return r

    def array_read(self, loc: Local, node: ast.Subscript) -> V:
        assert loc.elem is not None
        miss, done = self.label("oob"), self.label("elem")
        checked = self.static_int(node.slice) is None
        r = self.array_elem(loc, node.slice, miss)
        self.emit(asm.load(_SIZE[loc.elem.size], r, r, 0))
        self.normalize_loaded(r, loc.elem)
        if not checked:
            return V(ty=loc.elem, reg=r)
        self.emit(asm.ja(done))
        self.place(miss)
        self.emit(asm.mov(r, 0))
        self.place(done)
        return V(ty=loc.elem, reg=r)

    def array_store(self, loc: Local, target: ast.Subscript, value: ast.expr,
                    op: str | None = None, node: ast.AST | None = None) -> None:
        assert loc.elem is not None
        t = loc.elem
        v = self.expr(value)
        if not v.is_int:
            raise _Err(value, "array elements are integers")
        if v.reg is not None:
            # keep the value in its register while the index is computed
            v = V(ty=v.ty, reg=self.to_reg(v, t if op is None else (v.ty or t), value))
        miss = self.label("oob")
        addr = self.array_elem(loc, target.slice, miss)
        if op is not None:
            cur = V(ty=t, reg=self.temp(node))
            assert cur.reg is not None
            self.emit(asm.load(_SIZE[t.size], cur.reg, addr, 0))
            self.normalize_loaded(cur.reg, t)
            v = self.binop(op, cur, v, node or target)
        r = self.to_reg(v, t, value)
        self.emit(asm.store(_SIZE[t.size], addr, 0, r))
        self.release(r)
        self.release(addr)
        self.place(miss)

    def augassign(self, s: ast.AugAssign) -> None:
        op = _BINOPS.get(type(s.op))
        if op is None:
            raise _Err(s, f"operator {type(s.op).__name__} is not supported")
        t = s.target
        if isinstance(t, ast.Name) and t.id in self.global_names:
            gv = self.globals[t.id]
            ft = _host(gv.type)
            right = self.expr(s.value)
            gaddr = self.global_addr(gv, t)
            if gv.type.size in (4, 8) and op in "+-|&^":
                self.atomic(op, gaddr, 0, gv.type.size, right, ft, s)
            else:
                cur = V(ty=ft, reg=self.temp(s))
                assert cur.reg is not None
                self.emit(asm.load(_SIZE[gv.type.size], cur.reg, gaddr, 0))
                self.normalize_loaded(cur.reg, ft)
                res = self.binop(op, cur, right, s)
                r = self.to_reg(res, ft, s)
                self.emit(asm.store(_SIZE[gv.type.size], gaddr, 0, r))
                self.release(r)
            self.release(gaddr)
        elif isinstance(t, ast.Name):
            loc = self.local(t)
            if not loc.defined and isinstance(self.globals.get(t.id), Var):
                raise _Err(t, f"{t.id} is a bpf.var: declare `global {t.id}` to assign it")
            if loc.ty is None:
                raise _Err(t, f"{t.id} is not an integer")
            left = self.read_local(t, loc)
            right = self.expr(s.value)
            res = self.binop(op, left, right, s)
            r = self.to_reg(res, loc.ty, s)
            self.emit(asm.store(asm.DW, R10, loc.slot, r))
            self.release(r)
        elif isinstance(t, ast.Subscript) and (aloc := self.stack_array(t)) is not None:
            self.array_store(aloc, t, s.value, op, s)
        elif isinstance(t, ast.Subscript):
            self.map_aug(t, op, s.value, s)
        elif isinstance(t, ast.Attribute):
            base = self.expr(t.value, allow_nullable=True)
            if base.kt is not None:  # a kernel struct field (struct_ops programs)
                from . import _struct_ops

                _struct_ops.store_member(self, base, t, s.value, op, s)
                return
            base, fld = self.field_ref(t, base)
            assert base.reg is not None
            ft = _host(fld.type)
            right = self.expr(s.value)
            atomic = base.ptr is not None and base.ptr.region == "map" and \
                fld.size in (4, 8) and not fld.type.big_endian and op in "+-|&^"
            if atomic:
                self.atomic(op, base.reg, fld.offset, fld.size, right, ft, s)
            else:
                cur = V(ty=ft, reg=self.temp(s))
                self.load_field(cur.reg, base.reg, fld)  # type: ignore[arg-type]
                res = self.binop(op, cur, right, s)
                r = self.to_reg(res, ft, s)
                self.store_reg(base.reg, fld, r)
                self.release(r)
            self.release(base)
        else:
            raise _Err(t, "cannot update this target")

    def atomic(self, op: str, ptr: Register, off: int, size: int, right: V,
               t: type[IntType], node: ast.AST) -> None:
        r = self.to_reg(right, t, node)
        if op == "-":
            self.emit(asm.neg(r))
            op = "+"
        fn = {"+": asm.atomic_add, "|": asm.atomic_or, "&": asm.atomic_and,
              "^": asm.atomic_xor}[op]
        self.emit(fn(_SIZE[size], ptr, r, off))
        self.release(r)

    # control flow
    def if_(self, s: ast.If) -> bool:
        else_l, end_l = self.label("else"), self.label("endif")
        when_true, when_false = self.narrowing(s.test)
        saved = self.snapshot()
        self.branch(s.test, else_l, False)
        self.apply(when_true)
        body_ends = self.block(s.body)
        after_body = self.snapshot()
        self.restore(saved)
        self.apply(when_false)
        if s.orelse and not body_ends:
            self.emit(asm.ja(end_l))
        self.place(else_l)
        else_ends = self.block(s.orelse) if s.orelse else False
        after_else = self.snapshot()
        self.place(end_l)
        # merge: a pointer is non-null after the if when every path reaching here says so
        if body_ends and not else_ends:
            self.restore(after_else)
        elif else_ends and not body_ends:
            self.restore(after_body)
        else:
            self.restore(_merge(after_body, after_else))
        return body_ends and else_ends

    def narrowing(self, test: ast.expr) -> tuple[dict[str, bool], dict[str, bool]]:
        """What ``test`` being true / false tells about pointer locals: name -> nullable."""
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            t, f = self.narrowing(test.operand)
            return f, t
        if isinstance(test, ast.BoolOp):
            parts = [self.narrowing(v) for v in test.values]
            if isinstance(test.op, ast.And):
                return {k: v for t, _ in parts for k, v in t.items()}, {}
            return {}, {k: v for _, f in parts for k, v in f.items()}
        name: str | None = None
        null_when_true = False
        if isinstance(test, ast.Name):
            name = test.id
        elif isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(
                test.left, ast.Name) and isinstance(test.comparators[0], ast.Constant) and \
                test.comparators[0].value is None and isinstance(test.ops[0], (ast.Is,
                                                                                ast.IsNot)):
            name = test.left.id
            null_when_true = isinstance(test.ops[0], ast.Is)
        if name is None or name not in self.locals or self.locals[name].ptr is None:
            return {}, {}
        return {name: null_when_true}, {name: not null_when_true}

    def apply(self, facts: dict[str, bool]) -> None:
        for name, nullable in facts.items():
            self.locals[name].nullable = nullable

    def snapshot(self) -> dict[str, tuple[bool, bool]]:
        return {n: (loc.nullable, loc.defined) for n, loc in self.locals.items()}

    def restore(self, snap: dict[str, tuple[bool, bool]]) -> None:
        for n, (nullable, defined) in snap.items():
            self.locals[n].nullable = nullable
            self.locals[n].defined = defined

    def while_(self, s: ast.While) -> None:
        if s.orelse:
            raise _Err(s, "while ... else is not supported")
        top, end = self.label("while"), self.label("endwhile")
        self.place(top)
        self.branch(s.test, end, False)
        self.loops.append((top, end))
        saved = self.snapshot()
        if not self.block(s.body):
            self.emit(asm.ja(top))
        self.loops.pop()
        self.restore(_merge(saved, self.snapshot()))
        self.place(end)

    def for_(self, s: ast.For) -> None:
        if s.orelse:
            raise _Err(s, "for ... else is not supported")
        if not isinstance(s.target, ast.Name):
            raise _Err(s.target, "the loop variable must be one name")
        it = s.iter
        if isinstance(it, ast.Call) and self.is_static(it.func) and \
                getattr(self.static(it.func), "_bpf_loop", False):
            from . import _loop

            _loop.compile_for(self, s)
            return
        if not (isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and
                it.func.id == "range" and not it.keywords and 1 <= len(it.args) <= 3):
            raise _Err(it, "only `for i in range(...)` loops are supported")
        a: ast.expr = ast.Constant(0)
        step = 1
        if len(it.args) == 1:
            b = it.args[0]
        else:
            a, b = it.args[0], it.args[1]
        if len(it.args) == 3:
            st = self.static_int(it.args[2])
            if st is None or st == 0:
                raise _Err(it.args[2], "the step of range() must be a nonzero constant")
            step = st
        loc = self.local(s.target)
        # type of the loop variable
        av, bv = self.static_int(a), self.static_int(b)
        if loc.ty is None:
            if av is not None and bv is not None:
                lo, hi = min(av, bv), max(av, bv)
                loc.ty = u32 if lo >= 0 and hi <= 0xFFFF_FFFF else i64
            else:
                ta = self.peek_type(a) or self.peek_type(b) or i64
                tb = self.peek_type(b) or ta
                loc.ty = common_type(ta, tb)
        ty = loc.ty
        assert ty is not None
        start = self.expr(a)
        r = self.to_reg(start, ty, a)
        self.emit(asm.store(asm.DW, R10, loc.slot, r))
        self.release(r)
        loc.defined = True
        # the bound is evaluated once, into a hidden slot unless it is a constant
        bound_slot = None
        if bv is None:
            bound_slot = self.alloc(8)
            self.scalar_slots.add(bound_slot)
            bvv = self.expr(b)
            br = self.to_reg(bvv, ty, b)
            self.emit(asm.store(asm.DW, R10, bound_slot, br))
            self.release(br)
        top, cont, end = self.label("for"), self.label("next"), self.label("endfor")
        self.place(top)
        i = self.temp(s)
        self.emit(asm.load(asm.DW, i, R10, loc.slot))
        cmp_op = ">=" if step > 0 else "<="  # exit condition
        if bound_slot is None:
            assert bv is not None
            self.cmp_jump(cmp_op, V(ty=ty, reg=i), V(lit=bv), end, s)
        else:
            bt = self.temp(s)
            self.emit(asm.load(asm.DW, bt, R10, bound_slot))
            self.cmp_jump(cmp_op, V(ty=ty, reg=i), V(ty=ty, reg=bt), end, s)
            self.release(bt)
        self.release(i)
        self.loops.append((cont, end))
        saved = self.snapshot()
        self.block(s.body)
        self.loops.pop()
        self.restore(_merge(saved, self.snapshot()))
        self.place(cont)
        i = self.temp(s)
        self.emit(asm.load(asm.DW, i, R10, loc.slot))
        res = self.binop("+", V(ty=ty, reg=i), V(lit=step), s)
        rr = self.to_reg(res, ty, s)
        self.emit(asm.store(asm.DW, R10, loc.slot, rr), asm.ja(top))
        self.release(rr)
        self.place(end)

    # -- conditions ----------------------------------------------------------------------
    def branch(self, node: ast.expr, target: str, when: bool) -> None:
        """Jump to ``target`` if the truth of ``node`` is ``when``; else fall through."""
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            self.branch(node.operand, target, not when)
            return
        if isinstance(node, ast.BoolOp):
            is_and = isinstance(node.op, ast.And)
            vals = node.values
            if is_and != when:  # and/False or or/True: any operand decides
                saved = self.snapshot()
                for operand in vals:
                    self.branch(operand, target, when)
                    # the next operand runs only if this one did not decide
                    self.apply(self.narrowing(operand)[0 if is_and else 1])
                self.restore(saved)
                return
            saved = self.snapshot()
            skip = self.label("sc")
            for operand in vals[:-1]:
                self.branch(operand, skip, not when)
                self.apply(self.narrowing(operand)[0 if is_and else 1])
            self.branch(vals[-1], target, when)
            self.restore(saved)
            self.place(skip)
            return
        if isinstance(node, ast.Compare):
            self.compare_branch(node, target, when)
            return
        c = self.static_int(node)
        if c is not None:
            if bool(c) == when:
                self.emit(asm.ja(target))
            return
        v = self.expr(node)
        if v.none:
            if not when:
                self.emit(asm.ja(target))
            return
        if v.lit is not None:
            if bool(v.lit) == when:
                self.emit(asm.ja(target))
            return
        assert v.reg is not None
        self.emit((asm.jne if when else asm.jeq)(v.reg, 0, target))
        self.release(v)

    def compare_branch(self, node: ast.Compare, target: str, when: bool) -> None:
        ops = node.ops
        if any(isinstance(o, (ast.Is, ast.IsNot)) for o in ops):
            if len(ops) != 1 or not (isinstance(node.comparators[0], ast.Constant)
                                     and node.comparators[0].value is None):
                raise _Err(node, "`is` / `is not` only compare with None")
            v = self.expr(node.left, allow_nullable=True)
            if v.ptr is None and (v.kt is None or v.kt.place):
                raise _Err(node.left, "only pointers can be None")
            is_null = isinstance(ops[0], ast.Is)
            assert v.reg is not None
            self.emit((asm.jeq if is_null == when else asm.jne)(v.reg, 0, target))
            self.release(v)
            return
        if len(ops) == 1 and isinstance(ops[0], (ast.In, ast.NotIn)):
            self.membership_branch(node, target, when != isinstance(ops[0], ast.NotIn))
            return
        if len(ops) == 1:
            op = self.cmp_name(ops[0], node)
            left = self.expr(node.left)
            right = self.expr(node.comparators[0])
            self.cmp_jump(op if when else _NEG[op], left, right, target, node)
            return
        # chained: a < b < c  ==  a < b and b < c, b evaluated once
        fail = target if not when else self.label("chain")
        left = self.expr(node.left)
        for k, (o, comp) in enumerate(zip(ops, node.comparators, strict=True)):
            op = self.cmp_name(o, node)
            right = self.expr(comp)
            last = k == len(ops) - 1
            if right.reg is not None and not last:
                keep = self.temp(comp)
                self.emit(asm.mov(keep, right.reg))
                nxt = V(ty=right.ty, reg=keep)
            else:
                nxt = right
            if last and when:
                self.cmp_jump(op, left, right, target, node)
            else:
                self.cmp_jump(_NEG[op], left, right, fail, node, release_right=last)
            left = nxt
        if when:
            self.place(fail)

    def membership_branch(self, node: ast.Compare, target: str, when: bool) -> None:
        """``x in (a, b, ...)`` of constant integers: ``x`` evaluated once, then one compare
        per element (jump to ``target`` if membership is ``when``)."""
        seq = node.comparators[0]
        items: list[int] | None = None
        if isinstance(seq, (ast.Tuple, ast.List, ast.Set)):
            got = [self.static_int(e) for e in seq.elts]
            items = [g for g in got if g is not None] if None not in got else None
        elif self.is_static(seq):
            obj = self.static(seq)
            if isinstance(obj, (tuple, list, set, frozenset, range)) and \
                    all(isinstance(e, int) and not isinstance(e, bool) for e in obj):
                items = sorted(obj) if isinstance(obj, (set, frozenset)) else list(obj)
        if items is None or not items or len(items) > 64:
            raise _Err(seq, "`x in ...` takes a tuple, list or set of 1 to 64 constant "
                            "integers (or a module-level one)")
        left = self.expr(node.left)
        if left.lit is not None:
            if (left.lit in items) == when:
                self.emit(asm.ja(target))
            return
        if not left.is_int:
            self.release(left)
            raise _Err(node.left, "only integers can be compared (pointers: `is None`)")
        assert left.ty is not None
        t = left.ty
        keep = self.to_reg(left, t, node.left)
        miss = target if not when else self.label("notin")
        hit = target if when else self.label("isin")
        for item in items:
            c = self.lit_for(item, t, seq)
            if _fits_imm(c):
                self.emit(asm.jeq(keep, c, hit))
            else:
                tr = self.temp(node)
                self.emit(asm.load_imm64(tr, c), asm.jeq(keep, tr, hit))
                self.release(tr)
        self.release(keep)
        if not when:
            self.emit(asm.ja(miss))
            self.place(hit)
        else:
            self.place(miss)

    def cmp_name(self, o: ast.cmpop, node: ast.AST) -> str:
        op = _CMP.get(type(o))
        if op is None:
            raise _Err(node, f"comparison {type(o).__name__} is not supported")
        return op

    def cmp_jump(self, op: str, left: V, right: V, target: str, node: ast.AST, *,
                 release_right: bool = True) -> None:
        if not left.is_int or not right.is_int:
            raise _Err(node, "only integers can be compared (pointers: `is None`)")
        if left.lit is not None and right.lit is not None:
            res = {"==": left.lit == right.lit, "!=": left.lit != right.lit,
                   "<": left.lit < right.lit, "<=": left.lit <= right.lit,
                   ">": left.lit > right.lit, ">=": left.lit >= right.lit}[op]
            if res:
                self.emit(asm.ja(target))
            return
        if left.lit is not None:
            left, right, op = right, left, _SWAP[op]
        assert left.ty is not None
        t = left.ty if right.ty is None else common_type(left.ty, right.ty)
        lr = self.to_reg(left, t, node)
        if right.lit is not None:
            c = self.lit_for(right.lit, t, node)
            if _fits_imm(c):
                self.emit(_jump(op, t.signed)(lr, c, target))
            else:
                tr = self.temp(node)
                self.emit(asm.load_imm64(tr, c), _jump(op, t.signed)(lr, tr, target))
                self.release(tr)
        else:
            rr = self.to_reg(right, t, node)
            self.emit(_jump(op, t.signed)(lr, rr, target))
            if release_right:
                self.release(rr)
        self.release(lr)

    # -- expressions ---------------------------------------------------------------------
    def expr(self, node: ast.expr, *, discard: bool = False, allow_nullable: bool = False
             ) -> V:
        # a nullable pointer may be copied and compared; dereferences check nullability
        return self._expr(node, discard)

    def _expr(self, node: ast.expr, discard: bool) -> V:
        c = self.static_int(node)
        if c is not None:
            return V(lit=c)
        if isinstance(node, ast.Constant):
            if node.value is None:
                return V(none=True)
            raise _Err(node, f"{type(node.value).__name__} constants are not supported "
                             "(integers only)")
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.BinOp):
            op = _BINOPS.get(type(node.op))
            if op is None:
                what = "/ (use //: there are no floats)" if isinstance(node.op, ast.Div) \
                    else type(node.op).__name__
                raise _Err(node, f"operator {what} is not supported")
            left = self.expr(node.left)
            right = self.expr(node.right)
            return self.binop(op, left, right, node)
        if isinstance(node, ast.UnaryOp):
            return self.unary(node)
        if isinstance(node, (ast.Compare, ast.BoolOp)):
            return self.bool_value(node)
        if isinstance(node, ast.IfExp):
            return self.ifexp(node)
        if isinstance(node, ast.Attribute):
            return self.attribute(node)
        if isinstance(node, ast.Subscript):
            aloc = self.stack_array(node)
            if aloc is not None:
                return self.array_read(aloc, node)
            if not self.is_static(node.value):  # a kernel array (task.comm[0]) or an error
                from . import _kstruct

                return _kstruct.subscript(self, node)
            return self.map_read(node)
        if isinstance(node, ast.Call):
            return self.call(node, discard)
        raise _Err(node, f"{type(node).__name__} expressions are not supported in BPF programs")

    def bool_value(self, node: ast.expr) -> V:
        r = self.temp(node)
        false_l, end = self.label("false"), self.label("endbool")
        self.free.append(r)  # usable while evaluating the condition
        self.branch(node, false_l, False)
        if r in self.free:
            self.free.remove(r)
        else:
            raise _Err(node, "expression too complex: split it with local variables")
        self.emit(asm.mov(r, 1), asm.ja(end))
        self.place(false_l)
        self.emit(asm.mov(r, 0))
        self.place(end)
        return V(ty=u8, reg=r)

    def ifexp(self, node: ast.IfExp) -> V:
        r = self.temp(node)
        else_l, end = self.label("ifx"), self.label("endifx")
        self.free.append(r)
        self.branch(node.test, else_l, False)
        self.free.remove(r)
        a = self.expr(node.body)
        b_node = node.orelse
        ta = a.ty
        tb = self.peek_type(b_node)
        if ta is None and tb is None:
            t: type[IntType] = i64
        elif ta is None:
            assert tb is not None
            t = tb
        elif tb is None:
            t = ta
        else:
            t = common_type(ta, tb)
        self.load_into(r, a, node.body, t)
        self.release(a)
        self.emit(asm.ja(end))
        self.place(else_l)
        b = self.expr(b_node)
        self.load_into(r, b, b_node, t)
        self.release(b)
        self.place(end)
        return V(ty=t, reg=r)

    def unary(self, node: ast.UnaryOp) -> V:
        if isinstance(node.op, ast.Not):
            return self.bool_value(node)
        v = self.expr(node.operand)
        if not v.is_int:
            raise _Err(node, "unary operators apply to integers")
        if isinstance(node.op, ast.UAdd):
            return v
        assert v.ty is not None
        r = self.to_reg(v, v.ty, node)
        if isinstance(node.op, ast.USub):
            self.emit(asm.neg(r))
        elif isinstance(node.op, ast.Invert):
            self.emit(asm.xor(r, -1))
        else:
            raise _Err(node, "unsupported unary operator")
        self.normalize(r, v.ty)
        return V(ty=v.ty, reg=r)

    def binop(self, op: str, left: V, right: V, node: ast.AST) -> V:
        if not left.is_int or not right.is_int:
            raise _Err(node, f"operator {op} applies to integers")
        if left.lit is not None and right.lit is not None:
            return V(lit=_fold(op, left.lit, right.lit, node))
        t: type[IntType]
        if left.ty is None:
            assert right.ty is not None
            t = right.ty
        elif right.ty is None:
            t = left.ty
        else:
            t = common_type(left.ty, right.ty)
        if op in ("<<", ">>"):
            t = _host(left.ty) if left.ty is not None else t  # shifts keep the left type
        bits = t.size * 8
        commutative = op in ("+", "*", "&", "|", "^")
        if left.lit is not None and commutative:
            left, right = right, left
        dst = self.to_reg(left, t, node)
        if right.lit is not None:
            c = right.lit
            if op in ("<<", ">>"):
                if not 0 <= c < bits:
                    raise _Err(node, f"shift by {c} is out of range for {t.__name__} "
                                     f"(0..{bits - 1})")
            else:
                c = self.lit_for(c, t, node)
            if op in ("//", "%") and c == 0:
                if op == "//":
                    self.emit(asm.mov(dst, 0))
                return V(ty=t, reg=dst)
            if _fits_imm(c):
                self.alu(op, dst, c, t)
            else:
                tr = self.temp(node)
                self.emit(asm.load_imm64(tr, c))
                self.alu(op, dst, tr, t)
                self.release(tr)
        else:
            src = self.to_reg(right, t if op not in ("<<", ">>") else _host(right.ty or t), node)
            if op in ("<<", ">>"):
                self.emit(asm.and_(src, bits - 1))
            self.alu(op, dst, src, t)
            self.release(src)
        # bitwise ops and right shifts of canonical operands stay canonical, and so do
        # unsigned quotients and every remainder; the rest may leave the type's width
        if not (op in ("&", "|", "^", ">>", "%") or (op == "//" and not t.signed)):
            self.normalize(dst, t)
        return V(ty=t, reg=dst)

    def alu(self, op: str, dst: Register, src: Register | int, t: type[IntType]) -> None:
        s = t.signed
        if op == "+":
            self.emit(asm.add(dst, src))
        elif op == "-":
            self.emit(asm.sub(dst, src))
        elif op == "*":
            self.emit(asm.mul(dst, src))
        elif op in ("//", "%") and s:
            self.signed_divmod(op, dst, src)
        elif op == "//":
            self.emit(asm.div(dst, src))
        elif op == "%":
            self.emit(asm.mod(dst, src))
        elif op == "&":
            self.emit(asm.and_(dst, src))
        elif op == "|":
            self.emit(asm.or_(dst, src))
        elif op == "^":
            self.emit(asm.xor(dst, src))
        elif op == "<<":
            self.emit(asm.lsh(dst, src))
        elif op == ">>":
            self.emit(asm.arsh(dst, src) if s else asm.rsh(dst, src))
        else:  # pragma: no cover
            raise AssertionError(op)

    def signed_divmod(self, op: str, dst: Register, src: Register | int) -> None:
        """``dst = dst s/ src`` or ``dst s% src`` (64-bit, truncating toward zero, the BPF
        ISA's results for a zero divisor and for ``INT64_MIN / -1``) without ISA v4's
        ``sdiv``/``smod`` (6.6): unsigned ``div``/``mod`` on the magnitudes, one path per
        sign combination. A register divisor is negated and restored in place; ``neg`` of
        INT64_MIN is INT64_MIN, which as unsigned is its magnitude, so every case holds."""
        div = asm.div if op == "//" else asm.mod
        end, neg_a = self.label("sdiv_end"), self.label("sdiv_neg_a")
        if not isinstance(src, Register):   # (a Register is an int too)
            if src > 0:
                self.emit(asm.jslt(dst, 0, neg_a), div(dst, src), asm.ja(end))
                self.place(neg_a)
                self.emit(asm.neg(dst), div(dst, src), asm.neg(dst))
                self.place(end)
                return
            tr = self.temp(None)
            self.emit(asm.mov(tr, src) if -(1 << 31) <= src < 1 << 31
                      else asm.load_imm64(tr, src))
            self.signed_divmod(op, dst, tr)
            self.release(tr)
            return
        # quotient negative iff the signs differ; remainder takes the dividend's sign
        pos_neg, neg_neg = self.label("sdiv_pos_neg"), self.label("sdiv_neg_neg")
        flip_q = op == "//"
        self.emit(asm.jslt(dst, 0, neg_a), asm.jslt(src, 0, pos_neg),
                  div(dst, src), asm.ja(end))
        self.place(pos_neg)
        self.emit(asm.neg(src), div(dst, src), asm.neg(src))
        if flip_q:
            self.emit(asm.neg(dst))
        self.emit(asm.ja(end))
        self.place(neg_a)
        self.emit(asm.neg(dst), asm.jslt(src, 0, neg_neg), div(dst, src), asm.neg(dst),
                  asm.ja(end))
        self.place(neg_neg)
        self.emit(asm.neg(src), div(dst, src), asm.neg(src))
        if not flip_q:
            self.emit(asm.neg(dst))
        self.place(end)

    def normalize(self, r: Register, t: type[IntType]) -> None:
        """Re-establish the canonical 64-bit form of a ``t`` in ``r``."""
        if t.size == 8:
            return
        if not t.signed:
            if t.size == 4:
                self.emit(asm.mov32(r, r))
            else:
                self.emit(asm.and_(r, (1 << (t.size * 8)) - 1))
        else:
            sh = 64 - t.size * 8
            self.emit(asm.lsh(r, sh), asm.arsh(r, sh))

    def convert(self, r: Register, src: type[IntType], dst: type[IntType]) -> None:
        """Convert the canonical ``src`` value in ``r`` to ``dst`` (C conversion)."""
        src, dst = _host(src), _host(dst)
        if dst.size == 8:
            return
        if src.signed == dst.signed and src.size <= dst.size:
            return
        if not src.signed and src.size < dst.size:
            return
        self.normalize(r, dst)

    def lit_for(self, c: int, t: type[IntType], node: ast.AST) -> int:
        """The register value of literal ``c`` used as a ``t``; it must fit (negative
        literals with an unsigned type wrap, so -1 is the all-ones value)."""
        t = _host(t)
        lo = t.min() if t.signed else -(1 << (t.size * 8 - 1))
        if not lo <= c <= t.max():
            raise _Err(node, f"{c} does not fit in {t.__name__}")
        return t.wrap(c)

    def to_reg(self, v: V, t: type[IntType], node: ast.AST) -> Register:
        """``v`` as a ``t`` in a temporary (takes ownership of ``v``'s register)."""
        if not v.is_int:
            raise _Err(node, "expected an integer")
        if v.lit is not None:
            r = self.temp(node)
            self.emit_const(r, t.wrap(v.lit) if _lit_ok(v.lit, t) else self.lit_for(v.lit, t,
                                                                                     node))
            return r
        assert v.reg is not None and v.ty is not None
        self.convert(v.reg, v.ty, t)
        return v.reg

    def load_into(self, dst: Register, v: V, node: ast.AST, t: type[IntType] | None = None
                  ) -> None:
        if not v.is_int:
            raise _Err(node, "expected an integer")
        if v.lit is not None:
            self.emit_const(dst, v.lit if t is None else self.lit_for(v.lit, t, node))
            return
        assert v.reg is not None and v.ty is not None
        if t is not None:
            self.convert(v.reg, v.ty, t)
        if v.reg != dst:
            self.emit(asm.mov(dst, v.reg))

    def emit_const(self, r: Register, c: int) -> None:
        if _fits_imm(c):
            self.emit(asm.mov(r, c))
        else:
            self.emit(asm.load_imm64(r, c & ((1 << 64) - 1)))

    # names, attributes, statics
    def local(self, node: ast.Name) -> Local:
        loc = self.locals.get(node.id)
        if loc is None:
            raise _Err(node, f"{node.id} is not a local variable")
        return loc

    def read_local(self, node: ast.Name, loc: Local) -> V:
        if not loc.defined:
            raise _Err(node, f"{node.id} may be used before it is assigned")
        r = self.temp(node)
        if loc.obj is not None:
            if loc.elem is not None:
                raise _Err(node, f"{node.id} is a stack array: use {node.id}[i]")
            self.emit(asm.mov(r, R10), asm.add(r, loc.obj))
            return V(reg=r, ptr=loc.ptr)
        self.emit(asm.load(asm.DW, r, R10, loc.slot))
        if loc.ptr is not None:
            return V(reg=r, ptr=loc.ptr, nullable=loc.nullable)
        return V(ty=loc.ty, reg=r, kt=loc.kt)

    def name(self, node: ast.Name) -> V:
        if node.id in self.locals:
            return self.read_local(node, self.locals[node.id])
        if node.id == self.ctx_name:
            raise _Err(node, "the context can only be used as ctx.field or ctx.load(...)")
        obj = self.global_(node)
        return self.static_value(obj, node)

    def static_value(self, obj: Any, node: ast.AST) -> V:
        if isinstance(obj, Const):
            return self.const_read(obj, node)
        if isinstance(obj, MapDecl):
            raise _Err(node, "a map is used as m[key], m.lookup(key), m.reserve(T)...")
        raise _Err(node, f"{ast.unparse(node)} ({type(obj).__name__}) cannot be used in a "
                         "BPF program")

    def global_(self, node: ast.Name) -> Any:
        if node.id in self.globals:
            return self.globals[node.id]
        import builtins

        if hasattr(builtins, node.id):
            return getattr(builtins, node.id)
        raise _Err(node, f"name {node.id!r} is not defined")

    def static(self, node: ast.expr) -> Any:
        """Evaluate a name or attribute chain of module-level objects (not locals)."""
        if isinstance(node, ast.Name):
            if node.id in self.locals or node.id == self.ctx_name:
                raise _Err(node, f"{node.id} is not a compile-time name")
            return self.global_(node)
        if isinstance(node, ast.Attribute):
            base = self.static(node.value)
            try:
                return getattr(base, node.attr)
            except AttributeError:
                raise _Err(node, f"{ast.unparse(node.value)} has no attribute "
                                 f"{node.attr!r}") from None
        if isinstance(node, ast.Subscript):
            base = self.static(node.value)
            idx = self.static_int(node.slice)
            if idx is None:
                raise _Err(node, "expected a constant subscript")
            return base[idx]
        raise _Err(node, f"{ast.unparse(node)} is not a compile-time name")

    def is_static(self, node: ast.expr) -> bool:
        root = node
        while isinstance(root, (ast.Attribute, ast.Subscript)):
            root = root.value
        return isinstance(root, ast.Name) and root.id not in self.locals and \
            root.id != self.ctx_name

    def static_int(self, node: ast.expr) -> int | None:
        """The value of a constant integer expression (literals, module-level ints), or
        None."""
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool):
                return int(node.value)
            if isinstance(node.value, int):
                return node.value
            return None
        if isinstance(node, (ast.Name, ast.Attribute)) and self.is_static(node):
            try:
                obj = self.static(node)
            except _Err:
                if isinstance(node, ast.Name):
                    raise
                return None
            if isinstance(obj, int) and not isinstance(obj, IntType):
                return int(obj)
            if isinstance(obj, IntType):
                return int(obj)
            return None
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.Invert,
                                                                  ast.UAdd)):
            v = self.static_int(node.operand)
            if v is None:
                return None
            return -v if isinstance(node.op, ast.USub) else ~v if isinstance(
                node.op, ast.Invert) else v
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            a, b = self.static_int(node.left), self.static_int(node.right)
            if a is None or b is None:
                return None
            return _fold(_BINOPS[type(node.op)], a, b, node)
        return None

    def peek_type(self, node: ast.expr) -> type[IntType] | None:
        """The type of a simple expression without emitting code (None: literal/unknown)."""
        if isinstance(node, ast.Name) and node.id in self.locals:
            return self.locals[node.id].ty
        return None

    def attribute(self, node: ast.Attribute) -> V:
        if isinstance(node.value, ast.Name) and node.value.id == self.ctx_name:
            return self.ctx_field(node)
        if self.is_static(node):
            obj = self.static(node)
            return self.static_value(obj, node)
        base = self.expr(node.value, allow_nullable=True)
        if base.kt is not None:  # kernel struct fields (_kstruct.py)
            from . import _kstruct

            return _kstruct.member(self, base, node)
        base, fld = self.field_ref(node, base)
        assert base.reg is not None
        if isinstance(fld.type, _Bytes):
            raise _Err(node, f"{fld.name} is a byte array: it can only be assigned from "
                             "bpf.get_current_comm() for now")
        r = base.reg
        if isinstance(fld.type, type) and issubclass(fld.type, Struct):
            # a nested record: a pointer into the same region (a key, or a base for fields)
            assert base.ptr is not None
            if fld.offset:
                self.emit(asm.add(r, fld.offset))
            return V(reg=r, ptr=Ptr(fld.type, base.ptr.region))
        self.load_field(r, r, fld)
        return V(ty=_host(fld.type), reg=r)

    def field_ref(self, node: ast.Attribute, base: V | None = None) -> tuple[V, Any]:
        if base is None:
            base = self.expr(node.value, allow_nullable=True)
        if base.ptr is None:
            raise _Err(node, f"{ast.unparse(node.value)} is not a struct pointer")
        self.not_none(base, node.value)
        try:
            fld = base.ptr.struct.field(node.attr)
        except BPFError as e:
            self.release(base)
            raise _Err(node, str(e)) from None
        return base, fld

    def load_field(self, dst: Register, base: Register, fld: Any) -> None:
        t = fld.type
        self.emit(asm.load(_SIZE[t.size], dst, base, fld.offset))
        if t.big_endian:
            self.emit(asm.to_be(dst, t.size * 8))
        elif t.signed and t.size < 8:
            sh = 64 - t.size * 8
            self.emit(asm.lsh(dst, sh), asm.arsh(dst, sh))

    def store_reg(self, base: Register, fld: Any, r: Register) -> None:
        t = fld.type
        if t.big_endian:
            self.emit(asm.to_be(r, t.size * 8))
        self.emit(asm.store(_SIZE[t.size], base, fld.offset, r))

    def copy_record(self, dst: Register, off: int, src: Register, st: type[Struct]) -> None:
        """``*(dst + off) = *src`` for a ``st`` record, in units of its alignment (the
        verifier wants aligned stack accesses; a record's offsets are multiples of it)."""
        unit = min(st.align, 8)
        t = self.temp(None)
        for i in range(0, st.size, unit):
            self.emit(asm.load(_SIZE[unit], t, src, i), asm.store(_SIZE[unit], dst, off + i, t))
        self.release(t)

    def store_field(self, target: ast.Attribute, value: ast.expr) -> None:
        if isinstance(target.value, ast.Name) and target.value.id == self.ctx_name:
            if self.decl.ctx_access is not None and target.attr in self.ctx_fields():
                self.decl.ctx_access.write(self, target, value)  # _kinds.py
                return
            raise _Err(target, "context fields are read-only here")
        base = self.expr(target.value, allow_nullable=True)
        if base.kt is not None:  # a kernel struct field (struct_ops programs)
            from . import _struct_ops

            _struct_ops.store_member(self, base, target, value)
            return
        base, fld = self.field_ref(target, base)
        assert base.reg is not None
        if isinstance(fld.type, _Bytes):
            fn = self.static(value.func) if isinstance(value, ast.Call) and \
                self.is_static(value.func) else None
            if isinstance(fn, _HelperFn) and fn.name in _READ_HELPERS:
                assert isinstance(value, ast.Call)
                if len(value.args) != 1 or value.keywords:
                    raise _Err(value, "record.field = bpf.probe_read_*(address) takes one "
                                      "address (or call it as bpf.probe_read_*(record.field, "
                                      "address) for the result)")
                self.probe_read(value, fn.name, base, fld, value.args[0])
                return
            into = getattr(self.decl.ctx_access, "bytes_into", None)
            if into is not None and into(self, base, fld, value):  # ctx bytes (_kinds.py)
                return
            if not (isinstance(value, ast.Call) and self.is_static(value.func) and
                    self.static(value.func) is _helper_marker("get_current_comm")):
                from . import _kstruct  # a kernel byte array (task.comm), or an error

                _kstruct.store_bytes(self, base, fld, value)
                return
            if value.args or value.keywords:
                raise _Err(value, "get_current_comm() takes no arguments")
            self.emit(asm.mov(R1, base.reg), asm.add(R1, fld.offset), asm.mov(R2, fld.size),
                      asm.call(asm.Helper.GET_CURRENT_COMM))
            self.release(base)
            return
        if isinstance(fld.type, type) and issubclass(fld.type, Struct):
            src = self.struct_key(fld.type, value, f"{fld.name} holds")
            self.copy_record(base.reg, fld.offset, src, fld.type)
            self.release(src)
            self.release(base)
            return
        v = self.expr(value)
        if not v.is_int:
            raise _Err(value, f"{fld.name} is an integer field")
        r = self.to_reg(v, _host(fld.type), value)
        self.store_reg(base.reg, fld, r)
        self.release(r)
        self.release(base)

    # ctx
    def ctx_fields(self) -> dict[str, tuple[int, type[IntType]]]:
        if self._ctx_fields is None:
            try:
                self._ctx_fields = _ctx_fields(self.decl)
            except (OSError, BPFError, LookupError) as e:
                raise _Err(None, f"cannot read the context layout of {self.decl.section}: {e}"
                           ) from None
        return self._ctx_fields

    def ctx_field(self, node: ast.Attribute) -> V:
        fields = self.ctx_fields()
        if node.attr not in fields:
            raise _Err(node, f"the {self.decl.section} context has no readable field "
                             f"{node.attr!r} (fields: {', '.join(sorted(fields))})")
        if self.decl.ctx_access is not None:  # uprobe, perf_event, iter, cgroup socks
            return self.decl.ctx_access.read(self, node)  # type: ignore[no-any-return]
        off, t = fields[node.attr]
        r = self.temp(node)
        self.emit(asm.load(asm.DW, r, R10, self.ctx_slot))
        if t.signed and t.size < 8 and self.decl.ctx_kind in ("tp", "btf"):
            self.emit(asm.load(_SIZE[t.size], r, r, off))
            sh = 64 - t.size * 8
            self.emit(asm.lsh(r, sh), asm.arsh(r, sh))
        else:
            self.emit(asm.load(_SIZE[t.size], r, r, off))
        if self.decl.ctx_kind in ("btf", "ptregs"):  # struct pointer arguments (_kstruct.py)
            from . import _kstruct

            return V(ty=t, reg=r, kt=_kstruct.ctx_arg(self.decl, off))
        return V(ty=t, reg=r)

    def ctx_load(self, node: ast.Call) -> V:
        if not node.args or len(node.args) > 2 or (node.keywords and (
                len(node.keywords) != 1 or node.keywords[0].arg != "offset")):
            raise _Err(node, "ctx.load(T, offset=0) takes a bpf.Struct and an offset")
        st = self.static(node.args[0])
        if not (isinstance(st, type) and issubclass(st, Struct) and st is not Struct):
            raise _Err(node.args[0], "ctx.load needs a bpf.Struct class")
        off_node: ast.expr | None = node.args[1] if len(node.args) == 2 else (
            node.keywords[0].value if node.keywords else None)
        off_v = self.expr(off_node) if off_node is not None else V(lit=0)
        if not off_v.is_int:
            raise _Err(off_node, "the offset is an integer")
        if off_v.lit is not None and not 0 <= off_v.lit < 0xFFFF:
            raise _Err(off_node, "the offset must be in 0..65534")
        if self.decl.ctx_kind == "xdp":
            return self.xdp_load(st, off_v, node)
        if self.decl.ctx_kind in ("tc", "cgskb"):  # __sk_buff data / data_end
            return self.xdp_load(st, off_v, node, 76, 80)
        if self.decl.ctx_kind == "skb":
            return self.skb_load(st, off_v, node)
        raise _Err(node, "ctx.load is for packet programs (XDP, socket filters)")

    def xdp_load(self, st: type[Struct], off: V, node: ast.AST, data: int = 0,
                 data_end: int = 4, width: int = 4) -> V:
        """Direct packet access with the bounds check (XDP; TC and cgroup skb through
        ``__sk_buff.data``/``data_end``; ``width``-byte pointer fields at those offsets,
        8 for ``bpf_sockopt.optval``/``optval_end``)."""
        self.structs[st] = None
        end = self.temp(node)
        q = self.temp(node)
        self.emit(asm.load(asm.DW, end, R10, self.ctx_slot),
                  asm.load(_SIZE[width], q, end, data),
                  asm.load(_SIZE[width], end, end, data_end))
        if off.lit is not None:
            if off.lit:
                self.emit(asm.add(q, off.lit))
        else:
            assert off.ty is not None
            o = self.to_reg(off, u64, node)
            self.emit(asm.and_(o, 0xFFFF), asm.add(q, o))
            self.release(o)
        lim = self.temp(node)
        null, done = self.label("short"), self.label("loaded")
        self.emit(asm.mov(lim, q), asm.add(lim, st.size), asm.jgt(lim, end, null),
                  asm.ja(done))
        self.place(null)
        self.emit(asm.mov(q, 0))
        self.place(done)
        self.release(lim)
        self.release(end)
        return V(reg=q, ptr=Ptr(st, "pkt"), nullable=True)

    def skb_load(self, st: type[Struct], off: V, node: ast.AST) -> V:
        self.structs[st] = None
        buf = self.alloc(st.size)
        if off.lit is not None:
            self.emit(asm.mov(R2, off.lit))
        else:
            o = self.to_reg(off, u32, node)
            self.emit(asm.mov(R2, o))
            self.release(o)
        self.emit(asm.load(asm.DW, R1, R10, self.ctx_slot), asm.mov(R3, R10),
                  asm.add(R3, buf), asm.mov(R4, st.size),
                  asm.call(asm.Helper.SKB_LOAD_BYTES))
        r = self.temp(node)
        null, done = self.label("short"), self.label("loaded")
        self.emit(asm.jne(R0, 0, null), asm.mov(r, R10), asm.add(r, buf), asm.ja(done))
        self.place(null)
        self.emit(asm.mov(r, 0))
        self.place(done)
        return V(reg=r, ptr=Ptr(st, "stack"), nullable=True)

    # globals
    def name_of(self, obj: Any, node: ast.AST) -> str:
        for k, v in self.globals.items():
            if v is obj and not k.startswith("__"):
                return k
        raise _Err(node, "maps and constants must be module-level (or closure) variables")

    def string_addr(self, text: str | bytes, node: ast.AST) -> Register:
        """A register pointing at a NUL-terminated copy of literal ``text`` in ``.rodata``
        (frozen and read-only to programs: what a ``const char *`` helper argument such as
        ``bpf_snprintf``'s format or ``bpf_strncmp``'s second string must point to)."""
        import hashlib

        data = (text.encode() if isinstance(text, str) else bytes(text))
        if b"\0" in data:
            raise _Err(node, "a string literal passed to a helper cannot contain NUL bytes")
        data += b"\0"
        name = ".str." + hashlib.sha1(data).hexdigest()[:16]   # equal strings share one copy
        self.strings[name] = data
        r = self.temp(node)
        self.emit(asm.load_map_value(r, f"global:{name}", 0))
        return r

    def global_addr(self, c: Const[Any], node: ast.AST) -> Register:
        """A register pointing at global ``c`` (in .rodata, .data or .bss)."""
        name = self.name_of(c, node)
        prev = self.consts.get(name)
        if prev is not None and prev is not c:
            raise _Err(node, f"two different globals are called {name!r}")
        self.consts[name] = c
        r = self.temp(node)
        # map and offset are patched by the loader (MAP_VALUE reference by the global's name)
        self.emit(asm.load_map_value(r, f"global:{name}", 0))
        return r

    def normalize_loaded(self, r: Register, t: type[IntType]) -> None:
        """Sign-extend a narrow signed value just loaded (loads zero-extend)."""
        if t.signed and t.size < 8:
            sh = 64 - t.size * 8
            self.emit(asm.lsh(r, sh), asm.arsh(r, sh))

    def const_read(self, c: Const[Any], node: ast.AST) -> V:
        r = self.global_addr(c, node)
        self.emit(asm.load(_SIZE[c.type.size], r, r, 0))
        t = _host(c.type)
        self.normalize_loaded(r, t)
        return V(ty=t, reg=r)

    # maps
    def map_of(self, node: ast.expr) -> tuple[str, MapDecl]:
        if not self.is_static(node):
            raise _Err(node, f"{ast.unparse(node)} is not a map")
        m = self.static(node)
        if not isinstance(m, MapDecl):
            raise _Err(node, f"{ast.unparse(node)} is not a map")
        name = self.name_of(m, node)
        prev = self.maps.get(name)
        if prev is not None and prev is not m:
            raise _Err(node, f"two different maps are called {name!r}")
        self.maps[name] = m
        return name, m

    def store_key(self, m: MapDecl, key: ast.expr) -> Register | None:
        """Evaluate the key of ``m``: an integer key is stored in the key slot (and None
        returned); a struct key is a pointer to a record of the key's class, returned in a
        temporary (the caller passes it as the key pointer and releases it)."""
        if isinstance(m, LocalStorage):
            raise _Err(key, "a local storage has no keys in programs: use "
                            "store.get(owner, create=True) and store.delete(owner)")
        if isinstance(m, Queue):
            raise _Err(key, f"a {type(m).__name__.lower()} has no keys: use push(v), pop() "
                            "and peek()")
        if isinstance(m.key, type) and issubclass(m.key, Struct):
            return self.struct_key(m.key, key)
        kt = m.key
        assert isinstance(kt, type) and issubclass(kt, IntType)
        v = self.expr(key)
        r = self.to_reg(v, _host(kt), key)
        if kt.big_endian:
            self.emit(asm.to_be(r, kt.size * 8))
        self.emit(asm.store(_SIZE[kt.size], R10, self.key_slot, r))
        self.release(r)
        return None

    def struct_key(self, kt: type[Struct], key: ast.expr,
                   role: str = "the map's keys are") -> Register:
        """A pointer to the ``kt`` record ``key``: a local (a stack struct ``k = Key()``, a
        checked map value or packet header of that class, a nested record ``q.key``), or
        ``Key(f=v, ...)`` written in place, which gets a zeroed stack struct of its own
        (padding included, so equal keys hash equal). ``role`` starts the error message."""
        fn = self.static(key.func) if isinstance(key, ast.Call) and \
            self.is_static(key.func) else None
        if isinstance(fn, type) and issubclass(fn, Struct) and fn is not kt:
            raise _Err(key, f"{role} {kt.__name__} records, not {fn.__name__}")
        if isinstance(key, ast.Call) and fn is kt:
            name = f".key.{key.lineno}.{key.col_offset}"
            loc = self.locals.setdefault(name, Local(0))
            self.stack_object(ast.Name(id=name, ctx=ast.Load(), lineno=key.lineno,
                                       col_offset=key.col_offset), loc, kt, key)
            r = self.temp(key)
            assert loc.obj is not None
            self.emit(asm.mov(r, R10), asm.add(r, loc.obj))
            return r
        v = self.expr(key, allow_nullable=True)
        if v.ptr is None or v.ptr.struct is not kt:
            self.release(v)
            raise _Err(key, f"{role} {kt.__name__} records: pass a "
                            f"{kt.__name__} (k = {kt.__name__}(...), then its fields)")
        self.not_none(v, key)
        assert v.reg is not None
        return v.reg

    def key_arg(self, kp: Register | None) -> None:
        """r2 = the key pointer: the key slot, or the struct key in ``kp``."""
        if kp is None:
            self.emit(asm.mov(R2, R10), asm.add(R2, self.key_slot))
        else:
            self.emit(asm.mov(R2, kp))

    def lookup(self, name: str, m: MapDecl, key: ast.expr) -> Register | None:
        """r0 = bpf_map_lookup_elem(m, &key); the struct key's temporary (see
        :meth:`store_key`), which the caller releases."""
        if isinstance(m, RingBuf):
            raise _Err(key, f"{name} is a ring buffer: use reserve/submit")
        kp = self.store_key(m, key)
        self.emit(asm.load_map(R1, name))
        self.key_arg(kp)
        self.emit(asm.call(asm.Helper.MAP_LOOKUP_ELEM))
        return kp

    def int_value(self, m: MapDecl, node: ast.AST) -> type[IntType]:
        if not (isinstance(m.value, type) and issubclass(m.value, IntType)):
            raise _Err(node, "this map holds structs: use m.lookup(key) and its fields")
        return m.value

    def map_read(self, node: ast.Subscript) -> V:
        name, m = self.map_of(node.value)
        vt = self.int_value(m, node)
        self.release(self.lookup(name, m, node.slice))
        r = self.temp(node)
        miss, done = self.label("miss"), self.label("found")
        self.emit(asm.jeq(R0, 0, miss), asm.load(_SIZE[vt.size], r, R0, 0))
        if vt.signed and vt.size < 8:
            sh = 64 - vt.size * 8
            self.emit(asm.lsh(r, sh), asm.arsh(r, sh))
        elif vt.big_endian:
            self.emit(asm.to_be(r, vt.size * 8))
        self.emit(asm.ja(done))
        self.place(miss)
        self.emit(asm.mov(r, 0))
        self.place(done)
        return V(ty=_host(vt), reg=r)

    def map_update(self, target: ast.Subscript, value: ast.expr, flags: int = 0) -> None:
        name, m = self.map_of(target.value)
        if isinstance(m.value, type) and issubclass(m.value, Struct):
            self.map_update_struct(name, m, target, value, flags)
            return
        vt = self.int_value(m, target)
        v = self.expr(value)
        r = self.to_reg(v, _host(vt), value)
        if vt.big_endian:
            self.emit(asm.to_be(r, vt.size * 8))
        self.emit(asm.store(_SIZE[vt.size], R10, self.val_slot, r))
        self.release(r)
        kp = self.store_key(m, target.slice)
        self.emit(asm.load_map(R1, name))
        self.key_arg(kp)
        self.emit(asm.mov(R3, R10), asm.add(R3, self.val_slot), asm.mov(R4, flags),
                  asm.call(asm.Helper.MAP_UPDATE_ELEM))
        self.release(kp)

    def map_update_struct(self, name: str, m: MapDecl, target: ast.Subscript,
                          value: ast.expr, flags: int) -> None:
        """``m[k] = rec`` of a struct-valued map: ``bpf_map_update_elem`` copies the record
        ``rec`` points to (a stack struct, a map value or a ring-buffer record)."""
        st = getattr(m.value, "__name__", "struct")
        v = self.expr(value, allow_nullable=True)
        if v.ptr is None or v.ptr.struct is not m.value:
            self.release(v)
            raise _Err(value, f"{name} holds {st} records: assign a {st} (such as "
                              f"r = {st}())")
        self.not_none(v, value)
        assert v.reg is not None
        kp = self.store_key(m, target.slice)
        self.emit(asm.mov(R3, v.reg), asm.load_map(R1, name))
        self.key_arg(kp)
        self.emit(asm.mov(R4, flags), asm.call(asm.Helper.MAP_UPDATE_ELEM))
        self.release(kp)
        self.release(v)

    def map_delete(self, target: ast.Subscript) -> None:
        name, m = self.map_of(target.value)
        if not isinstance(m, (Hash, LPMTrie)):
            raise _Err(target, f"{name} is not a hash map: its elements cannot be deleted")
        kp = self.store_key(m, target.slice)
        self.emit(asm.load_map(R1, name))
        self.key_arg(kp)
        self.emit(asm.call(asm.Helper.MAP_DELETE_ELEM))
        self.release(kp)

    def map_aug(self, target: ast.Subscript, op: str, value: ast.expr, node: ast.AST) -> None:
        name, m = self.map_of(target.value)
        vt = self.int_value(m, target)
        if op not in ("+", "-", "|", "&", "^"):
            raise _Err(node, f"m[k] {op}= v is not supported (+=, -=, |=, &=, ^= are)")
        if vt.big_endian or vt.size not in (4, 8):
            raise _Err(node, "m[k] op= v needs a u32/u64/i32/i64 value (an atomic operation)")
        v = self.expr(value)
        r = self.to_reg(v, vt, value)
        if op == "-":
            self.emit(asm.neg(r))
            op = "+"
        kp = self.lookup(name, m, target.slice)
        miss, done = self.label("miss"), self.label("updated")
        fn = {"+": asm.atomic_add, "|": asm.atomic_or, "&": asm.atomic_and,
              "^": asm.atomic_xor}[op]
        self.emit(asm.jeq(R0, 0, miss), fn(_SIZE[vt.size], R0, r, 0), asm.ja(done))
        self.place(miss)
        if isinstance(m, Hash):
            if op == "&":
                self.emit(asm.mov(r, 0))
            self.emit(asm.store(_SIZE[vt.size], R10, self.val_slot, r),
                      asm.load_map(R1, name))
            self.key_arg(kp)
            self.emit(asm.mov(R3, R10), asm.add(R3, self.val_slot), asm.mov(R4, 1),
                      asm.call(asm.Helper.MAP_UPDATE_ELEM))  # BPF_NOEXIST
        self.place(done)
        self.release(kp)
        self.release(r)

    # calls
    def call(self, node: ast.Call, discard: bool) -> V:
        f = node.func
        if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and \
                f.value.id == self.ctx_name:
            if f.attr == "load":
                return self.ctx_load(node)
            method = getattr(self.decl.ctx_access, "call", None)
            if method is not None:  # the kind's own ctx methods (_kinds.py)
                return method(self, node, f.attr)  # type: ignore[no-any-return]
            raise _Err(node, f"ctx.{f.attr}() is not supported")
        if isinstance(f, ast.Attribute) and self.is_static(f.value):
            obj = self.static(f.value)
            if isinstance(obj, MapDecl):
                return self.map_method(node, f.attr, discard)
        if isinstance(f, ast.Name) and f.id in self.locals:
            raise _Err(node, f"{f.id} is a local, not a function")
        if not self.is_static(f):
            raise _Err(node, f"cannot call {ast.unparse(f)}")
        fn = self.static(f)
        if isinstance(fn, type) and issubclass(fn, IntType) and fn is not IntType:
            if len(node.args) != 1 or node.keywords:
                raise _Err(node, f"{fn.__name__}(x) takes one argument")
            v = self.expr(node.args[0])
            if v.lit is not None:
                return V(ty=_host(fn), reg=self._lit_reg(fn.wrap(v.lit), node))
            if not v.is_int:
                raise _Err(node, "only integers can be cast")
            assert v.reg is not None and v.ty is not None
            self.convert(v.reg, v.ty, fn)
            return V(ty=_host(fn), reg=v.reg)
        if getattr(fn, "_bpf_kcall", False):  # core_read, get_current_task_btf (_kstruct.py)
            return fn.compile(self, node)  # type: ignore[no-any-return]
        if isinstance(fn, _HelperFn):
            return self.helper_call(node, fn, discard)
        if isinstance(fn, FuncDecl):
            return self.func_call(node, fn)
        if fn is range:
            raise _Err(node, "range() is only for `for` loops")
        if fn is min or fn is max:
            return self.minmax(node, fn is min)
        raise _Err(node, f"cannot call {ast.unparse(f)} in a BPF program")

    def minmax(self, node: ast.Call, smallest: bool) -> V:
        """``min(a, b)`` / ``max(a, b)`` of two integers, compared and returned in their
        common type (its signedness picks ``jsle``/``jle``), as a comparison would."""
        what = "min" if smallest else "max"
        if len(node.args) != 2 or node.keywords:
            raise _Err(node, f"{what}(a, b) takes two integers")
        a = self.expr(node.args[0])
        b = self.expr(node.args[1])
        for v, n in ((a, node.args[0]), (b, node.args[1])):
            if not v.is_int:
                raise _Err(n, f"{what}() compares integers")
        if a.lit is not None and b.lit is not None:
            return V(lit=min(a.lit, b.lit) if smallest else max(a.lit, b.lit))
        if a.lit is not None:  # the result does not depend on the order
            a, b = b, a
        assert a.ty is not None
        t = a.ty if b.ty is None else common_type(a.ty, b.ty)
        ra = self.to_reg(a, t, node)
        if b.lit is not None:
            c = self.lit_for(b.lit, t, node)
            if _fits_imm(c):
                rb: Register | int = c
            else:
                rb = self.temp(node)
                self.emit(asm.load_imm64(rb, c))
        else:
            rb = self.to_reg(b, t, node)
        keep = self.label("keep")
        self.emit(_jump("<=" if smallest else ">=", t.signed)(ra, rb, keep), asm.mov(ra, rb))
        self.place(keep)
        if isinstance(rb, Register):
            self.release(rb)
        return V(ty=t, reg=ra)

    def func_call(self, node: ast.Call, fn: FuncDecl) -> V:
        if node.keywords:
            raise _Err(node, f"{fn.name}() takes positional arguments only")
        if self.sub is fn:
            raise _Err(node, "recursion is not allowed in BPF programs")
        callee = _FunctionCompiler(self.decl, fn)
        try:
            params, ret = callee.signature()
        except _Err as e:
            raise callee.error(e) from None
        if len(node.args) != len(params):
            raise _Err(node, f"{fn.name} takes {len(params)} argument(s), got {len(node.args)}")
        regs: list[Register] = []
        for k, (a, (_pname, pt)) in enumerate(zip(node.args, params, strict=True)):
            if k == callee.ctx_param:  # the context, in a register as this function has it
                if not (isinstance(a, ast.Name) and self.ctx_name and a.id == self.ctx_name):
                    raise _Err(a, f"{fn.name}: argument {_pname} is the context: pass "
                                  f"{self.ctx_name or 'the program ctx'}")
                r = self.temp(a)
                self.emit(asm.load(asm.DW, r, R10, self.ctx_slot))
                regs.append(r)
                continue
            v = self.expr(a)
            if not v.is_int:
                raise _Err(a, f"{fn.name}: argument {_pname} is an integer")
            regs.append(self.to_reg(v, pt, a))
        for k, r in enumerate(regs):
            self.emit(asm.mov(Register(k + 1), r))
            self.release(r)
        self.calls[fn] = None
        self.emit(asm.call(f"{fn.name}/entry"))
        if ret is None:
            return V(lit=0)
        r = self.temp(node)
        self.emit(asm.mov(r, R0))
        return V(ty=ret, reg=r)

    def _lit_reg(self, c: int, node: ast.AST) -> Register:
        r = self.temp(node)
        self.emit_const(r, c)
        return r

    def map_method(self, node: ast.Call, meth: str, discard: bool) -> V:
        assert isinstance(node.func, ast.Attribute)
        name, m = self.map_of(node.func.value)
        if isinstance(m, LocalStorage):
            from . import _storage

            return _storage.method(self, node, name, m, meth)
        if isinstance(m, Queue):
            from . import _queue

            return _queue.method(self, node, name, m, meth)
        if isinstance(m, RingBuf):
            if meth == "reserve":
                if len(node.args) != 1 or node.keywords:
                    raise _Err(node, "reserve(T) takes one bpf.Struct class")
                st = self.static(node.args[0])
                if not (isinstance(st, type) and issubclass(st, Struct) and st is not Struct):
                    raise _Err(node.args[0], "reserve needs a bpf.Struct class")
                self.structs[st] = None
                self.emit(asm.load_map(R1, name), asm.mov(R2, st.size), asm.mov(R3, 0),
                          asm.call(asm.Helper.RINGBUF_RESERVE))
                r = self.temp(node)
                self.emit(asm.mov(r, R0))
                return V(reg=r, ptr=Ptr(st, "ringbuf"), nullable=True)
            if meth in ("submit", "discard"):
                if len(node.args) != 1 or node.keywords:
                    raise _Err(node, f"{meth}(record) takes the reserved record")
                v = self.expr(node.args[0], allow_nullable=True)
                if v.ptr is None or v.ptr.region != "ringbuf":
                    raise _Err(node.args[0], f"{meth} takes a record from reserve()")
                if v.nullable:
                    raise _Err(node.args[0], "the record may be None here: check it first")
                assert v.reg is not None
                self.emit(asm.mov(R1, v.reg), asm.mov(R2, 0),
                          asm.call(asm.Helper.RINGBUF_SUBMIT if meth == "submit"
                                   else asm.Helper.RINGBUF_DISCARD))
                self.release(v)
                return V(lit=0)
            if meth == "output":
                if len(node.args) != 1 or node.keywords:
                    raise _Err(node, "output(ptr) takes a struct pointer")
                v = self.expr(node.args[0])
                if v.ptr is None or v.nullable:
                    raise _Err(node.args[0], "output takes a (checked) struct pointer")
                assert v.reg is not None
                self.emit(asm.load_map(R1, name), asm.mov(R2, v.reg),
                          asm.mov(R3, v.ptr.struct.size), asm.mov(R4, 0),
                          asm.call(asm.Helper.RINGBUF_OUTPUT))
                self.release(v)
                r = self.temp(node)
                self.emit(asm.mov(r, R0))
                return V(ty=i64, reg=r)
            raise _Err(node, f"ring buffers have reserve/submit/discard/output, not {meth}")
        if isinstance(m, ProgArray):
            if meth != "tail_call":
                raise _Err(node, f"program arrays have tail_call(ctx, index), not {meth}")
            if len(node.args) != 2 or node.keywords or not (
                    isinstance(node.args[0], ast.Name) and node.args[0].id == self.ctx_name):
                raise _Err(node, "tail_call(ctx, index) takes the program's ctx (in a "
                                 "@bpf.func, a ctx parameter) and an index")
            v = self.expr(node.args[1])
            if not v.is_int:
                raise _Err(node.args[1], "a tail call index is an integer")
            r = self.to_reg(v, u32, node.args[1])
            self.emit(asm.mov(R3, r), asm.load(asm.DW, R1, R10, self.ctx_slot),
                      asm.load_map(R2, name), asm.call(asm.Helper.TAIL_CALL))
            self.release(r)
            return V(none=True)
        if isinstance(m, PerfEventArray):
            if meth != "output":
                raise _Err(node, f"perf event arrays have output(ctx, record), not {meth}")
            if len(node.args) != 2 or node.keywords or not (
                    isinstance(node.args[0], ast.Name) and node.args[0].id == self.ctx_name):
                raise _Err(node, "output(ctx, record) takes the program's ctx (in a "
                                 "@bpf.func, a ctx parameter) and a struct pointer")
            v = self.expr(node.args[1])
            if v.ptr is None or v.nullable:
                raise _Err(node.args[1], "output takes a (checked) struct pointer")
            assert v.reg is not None
            self.emit(asm.mov(R4, v.reg), asm.load(asm.DW, R1, R10, self.ctx_slot),
                      asm.load_map(R2, name), asm.mov32(R3, -1),  # BPF_F_CURRENT_CPU
                      asm.mov(R5, v.ptr.struct.size), asm.call(asm.Helper.PERF_EVENT_OUTPUT))
            self.release(v)
            r = self.temp(node)
            self.emit(asm.mov(r, R0))
            return V(ty=i64, reg=r)
        if meth == "lookup":
            if len(node.args) != 1 or node.keywords:
                raise _Err(node, "lookup(key) takes one key")
            st = m.value if isinstance(m.value, type) and issubclass(m.value, Struct) \
                else _cell(self.int_value(m, node))
            self.release(self.lookup(name, m, node.args[0]))
            r = self.temp(node)
            self.emit(asm.mov(r, R0))
            return V(reg=r, ptr=Ptr(st, "map"), nullable=True)
        if meth == "lookup_percpu":  # bpf_map_lookup_percpu_elem (5.19): another CPU's value
            if not isinstance(m, (PerCPUArray, PerCPUHash)) or len(node.args) != 2 or \
                    node.keywords:
                raise _Err(node, "lookup_percpu(key, cpu) is for PerCPUArray/PerCPUHash maps "
                                 "and takes a key and a CPU number")
            st = m.value if isinstance(m.value, type) and issubclass(m.value, Struct) \
                else _cell(self.int_value(m, node))
            cv = self.expr(node.args[1])
            if not cv.is_int:
                self.release(cv)
                raise _Err(node.args[1], "the CPU is an integer")
            cpu = self.to_reg(cv, u32, node.args[1])
            kp = self.store_key(m, node.args[0])
            self.emit(asm.load_map(R1, name))
            self.key_arg(kp)
            self.emit(asm.mov(R3, cpu), asm.call(asm.Helper.MAP_LOOKUP_PERCPU_ELEM))
            self.release(kp)
            self.release(cpu)
            r = self.temp(node)
            self.emit(asm.mov(r, R0))
            return V(reg=r, ptr=Ptr(st, "map"), nullable=True)
        if meth == "update":  # m.update(k, v, flags=0): bpf_map_update_elem's result
            args = node.args + [kw.value for kw in node.keywords if kw.arg == "flags"]
            if len(node.args) < 2 or len(args) > 3 or \
                    len(args) - len(node.args) != len(node.keywords):
                raise _Err(node, "update(key, value, flags=0) takes a key, a value and "
                                 "optional flags (BPF_ANY 0, BPF_NOEXIST 1, BPF_EXIST 2)")
            fl = self.static_int(args[2]) if len(args) == 3 else 0
            if fl not in (0, 1, 2):
                raise _Err(node, "update flags are a constant: 0 (any), 1 (noexist) or "
                                 "2 (exist)")
            target = ast.Subscript(value=node.func.value, slice=node.args[0], ctx=ast.Store(),
                                   lineno=node.lineno, col_offset=node.col_offset)
            self.map_update(target, node.args[1], fl)
            r = self.temp(node)
            self.emit(asm.mov(r, R0))
            return V(ty=i64, reg=r)
        raise _Err(node, f"maps support m[k], m[k] = v, m[k] += v, lookup(k) and "
                         f"update(k, v, flags), not {meth}")

    def helper_call(self, node: ast.Call, h: _HelperFn, discard: bool) -> V:
        if node.keywords:
            raise _Err(node, f"{h.name}() takes positional arguments only")
        if h.name == "get_current_comm" and not node.args:
            raise _Err(node, "get_current_comm() can only be assigned to a bytes_[N] field "
                             "(or called with the buffer: get_current_comm(record.field))")
        if h.name == "trace_printk":
            return self.trace_printk(node)
        first = node.args[0] if node.args else None
        if h.name in _READ_HELPERS and (len(node.args) < 2 or (  # bpf.probe_read_*(e.f, a)
                isinstance(first, ast.Attribute) and not (isinstance(first.value, ast.Name)
                                                          and first.value.id == self.ctx_name))):
            if len(node.args) != 2 or not isinstance(node.args[0], ast.Attribute):
                raise _Err(node, f"bpf.{h.name}(record.field, address) takes a bytes_[N] "
                                 "field to fill and an address")
            base, fld = self.field_ref(node.args[0])
            if not isinstance(fld.type, _Bytes):
                self.release(base)
                raise _Err(node.args[0], f"bpf.{h.name} fills a bytes_[N] field; "
                                         f"{fld.name} is not one")
            return self.probe_read(node, h.name, base, fld, node.args[1])
        helper, params, ret = h.resolve(node, self.decl.program_type)
        from . import _helper_args  # integers and pointers (buffers, maps, ctx)

        _helper_args.load_arguments(self, node, f"bpf_{h.name}", params)
        self.emit(asm.call(int(helper)))
        if ret is None and helper.signature is not None and \
                helper.signature.return_type.strip() == "void":
            return V(lit=0)
        r = self.temp(node)
        self.emit(asm.mov(r, R0))
        if ret is None:  # a struct pointer
            return h.pointer_result(self, node, r)
        self.normalize(r, ret)
        return V(ty=ret, reg=r)

    def probe_read(self, node: ast.Call, name: str, base: V, fld: Any, src: ast.expr) -> V:
        """``bpf_probe_read_{user,kernel}[_str]`` of ``fld.size`` bytes at the address
        ``src`` into the ``bytes_[N]`` field ``fld`` of the record ``base`` points to; the
        helper's result (bytes copied with the NUL for ``_str``, or -errno) as an ``i64``."""
        try:
            check_helper_allowed(int(_READ_HELPERS[name]), self.decl.program_type)
        except AssemblerError as e:
            self.release(base)
            raise _Err(node, str(e)) from None
        v = self.expr(src)
        if not v.is_int or v.kt is not None:
            self.release(v)
            self.release(base)
            raise _Err(src, f"bpf.{name} reads from an address (an integer such as a "
                            "tracepoint's pointer argument); copy a kernel struct's array "
                            "with record.field = task.comm")
        r = self.to_reg(v, u64, src)
        assert base.reg is not None
        self.emit(asm.mov(R3, r), asm.mov(R1, base.reg), asm.add(R1, fld.offset),
                  asm.mov(R2, fld.size), asm.call(_READ_HELPERS[name]))
        self.release(r)
        self.release(base)
        out = self.temp(node)
        self.emit(asm.mov(out, R0))
        return V(ty=i64, reg=out)

    def stack_literal(self, data: bytes) -> int:
        """A new stack slot (8-byte aligned) holding ``data``, written 4 bytes at a time;
        its offset from r10 (formats and paths the helpers read from the stack)."""
        buf = self.alloc(len(data) + (-len(data) % 8))
        padded = data + bytes(-len(data) % 4)
        for k in range(0, len(padded), 4):
            self.emit(asm.store_imm(asm.W, R10, buf + k,
                                    int.from_bytes(padded[k:k + 4], "little")))
        return buf

    def zero_range(self, base: Register, start: int, end: int) -> None:
        """Zero bytes ``[start, end)`` at ``base``, in the widest aligned stores."""
        off = start
        while off < end:
            w = 8 if end - off >= 8 and off % 8 == 0 else \
                4 if end - off >= 4 and off % 4 == 0 else 1
            self.emit(asm.store_imm(_SIZE[w], base, off, 0))
            off += w

    def trace_printk(self, node: ast.Call) -> V:
        if not node.args or not isinstance(node.args[0], ast.Constant) or not isinstance(
                node.args[0].value, str):
            raise _Err(node, "trace_printk(\"format\", ...) needs a literal format string")
        if len(node.args) > 4:
            raise _Err(node, "trace_printk takes at most 3 values")
        fmt = node.args[0].value.encode() + b"\0"
        size = len(fmt)
        regs: list[Register] = []
        for a in node.args[1:]:
            v = self.expr(a)
            if not v.is_int:
                raise _Err(a, "trace_printk prints integers")
            regs.append(self.to_reg(v, v.ty or i64, a))
        buf = self.stack_literal(fmt)
        self.emit(asm.mov(R1, R10), asm.add(R1, buf), asm.mov(R2, size))
        for k, r in enumerate(regs):
            self.emit(asm.mov(Register(k + 3), r))
            self.release(r)
        self.emit(asm.call(asm.Helper.TRACE_PRINTK))
        r = self.temp(node)
        self.emit(asm.mov(r, R0))
        return V(ty=i64, reg=r)


_CELLS: dict[type[IntType], type[Struct]] = {}


def _cell(t: type[IntType]) -> type[Struct]:
    """The one-field struct ``{value: t}`` that ``m.lookup(k)`` points to when ``m`` holds
    integers: ``p.value`` reads, writes (and ``+=``, atomically) the map's value in place."""
    got = _CELLS.get(t)
    if got is None:
        got = _CELLS[t] = type(f"{t.__name__}_value", (Struct,), {"__annotations__": {"value": t},
                                                                   "__module__": __name__})
    return got


def _lit_ok(c: int, t: type[IntType]) -> bool:
    t = _host(t)
    lo = t.min() if t.signed else -(1 << (t.size * 8 - 1))
    return lo <= c <= t.max()


def _merge(a: dict[str, tuple[bool, bool]], b: dict[str, tuple[bool, bool]]
           ) -> dict[str, tuple[bool, bool]]:
    return {n: (a[n][0] or b[n][0], a[n][1] and b[n][1]) for n in a}


def _fold(op: str, a: int, b: int, node: ast.AST) -> int:
    if op in ("//", "%") and b == 0:
        raise _Err(node, "division by zero in a constant expression")
    if op in ("<<", ">>") and not 0 <= b < 64:
        raise _Err(node, f"shift by {b} in a constant expression")
    r: int = {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b,
              "//": lambda: a // b, "%": lambda: a % b, "&": lambda: a & b,
              "|": lambda: a | b, "^": lambda: a ^ b, "<<": lambda: a << b,
              ">>": lambda: a >> b}[op]()
    if not -(1 << 63) <= r < (1 << 64):
        raise _Err(node, f"constant {r} does not fit in 64 bits")
    return r


def _global_names(f: ast.FunctionDef) -> dict[str, ast.Global]:
    """Names declared ``global`` (each must be a ``bpf.var``), with their statement.

    Walks the statements only (a ``global`` is one; no expression holds one), breadth
    first like ``ast.walk``, so the first declaration of a name is the same one."""
    out: dict[str, ast.Global] = {}
    kinds = (ast.stmt, ast.excepthandler, ast.match_case)
    todo: list[ast.AST] = [f]
    for n in todo:   # the list grows while it is read: a breadth-first queue
        if isinstance(n, ast.Global):
            for name in n.names:
                out.setdefault(name, n)
        todo.extend(c for c in ast.iter_child_nodes(n) if isinstance(c, kinds))
    return out


def _assigned_names(f: ast.FunctionDef) -> set[str]:
    names: set[str] = set()
    for n in ast.walk(f):
        if isinstance(n, (ast.FunctionDef, ast.Lambda, ast.ClassDef)) and n is not f:
            raise _Err(n, "nested functions and classes are not supported")
        if isinstance(n, ast.Nonlocal):
            raise _Err(n, "nonlocal: use bpf.var, bpf.const or maps for shared state")
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
            names.add(n.id)
        if isinstance(n, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            raise _Err(n, "comprehensions are not supported")
        if isinstance(n, (ast.NamedExpr,)):
            raise _Err(n, "the walrus operator is not supported")
    return names


# -- helpers as typed functions ------------------------------------------------------------
_C_SCALARS: dict[str, type[IntType]] = {
    "u64": u64, "__u64": u64, "u32": u32, "__u32": u32, "u16": int_type(2, False),
    "u8": u8, "int": i32, "long": i64, "s64": i64, "__s64": i64, "s32": i32, "__s32": i32,
    "unsigned long": u64, "unsigned int": u32, "long long": i64, "unsigned long long": u64,
    "__be16": int_type(2, False), "__be32": u32, "__wsum": u32, "u16 ": int_type(2, False),
    "size_t": u64,
}


class _HelperFn:
    """``bpf.<helper>``: a BPF helper as a typed function (prototype from the metadata)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<bpf helper {self.name}>"

    def __call__(self, *args: Any) -> Any:
        raise BPFError(f"bpf.{self.name} exists only inside a compiled program")

    def resolve(self, node: ast.AST, prog_type: ProgramType
                ) -> tuple[asm.Helper, list[tuple[str, type[IntType] | None]],
                           type[IntType] | None]:
        """The helper, its parameters (name and integer type, None for a pointer) and
        its result type (None: void), from the metadata's C prototype."""
        try:
            h = asm.Helper(asm.Helper.by_name(self.name))
        except KeyError:
            raise _Err(node, f"there is no BPF helper bpf_{self.name}") from None
        sig = h.signature
        if sig is None:
            raise _Err(node, f"bpf_{self.name} has no recorded prototype")
        try:
            check_helper_allowed(int(h), prog_type)
        except AssemblerError as e:
            raise _Err(node, str(e)) from None
        params: list[tuple[str, type[IntType] | None]] = []
        for ctype, pname in sig.params:
            t = _C_SCALARS.get(ctype.replace("const ", "").strip())
            if t is None and "*" not in ctype:
                raise _Err(node, f"bpf_{self.name}: parameter {pname} ({ctype}) is neither "
                                 "an integer nor a pointer; this helper is not supported yet")
            params.append((pname, t))
        rt = sig.return_type.strip()
        ret: type[IntType] | None
        if rt == "void":
            ret = None
        else:
            ret = _C_SCALARS.get(rt)
            if ret is None and not _STRUCT_PTR.fullmatch(rt):
                raise _Err(node, f"bpf_{self.name} returns {rt}, which is neither an integer "
                                 "nor a struct pointer; not supported yet")
        return h, params, ret

    def pointer_result(self, c: _FunctionCompiler, node: ast.AST, r: Register) -> V:
        """The result in ``r`` of a helper returning ``struct X *``: a nullable BTF pointer
        to the kernel's ``X`` (``skc_to_tcp_sock``...). The uapi views (``struct bpf_sock
        *`` of ``sk_fullsock``, ``struct bpf_tcp_sock *``) are not BTF pointers: not yet."""
        h = asm.Helper(asm.Helper.by_name(self.name))
        assert h.signature is not None
        m = _STRUCT_PTR.fullmatch(h.signature.return_type.strip())
        assert m is not None
        if m.group(1).startswith("bpf_"):
            c.release(r)
            raise _Err(node, f"bpf_{self.name} returns the uapi view struct {m.group(1)} *; "
                             "not supported yet")
        from ._kstruct import KType, kernel_type

        try:
            comp = kernel_type(m.group(1))
        except (KeyError, OSError, BPFError):
            c.release(r)
            raise _Err(node, f"bpf_{self.name} returns struct {m.group(1)} *, which the "
                             "kernel's BTF does not describe") from None
        return V(ty=u64, reg=r, kt=KType(comp, "btf"))


_HELPERS: dict[str, _HelperFn] = {}
#: a helper result type ``struct X *``
_STRUCT_PTR = re.compile(r"(?:const )?struct (\w+) \*")

#: the memory-reading helpers that fill a ``bytes_[N]`` field (``bpf.probe_read_user_str``..)
_READ_HELPERS: dict[str, asm.Helper] = {
    "probe_read_user": asm.Helper.PROBE_READ_USER,
    "probe_read_user_str": asm.Helper.PROBE_READ_USER_STR,
    "probe_read_kernel": asm.Helper.PROBE_READ_KERNEL,
    "probe_read_kernel_str": asm.Helper.PROBE_READ_KERNEL_STR,
    "copy_from_user": asm.Helper.COPY_FROM_USER,
}


def _helper_marker(name: str) -> _HelperFn:
    h = _HELPERS.get(name)
    if h is None:
        h = _HELPERS[name] = _HelperFn(name)
    return h


def helper_namespace() -> _pytypes.SimpleNamespace:
    class _NS(_pytypes.SimpleNamespace):
        def __getattr__(self, name: str) -> _HelperFn:
            if name.startswith("_"):
                raise AttributeError(name)
            return _helper_marker(name)

    return _NS()


def iter_pcs(insns: asm.Instructions) -> Iterator[tuple[int, asm.Instruction]]:
    pc = 0
    for insn in insns:
        yield pc, insn
        pc += 2 if insn.opcode == 0x18 else 1


def compile_program(decl: ProgramDecl, *, optimize: bool = True) -> CompiledProgram:
    """Compile one program and the ``@bpf.func`` subprograms it calls (raises
    :class:`CompileError`). ``optimize=False`` skips the register allocator and peephole
    pass (the milestone-1 stack-slot code, for comparison)."""
    main = _FunctionCompiler(decl)
    main.run()
    for m in decl.uses_maps:
        name = main.name_of(m, main.fdef)
        if main.maps.setdefault(name, m) is not m:
            raise CompileError(f"two different maps are called {name!r}", main.filename,
                               main.fdef.lineno + main.line_shift)
    parts: list[_FunctionCompiler] = []
    done: dict[FuncDecl, _FunctionCompiler] = {}
    pending: list[FuncDecl] = []

    def take(c: _FunctionCompiler) -> None:  # a function and its bpf.loop callbacks
        parts.append(c)
        pending.extend(c.calls)
        for cb in c.callbacks:
            take(cb)

    take(main)
    while pending:
        f = pending.pop(0)
        if f in done:
            continue
        sub = _FunctionCompiler(decl, f)
        sub.run()
        done[f] = sub
        take(sub)
    items: list[asm.Item] = []
    for part in parts:
        if optimize:
            nparams = 1 if part.sub is None else len(part.signature()[0])
            part.items = _regalloc.optimize(part.items, part.scalar_slots,
                                            ((1 << (nparams + 1)) - 1) & ~1,
                                            part.ctx_slot if (
                                                part.sub is None or part.ctx_param is not None
                                            ) and not (
                                                decl.ctx_access is not None and
                                                decl.ctx_access.writes) else None)
        items.extend(part.items)
    try:
        insns = asm.Instructions(items)
    except AssemblerError as e:
        raise CompileError(str(e), main.filename, main.fdef.lineno + main.line_shift) from None
    pcs = insns.labels
    records: dict[int, tuple[int, int, int, str, str]] = {}
    maps: dict[str, MapDecl] = {}
    consts: dict[str, Const[Any]] = {}
    strings: dict[str, bytes] = {}
    structs: dict[type[Struct], None] = {}
    funcs: list[tuple[int, str, list[tuple[str, type[IntType]]], type[IntType] | None]] = []
    starts = {pc: insn.size for pc, insn in iter_pcs(insns)}
    for part in parts:
        placed = [pcs[rec.label] for rec in part.lines]
        for k, rec in enumerate(part.lines):
            pc = placed[k]
            if k == 1 and pc == placed[0] and pc in starts:
                # the optimiser left the prologue empty: the entry instruction keeps the
                # def line, the first statement starts at its second instruction if it has one
                nxt = pc + starts[pc]
                if nxt in starts and (len(placed) < 3 or nxt < placed[2]):
                    pc = nxt
            if pc < insns.slots:
                text = linecache.getline(rec.filename, rec.line).rstrip("\n")
                records[pc] = (pc, rec.line, rec.col, text, rec.filename)
        for name, m in part.maps.items():
            if maps.setdefault(name, m) is not m:
                raise CompileError(f"two different maps are called {name!r}", part.filename,
                                   part.fdef.lineno + part.line_shift)
        consts.update(part.consts)
        strings.update(part.strings)
        structs.update(part.structs)
        if part.sub is None:
            funcs.append((0, decl.name, [], i64))
        else:
            params, ret = part.signature()
            funcs.append((pcs[f"{part.sub.name}/entry"], part.sub.name, params, ret))
    return CompiledProgram(decl, insns, maps, consts, main.filename,
                           [records[k] for k in sorted(records)], list(structs), strings,
                           funcs)
