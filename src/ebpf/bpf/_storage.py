"""Local-storage maps in programs: ``store.get(owner, create=...)`` and
``store.delete(owner)`` of :class:`ebpf.bpf.TaskStorage` and its siblings.

The owner is a kernel object the program already has a pointer to (a BTF task, cgroup or
inode pointer; for sockets also ``ctx.sk``); the helpers are ``bpf_<kind>_storage_get`` /
``_delete``, whose value pointer the verifier knows as a nullable map value.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING, Any

from .. import asm
from ..asm import R0, R1, R2, R3, R4
from ._decl import LocalStorage, SkStorage
from .types import Struct, i64

if TYPE_CHECKING:
    from ._compiler import V, _FunctionCompiler

#: BPF_LOCAL_STORAGE_GET_F_CREATE
_F_CREATE = 1


def _err(node: ast.AST | None, msg: str) -> Exception:
    from ._compiler import _Err

    return _Err(node, msg)


def _owner(c: _FunctionCompiler, m: LocalStorage, name: str, a: ast.expr) -> Any:
    """A register holding the owner pointer ``a`` (released by the caller)."""
    v = c.expr(a, allow_nullable=True)
    kt = v.kt
    ok = kt is not None and not kt.place and kt.comp is not None and \
        kt.comp.name in m.owners and kt.mode == "btf"
    if isinstance(m, SkStorage) and v.ptr is not None and v.ptr.region == "sock":
        ok = True   # ctx.sk of the cgroup socket kinds: a struct bpf_sock * the kernel takes
    if not ok or v.reg is None:
        have = kt.what if kt is not None else "an integer" if v.is_int else "another pointer"
        c.release(v)
        want = " or ".join(f"struct {o} *" for o in m.owners)
        raise _err(a, f"{name} keeps a value per {m.owners[0]}: pass a BTF {want} (from "
                      f"the ctx, bpf.get_current_task_btf() or a kfunc), got {have}")
    return v.reg


def method(c: _FunctionCompiler, node: ast.Call, name: str, m: LocalStorage,
           meth: str) -> V:
    """``name.get(owner, create=False)`` or ``name.delete(owner)``."""
    from ._compiler import Ptr, V, _cell

    if meth not in ("get", "delete"):
        raise _err(node, f"{name} is a local storage: it has get(owner, create=False) and "
                         f"delete(owner), not {meth}")
    if len(node.args) != 1:
        raise _err(node, f"{name}.{meth}(owner) takes the owner object")
    create = False
    for kw in node.keywords:
        if meth != "get" or kw.arg != "create" or not isinstance(kw.value, ast.Constant) \
                or not isinstance(kw.value.value, bool):
            raise _err(kw.value, f"{name}.get takes create=True or create=False (a literal)")
        create = kw.value.value
    r = _owner(c, m, name, node.args[0])
    # A NULL owner (a BTF pointer read through a NULL link) never reaches the helper: older
    # kernels type some owners ARG_PTR_TO_BTF_ID, not _OR_NULL (inode storage on 6.1). The
    # result is then None, or -ENOENT for delete.
    out = c.temp(node)
    done = c.label("noowner")
    c.emit(asm.mov(out, -2 if meth == "delete" else 0), asm.jeq(r, 0, done),
           asm.mov(R2, r), asm.load_map(R1, name))
    c.release(r)
    if meth == "delete":
        c.emit(asm.call(m.delete_helper), asm.mov(out, R0))
        c.place(done)
        return V(ty=i64, reg=out)
    c.emit(asm.mov(R3, 0), asm.mov(R4, _F_CREATE if create else 0), asm.call(m.get_helper),
           asm.mov(out, R0))
    c.place(done)
    st = m.value if isinstance(m.value, type) and issubclass(m.value, Struct) else \
        _cell(m.value)  # type: ignore[arg-type]
    return V(reg=out, ptr=Ptr(st, "map"), nullable=True)
