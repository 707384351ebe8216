"""uprobes, uretprobes, uprobe_multi and USDT probes on user-space code.

A uprobe is placed at a *file offset* of an executable or shared library; every process
that maps the file hits it (or only ``pid``). Symbols are resolved to offsets with the
library's own ELF reader (``.symtab`` then ``.dynsym``, through the ``PT_LOAD`` mapping),
so stripped system libraries such as Debian's libc work::

    prog = ebpf.Program.load(ebpf.ProgramType.KPROBE, insns)        # uprobes are KPROBE type
    with attach_uprobe(prog, "libc.so.6", "malloc", pid=os.getpid()):
        ...

Programs read function arguments and return values from ``struct pt_regs`` (see
:func:`ebpf.link.perf_event.pt_regs_arg_offset`).

USDT probes (``DTRACE_PROBE``/``STAP_PROBE`` in C, ``python:function__entry``...) are found
in ``.note.stapsdt``; :func:`attach_usdt` places a uprobe on each site and, when the probe
has a semaphore, passes its offset so the kernel increments it while attached (>= 4.20).

Kernel: uprobes >= 4.1 (the ``uprobe`` PMU >= 4.17; below that the probe is created in
``<tracefs>/uprobe_events``), perf event links >= 5.15 (ioctl fallback below),
``uprobe_multi`` >= 6.6.
"""

from __future__ import annotations

import ctypes
import difflib
import errno as _errno
import os
import shutil
import sysconfig
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, final

from .. import asm, errors, features
from .._elfsym import ElfFile, SymbolNotFoundError, USDTArgument, USDTProbe
from .._programs import Program
from .._sys import commands
from .._sys.fd import FD
from .._types import AttachType, LinkType, ProgramType
from .._uapi import _generated_types as _t
from .base import Link, link_create
from .perf_event import (
    PerfEventLink,
    PerfEventLinks,
    _ProbeEvent,
    attach_perf_fd,
    check_attach_type,
    check_program,
    create_probe_event,
    open_perf_event,
    pmu_config_bit,
    pmu_type,
    pt_regs_offset,
    tracepoint_event,
)

__all__ = [
    "UprobeMultiInfo",
    "UprobeMultiLink",
    "attach_uprobe",
    "attach_uprobe_multi",
    "attach_usdt",
    "resolve_binary",
    "uprobe_offset",
    "usdt_argument",
    "usdt_layouts",
    "usdt_probes",
]

_LIB_DIRS = ("/lib", "/usr/lib", "/lib64", "/usr/lib64", "/usr/local/lib")


def _loaded_libraries() -> list[str]:
    paths = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split(None, 5)
                if len(parts) == 6 and parts[5].startswith("/"):
                    paths.append(parts[5].strip())
    except OSError:
        pass
    return paths


def resolve_binary(path: str | os.PathLike[str]) -> str:
    """The absolute path of an executable or library given by path or by bare name.

    A name containing ``/`` is taken as a path. A bare library name (``"libc.so.6"``) is
    looked up among the libraries this process has mapped, ``LD_LIBRARY_PATH`` and the
    standard (multiarch) library directories; another bare name is searched in ``PATH``.
    Raises :class:`FileNotFoundError` when nothing matches.
    """
    p = os.fspath(path)
    if not p:
        raise ValueError("empty binary path")
    if "/" in p:
        if not os.path.isfile(p):
            raise FileNotFoundError(2, "no such file", p)
        return os.path.abspath(p)
    if ".so" in p:
        for loaded in _loaded_libraries():
            if os.path.basename(loaded) == p:
                return loaded
        multiarch = sysconfig.get_config_var("MULTIARCH") or ""
        dirs = [d for d in os.environ.get("LD_LIBRARY_PATH", "").split(":") if d]
        for base in _LIB_DIRS:
            if multiarch:
                dirs.append(os.path.join(base, multiarch))
            dirs.append(base)
        for d in dirs:
            cand = os.path.join(d, p)
            if os.path.isfile(cand):
                return os.path.realpath(cand)
    else:
        found = shutil.which(p)
        if found:
            return os.path.abspath(found)
    raise FileNotFoundError(2, "binary or library not found", p)


