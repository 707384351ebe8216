"""Typed integer arguments of the BTF-typed kinds, and the sleepable ``fentry.s`` /
``fexit.s`` / ``lsm.s`` kinds, loaded, attached and fired.

* tp_btf (runs on this machine kind): ``fcntl_setlk``'s ``int ret`` is ``-EBADF`` for a
  write lock on a read-only file. A raw tracepoint on the same event reads the slot as the
  kernel fills it (zero-extended, ``2**32 - EBADF``); the typed ``ctx.ret`` (by the name
  its class's probe gives, ``DEFINE_EVENT``) and ``ctx.arg2`` are ``-EBADF`` and ``< 0``.
  ``sys_exit``'s ``long ret`` compares ``< 0`` with no cast.
* fentry/fexit (the 6.1 VM; this kernel refuses their loads with ``EPERM``): the ``char``,
  ``short``, ``int``, pointer and ``u64`` arguments of ``bpf_fentry_test3/5`` through
  ``BPF_PROG_TEST_RUN``, and ``do_unlinkat``'s ``int dfd`` = ``AT_FDCWD`` (-100) and its
  ``int`` result ``-ENOENT``, both ``< 0`` with no cast.
* ``lsm.s`` on ``file_open`` copies this process's memory with ``bpf.copy_from_user`` (only
  a sleepable program may) and denies opening one file with ``EPERM``.
* ``fentry.s``/``fexit.s`` on the ``chdir`` syscall copy the path from user memory; the
  kernel takes a sleepable fentry only on functions that allow error injection, which needs
  ``CONFIG_FUNCTION_ERROR_INJECTION`` (Debian's 6.1 has it off: the load fails with
  ``EINVAL``, "... is not sleepable", and the test skips on exactly that).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest

from ebpf import bpf, errors, platform
from ebpf.bpf import i64, u32, u64
from ebpf.link.raw_tracepoint import attach_raw_tracepoint
from ebpf.link.tracing import attach_tracing
from ebpf.testing.modules import import_file

N = 4
EPERM = 1
AT_FDCWD = -100


_load = import_file(Path(__file__).with_name("_trace_link_factories.py")).bpf_load_or_skip


def _lsm_attach(prog: Any) -> Any:
    try:
        return attach_tracing(prog)
    except errors.SyscallError as e:
        if e.errno == errno.EOPNOTSUPP:
            pytest.skip(f"{e.cmd}: EOPNOTSUPP (bpf is not in this kernel's lsm= list)")
        raise


me = bpf.const(u32, 0)
tid = bpf.const(u32, 0)


# -- tp_btf: an int argument is sign-extended from its zero-extended slot --------------------
setlk = bpf.Array(i64, max_entries=4)


@bpf.tp_btf("fcntl_setlk")
def typed_setlk(ctx: Any) -> int:  # (struct inode *inode, struct file_lock *fl, int ret)
    if bpf.get_current_pid_tgid() >> 32 == me:  # names from its class's probe
        setlk[0] = ctx.ret
        if ctx.arg2 < 0:
            setlk[1] += 1
    return 0


@bpf.raw_tracepoint("fcntl_setlk")
def raw_setlk(ctx: Any) -> int:
    if bpf.get_current_pid_tgid() >> 32 == me:
        setlk[2] = ctx.arg2  # the raw u64 slot
    return 0


def test_tp_btf_int_argument_is_negative() -> None:
    """A write lock on a read-only fd fails in fcntl_setlk with EBADF, which the tracepoint
    passes as ``int ret``: the typed read is -EBADF (and < 0), the raw slot 2**32 - EBADF."""
    with bpf.load(typed_setlk, raw_setlk, constants={"me": os.getpid()}) as coll, \
            tempfile.NamedTemporaryFile() as f:
        fd = os.open(f.name, os.O_RDONLY)
        try:
            with attach_tracing(coll.typed_setlk), \
                    attach_raw_tracepoint(coll.raw_setlk, "fcntl_setlk"):
                for _ in range(N):
                    with pytest.raises(OSError) as ei:
                        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    assert ei.value.errno == errno.EBADF
        finally:
            os.close(fd)
        assert [coll.setlk[i] for i in range(3)] == [-errno.EBADF, N, (1 << 32) - errno.EBADF]


exits = bpf.Array(i64, max_entries=2)


@bpf.tp_btf("sys_exit")
def failing_exits(ctx: Any) -> int:  # (struct pt_regs *regs, long ret)
    if bpf.get_current_pid_tgid() & 0xFFFFFFFF == tid and ctx.ret < 0:
        exits[0] += 1
        if ctx.ret == -errno.ENAMETOOLONG:
            exits[1] += 1
    return 0


def test_tp_btf_long_ret_compares_below_zero() -> None:
    """Opening a name longer than NAME_MAX fails with ENAMETOOLONG: sys_exit's ``long ret``
    is negative with no cast, N times on this thread."""
    long_name = os.path.join(tempfile.gettempdir(), "n" * 300)
    with bpf.load(failing_exits, constants={"tid": threading.get_native_id()}) as coll:
        with attach_tracing(coll.failing_exits):
            for _ in range(N):
                with pytest.raises(OSError) as ei:
                    os.open(long_name, os.O_RDONLY)
                assert ei.value.errno == errno.ENAMETOOLONG
        assert coll.exits[1] == N
        assert coll.exits[0] >= N


# -- fentry / fexit (EPERM here; the VM) -----------------------------------------------------
vals = bpf.Array(i64, max_entries=16)


@bpf.fentry("bpf_fentry_test3")
def on_test3(ctx: Any) -> int:  # (char a, int b, u64 c): test_run passes 4, 5, 6
    vals[0] = ctx.a
    vals[1] = ctx.b
    vals[2] = ctx.c
    return 0


@bpf.fexit("bpf_fentry_test5")
def after_test5(ctx: Any) -> int:  # (u64 a, void *b, short c, int d, u64 e): 11..15 -> 65
    vals[3] = ctx.a
    vals[4] = ctx.b
    vals[5] = ctx.c
    vals[6] = ctx.d
    vals[7] = ctx.e
    vals[8] = ctx.ret
    if ctx.ret > 0:
        vals[9] += 1
    return 0


def test_fentry_fexit_test_run_arguments_of_each_type() -> None:
    with _load("fentry/fexit", on_test3, after_test5) as coll:
        with attach_tracing(coll.on_test3), attach_tracing(coll.after_test5):
            coll.on_test3.test_run()
        assert [coll.vals[i] for i in range(10)] == [4, 5, 6, 11, 12, 13, 14, 15, 65, 1]


unl = bpf.Array(i64, max_entries=4)


@bpf.fentry("do_unlinkat")
def unlink_in(ctx: Any) -> int:  # int do_unlinkat(int dfd, struct filename *name)
    if bpf.get_current_pid_tgid() >> 32 == me:
        unl[0] = ctx.dfd
        if ctx.dfd < 0:
            unl[1] += 1
    return 0


@bpf.fexit("do_unlinkat")
def unlink_out(ctx: Any) -> int:
    if bpf.get_current_pid_tgid() >> 32 == me:
        unl[2] = ctx.ret
        if ctx.ret < 0:
            unl[3] += 1
    return 0


def test_fentry_fexit_negative_int_argument_and_result() -> None:
    """unlink(2) of a missing path: do_unlinkat(AT_FDCWD, ...) returns -ENOENT; fentry sees
    ``dfd`` = -100 and fexit ``ret`` = -ENOENT, each < 0, with no cast."""
    with _load("fentry/fexit", unlink_in, unlink_out, constants={"me": os.getpid()}) as coll, \
            tempfile.TemporaryDirectory() as d:
        with attach_tracing(coll.unlink_in), attach_tracing(coll.unlink_out):
            for i in range(N):
                with pytest.raises(FileNotFoundError):
                    os.unlink(os.path.join(d, f"absent{i}"))
        assert [coll.unl[i] for i in range(4)] == [AT_FDCWD, N, -errno.ENOENT, N]


# -- lsm.s: a sleepable LSM program copies user memory and denies ----------------------------
class Tag(bpf.Struct):
    n: i64
    tag: bpf.bytes_[16]


tags = bpf.RingBuf(size=1 << 14)
marked = bpf.const(u64, 0)
tag_addr = bpf.const(u64, 0)


@bpf.lsm("file_open", sleepable=True)
def guard_open(ctx: Any) -> int:
    if bpf.get_current_pid_tgid() >> 32 != me or ctx.file.f_inode.i_ino != marked:
        return 0
    e = tags.reserve(Tag)
    if e is not None:
        e.n = bpf.copy_from_user(e.tag, tag_addr)  # only sleepable programs may call it
        tags.submit(e)
    return -EPERM


def test_lsm_s_file_open_copies_from_user_and_denies(tmp_path: Path) -> None:
    """While attached, opening the marked file fails with EPERM and each try copies the
    tag from this process's memory; another file opens; detached, the marked one opens."""
    marked_file, other = tmp_path / "marked", tmp_path / "other"
    marked_file.write_bytes(b"x")
    other.write_bytes(b"y")
    buf = ctypes.create_string_buffer(b"sleepable lsm", 16)
    consts = {"me": os.getpid(), "marked": marked_file.stat().st_ino,
              "tag_addr": ctypes.addressof(buf)}
    with _load("lsm.s", guard_open, constants=consts) as coll:
        with _lsm_attach(coll.guard_open):
            for _ in range(2):
                with pytest.raises(PermissionError):
                    marked_file.read_bytes()
            assert other.read_bytes() == b"y"
        recs = list(coll.tags.read(Tag, timeout=1.0))
        assert marked_file.read_bytes() == b"x"
    assert [(r.n, r.tag.split(b"\0")[0]) for r in recs] == [(0, b"sleepable lsm")] * 2


