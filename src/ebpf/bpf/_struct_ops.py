"""``@bpf.struct_ops``: a kernel ops table (``tcp_congestion_ops``...) written as a Python class.

Each method named like a function-pointer member of ``struct <type>`` is compiled as a
``BPF_PROG_TYPE_STRUCT_OPS`` program (``attach_btf_id`` = the struct, ``expected_attach_type``
= the member's index; Linux 5.6). Its parameters are the callback's arguments, matched by
position against the member's BTF prototype (names are free; the count must match). The
kernel passes them as an array of ``u64`` in the context, as for fentry programs, and the
compiler reads them from there on entry:

* an integer (or enum) argument is a local of its C type (``u32 ack``), or of the annotated
  integer type (``acked: u64`` converts);
* a pointer to a struct is a BTF pointer (``PTR_TO_BTF_ID``) to that struct, so
  ``sk.sk_state`` is a direct load as in fentry programs and the pointer can be passed to
  kfuncs (``bpf.kfunc.tcp_reno_cong_avoid(sk, ack, acked)``); ``sk: bpf.kernel.tcp_sock``
  reads it as another struct instead - the type the verifier gives it, e.g. the
  ``struct sock *`` of ``tcp_congestion_ops`` callbacks is a ``struct tcp_sock *`` there;
* any other pointer is an integer address (``u64``).

Other class attributes set the struct's data members: ``name = "mycc"`` (or the decorator's
``name=``) for a ``char[]`` member, ``flags = 1`` for an integer one; everything not given is
zero. Names starting with ``_`` are left alone (helpers, constants).

:func:`ebpf.bpf.load` loads the programs with the rest of the collection and builds the table
(:class:`ebpf.link.struct_ops.StructOps`), found as ``coll.<ClassName>``;
``ebpf.link.attach_struct_ops(coll.PyCC)`` registers it through a bpf_link (Linux 6.4) or,
for ``link=False`` tables and on older kernels, by writing the map. Unregistered when the link
or attachment is detached.
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import inspect
import textwrap
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

from .. import asm, btf
from .._types import ProgramType
from ..errors import BPFError
from ._decl import ProgramDecl
from ._kinds import CtxAccess, Field
from ._kstruct import KType, _Cast, _composite_of, _int_of, kernel_type, resolve_field
from .types import IntType, int_type, u64

if TYPE_CHECKING:
    from .._programs import Program
    from ..link.struct_ops import StructOps
    from ._compiler import V, _FunctionCompiler

__all__ = ["StructOpsDecl", "struct_ops"]

_SIZE = {1: asm.B, 2: asm.H, 4: asm.W, 8: asm.DW}

#: the context's name in the rewritten member functions (not a name users can write)
_CTX = "__bpf_struct_ops_ctx"
#: MAX_BPF_FUNC_ARGS
_MAX_ARGS = 12


def _compile_error(message: str, filename: str, line: int) -> Exception:
    from ._compiler import CompileError

    return CompileError(message, filename, line)


def _ctype(t: btf.Type) -> str:
    """A C spelling of BTF type ``t`` for messages (``struct sock *``, ``u32``)."""
    r = t.spec.resolve(t)
    if isinstance(r, btf.Pointer):
        comp = _composite_of(r.target)
        if comp is not None:
            kind = "union" if isinstance(comp, btf.Union) else "struct"
            return f"{kind} {comp.name or '(anonymous)'} *"
        return "void *" if isinstance(t.spec.resolve(r.target), btf.Void) else "pointer"
    name = getattr(t, "name", "") or getattr(r, "name", "")
    if isinstance(r, (btf.Enum, btf.Enum64)):
        return f"enum {name}" if name else "enum"
    return str(name) or type(r).__name__.lower()


class _Args(CtxAccess):
    """The callback's arguments as ctx fields; struct pointers carry their kernel type."""

    def __init__(self, fields: dict[str, Field], kinds: dict[str, KType]) -> None:
        super().__init__(fields)
        self.kinds = kinds

    def kernel_type(self, name: str) -> Any:
        return self.kinds.get(name)


class _Param:
    """One callback argument: its ctx field, kernel type and the annotation to keep."""

    def __init__(self, arg: ast.arg, field: Field, kt: KType | None,
                 annotation: ast.expr | None) -> None:
        self.arg = arg
        self.field = field
        self.kt = kt
        self.annotation = annotation


