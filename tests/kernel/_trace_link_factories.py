"""Helpers for the tracing link tests, and link factories for the shared conformance suite.

``TRACE_LINK_FACTORIES`` is a list of callables; each returns ``(link, program,
other_program)``: a live link of one tracing link type, the program attached, and a second
program of the same kind (for ``update``). The caller closes all three. No maps are used, so
nothing else is left open. Factories that need tracefs mount it while they attach
(:func:`tracefs_mounted`) and unmount it again if they had to mount it.
Link types this kernel cannot make (fentry: EPERM at load; kprobe: ENOENT; kprobe_multi:
EOPNOTSUPP) call ``pytest.skip`` naming that errno.

This module is not a test module; with ``--import-mode=importlib`` load it by path::

    spec = importlib.util.spec_from_file_location("_trace_link_factories", path)
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

import ebpf
from ebpf import asm, errors, platform
from ebpf._maps import Map
from ebpf.asm import R0, R1, R2, R6, R7, Helper
from ebpf.link import kprobe, perf_event, tracing, uprobe
from ebpf.link.base import Link
from ebpf.link.iter import attach_iter
from ebpf.link.raw_tracepoint import attach_raw_tracepoint
from ebpf.link.tracepoint import attach_tracepoint

P = ebpf.ProgramType
A = ebpf.AttachType

TESTDATA = Path(__file__).resolve().parent.parent / "testdata" / "uprobe"

#: getppid(2) numbers, for raw tracepoint programs that read the syscall id.
NR_GETPPID = {"x86_64": 110, "aarch64": 173, "riscv64": 173, "loongarch64": 173}

# --- tracefs ----------------------------------------------------------------------------------

_tracefs_lock = threading.Lock()
_tracefs_users = 0  # holders of the mount made by this module
_tracefs_owned: str | None = None  # where this module mounted tracefs, if it did
_held_until_exit = False


def _acquire() -> str:
    global _tracefs_users, _tracefs_owned
    with _tracefs_lock:
        path = platform.tracefs_path(mount_if_missing=False)
        if path is None:
            path = platform.tracefs_path(mount_if_missing=True)
            assert path is not None
            _tracefs_owned = path
        _tracefs_users += 1
        return path


def _release() -> None:
    global _tracefs_users, _tracefs_owned
    with _tracefs_lock:
        _tracefs_users -= 1
        if _tracefs_users == 0 and _tracefs_owned is not None:
            with contextlib.suppress(OSError):
                platform.umount(_tracefs_owned, lazy=True)
            _tracefs_owned = None


@contextlib.contextmanager
def tracefs_mounted() -> Iterator[str]:
    """tracefs's path for the ``with`` block; mounted at /sys/kernel/tracing if it is mounted
    nowhere, and unmounted when the last user of this module leaves (nested uses share the
    mount). A mount made by anyone else is never touched."""
    path = _acquire()
    try:
        yield path
    finally:
        _release()


def ensure_tracefs() -> str:
    """Like :func:`tracefs_mounted`, but held until interpreter exit."""
    global _held_until_exit
    if _held_until_exit:
        path = platform.tracefs_path(mount_if_missing=False)
        if path is not None:
            return path
    path = _acquire()
    if _held_until_exit:
        _release()  # the earlier hold's mount vanished; this acquire re-made it, keep one hold
    else:
        _held_until_exit = True
        atexit.register(_release)
    return path


# --- programs ---------------------------------------------------------------------------------


def counter_map(entries: int = 4) -> Map:
    """An ARRAY map of ``entries`` u64 counters, all 0."""
    return Map.create(ebpf.MapType.ARRAY, key_size=4, value_size=8, max_entries=entries)


def _lookup(counter: Map, slot: int, miss: str) -> list[Any]:
    return [
        asm.store_imm(asm.W, asm.R10, -4, slot),
        asm.mov(R2, asm.R10), asm.add(R2, -4),
        asm.load_map(R1, counter),
        asm.call(Helper.MAP_LOOKUP_ELEM),
        asm.jeq(R0, 0, miss),
    ]


def counting_insns(
    counter: Map,
    *,
    pid: int | None = None,
    value: Sequence[Any] = (),
    filter_: Sequence[Any] = (),
    ret: int = 0,
) -> list[Any]:
    """Count hits in ``counter[0]``; store ``r7`` into ``counter[1]``.

    The context is in ``r6``. ``value`` computes ``r7`` from it (skipped when empty);
    ``filter_`` may jump to ``"out"`` to skip the hit. With ``pid``, only hits of that
    process (tgid) count.
    """
    insns: list[Any] = [asm.mov(R6, R1), asm.mov(R7, 0), *value, *filter_]
    if pid is not None:
        insns += [asm.call(Helper.GET_CURRENT_PID_TGID), asm.rsh(R0, 32), asm.jne(R0, pid, "out")]
    insns += [*_lookup(counter, 0, "out"), asm.mov(R1, 1), asm.atomic_add(asm.DW, R0, R1, 0)]
    if value:
        insns += [*_lookup(counter, 1, "out"), asm.store(asm.DW, R0, 0, R7)]
    insns += [asm.label("out"), asm.mov(R0, ret), asm.exit()]
    return insns


def require_link_type(lt: ebpf.LinkType) -> None:
    """Skip unless the kernel has link type ``lt`` (the feature probe's answer: a link
    create the kernel does not know gives EINVAL/EOPNOTSUPP)."""
    from ebpf import features

    try:
        features.have_link_type(lt)
    except errors.NotSupportedError as e:
        pytest.skip(f"{e}: the feature probe's BPF_LINK_CREATE is refused on this kernel")


def perf_info(link: Any) -> Any:
    """``link.perf_event_info()``, or ``None`` on a kernel before 6.6, which reports no
    details of perf_event links (the library raises NotSupportedError there)."""
    try:
        return link.perf_event_info()
    except errors.NotSupportedError:
        assert platform.kernel_version() < (6, 6)
        return None


def ret0() -> list[Any]:
    return [asm.mov(R0, 0), asm.exit()]


def load(prog_type: P, insns: Any, **kw: Any) -> ebpf.Program:
    return ebpf.Program.load(prog_type, insns, license="GPL", **kw)


# --- the uprobe target binary -----------------------------------------------------------------

_build_lock = threading.Lock()
_built: dict[str, str] = {}


def build_target(workdir: str | None = None) -> str:
    """Compile tests/testdata/uprobe/target.c with gcc; returns the binary's path.

    Built once per process into a temporary directory removed at exit.
    """
    with _build_lock:
        if "target" in _built and os.path.exists(_built["target"]):
            return _built["target"]
        cc = shutil.which("gcc") or shutil.which("cc")
        if cc is None:
            raise errors.NotSupportedError("a C compiler (gcc) to build the uprobe target")
        out_dir = workdir or tempfile.mkdtemp(prefix="ebpf-uprobe-")
        if workdir is None:
            atexit.register(shutil.rmtree, out_dir, True)
        out = os.path.join(out_dir, "ebpf_uprobe_target")
        subprocess.run([cc, "-O1", "-g0", "-o", out, str(TESTDATA / "target.c")],
                       check=True, capture_output=True)
        _built["target"] = out
        return out


class Target:
    """The uprobe target running as a child, driven line by line over stdin/stdout."""

    def __init__(self, path: str) -> None:
        self.proc = subprocess.Popen([path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1)
        assert self.ask("ping") == "pong"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def ask(self, line: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(BrokenPipeError):
                self.ask("quit")
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None:
                f.close()

    def __enter__(self) -> Target:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def running_target() -> Iterator[Target]:
    with Target(build_target()) as t:
        yield t


def libc_path() -> str:
    """The C library this process uses (from /proc/self/maps)."""
    for line in Path("/proc/self/maps").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 6 and os.path.basename(parts[5]).startswith("libc.so"):
            return parts[5]
    raise RuntimeError("libc not found in /proc/self/maps")


# --- conformance factories --------------------------------------------------------------------

Made = tuple[Link, ebpf.Program, ebpf.Program]


def _pair(prog_type: P, **kw: Any) -> tuple[ebpf.Program, ebpf.Program]:
    a = load(prog_type, ret0(), name="conf_a", **kw)
    try:
        b = load(prog_type, ret0(), name="conf_b", **kw)
    except BaseException:
        a.close()
        raise
    return a, b


def _made(attach: Callable[[ebpf.Program], Link], prog_type: P, **kw: Any) -> Made:
    a, b = _pair(prog_type, **kw)
    try:
        return attach(a), a, b
    except BaseException:
        a.close()
        b.close()
        raise


def tracepoint_link() -> Made:
    """A PerfEventLink on tracepoint syscalls/sys_enter_getppid (tracefs is needed only to
    find the tracepoint's id; it is unmounted again if it had to be mounted)."""
    with tracefs_mounted():
        return _made(lambda p: attach_tracepoint(p, "syscalls", "sys_enter_getppid"),
                     P.TRACEPOINT)


def raw_tracepoint_link() -> Made:
    """A RawTracepointLink on sys_enter."""
    return _made(lambda p: attach_raw_tracepoint(p, "sys_enter"), P.RAW_TRACEPOINT)


def tp_btf_link() -> Made:
    """A RawTracepointLink made by a tp_btf (TRACING) program on sys_enter."""
    return _made(tracing.attach_tracing, P.TRACING,  # type: ignore[arg-type]
                 expected_attach_type=A.TRACE_RAW_TP, attach_to="sys_enter")


def iter_link() -> Made:
    """An IterLink of a task iterator (its program can be updated)."""
    return _made(attach_iter, P.TRACING, expected_attach_type=A.TRACE_ITER, attach_to="task")


def perf_event_link() -> Made:
    """A PerfEventLink of a PERF_EVENT program on the CPU clock of CPU 0."""
    def attach(p: ebpf.Program) -> Link:
        links = perf_event.attach_perf_event(p, sample_period=10_000_000, cpu=0)
        return links[0]
    return _made(attach, P.PERF_EVENT)


def uprobe_link() -> Made:
    """A PerfEventLink of a uprobe on libc's getppid, for this process only."""
    return _made(lambda p: uprobe.attach_uprobe(p, libc_path(), "getppid", pid=os.getpid()),
                 P.KPROBE)


def uprobe_multi_link() -> Made:
    """An UprobeMultiLink on libc's getppid and getpid (Linux 6.6)."""
    require_link_type(ebpf.LinkType.UPROBE_MULTI)
    return _made(lambda p: uprobe.attach_uprobe_multi(p, libc_path(), ["getppid", "getpid"]),
                 P.KPROBE, expected_attach_type=A.TRACE_UPROBE_MULTI)


_ERRNO_NAMES = {errno.EPERM: "EPERM", errno.ENOENT: "ENOENT", errno.EOPNOTSUPP: "EOPNOTSUPP"}


def _skip_on(errno_: int, why: str, make: Callable[[], Made]) -> Made:
    """``make()``, skipping the calling test only when the kernel answers ``errno_``."""
    try:
        return make()
    except OSError as e:
        if e.errno == errno_:
            pytest.skip(f"{why} ({_ERRNO_NAMES[errno_]})")
        raise
    except errors.NotSupportedError as e:
        cause = e.__cause__
        if isinstance(cause, OSError) and cause.errno == errno_:
            pytest.skip(f"{why} ({_ERRNO_NAMES[errno_]}): {e}")
        raise


def tracing_link() -> Made:
    """A TracingLink of an fentry program (loading is refused with EPERM on some kernels)."""
    return _skip_on(errno.EPERM, "fentry programs cannot be loaded here", lambda: _made(
        tracing.attach_tracing, P.TRACING,  # type: ignore[arg-type]
        expected_attach_type=A.TRACE_FENTRY, attach_to="bpf_fentry_test1"))


def kprobe_link() -> Made:
    """A PerfEventLink of a kprobe (needs CONFIG_KPROBES; ENOENT without).

    On kernels whose kprobes go through kprobe_events, closing the link removes its probe
    event through tracefs, so tracefs stays mounted until exit (:func:`ensure_tracefs`).
    """
    ensure_tracefs()
    return _skip_on(errno.ENOENT, "no kprobe PMU nor kprobe_events", lambda: _made(
        lambda p: kprobe.attach_kprobe(p, "do_unlinkat"), P.KPROBE))


def kprobe_multi_link() -> Made:
    """A KprobeMultiLink (needs CONFIG_FPROBE; EOPNOTSUPP without)."""
    return _skip_on(errno.EOPNOTSUPP, "kprobe_multi needs CONFIG_FPROBE", lambda: _made(
        lambda p: kprobe.attach_kprobe_multi(p, ["do_unlinkat", "do_rmdir"]), P.KPROBE,
        expected_attach_type=A.TRACE_KPROBE_MULTI))


TRACE_LINK_FACTORIES: list[Callable[[], Made]] = [
    tracepoint_link,
    raw_tracepoint_link,
    tp_btf_link,
    iter_link,
    perf_event_link,
    uprobe_link,
    uprobe_multi_link,
    tracing_link,
    kprobe_link,
    kprobe_multi_link,
]


# -- fixtures for the test binary, shared by the uprobe/USDT test modules -------------------
# (a module uses them with ``target_bin = H.target_bin`` and ``target = H.target``)
@pytest.fixture(scope="module")
def target_bin() -> str:
    """The uprobe/USDT test binary, built once per module (skips when it cannot be)."""
    try:
        return str(build_target())
    except errors.NotSupportedError as e:
        pytest.skip(str(e))


@pytest.fixture
def target(target_bin: str) -> Iterator[Any]:
    """A running instance of the test binary, stopped at the end of the test."""
    with Target(target_bin) as t:
        yield t


def bpf_load_or_skip(what: str, *progs: Any, **kw: Any) -> Any:
    """``ebpf.bpf.load``, skipping only on the EPERM this machine kind gives fentry, fexit,
    fmod_ret and LSM loads (they run in the 6.1 VM)."""
    from ebpf import bpf

    try:
        return bpf.load(*progs, **kw)
    except errors.SyscallError as e:
        if e.errno == errno.EPERM and e.cmd == "BPF_PROG_LOAD":
            pytest.skip(f"{what}: {e.cmd} refused with EPERM on this kernel")
        raise


def run_in_cgroup(cgroup: str | None, code: str) -> str:
    """Run Python ``code`` in a child process that first joins ``cgroup``; return its stdout."""
    prologue = ""
    if cgroup is not None:
        prologue = f"open({os.path.join(cgroup, 'cgroup.procs')!r}, 'w').write('0')\n"
    out = subprocess.run([sys.executable, "-c", prologue + textwrap.dedent(code)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout
