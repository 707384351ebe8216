"""Kernel structs in compiled programs: field chains through pointers typed by kernel BTF.

Two ways of reading kernel memory, chosen by where the pointer comes from:

* **BTF pointers** (``"btf"``): the verifier knows them as ``PTR_TO_BTF_ID`` - the pointer
  arguments of ``tp_btf``/``fentry``/``fexit``/``lsm`` programs, ``bpf.get_current_task_btf()``
  (Linux 5.11) and every pointer field loaded through one. ``p.field`` is a plain load; the
  kernel marks those loads fault-safe (a bad address reads 0), and each pointer is compared
  with NULL before it is dereferenced (a NULL link reads 0 for the whole chain; the verifier
  needs that check for pointers it marks maybe-NULL, such as ``__rcu`` ones on newer kernels).
* **Untyped pointers** (``"probe"``): ``bpf.get_current_task()``, ``bpf.kernel.<struct>(x)``
  casts of integers (kprobe and raw tracepoint arguments). The verifier sees an integer, so
  ``bpf.core_read(p.a.b)`` reads each link with ``bpf_probe_read_kernel`` into a stack slot
  (a failed read gives 0, so again a NULL link reads 0). ``core_read`` also works on BTF
  pointers, as ``BPF_CORE_READ`` does in C.

Offsets, sizes, bitfield positions and signedness come from the running kernel's BTF when the
program is compiled - and compilation happens on the machine that loads it, so they are what
a CO-RE relocation would compute there. Byte arrays (``task.comm``) are assigned to
``bytes_[N]`` fields of a ``bpf.Struct``; integers narrower than 64 bits load with their size
and sign; bitfields are shifted out of the smallest load that covers them.
"""

from __future__ import annotations

import ast
import difflib
import keyword
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from .. import asm, btf
from ..asm import R0, R1, R2, R3, R10, Register
from ..asm.helpers import check_helper_allowed
from ..errors import AssemblerError, BPFError
from .types import IntType, int_type, u8, u64

if TYPE_CHECKING:
    from ._compiler import V, _FunctionCompiler

__all__ = ["KType", "core_read", "get_current_task", "get_current_task_btf", "kernel"]

_SIZE = {1: asm.B, 2: asm.H, 4: asm.W, 8: asm.DW}


@dataclass(frozen=True)
class KType:
    """What a value with a kernel type is: a pointer to ``comp`` (``place`` False; the
    value is the pointer, an integer), or a struct/union/array *inside* the object the
    register points to, ``offset`` bytes in (``place`` True; not a value by itself)."""

    comp: btf.Composite | None
    mode: str  # "btf": direct loads (PTR_TO_BTF_ID); "probe": bpf_probe_read_kernel
    offset: int = 0
    place: bool = False
    #: for an array place: element type and count (0: a flexible array)
    elem: btf.Type | None = None
    count: int = 0

    @property
    def what(self) -> str:
        if self.elem is not None:
            return "an array"
        assert self.comp is not None
        kind = "union" if isinstance(self.comp, btf.Union) else "struct"
        return f"{kind} {self.comp.name or '(anonymous)'}" + ("" if self.place else " *")


def _err(node: ast.AST | None, msg: str) -> Exception:
    from ._compiler import _Err

    return _Err(node, msg)


def _V(**kw: Any) -> V:
    from ._compiler import V

    return V(**kw)


# -- BTF lookups ------------------------------------------------------------------------------
def _spec() -> btf.Spec:
    return btf.load_kernel()


def _composite_of(t: btf.Type) -> btf.Composite | None:
    """The struct/union a (pointer target) type names, through typedefs, qualifiers and
    forward declarations."""
    t = t.spec.resolve(t)
    if isinstance(t, btf.Composite):
        return t
    if isinstance(t, btf.Fwd) and t.name:
        kind: Any = btf.Union if getattr(t, "is_union", False) else btf.Struct
        try:
            found = t.spec.find(t.name, kind=kind)
        except (KeyError, BPFError):
            return None
        return found if isinstance(found, btf.Composite) else None
    return None


