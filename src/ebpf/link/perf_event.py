"""Programs on perf events, and the perf event plumbing every probe shares.

Tracepoints, kprobes and uprobes are all perf events with a program attached. This module
holds what they have in common:

* :class:`PerfEventLink`, the one link class for them all (``BPF_LINK_TYPE_PERF_EVENT``,
  kernel >= 5.15). On older kernels it falls back quietly to ``PERF_EVENT_IOC_SET_BPF`` +
  ``PERF_EVENT_IOC_ENABLE`` on the perf event fd (>= 4.1); such a link cannot be pinned,
  updated or queried, and those methods then raise :class:`~ebpf.errors.NotSupportedError`.
* :func:`attach_perf_event` for ``BPF_PROG_TYPE_PERF_EVENT`` programs sampling a software
  (or hardware) event, one event per CPU (:class:`PerfEventLinks`).
* tracefs lookup and the legacy ``kprobe_events``/``uprobe_events`` files, used when a kernel
  has no kprobe/uprobe PMU (before 4.17).
* where function arguments and return values live in the ``struct pt_regs`` context of
  kprobe and uprobe programs, per architecture (:func:`pt_regs_offset`).

Example::

    prog = ebpf.Program.load(ebpf.ProgramType.PERF_EVENT, insns)
    with attach_perf_event(prog, SoftwareEvent.CPU_CLOCK, sample_period=1_000_000) as links:
        time.sleep(1)          # the program runs every millisecond of CPU time, on each CPU
"""

from __future__ import annotations

import contextlib
import ctypes
import enum
import itertools
import os
import threading
import warnings
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import final, overload

from .. import errors, features, platform
from .._programs import Program
from .._sys.fd import FD
from .._sys.syscall import ioctl, perf_event_open
from .._types import AttachType, LinkType, ProgramType
from .._uapi import _arch
from .._uapi import _generated_types as _t
from .base import Link, LinkInfo, link_create

__all__ = [
    "HardwareEvent",
    "PerfEventKind",
    "PerfEventLink",
    "PerfEventLinkInfo",
    "PerfEventLinks",
    "SoftwareEvent",
    "attach_perf_event",
    "pt_regs_arg_offset",
    "pt_regs_offset",
    "pt_regs_return_offset",
]

#: ``PERF_EVENT_IOC_*`` requests (include/uapi/linux/perf_event.h).
PERF_EVENT_IOC_ENABLE = _arch.ioc("", "$", 0)
PERF_EVENT_IOC_DISABLE = _arch.ioc("", "$", 1)
PERF_EVENT_IOC_SET_BPF = _arch.ioc("w", "$", 8, 4)

_EVENT_SOURCES = "/sys/bus/event_source/devices"


class SoftwareEvent(enum.IntEnum):
    """Software perf events (``enum perf_sw_ids``; ``PERF_TYPE_SOFTWARE``)."""

    #: ``PERF_COUNT_SW_CPU_CLOCK``: a high-resolution per-CPU timer (sample_period in ns)
    CPU_CLOCK = _t.PERF_COUNT_SW_CPU_CLOCK
    #: ``PERF_COUNT_SW_TASK_CLOCK``: CPU time of the monitored task
    TASK_CLOCK = _t.PERF_COUNT_SW_TASK_CLOCK
    #: ``PERF_COUNT_SW_PAGE_FAULTS``
    PAGE_FAULTS = _t.PERF_COUNT_SW_PAGE_FAULTS
    #: ``PERF_COUNT_SW_CONTEXT_SWITCHES``
    CONTEXT_SWITCHES = _t.PERF_COUNT_SW_CONTEXT_SWITCHES
    #: ``PERF_COUNT_SW_CPU_MIGRATIONS``
    CPU_MIGRATIONS = _t.PERF_COUNT_SW_CPU_MIGRATIONS
    #: ``PERF_COUNT_SW_PAGE_FAULTS_MIN``
    PAGE_FAULTS_MIN = _t.PERF_COUNT_SW_PAGE_FAULTS_MIN
    #: ``PERF_COUNT_SW_PAGE_FAULTS_MAJ``
    PAGE_FAULTS_MAJ = _t.PERF_COUNT_SW_PAGE_FAULTS_MAJ
    #: ``PERF_COUNT_SW_ALIGNMENT_FAULTS``
    ALIGNMENT_FAULTS = _t.PERF_COUNT_SW_ALIGNMENT_FAULTS
    #: ``PERF_COUNT_SW_EMULATION_FAULTS``
    EMULATION_FAULTS = _t.PERF_COUNT_SW_EMULATION_FAULTS
    #: ``PERF_COUNT_SW_DUMMY``
    DUMMY = _t.PERF_COUNT_SW_DUMMY
    #: ``PERF_COUNT_SW_BPF_OUTPUT`` (the perf buffer's event)
    BPF_OUTPUT = _t.PERF_COUNT_SW_BPF_OUTPUT
    #: ``PERF_COUNT_SW_CGROUP_SWITCHES``; kernel >= 5.13
    CGROUP_SWITCHES = _t.PERF_COUNT_SW_CGROUP_SWITCHES


