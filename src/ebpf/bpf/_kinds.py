"""More program kinds: ``uprobe``/``uretprobe``/``uprobe_multi``/``usdt``, ``perf_event``, ``iter``,
``cgroup_sock_addr`` and ``cgroup_sockopt``, and ``bpf.seq_write``/``bpf.seq_printf`` for
iterators.

Each decorator fixes the program type, the expected attach type (and for iterators the BTF
target) and how ``ctx`` reads: the compiler asks the declaration's :class:`CtxAccess` to
load (and, for the cgroup socket kinds, store) a ctx field, so a field can be a big-endian
word read in host order (``user_port``), a signed ``int`` (``retval``), a USDT argument
fetched by the code its note describes, or a BTF-typed kernel pointer (``ctx.task``).
"""

from __future__ import annotations

import ast
import fnmatch
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import asm
from .._types import AttachType, ProgramFlags, ProgramType
from ..asm import R0, R1, R2, R3, R4, R5, R10
from ..asm.helpers import check_helper_allowed
from ..errors import AssemblerError, BPFError
from ._decl import ProgramDecl
from ._kstruct import _KCall
from .types import IntType, Struct, be16, be32, i32, i64, int_type, u16, u32, u64

if TYPE_CHECKING:
    from ._compiler import V, _FunctionCompiler

__all__ = ["cgroup_sock_addr", "cgroup_sockopt", "iter", "perf_event", "seq_printf", "seq_write",
           "session_cookie", "uprobe", "uprobe_multi", "uprobe_session", "uretprobe", "usdt"]

_SIZE = {1: asm.B, 2: asm.H, 4: asm.W, 8: asm.DW}
Layout = dict[str, tuple[int, type[IntType]]]


def _err(node: ast.AST | None, msg: str) -> Exception:
    from ._compiler import _Err

    return _Err(node, msg)


def _V(**kw: Any) -> V:
    from ._compiler import V

    return V(**kw)


@dataclass(frozen=True)
class Field:
    """A ctx field: ``size`` bytes at ``offset``, of ``type`` (host order: a ``big_endian``
    field is swapped on load and store), stored with a ``store`` byte wide write when the
    program may assign it (0: read-only)."""

    offset: int
    size: int
    type: type[IntType]
    big_endian: bool = False
    store: int = 0


class CtxAccess:
    """How a program kind reads (and writes) its ``ctx`` fields; used by the compiler."""

    def __init__(self, fields: dict[str, Field]) -> None:
        self.fields = fields

    @property
    def writes(self) -> bool:
        """Whether programs may store into the context (then ctx loads are not reused)."""
        return any(f.store for f in self.fields.values())

    def layout(self) -> Layout:
        return {n: (f.offset, f.type) for n, f in self.fields.items()}

    def _ctx(self, c: _FunctionCompiler, node: ast.AST) -> Any:
        r = c.temp(node)
        c.emit(asm.load(asm.DW, r, R10, c.ctx_slot))
        return r

    def read(self, c: _FunctionCompiler, node: ast.Attribute) -> V:
        f = self.fields[node.attr]
        r = self._ctx(c, node)
        c.emit(asm.load(_SIZE[f.size], r, r, f.offset))
        if f.big_endian:
            c.emit(asm.to_be(r, f.size * 8))
        elif f.type.signed and f.size < 8:
            sh = 64 - f.size * 8
            c.emit(asm.lsh(r, sh), asm.arsh(r, sh))
        return _V(ty=f.type, reg=r, kt=self.kernel_type(node.attr))

    def kernel_type(self, name: str) -> Any:
        """The kernel struct a pointer field points to (a ``_kstruct.KType``), or None."""
        return None

    def write(self, c: _FunctionCompiler, target: ast.Attribute, value: ast.expr) -> None:
        f = self.fields[target.attr]
        if not f.store:
            names = ", ".join(sorted(n for n, g in self.fields.items() if g.store)) or "none"
            raise _err(target, f"ctx.{target.attr} is read-only (writable: {names})")
        v = c.expr(value)
        if not v.is_int:
            raise _err(value, f"ctx.{target.attr} is an integer field")
        r = c.to_reg(v, f.type, value)
        if f.big_endian:
            c.emit(asm.to_be(r, f.size * 8))
        base = self._ctx(c, target)
        c.emit(asm.store(_SIZE[f.store], base, f.offset, r))
        c.release(r)
        c.release(base)


def _decl(fn: Callable[..., Any], program_type: ProgramType, section: str, ctx_kind: str,
          access: CtxAccess | Callable[[], CtxAccess], *,
          attach_type: AttachType | None = None, attach_to: str | None = None
          ) -> ProgramDecl:
    """A ProgramDecl whose ctx goes through ``access`` (built on first use when a callable:
    USDT notes and iterator contexts are read when the program is compiled)."""
    holder: list[CtxAccess] = []

    def get() -> CtxAccess:
        if not holder:
            holder.append(access if isinstance(access, CtxAccess) else access())
        return holder[0]

    d = ProgramDecl(fn, program_type, section, ctx_kind, attach_type=attach_type,
                    attach_to=attach_to, ctx_layout=lambda: get().layout())
    d.ctx_access = _Lazy(get)
    return d


class _Lazy:
    """A CtxAccess made when the compiler first needs it (its errors become compile
    errors through the layout, which the compiler asks for first)."""

    def __init__(self, get: Callable[[], CtxAccess]) -> None:
        self._get = get

    @property
    def writes(self) -> bool:
        try:
            return self._get().writes
        except (OSError, BPFError, LookupError):
            return False

    def read(self, c: _FunctionCompiler, node: ast.Attribute) -> V:
        return self._get().read(c, node)

    def write(self, c: _FunctionCompiler, target: ast.Attribute, value: ast.expr) -> None:
        self._get().write(c, target, value)

    def bytes_into(self, c: _FunctionCompiler, dst: V, fld: Any, value: ast.expr) -> bool:
        """``record.field = <ctx bytes>`` when the kind has such a source (unix paths)."""
        method = getattr(self._get(), "bytes_into", None)
        return method is not None and bool(method(c, dst, fld, value))

    def call(self, c: _FunctionCompiler, node: ast.Call, name: str) -> V:
        """``ctx.<name>(...)``: the kind's own ctx method, if it has one."""
        method = getattr(self._get(), "call", None)
        if method is None:
            raise _err(node, f"ctx.{name}() is not supported")
        return method(c, node, name)  # type: ignore[no-any-return]


# -- uprobes and USDT --------------------------------------------------------------------------
def _pt_regs(ret: bool) -> CtxAccess:
    from ..link.perf_event import pt_regs_arg_offset, pt_regs_return_offset

    if ret:
        return CtxAccess({"ret": Field(pt_regs_return_offset(), 8, u64)})
    return CtxAccess({f"arg{i}": Field(pt_regs_arg_offset(i), 8, u64) for i in range(5)})


