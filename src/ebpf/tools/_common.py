"""What the tools share: options, hook selection, the event record header, the event loop
and the output (columns or JSON lines)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import struct
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from functools import cache
from typing import Any

from .. import asm
from ..asm import R0, R1, R2, R3, R10, Helper, Register
from ..errors import BPFError
from ..lib import ringbuf

#: header of every event record: ts u64, tgid u32, tid u32, uid u32, pad u32, comm[16]
HEADER = struct.Struct("=QIII4x16s")
COMM = 24  #: offset of comm in the header
PAYLOAD = HEADER.size  #: where a tool's own fields start


def parser(name: str, description: str, *, clock: Sequence[str] = ("-T", "--timestamp"),
           seconds: Sequence[str] = (), comm: bool = True, uid: bool = False,
           containers: bool = False) -> argparse.ArgumentParser:
    """The options every tool takes (bcc's/libbpf-tools' names).

    The time options differ between bcc's tools, so each tool names its own: ``clock`` adds
    a ``TIME`` column (HH:MM:SS, bcc's execsnoop ``-T``, runqlat ``-T``), ``seconds`` a
    ``TIME(s)`` column counted from the first event (bcc's opensnoop ``-T``, execsnoop,
    tcpconnect and bindsnoop ``-t``); either may be empty. ``comm`` adds ``-c COMM`` (not a
    bcc option: some bcc tools use ``-c`` for something else), ``uid`` adds ``-u UID`` and
    ``-U`` (print a UID column), the UID filtered in the kernel (:func:`uid_filter`);
    ``containers`` adds bcc's ``--cgroupmap`` and ``--mntnsmap`` (:func:`open_containers`).
    """
    ap = argparse.ArgumentParser(prog=f"ebpf tool {name}", description=description)
    ap.add_argument("-p", "--pid", type=int, help="only this process (tgid)")
    if comm:
        ap.add_argument("-c", "--comm", help="only tasks whose command is this")
    if clock:
        ap.add_argument(*clock, dest="clock", action="store_true",
                        help="include a time column (HH:MM:SS)")
    if seconds:
        ap.add_argument(*seconds, dest="seconds", action="store_true",
                        help="include a timestamp column (seconds since the first event)")
    if uid:
        ap.add_argument("-u", "--uid", type=parse_uid, metavar="USER",
                        help="only this UID (a number or a user name)")
        ap.add_argument("-U", "--print-uid", action="store_true", help="print a UID column")
    if containers:
        container_options(ap)
    ap.add_argument("--json", action="store_true", help="one JSON object per line")
    ap.add_argument("--duration", type=float, help="stop after this many seconds")
    ap.add_argument("-v", "--verbose", action="store_true", help="say which hooks are used")
    ap.set_defaults(clock=False, seconds=False, comm=None, uid=None, print_uid=False)
    return ap


def parse_uid(user: str) -> int:
    """A UID from a number or a user name (as bcc's ``-u``)."""
    import pwd

    try:
        uid = int(user)
    except ValueError:
        try:
            return pwd.getpwnam(user).pw_uid
        except KeyError:
            raise argparse.ArgumentTypeError(f"no such user: {user!r}") from None
    if not 0 <= uid < 1 << 32:
        raise argparse.ArgumentTypeError(f"UID out of range: {uid}")
    return uid


def tracefs() -> str:
    """tracefs; when it is not mounted anywhere, mounted at /sys/kernel/tracing for the life
    of the process (lazily unmounted at exit: attached tracepoints do not need it)."""
    import atexit

    from .. import platform

    path = platform.tracefs_path()
    if path is not None:
        return path
    path = platform.tracefs_path(mount_if_missing=True)
    if path is None:
        raise BPFError("tracefs is not mounted and could not be mounted")

    def unmount(where: str = path) -> None:
        with contextlib.suppress(OSError):
            platform.umount(where, lazy=True)

    atexit.register(unmount)
    return path


def kprobes_available() -> bool:
    """Whether this kernel has kprobes (CONFIG_KPROBES); the tools use tracepoints anyway."""
    return os.path.exists(os.path.join(tracefs(), "kprobe_events"))


def say(args: argparse.Namespace, msg: str) -> None:
    """A ``-v`` message, on stderr so that it never mixes with the rows."""
    if args.verbose:
        print(f"[ebpf] {msg}", file=sys.stderr, flush=True)


def hook_note(args: argparse.Namespace, hooks: Iterable[str], why: str | None = None) -> None:
    """Report the chosen hooks and why (with ``-v``)."""
    if why is None:
        why = ("kprobes available, tracepoints preferred (stable ABI)" if kprobes_available()
               else "no kprobes on this kernel (CONFIG_KPROBES off)")
    for h in hooks:
        say(args, f"hook: {h} ({why})")


def pid_filter(args: argparse.Namespace, out: str) -> list[asm.Item]:
    """Skip to ``out`` unless the current tgid is ``-p``'s (and the thread ``-t TID``'s,
    where a tool has it); nothing without them. Clobbers R0."""
    code: list[asm.Item] = []
    if args.pid is not None:
        code += [asm.call(Helper.GET_CURRENT_PID_TGID), asm.rsh(R0, 32),
                 asm.jne(R0, args.pid, out)]
    if getattr(args, "tid", None) is not None:
        code += [asm.call(Helper.GET_CURRENT_PID_TGID), asm.mov32(R0, R0),
                 asm.jne(R0, args.tid, out)]
    return code


def uid_filter(args: argparse.Namespace, out: str) -> list[asm.Item]:
    """Skip to ``out`` unless the current task's UID is ``-u``'s (as bcc, in the kernel).
    Clobbers R0."""
    if getattr(args, "uid", None) is None:
        return []
    uid = args.uid - (1 << 32) if args.uid >= 1 << 31 else args.uid   # a 32-bit immediate
    return [asm.call(Helper.GET_CURRENT_UID_GID), asm.jne32(R0, uid, out)]


def container_options(ap: argparse.ArgumentParser) -> None:
    """bcc's ``--cgroupmap`` and ``--mntnsmap``: only tasks whose cgroup v2 id, or mount
    namespace inode number, is a key (u64) of a hash map pinned at that path."""
    ap.add_argument("--cgroupmap", metavar="PATH",
                    help="trace cgroups in this BPF map only (pinned, u64 cgroup id keys)")
    ap.add_argument("--mntnsmap", metavar="PATH",
                    help="trace mount namespaces in this BPF map only (pinned, u64 keys)")


def open_containers(stack: ExitStack, args: argparse.Namespace,
                    ap: argparse.ArgumentParser) -> None:
    """Open the maps pinned at ``--cgroupmap``/``--mntnsmap`` (closed with ``stack``) for
    :func:`container_filter`; a missing pin or a key that is not a u64 is a usage error."""
    from .._maps import Map

    args.container_maps = []
    for option, what in (("cgroupmap", "cgroup id"), ("mntnsmap", "mount namespace")):
        path = getattr(args, option, None)
        if path is None:
            continue
        try:
            m = stack.enter_context(Map.from_pin(path, readonly=True))
        except OSError as e:
            ap.error(f"--{option} {path}: {e.strerror or e}")
        if m.key_size != 8:
            ap.error(f"--{option} {path}: keys are {m.key_size} bytes, a {what} key is a "
                     "u64 (8 bytes)")
        args.container_maps.append((option, m))


def container_filter(args: argparse.Namespace, out: str, *, key_stack: int = -8
                     ) -> list[asm.Item]:
    """Skip to ``out`` unless the current task's cgroup id (``bpf_get_current_cgroup_id``,
    4.18) is in ``--cgroupmap``'s map and its ``nsproxy->mnt_ns->ns.inum`` (offsets from
    BTF) in ``--mntnsmap``'s, as bcc's ``container_should_be_filtered``; nothing without
    them (maps from :func:`open_containers`). ``key_stack``: 8 free stack bytes; the 8 below
    it are used too. Clobbers R0-R5."""
    from ..lib import fp, maps
    from ..lib.patterns import core_read, field_offset

    code: list[asm.Item] = []
    for option, m in getattr(args, "container_maps", []):
        if option == "cgroupmap":
            code += [asm.call(Helper.GET_CURRENT_CGROUP_ID)]
        else:
            inum = field_offset("mnt_namespace", "ns") + field_offset("ns_common", "inum")
            code += [asm.call(Helper.GET_CURRENT_TASK),
                     *core_read(R0, R0, [("task_struct", "nsproxy"), ("nsproxy", "mnt_ns"),
                                         inum], size=4, stack=key_stack - 8)]
        code += [asm.store(asm.DW, R10, key_stack, R0), *maps.lookup(m, fp(key_stack), out)]
    return code


@cache
def task_offsets() -> dict[str, int]:
    """Byte offsets in the running kernel's ``task_struct`` (from its BTF) of the members the
    tools read with ``bpf_probe_read_kernel``."""
    from ..btf.kernel import load_kernel
    from ..btf.types import Struct

    task = load_kernel().find("task_struct")
    if not isinstance(task, Struct):
        raise BPFError("the kernel's BTF has no struct task_struct")
    return {n: task.member(n).byte_offset for n in ("exit_code", "start_time",
                                                    "real_parent", "tgid")}


def read_ppid(dst: int, scratch: int) -> list[asm.Item]:
    """``*(u32 *)(fp + dst) = current->real_parent->tgid`` with two
    ``bpf_probe_read_kernel`` (``scratch``: 8 free bytes at fp + scratch). Clobbers R0-R5."""
    off = task_offsets()
    return [asm.call(Helper.GET_CURRENT_TASK), asm.mov(R3, R0), asm.add(R3, off["real_parent"]),
            asm.mov(R1, R10), asm.add(R1, scratch), asm.mov(R2, 8),
            asm.call(Helper.PROBE_READ_KERNEL),
            asm.load(asm.DW, R3, R10, scratch), asm.add(R3, off["tgid"]),
            asm.store_imm(asm.W, R10, dst, 0),
            asm.mov(R1, R10), asm.add(R1, dst), asm.mov(R2, 4),
            asm.call(Helper.PROBE_READ_KERNEL)]


def fill_header(rec: Register) -> list[asm.Item]:
    """Write ts, tgid, tid, uid and comm of the current task at ``rec`` (R6-R9)."""
    return [
        asm.call(Helper.KTIME_GET_NS), asm.store(asm.DW, rec, 0, R0),
        asm.call(Helper.GET_CURRENT_PID_TGID), asm.store(asm.W, rec, 12, R0),
        asm.rsh(R0, 32), asm.store(asm.W, rec, 8, R0),
        asm.call(Helper.GET_CURRENT_UID_GID), asm.store(asm.W, rec, 16, R0),
        asm.mov(R1, rec), asm.add(R1, COMM), asm.mov(R2, 16),
        asm.call(Helper.GET_CURRENT_COMM),
    ]


def reserve(ring: Any, size: int, rec: Register, out: str) -> list[asm.Item]:
    """``rec`` = a ring buffer record of ``size`` bytes with the header filled."""
    return [*ringbuf.reserve(ring, size, out), asm.mov(rec, R0), *fill_header(rec)]


def read_str(helper: Helper, rec: Register, off: int, size: int, src: Register
             ) -> list[asm.Item]:
    """``bpf_probe_read_{user,kernel}_str(rec + off, size, src)``."""
    return [asm.mov(R3, src), asm.mov(R1, rec), asm.add(R1, off), asm.mov(R2, size),
            asm.call(helper)]


def zero(rec: Register, off: int, size: int) -> list[asm.Item]:
    """Zero ``size`` bytes (a multiple of 8) at ``rec + off`` (ring records are not)."""
    return [asm.store_imm(asm.DW, rec, off + i, 0) for i in range(0, size, 8)]


def key_tid() -> list[asm.Item]:
    """``*(u32 *)(fp - 8) = current tid``: the key of per-thread maps."""
    return [asm.call(Helper.GET_CURRENT_PID_TGID), asm.store(asm.W, R10, -8, R0)]


def header(raw: bytes | memoryview) -> dict[str, Any]:
    """The header fields of a record."""
    ts, tgid, tid, uid, comm = HEADER.unpack_from(raw)
    return {"ts_ns": ts, "pid": tgid, "tid": tid, "uid": uid,
            "comm": comm.split(b"\0", 1)[0].decode(errors="replace")}


def cstr(raw: bytes | memoryview) -> str:
    return bytes(raw).split(b"\0", 1)[0].decode(errors="replace")


class Printer:
    """Rows in aligned columns (bcc style) or JSON lines, flushed as they come.

    In front of the tool's columns: ``TIME`` (``clock``), ``TIME(s)`` (``seconds``, from the
    first event's ``ts_ns``) and ``UID`` (``-U``). Rows are dropped here for the filters bcc
    also applies in user space: ``-c COMM`` (exact) and ``-n NAME`` (a regular expression
    searched in the command, as bcc's execsnoop; a plain name is a substring match)."""

    def __init__(self, args: argparse.Namespace, columns: Sequence[tuple[str, str]]) -> None:
        self.args = args
        self.columns = ([("TIME", "<8")] if args.clock else []) + \
            ([("TIME(s)", "<9")] if args.seconds else []) + \
            ([("UID", "<6")] if args.print_uid else []) + list(columns)
        self.started = False
        self.first_ts: int | None = None
        name = getattr(args, "name", None)
        self.name = None if name is None else re.compile(name)

    def wanted(self, values: dict[str, Any]) -> bool:
        comm = values.get("comm", "")
        if self.args.comm is not None and comm != self.args.comm:
            return False
        return self.name is None or self.name.search(comm) is not None

    def row(self, values: dict[str, Any]) -> None:
        if not self.wanted(values):
            return
        if self.args.seconds and "ts_ns" in values:
            if self.first_ts is None:
                self.first_ts = values["ts_ns"]
            values["time_s"] = round((values["ts_ns"] - self.first_ts) / 1e9, 6)
        if self.args.json:
            print(json.dumps(values, default=str), flush=True)
            return
        if not self.started:
            print(" ".join(f"{name:{fmt}}" for name, fmt in self.columns).rstrip(), flush=True)
            self.started = True
        vals = dict(values, TIME=time.strftime("%H:%M:%S"))
        if "time_s" in values:
            vals["TIME(s)"] = f"{values['time_s']:.3f}"
        cells = []
        for name, fmt in self.columns:
            v = vals.get(name, vals.get(name.lower(), ""))
            cells.append(f"{v!s:{fmt}}")
        print(" ".join(cells).rstrip(), flush=True)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def run_loop(args: argparse.Namespace, poll: Callable[[float], None],
             stack: ExitStack | None = None) -> int:
    """Call ``poll(timeout)`` until ``--duration`` ends or Ctrl-C/SIGTERM; 0 on a clean end."""
    deadline = None if args.duration is None else time.monotonic() + args.duration
    say(args, "running" + (f" for {args.duration} s" if deadline else ", Ctrl-C to stop"))
    with _sigterm_as_interrupt():
        try:
            while deadline is None or time.monotonic() < deadline:
                left = 0.2 if deadline is None else max(0.0, min(0.2, deadline - time.monotonic()))
                poll(left)
        except KeyboardInterrupt:
            pass
    return 0


def ring_poll(reader: Any, handle: Callable[[bytes], None]) -> Callable[[float], None]:
    """A ``poll`` for :func:`run_loop` that hands each ring record to ``handle``."""
    def poll(timeout: float) -> None:
        for rec in reader.read(timeout=timeout, copy=True):
            handle(rec)
    return poll



def attach_tp(stack: ExitStack, program: Sequence[asm.Item], category: str, name: str,
              prog_name: str) -> None:
    """Load ``program`` as a TRACEPOINT program and attach it to ``category:name``; both are
    released when ``stack`` closes."""
    from .._programs import Program
    from ..hooks import tracepoint
    from ..link.tracepoint import attach_tracepoint

    prog = stack.enter_context(Program.load(tracepoint.PROGRAM_TYPE, list(program),
                                            name=prog_name[:15]))
    stack.enter_context(attach_tracepoint(prog, category, name))


def attach_raw_tp(stack: ExitStack, program: Sequence[asm.Item], name: str,
                  prog_name: str) -> None:
    """Load ``program`` as a RAW_TRACEPOINT program (4.17) and attach it to tracepoint
    ``name`` (no category: ``sched_switch``); both are released when ``stack`` closes."""
    from .._programs import Program
    from ..hooks import raw_tracepoint
    from ..link.raw_tracepoint import attach_raw_tracepoint

    prog = stack.enter_context(Program.load(raw_tracepoint.PROGRAM_TYPE, list(program),
                                            name=prog_name[:15]))
    stack.enter_context(attach_raw_tracepoint(prog, name))


def ring(stack: ExitStack, size: int = 1 << 20) -> Any:
    """A ring buffer map closed with ``stack``."""
    from .._maps import Map
    from .._types import MapType

    return stack.enter_context(Map.create(MapType.RINGBUF, max_entries=size))


def hash_map(stack: ExitStack, key_size: int, value_size: int, entries: int = 10240) -> Any:
    from .._maps import Map
    from .._types import MapType

    return stack.enter_context(Map.create(MapType.HASH, key_size=key_size,
                                          value_size=value_size, max_entries=entries))


def fmt(category: str, name: str) -> Any:
    from ..hooks import tracepoint

    tracefs()
    return tracepoint.format(category, name)


def stamp(args: argparse.Namespace, values: dict[str, Any]) -> dict[str, Any]:
    """Add the wall-clock time of the event (for --json)."""
    if args.clock or args.json:
        values["time"] = time.strftime("%H:%M:%S")
    return values


def syscall_pair(stack: ExitStack, args: argparse.Namespace, events: Any, syscall: str,
                 size: int, fill: Callable[[Any], list[asm.Item]], ret_off: int, *,
                 at_exit: Callable[[Any], list[asm.Item]] | None = None,
                 pending: Any = None, name: str | None = None) -> None:
    """Trace ``syscall``'s entry and exit: at entry (after the ``-p``/``-t``/``-u`` and
    container filters),
    build a ``size``-byte record on the stack (header + what ``fill(enter_format)`` writes at
    R9, with the ctx in R6; ``fill`` may jump to ``"out"`` to drop the call) and park it in
    a per-thread hash; at exit, store the return value (s64) at ``ret_off`` and send it.

    ``at_exit(exit_format)`` runs before the send with the record at R7 and the return
    value in R8 (ctx in R6; stack below fp-16 free); it may jump to ``"drop"`` to not send
    it. ``pending`` shares the per-thread hash between syscalls (execve and execveat)."""
    from ..asm import R7, R8, R9
    from ..hooks import tracepoint
    from ..lib import fp, maps

    if size % 8 or size + 8 > 512:
        raise BPFError(f"syscall_pair: record size {size} must be a multiple of 8 below 504")
    if pending is None:
        pending = hash_map(stack, 4, size)
    enter, exit_ = fmt("syscalls", f"sys_enter_{syscall}"), fmt("syscalls", f"sys_exit_{syscall}")
    rec = -8 - size
    on_enter = [
        tracepoint.save_ctx(R6), *pid_filter(args, "out"), *uid_filter(args, "out"),
        *container_filter(args, "out"),
        asm.mov(R9, R10), asm.add(R9, rec), *zero(R9, 0, size), *fill_header(R9),
        *fill(enter), *key_tid(),
        *maps.update(pending, fp(-8), fp(rec)),
        asm.label("out"), *tracepoint.ret(0),
    ]
    on_exit = [
        tracepoint.save_ctx(R6), *key_tid(),
        *maps.lookup(pending, fp(-8), "out"), asm.mov(R7, R0),
        *tracepoint.field(R8, exit_, "ret", R6), asm.store(asm.DW, R7, ret_off, R8),
        *(at_exit(exit_) if at_exit is not None else []),
        *ringbuf.output(events, R7, size),
        asm.label("drop"), *key_tid(), *maps.delete(pending, fp(-8)),
        asm.label("out"), *tracepoint.ret(0),
    ]
    short = name or syscall
    attach_tp(stack, on_enter, "syscalls", f"sys_enter_{syscall}", f"{short}_enter")
    attach_tp(stack, on_exit, "syscalls", f"sys_exit_{syscall}", f"{short}_exit")
    hook_note(args, [f"tracepoint syscalls:sys_enter_{syscall}",
                     f"tracepoint syscalls:sys_exit_{syscall}"])


R6 = Register.R6
