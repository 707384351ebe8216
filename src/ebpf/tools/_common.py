"""What the tools share: options, hook selection, the event record header, the event loop
and the output (columns or JSON lines)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import struct
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

from .. import asm
from ..asm import R0, R1, R2, R3, R10, Helper, Register
from ..errors import BPFError
from ..lib import ringbuf

#: header of every event record: ts u64, tgid u32, tid u32, uid u32, pad u32, comm[16]
HEADER = struct.Struct("=QIII4x16s")
COMM = 24  #: offset of comm in the header
PAYLOAD = HEADER.size  #: where a tool's own fields start


def parser(name: str, description: str) -> argparse.ArgumentParser:
    """The options every tool takes (bcc's/libbpf-tools' names)."""
    ap = argparse.ArgumentParser(prog=f"ebpf tool {name}", description=description)
    ap.add_argument("-p", "--pid", type=int, help="only this process (tgid)")
    ap.add_argument("-c", "--comm", help="only tasks whose command is this")
    ap.add_argument("-T", "--timestamp", action="store_true", help="include a time column")
    ap.add_argument("--json", action="store_true", help="one JSON object per line")
    ap.add_argument("--duration", type=float, help="stop after this many seconds")
    ap.add_argument("-v", "--verbose", action="store_true", help="say which hooks are used")
    return ap


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


def hook_note(args: argparse.Namespace, hooks: Iterable[str]) -> None:
    """Report the chosen hooks and why (with ``-v``)."""
    why = ("kprobes available, tracepoints preferred (stable ABI)" if kprobes_available()
           else "no kprobes on this kernel (CONFIG_KPROBES off)")
    for h in hooks:
        say(args, f"hook: {h} ({why})")


def pid_filter(args: argparse.Namespace, out: str) -> list[asm.Item]:
    """Skip to ``out`` unless the current tgid is ``-p``'s (nothing without ``-p``)."""
    if args.pid is None:
        return []
    return [asm.call(Helper.GET_CURRENT_PID_TGID), asm.rsh(R0, 32),
            asm.jne(R0, args.pid, out)]


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
    """Rows in aligned columns (bcc style) or JSON lines, flushed as they come."""

    def __init__(self, args: argparse.Namespace, columns: Sequence[tuple[str, str]]) -> None:
        self.args = args
        self.columns = [("TIME", "<8"), *columns] if args.timestamp else list(columns)
        self.started = False

    def row(self, values: dict[str, Any]) -> None:
        if self.args.comm is not None and values.get("comm") != self.args.comm:
            return
        if self.args.json:
            print(json.dumps(values, default=str), flush=True)
            return
        if not self.started:
            print(" ".join(f"{name:{fmt}}" for name, fmt in self.columns).rstrip(), flush=True)
            self.started = True
        vals = dict(values, TIME=time.strftime("%H:%M:%S"))
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
    if args.timestamp or args.json:
        values["time"] = time.strftime("%H:%M:%S")
    return values


def syscall_pair(stack: ExitStack, args: argparse.Namespace, events: Any, syscall: str,
                 size: int, fill: Callable[[Any], list[asm.Item]], ret_off: int) -> None:
    """Trace ``syscall``'s entry and exit: at entry, build a ``size``-byte record on the stack
    (header + what ``fill(enter_format)`` writes at R9, with the ctx in R6) and park it in a
    per-thread hash; at exit, store the return value (s64) at ``ret_off`` and send it."""
    from ..asm import R7, R8, R9
    from ..hooks import tracepoint
    from ..lib import fp, maps

    if size % 8 or size + 8 > 512:
        raise BPFError(f"syscall_pair: record size {size} must be a multiple of 8 below 504")
    pending = hash_map(stack, 4, size)
    enter, exit_ = fmt("syscalls", f"sys_enter_{syscall}"), fmt("syscalls", f"sys_exit_{syscall}")
    rec = -8 - size
    on_enter = [
        tracepoint.save_ctx(R6), *pid_filter(args, "out"),
        asm.mov(R9, R10), asm.add(R9, rec), *zero(R9, 0, size), *fill_header(R9),
        *fill(enter), *key_tid(),
        *maps.update(pending, fp(-8), fp(rec)),
        asm.label("out"), *tracepoint.ret(0),
    ]
    on_exit = [
        tracepoint.save_ctx(R6), *key_tid(),
        *maps.lookup(pending, fp(-8), "out"), asm.mov(R7, R0),
        *tracepoint.field(R8, exit_, "ret", R6), asm.store(asm.DW, R7, ret_off, R8),
        *ringbuf.output(events, R7, size), *maps.delete(pending, fp(-8)),
        asm.label("out"), *tracepoint.ret(0),
    ]
    attach_tp(stack, on_enter, "syscalls", f"sys_enter_{syscall}", f"{syscall}_enter")
    attach_tp(stack, on_exit, "syscalls", f"sys_exit_{syscall}", f"{syscall}_exit")
    hook_note(args, [f"tracepoint syscalls:sys_enter_{syscall}",
                     f"tracepoint syscalls:sys_exit_{syscall}"])


R6 = Register.R6