def _check_probe(kind: str, binary: object, what: str, name: object) -> tuple[str, str]:
    if not isinstance(binary, (str, os.PathLike)) or not os.fspath(binary):
        raise BPFError(f"{kind}: expected a binary path or library name, not {binary!r}")
    if not isinstance(name, str) or not name or "/" in name:
        raise BPFError(f"{kind}: expected {what}, not {name!r}")
    return os.fspath(binary), name


def _uprobe(kind: str, binary: str | os.PathLike[str], symbol: str, sleepable: object
            ) -> Callable[[Callable[..., Any]], ProgramDecl]:
    """The decorator of ``uprobe``/``uretprobe`` (``kind``), plain or sleepable."""
    path, sym = _check_probe(kind, binary, "a symbol name", symbol)
    if not isinstance(sleepable, bool):
        raise BPFError(f"{kind}: sleepable is True or False, not {sleepable!r}")
    section = f"{kind}{'.s' if sleepable else ''}/{path}:{sym}"
    ret = kind == "uretprobe"

    def deco(fn: Callable[..., Any]) -> ProgramDecl:
        d = _decl(fn, ProgramType.KPROBE, section, "uprobe", lambda: _pt_regs(ret))
        d.probe_target = (path, sym)
        d.prog_flags = int(ProgramFlags.SLEEPABLE) if sleepable else 0
        return d

    return deco


def uprobe(binary: str | os.PathLike[str], symbol: str, *, sleepable: bool = False
           ) -> Callable[[Callable[..., Any]], ProgramDecl]:
    """A uprobe on ``symbol`` of ``binary`` (an executable or library path, or a library
    name such as ``"libc.so.6"``; ``SEC("uprobe/...")``, ``BPF_PROG_TYPE_KPROBE``): ``ctx.arg0``..
    ``arg4`` are its first five integer arguments from ``struct pt_regs``. Attach with
    ``ebpf.link.uprobe.attach_uprobe(coll.prog, binary, symbol)`` (``prog.binary`` and
    ``prog.symbol`` keep them).

    ``sleepable=True`` loads it with ``BPF_F_SLEEPABLE`` (``SEC("uprobe.s/...")``, Linux
    6.0): it may fault user pages in, so ``bpf.copy_from_user`` reads memory that
    ``probe_read_user`` would find paged out."""
    return _uprobe("uprobe", binary, symbol, sleepable)


def uretprobe(binary: str | os.PathLike[str], symbol: str, *, sleepable: bool = False
              ) -> Callable[[Callable[..., Any]], ProgramDecl]:
    """A uretprobe on ``symbol`` of ``binary`` (``SEC("uretprobe/...")``): ``ctx.ret`` is
    the return value (``u64``; ``i32(ctx.ret)`` for an ``int``). Attach with
    ``attach_uprobe(coll.prog, binary, symbol, retprobe=True)``. ``sleepable`` as for
    :func:`uprobe`."""
    return _uprobe("uretprobe", binary, symbol, sleepable)


class _MultiAccess(CtxAccess):
    """``ctx.arg0``..``arg4`` (or ``ctx.ret``) from ``struct pt_regs`` as for a uprobe, plus
    ``ctx.cookie`` (``bpf_get_attach_cookie``: the cookie the probe was attached with) and
    ``ctx.func_ip`` (``bpf_get_func_ip``: the probed function's address in the process),
    which tell the probes of one uprobe_multi link apart."""

    _HELPERS = {"cookie": asm.Helper.GET_ATTACH_COOKIE, "func_ip": asm.Helper.GET_FUNC_IP}

    def __init__(self, ret: bool) -> None:
        fields = dict(_pt_regs(ret).fields)
        fields.update({n: Field(-1, 8, u64) for n in self._HELPERS})
        super().__init__(fields)

    def read(self, c: _FunctionCompiler, node: ast.Attribute) -> V:
        h = self._HELPERS.get(node.attr)
        if h is None:
            return super().read(c, node)
        c.emit(asm.load(asm.DW, R1, R10, c.ctx_slot), asm.call(h))
        r = c.temp(node)
        c.emit(asm.mov(r, R0))
        return _V(ty=u64, reg=r)


def _multi_symbols(path: str, pattern: object) -> tuple[str, ...]:
    """The function names ``pattern`` stands for: a list of names as given, a glob
    (``"get*pid"``) matched against the defined functions of the binary's symbol tables."""
    if isinstance(pattern, str):
        if not pattern or "/" in pattern:
            raise BPFError(f"uprobe_multi: expected a symbol pattern, not {pattern!r}")
        if not any(ch in pattern for ch in "*?["):
            return (pattern,)
        from .._elfsym import ElfFile
        from ..link.uprobe import resolve_binary

        with ElfFile.open(resolve_binary(path)) as elf:
            names = sorted({s.name for s in elf.symbols() if s.is_function and s.defined
                            and fnmatch.fnmatchcase(s.name, pattern)})
        if not names:
            raise BPFError(f"uprobe_multi: no function of {path} matches {pattern!r}")
        return tuple(names)
    if isinstance(pattern, (list, tuple)) and pattern and all(
            isinstance(n, str) and n and "/" not in n for n in pattern):
        return tuple(pattern)
    raise BPFError(f"uprobe_multi: expected a symbol pattern or a list of names, not "
                   f"{pattern!r}")


def uprobe_multi(binary: str | os.PathLike[str], symbols: str | list[str] | tuple[str, ...],
                 *, retprobe: bool = False) -> Callable[[Callable[..., Any]], ProgramDecl]:
    """One program on many functions of ``binary`` (``SEC("uprobe.multi/...")``,
    ``BPF_PROG_TYPE_KPROBE`` loaded for ``BPF_TRACE_UPROBE_MULTI``, Linux 6.6): ``symbols``
    is a list of names or a glob (``"pthread_mutex_*"``, matched against the binary's
    functions when decorating). ``ctx.arg0``..``arg4`` as for :func:`uprobe`, ``ctx.ret``
    with ``retprobe=True`` (``SEC("uretprobe.multi/...")``), and ``ctx.cookie`` and
    ``ctx.func_ip`` to tell the functions apart. Attach with
    ``ebpf.link.uprobe.attach_uprobe_multi(coll.prog, binary, decl.probe_target[1:],
    retprobe=...)`` (``probe_target`` is the binary then the matched names); before 6.6 that
    raises :class:`~ebpf.errors.NotSupportedError`."""
    path, _ = _check_probe("uprobe_multi", binary, "a symbol pattern", "x")
    if not isinstance(retprobe, bool):
        raise BPFError(f"uprobe_multi: retprobe is True or False, not {retprobe!r}")
    names = _multi_symbols(path, symbols)
    pattern = symbols if isinstance(symbols, str) else ",".join(names)
    kind = "uretprobe.multi" if retprobe else "uprobe.multi"

    def deco(fn: Callable[..., Any]) -> ProgramDecl:
        d = _decl(fn, ProgramType.KPROBE, f"{kind}/{path}:{pattern}", "uprobe",
                  lambda: _MultiAccess(retprobe), attach_type=AttachType.TRACE_UPROBE_MULTI)
        d.probe_target = (path, *names)
        return d

    return deco


