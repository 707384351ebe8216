"""``bpf.kfunc.<name>(...)``: kernel functions exported to BPF (kfuncs), typed from the
running kernel's BTF.

A kfunc is a ``FUNC`` in vmlinux BTF; kernels built with pahole 1.26+ (Linux 6.9+) tag each
with ``DECL_TAG "bpf_kfunc"``, and when the BTF has such tags only tagged functions are
accepted. The prototype types the call: integer (and enum) parameters take integers,
converted to the C type; pointers to a struct take a kernel pointer of that struct (a
kfunc's result, ``ctx`` arguments of tracing programs, ``bpf.get_current_task_btf()``); a
wrong count or kind is a compile error at the call. The call is ``BPF_PSEUDO_KFUNC_CALL``
with the BTF id of the function in the loading kernel (programs are compiled where they are
loaded). Whether the program type may call it (the kernel's kfunc id sets), its flags
(``KF_ACQUIRE``/``KF_RELEASE`` pairs, ``KF_RET_NULL``) and argument ownership are checked by
the verifier, whose message is reported at the Python line.
"""

from __future__ import annotations

import ast
import functools
from typing import TYPE_CHECKING, Any

from .. import asm, btf
from ..asm import R0, Register
from ..errors import BPFError
from ._kstruct import KType, _composite_of, _int_of
from .types import IntType, int_type, u64

if TYPE_CHECKING:
    from ._compiler import V, _FunctionCompiler

__all__ = ["kfunc"]


@functools.lru_cache(maxsize=4)
def _tagged(spec: btf.Spec) -> frozenset[int]:
    """Ids of the FUNCs tagged ``bpf_kfunc`` in ``spec``."""
    return frozenset(t.type_id for t in spec if isinstance(t, btf.DeclTag)
                     and t.name == "bpf_kfunc" and t.component_idx == -1)


def _param_kind(t: btf.Type) -> type[IntType] | btf.Composite | str:
    """An integer type, the struct a pointer parameter points to, or a description of a
    type this compiler cannot pass yet."""
    r = t.spec.resolve(t)
    got = _int_of(r)
    if got is not None:
        return int_type(got[0], got[1])
    if isinstance(r, btf.Pointer):
        comp = _composite_of(r.target)
        if comp is not None:
            return comp
        return "a pointer to a non-struct type"
    return f"a {type(r).__name__.lower()}"


def _what(k: type[IntType] | btf.Composite | str) -> str:
    if isinstance(k, str):
        return k
    if isinstance(k, btf.Composite):
        return f"{'union' if isinstance(k, btf.Union) else 'struct'} {k.name} *"
    return k.__name__


class _Kfunc:
    """``bpf.kfunc.<name>``: one kernel function, resolved when a program calling it is
    compiled."""

    _bpf_kcall = True

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<bpf kfunc {self.name}>"

    def __call__(self, *args: Any) -> Any:
        raise BPFError(f"bpf.kfunc.{self.name} exists only inside a compiled program")

    def resolve(self, node: ast.AST) -> tuple[btf.Func, list[tuple[str, Any]], Any]:
        from ._compiler import _Err

        try:
            spec = btf.load_kernel()
        except (OSError, BPFError) as e:
            raise _Err(node, f"kfuncs need the kernel's BTF: {e}") from None
        try:
            fn = spec.find(self.name, kind=btf.Func)
        except (KeyError, BPFError):
            raise _Err(node, f"the kernel's BTF has no function {self.name!r}") from None
        assert isinstance(fn, btf.Func)
        tagged = _tagged(spec)
        if tagged and fn.id not in tagged:
            raise _Err(node, f"{self.name} is not a kfunc (no bpf_kfunc tag in the kernel's "
                             "BTF)")
        proto = fn.proto
        params = [(p.name or f"arg{k}", _param_kind(p.type))
                  for k, p in enumerate(proto.params)]
        if proto.variadic:
            raise _Err(node, f"{self.name} is variadic: not supported")
        ret: Any = None
        if proto.return_type_id:
            ret = _param_kind(proto.return_type)
            if isinstance(ret, str):
                raise _Err(node, f"{self.name} returns {ret}: not supported yet")
        return fn, params, ret

    def compile(self, c: _FunctionCompiler, node: ast.Call) -> V:
        from ._compiler import V, _Err

        fn, params, ret = self.resolve(node)
        if node.keywords:
            raise _Err(node, f"{self.name}() takes positional arguments only")
        sig = ", ".join(f"{_what(k)} {n}" for n, k in params)
        if len(node.args) != len(params):
            raise _Err(node, f"kfunc {self.name}({sig}) takes {len(params)} argument(s), "
                             f"got {len(node.args)}")
        if len(params) > 5:
            raise _Err(node, f"kfunc {self.name} takes more than 5 arguments")
        regs: list[Register] = []
        for a, (pname, kind) in zip(node.args, params, strict=True):
            if isinstance(kind, str):
                raise _Err(a, f"kfunc {self.name}: parameter {pname} is {kind}; not "
                              "supported yet")
            v = c.expr(a)
            if isinstance(kind, btf.Composite):
                kt: KType | None = v.kt
                if kt is None or kt.place or kt.comp is None or kt.comp.name != kind.name \
                        or v.reg is None:
                    have = kt.what if kt is not None else "an integer" if v.is_int else \
                        "a pointer to a BPF-side struct"
                    c.release(v)
                    raise _Err(a, f"kfunc {self.name}: parameter {pname} is a "
                                  f"{_what(kind)}, got {have}")
                if kt.mode != "btf":
                    c.release(v)
                    raise _Err(a, f"kfunc {self.name}: {pname} needs a BTF pointer (from "
                                  "the ctx, a kfunc or get_current_task_btf), not an address "
                                  "read with core_read")
                regs.append(v.reg)
            else:
                if not v.is_int or v.kt is not None:
                    c.release(v)
                    raise _Err(a, f"kfunc {self.name}: parameter {pname} is an integer "
                                  f"({kind.__name__})")
                regs.append(c.to_reg(v, kind, a))
        for k, r in enumerate(regs):
            c.emit(asm.mov(Register(k + 1), r))
            c.release(r)
        c.emit(asm.kfunc_call(fn.id))
        if ret is None:
            return V(lit=0)
        r = c.temp(node)
        c.emit(asm.mov(r, R0))
        if isinstance(ret, btf.Composite):
            return V(ty=u64, reg=r, kt=KType(ret, "btf"))
        c.normalize(r, ret)
        return V(ty=ret, reg=r)


class _Kfuncs:
    """``bpf.kfunc.<name>(...)``: call kernel function ``<name>`` (see the module docs)."""

    def __getattr__(self, name: str) -> _Kfunc:
        if name.startswith("_"):
            raise AttributeError(name)
        return _Kfunc(name)

    def __repr__(self) -> str:
        return "<bpf.kfunc: kernel functions by BTF name>"


kfunc: Any = _Kfuncs()