class HardwareEvent(enum.IntEnum):
    """Generalized hardware events (``enum perf_hw_id``; ``PERF_TYPE_HARDWARE``).

    Virtual machines often have no hardware PMU: opening one then fails with ``ENOENT``.
    """

    CPU_CYCLES = _t.PERF_COUNT_HW_CPU_CYCLES
    INSTRUCTIONS = _t.PERF_COUNT_HW_INSTRUCTIONS
    CACHE_REFERENCES = _t.PERF_COUNT_HW_CACHE_REFERENCES
    CACHE_MISSES = _t.PERF_COUNT_HW_CACHE_MISSES
    BRANCH_INSTRUCTIONS = _t.PERF_COUNT_HW_BRANCH_INSTRUCTIONS
    BRANCH_MISSES = _t.PERF_COUNT_HW_BRANCH_MISSES
    BUS_CYCLES = _t.PERF_COUNT_HW_BUS_CYCLES
    STALLED_CYCLES_FRONTEND = _t.PERF_COUNT_HW_STALLED_CYCLES_FRONTEND
    STALLED_CYCLES_BACKEND = _t.PERF_COUNT_HW_STALLED_CYCLES_BACKEND
    REF_CPU_CYCLES = _t.PERF_COUNT_HW_REF_CPU_CYCLES


class PerfEventKind(enum.IntEnum):
    """What a perf event link is attached to (``enum bpf_perf_event_type``)."""

    UNSPEC = _t.BPF_PERF_EVENT_UNSPEC  #: ``BPF_PERF_EVENT_UNSPEC``
    UPROBE = _t.BPF_PERF_EVENT_UPROBE  #: ``BPF_PERF_EVENT_UPROBE``
    URETPROBE = _t.BPF_PERF_EVENT_URETPROBE  #: ``BPF_PERF_EVENT_URETPROBE``
    KPROBE = _t.BPF_PERF_EVENT_KPROBE  #: ``BPF_PERF_EVENT_KPROBE``
    KRETPROBE = _t.BPF_PERF_EVENT_KRETPROBE  #: ``BPF_PERF_EVENT_KRETPROBE``
    TRACEPOINT = _t.BPF_PERF_EVENT_TRACEPOINT  #: ``BPF_PERF_EVENT_TRACEPOINT``
    EVENT = _t.BPF_PERF_EVENT_EVENT  #: ``BPF_PERF_EVENT_EVENT``


@dataclass(frozen=True, slots=True)
class PerfEventLinkInfo:
    """The perf-event part of ``struct bpf_link_info`` (kernel >= 6.6).

    ``name`` is the tracepoint name, kprobe function or uprobe file; ``offset`` the probe
    offset; ``address`` the kprobe address; ``type``/``config`` the raw perf event of
    :attr:`PerfEventKind.EVENT` links.
    """

    kind: PerfEventKind | int
    name: str = ""
    offset: int = 0
    address: int = 0
    cookie: int = 0
    ref_ctr_offset: int = 0
    type: int = 0
    config: int = 0
    missed: int = 0