# -- uprobe sessions ------------------------------------------------------------------------------
def _session_kfunc(node: ast.AST, name: str) -> tuple[int, int]:
    """The BTF id of session kfunc ``name`` in the running kernel and how many parameters it
    takes (none in 6.13..6.18; a later kernel may pass the ctx)."""
    from .. import btf

    try:
        spec = btf.load_kernel()
        fn = spec.find(name, kind=btf.Func)
    except (OSError, KeyError, BPFError) as e:
        raise _err(node, f"{name} needs the kernel's BTF and a kernel with uprobe sessions "
                         f"(Linux 6.13): {e}") from None
    assert isinstance(fn, btf.Func)
    n = len(fn.proto.params)
    if n > 1:
        raise _err(node, f"{name} takes {n} parameters in this kernel: not supported")
    return fn.id, n


def _session_call(c: _FunctionCompiler, node: ast.AST, name: str) -> None:
    """Emit a call of session kfunc ``name`` (result in R0)."""
    if c.decl.attach_type != AttachType.TRACE_UPROBE_SESSION:
        raise _err(node, f"{name} is for uprobe session programs (@bpf.uprobe_session)")
    fid, nparams = _session_kfunc(node, name)
    if nparams:
        c.emit(asm.load(asm.DW, R1, R10, c.ctx_slot))
    c.emit(asm.kfunc_call(fid))


class _SessionAccess(_MultiAccess):
    """``ctx.arg0``..``arg4``, ``ctx.ret`` (meaningful at return), ``ctx.cookie`` and
    ``ctx.func_ip`` as for uprobe_multi, and ``ctx.is_return`` (``bpf_session_is_return``:
    1 in the run at the function's return, 0 at its entry)."""

    def __init__(self) -> None:
        super().__init__(False)
        self.fields.update(_pt_regs(True).fields)
        self.fields["is_return"] = Field(-1, 1, int_type(1, False))

    def read(self, c: _FunctionCompiler, node: ast.Attribute) -> V:
        if node.attr != "is_return":
            return super().read(c, node)
        _session_call(c, node, "bpf_session_is_return")
        r = c.temp(node)
        t = int_type(1, False)
        c.emit(asm.mov(r, R0))
        c.normalize(r, t)
        return _V(ty=t, reg=r)


def uprobe_session(binary: str | os.PathLike[str], symbols: str | list[str] | tuple[str, ...]
                   ) -> Callable[[Callable[..., Any]], ProgramDecl]:
    """One program run both at entry and at return of many functions of ``binary``
    (``SEC("uprobe.session/...")``, ``BPF_PROG_TYPE_KPROBE`` loaded for
    ``BPF_TRACE_UPROBE_SESSION``, Linux 6.13). ``symbols`` as for :func:`uprobe_multi`;
    ``ctx`` has the fields of an uprobe_multi program (``arg0``..``arg4``, ``cookie``,
    ``func_ip``) plus ``ctx.ret`` (the return value, in the return run) and
    ``ctx.is_return``. :data:`session_cookie` is 8 bytes of storage the entry run of a call
    shares with its return run. Returning non-zero from the entry run skips the return run
    of that call. Attach with ``attach_uprobe_multi(coll.prog, binary,
    decl.probe_target[1:])`` (no ``retprobe``); a kernel without sessions refuses the link
    (``EINVAL``)."""
    path, _ = _check_probe("uprobe_session", binary, "a symbol pattern", "x")
    names = _multi_symbols(path, symbols)
    pattern = symbols if isinstance(symbols, str) else ",".join(names)

    def deco(fn: Callable[..., Any]) -> ProgramDecl:
        d = _decl(fn, ProgramType.KPROBE, f"uprobe.session/{path}:{pattern}", "uprobe",
                  _SessionAccess, attach_type=AttachType.TRACE_UPROBE_SESSION)
        d.probe_target = (path, *names)
        return d

    return deco


class _SessionCookie(_KCall):
    def compile(self, c: _FunctionCompiler, node: ast.Call) -> V:
        from ._compiler import Ptr, _cell

        if node.args or node.keywords:
            raise _err(node, "session_cookie() takes no arguments")
        _session_call(c, node, "bpf_session_cookie")
        r = c.temp(node)
        c.emit(asm.mov(r, R0))
        return _V(reg=r, ptr=Ptr(_cell(u64), "session"))


#: ``c = bpf.session_cookie()`` in a :func:`uprobe_session` program: a pointer to the u64
#: the kernel keeps for this call of the probed function (``bpf_session_cookie``, Linux
#: 6.13), 0 at entry; ``c.value = ...`` in the entry run is what ``c.value`` reads in the
#: return run of the same call (a timestamp, an argument to pair with the result).
session_cookie: Any = _SessionCookie("session_cookie")


class _USDTAccess(CtxAccess):
    """``ctx.arg0``.. of a USDT probe, each fetched by the code its note's argument spec
    describes (:func:`ebpf.link.uprobe.usdt_argument`: a register, a constant, or memory
    read with ``bpf_probe_read_user``), typed by the spec's size and sign.

    When the probe's sites place an argument differently (:func:`ebpf.link.uprobe.
    usdt_layouts`), the program carries the fetch of every layout and picks one by its
    attach cookie (``bpf_get_attach_cookie``), which ``attach_usdt`` sets to the site's
    layout number: the specs are constants of the code, no spec map is needed."""

    def __init__(self, binary: str, provider: str, name: str) -> None:
        from ..link.uprobe import usdt_layouts, usdt_probes

        sites = [p for p in usdt_probes(binary) if p.provider == provider and p.name == name]
        if not sites:
            raise BPFError(f"{binary} has no USDT probe {provider}:{name}")
        self.layouts = usdt_layouts(sites)[0]
        counts = sorted({len(lay) for lay in self.layouts})
        if len(counts) != 1:
            raise BPFError(f"USDT probe {provider}:{name}: its sites have "
                           f"{' or '.join(map(str, counts))} arguments; a probe's sites must "
                           "agree on the count")
        fields: dict[str, Field] = {}
        for i in range(counts[0]):
            kinds = {(a.size if a.size in (1, 2, 4, 8) else 8, a.signed)
                     for a in (lay[i] for lay in self.layouts)}
            size, signed = min(kinds) if len(kinds) == 1 else (
                8, any(sg for _, sg in kinds))  # layouts disagree: the 64-bit extension
            fields[f"arg{i}"] = Field(i, 8, int_type(size, signed))
        super().__init__(fields)

    def read(self, c: _FunctionCompiler, node: ast.Attribute) -> V:
        from ..link.uprobe import usdt_argument

        f = self.fields[node.attr]
        args = [lay[f.offset] for lay in self.layouts]
        slot = c.alloc(8) if any(a.kind == "deref" for a in args) else -8
        which = None
        if len(args) > 1:  # the site's layout number is its attach cookie
            c.emit(asm.load(asm.DW, R1, R10, c.ctx_slot),
                   asm.call(asm.Helper.GET_ATTACH_COOKIE))
            which = c.temp(node)
            c.emit(asm.mov(which, R0))
        r = c.temp(node)
        end = c.label("usdt_arg")
        for k, arg in enumerate(args):
            nxt = c.label("usdt_layout")
            last = k == len(args) - 1
            if which is not None and not last:
                c.emit(asm.jne(which, k, nxt))
            c.emit(asm.load(asm.DW, r, R10, c.ctx_slot))
            try:
                code = usdt_argument(arg, r, ctx=r, stack_offset=slot)
            except (BPFError, ValueError) as e:
                c.release(r)
                c.release(which)
                raise _err(node, f"USDT argument {arg.text!r}: {e}") from None
            c.emit(*code)
            if which is not None and not last:
                c.emit(asm.ja(end))
                c.place(nxt)
        if which is not None:
            c.place(end)
            c.release(which)
        return _V(ty=f.type, reg=r)