def uprobe_offset(path: str | os.PathLike[str], symbol: str | None = None, *,
                  address: int | None = None, offset: int = 0) -> int:
    """File offset a uprobe on ``symbol`` (or virtual ``address``) of ``path`` goes to.

    Raises :class:`~ebpf._elfsym.SymbolNotFoundError` (a :class:`LookupError`, with close
    matches) when the symbol is not defined in the file.
    """
    if symbol is not None and address is not None:
        raise ValueError("give a symbol or an address, not both")
    if offset < 0:
        raise ValueError(f"negative offset {offset}")
    if symbol is None and address is None:
        return offset
    with ElfFile.open(path) as elf:
        if symbol is not None:
            return elf.symbol_offset(symbol) + offset
        assert address is not None
        return elf.address_to_offset(address) + offset


def _check_pid(pid: int, what: str, *, all_value: int) -> int:
    if pid == 0 and all_value == -1:
        return os.getpid()
    if pid < all_value:
        raise ValueError(f"{what}: bad pid {pid}")
    return pid


def _uprobe_event(path: str, offset: int, *, retprobe: bool, pid: int, ref_ctr_offset: int,
                  use_pmu: bool | None = None) -> tuple[FD, _ProbeEvent | None]:
    """Open the perf event of a uprobe: (fd, tracefs event or None)."""
    if use_pmu is not False:
        try:
            ptype = pmu_type("uprobe")
        except FileNotFoundError:
            if use_pmu:
                raise errors.NotSupportedError("uprobe PMU", "4.17") from None
        else:
            attr = _t.PerfEventAttr()
            attr.type = ptype
            if retprobe:
                attr.config |= 1 << pmu_config_bit("uprobe", "retprobe")[0]
            if ref_ctr_offset:
                try:
                    lo, _hi = pmu_config_bit("uprobe", "ref_ctr_offset")
                except FileNotFoundError:
                    raise errors.NotSupportedError("uprobe semaphores (ref_ctr_offset)",
                                                   "4.20") from None
                attr.config |= ref_ctr_offset << lo
            raw = os.fsencode(path) + b"\0"
            buf = ctypes.create_string_buffer(raw, len(raw))
            attr.uprobe_path = ctypes.addressof(buf)
            attr.probe_offset = offset
            attr.sample_period = 1
            attr.wakeup_events = 1
            fd = open_perf_event(attr, pid=pid, cpu=0 if pid < 0 else -1, keep=buf)
            return fd, None
    spec = f"{path}:{offset:#x}"
    if ref_ctr_offset:
        spec += f"({ref_ctr_offset:#x})"
    event = create_probe_event("uprobe", spec, retprobe=retprobe,
                               what=os.path.basename(path))
    try:
        fd = tracepoint_event(event.id, pid=pid)
    except BaseException:
        event.remove()
        raise
    return fd, event


def _attach_at(program: Program, path: str, offset: int, *, retprobe: bool, pid: int,
               cookie: int, ref_ctr_offset: int, use_pmu: bool | None = None) -> PerfEventLink:
    fd, event = _uprobe_event(path, offset, retprobe=retprobe, pid=pid,
                              ref_ctr_offset=ref_ctr_offset, use_pmu=use_pmu)
    return attach_perf_fd(program, fd, cookie=cookie, event=event)