def kernel_type(name: str) -> btf.Composite:
    """The kernel struct or union called ``name`` (or a typedef of one)."""
    spec = _spec()
    for kind in (btf.Struct, btf.Union, btf.Typedef):
        try:
            t: btf.Type = spec.find(name, kind=kind)
        except (KeyError, BPFError):
            continue
        comp = _composite_of(t)
        if comp is not None:
            return comp
    raise KeyError(name)


def pointer_target(t: btf.Type) -> btf.Composite | None:
    """The struct/union ``t`` points to, if ``t`` is such a pointer."""
    t = t.spec.resolve(t)
    if isinstance(t, btf.Pointer):
        return _composite_of(t.target)
    return None


def _member_names(comp: btf.Composite) -> list[str]:
    """Every name ``comp.member`` finds, anonymous members flattened."""
    out: list[str] = []
    todo: list[btf.Composite] = [comp]
    seen: set[int] = set()
    while todo:
        c = todo.pop()
        if c.id in seen:
            continue
        seen.add(c.id)
        for m in c.members:
            if m.name:
                out.append(m.name)
            else:
                inner = _composite_of(m.type)
                if inner is not None:
                    todo.append(inner)
    return out


@dataclass(frozen=True)
class Field:
    """A member resolved for code generation. ``kind``: ``int`` (``ty``; ``bits`` > 0 for a
    bitfield at ``bit`` bits from ``offset``, read with a ``size``-byte load), ``ptr`` (to
    ``target``, or an integer when ``target`` is None), ``comp`` (an embedded struct/union)
    or ``array`` (``elem`` x ``count``, ``size`` bytes)."""

    name: str
    kind: str
    offset: int
    size: int
    ty: type[IntType] | None = None
    bit: int = 0
    bits: int = 0
    target: btf.Composite | None = None
    elem: btf.Type | None = None
    count: int = 0


def _int_of(t: btf.Type) -> tuple[int, bool] | None:
    if isinstance(t, btf.Int):
        if t.size not in (1, 2, 4, 8):
            return None
        return t.size, t.signed and not t.is_bool
    if isinstance(t, (btf.Enum, btf.Enum64)):
        return (t.size, bool(t.signed)) if t.size in (1, 2, 4, 8) else None
    return None


def resolve_field(comp: btf.Composite, name: str) -> Field:
    """Member ``name`` of ``comp`` (anonymous structs/unions searched) as a :class:`Field`;
    a Python keyword takes a trailing ``_`` (``from_``);
    :class:`KeyError` (with close names in its message) when there is none, :class:`BPFError`
    for a member type programs cannot read (floats, 128-bit integers)."""
    if name.endswith("_") and keyword.iskeyword(name[:-1]):
        name = name[:-1]  # p.from_ for a member called from (a Python keyword)
    try:
        m = comp.member(name)
    except KeyError:
        close = difflib.get_close_matches(name, _member_names(comp), n=5, cutoff=0.6)
        hint = f"; close: {', '.join(close)}" if close else ""
        raise KeyError(f"{_label(comp)} has no member {name!r}{hint}") from None
    spec = comp.spec
    t = spec.resolve(m.type)
    bits = m.bitfield_size
    bitpos = m.offset
    if not bits and isinstance(t, btf.Int) and (t.bits != t.size * 8 or t.bit_offset):
        bits, bitpos = t.bits, m.offset + t.bit_offset  # bitfield without kind_flag
    it = _int_of(t)
    if bits:
        if it is None:
            raise BPFError(f"{_label(comp)}.{name} is a bitfield of {type(t).__name__}")
        start = bitpos // 8
        need = (bitpos + bits + 7) // 8 - start
        size = next(n for n in (1, 2, 4, 8) if n >= need) if need <= 8 else 0
        if not size:
            raise BPFError(f"{_label(comp)}.{name}: a bitfield across more than 8 bytes")
        start = max(0, min(start, comp.size - size))
        return Field(name, "int", start, size, int_type(it[0], it[1]), bitpos - 8 * start,
                     bits)
    if m.offset % 8:
        raise BPFError(f"{_label(comp)}.{name} does not start on a byte")
    off = m.offset // 8
    if it is not None:
        return Field(name, "int", off, it[0], u8 if it[0] == 1 and not it[1] and
                     isinstance(t, btf.Int) and t.is_bool else int_type(*it))
    if isinstance(t, btf.Pointer):
        return Field(name, "ptr", off, 8, u64, target=_composite_of(t.target))
    if isinstance(t, btf.Composite):
        return Field(name, "comp", off, t.size, target=t)
    if isinstance(t, btf.Array):
        elem = spec.resolve(t.elem_type)
        return Field(name, "array", off, spec.sizeof(t) if t.nelems else 0, elem=elem,
                     count=t.nelems)
    raise BPFError(f"{_label(comp)}.{name} is a {type(t).__name__}: not readable from "
                   "programs")