def usdt(binary: str | os.PathLike[str], provider: str, name: str
         ) -> Callable[[Callable[..., Any]], ProgramDecl]:
    """A USDT probe ``provider:name`` of ``binary`` (``SEC("usdt/...")``, a uprobe at each
    site, ``BPF_PROG_TYPE_KPROBE``): ``ctx.arg0``.. are the probe's arguments, typed by
    their note (``-4@%edi`` is an ``i32``) and fetched as the binary's ``.note.stapsdt``
    says, read when the program is compiled. When sites place an argument differently (a
    constant at one, a register at another) the program fetches it by the site's attach
    cookie, which ``attach_usdt`` sets (do not pass it a ``cookie`` then). Attach with
    ``ebpf.link.uprobe.attach_usdt(coll.prog, binary, provider, name)``."""
    path, prov = _check_probe("usdt", binary, "a provider name", provider)
    if not isinstance(name, str) or not name:
        raise BPFError(f"usdt: expected a probe name, not {name!r}")

    def deco(fn: Callable[..., Any]) -> ProgramDecl:
        from ..link.uprobe import resolve_binary

        d = _decl(fn, ProgramType.KPROBE, f"usdt/{path}:{prov}:{name}", "usdt",
                  lambda: _USDTAccess(resolve_binary(path), prov, name))
        d.probe_target = (path, prov, name)
        return d

    return deco


# -- perf_event --------------------------------------------------------------------------------
#: sizeof(bpf_user_pt_regs_t), the regs that open struct bpf_perf_event_data
_USER_REGS = {"x86_64": 21 * 8, "aarch64": 34 * 8, "riscv64": 32 * 8}


def _perf_event_ctx() -> CtxAccess:
    from .. import platform
    from ..link.perf_event import pt_regs_offset

    regs = _USER_REGS.get(platform.ARCH)
    if regs is None:
        raise BPFError(f"struct bpf_perf_event_data layout for {platform.ARCH}")
    ip = pt_regs_offset("ip" if platform.ARCH == "x86_64" else "pc")
    return CtxAccess({"sample_period": Field(regs, 8, u64), "addr": Field(regs + 8, 8, u64),
                      "ip": Field(ip, 8, u64)})


def perf_event(fn: Callable[..., Any]) -> ProgramDecl:
    """A perf event program (``SEC("perf_event")``, Linux 4.9): runs on each sample;
    ``ctx.sample_period``, ``ctx.addr`` (``struct bpf_perf_event_data``) and ``ctx.ip``, the
    sampled instruction pointer. Attach with ``ebpf.link.perf_event.attach_perf_event(
    coll.prog, SoftwareEvent.CPU_CLOCK, sample_period=...)``."""
    return _decl(fn, ProgramType.PERF_EVENT, "perf_event", "perf_event", _perf_event_ctx)