def attach_uprobe(
    program: Program,
    path: str | os.PathLike[str],
    symbol: str | None = None,
    *,
    offset: int = 0,
    address: int | None = None,
    retprobe: bool = False,
    pid: int = -1,
    cookie: int = 0,
    ref_ctr_offset: int = 0,
) -> PerfEventLink:
    """Run ``program`` when code at ``symbol`` (+ ``offset``) of ``path`` executes.

    ``path`` is a file path or a bare name (``"libc.so.6"``, ``"bash"``; see
    :func:`resolve_binary`). Give ``symbol`` (a function; ``"memcpy@GLIBC_2.2.5"`` picks a
    version), or ``address`` (a virtual address in the file), or neither to place the probe
    at file offset ``offset``. ``retprobe`` fires on return (read the return value with
    :func:`~ebpf.link.perf_event.pt_regs_return_offset`). ``pid`` -1 traces every process,
    0 this one, N only process N. ``ref_ctr_offset`` is the file offset of a USDT-style
    semaphore the kernel increments while attached.

    ``program`` must be a ``KPROBE`` program loaded without an expected attach type (those
    for ``uprobe_multi`` go to :func:`attach_uprobe_multi`). Inputs are checked before any
    syscall: :class:`ValueError` for the program, :class:`FileNotFoundError` for the file,
    :class:`~ebpf._elfsym.SymbolNotFoundError` for the symbol. Note: a probe on an
    ``IFUNC`` symbol (e.g. libc's default ``memcpy``) hits the resolver, not the function.
    """
    check_program(program, ProgramType.KPROBE, what="attach_uprobe")
    check_attach_type(program, (None,), what="attach_uprobe")
    if cookie < 0 or ref_ctr_offset < 0:
        raise ValueError("attach_uprobe: cookie and ref_ctr_offset must be unsigned")
    pid = _check_pid(pid, "attach_uprobe", all_value=-1)
    real = resolve_binary(path)
    off = uprobe_offset(real, symbol, address=address, offset=offset)
    return _attach_at(program, real, off, retprobe=retprobe, pid=pid, cookie=cookie,
                      ref_ctr_offset=ref_ctr_offset)


# --- uprobe_multi -----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class UprobeMultiInfo:
    """What an uprobe_multi link is attached to (kernel >= 6.8 reports it)."""

    path: str
    offsets: tuple[int, ...]
    ref_ctr_offsets: tuple[int, ...]
    cookies: tuple[int, ...]
    flags: int
    pid: int

    @property
    def retprobe(self) -> bool:
        return bool(self.flags & _t.BPF_F_UPROBE_MULTI_RETURN)


@final
class UprobeMultiLink(Link):
    """One program on many uprobes of one file (``BPF_LINK_TYPE_UPROBE_MULTI``, >= 6.6).

    Its program cannot be replaced (:meth:`update` raises
    :class:`~ebpf.errors.NotSupportedError`).
    """

    link_type = LinkType.UPROBE_MULTI

    def uprobe_info(self) -> UprobeMultiInfo:
        """Path, offsets, semaphores, cookies, flags and pid, as the kernel reports them."""
        first = commands.obj_info(self.fileno(), _t.BpfLinkInfo()).uprobe_multi
        n = first.count
        path = ctypes.create_string_buffer(max(first.path_size, 1) or 4096)
        offs = (ctypes.c_uint64 * max(n, 1))()
        refs = (ctypes.c_uint64 * max(n, 1))()
        cookies = (ctypes.c_uint64 * max(n, 1))()
        info = _t.BpfLinkInfo()
        um = info.uprobe_multi
        um.path = ctypes.addressof(path)
        um.path_size = len(path)
        um.offsets = ctypes.addressof(offs)
        um.ref_ctr_offsets = ctypes.addressof(refs)
        um.cookies = ctypes.addressof(cookies)
        um.count = n
        commands.obj_info(self.fileno(), info)
        um = info.uprobe_multi
        return UprobeMultiInfo(path.value.decode("utf-8", "replace"), tuple(offs[:n]),
                               tuple(refs[:n]), tuple(cookies[:n]), um.flags, um.pid)

    def __enter__(self) -> UprobeMultiLink:
        return self


def _u64_array(values: Sequence[int] | None, n: int,
               what: str) -> ctypes.Array[ctypes.c_uint64] | None:
    if values is None:
        return None
    vals = list(values)
    if len(vals) != n:
        raise ValueError(f"attach_uprobe_multi: {len(vals)} {what} for {n} probe(s)")
    if any(v < 0 for v in vals):
        raise ValueError(f"attach_uprobe_multi: negative {what}")
    return (ctypes.c_uint64 * n)(*vals)


