"""kprobes and kretprobes on kernel functions, one at a time or many at once (kprobe_multi).

::

    prog = ebpf.Program.load(ebpf.ProgramType.KPROBE, insns)
    with attach_kprobe(prog, "do_unlinkat"):
        ...
    multi = ebpf.Program.load(ebpf.ProgramType.KPROBE, insns,
                              expected_attach_type=ebpf.AttachType.TRACE_KPROBE_MULTI)
    with attach_kprobe_multi(multi, ["do_unlinkat", "do_rmdir"]):
        ...

Programs read arguments and the return value from ``struct pt_regs`` (see
:func:`ebpf.link.perf_event.pt_regs_arg_offset`).

Kernel: kprobes need ``CONFIG_KPROBES``. The probe is a perf event of the ``kprobe`` PMU
(>= 4.17), or, when the kernel has no such PMU, a trace event created in
``<tracefs>/kprobe_events`` (>= 4.1; tracefs must be mounted). The link is a perf event link
(>= 5.15; ioctl fallback below). ``kprobe_multi`` needs >= 5.18 and ``CONFIG_FPROBE``
(``EOPNOTSUPP`` without it); the session variant >= 6.10.
"""

from __future__ import annotations

import ctypes
import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, final

from .. import errors
from .._elfsym import SymbolNotFoundError
from .._programs import Program
from .._sys import commands
from .._sys.fd import FD
from .._types import AttachType, LinkType, ProgramType
from .._uapi import _generated_types as _t
from .base import Link, link_create
from .perf_event import (
    PerfEventLink,
    _ProbeEvent,
    attach_perf_fd,
    check_attach_type,
    check_program,
    create_probe_event,
    open_perf_event,
    pmu_config_bit,
    pmu_type,
    tracepoint_event,
)

__all__ = [
    "KprobeMultiInfo",
    "KprobeMultiLink",
    "attach_kprobe",
    "attach_kprobe_multi",
    "kernel_symbols",
]

KALLSYMS = "/proc/kallsyms"


def kernel_symbols(path: str = KALLSYMS) -> Iterable[tuple[str, int, str]]:
    """``(name, address, type letter)`` of every kernel symbol (``/proc/kallsyms``).

    Addresses read as 0 without ``CAP_SYSLOG`` or with ``kernel.kptr_restrict`` set.
    Module symbols keep their name; the ``[module]`` column is dropped.
    """
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3:
                yield parts[2], int(parts[0], 16), parts[1]


def _check_kernel_symbols(names: Sequence[str], what: str) -> None:
    """Raise :class:`SymbolNotFoundError` for the first of ``names`` the kernel lacks.

    Skipped (the kernel decides) when kallsyms cannot be read.
    """
    want = set(names)
    try:
        present = {n for n, _a, _t in kernel_symbols() if n in want}
    except OSError:
        return
    if not present and len(want) > 0:
        # Empty kallsyms (some containers): nothing to check against.
        try:
            with open(KALLSYMS) as f:
                if not f.readline():
                    return
        except OSError:
            return
    for n in names:
        if n not in present:
            prefix = n[:4]
            try:
                similar = {s for s, _a, _t in kernel_symbols() if s.startswith(prefix)}
            except OSError:
                similar = set()
            raise SymbolNotFoundError(n, KALLSYMS, difflib.get_close_matches(n, similar, n=3),
                                      kind="kernel symbol")


def _kprobe_event(symbol: str | None, address: int, offset: int, *,
                  retprobe: bool) -> tuple[FD, _ProbeEvent | None]:
    try:
        ptype = pmu_type("kprobe")
    except FileNotFoundError as no_pmu:
        spec = f"{symbol}+{offset}" if symbol is not None else f"{address + offset:#x}"
        try:
            event = create_probe_event("kprobe", spec, retprobe=retprobe,
                                       what=symbol or f"{address:x}")
        except errors.NotSupportedError as e:
            cause = e.__cause__ if isinstance(e.__cause__, OSError) else no_pmu
            raise errors.NotSupportedError(
                "kprobes",
                detail="no kprobe PMU (/sys/bus/event_source/devices/kprobe) and "
                f"{e.detail or 'no kprobe_events'}",
            ) from cause
        try:
            return tracepoint_event(event.id), event
        except BaseException:
            event.remove()
            raise
    attr = _t.PerfEventAttr()
    attr.type = ptype
    if retprobe:
        attr.config |= 1 << pmu_config_bit("kprobe", "retprobe")[0]
    buf = None
    if symbol is not None:
        raw = symbol.encode() + b"\0"
        buf = ctypes.create_string_buffer(raw, len(raw))
        attr.kprobe_func = ctypes.addressof(buf)
        attr.probe_offset = offset
    else:
        attr.kprobe_func = 0
        attr.kprobe_addr = address + offset
    attr.sample_period = 1
    attr.wakeup_events = 1
    return open_perf_event(attr, pid=-1, cpu=0, keep=buf), None


