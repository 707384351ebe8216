"""Tracing program kinds of the Python front end: ``@bpf.tp_btf``, ``@bpf.kprobe`` /
``@bpf.kretprobe``, ``@bpf.fentry`` / ``@bpf.fexit`` and ``@bpf.lsm``.

Each program is compiled from Python, loaded with its program type, expected attach type and
attach BTF id from the running kernel, attached with ``ebpf.link`` and fired; the test reads
what it saw from maps and globals. tp_btf runs on this machine kind. Its kernel has no
``CONFIG_KPROBES`` (attaching a kprobe gives ``ENOENT``) and refuses fentry/fexit/LSM loads
with ``EPERM``; those tests skip on exactly that errno and run in the 6.1 VM
(``python -m tools.vmtest test -- tests/kernel/test_bpf_tracing_kinds.py``).
"""

from __future__ import annotations

import errno
import importlib.util
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import ebpf
from ebpf import bpf, errors, platform
from ebpf.bpf import i32, i64, u16, u32, u64
from ebpf.link.kprobe import attach_kprobe
from ebpf.link.tracing import TracingLink, attach_tracing

ROOT = Path(__file__).resolve().parents[2]
P = ebpf.ProgramType
A = ebpf.AttachType
N = 5
EPERM = 1
MARK = 0o705  # the mkdir mode the LSM test denies


def _module(name: str, path: Path) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


H = _module("_trace_link_factories", Path(__file__).with_name("_trace_link_factories.py"))


_load = H.bpf_load_or_skip


def _kprobe(prog: ebpf.Program, fn: str, **kw: Any) -> Any:
    """attach_kprobe, skipping only when the kernel has no kprobe interface (ENOENT)."""
    try:
        return attach_kprobe(prog, fn, **kw)
    except errors.NotSupportedError as e:
        cause = e.__cause__
        if isinstance(cause, OSError) and cause.errno == errno.ENOENT:
            pytest.skip(f"kprobes unavailable (ENOENT, no CONFIG_KPROBES): {e}")
        raise


def _lsm_attach(prog: ebpf.Program) -> Any:
    try:
        return attach_tracing(prog)
    except errors.SyscallError as e:
        if e.errno == errno.EOPNOTSUPP:
            pytest.skip(f"{e.cmd}: EOPNOTSUPP (bpf is not in this kernel's lsm= list)")
        raise


@pytest.fixture(scope="module")
def tracefs() -> Iterator[str]:
    with H.tracefs_mounted() as path:
        yield path


def _items(m: Any) -> dict[int, int]:
    return {int(k): int(v) for k, v in m.items()}


# -- declarations and compile-time checks (no load) ------------------------------------------
def test_kinds_set_type_attach_type_and_target() -> None:
    def body(ctx: Any) -> int:
        return 0

    cases = [
        (bpf.tp_btf("sched_switch"), P.TRACING, A.TRACE_RAW_TP, "tp_btf/sched_switch"),
        (bpf.kprobe("do_unlinkat"), P.KPROBE, None, "kprobe/do_unlinkat"),
        (bpf.kretprobe("do_unlinkat"), P.KPROBE, None, "kretprobe/do_unlinkat"),
        (bpf.fentry("do_unlinkat"), P.TRACING, A.TRACE_FENTRY, "fentry/do_unlinkat"),
        (bpf.fexit("do_unlinkat"), P.TRACING, A.TRACE_FEXIT, "fexit/do_unlinkat"),
        (bpf.lsm("file_open"), P.LSM, A.LSM_MAC, "lsm/file_open"),
    ]
    for deco, pt, at, section in cases:
        decl = deco(body)
        spec, _ = bpf.build_spec((decl,))
        ps = spec.programs["body"]
        assert (ps.type, ps.attach_type, ps.section) == (pt, at, section)
        assert ps.attach_to == section.split("/", 1)[1]


@pytest.mark.parametrize("deco", [bpf.tp_btf, bpf.kprobe, bpf.kretprobe, bpf.fentry,
                                  bpf.fexit, bpf.lsm])
@pytest.mark.parametrize("name", ["", "a b", "cat/name", 3])
def test_bad_target_names_are_refused(deco: Any, name: Any) -> None:
    with pytest.raises(errors.BPFError, match="expected"):
        deco(name)