# -- fentry.s / fexit.s: the chdir syscall, when the kernel allows sleepable fentry ---------
class Chdir(bpf.Struct):
    n: i64
    path: bpf.bytes_[64]


paths = bpf.RingBuf(size=1 << 14)
chdir_ret = bpf.var(i64, 1)


@bpf.fentry("__x64_sys_chdir", sleepable=True)
def chdir_in(ctx: Any) -> int:  # long __x64_sys_chdir(const struct pt_regs *regs)
    if bpf.get_current_pid_tgid() >> 32 != me:
        return 0
    e = paths.reserve(Chdir)
    if e is not None:
        e.n = bpf.copy_from_user(e.path, ctx.regs.di)  # chdir(const char *filename)
        paths.submit(e)
    return 0


@bpf.fexit("__x64_sys_chdir", sleepable=True)
def chdir_out(ctx: Any) -> int:
    global chdir_ret
    if bpf.get_current_pid_tgid() >> 32 == me:
        chdir_ret = ctx.ret
    return 0


@pytest.mark.skipif(platform.ARCH != "x86_64", reason="__x64_sys_chdir: an x86-64 syscall")
def test_fentry_s_fexit_s_copy_the_chdir_path(tmp_path: Path) -> None:
    target = tmp_path / ("d" * 40)
    target.mkdir()
    here = os.getcwd()
    try:
        coll = _load("fentry.s", chdir_in, chdir_out, constants={"me": os.getpid()})
    except errors.VerifierError as e:
        if e.errno == errno.EINVAL and any("is not sleepable" in ln for ln in e.log):
            pytest.skip("fentry.s: EINVAL, __x64_sys_chdir is not sleepable on this kernel "
                        "(no CONFIG_FUNCTION_ERROR_INJECTION)")
        raise
    with coll:
        with attach_tracing(coll.chdir_in), attach_tracing(coll.chdir_out):
            try:
                os.chdir(target)
            finally:
                os.chdir(here)
            with pytest.raises(FileNotFoundError):
                os.chdir(target / "absent")
        recs = list(coll.paths.read(Chdir, timeout=1.0))
        assert coll.variables["chdir_ret"].get() == -errno.ENOENT
    want = [str(target), here, str(target / "absent")]
    assert [r.path.split(b"\0")[0] for r in recs] == [w.encode()[:64] for w in want]