# --- tracefs ----------------------------------------------------------------------------------

def tracefs_root(tracefs: str | os.PathLike[str] | None = None) -> str:
    """The tracefs directory to use: ``tracefs`` if given, else where it is mounted; as root
    it is mounted at /sys/kernel/tracing when missing (:func:`ebpf.platform.require_tracefs`,
    which raises :class:`~ebpf.errors.NotSupportedError` with the fixing command otherwise).
    """
    if tracefs is not None:
        return os.fspath(tracefs)
    return platform.require_tracefs()


_event_counter = itertools.count()
_event_lock = threading.Lock()


def _event_name(prefix: str, what: str) -> str:
    """A tracefs event name unique to this process: letters, digits and ``_`` only."""
    with _event_lock:
        n = next(_event_counter)
    clean = "".join(c if c.isalnum() else "_" for c in what)[:40]
    return f"ebpf_{os.getpid()}_{n}_{prefix}_{clean}"


_PROBE_GROUP = "ebpf"


@dataclass(frozen=True, slots=True)
class _ProbeEvent:
    """A kprobe/uprobe event created in ``<tracefs>/{k,u}probe_events``; remove() undoes it."""

    control: str  #: path of kprobe_events / uprobe_events
    group: str
    event: str
    id: int

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            _write_control(self.control, f"-:{self.group}/{self.event}")


