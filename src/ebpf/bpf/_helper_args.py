"""The arguments of a generic helper call, ``bpf.helper.<name>(...)``.

The helper's C prototype (``ebpf.asm.Helper(...).signature``) types each parameter: an
integer one takes an integer, converted to the C type; a pointer one (``void *buf``,
``struct bpf_pidns_info *nsdata``, ``struct bpf_map *map``) takes what a C program would
pass there:

* a struct pointer that is not ``None`` (a stack struct ``r = T()``, a map value from
  ``m.lookup(k)``, a ring-buffer record, a checked packet header): its address;
* ``record.field`` of a ``bytes_[N]`` (or nested struct) field, or a stack array
  ``a = bpf.array(u8, 16)``: the address of those bytes;
* a map (``events``), the program's ``ctx``;
* ``None`` (NULL), or an integer: an address (``const void *unsafe_ptr`` of
  ``probe_read_kernel`` is one);
* a ``str``/``bytes`` literal: a NUL-terminated copy in ``.rodata``, frozen and read-only to
  programs, which ``const char *`` arguments the verifier wants constant
  (``ARG_PTR_TO_CONST_STR``: ``bpf_snprintf``'s format, ``bpf_strncmp``'s second string)
  need; an implied size of it counts the NUL.

The verifier has the last word on each (its message comes back at the Python line).

**Sizes.** A pointer parameter followed by an integer one named like a size (``size``,
``len``, ``*_size``, ``*_len``, ``*_sz``, ``size_of_*``) is a (buffer, size) pair; a call may
leave out every such size at once, and each is then the size of the object passed for its
buffer (a struct's, a field's or an array's): ``get_ns_current_pid_tgid(dev, ino, info)``
for ``(dev, ino, info, 8)``. Giving all the arguments always works.
"""

from __future__ import annotations

import ast
import re
from typing import TYPE_CHECKING

from .. import asm
from ..asm import R10, Register
from ..errors import BPFError
from ._decl import MapDecl
from .types import IntType, Struct, _Bytes, u64

if TYPE_CHECKING:
    from ._compiler import _FunctionCompiler

#: ``(name, C integer type)`` of an integer parameter, ``(name, None)`` of a pointer one
Params = list[tuple[str, type[IntType] | None]]

_SIZE_NAME = re.compile(r"(?:\w*_)?(?:size|sz)|\w*len|size_of_\w+")


def _err(node: ast.AST | None, msg: str) -> Exception:
    from ._compiler import _Err

    return _Err(node, msg)


def size_pairs(params: Params) -> list[int]:
    """Indexes of the pointer parameters whose next parameter is their size."""
    return [i for i in range(len(params) - 1)
            if params[i][1] is None and params[i + 1][1] is not None
            and _SIZE_NAME.fullmatch(params[i + 1][0])]


def _forms(name: str, params: Params, pairs: list[int]) -> str:
    out = f"{name} takes {len(params)} argument(s) ({', '.join(p for p, _ in params) or 'none'})"
    if pairs:
        skip = {i + 1 for i in pairs}
        short = [p for k, (p, _) in enumerate(params) if k not in skip]
        out += (f", or {len(short)} with the size of {', '.join(params[i][0] for i in pairs)} "
                f"implied ({', '.join(short)})")
    return out