# -- iterators -----------------------------------------------------------------------------------
class _IterAccess(CtxAccess):
    """The fields of ``struct bpf_iter__<target>`` from vmlinux BTF: ``ctx.meta`` and the
    target's pointers (``ctx.task``) as BTF-typed kernel pointers, integers as integers."""

    def __init__(self, target: str, typed: dict[str, Any] | None = None) -> None:
        from . import _kstruct

        self.typed = typed or {}
        try:
            st = _kstruct.kernel_type(f"bpf_iter__{target}")
        except KeyError:
            raise BPFError(f"the kernel's BTF has no struct bpf_iter__{target} (no "
                           f"{target!r} iterator)") from None
        from .. import btf

        fields: dict[str, Field] = {}
        self.targets: dict[str, Any] = {}
        spec = st.spec

        def walk(comp: Any, base: int) -> None:
            for m in comp.members:
                t = spec.resolve(m.type)
                bit = base + m.offset
                if not m.name and isinstance(t, btf.Composite):
                    walk(t, bit)  # __bpf_md_ptr(): an anonymous union around the pointer
                    continue
                if not m.name or bit % 8:
                    continue
                target = _kstruct.pointer_target(m.type)
                size = spec.sizeof(t)
                if target is not None:
                    self.targets[m.name] = _kstruct.KType(target, "btf")
                    fields[m.name] = Field(bit // 8, 8, u64)
                elif isinstance(t, btf.Int) and size in (1, 2, 4, 8):
                    fields[m.name] = Field(bit // 8, size, int_type(size, bool(t.signed)))
                elif isinstance(t, btf.Pointer):  # void *key, *value: addresses
                    fields[m.name] = Field(bit // 8, 8, u64)

        walk(st, 0)
        for name in self.typed:
            f = fields.get(name)
            if f is None or name in self.targets or f.size != 8:
                raise BPFError(f"iter/{target}: ctx.{name} is not a void * field of "
                               f"struct bpf_iter__{target}, so it cannot be typed")
        super().__init__(fields)

    def kernel_type(self, name: str) -> Any:
        return self.targets.get(name)

    def read(self, c: _FunctionCompiler, node: ast.Attribute) -> V:
        t = self.typed.get(node.attr)
        if t is None:
            return super().read(c, node)
        from ._compiler import Ptr, _cell

        st = t if isinstance(t, type) and issubclass(t, Struct) else _cell(t)
        r = self._ctx(c, node)
        c.emit(asm.load(asm.DW, r, r, self.fields[node.attr].offset))
        return _V(reg=r, ptr=Ptr(st, "buf"), nullable=True)   # PTR_TO_BUF_OR_NULL


def iter(target: str, *, key: Any = None, value: Any = None, map: Any = None
         ) -> Callable[[Callable[..., Any]], ProgramDecl]:
    """An iterator program for ``target`` (``SEC("iter/task")``, ``BPF_TRACE_ITER``, Linux
    5.8): run once per object (``ctx.task``, a BTF-typed ``struct task_struct *``, ``None``
    on the last call) and write its output with :data:`seq_write` or :data:`seq_printf`.
    Attach with ``ebpf.link.iter.attach_iter(coll.prog)`` and read it with the link's
    ``read()``.

    For ``bpf_map_elem`` (Linux 5.9) ``ctx.key`` and ``ctx.value`` are addresses unless typed:
    ``key=``/``value=`` (an integer type or a ``bpf.Struct``), or ``map=`` a map declaration
    whose key and value types are taken, make them nullable pointers of those types (``k =
    ctx.key``, ``if k is None: return 0``, then ``k.saddr`` or, for an integer, ``k.value``).
    The value is writable in place. The kernel checks at attach (``attach_iter(prog,
    map=m)``) that the map's key and value are at least as large as what the program reads;
    a per-CPU map's value is every CPU's values in a row, so type it by one value only if
    the first CPU's is what you want."""
    if not isinstance(target, str) or not target.isidentifier():
        raise BPFError(f"iter: expected an iterator target like 'task', not {target!r}")
    from ._decl import MapDecl

    if map is not None:
        if not isinstance(map, MapDecl) or map.key is None or map.value is None:
            raise BPFError(f"iter: map= takes a map declaration with key and value types, "
                           f"not {map!r}")
        if key is not None or value is not None:
            raise BPFError("iter: give map= or key=/value=, not both")
        key, value = map.key, map.value
    typed: dict[str, Any] = {}
    for name, t in (("key", key), ("value", value)):
        if t is None:
            continue
        if not (isinstance(t, type) and issubclass(t, (IntType, Struct))):
            raise BPFError(f"iter: {name}= is an integer type or a bpf.Struct, not {t!r}")
        typed[name] = t

    def deco(fn: Callable[..., Any]) -> ProgramDecl:
        d = _decl(fn, ProgramType.TRACING, f"iter/{target}", "iter",
                  lambda: _IterAccess(target, typed), attach_type=AttachType.TRACE_ITER,
                  attach_to=target)
        if map is not None:
            d.uses_maps = (map,)   # bpf.load creates it, so coll.<name> can be iterated
        return d

    return deco


def _seq_check(c: _FunctionCompiler, node: ast.Call, name: str, usage: str,
               helper: asm.Helper) -> None:
    """The checks shared by the seq helpers: ``ctx`` first (the program's, or a
    ``@bpf.func``'s ctx parameter), an iterator program, a helper the type may call."""
    if node.keywords or not node.args or not (
            isinstance(node.args[0], ast.Name) and node.args[0].id == c.ctx_name
            and (c.sub is None or c.ctx_param is not None)):
        raise _err(node, f"{usage} takes the program's ctx (in a @bpf.func, a ctx "
                         "parameter) first")
    if c.decl.ctx_kind != "iter":
        raise _err(node, f"{name} is for iterator programs (@bpf.iter)")
    try:
        check_helper_allowed(int(helper), c.decl.program_type)
    except AssemblerError as e:
        raise _err(node, str(e)) from None


def _seq_r1(c: _FunctionCompiler) -> None:
    """r1 = ctx->meta->seq."""
    c.emit(asm.load(asm.DW, R1, R10, c.ctx_slot),
           asm.load(asm.DW, R1, R1, 0),   # ctx->meta
           asm.load(asm.DW, R1, R1, 0))   # meta->seq


class _SeqWrite(_KCall):
    def compile(self, c: _FunctionCompiler, node: ast.Call) -> V:
        usage = "seq_write(ctx, record)"
        _seq_check(c, node, "seq_write", usage, asm.Helper.SEQ_WRITE)
        if len(node.args) != 2:
            raise _err(node, f"{usage} takes the ctx and a struct pointer")
        v = c.expr(node.args[1])
        if v.ptr is None or v.nullable:
            raise _err(node.args[1], "seq_write takes a (checked) struct pointer")
        assert v.reg is not None
        c.emit(asm.mov(R2, v.reg))
        _seq_r1(c)
        c.emit(asm.mov(R3, v.ptr.struct.size), asm.call(asm.Helper.SEQ_WRITE))
        c.release(v)
        r = c.temp(node)
        c.emit(asm.mov(r, R0))
        return _V(ty=i64, reg=r)


#: A conversion ``bpf_seq_printf`` accepts (kernel/bpf/helpers.c, bpf_bprintf_prepare):
#: ``%%``; flags ``0 +-`` and a width, no precision; ``%c``, ``%s``, ``%p``/``%pK``/``%px``
#: and the integers ``d i u x X`` with an optional ``l``/``ll``.
_CONV = re.compile(r"%(?:%|[0 +-]*(?:[1-9][0-9]*)?(?:(c|s)|(p[Kx]?)(?![a-zA-Z0-9])|"
                   r"(?:ll|l)?([diuxX])))")
_MAX_PRINTF_ARGS = 12   # MAX_BPRINTF_VARARGS
_MAX_FMT = 256


def printf_format(fmt: str, node: ast.AST) -> list[str]:
    """The argument kinds of a ``bpf_seq_printf`` format (``"s"`` a string, ``"i"`` an
    integer), or a compile error naming what the kernel would refuse at run time."""
    kinds: list[str] = []
    i = 0
    while (j := fmt.find("%", i)) >= 0:
        m = _CONV.match(fmt, j)
        if m is None:
            bad = fmt[j:j + 4]
            raise _err(node, f"format {fmt!r}: {bad!r}... is not a conversion the kernel's "
                             "bpf_seq_printf takes (%d %i %u %x %X with l/ll, %c, %s, %p, "
                             "%pK, %px, %%; flags 0 +- and a width, no precision)")
        if m.group(0) != "%%":
            kinds.append("s" if m.group(1) == "s" else "i")
        i = m.end()
    if len(kinds) > _MAX_PRINTF_ARGS:
        raise _err(node, f"bpf_seq_printf takes at most {_MAX_PRINTF_ARGS} values, the "
                         f"format has {len(kinds)}")
    return kinds


class _SeqPrintf(_KCall):
    def compile(self, c: _FunctionCompiler, node: ast.Call) -> V:
        usage = 'seq_printf(ctx, "format", ...)'
        _seq_check(c, node, "seq_printf", usage, asm.Helper.SEQ_PRINTF)
        if len(node.args) < 2 or not isinstance(node.args[1], ast.Constant) or \
                not isinstance(node.args[1].value, str):
            raise _err(node, f"{usage} needs a literal format string after the ctx")
        text = node.args[1].value
        kinds = printf_format(text, node.args[1])
        values = node.args[2:]
        if len(values) != len(kinds):
            raise _err(node, f"the format {text!r} takes {len(kinds)} value(s), "
                             f"{len(values)} given")
        fmt = text.encode() + b"\0"
        if len(fmt) > _MAX_FMT:
            raise _err(node.args[1], f"the format is {len(fmt)} bytes with its NUL; at most "
                                     f"{_MAX_FMT} fit on the stack here")
        data = c.alloc(8 * len(values)) if values else 0
        for k, (kind, a) in enumerate(zip(kinds, values, strict=True)):
            if kind == "s":
                _string_address(c, a)
                c.emit(asm.store(asm.DW, R10, data + 8 * k, R3))
            else:
                v = c.expr(a)
                if not v.is_int:
                    c.release(v)
                    raise _err(a, f"value {k + 1} is printed as an integer: pass one")
                r = c.to_reg(v, v.ty or i64, a)
                c.emit(asm.store(asm.DW, R10, data + 8 * k, r))
                c.release(r)
        buf = c.stack_literal(fmt)
        _seq_r1(c)
        c.emit(asm.mov(R2, R10), asm.add(R2, buf), asm.mov(R3, len(fmt)))
        if values:
            c.emit(asm.mov(R4, R10), asm.add(R4, data), asm.mov(R5, 8 * len(values)))
        else:
            c.emit(asm.mov(R4, 0), asm.mov(R5, 0))
        c.emit(asm.call(asm.Helper.SEQ_PRINTF))
        r = c.temp(node)
        c.emit(asm.mov(r, R0))
        return _V(ty=i64, reg=r)


def _string_address(c: _FunctionCompiler, a: ast.expr) -> None:
    """r3 = the address of the string ``a`` for ``%s``: a ``bytes_[N]`` field of a record
    (a stack struct, a map value) or a kernel char array (``task.comm``)."""
    from ._kstruct import _address
    from .types import _Bytes

    msg = ("%s prints a bytes_ field of a record (row.comm) or a kernel char array "
           "(ctx.task.comm)")
    if not isinstance(a, ast.Attribute) or (isinstance(a.value, ast.Name)
                                            and a.value.id == c.ctx_name):
        raise _err(a, msg)
    base = c.expr(a.value, allow_nullable=True)
    if base.kt is not None:
        from . import _kstruct

        v = _kstruct.member(c, base, a)
        kt = v.kt
        if kt is None or kt.elem is None or v.reg is None:
            c.release(v)
            raise _err(a, msg)
        _address(c, v.reg, kt, kt.offset)
        c.release(v)
        return
    base, fld = c.field_ref(a, base)
    assert base.reg is not None
    if not isinstance(fld.type, _Bytes):
        c.release(base)
        raise _err(a, msg)
    c.emit(asm.mov(R3, base.reg), asm.add(R3, fld.offset))
    c.release(base)


#: ``bpf.seq_write(ctx, record)`` in an iterator program: append the bytes of a struct
#: (a stack struct, a map value) to the iterator's output (``bpf_seq_write``, Linux 5.8).
#: Python reads them back with the same class: ``T.decode`` of each ``T.size`` chunk.
#: Returns 0, or ``-EOVERFLOW`` when the seq buffer is full (the kernel then calls the
#: program again for the same object with an empty buffer).
seq_write: Any = _SeqWrite("seq_write")

#: ``bpf.seq_printf(ctx, "pid %d comm %s\\n", t.pid, t.comm)`` in an iterator program: append
#: formatted text to the iterator's output (``bpf_seq_printf``, Linux 5.8). The format is a
#: literal, checked when compiling against what the kernel takes (``%d %i %u %x %X`` with
#: ``l``/``ll``, ``%c``, ``%s``, ``%p``/``%pK``/``%px``, ``%%``; flags ``0 +-`` and a width),
#: with at most 12 values: integers, and for ``%s`` a record's ``bytes_`` field or a kernel
#: char array. Returns 0, or ``-EOVERFLOW`` when the seq buffer is full (the kernel then
#: calls the program again for the same object).
seq_printf: Any = _SeqPrintf("seq_printf")


# -- cgroup sock_addr and sockopt ------------------------------------------------------------------
_SOCK_ADDR = {
    "bind4": AttachType.CGROUP_INET4_BIND, "bind6": AttachType.CGROUP_INET6_BIND,
    "connect4": AttachType.CGROUP_INET4_CONNECT, "connect6": AttachType.CGROUP_INET6_CONNECT,
    "sendmsg4": AttachType.CGROUP_UDP4_SENDMSG, "sendmsg6": AttachType.CGROUP_UDP6_SENDMSG,
    "recvmsg4": AttachType.CGROUP_UDP4_RECVMSG, "recvmsg6": AttachType.CGROUP_UDP6_RECVMSG,
    "getpeername4": AttachType.CGROUP_INET4_GETPEERNAME,
    "getpeername6": AttachType.CGROUP_INET6_GETPEERNAME,
    "getsockname4": AttachType.CGROUP_INET4_GETSOCKNAME,
    "getsockname6": AttachType.CGROUP_INET6_GETSOCKNAME,
    "connect_unix": AttachType.CGROUP_UNIX_CONNECT,
    "sendmsg_unix": AttachType.CGROUP_UNIX_SENDMSG,
    "recvmsg_unix": AttachType.CGROUP_UNIX_RECVMSG,
    "getpeername_unix": AttachType.CGROUP_UNIX_GETPEERNAME,
    "getsockname_unix": AttachType.CGROUP_UNIX_GETSOCKNAME,
}


class BpfSock(Struct):
    """``struct bpf_sock`` (uapi), what ``ctx.sk`` of the cgroup socket kinds points to
    (``PTR_TO_SOCKET``, read-only): the socket's ``family``, ``type``, ``protocol``,
    ``mark``, ``priority``, bound device, addresses and ports. ``src_port`` is in host order
    (the kernel's), ``dst_port``/``src_ip4``/``dst_ip4`` are network-order words read in
    host order here; ``src_ip6_0..3``/``dst_ip6_0..3`` are the raw 32-bit words."""

    bound_dev_if: u32
    family: u32
    type: u32
    protocol: u32
    mark: u32
    priority: u32
    src_ip4: be32
    src_ip6_0: u32
    src_ip6_1: u32
    src_ip6_2: u32
    src_ip6_3: u32
    src_port: u32
    dst_port: be16
    zero_pad: u16
    dst_ip4: be32
    dst_ip6_0: u32
    dst_ip6_1: u32
    dst_ip6_2: u32
    dst_ip6_3: u32
    state: u32
    rx_queue_mapping: i32


class _SockCtx(CtxAccess):
    """A cgroup socket context with ``ctx.sk``: the ``struct bpf_sock *`` at ``sk_offset``
    (a ``__bpf_md_ptr``, loaded as 8 bytes), a pointer to a read-only :class:`BpfSock`."""

    def __init__(self, fields: dict[str, Field], sk_offset: int) -> None:
        self.sk_offset = sk_offset
        super().__init__({**fields, "sk": Field(sk_offset, 8, u64)})

    def read(self, c: _FunctionCompiler, node: ast.Attribute) -> V:
        if node.attr != "sk":
            return super().read(c, node)
        from ._compiler import Ptr

        r = self._ctx(c, node)
        c.emit(asm.load(asm.DW, r, r, self.sk_offset))
        return _V(reg=r, ptr=Ptr(BpfSock, "sock"))

    def write(self, c: _FunctionCompiler, target: ast.Attribute, value: ast.expr) -> None:
        if target.attr == "sk":
            raise _err(target, "ctx.sk is read-only")
        super().write(c, target, value)


def _sock_addr_ctx() -> CtxAccess:
    # struct bpf_sock_addr (uapi): addresses and ports in network byte order, read and
    # written here in host order; the verifier allows 4-byte writes only
    f: dict[str, Field] = {
        "user_family": Field(0, 4, u32),
        "user_ip4": Field(4, 4, u32, True, 4),
        "user_port": Field(24, 2, int_type(2, False), True, 4),
        "family": Field(28, 4, u32),
        "type": Field(32, 4, u32),
        "protocol": Field(36, 4, u32),
        "msg_src_ip4": Field(40, 4, u32, True, 4),
    }
    for i in range(4):
        f[f"user_ip6_{i}"] = Field(8 + 4 * i, 4, u32, True, 4)
        f[f"msg_src_ip6_{i}"] = Field(44 + 4 * i, 4, u32, True, 4)
    return _SockCtx(f, 64)


class _UnixAddrCtx(_SockCtx):
    """The unix-socket sock_addr hooks (Linux 6.7): the socket fields of ``bpf_sock_addr``,
    and the address through the kernel's own context (``bpf_cast_to_kern_ctx``, a kfunc):
    ``ctx.uaddrlen`` and ``ctx.sun_path`` (copied into a ``bytes_`` field, its length taken
    from ``uaddrlen``), rewritten with ``ctx.set_sun_path(b"...")``."""

    _PATH_MAX = 108   # sizeof(sockaddr_un.sun_path)

    def __init__(self) -> None:
        super().__init__({"user_family": Field(0, 4, u32), "family": Field(28, 4, u32),
                          "type": Field(32, 4, u32), "protocol": Field(36, 4, u32),
                          "uaddrlen": Field(0, 4, u32), "sun_path": Field(0, 8, u64)}, 64)

    @staticmethod
    def _kern(c: _FunctionCompiler, node: ast.AST) -> tuple[Any, int, int, int]:
        """r0 = the ``struct bpf_sock_addr_kern *`` of ctx; the kfunc's BTF id and the
        offsets of ``uaddr``, ``uaddrlen`` and ``sockaddr_un.sun_path``."""
        from .. import btf
        from . import _kstruct

        try:
            spec = btf.load_kernel()
            fn = spec.find("bpf_cast_to_kern_ctx", kind=btf.Func)
            kern = _kstruct.kernel_type("bpf_sock_addr_kern")
            sun = _kstruct.kernel_type("sockaddr_un")
            offs = {f: _kstruct.resolve_field(kern, f).offset for f in ("uaddr", "uaddrlen")}
            path = _kstruct.resolve_field(sun, "sun_path").offset
        except (KeyError, OSError, BPFError) as e:
            raise _err(node, f"unix-socket addresses need the kernel's BTF with "
                             f"bpf_cast_to_kern_ctx and bpf_sock_addr_kern.uaddrlen (Linux "
                             f"6.7): {e}") from None
        c.emit(asm.load(asm.DW, R1, R10, c.ctx_slot), asm.kfunc_call(fn.id))
        return fn, offs["uaddr"], offs["uaddrlen"], path

    def read(self, c: _FunctionCompiler, node: ast.Attribute) -> V:
        if node.attr == "sun_path":
            raise _err(node, "ctx.sun_path is bytes: copy it into a bytes_ field "
                             "(r.path = ctx.sun_path)")
        if node.attr != "uaddrlen":
            return super().read(c, node)
        _, _, len_off, _ = self._kern(c, node)
        r = c.temp(node)
        c.emit(asm.load(asm.W, r, R0, len_off))
        return _V(ty=u32, reg=r)

    def write(self, c: _FunctionCompiler, target: ast.Attribute, value: ast.expr) -> None:
        if target.attr in ("sun_path", "uaddrlen"):
            raise _err(target, f"ctx.{target.attr} is read-only: rewrite the address with "
                               "ctx.set_sun_path(b\"...\")")
        super().write(c, target, value)

    def bytes_into(self, c: _FunctionCompiler, dst: V, fld: Any, value: ast.expr) -> bool:
        """``record.field = ctx.sun_path``: the path's ``uaddrlen - 2`` bytes (at most the
        field's size), zeroes after them. False when ``value`` is something else."""
        if not (isinstance(value, ast.Attribute) and value.attr == "sun_path" and
                isinstance(value.value, ast.Name) and value.value.id == c.ctx_name):
            return False
        assert dst.reg is not None
        size = int(fld.size)
        c.zero_range(dst.reg, fld.offset, fld.offset + size)   # a short path: zeroes after
        _, addr_off, len_off, path_off = self._kern(c, value)
        skip, ok = c.label("nopath"), c.label("pathlen")
        n = min(size, self._PATH_MAX)
        c.emit(asm.load(asm.W, R2, R0, len_off),
               asm.jle(R2, path_off, skip),       # no path (an unnamed address)
               asm.sub(R2, path_off),
               asm.jle(R2, n, ok),
               asm.mov(R2, n))
        c.place(ok)
        c.emit(asm.load(asm.DW, R3, R0, addr_off), asm.add(R3, path_off),
               asm.mov(R1, dst.reg), asm.add(R1, fld.offset),
               asm.call(asm.Helper.PROBE_READ_KERNEL))
        c.place(skip)
        c.release(dst)
        return True

    def call(self, c: _FunctionCompiler, node: ast.Call, name: str) -> V:
        if name != "set_sun_path":
            raise _err(node, f"ctx.{name}() is not supported (unix hooks have "
                             "ctx.set_sun_path(path))")
        a = node.args[0] if len(node.args) == 1 and not node.keywords else None
        if not (isinstance(a, ast.Constant) and isinstance(a.value, (str, bytes))):
            raise _err(node, 'ctx.set_sun_path(b"/path") takes one literal path')
        path = a.value.encode() if isinstance(a.value, str) else a.value
        if not 0 < len(path) <= self._PATH_MAX:
            raise _err(a, f"a unix socket path is 1 to {self._PATH_MAX} bytes, not "
                          f"{len(path)}")
        from .. import btf

        try:
            fn = btf.load_kernel().find("bpf_sock_addr_set_sun_path", kind=btf.Func)
        except (KeyError, OSError, BPFError) as e:
            raise _err(node, f"ctx.set_sun_path needs the kfunc bpf_sock_addr_set_sun_path "
                             f"(Linux 6.7): {e}") from None
        # on the stack: the kernel takes kfunc memory arguments as writable, so the frozen
        # .rodata is refused ("write into map forbidden")
        buf = c.stack_literal(path)
        self._kern(c, node)
        c.emit(asm.mov(R1, R0), asm.mov(R2, R10), asm.add(R2, buf), asm.mov(R3, len(path)),
               asm.kfunc_call(fn.id))
        r = c.temp(node)
        c.emit(asm.mov(r, R0))
        return _V(ty=i64, reg=r)


def cgroup_sock_addr(hook: str) -> Callable[[Callable[..., Any]], ProgramDecl]:
    """A cgroup sock_addr program (``SEC("cgroup/connect4")``, Linux 4.17; ``hook`` is one
    of bind4/6, connect4/6, sendmsg4/6, recvmsg4/6, getpeername4/6, getsockname4/6): runs on
    that call of a socket in the cgroup. ``ctx.user_ip4``, ``ctx.user_port`` (host order)
    and ``ctx.user_ip6_0..3`` are the address, readable and writable (a write redirects the
    call); ``ctx.family``, ``ctx.type``, ``ctx.protocol`` read the socket, and ``ctx.sk``
    points to its read-only ``struct bpf_sock`` (``ctx.sk.src_port`` once bound,
    ``ctx.sk.mark``...). Returns 1 to allow, 0 to deny (``EPERM``). Attach with
    ``ebpf.link.cgroup.attach_cgroup``.

    The unix-socket hooks (connect_unix, sendmsg_unix, recvmsg_unix, getpeername_unix,
    getsockname_unix; Linux 6.7) have no IP fields; they read the socket (``ctx.family``,
    ``ctx.type``, ``ctx.sk``), the address length ``ctx.uaddrlen``, the path into a record
    (``r.path = ctx.sun_path``, a ``bytes_[N]`` field), and may rewrite it with
    ``ctx.set_sun_path(b"/other")``."""
    if hook not in _SOCK_ADDR:
        raise BPFError(f"cgroup_sock_addr: hook is one of {', '.join(_SOCK_ADDR)}, "
                       f"not {hook!r}")

    def deco(fn: Callable[..., Any]) -> ProgramDecl:
        access = _UnixAddrCtx() if hook.endswith("_unix") else _sock_addr_ctx()
        return _decl(fn, ProgramType.CGROUP_SOCK_ADDR, f"cgroup/{hook}", "sock_addr",
                     access, attach_type=_SOCK_ADDR[hook])

    return deco


class _SockoptAccess(_SockCtx):
    """``struct bpf_sockopt`` (uapi): the ``sk``, ``optval`` and ``optval_end`` pointers,
    then ``level``, ``optname``, ``optlen`` and ``retval`` (``__s32`` each, the fields);
    ``ctx.optval_load(T)`` reads the option's value from ``[optval, optval_end)``."""

    _OPTVAL, _OPTVAL_END, _OPTLEN = 8, 16, 32

    def __init__(self) -> None:
        i32 = int_type(4, True)
        super().__init__({name: Field(24 + 4 * k, 4, i32, store=4)
                          for k, name in enumerate(("level", "optname", "optlen", "retval"))},
                         0)

    def call(self, c: _FunctionCompiler, node: ast.Call, name: str) -> V:
        from ._compiler import _cell

        if name != "optval_load":
            raise _err(node, f"ctx.{name}() is not supported (sockopt programs have "
                             "ctx.optval_load(T))")
        if len(node.args) != 1 or node.keywords:
            raise _err(node, "ctx.optval_load(T) takes one type: an integer type (i32, "
                             "u32...) or a bpf.Struct")
        t = c.static(node.args[0]) if c.is_static(node.args[0]) else None
        if isinstance(t, type) and issubclass(t, IntType) and t is not IntType:
            st = _cell(t)  # p.value, as m.lookup(k) of an integer map
        elif isinstance(t, type) and issubclass(t, Struct) and t is not Struct:
            st = t
        else:
            raise _err(node.args[0], "ctx.optval_load needs an integer type or a bpf.Struct "
                                     f"class, not {ast.unparse(node.args[0])}")
        # the buffer's bounds (a packet range for the verifier: PTR_TO_PACKET, and writable)
        v = c.xdp_load(st, _V(lit=0), node, self._OPTVAL, self._OPTVAL_END, 8)
        # and the option's length: the setsockopt buffer is at least 16 bytes whatever
        # optlen is, so a short option would otherwise read the zeroes after it
        n, keep = c.temp(node), c.label("optlen")
        assert v.reg is not None
        c.emit(asm.load(asm.DW, n, R10, c.ctx_slot), asm.load(asm.W, n, n, self._OPTLEN),
               asm.lsh(n, 32), asm.arsh(n, 32), asm.jsge(n, st.size, keep), asm.mov(v.reg, 0))
        c.place(keep)
        c.release(n)
        return v


def _sockopt_ctx() -> CtxAccess:
    return _SockoptAccess()


def cgroup_sockopt(hook: str) -> Callable[[Callable[..., Any]], ProgramDecl]:
    """A cgroup sockopt program for ``"getsockopt"`` or ``"setsockopt"``
    (``SEC("cgroup/getsockopt")``, Linux 5.3): ``ctx.level``, ``ctx.optname``,
    ``ctx.optlen`` and (getsockopt) ``ctx.retval``, each an ``i32``; the verifier decides
    which a hook may write (``retval`` and ``optlen`` in getsockopt, ``level``, ``optname``
    and ``optlen`` in setsockopt); ``ctx.sk`` is the socket's read-only ``struct
    bpf_sock`` (``ctx.sk.family``, ``ctx.sk.protocol``, ``ctx.sk.src_port``,
    ``ctx.sk.dst_port`` in host order...). Returns 1 to go on, 0 to fail the call with
    ``EPERM``.
    Attach with ``ebpf.link.cgroup.attach_cgroup``.

    ``p = ctx.optval_load(T)`` (``T`` an integer type or a ``bpf.Struct``) points to the
    option's value, or is ``None`` when ``ctx.optlen`` or the kernel's buffer
    (``optval_end``) is shorter than ``T``; ``p.value`` (a struct's fields) reads and
    writes it in place. In setsockopt the kernel's handler then gets the changed bytes
    (``ctx.optlen`` of them; ``ctx.optlen = -1`` skips the handler, the call returning 0);
    in getsockopt the caller gets them."""
    types = {"getsockopt": AttachType.CGROUP_GETSOCKOPT,
             "setsockopt": AttachType.CGROUP_SETSOCKOPT}
    if hook not in types:
        raise BPFError(f"cgroup_sockopt: hook is 'getsockopt' or 'setsockopt', not {hook!r}")

    def deco(fn: Callable[..., Any]) -> ProgramDecl:
        return _decl(fn, ProgramType.CGROUP_SOCKOPT, f"cgroup/{hook}", "sockopt",
                     _sockopt_ctx(), attach_type=types[hook])

    return deco