def test_ctx_fields_follow_the_targets_btf() -> None:
    """Arguments exist by index and by BTF name only for the target's arity; fexit adds
    ``ret`` at the slot after them; a wrong field is a compile error naming the fields."""
    def fields(decl: bpf.ProgramDecl) -> dict[str, tuple[int, Any]]:
        assert decl.ctx_layout is not None
        return decl.ctx_layout()

    def body(ctx: Any) -> int:
        return 0

    assert fields(bpf.fentry("bpf_fentry_test1")(body)) == {"arg0": (0, i32), "a": (0, i32)}
    assert fields(bpf.fexit("bpf_fentry_test1")(body)) == {  # int bpf_fentry_test1(int a)
        "arg0": (0, i32), "a": (0, i32), "ret": (8, i32)}
    sw = fields(bpf.tp_btf("sched_switch")(body))
    assert {k: v[0] for k, v in sw.items()} == {
        "arg0": 0, "arg1": 8, "arg2": 16, "arg3": 24,
        "preempt": 0, "prev": 8, "next": 16, "prev_state": 24}
    assert fields(bpf.tp_btf("sys_enter")(body))["id"] == (8, i64)  # long id
    mk = fields(bpf.lsm("inode_mkdir")(body))
    assert mk["mode"] == (16, u16) and "ret" not in mk  # umode_t mode
    kp = fields(bpf.kprobe("do_unlinkat")(body))
    assert sorted(kp) == [f"arg{i}" for i in range(5)]
    if platform.ARCH == "x86_64":  # pt_regs: di, si, dx, cx, r8; ax
        assert [kp[f"arg{i}"][0] for i in range(5)] == [112, 104, 96, 88, 72]
        assert fields(bpf.kretprobe("do_unlinkat")(body)) == {"ret": (80, u64)}

    @bpf.fentry("bpf_fentry_test1")
    def second_arg(ctx: Any) -> int:
        return ctx.arg1  # type: ignore[no-any-return]

    with pytest.raises(bpf.CompileError, match=r"no readable field 'arg1' \(fields: a, arg0\)"):
        second_arg.compile()

    @bpf.fentry("bpf_fentry_test1")
    def entry_ret(ctx: Any) -> int:
        return ctx.ret  # type: ignore[no-any-return]

    with pytest.raises(bpf.CompileError, match="'ret'"):
        entry_ret.compile()

    @bpf.kretprobe("do_unlinkat")
    def ret_args(ctx: Any) -> int:
        return ctx.arg0  # type: ignore[no-any-return]

    with pytest.raises(bpf.CompileError, match=r"no readable field 'arg0' \(fields: ret\)"):
        ret_args.compile()

    @bpf.fentry("no_such_function_xyz")
    def missing(ctx: Any) -> int:
        return ctx.arg0  # type: ignore[no-any-return]

    with pytest.raises(bpf.CompileError, match="context layout of fentry/no_such_function_xyz"):
        missing.compile()


# -- tp_btf: runs on this machine kind --------------------------------------------------------
syscalls = bpf.Hash(u64, u64, max_entries=1024)
switches = bpf.Array(u64, max_entries=4)
me = bpf.const(u32, 0)


@bpf.tp_btf("sys_enter")
def count_syscalls(ctx: Any) -> int:
    if bpf.get_current_pid_tgid() >> 32 == me:
        syscalls[ctx.id] += 1
    return 0


@bpf.tp_btf("sched_switch")
def count_switches(ctx: Any) -> int:
    if bpf.get_current_pid_tgid() >> 32 == me:  # current is the task switched out (prev)
        switches[0] += 1
        prev = ctx.prev
        if prev > 0 and ctx.next != prev:  # a task pointer, not the next task
            switches[1] += 1
        if ctx.preempt == 0:
            switches[2] += 1
    return 0


def test_tp_btf_sys_enter_counts_this_process_syscalls_by_id() -> None:
    """``ctx.id`` (sys_enter's ``long id``, read by its BTF name) keys the counts: N getppid
    calls give exactly N at getppid's number."""
    nr = H.NR_GETPPID[platform.ARCH]
    with bpf.load(count_syscalls, constants={"me": os.getpid()}) as coll:
        assert coll.count_syscalls.info().type == P.TRACING
        with attach_tracing(coll.count_syscalls):
            for _ in range(N):
                os.getppid()
        seen = _items(coll.syscalls)
    assert seen[nr] == N


def test_tp_btf_sched_switch_sees_this_process_switched_out() -> None:
    """Each sleep switches this thread out voluntarily: sched_switch runs with prev = us
    (a task pointer, not next) and preempt = false."""
    with bpf.load(count_switches, constants={"me": os.getpid()}) as coll:
        with attach_tracing(coll.count_switches):
            # a sleep whose timer expires before schedule() (slow TCG guests) switches
            # nothing out, so sleep until N switches are seen, within a bound
            for _ in range(10 * N):
                time.sleep(0.002)
                if coll.switches[0] >= N:
                    break
        total, distinct, voluntary = (coll.switches[i] for i in range(3))
    assert total >= N
    assert distinct == total
    assert voluntary >= N


# -- kprobe / kretprobe: need CONFIG_KPROBES (the VM) ----------------------------------------
unlinks = bpf.Array(u64, max_entries=2)
last_dfd = bpf.var(i64, 0)
last_ret = bpf.var(i64, 0)


@bpf.kprobe("do_unlinkat")
def kp_unlink(ctx: Any) -> int:
    global last_dfd
    if bpf.get_current_pid_tgid() >> 32 == me:
        unlinks[0] += 1
        last_dfd = i32(ctx.arg0)  # int dfd
    return 0


@bpf.kretprobe("do_unlinkat")
def krp_unlink(ctx: Any) -> int:
    global last_ret
    if bpf.get_current_pid_tgid() >> 32 == me:
        unlinks[1] += 1
        last_ret = i32(ctx.ret)
    return 0