def load_arguments(c: _FunctionCompiler, node: ast.Call, name: str, params: Params) -> None:
    """Evaluate ``node``'s arguments for helper ``name`` and put them in r1..r5."""
    pairs = size_pairs(params)
    if len(node.args) == len(params):
        implied: set[int] = set()
    elif pairs and len(node.args) == len(params) - len(pairs):
        implied = {i + 1 for i in pairs}
    else:
        raise _err(node, f"{_forms(name, params, pairs)}, got {len(node.args)}")
    values: list[Register | int] = []
    sizes: dict[int, tuple[int | None, ast.expr]] = {}
    args = iter(node.args)
    for k, (pname, pt) in enumerate(params):
        if k in implied:
            obj_size, obj = sizes[k - 1]
            if obj_size is None:
                raise _err(obj, f"{name}: the size of {params[k - 1][0]} ({pname}) is known "
                                "only for a struct, a bytes_[N] field or a stack array; "
                                f"pass it ({_forms(name, params, [])})")
            values.append(obj_size)
            continue
        a = next(args)
        if pt is None:
            reg, size = pointer(c, a, name, pname)
            values.append(reg)
            sizes[k] = (size, a)
            continue
        if isinstance(a, (ast.Name, ast.Attribute)) and c.is_static(a) and \
                isinstance(c.static(a), MapDecl):
            raise _err(a, f"{name}: argument {pname} is an integer, not a map")
        e = c.expr(a)
        if not e.is_int:
            c.release(e)
            raise _err(a, f"{name}: argument {pname} is an integer")
        values.append(c.lit_for(e.lit, pt, a) if e.lit is not None else c.to_reg(e, pt, a))
    for k, v in enumerate(values):  # registers first: constants need no temporary
        if isinstance(v, Register):
            c.emit(asm.mov(Register(k + 1), v))
            c.release(v)
    for k, v in enumerate(values):
        if not isinstance(v, Register):
            c.emit_const(Register(k + 1), v)


def pointer(c: _FunctionCompiler, a: ast.expr, name: str, pname: str
            ) -> tuple[Register | int, int | None]:
    """A pointer argument: a temporary holding it (or a constant address) and the size
    of the object it points to, when that is known."""
    if isinstance(a, ast.Name) and c.ctx_name and a.id == c.ctx_name:
        r = c.temp(a)
        c.emit(asm.load(asm.DW, r, R10, c.ctx_slot))
        return r, None
    if isinstance(a, ast.Constant) and isinstance(a.value, (str, bytes)):
        text = a.value.encode() if isinstance(a.value, str) else a.value
        return c.string_addr(text, a), len(text) + 1   # a size counts the NUL
    if isinstance(a, ast.Name) and a.id in c.locals and c.locals[a.id].elem is not None:
        loc = c.locals[a.id]
        if not loc.defined:
            raise _err(a, f"{a.id} may be used before it is assigned")
        assert loc.obj is not None and loc.elem is not None
        r = c.temp(a)
        c.emit(asm.mov(r, R10), asm.add(r, loc.obj))
        return r, loc.count * loc.elem.size
    if isinstance(a, (ast.Name, ast.Attribute)) and c.is_static(a) and \
            isinstance(c.static(a), MapDecl):
        map_name, _ = c.map_of(a)
        r = c.temp(a)
        c.emit(asm.load_map(r, map_name))
        return r, None
    if isinstance(a, ast.Attribute) and isinstance(a.value, ast.Name) and \
            (rec := c.locals.get(a.value.id)) is not None and rec.ptr is not None:
        try:
            fld = rec.ptr.struct.field(a.attr)
        except BPFError:
            fld = None  # the general path below reports it
        if fld is not None and (isinstance(fld.type, _Bytes) or (
                isinstance(fld.type, type) and issubclass(fld.type, Struct))):
            base, fld = c.field_ref(a)
            assert base.reg is not None
            if fld.offset:
                c.emit(asm.add(base.reg, fld.offset))
            return base.reg, fld.size
    v = c.expr(a, allow_nullable=True)
    if v.none:
        return 0, None
    if v.ptr is not None:
        c.not_none(v, a)
        assert v.reg is not None
        return v.reg, v.ptr.struct.size
    if v.kt is not None and not v.kt.place:  # a BTF-typed kernel pointer
        assert v.reg is not None
        return v.reg, None
    if v.is_int and v.kt is None:  # an address
        return (v.lit & ((1 << 64) - 1)) if v.lit is not None else c.to_reg(v, u64, a), None
    c.release(v)
    raise _err(a, f"{name}: argument {pname} is a pointer: pass a struct pointer, a "
                  "bytes_[N] field, a stack array, a map, ctx, None or an address")