def _write_control(path: str, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
    try:
        os.write(fd, line.encode() + b"\n")
    finally:
        os.close(fd)


def create_probe_event(kind: str, spec: str, *, retprobe: bool, what: str,
                       tracefs: str | os.PathLike[str] | None = None) -> _ProbeEvent:
    """Create a ``kprobe`` or ``uprobe`` trace event through tracefs (the pre-PMU interface).

    ``spec`` is the probe location as the control file takes it (``"do_unlinkat+0"`` or
    ``"/bin/bash:0x4a0"``). Returns the event, whose ``id`` is opened as a tracepoint.
    Raises :class:`~ebpf.errors.NotSupportedError` when ``<tracefs>/{kind}_events`` does not
    exist (with the :class:`FileNotFoundError` as ``__cause__``).
    """
    root = tracefs_root(tracefs)
    control = os.path.join(root, f"{kind}_events")
    event = _event_name("r" if retprobe else "p", what)
    line = f"{'r' if retprobe else 'p'}:{_PROBE_GROUP}/{event} {spec}"
    try:
        _write_control(control, line)
    except FileNotFoundError as e:
        raise errors.NotSupportedError(
            f"{kind} events", detail=f"{control} does not exist"
            + (" (kernel built without CONFIG_KPROBES?)" if kind == "kprobe" else "")
        ) from e
    except OSError as e:
        raise errors.LinkError(f"creating {kind} event {spec!r} in {control}: "
                               f"{os.strerror(e.errno or 0)}") from e
    ev = _ProbeEvent(control, _PROBE_GROUP, event, 0)
    try:
        path = os.path.join(root, "events", _PROBE_GROUP, event, "id")
        with open(path) as f:
            tp_id = int(f.read().strip())
    except BaseException:
        ev.remove()
        raise
    return _ProbeEvent(control, _PROBE_GROUP, event, tp_id)


# --- PMUs -------------------------------------------------------------------------------------

def pmu_type(name: str) -> int:
    """The dynamic perf type of a PMU (``/sys/bus/event_source/devices/<name>/type``).

    Raises :class:`FileNotFoundError` when the kernel has no such PMU.
    """
    with open(os.path.join(_EVENT_SOURCES, name, "type")) as f:
        return int(f.read().strip())


def pmu_config_bit(name: str, field: str) -> tuple[int, int]:
    """``(first bit, last bit)`` of a PMU format field in ``config`` (e.g. ``retprobe``).

    Raises :class:`FileNotFoundError` when the PMU lacks the field.
    """
    with open(os.path.join(_EVENT_SOURCES, name, "format", field)) as f:
        text = f.read().strip()  # "config:0" or "config:32-63"
    reg, _, bits = text.partition(":")
    if reg != "config" or not bits:
        raise ValueError(f"unexpected PMU format {text!r} for {name}/{field}")
    lo, _, hi = bits.partition("-")
    return int(lo), int(hi or lo)


def open_perf_event(attr: _t.PerfEventAttr, *, pid: int = -1, cpu: int = 0,
                    keep: object = None) -> FD:
    """``perf_event_open`` for ``attr`` (its ``size`` is filled in); ``keep`` holds buffers
    the attr points to (paths, function names) alive for the call."""
    attr.size = ctypes.sizeof(attr)
    fd = perf_event_open(attr, pid, cpu)
    del keep
    return fd


def tracepoint_event(tp_id: int, *, pid: int = -1, cpu: int = 0) -> FD:
    """Open the perf event of tracepoint ``tp_id`` (``PERF_TYPE_TRACEPOINT``).

    With ``pid`` -1 the program still runs on every CPU: a BPF program attached to a
    tracepoint event is called for every hit, whatever ``cpu`` the event was opened on.
    """
    attr = _t.PerfEventAttr()
    attr.type = _t.PERF_TYPE_TRACEPOINT
    attr.config = tp_id
    attr.sample_period = 1
    attr.wakeup_events = 1
    return open_perf_event(attr, pid=pid, cpu=cpu if pid < 0 else -1)


# --- the link ---------------------------------------------------------------------------------

def _perf_link_supported() -> bool:
    try:
        features.have_link_type(LinkType.PERF_EVENT)
    except errors.NotSupportedError:
        return False
    except errors.ProbeError:
        return True  # inconclusive (e.g. no permission to probe): just try
    return True


@final
class PerfEventLink(Link):
    """A program attached to a perf event: tracepoint, kprobe, uprobe or sampling event.

    Built by :func:`~ebpf.link.attach_tracepoint`, :func:`~ebpf.link.attach_kprobe`,
    :func:`~ebpf.link.attach_uprobe`, :func:`~ebpf.link.attach_usdt` or
    :func:`attach_perf_event`. Kernel: ``BPF_LINK_TYPE_PERF_EVENT`` >= 5.15; below that the
    attachment is made with ``PERF_EVENT_IOC_SET_BPF`` (:attr:`uses_bpf_link` is then false,
    and :meth:`pin` and :meth:`info` raise
    :class:`~ebpf.errors.NotSupportedError`).

    The kernel cannot swap the program of a perf event link: :meth:`update` always raises
    :class:`~ebpf.errors.NotSupportedError` (detach and attach the new program instead).
    """

    link_type = LinkType.PERF_EVENT

    # Defaults for links adopted with Link.from_fd()/from_pin(), which know no perf fd.
    _perf_fd: FD | None = None
    _event: _ProbeEvent | None = None
    _ioctl: bool = False
    _finalizer: weakref.finalize[[FD, FD | None, _ProbeEvent], PerfEventLink] | None = None

    def __init__(self, fd: FD, program: Program | None, perf_fd: FD | None = None,
                 event: _ProbeEvent | None = None, ioctl_mode: bool = False) -> None:
        super().__init__(fd, program)
        self._perf_fd = perf_fd
        self._event = event
        self._ioctl = ioctl_mode
        if event is not None:
            # A tracefs probe event outlives the process unless removed: make sure a link
            # that is never closed still removes it (and says so).
            self._finalizer = weakref.finalize(self, _release_forgotten, fd, perf_fd, event)

    @property
    def uses_bpf_link(self) -> bool:
        """True when this is a kernel bpf_link (pinnable); false for the ioctl fallback."""
        return not self._ioctl

    @property
    def perf_event_fd(self) -> FD | None:
        """The perf event's fd (``None`` for a link reopened from a pin or an id)."""
        return self._fd if self._ioctl else self._perf_fd

    def _no_link(self, what: str) -> errors.NotSupportedError:
        return errors.NotSupportedError(
            f"{what} of a perf event attached with PERF_EVENT_IOC_SET_BPF",
            "5.15", "BPF_LINK_TYPE_PERF_EVENT is needed")

    def pin(self, path: str | os.PathLike[str]) -> None:
        if self._ioctl:
            raise self._no_link("pinning")
        super().pin(path)

    def info(self) -> LinkInfo:
        if self._ioctl:
            raise self._no_link("BPF_OBJ_GET_INFO_BY_FD")
        return super().info()

    def perf_event_info(self) -> PerfEventLinkInfo:
        """What the link is attached to, decoded (names need kernel >= 6.6)."""
        if self._ioctl:
            raise self._no_link("BPF_OBJ_GET_INFO_BY_FD")
        from .._sys import commands

        raw = commands.obj_info(self.fileno(), _t.BpfLinkInfo())
        pe = raw.perf_event
        if pe.type == 0:
            # Before 6.6 the kernel fills only the link's type and id for perf_event links:
            # an all-zero union is that, not an event of kind UNSPEC.
            raise errors.NotSupportedError(
                "perf_event link info (BPF_OBJ_GET_INFO_BY_FD)", "6.6",
                "this kernel reports no details of perf_event links")
        buf = ctypes.create_string_buffer(4096)
        info = _t.BpfLinkInfo()
        kind = pe.type
        if kind in (PerfEventKind.UPROBE, PerfEventKind.URETPROBE):
            info.perf_event.uprobe.file_name = ctypes.addressof(buf)
            info.perf_event.uprobe.name_len = len(buf)
        elif kind in (PerfEventKind.KPROBE, PerfEventKind.KRETPROBE):
            info.perf_event.kprobe.func_name = ctypes.addressof(buf)
            info.perf_event.kprobe.name_len = len(buf)
        elif kind == PerfEventKind.TRACEPOINT:
            info.perf_event.tracepoint.tp_name = ctypes.addressof(buf)
            info.perf_event.tracepoint.name_len = len(buf)
        commands.obj_info(self.fileno(), info)
        pe = info.perf_event
        name = buf.value.decode("utf-8", "replace")
        try:
            k: PerfEventKind | int = PerfEventKind(pe.type)
        except ValueError:
            k = pe.type
        if k in (PerfEventKind.UPROBE, PerfEventKind.URETPROBE):
            u = pe.uprobe
            return PerfEventLinkInfo(k, name, u.offset, 0, u.cookie, u.ref_ctr_offset)
        if k in (PerfEventKind.KPROBE, PerfEventKind.KRETPROBE):
            kp = pe.kprobe
            return PerfEventLinkInfo(k, name, kp.offset, kp.addr, kp.cookie, missed=kp.missed)
        if k == PerfEventKind.TRACEPOINT:
            return PerfEventLinkInfo(k, name, cookie=pe.tracepoint.cookie)
        if k == PerfEventKind.EVENT:
            ev = pe.event
            return PerfEventLinkInfo(k, cookie=ev.cookie, type=ev.type, config=ev.config)
        return PerfEventLinkInfo(k)

    def detach(self) -> None:
        if self._ioctl:
            self.close()
            return
        super().detach()

    def close(self) -> None:
        """Release the link and the perf event; a tracefs probe event made for it is removed
        unless the link is pinned (the kernel keeps it in use then)."""
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if self._ioctl and not self._fd.closed:
            with contextlib.suppress(OSError):
                ioctl(self._fd.fileno(), PERF_EVENT_IOC_DISABLE, 0, "PERF_EVENT_IOC_DISABLE")
        self._fd.close()
        if self._perf_fd is not None:
            self._perf_fd.close()
        if self._event is not None and self._pinned is None:
            event, self._event = self._event, None
            event.remove()

    def __enter__(self) -> PerfEventLink:
        return self


def _release_forgotten(fd: FD, perf_fd: FD | None, event: _ProbeEvent) -> None:
    """Finalizer of a garbage-collected :class:`PerfEventLink` holding a tracefs event."""
    fd.close()
    if perf_fd is not None:
        perf_fd.close()
    with contextlib.suppress(OSError):  # EBUSY when a pin still uses it
        event.remove()
    warnings.warn(f"unclosed PerfEventLink on {event.group}/{event.event}; close it or use a "
                  "with block", ResourceWarning, stacklevel=1)


def attach_perf_fd(program: Program, perf_fd: FD, *, cookie: int = 0,
                   event: _ProbeEvent | None = None) -> PerfEventLink:
    """Attach ``program`` to an open perf event; takes ownership of ``perf_fd`` and ``event``.

    Uses ``BPF_LINK_CREATE`` (``BPF_PERF_EVENT``) when the kernel has perf event links, else
    ``PERF_EVENT_IOC_SET_BPF`` + ``PERF_EVENT_IOC_ENABLE``. On failure the perf event (and a
    tracefs probe event) is released before the error propagates.
    """
    try:
        if _perf_link_supported():
            fd = link_create(program, perf_fd.fileno(), AttachType.PERF_EVENT,
                             **({"perf_event.bpf_cookie": cookie} if cookie else {}))
            return PerfEventLink(fd, program, perf_fd, event)
        if cookie:
            raise errors.NotSupportedError("bpf_cookie on perf events", "5.15")
        ioctl(perf_fd.fileno(), PERF_EVENT_IOC_SET_BPF, program.fileno(),
              "PERF_EVENT_IOC_SET_BPF")
        ioctl(perf_fd.fileno(), PERF_EVENT_IOC_ENABLE, 0, "PERF_EVENT_IOC_ENABLE")
        return PerfEventLink(perf_fd, program, None, event, ioctl_mode=True)
    except BaseException:
        perf_fd.close()
        if event is not None:
            event.remove()
        raise


def check_program(program: Program, expected: ProgramType | tuple[ProgramType, ...],
                  *, what: str) -> None:
    """Raise :class:`ValueError` unless ``program`` has one of the ``expected`` types."""
    if not isinstance(program, Program):
        raise TypeError(f"{what}: expected an ebpf.Program, got {type(program).__name__}")
    exp = expected if isinstance(expected, tuple) else (expected,)
    if program.type not in exp:
        got = program.type.name if isinstance(program.type, ProgramType) else program.type
        names = exp[0].name if len(exp) == 1 else (
            ", ".join(e.name for e in exp[:-1]) + f" or {exp[-1].name}")
        raise ValueError(f"{what}: invalid program type {got}, expected {names}")


def check_attach_type(program: Program, allowed: Sequence[AttachType | None], *,
                      what: str) -> None:
    """Raise :class:`ValueError` if the program was loaded with another expected attach type.

    ``None`` in ``allowed`` accepts a program loaded without one. A program adopted with
    ``Program.from_fd``/``from_pin``/``from_id`` does not tell its expected attach type; the
    kernel checks it then.
    """
    eat = program.expected_attach_type
    if eat is None and program._insns is None:
        return
    norm = None if eat is None or (int(eat) == 0 and None in allowed) else int(eat)
    if norm in {None if a is None else int(a) for a in allowed}:
        return
    names = " or ".join("none" if a is None else a.name for a in allowed)
    if norm is None:
        got = "none"
    else:
        try:
            got = AttachType(norm).name
        except ValueError:
            got = str(norm)
    raise ValueError(f"{what}: program was loaded with expected_attach_type {got}, "
                     f"expected {names}")


# --- software/hardware sampling events ------------------------------------------------------

@final
class PerfEventLinks(Sequence[PerfEventLink]):
    """One :class:`PerfEventLink` per CPU (or per task), handled as one.

    ``close()``/``detach()`` and the ``with`` block act on every link; ``pin(directory)`` pins
    each as ``<directory>/cpu<N>`` (or ``event<N>``).
    """

    def __init__(self, links: Sequence[PerfEventLink], cpus: Sequence[int]) -> None:
        self._links = tuple(links)
        self.cpus = tuple(cpus)  #: the CPU of each link (-1: any CPU of the task)

    @overload
    def __getitem__(self, i: int) -> PerfEventLink: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[PerfEventLink]: ...
    def __getitem__(self, i: int | slice) -> PerfEventLink | Sequence[PerfEventLink]:
        return self._links[i]

    def __len__(self) -> int:
        return len(self._links)

    def __iter__(self) -> Iterator[PerfEventLink]:
        return iter(self._links)

    @property
    def closed(self) -> bool:
        return all(link.closed for link in self._links)

    def pin(self, directory: str | os.PathLike[str]) -> None:
        """Pin every link under ``directory`` (on a bpffs) as ``cpu<N>``/``event<N>``."""
        d = os.fspath(directory)
        for n, (link, cpu) in enumerate(zip(self._links, self.cpus, strict=True)):
            link.pin(os.path.join(d, f"cpu{cpu}" if cpu >= 0 else f"event{n}"))

    def unpin(self) -> None:
        for link in self._links:
            if link.pinned_path is not None:
                link.unpin()

    def detach(self) -> None:
        for link in self._links:
            link.detach()

    def close(self) -> None:
        """Close every link (idempotent)."""
        first: BaseException | None = None
        for link in self._links:
            try:
                link.close()
            except BaseException as e:  # close the rest anyway
                first = first or e
        if first is not None:
            raise first

    def __enter__(self) -> PerfEventLinks:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<PerfEventLinks {len(self._links)} link(s) cpus={list(self.cpus)}>"


def attach_perf_event(
    program: Program,
    event: SoftwareEvent | HardwareEvent | tuple[int, int] = SoftwareEvent.CPU_CLOCK,
    *,
    sample_period: int | None = None,
    sample_freq: int | None = None,
    cpu: int | None = None,
    pid: int = -1,
    cookie: int = 0,
    inherit: bool = False,
) -> PerfEventLinks:
    """Run a ``BPF_PROG_TYPE_PERF_EVENT`` program on each sample of a perf event.

    ``event`` is a :class:`SoftwareEvent`, a :class:`HardwareEvent` or a raw
    ``(perf type, config)`` pair. Give exactly one of ``sample_period`` (every N events; ns
    for the clock events) or ``sample_freq`` (samples per second). With ``cpu=None`` and
    ``pid=-1`` one event is opened on every online CPU; with a ``pid`` one event follows that
    task on any CPU. Kernel: perf_event programs >= 4.9, their bpf_link >= 5.15 (ioctl
    fallback below). Hardware events need a hardware PMU (``ENOENT`` in most VMs).
    """
    check_program(program, ProgramType.PERF_EVENT, what="attach_perf_event")
    if (sample_period is None) == (sample_freq is None):
        raise ValueError("attach_perf_event: give exactly one of sample_period or sample_freq")
    rate = sample_period if sample_period is not None else sample_freq
    assert rate is not None
    if rate <= 0:
        raise ValueError(f"attach_perf_event: sampling rate must be positive, got {rate}")
    if isinstance(event, SoftwareEvent):
        ptype, config = _t.PERF_TYPE_SOFTWARE, int(event)
    elif isinstance(event, HardwareEvent):
        ptype, config = _t.PERF_TYPE_HARDWARE, int(event)
    elif isinstance(event, tuple) and len(event) == 2:
        ptype, config = int(event[0]), int(event[1])
    else:
        raise TypeError(f"attach_perf_event: bad event {event!r}")
    if pid < -1:
        raise ValueError(f"attach_perf_event: bad pid {pid}")
    if cpu is not None and cpu < -1:
        raise ValueError(f"attach_perf_event: bad cpu {cpu}")
    if pid == -1 and cpu == -1:
        raise ValueError("attach_perf_event: pid=-1 (every task) needs a cpu, or cpu=None for all")
    cpus: list[int]
    if cpu is not None:
        cpus = [cpu]
    elif pid >= 0:
        cpus = [-1]
    else:
        cpus = platform.online_cpus()

    links: list[PerfEventLink] = []
    try:
        for c in cpus:
            attr = _t.PerfEventAttr()
            attr.type = ptype
            attr.config = config
            if sample_freq is not None:
                attr.freq = 1
                attr.sample_freq = sample_freq
            else:
                attr.sample_period = rate
            attr.inherit = int(inherit)
            pfd = open_perf_event(attr, pid=pid, cpu=c)
            links.append(attach_perf_fd(program, pfd, cookie=cookie))
    except BaseException:
        for link in links:
            link.close()
        raise
    return PerfEventLinks(links, cpus)


# --- pt_regs ----------------------------------------------------------------------------------

# Offsets in the context of kprobe/uprobe programs: x86-64 ``struct pt_regs``, AArch64
# ``struct user_pt_regs``, RISC-V ``struct user_regs_struct`` (all uapi, stable).
_X86_64_REGS = ("r15", "r14", "r13", "r12", "bp", "bx", "r11", "r10", "r9", "r8", "ax", "cx",
                "dx", "si", "di", "orig_ax", "ip", "cs", "flags", "sp", "ss")
_RISCV_REGS = ("pc", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2",
               "a3", "a4", "a5", "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9",
               "s10", "s11", "t3", "t4", "t5", "t6")
_ARGS = {
    "x86_64": ("di", "si", "dx", "cx", "r8", "r9"),
    "aarch64": tuple(f"x{i}" for i in range(8)),
    "riscv64": tuple(f"a{i}" for i in range(8)),
}
_RET = {"x86_64": "ax", "aarch64": "x0", "riscv64": "a0"}


def _x86_canonical(reg: str) -> str:
    r = reg.lower().lstrip("%")
    if r in ("rip", "eip"):
        return "ip"
    if r.startswith("r") and r[1:].rstrip("dwb").isdigit():  # r8, r8d, r8w, r8b
        return "r" + r[1:].rstrip("dwb")
    if len(r) == 3 and r[0] in "re" and r[1:] in ("ax", "bx", "cx", "dx", "si", "di", "bp",
                                                    "sp"):
        return r[1:]
    if r in ("al", "bl", "cl", "dl"):
        return r[0] + "x"
    if r in ("sil", "dil", "bpl", "spl"):
        return r[:2]
    return r


def pt_regs_offset(register: str, arch: str | None = None) -> int:
    """Byte offset of ``register`` in a kprobe/uprobe program's context (``struct pt_regs``).

    Accepts the names an assembler or a USDT note uses (``"rdi"``, ``"%edi"``, ``"x0"``,
    ``"w1"``, ``"a0"``, ``"sp"``). Architectures: x86_64, aarch64, riscv64.
    """
    a = arch or platform.ARCH
    r = register.lower().lstrip("%")
    if a == "x86_64":
        name = _x86_canonical(r)
        if name in _X86_64_REGS:
            return _X86_64_REGS.index(name) * 8
    elif a == "aarch64":
        if r in ("sp",):
            return 31 * 8
        if r == "pc":
            return 32 * 8
        if r == "lr":
            return 30 * 8
        if r == "fp":
            return 29 * 8
        if r[:1] in ("x", "w") and r[1:].isdigit() and int(r[1:]) <= 30:
            return int(r[1:]) * 8
    elif a == "riscv64":
        alias = {"fp": "s0", "zero": ""}.get(r, r)
        if alias in _RISCV_REGS:
            return _RISCV_REGS.index(alias) * 8
    else:
        raise errors.NotSupportedError(f"pt_regs layout for {a}")
    raise ValueError(f"unknown register {register!r} for {a}")


def pt_regs_arg_offset(n: int, arch: str | None = None) -> int:
    """Offset in ``struct pt_regs`` of the ``n``-th (from 0) integer argument of a function
    call, by the C calling convention (what ``PT_REGS_PARM{n+1}`` reads in libbpf)."""
    a = arch or platform.ARCH
    if a not in _ARGS:
        raise errors.NotSupportedError(f"pt_regs layout for {a}")
    regs = _ARGS[a]
    if not 0 <= n < len(regs):
        raise ValueError(f"argument {n} is not passed in a register on {a} "
                         f"(0..{len(regs) - 1} are)")
    return pt_regs_offset(regs[n], a)


def pt_regs_return_offset(arch: str | None = None) -> int:
    """Offset in ``struct pt_regs`` of a function's return value (``PT_REGS_RC``)."""
    a = arch or platform.ARCH
    if a not in _RET:
        raise errors.NotSupportedError(f"pt_regs layout for {a}")
    return pt_regs_offset(_RET[a], a)