def attach_kprobe(
    program: Program,
    symbol: str | None = None,
    *,
    offset: int = 0,
    address: int | None = None,
    retprobe: bool = False,
    cookie: int = 0,
) -> PerfEventLink:
    """Run ``program`` (``BPF_PROG_TYPE_KPROBE``) when kernel function ``symbol`` is entered
    (or returns, with ``retprobe``).

    Give ``symbol`` (and optionally ``offset`` into it) or a kernel ``address``. The symbol
    is checked in ``/proc/kallsyms`` before any syscall
    (:class:`~ebpf._elfsym.SymbolNotFoundError`, a :class:`LookupError`, with close
    matches). A program loaded for ``kprobe_multi`` is refused (:class:`ValueError`; use
    :func:`attach_kprobe_multi`).

    Raises :class:`~ebpf.errors.NotSupportedError` when the kernel has neither the kprobe PMU
    nor ``kprobe_events`` (no ``CONFIG_KPROBES``); its ``__cause__`` is the
    :class:`FileNotFoundError` (``ENOENT``) of the last interface tried.
    """
    check_program(program, ProgramType.KPROBE, what="attach_kprobe")
    check_attach_type(program, (None,), what="attach_kprobe")
    if (symbol is None) == (address is None):
        raise ValueError("attach_kprobe: give a symbol or an address (one of them)")
    if offset < 0 or cookie < 0:
        raise ValueError("attach_kprobe: offset and cookie must be unsigned")
    if symbol is not None:
        if not symbol or any(c.isspace() for c in symbol) or "\0" in symbol:
            raise ValueError(f"attach_kprobe: invalid symbol {symbol!r}")
        _check_kernel_symbols([symbol], "attach_kprobe")
    elif address is not None and address <= 0:
        raise ValueError(f"attach_kprobe: invalid address {address:#x}")
    fd, event = _kprobe_event(symbol, address or 0, offset, retprobe=retprobe)
    return attach_perf_fd(program, fd, cookie=cookie, event=event)


# --- kprobe_multi -----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class KprobeMultiInfo:
    """What a kprobe_multi link is attached to (addresses need kernel >= 6.5)."""

    count: int
    flags: int
    missed: int
    addresses: tuple[int, ...]

    @property
    def retprobe(self) -> bool:
        return bool(self.flags & _t.BPF_F_KPROBE_MULTI_RETURN)


@final
class KprobeMultiLink(Link):
    """One program on many kernel functions (``BPF_LINK_TYPE_KPROBE_MULTI``, >= 5.18).

    Its program cannot be replaced (:meth:`update` raises
    :class:`~ebpf.errors.NotSupportedError`).
    """

    link_type = LinkType.KPROBE_MULTI

    def kprobe_info(self) -> KprobeMultiInfo:
        first = commands.obj_info(self.fileno(), _t.BpfLinkInfo()).kprobe_multi
        n = first.count
        addrs = (ctypes.c_uint64 * max(n, 1))()
        info = _t.BpfLinkInfo()
        info.kprobe_multi.addrs = ctypes.addressof(addrs)
        info.kprobe_multi.count = n
        commands.obj_info(self.fileno(), info)
        km = info.kprobe_multi
        return KprobeMultiInfo(n, km.flags, km.missed, tuple(addrs[:n]))

    def __enter__(self) -> KprobeMultiLink:
        return self


def attach_kprobe_multi(
    program: Program,
    symbols: Sequence[str] | None = None,
    *,
    addresses: Sequence[int] | None = None,
    cookies: Sequence[int] | None = None,
    retprobe: bool = False,
) -> KprobeMultiLink:
    """Attach ``program`` to many kernel functions at once, as one link (fprobe based).

    Give ``symbols`` (checked in ``/proc/kallsyms`` first) or ``addresses``; ``cookies`` are
    per function. The program must be a ``KPROBE`` program loaded with
    ``expected_attach_type=TRACE_KPROBE_MULTI``, or ``TRACE_KPROBE_SESSION`` (>= 6.10; runs
    at entry and return, no ``retprobe``). Kernel >= 5.18 with ``CONFIG_FPROBE``; without it
    ``BPF_LINK_CREATE`` fails with ``EOPNOTSUPP``.
    """
    check_program(program, ProgramType.KPROBE, what="attach_kprobe_multi")
    check_attach_type(program, (AttachType.TRACE_KPROBE_MULTI, AttachType.TRACE_KPROBE_SESSION),
                      what="attach_kprobe_multi")
    eat = program.expected_attach_type
    at = AttachType(eat) if eat is not None else AttachType.TRACE_KPROBE_MULTI
    if at == AttachType.TRACE_KPROBE_SESSION and retprobe:
        raise ValueError("attach_kprobe_multi: a session program runs at entry and return; "
                         "retprobe does not apply")
    if (symbols is None) == (addresses is None):
        raise ValueError("attach_kprobe_multi: give symbols or addresses (one of them)")
    if isinstance(symbols, str):
        raise TypeError("attach_kprobe_multi: symbols must be a sequence of names")
    items: list[Any] = list(symbols if symbols is not None else addresses or ())
    n = len(items)
    if n == 0:
        raise ValueError("attach_kprobe_multi: no functions given")
    if cookies is not None and len(cookies) != n:
        raise ValueError(f"attach_kprobe_multi: {len(cookies)} cookies for {n} function(s)")
    keep: list[Any] = []
    extra: dict[str, Any] = {
        "kprobe_multi.cnt": n,
        "kprobe_multi.flags": _t.BPF_F_KPROBE_MULTI_RETURN if retprobe else 0,
    }
    if symbols is not None:
        for s in items:
            if not isinstance(s, str) or not s or "\0" in s:
                raise ValueError(f"attach_kprobe_multi: invalid symbol {s!r}")
        _check_kernel_symbols(items, "attach_kprobe_multi")
        bufs = [ctypes.create_string_buffer(s.encode() + b"\0") for s in items]
        keep.extend(bufs)
        extra["kprobe_multi.syms"] = (ctypes.c_uint64 * n)(*(ctypes.addressof(b) for b in bufs))
    else:
        if any(a <= 0 for a in items):
            raise ValueError("attach_kprobe_multi: invalid address")
        extra["kprobe_multi.addrs"] = (ctypes.c_uint64 * n)(*items)
    if cookies is not None:
        extra["kprobe_multi.cookies"] = (ctypes.c_uint64 * n)(*cookies)
    fd = link_create(program, 0, at, **extra)
    del keep
    return KprobeMultiLink(fd, program)