def _have_uprobe_multi() -> bool:
    """The kernel has uprobe_multi links (a probe that cannot decide counts as yes, so the
    caller's own error stands)."""
    try:
        return features.supports(features.have_link_type, LinkType.UPROBE_MULTI)
    except errors.ProbeError:
        return True


def attach_uprobe_multi(
    program: Program,
    path: str | os.PathLike[str],
    symbols: Sequence[str] | None = None,
    *,
    offsets: Sequence[int] | None = None,
    ref_ctr_offsets: Sequence[int] | None = None,
    cookies: Sequence[int] | None = None,
    retprobe: bool = False,
    pid: int = 0,
) -> UprobeMultiLink:
    """Attach ``program`` to many uprobes of ``path`` at once, as one link.

    Give ``symbols`` (resolved like :func:`attach_uprobe`) or raw file ``offsets``.
    ``ref_ctr_offsets`` and ``cookies`` are per probe. ``pid`` 0 means every process (as the
    kernel has it), N only process N. The program must be a ``KPROBE`` program loaded with
    ``expected_attach_type=TRACE_UPROBE_MULTI`` (or ``TRACE_UPROBE_SESSION``, >= 6.13, which
    runs at entry and return and takes no ``retprobe``). Kernel >= 6.6.
    """
    check_program(program, ProgramType.KPROBE, what="attach_uprobe_multi")
    check_attach_type(program, (AttachType.TRACE_UPROBE_MULTI, AttachType.TRACE_UPROBE_SESSION),
                      what="attach_uprobe_multi")
    eat = program.expected_attach_type
    at = AttachType(eat) if eat is not None else AttachType.TRACE_UPROBE_MULTI
    if at == AttachType.TRACE_UPROBE_SESSION and retprobe:
        raise ValueError("attach_uprobe_multi: a session program runs at entry and return; "
                         "retprobe does not apply")
    if (symbols is None) == (offsets is None):
        raise ValueError("attach_uprobe_multi: give symbols or offsets (one of them)")
    if pid < 0:
        raise ValueError(f"attach_uprobe_multi: bad pid {pid} (0 means every process)")
    real = resolve_binary(path)
    if symbols is not None:
        if isinstance(symbols, str):
            raise TypeError("attach_uprobe_multi: symbols must be a sequence of names")
        with ElfFile.open(real) as elf:
            offs = [elf.symbol_offset(s) for s in symbols]
    else:
        assert offsets is not None
        offs = list(offsets)
    n = len(offs)
    if n == 0:
        raise ValueError("attach_uprobe_multi: no probes given")
    offs_arr = _u64_array(offs, n, "offsets")
    refs_arr = _u64_array(ref_ctr_offsets, n, "ref_ctr_offsets")
    cookies_arr = _u64_array(cookies, n, "cookies")
    raw = os.fsencode(real) + b"\0"
    path_buf = ctypes.create_string_buffer(raw, len(raw))
    extra: dict[str, Any] = {
        "uprobe_multi.path": path_buf,
        "uprobe_multi.offsets": offs_arr,
        "uprobe_multi.cnt": n,
        "uprobe_multi.flags": _t.BPF_F_UPROBE_MULTI_RETURN if retprobe else 0,
        "uprobe_multi.pid": pid,
    }
    if refs_arr is not None:
        extra["uprobe_multi.ref_ctr_offsets"] = refs_arr
    if cookies_arr is not None:
        extra["uprobe_multi.cookies"] = cookies_arr
    try:
        fd = link_create(program, 0, at, **extra)
    except errors.SyscallError as e:
        # Before 6.6 the attach type is unknown: EINVAL, same as a bad argument. Tell them
        # apart by asking the kernel whether it has the link type at all.
        if e.errno == _errno.EINVAL and not _have_uprobe_multi():
            raise errors.NotSupportedError("BPF_LINK_TYPE_UPROBE_MULTI", "6.6",
                                           "attach_uprobe_multi") from e
        raise
    return UprobeMultiLink(fd, program)