class StructOpsProgram(ProgramDecl):
    """A method of a :func:`struct_ops` class compiled as the program of one member."""

    def __init__(self, fn: Callable[..., Any], table: StructOpsDecl, member: str, index: int,
                 params: list[_Param]) -> None:
        access = _Args({p.arg.arg: p.field for p in params},
                       {p.arg.arg: p.kt for p in params if p.kt is not None})
        super().__init__(fn, ProgramType.STRUCT_OPS, f"struct_ops/{member}", "struct_ops",
                         attach_to=table.type_name, ctx_layout=access.layout)
        self.name = f"{table.name}_{member}"
        #: the member's index in the struct: ``expected_attach_type`` at load
        self.attach_type = cast(Any, index)
        self.ctx_access = access
        self.member = member
        self.table = table
        self._params = params

    def rewrite_def(self, fdef: ast.FunctionDef) -> ast.FunctionDef:
        """The function as the compiler sees it: one ``ctx`` parameter, and each callback
        argument assigned from it at the top of the body (so parameters are ordinary locals
        that can be reassigned). Called by the compiler for this program's function."""
        body = list(fdef.body)
        head: list[ast.stmt] = []
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            head.append(body.pop(0))  # the docstring stays first
        for p in self._params:
            a = p.arg
            value = ast.Attribute(value=ast.Name(id=_CTX, ctx=ast.Load()), attr=a.arg,
                                  ctx=ast.Load())
            target = ast.Name(id=a.arg, ctx=ast.Store())
            stmt: ast.stmt
            if p.annotation is not None:
                stmt = ast.AnnAssign(target=target, annotation=p.annotation, value=value,
                                     simple=1)
            else:
                stmt = ast.Assign(targets=[target], value=value)
            for node in (stmt, target, value, value.value):
                ast.copy_location(node, a)
            head.append(stmt)
        new = ast.FunctionDef(
            name=fdef.name, args=ast.arguments(posonlyargs=[], args=[ast.arg(arg=_CTX)],
                                               vararg=None, kwonlyargs=[], kw_defaults=[],
                                               kwarg=None, defaults=[]),
            body=head + body, decorator_list=[], returns=None, type_comment=None)
        ast.copy_location(new, fdef)
        ast.copy_location(new.args.args[0], fdef)
        new.type_params = []  # type: ignore[attr-defined]  # Python 3.12+
        return ast.fix_missing_locations(new)

    def __repr__(self) -> str:
        return f"<bpf struct_ops program {self.table.type_name}.{self.member} of {self.table.name}>"


class StructOpsDecl:
    """A class declared with :func:`struct_ops`: the programs of its methods and the values of
    its data members, checked against the kernel's BTF when first compiled (a wrong member,
    argument count or value is a :class:`~ebpf.bpf.CompileError` at its line)."""

    def __init__(self, cls: type, type_name: str, ops_name: str | None,
                 link: bool | None) -> None:
        self.cls = cls
        #: the class name: ``coll.<name>`` after :func:`ebpf.bpf.load`, program name prefix
        self.name = cls.__name__
        self.type_name = type_name
        self.link = link
        self._ops_name = ops_name
        self._programs: dict[str, StructOpsProgram] | None = None
        self._fields: dict[str, int | str | bytes] = {}
        self.__doc__ = cls.__doc__

    # -- where things are -------------------------------------------------------------------
    def _where(self) -> tuple[str, int, dict[str, int]]:
        """The class's file, line, and the line of each name assigned or defined in its body."""
        try:
            filename = inspect.getsourcefile(self.cls) or "<unknown>"
            lines, first = inspect.getsourcelines(self.cls)
        except (OSError, TypeError):
            return "<unknown>", 0, {}
        lines_at: dict[str, int] = {}
        with contextlib.suppress(SyntaxError):
            tree = ast.parse(textwrap.dedent("".join(lines)))
            cdef = tree.body[0]
            if isinstance(cdef, ast.ClassDef):
                first += cdef.lineno - 1
                for s in cdef.body:
                    at = first + s.lineno - cdef.lineno
                    if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        lines_at[s.name] = at + len(s.decorator_list)
                    elif isinstance(s, ast.Assign):
                        for t in s.targets:
                            if isinstance(t, ast.Name):
                                lines_at[t.id] = at
                    elif isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name):
                        lines_at[s.target.id] = at
        return filename, first, lines_at

    # -- resolution -----------------------------------------------------------------------------
    def _resolve(self) -> dict[str, StructOpsProgram]:
        if self._programs is not None:
            return self._programs
        from ..link.struct_ops import StructOpsType

        filename, class_line, lines_at = self._where()
        try:
            t = StructOpsType.lookup(self.type_name)
            spec = btf.load_kernel()
            st = spec.find(self.type_name, kind=btf.Struct)
        except BPFError as e:
            raise _compile_error(str(e), filename, class_line) from None
        except (OSError, KeyError) as e:
            raise _compile_error(f"struct_ops {self.type_name!r}: {e}", filename,
                                 class_line) from None
        functions = [m.name for m in t.members if m.is_function]
        programs: dict[str, StructOpsProgram] = {}
        fields: dict[str, int | str | bytes] = {}
        if self._ops_name is not None:
            fields["name"] = self._ops_name
        for attr, value in vars(self.cls).items():
            if attr.startswith("_"):
                continue
            line = lines_at.get(attr, class_line)
            fn = value.__func__ if isinstance(value, staticmethod) else value
            try:
                m = t.member(attr)
            except ValueError:
                what = functions if inspect.isfunction(fn) else \
                    [x.name for x in t.members if not x.is_function]
                close = difflib.get_close_matches(attr, what, n=3, cutoff=0.6)
                hint = f"; close: {', '.join(close)}" if close else \
                    f" ({'function' if inspect.isfunction(fn) else 'data'} members: " \
                    f"{', '.join(what)})"
                raise _compile_error(f"struct {self.type_name} has no member {attr!r}{hint}",
                                     filename, line) from None
            if inspect.isfunction(fn):
                if not m.is_function:
                    raise _compile_error(f"{self.type_name}.{attr} is a data member: set it "
                                         f"with {attr} = <value>, not a method", filename,
                                         line)
                ptr = spec.resolve(st.members[m.index].type)
                assert isinstance(ptr, btf.Pointer)
                proto = spec.resolve(ptr.target)
                assert isinstance(proto, btf.FuncProto)
                programs[attr] = self._program(fn, attr, m.index, proto, filename, line)
            else:
                if m.is_function:
                    raise _compile_error(f"{self.type_name}.{attr} is a function pointer: "
                                         "define it as a method", filename, line)
                if attr == "name" and self._ops_name is not None:
                    raise _compile_error(f"{self.name}: name is given both to the decorator "
                                         "and in the class", filename, line)
                self._check_value(m, attr, value, filename, line)
                fields[attr] = value
        if not programs:
            raise _compile_error(f"{self.name} implements no member of struct "
                                 f"{self.type_name} (function members: {', '.join(functions)})",
                                 filename, class_line)
        self._fields = fields
        self._programs = programs
        return programs

    def _check_value(self, m: Any, attr: str, value: object, filename: str,
                     line: int) -> None:
        where = f"{self.type_name}.{attr}"
        if isinstance(value, (str, bytes)):
            raw = value.encode() if isinstance(value, str) else value
            if not m.is_char_array:
                raise _compile_error(f"{where} is not a char array", filename, line)
            if len(raw) >= m.size or b"\0" in raw:
                raise _compile_error(f"{where} holds at most {m.size - 1} bytes, no NUL",
                                     filename, line)
        elif isinstance(value, int) and not isinstance(value, bool):
            if m.size not in (1, 2, 4, 8) or m.is_char_array:
                raise _compile_error(f"{where} ({m.size} bytes) is not an integer", filename,
                                     line)
            if not -(1 << (8 * m.size - 1)) <= value < 1 << (8 * m.size):
                raise _compile_error(f"{where}: {value} does not fit in {m.size} bytes",
                                     filename, line)
        else:
            raise _compile_error(f"{where}: a data member is set to an int, str or bytes, "
                                 f"not {type(value).__name__}", filename, line)

    def _program(self, fn: Callable[..., Any], member: str, index: int,
                 proto: btf.FuncProto, filename: str, line: int) -> StructOpsProgram:
        try:
            lines, first = inspect.getsourcelines(fn)
            fdef = ast.parse(textwrap.dedent("".join(lines))).body[0]
        except (OSError, TypeError, SyntaxError) as e:
            raise _compile_error(f"cannot read the source of {fn.__qualname__}: {e}",
                                 filename, line) from None
        if not isinstance(fdef, ast.FunctionDef):
            raise _compile_error(f"{fn.__qualname__} is not a plain function", filename, line)
        shift = first - 1
        args = fdef.args
        if args.posonlyargs or args.vararg or args.kwonlyargs or args.kwarg or args.defaults:
            raise _compile_error("only plain positional parameters are supported", filename,
                                 line)
        params = list(proto.params)
        sig = f"{member}({', '.join(_ctype(p.type) for p in params)})"
        if len(args.args) != len(params):
            raise _compile_error(f"{self.type_name}.{sig} takes {len(params)} argument(s); "
                                 f"{fn.__name__} has {len(args.args)}", filename, line)
        if len(params) > _MAX_ARGS:
            raise _compile_error(f"{sig}: BPF reaches {_MAX_ARGS} arguments", filename, line)
        ret = proto.return_type if proto.return_type_id else None
        if fdef.returns is not None:
            void = isinstance(fdef.returns, ast.Constant) and fdef.returns.value is None
            if void != (ret is None):
                want = "None" if ret is None else _ctype(ret)
                raise _compile_error(f"{self.type_name}.{member} returns {want}", filename,
                                     fdef.returns.lineno + shift)
        g = dict(fn.__globals__)
        if fn.__closure__:
            for n, cell in zip(fn.__code__.co_freevars, fn.__closure__, strict=True):
                with contextlib.suppress(ValueError):
                    g[n] = cell.cell_contents
        out: list[_Param] = []
        for k, (a, p) in enumerate(zip(args.args, params, strict=True)):
            at = a.lineno + shift
            r = p.type.spec.resolve(p.type)
            ann: Any = None
            if a.annotation is not None:
                try:
                    ann = eval(compile(ast.Expression(a.annotation), filename, "eval"), g)
                except Exception as e:  # any failure is the annotation's
                    raise _compile_error(f"cannot evaluate the annotation of {a.arg}: {e}",
                                         filename, at) from None
            is_int_ann = ann is int or ann is bool or (
                isinstance(ann, type) and issubclass(ann, IntType) and ann is not IntType)
            what = f"argument {k} of {self.type_name}.{member} ({a.arg}) is a {_ctype(p.type)}"
            it = _int_of(r)
            comp = _composite_of(r.target) if isinstance(r, btf.Pointer) else None
            if it is not None:
                if a.annotation is not None and not is_int_ann:
                    raise _compile_error(f"{what}: annotate it with an integer type or not "
                                         "at all", filename, at)
                out.append(_Param(a, Field(8 * k, it[0], int_type(it[0], it[1])), None,
                                  a.annotation))
            elif comp is not None:
                kt = KType(comp, "btf")
                if isinstance(ann, _Cast):
                    try:
                        kt = KType(kernel_type(ann.name), "btf")
                    except KeyError:
                        raise _compile_error(f"the kernel's BTF has no struct or union "
                                             f"{ann.name!r}", filename, at) from None
                elif a.annotation is not None:
                    raise _compile_error(f"{what}: annotate it with bpf.kernel.<struct> "
                                         "or not at all", filename, at)
                out.append(_Param(a, Field(8 * k, 8, u64), kt, None))
            elif isinstance(r, btf.Pointer):
                if a.annotation is not None and ann is not u64:
                    raise _compile_error(f"{what}: it reads as an address (u64)", filename, at)
                out.append(_Param(a, Field(8 * k, 8, u64), None, None))
            else:
                raise _compile_error(f"{what}: not supported as a program argument",
                                     filename, at)
        return StructOpsProgram(fn, self, member, index, out)

    # -- public view ------------------------------------------------------------------------
    @property
    def programs(self) -> dict[str, StructOpsProgram]:
        """Member name -> the program compiled for it (resolved against kernel BTF)."""
        return dict(self._resolve())

    @property
    def fields(self) -> dict[str, int | str | bytes]:
        """Data member name -> the value the table gets."""
        self._resolve()
        return dict(self._fields)

    def asm(self) -> str:
        """The listings of every member's program."""
        return "\n".join(f"; {self.type_name}.{m}\n{p.asm()}"
                         for m, p in self._resolve().items())

    def create(self, programs: Mapping[str, Program]) -> StructOps:
        """Build the table from loaded programs (keyed by program name, as
        :class:`ebpf.bpf.Loaded` has them); done by :func:`ebpf.bpf.load`."""
        from ..link.struct_ops import StructOps

        progs = {m: programs[p.name] for m, p in self._resolve().items()}
        return StructOps.create(self.type_name, progs, fields=self._fields, link=self.link,
                                map_name=self.name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise BPFError(f"{self.name} is a struct_ops table: load it with ebpf.bpf.load")

    def __repr__(self) -> str:
        return f"<bpf struct_ops {self.type_name} {self.name}>"


def store_member(c: _FunctionCompiler, base: V, target: ast.Attribute, value: ast.expr,
                 op: str | None = None, node: ast.AST | None = None) -> None:
    """``p.field = value`` (or ``p.field <op>= value``) through a kernel BTF pointer: a
    store of the field's size, skipped when ``p`` is NULL. Only struct_ops programs write
    kernel memory, and only the fields their struct_ops type allows (``tcp_sock.snd_cwnd``,
    ``snd_ssthresh``...: the verifier's ``btf_struct_access`` of the type says which, at the
    Python line)."""
    from . import _kstruct
    from ._compiler import V, _Err

    kt: KType = base.kt
    what = ast.unparse(target)

    def fail(at: ast.AST, msg: str) -> Exception:
        c.release(base)
        return _Err(at, msg)

    if not isinstance(c.decl, StructOpsProgram):
        raise fail(target, f"{what}: kernel memory is written only by @bpf.struct_ops "
                           "programs (reads are fine)")
    if kt.elem is not None or kt.comp is None:
        raise fail(target, f"{ast.unparse(target.value)} is an array: it has no fields")
    if kt.mode != "btf":
        raise fail(target, f"{what}: writes need a BTF pointer (a callback argument), not "
                           "an address")
    try:
        f = resolve_field(kt.comp, target.attr)
    except KeyError as e:
        raise fail(target, str(e.args[0])) from None
    except BPFError as e:
        raise fail(target, str(e)) from None
    if f.kind != "int" or f.bits or f.ty is None:
        raise fail(target, f"{what}: only whole integer fields are written (this is a "
                           f"{'bitfield' if f.bits else f.kind})")
    assert base.reg is not None
    at = node if node is not None else value
    if op is None:
        v = c.expr(value)
        if not v.is_int:
            c.release(v)
            raise fail(value, f"{what} is an integer field")
        r = c.to_reg(v, f.ty, value)
    else:
        cur = c.temp(at)
        c.emit(asm.mov(cur, base.reg))
        old = _kstruct.member(c, V(ty=u64, reg=cur, kt=kt), target)
        right = c.expr(value)
        r = c.to_reg(c.binop(op, old, right, at), f.ty, at)
    skip = c.label("kstore")
    c.emit(asm.jeq(base.reg, 0, skip), asm.store(_SIZE[f.size], base.reg, kt.offset + f.offset, r))
    c.place(skip)
    c.release(r)
    c.release(base)


def struct_ops(type_name: str, *, name: str | None = None, link: bool | None = None
               ) -> Callable[[type], StructOpsDecl]:
    """Declare a class as an implementation of kernel ops struct ``type_name`` (see the
    module docs): methods are the function-pointer members, class attributes the data
    members. ``name`` sets the struct's ``name`` member (``tcp_congestion_ops`` needs a
    unique one, at most 15 bytes). ``link``: ``None`` registers through a bpf_link where the
    kernel has struct_ops links (6.4) and by a map update before; ``False`` always by the
    update (``attach_struct_ops(..., method="update")``); ``True`` needs links. Linux 5.6."""
    if not isinstance(type_name, str) or not type_name.isidentifier():
        raise BPFError(f"struct_ops: expected a struct name like 'tcp_congestion_ops', not "
                       f"{type_name!r}")
    if name is not None and not isinstance(name, str):
        raise BPFError(f"struct_ops: name is a str, not {type(name).__name__}")
    if link not in (None, True, False):
        raise BPFError("struct_ops: link is None, True or False")

    def deco(cls: type) -> StructOpsDecl:
        if not isinstance(cls, type):
            raise BPFError(f"@bpf.struct_ops decorates a class, not {cls!r}")
        return StructOpsDecl(cls, type_name, name, link)

    return deco