def _label(comp: btf.Composite) -> str:
    kind = "union" if isinstance(comp, btf.Union) else "struct"
    return f"{kind} {comp.name or '(anonymous)'}"


@cache
def _ctx_args(kind: str, target: str) -> dict[int, btf.Composite]:
    from ._tracing import arg_offsets, btf_params

    params, ret = btf_params(kind, target)
    offsets = arg_offsets(params)
    out: dict[int, btf.Composite] = {}
    for off, p in zip(offsets, params, strict=False):
        comp = pointer_target(p.type)
        if comp is not None:
            out[off] = comp
    if kind == "fexit" and ret is not None:
        comp = pointer_target(ret)
        if comp is not None:
            out[offsets[-1]] = comp
    return out


@cache
def _kprobe_args(target: str) -> dict[int, btf.Composite]:
    from ..link.perf_event import pt_regs_arg_offset

    try:
        by_index = _ctx_args("fentry", target)
    except (KeyError, OSError, BPFError):
        return {}  # not in BTF (a static or inlined function): the arguments stay integers
    return {pt_regs_arg_offset(i // 8): comp for i, comp in by_index.items() if i < 40}


def ctx_arg(decl: Any, offset: int) -> KType | None:
    """The kernel type of the context slot at ``offset``: a struct/union pointer argument of a
    ``tp_btf``/``fentry``/``fexit``/``lsm`` program (a BTF pointer), or of a kprobe's function
    when vmlinux BTF has its prototype (an address for :func:`core_read`); else None."""
    kind = str(decl.section).split("/", 1)[0].removesuffix(".s")  # fentry.s: as fentry
    if decl.ctx_kind == "ptregs" and kind == "kprobe":
        comp = _kprobe_args(str(decl.attach_to)).get(offset)
        return None if comp is None else KType(comp, "probe")
    if decl.ctx_kind != "btf" or kind not in ("tp_btf", "fentry", "fexit", "fmod_ret", "lsm",
                                              "lsm_cgroup"):
        return None
    comp = _ctx_args(kind, str(decl.attach_to)).get(offset)
    return None if comp is None else KType(comp, "btf")


# -- code generation ----------------------------------------------------------------------------
def _probing(c: _FunctionCompiler) -> bool:
    return bool(getattr(c, "_kstruct_probe", False))


def _scratch(c: _FunctionCompiler) -> int:
    slot: int | None = getattr(c, "_kstruct_scratch", None)
    if slot is None:
        slot = c.alloc(8)
        c._kstruct_scratch = slot  # type: ignore[attr-defined]
    return slot


def _address(c: _FunctionCompiler, base: Register, kt: KType, off: int) -> None:
    """r3 = base + off (base NULL: r3 = 0, so the read fails and gives 0)."""
    c.emit(asm.mov(R3, base))
    if off:
        if kt.mode == "btf":  # no arithmetic on a maybe-NULL BTF pointer
            c.emit(asm.jeq(R3, 0, skip := c.label("knull")), asm.add(R3, off))
            c.place(skip)
        else:
            c.emit(asm.add(R3, off))


def _read(c: _FunctionCompiler, r: Register, kt: KType, off: int, size: int) -> None:
    """``r`` = the ``size`` bytes at ``r + off`` (zero-extended; 0 through a NULL ``r``)."""
    if kt.mode == "btf" and not _probing(c):
        null, done = c.label("knull"), c.label("kread")
        c.emit(asm.jeq(r, 0, null), asm.load(_SIZE[size], r, r, off), asm.ja(done))
        c.place(null)
        c.emit(asm.mov(r, 0))
        c.place(done)
        return
    slot = _scratch(c)
    _address(c, r, kt, off)
    c.emit(asm.mov(R1, R10), asm.add(R1, slot), asm.mov(R2, size),
           asm.call(asm.Helper.PROBE_READ_KERNEL), asm.load(_SIZE[size], r, R10, slot))


def _need_read(c: _FunctionCompiler, kt: KType, node: ast.AST, what: str) -> None:
    if kt.mode == "probe" and not _probing(c):
        raise _err(node, f"{what}: this {kt.what} pointer is not one the verifier knows "
                         "(bpf.get_current_task(), a bpf.kernel cast, a kprobe or raw "
                         f"tracepoint argument): read it with bpf.core_read({what})")


def member(c: _FunctionCompiler, base: V, node: ast.Attribute) -> V:
    """``base.attr`` where ``base`` has a kernel type: a loaded integer or pointer, or a
    place (embedded struct/union, array) for the next step of the chain."""
    kt: KType = base.kt
    assert base.reg is not None
    if kt.elem is not None or kt.comp is None:
        c.release(base)
        raise _err(node, f"{ast.unparse(node.value)} is an array: it has no fields")
    try:
        f = resolve_field(kt.comp, node.attr)
    except KeyError as e:
        c.release(base)
        raise _err(node, str(e.args[0])) from None
    except BPFError as e:
        c.release(base)
        raise _err(node, str(e)) from None
    off = kt.offset + f.offset
    if f.kind == "comp":
        return _V(reg=base.reg, kt=KType(f.target, kt.mode, off, True))
    if f.kind == "array":
        return _V(reg=base.reg, kt=KType(None, kt.mode, off, True, f.elem, f.count))
    _need_read(c, kt, node, ast.unparse(node))
    r = base.reg
    _read(c, r, kt, off, f.size)
    if f.kind == "ptr":
        if f.target is None:
            return _V(ty=u64, reg=r)
        return _V(ty=u64, reg=r, kt=KType(f.target, kt.mode))
    assert f.ty is not None
    if f.bits:
        left = 64 - f.bit - f.bits
        if left:
            c.emit(asm.lsh(r, left))
        c.emit((asm.arsh if f.ty.signed else asm.rsh)(r, 64 - f.bits))
    else:
        c.normalize_loaded(r, f.ty)
    return _V(ty=f.ty, reg=r)


def subscript(c: _FunctionCompiler, node: ast.Subscript) -> V:
    """``a[i]`` of a kernel array of integers (``task.comm[0]``): a constant ``i`` in range
    is a direct load (BTF pointers) or one read; a variable ``i`` is read with
    ``bpf_probe_read_kernel`` at the computed address, and reads 0 when out of range (as a
    stack array's does) or through a NULL link."""
    base = c.expr(node.value)
    kt: KType | None = base.kt
    if kt is None or kt.elem is None:
        c.release(base)
        raise _err(node.value, f"{ast.unparse(node.value)} is not a map")
    assert base.reg is not None
    i = c.static_int(node.slice)
    if i is None and kt.count:
        return _variable_index(c, node, base, kt)
    if i is None or i < 0 or (kt.count and i >= kt.count):
        c.release(base)
        raise _err(node.slice, "a kernel array index is a constant in range"
                               f"{f' 0..{kt.count - 1}' if kt.count else ''}")
    it = _int_of(kt.elem)
    if it is None:
        c.release(base)
        raise _err(node, f"{ast.unparse(node.value)} holds {type(kt.elem).__name__}s: "
                         "only integer elements are read")
    _need_read(c, kt, node, ast.unparse(node))
    _read(c, base.reg, kt, kt.offset + i * it[0], it[0])
    t = int_type(*it)
    c.normalize_loaded(base.reg, t)
    return _V(ty=t, reg=base.reg)


def _variable_index(c: _FunctionCompiler, node: ast.Subscript, base: V, kt: KType) -> V:
    it = _int_of(kt.elem) if kt.elem is not None else None
    if it is None:
        c.release(base)
        raise _err(node, f"{ast.unparse(node.value)}: only integer elements are read")
    _need_read(c, kt, node, ast.unparse(node))
    size = it[0]
    v = c.expr(node.slice)
    if not v.is_int:
        c.release(v)
        c.release(base)
        raise _err(node.slice, "a kernel array index is an integer")
    idx = c.to_reg(v, u64, node.slice)
    r = base.reg
    assert r is not None
    slot = _scratch(c)
    zero, done = c.label("kidx0"), c.label("kidx")
    c.emit(asm.jge(idx, kt.count, zero), asm.jeq(r, 0, zero), asm.mov(R3, idx))
    if size & (size - 1) == 0:
        if size > 1:
            c.emit(asm.lsh(R3, size.bit_length() - 1))
    else:
        c.emit(asm.mul(R3, size))
    c.emit(asm.add(R3, r), asm.add(R3, kt.offset), asm.mov(R1, R10), asm.add(R1, slot),
           asm.mov(R2, size), asm.call(asm.Helper.PROBE_READ_KERNEL),
           asm.load(_SIZE[size], r, R10, slot), asm.ja(done))
    c.place(zero)
    c.emit(asm.mov(r, 0))
    c.place(done)
    c.release(idx)
    t = int_type(*it)
    c.normalize_loaded(r, t)
    return _V(ty=t, reg=r)


def store_bytes(c: _FunctionCompiler, dst: V, fld: Any, value: ast.expr) -> None:
    """``record.field = <kernel array>``: copy into a ``bytes_[N]`` field with
    ``bpf_probe_read_kernel`` (N bytes, or the array's size and zeroes after it; a NULL
    link leaves zeroes)."""
    v = c.expr(value)
    kt: KType | None = v.kt
    if kt is None or kt.elem is None:
        c.release(v)
        c.release(dst)
        raise _err(value, f"{fld.name} is a byte array: assign it from "
                          "bpf.get_current_comm() or a kernel array (task.comm)")
    assert v.reg is not None and dst.reg is not None
    size = int(fld.size)
    c_size = size
    if kt.count and kt.elem is not None:  # a flexible array (count 0) gives all N bytes
        c_size = min(size, kt.elem.spec.sizeof(kt.elem) * kt.count)
    _address(c, v.reg, kt, kt.offset)
    c.emit(asm.mov(R1, dst.reg), asm.add(R1, fld.offset), asm.mov(R2, c_size),
           asm.call(asm.Helper.PROBE_READ_KERNEL))
    c.zero_range(dst.reg, fld.offset + c_size, fld.offset + size)
    c.release(v)
    c.release(dst)


def check_assign(c: _FunctionCompiler, loc: Any, v: V, target: ast.Name) -> None:
    """A local that holds a kernel pointer keeps one kernel type."""
    kt: KType | None = v.kt
    if kt is not None and kt.place:
        c.release(v)
        raise _err(target, f"{target.id} = ...: this is {kt.what} inside a kernel object, "
                           "not a value: read one of its fields (or assign an array to a "
                           "bytes_ field)")
    if loc.defined and loc.kt != kt:
        c.release(v)
        have = loc.kt.what if loc.kt is not None else "an integer"
        raise _err(target, f"{target.id} already holds {have}; this is "
                           f"{kt.what if kt is not None else 'an integer'}")
    loc.kt = kt


# -- calls ---------------------------------------------------------------------------------------
class _KCall:
    """A compile-time function of ``ebpf.bpf`` handled here (duck-typed by the compiler
    through ``_bpf_kcall``)."""

    _bpf_kcall = True

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<bpf {self.name}>"

    def __call__(self, *args: Any) -> Any:
        raise BPFError(f"bpf.{self.name} exists only inside a compiled program")

    def compile(self, c: _FunctionCompiler, node: ast.Call) -> V:
        raise NotImplementedError


class _CoreRead(_KCall):
    def compile(self, c: _FunctionCompiler, node: ast.Call) -> V:
        if len(node.args) != 1 or node.keywords:
            raise _err(node, "core_read(expr) takes one field chain: "
                             "bpf.core_read(task.real_parent.tgid)")
        was = _probing(c)
        c._kstruct_probe = True  # type: ignore[attr-defined]
        try:
            v = c.expr(node.args[0])
        finally:
            c._kstruct_probe = was  # type: ignore[attr-defined]
        kt: KType | None = v.kt
        if kt is not None and kt.place and kt.elem is None:
            c.release(v)
            raise _err(node.args[0], f"{ast.unparse(node.args[0])} is {kt.what}: read "
                                     "one of its fields")
        if kt is not None and kt.place:
            return _V(reg=v.reg, kt=KType(None, "probe", kt.offset, True, kt.elem,
                                          kt.count))
        if kt is not None:  # pointers read by probe stay probe-read
            return _V(ty=v.ty, reg=v.reg, kt=KType(kt.comp, "probe"))
        return v


class _TaskHelper(_KCall):
    def __init__(self, name: str, helper: asm.Helper, mode: str) -> None:
        super().__init__(name)
        self.helper = helper
        self.mode = mode

    def compile(self, c: _FunctionCompiler, node: ast.Call) -> V:
        if node.args or node.keywords:
            raise _err(node, f"{self.name}() takes no arguments")
        try:
            check_helper_allowed(int(self.helper), c.decl.program_type)
        except AssemblerError as e:
            raise _err(node, str(e)) from None
        try:
            task = kernel_type("task_struct")
        except (KeyError, OSError, BPFError) as e:
            raise _err(node, f"no struct task_struct in the kernel's BTF: {e}") from None
        c.emit(asm.call(self.helper))
        r = c.temp(node)
        c.emit(asm.mov(r, R0))
        return _V(ty=u64, reg=r, kt=KType(task, self.mode))


class _Cast(_KCall):
    def compile(self, c: _FunctionCompiler, node: ast.Call) -> V:
        if len(node.args) != 1 or node.keywords:
            raise _err(node, f"bpf.kernel.{self.name}(address) takes one integer")
        try:
            comp = kernel_type(self.name)
        except KeyError:
            raise _err(node, f"the kernel's BTF has no struct or union {self.name!r}"
                       ) from None
        except (OSError, BPFError) as e:
            raise _err(node, f"cannot read the kernel's BTF: {e}") from None
        v = c.expr(node.args[0])
        if v.ptr is not None and not v.nullable and v.reg is not None:
            r = v.reg  # a (checked) pointer's address: a stack or map copy of a kernel object
        elif v.is_int:
            r = c.to_reg(v, u64, node.args[0])
        else:
            raise _err(node.args[0], "a kernel pointer is cast from an integer address")
        return _V(ty=u64, reg=r, kt=KType(comp, "probe"))


class _Kernel:
    """``bpf.kernel.<name>(address)``: an integer address as a pointer to kernel struct (or
    union) ``<name>``, read with :func:`core_read`."""

    def __getattr__(self, name: str) -> _Cast:
        if name.startswith("_"):
            raise AttributeError(name)
        return _Cast(name)

    def __repr__(self) -> str:
        return "<bpf.kernel: kernel structs by BTF name>"


#: ``bpf.core_read(p.a.b)``: read a field chain with ``bpf_probe_read_kernel``, link by link
#: (``BPF_CORE_READ``); needed for pointers the verifier does not type (kprobe, tracepoint
#: and raw tracepoint programs), allowed for BTF pointers too. A NULL link reads 0.
core_read: Any = _CoreRead("core_read")
#: ``struct task_struct *`` of the current task as a BTF pointer (``bpf_get_current_task_btf``,
#: Linux 5.11): ``bpf.get_current_task_btf().tgid`` is a direct load.
get_current_task_btf: Any = _TaskHelper("get_current_task_btf",
                                        asm.Helper.GET_CURRENT_TASK_BTF, "btf")
#: ``struct task_struct *`` of the current task as an address (``bpf_get_current_task``,
#: Linux 4.8): read its fields with ``bpf.core_read(bpf.get_current_task().pid)``.
get_current_task: Any = _TaskHelper("get_current_task", asm.Helper.GET_CURRENT_TASK, "probe")
kernel: Any = _Kernel()