# --- USDT -------------------------------------------------------------------------------------

def usdt_probes(path: str | os.PathLike[str]) -> list[USDTProbe]:
    """Every USDT probe of an executable or library (``.note.stapsdt``), with file offsets."""
    with ElfFile.open(resolve_binary(path)) as elf:
        return elf.usdt_probes()


def _layout_key(arg: USDTArgument) -> tuple[Any, ...]:
    return (arg.kind, arg.size, arg.signed, arg.register, arg.offset, arg.value,
            arg.index_register, arg.scale)


def usdt_layouts(sites: Sequence[USDTProbe]
                 ) -> tuple[list[tuple[USDTArgument, ...]], list[int]]:
    """The distinct argument layouts of the sites of one USDT probe and each site's layout.

    A compiler may place one probe's arguments differently at each site (a constant at one,
    a register or a stack slot at another). Returns the layouts in the order their first
    site appears in the note, and for each site the index of its layout: the attach cookie
    :func:`attach_usdt` gives that site by default when there is more than one layout, so
    a program compiled with every layout picks the right one (``@bpf.usdt`` does)."""
    layouts: list[tuple[USDTArgument, ...]] = []
    keys: dict[tuple[Any, ...], int] = {}
    index: list[int] = []
    for s in sites:
        key = tuple(_layout_key(a) for a in s.arguments)
        if key not in keys:
            keys[key] = len(layouts)
            layouts.append(tuple(s.arguments))
        index.append(keys[key])
    return layouts, index


def attach_usdt(
    program: Program,
    path: str | os.PathLike[str],
    provider: str,
    name: str,
    *,
    pid: int = -1,
    cookie: int | None = None,
) -> PerfEventLinks | UprobeMultiLink:
    """Run ``program`` at every site of USDT probe ``provider:name`` in ``path``.

    A probe with a semaphore gets it incremented by the kernel while attached, so guarded
    probe code (``if (PROVIDER_NAME_ENABLED())``) runs; this needs the uprobe PMU's
    ``ref_ctr_offset`` (>= 4.20). For a ``KPROBE`` program loaded without an expected
    attach type the result is one uprobe per site (:class:`PerfEventLinks`); for one loaded
    with ``TRACE_UPROBE_MULTI`` it is a single :class:`UprobeMultiLink` (>= 6.6).
    ``pid`` as in :func:`attach_uprobe` (-1 every process, 0 this one).

    ``cookie`` (``bpf_get_attach_cookie``, >= 5.15) is given to every site. Left out, it is
    0 at every site of a probe whose sites place the arguments alike, and the site's
    layout number (:func:`usdt_layouts`) when they differ.

    Read the probe's arguments in the program with :func:`usdt_argument` (from
    :attr:`ebpf._elfsym.USDTProbe.arguments` of :func:`usdt_probes`). Raises
    :class:`~ebpf._elfsym.SymbolNotFoundError` when the file has no such probe (naming the
    probes it has).
    """
    check_program(program, ProgramType.KPROBE, what="attach_usdt")
    check_attach_type(program, (None, AttachType.TRACE_UPROBE_MULTI), what="attach_usdt")
    if not provider or not name:
        raise ValueError("attach_usdt: provider and name are required")
    if cookie is not None and cookie < 0:
        raise ValueError("attach_usdt: cookie must be a u64")
    real = resolve_binary(path)
    probes = usdt_probes(real)
    sites = [p for p in probes if p.provider == provider and p.name == name]
    if not sites:
        known = sorted({f"{p.provider}:{p.name}" for p in probes})
        raise SymbolNotFoundError(f"{provider}:{name}", real,
                                  difflib.get_close_matches(f"{provider}:{name}", known, n=3),
                                  kind="USDT probe")
    if cookie is not None:
        cookies = [cookie] * len(sites)
    else:
        layouts, cookies = usdt_layouts(sites)
        if len(layouts) == 1:
            cookies = [0] * len(sites)
    multi = program.expected_attach_type is not None and int(
        program.expected_attach_type) == AttachType.TRACE_UPROBE_MULTI
    if multi:
        return attach_uprobe_multi(
            program, real, offsets=[s.offset for s in sites],
            ref_ctr_offsets=[s.semaphore_offset for s in sites],
            cookies=cookies,
            pid=0 if pid == -1 else _check_pid(pid, "attach_usdt", all_value=-1))
    pid = _check_pid(pid, "attach_usdt", all_value=-1)
    links: list[PerfEventLink] = []
    try:
        for s, c in zip(sites, cookies, strict=True):
            links.append(_attach_at(program, real, s.offset, retprobe=False, pid=pid,
                                    cookie=c, ref_ctr_offset=s.semaphore_offset))
    except BaseException:
        for link in links:
            link.close()
        raise
    return PerfEventLinks(links, [-1] * len(links))


def _extend(dst: asm.Register, size: int, signed: bool) -> list[asm.Instruction]:
    """Zero- or sign-extend the low ``size`` bytes of ``dst`` to 64 bits."""
    if size >= 8:
        return []
    shift = 64 - 8 * size
    return [asm.lsh(dst, shift), asm.arsh(dst, shift) if signed else asm.rsh(dst, shift)]


def usdt_argument(arg: USDTArgument, dst: asm.Register, *, ctx: asm.Register = asm.R6,
                  stack_offset: int = -8, arch: str | None = None) -> list[asm.Instruction]:
    """Instructions that put a USDT argument's value in ``dst``, sign- or zero-extended.

    ``ctx`` holds the program's context (``struct pt_regs *``). Constant and register
    arguments are read directly. A memory argument (``8@-16(%rbp)``, ``8@[sp, 16]``) is
    read with ``bpf_probe_read_user`` into the stack slot at ``r10 + stack_offset``, which
    clobbers ``r0``-``r5``: keep ``ctx`` in ``r6``-``r9`` then (the default is ``r6``).
    ``sib`` and unrecognised arguments raise :class:`~ebpf.errors.NotSupportedError`. This
    is libbpf's ``bpf_usdt_arg()`` resolved when the program is built rather than at run time.
    """
    if arg.kind == "const":
        value = arg.value & ((1 << (8 * arg.size)) - 1) if arg.size < 8 else arg.value
        if arg.signed and arg.size < 8 and value >> (8 * arg.size - 1):
            value -= 1 << (8 * arg.size)
        if -(1 << 31) <= value < (1 << 31):
            return [asm.mov(dst, value)]
        return [asm.load_imm64(dst, value & ((1 << 64) - 1))]
    if arg.kind == "reg":
        off = pt_regs_offset(arg.register, arch)
        return [asm.load(asm.DW, dst, ctx, off), *_extend(dst, arg.size, arg.signed)]
    if arg.kind == "deref":
        if int(ctx) <= 5:
            raise ValueError(f"usdt_argument: a memory argument calls a helper, which clobbers "
                             f"r{int(ctx)}; keep the context in r6-r9")
        if arg.size not in (1, 2, 4, 8):
            raise errors.NotSupportedError(f"USDT argument of {arg.size} bytes ({arg.text})")
        if stack_offset > -8 or stack_offset % 8:
            raise ValueError("usdt_argument: stack_offset must be a multiple of 8, <= -8")
        sizes = {1: asm.B, 2: asm.H, 4: asm.W, 8: asm.DW}
        return [
            asm.load(asm.DW, asm.R3, ctx, pt_regs_offset(arg.register, arch)),
            asm.add(asm.R3, arg.offset),
            asm.store_imm(asm.DW, asm.R10, stack_offset, 0),
            asm.mov(asm.R1, asm.R10),
            asm.add(asm.R1, stack_offset),
            asm.mov(asm.R2, arg.size),
            asm.call(asm.Helper.PROBE_READ_USER),
            asm.load(sizes[arg.size], dst, asm.R10, stack_offset),
            *_extend(dst, arg.size, arg.signed and arg.size < 8),
        ]
    raise errors.NotSupportedError(f"USDT argument {arg.text!r} ({arg.kind})")