def _unlink_in(d: str, dfd: int, n: int, missing: bool = False) -> None:
    for i in range(n):
        name = f"gone{i}" if missing else f"f{i}"
        if not missing:
            open(os.path.join(d, name), "w").close()
    for i in range(n):
        try:
            os.unlink(f"gone{i}" if missing else f"f{i}", dir_fd=dfd)
        except FileNotFoundError:
            assert missing


def test_kprobe_reads_arguments_and_kretprobe_the_return_value(tracefs: str) -> None:
    """kprobe: N unlinks through a directory fd are counted and ``arg0`` is that fd;
    kretprobe: unlinking a missing name returns -ENOENT in ``ret``."""
    with bpf.load(kp_unlink, krp_unlink, constants={"me": os.getpid()}) as coll, \
            tempfile.TemporaryDirectory() as d:
        assert coll.kp_unlink.info().type == P.KPROBE
        dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
        try:
            with _kprobe(coll.kp_unlink, "do_unlinkat"):
                _unlink_in(d, dfd, N)
            assert coll.unlinks[0] == N
            assert coll.variables["last_dfd"].get() == dfd
            with _kprobe(coll.krp_unlink, "do_unlinkat", retprobe=True):
                _unlink_in(d, dfd, N, missing=True)
            assert coll.unlinks[1] == N
            assert coll.variables["last_ret"].get() == -errno.ENOENT
        finally:
            os.close(dfd)


# -- fentry / fexit: BPF trampolines (EPERM here; the VM) ------------------------------------
fcounts = bpf.Array(u64, max_entries=4)


@bpf.fentry("bpf_fentry_test1")
def on_test1(ctx: Any) -> int:
    fcounts[0] += 1
    fcounts[1] = ctx.a  # int a: test_run passes 1
    return 0


@bpf.fexit("bpf_fentry_test1")
def after_test1(ctx: Any) -> int:
    fcounts[2] = ctx.arg0
    fcounts[3] = i32(ctx.ret)  # a + 1
    return 0


def test_fentry_and_fexit_see_arguments_and_return_value() -> None:
    """BPF_PROG_TEST_RUN of a tracing program calls bpf_fentry_test1(1), which returns 2:
    fentry sees a = 1 once, fexit sees a = 1 and ret = 2."""
    with _load("fentry/fexit", on_test1, after_test1) as coll:
        assert coll.on_test1.info().type == P.TRACING
        with attach_tracing(coll.on_test1) as a, attach_tracing(coll.after_test1) as b:
            assert isinstance(a, TracingLink) and isinstance(b, TracingLink)
            assert a.target().attach_type == A.TRACE_FENTRY
            assert b.target().attach_type == A.TRACE_FEXIT
            coll.on_test1.test_run()
        assert [coll.fcounts[i] for i in range(4)] == [1, 1, 1, 2]


def test_fentry_example_counts_unlinks() -> None:
    """examples/py_fentry_unlinks.py: 5 unlinks and 3 of missing names through a directory
    fd; fentry counts 8 and sees the fd by its BTF name, fexit counts 3 failures."""
    ex = _module("py_fentry_unlinks", ROOT / "examples" / "py_fentry_unlinks.py")
    try:
        n, bad, seen, dfd = ex.count_unlinks(5, 3)
    except errors.SyscallError as e:
        if e.errno == errno.EPERM and e.cmd == "BPF_PROG_LOAD":
            pytest.skip(f"fentry example: {e.cmd} refused with EPERM on this kernel")
        raise
    assert (n, bad, seen) == (8, 3, dfd)


# -- LSM: the return value denies (EPERM here; the VM boots with lsm=...,bpf) ---------------
denied = bpf.var(u64, 0)


@bpf.lsm("inode_mkdir")
def no_marked_mkdir(ctx: Any) -> int:
    global denied
    if bpf.get_current_pid_tgid() >> 32 == me and (ctx.mode & 0o7777) == MARK:
        denied += 1
        return -EPERM
    return 0


def test_lsm_return_value_denies_the_operation() -> None:
    """inode_mkdir(dir, dentry, mode): a mkdir with the marked mode by this process fails
    with EPERM while the program is attached; another mode is allowed, and so is the marked
    one after detaching."""
    old = os.umask(0)
    try:
        with _load("LSM", no_marked_mkdir, constants={"me": os.getpid()}) as coll, \
                tempfile.TemporaryDirectory() as d:
            assert coll.no_marked_mkdir.info().type == P.LSM
            with _lsm_attach(coll.no_marked_mkdir):
                with pytest.raises(PermissionError) as ei:
                    os.mkdir(os.path.join(d, "marked"), MARK)
                assert ei.value.errno == errno.EPERM
                os.mkdir(os.path.join(d, "plain"), 0o755)
            assert coll.variables["denied"].get() == 1
            os.mkdir(os.path.join(d, "marked"), MARK)  # detached: allowed
            assert os.stat(os.path.join(d, "marked")).st_mode & 0o7777 == MARK
    finally:
        os.umask(old)
