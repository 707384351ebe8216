"""Tracing program kinds: ``tp_btf``, ``kprobe``/``kretprobe``, ``fentry``/``fexit``, ``lsm``.

Each decorator fixes the program type, the expected attach type and the name whose BTF id
the kernel attaches to (resolved from vmlinux BTF at load by :meth:`ebpf.Program.load`), and
says how ``ctx`` reads:

* BTF-typed kinds (``tp_btf``, ``fentry``, ``fexit``, ``lsm``): the context is an array of
  8-byte slots, one per argument of the traced function (or tracepoint, or LSM hook), as for
  raw tracepoints. ``ctx.arg0`` .. ``ctx.argN-1`` exist for the target's ``N`` arguments only,
  and each argument is also readable by its BTF parameter name (``ctx.dfd``); ``fexit`` adds
  ``ctx.ret``, the return value. Both read from the running kernel's BTF at compile time, so a
  wrong argument is a compile error, not a verifier message. Each reads as its C type: an
  ``int`` is an ``i32`` (the low half of the slot, sign-extended, so ``ctx.ret < 0`` holds
  for an errno), ``char``/``bool``/``short``/``long``/enums by their BTF size and sign,
  typedefs and qualifiers seen through; pointers are ``u64`` addresses (struct pointers are
  also typed by their struct, see ``_kstruct``). A struct passed by value of 1, 2, 4 or 8
  bytes (``kuid_t``) reads as an unsigned integer of its bytes; a bigger one (two slots, Linux
  6.1) has no field but moves the later arguments, as in the kernel's ``get_ctx_arg_idx``.
  ``fentry``/``fexit``/``lsm`` take ``sleepable=True`` (``fentry.s``/``fexit.s``/``lsm.s``,
  ``BPF_F_SLEEPABLE``, Linux 5.10): the kernel then allows helpers that may fault pages
  in (``bpf.copy_from_user``), and only on functions that allow error injection (syscalls)
  or on its list of sleepable LSM hooks.
* ``kprobe``: ``ctx.arg0`` .. ``ctx.arg4`` from ``struct pt_regs`` by the calling convention
  (``PT_REGS_PARM1..5``); ``kretprobe``: ``ctx.ret`` (``PT_REGS_RC``; the argument registers
  are clobbered by then, so they are not offered). These are whole registers, ``u64``: cast
  for the C type (``i32(ctx.ret)`` for an ``int`` result).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .._types import AttachType, ProgramFlags, ProgramType
from ..errors import BPFError
from ._decl import ProgramDecl
from .types import IntType, int_type, u64

__all__ = ["fentry", "fexit", "fmod_ret", "kprobe", "kretprobe", "lsm", "lsm_cgroup", "tp_btf"]

Layout = dict[str, tuple[int, type[IntType]]]
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\Z")
#: MAX_BPF_FUNC_ARGS: the most arguments a BTF-typed context has
_MAX_ARGS = 12


def _check_name(kind: str, name: object, what: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise BPFError(f"{kind}: expected {what} (like 'do_unlinkat'), not {name!r}")
    return name


#: per BTF spec (by id, with the spec kept so the id stays its): every ``__bpf_trace_*``
#: probe's parameters after ``__data``, by their type ids
_CLASS_PROBES: dict[int, tuple[Any, dict[tuple[int, ...], list[list[Any]]]]] = {}


def _class_probes(spec: Any) -> dict[tuple[int, ...], list[list[Any]]]:
    """The named parameters of every ``__bpf_trace_<class>`` probe in ``spec``, by their type
    ids. A tracepoint made by ``DEFINE_EVENT`` has no probe of its own: its class's probe
    takes the same types (one scan of vmlinux, about 0.2 s, on first need)."""
    from .. import btf

    got = _CLASS_PROBES.get(id(spec))
    if got is not None and got[0] is spec:
        return got[1]
    out: dict[tuple[int, ...], list[list[Any]]] = {}
    for f in spec.types(btf.Func):
        if f.name.startswith("__bpf_trace_"):
            proto = f.type
            if isinstance(proto, btf.FuncProto):
                ps = list(proto.params)[1:]
                out.setdefault(tuple(p.type_id for p in ps), []).append(ps)
    _CLASS_PROBES[id(spec)] = (spec, out)
    return out


def btf_params(kind: str, target: str) -> tuple[list[Any], Any]:
    """The BTF parameters (``btf.Param``) and return type (None for ``void``) of a BTF-typed
    program's target, from the running kernel's vmlinux BTF. A ``tp_btf`` typedef has no
    parameter names: they come from the ``__bpf_trace_<name>`` probe, or for an event of a
    class (``DEFINE_EVENT``) from the class probes with the same parameter types when those
    all agree on the names (else the event has ``argN`` only)."""
    from .. import btf

    spec = btf.load_kernel()
    if kind == "tp_btf":  # typedef void (*btf_trace_<name>)(void *__data, args...)
        td = spec.find(f"btf_trace_{target}", kind=btf.Typedef)
        ptr = td.type
        proto = ptr.target if isinstance(ptr, btf.Pointer) else None
        if not isinstance(proto, btf.FuncProto):
            raise BPFError(f"btf_trace_{target} is not a function pointer typedef")
        params = list(proto.params)[1:]
        try:  # the typedef has no parameter names; the event's __bpf_trace_ probe has them
            probe = spec.find(f"__bpf_trace_{target}", kind=btf.Func).type
            named = list(getattr(probe, "params", ()))[1:]
            if len(named) == len(params):
                params = named
        except KeyError:
            same = _class_probes(spec).get(tuple(p.type_id for p in params), [])
            if len({tuple(p.name for p in ps) for ps in same}) == 1:
                params = same[0]
        return params, None
    fname = f"bpf_lsm_{target}" if kind in ("lsm", "lsm_cgroup") else target
    fproto = spec.find(fname, kind=btf.Func).type
    if not isinstance(fproto, btf.FuncProto):
        raise BPFError(f"{fname} has no function prototype in BTF")
    return list(fproto.params), (fproto.return_type if fproto.return_type_id else None)


def arg_type(t: Any) -> type[IntType] | None:
    """How a BTF-typed context slot holding a value of BTF type ``t`` reads: integers and
    enums by their size and sign (``bool`` unsigned), pointers as ``u64``, a struct or union
    passed by value of 1, 2, 4 or 8 bytes as an unsigned integer of its bytes; None for what
    programs cannot read as one integer (floats, ``__int128``, bigger structs)."""
    from .. import btf
    from ._kstruct import _int_of

    r = t.spec.resolve(t)
    if isinstance(r, btf.Pointer):
        return u64
    it = _int_of(r)
    if it is not None:
        return int_type(*it)
    if isinstance(r, btf.Composite) and r.size in (1, 2, 4, 8):
        return int_type(r.size, False)
    return None


def _slots(t: Any) -> int:
    """8-byte context slots a value of BTF type ``t`` takes (a 16-byte struct takes two)."""
    from .. import btf

    r = t.spec.resolve(t)
    if isinstance(r, btf.Pointer):
        return 1
    try:
        size: int = t.spec.sizeof(r)
    except ValueError:  # no size (void): one slot, unreadable
        return 1
    return max(1, (size + 7) // 8)


def arg_offsets(params: list[Any]) -> list[int]:
    """The context offset of each BTF parameter, then the slot after them (fexit's return
    value): 8 bytes per argument, a struct by value rounded up to whole slots."""
    out = [0]
    for p in params:
        out.append(out[-1] + 8 * _slots(p.type))
    return out


def arg_layout(params: list[Any], ret: Any, with_ret: bool, target: str = "the target"
               ) -> Layout:
    """``argN`` and parameter-name fields (each of its C type, see :func:`arg_type`) of a
    BTF-typed context with ``params``, and ``ret`` (of the return type ``ret``) when asked and
    the target returns a value. A parameter named ``ret`` keeps its name unless the context
    has a return value."""
    offsets = arg_offsets(params)
    if offsets[-1] > 8 * _MAX_ARGS:
        raise BPFError(f"{target} has {offsets[-1] // 8} argument slots; BPF reaches "
                       f"{_MAX_ARGS}")
    out: Layout = {}
    named: Layout = {}
    has_ret = with_ret and ret is not None
    for i, (p, off) in enumerate(zip(params, offsets, strict=False)):
        t = arg_type(p.type)
        if t is None:
            continue
        out[f"arg{i}"] = (off, t)
        n = p.name
        if (n and n.isidentifier() and not n.startswith("_") and not (n == "ret" and has_ret)
                and not re.fullmatch(r"arg\d+", n)):
            named[n] = (off, t)
    out.update(named)
    if has_ret:
        t = arg_type(ret)
        if t is not None:
            out["ret"] = (offsets[-1], t)
    return out


def _btf_args(kind: str, target: str, with_ret: bool) -> Layout:
    """The ctx fields of a BTF-typed program on ``target`` (:func:`arg_layout` of its
    prototype in the running kernel's BTF)."""
    params, ret = btf_params(kind, target)
    return arg_layout(params, ret, with_ret, target)


def _pt_regs(ret: bool) -> Layout:
    from ..link.perf_event import pt_regs_arg_offset, pt_regs_return_offset

    if ret:
        return {"ret": (pt_regs_return_offset(), u64)}
    return {f"arg{i}": (pt_regs_arg_offset(i), u64) for i in range(5)}


def _decl(fn: Callable[..., Any], program_type: ProgramType, section: str, ctx_kind: str,
          attach_type: AttachType | None, attach_to: str,
          layout: Callable[[], Layout]) -> ProgramDecl:
    return ProgramDecl(fn, program_type, section, ctx_kind, attach_type=attach_type,
                       attach_to=attach_to, ctx_layout=layout)


def tp_btf(name: str) -> Callable[[Callable[..., Any]], ProgramDecl]:
    """A BTF-enabled raw tracepoint (``SEC("tp_btf/name")``, ``BPF_TRACE_RAW_TP``, Linux
    5.5): ``ctx.arg0``.. and the arguments by name from the kernel's ``btf_trace_<name>``
    (``ctx.prev`` for ``sched_switch``, ``ctx.id`` for ``sys_enter``). Returns 0. Attach with
    ``ebpf.link.tracing.attach_tracing(coll.prog)``."""
    _check_name("tp_btf", name, "a tracepoint name")

    def deco(fn: Callable[..., Any]) -> ProgramDecl:
        return _decl(fn, ProgramType.TRACING, f"tp_btf/{name}", "btf",
                     AttachType.TRACE_RAW_TP, name, lambda: _btf_args("tp_btf", name, False))

    return deco


def kprobe(function: str) -> Callable[[Callable[..., Any]], ProgramDecl]:
    """A kprobe on kernel ``function`` (``SEC("kprobe/function")``): ``ctx.arg0``..``arg4``
    are its first five integer arguments from ``struct pt_regs``. Attach with
    ``ebpf.link.kprobe.attach_kprobe(coll.prog, function)`` (needs ``CONFIG_KPROBES``)."""
    _check_name("kprobe", function, "a kernel function")

    def deco(fn: Callable[..., Any]) -> ProgramDecl:
        return _decl(fn, ProgramType.KPROBE, f"kprobe/{function}", "ptregs", None, function,
                     lambda: _pt_regs(False))

    return deco


def kretprobe(function: str) -> Callable[[Callable[..., Any]], ProgramDecl]:
    """A kretprobe on kernel ``function`` (``SEC("kretprobe/function")``): ``ctx.ret`` is the
    return value (``u64``; ``i32(ctx.ret)`` for an ``int``). Attach with
    ``attach_kprobe(coll.prog, function, retprobe=True)``."""
    _check_name("kretprobe", function, "a kernel function")

    def deco(fn: Callable[..., Any]) -> ProgramDecl:
        return _decl(fn, ProgramType.KPROBE, f"kretprobe/{function}", "ptregs", None,
                     function, lambda: _pt_regs(True))

    return deco


def _btf_kind(kind: str, target: str, sleepable: object, program_type: ProgramType,
              attach_type: AttachType, with_ret: bool
              ) -> Callable[[Callable[..., Any]], ProgramDecl]:
    """The decorator of ``fentry``/``fexit``/``lsm`` (``kind``) on ``target``, plain or
    sleepable (``<kind>.s/``, ``BPF_F_SLEEPABLE``)."""
    if not isinstance(sleepable, bool):
        raise BPFError(f"{kind}: sleepable is True or False, not {sleepable!r}")
    section = f"{kind}{'.s' if sleepable else ''}/{target}"

    def deco(fn: Callable[..., Any]) -> ProgramDecl:
        d = _decl(fn, program_type, section, "btf", attach_type, target,
                  lambda: _btf_args(kind, target, with_ret))
        d.prog_flags = int(ProgramFlags.SLEEPABLE) if sleepable else 0
        return d

    return deco


def lsm_cgroup(hook: str) -> Callable[[Callable[..., Any]], ProgramDecl]:
    """A cgroup-scoped BPF LSM program on ``hook`` (``SEC("lsm_cgroup/hook")``,
    ``BPF_LSM_CGROUP``, Linux 6.0): runs only for tasks in the cgroup it is attached to (and
    its descendants), with the hook's arguments as in :func:`lsm`. Unlike ``lsm``, it
    returns a verdict as the cgroup programs do: 1 allows, 0 denies (the caller sees
    ``EPERM``). Attach with ``ebpf.link.attach_cgroup(coll.prog, cgroup)``; the hook needs no
    ``lsm=bpf`` boot list entry."""
    _check_name("lsm_cgroup", hook, "an LSM hook name")
    return _btf_kind("lsm_cgroup", hook, False, ProgramType.LSM, AttachType.LSM_CGROUP, False)


def fentry(function: str, *, sleepable: bool = False
           ) -> Callable[[Callable[..., Any]], ProgramDecl]:
    """An fentry program (``SEC("fentry/function")``, a BPF trampoline, Linux 5.5): runs
    when ``function`` is entered; its arguments are ``ctx.arg0``.. and ``ctx.<param name>``
    (from vmlinux BTF), each of its C type (``int`` is ``i32``). Must return 0. Attach with
    ``attach_tracing(coll.prog)``. ``sleepable=True`` (``fentry.s``, Linux 5.10) may call
    helpers that fault pages in (``bpf.copy_from_user``); the kernel allows it only on
    functions that allow error injection, such as the syscalls (``__x64_sys_openat``)."""
    _check_name("fentry", function, "a kernel function")
    return _btf_kind("fentry", function, sleepable, ProgramType.TRACING,
                     AttachType.TRACE_FENTRY, False)


def fexit(function: str, *, sleepable: bool = False
          ) -> Callable[[Callable[..., Any]], ProgramDecl]:
    """An fexit program (``SEC("fexit/function")``, Linux 5.5): runs when ``function``
    returns, with its arguments as in :func:`fentry` and ``ctx.ret``, the return value of
    the function's return type (an ``int`` result is an ``i32``: ``ctx.ret < 0`` is a
    failure). Must return 0. Attach with ``attach_tracing(coll.prog)``. ``sleepable`` as
    for :func:`fentry` (``fexit.s``)."""
    _check_name("fexit", function, "a kernel function")
    return _btf_kind("fexit", function, sleepable, ProgramType.TRACING,
                     AttachType.TRACE_FEXIT, True)


def fmod_ret(function: str) -> Callable[[Callable[..., Any]], ProgramDecl]:
    """An fmod_ret program (``SEC("fmod_ret/function")``, ``BPF_MODIFY_RETURN``, Linux 5.6):
    runs before ``function`` with its arguments as in :func:`fentry`, and ``ctx.ret``, the
    return value the fmod_ret programs before it chose (0 if none). Returning 0 lets the
    function run; any other value skips it and is what the caller gets (``-errno`` for an
    ``int`` function). The kernel takes it only on functions that allow error injection and
    on the ``security_*`` hooks. Attach with ``attach_tracing(coll.prog)``."""
    _check_name("fmod_ret", function, "a kernel function")
    return _btf_kind("fmod_ret", function, False, ProgramType.TRACING,
                     AttachType.MODIFY_RETURN, True)


def lsm(hook: str, *, sleepable: bool = False) -> Callable[[Callable[..., Any]], ProgramDecl]:
    """A BPF LSM program on ``hook`` (``SEC("lsm/hook")``, ``BPF_LSM_MAC``, Linux 5.7 with
    ``CONFIG_BPF_LSM`` and ``bpf`` in the boot ``lsm=`` list): the hook's arguments are
    ``ctx.arg0``.. and by name (``ctx.mode`` for ``inode_mkdir``, a ``u16``; from
    ``bpf_lsm_<hook>`` in BTF). Returning 0 allows the operation, ``-errno`` denies it (the
    caller sees that error). Attach with ``attach_tracing(coll.prog)``. ``sleepable=True``
    (``lsm.s``, Linux 5.10) may call helpers that fault pages in; the kernel takes it only on
    its sleepable hooks (``file_open``, ``bprm_committed_creds``, ...)."""
    _check_name("lsm", hook, "an LSM hook name")
    return _btf_kind("lsm", hook, sleepable, ProgramType.LSM, AttachType.LSM_MAC, False)
