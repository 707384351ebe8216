"""Kernel structs in the Python front end: field chains through BTF-typed pointers (direct
loads) and ``bpf.core_read`` (``bpf_probe_read_kernel`` link by link), with offsets, sizes,
bitfields and signedness from the running kernel's BTF.

What the programs read is compared with what Python knows about the same tasks and files
(pids, parent pid, ``comm`` from /proc, scheduling policy and flags, inode numbers), and the
two ways of reading are compared with each other over every integer member of
``task_struct``. tp_btf, raw tracepoints and tracepoints run on this machine kind; fentry
and LSM loads are refused here with ``EPERM`` (those tests skip on exactly that) and run in
the 6.1 VM: ``python -m tools.vmtest test -- tests/kernel/test_bpf_kernel_structs.py``.
"""

from __future__ import annotations

import errno
import importlib.util
import keyword
import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from ebpf import bpf, btf, errors
from ebpf.bpf import u32, u64
from ebpf.link.raw_tracepoint import attach_raw_tracepoint
from ebpf.link.tracing import attach_tracing

EPERM = 1


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


@pytest.fixture(scope="module")
def tracefs() -> Iterator[str]:
    with H.tracefs_mounted() as path:
        yield path


def _comm(tid: int) -> bytes:
    return Path(f"/proc/self/task/{tid}/comm").read_bytes().rstrip(b"\n")


def _task() -> btf.Composite:
    t = btf.load_kernel().find("task_struct", kind=btf.Struct)
    assert isinstance(t, btf.Composite)
    return t


me = bpf.const(u32, 0)   # this process's tgid
tid = bpf.const(u32, 0)  # the main thread's id


# -- tp_btf sched_switch: ctx.prev / ctx.next are struct task_struct * -------------------------
class Switch(bpf.Struct):
    prev_pid: u32
    prev_tgid: u32
    next_pid: u32
    next_tgid: u32
    cur_pid: u32
    prev_ppid: u32
    prev_comm: bpf.bytes_[16]
    next_comm: bpf.bytes_[16]
    cur_comm: bpf.bytes_[16]


switch_events = bpf.RingBuf(size=1 << 16)


@bpf.tp_btf("sched_switch")
def on_switch(ctx: Any) -> int:
    prev = ctx.prev
    if prev.tgid == me or ctx.next.tgid == me:  # noqa: PLR1714 (no `in` in programs)
        e = switch_events.reserve(Switch)
        if e is not None:
            e.prev_pid = prev.pid
            e.prev_tgid = prev.tgid
            e.next_pid = ctx.next.pid
            e.next_tgid = ctx.next.tgid
            e.prev_ppid = prev.real_parent.tgid
            e.cur_pid = bpf.get_current_pid_tgid() & 0xFFFFFFFF
            e.prev_comm = prev.comm
            e.next_comm = ctx.next.comm
            e.cur_comm = bpf.get_current_comm()
            switch_events.submit(e)
    return 0


def test_tp_btf_sched_switch_reads_prev_and_next_tasks() -> None:
    """Each sleep of a named worker thread switches it out (prev) and back in (next): the
    pids, tgid, parent and comm read through ``ctx.prev``/``ctx.next`` match /proc and, for
    prev (current at that point), ``bpf_get_current_pid_tgid``/``bpf_get_current_comm``."""
    got: dict[str, int] = {}
    named, go = threading.Event(), threading.Event()

    def worker() -> None:
        got["tid"] = threading.get_native_id()
        Path(f"/proc/self/task/{got['tid']}/comm").write_text("kstruct-wrk")
        named.set()
        go.wait()
        for _ in range(8):
            time.sleep(0.002)

    with bpf.load(on_switch, constants={"me": os.getpid()}) as coll:
        t = threading.Thread(target=worker)
        t.start()
        try:
            named.wait()
            with attach_tracing(coll.on_switch):
                go.set()
                t.join()
        finally:
            go.set()
            t.join()
        events = list(coll.switch_events.read(Switch))
    wt = got["tid"]
    ours = [e for e in events if e.prev_tgid == os.getpid()]
    assert ours, "no switch out of this process was seen"
    for e in ours:
        assert e.prev_pid == e.cur_pid
        assert e.prev_comm.rstrip(b"\0") == e.cur_comm.rstrip(b"\0")
        assert e.prev_ppid == os.getppid()
    out_w = [e for e in ours if e.prev_pid == wt]
    in_w = [e for e in events if e.next_tgid == os.getpid() and e.next_pid == wt]
    assert len(out_w) >= 8 and len(in_w) >= 8
    assert {e.prev_comm.rstrip(b"\0") for e in out_w} == {b"kstruct-wrk"}
    assert {e.next_comm.rstrip(b"\0") for e in in_w} == {b"kstruct-wrk"}
    main = [e for e in in_w + out_w if e.prev_pid == threading.get_native_id()]
    for e in main:
        assert e.prev_comm.rstrip(b"\0") == _comm(threading.get_native_id())


# -- get_current_task_btf (5.11) in tp_btf, core_read in raw_tp and tracepoint -----------------
seen = bpf.Array(u64, max_entries=16)


@bpf.tp_btf("sys_enter")
def task_btf(ctx: Any) -> int:
    t = bpf.get_current_task_btf()
    if t.tgid == me and t.pid == tid:
        seen[0] = t.tgid
        seen[1] = t.pid
        seen[2] = t.real_parent.tgid
        seen[3] = bpf.core_read(t.real_parent.tgid)   # the same, by bpf_probe_read_kernel
        seen[4] = t.sched_reset_on_fork                 # a 1-bit bitfield
        seen[5] = bpf.core_read(t.sched_reset_on_fork)
        seen[6] = t.comm[0]
        seen[7] = 1 if t.mm is not None else 2            # a user task has an mm
    return 0


@bpf.raw_tracepoint("sys_enter")
def task_probe(ctx: Any) -> int:
    t = bpf.get_current_task()
    if bpf.core_read(t.tgid) == me and bpf.core_read(t.pid) == tid:
        seen[8] = bpf.core_read(t.real_parent.tgid)
        parent = bpf.core_read(t.real_parent)
        seen[9] = bpf.core_read(parent.pid)
        seen[10] = bpf.core_read(t.sched_reset_on_fork)
        seen[11] = bpf.core_read(t.comm[0])
    return 0


def test_get_current_task_btf_and_core_read_follow_real_parent() -> None:
    """tp_btf sys_enter: ``get_current_task_btf()->tgid`` is os.getpid() and
    ``->real_parent->tgid`` os.getppid(), by direct loads and by core_read; raw_tp sys_enter:
    the same through ``bpf_get_current_task`` and core_read only (the verifier sees an
    integer there). The ``sched_reset_on_fork`` bitfield follows sched_setscheduler."""
    flag = os.SCHED_RESET_ON_FORK
    before = os.sched_getscheduler(0)
    param = os.sched_getparam(0)
    consts = {"me": os.getpid(), "tid": threading.get_native_id()}
    with bpf.load(task_btf, task_probe, constants=consts) as coll, \
            attach_tracing(coll.task_btf), attach_raw_tracepoint(coll.task_probe, "sys_enter"):
        os.getppid()
        first = [coll.seen[i] for i in range(12)]
        os.sched_setscheduler(0, os.SCHED_OTHER | flag, os.sched_param(0))
        try:
            os.getppid()
            second = [coll.seen[i] for i in range(12)]
        finally:
            os.sched_setscheduler(0, before, param)
    comm0 = _comm(threading.get_native_id())[0]
    pid, tgid, ppid = threading.get_native_id(), os.getpid(), os.getppid()
    assert first[:8] == [tgid, pid, ppid, ppid, 0, 0, comm0, 1]
    assert first[8:12] == [ppid, ppid, 0, comm0]
    assert (second[4], second[5], second[10]) == (1, 1, 1)


syscall_ppid = bpf.var(u64, 0)


@bpf.tracepoint("raw_syscalls/sys_enter")
def tp_parent(ctx: Any) -> int:
    global syscall_ppid
    if bpf.get_current_pid_tgid() >> 32 == me:
        syscall_ppid = bpf.core_read(bpf.get_current_task().real_parent.tgid)
    return 0


def test_tracepoint_core_read_of_the_parent(tracefs: str) -> None:
    """A tracepoint program: ``core_read(get_current_task().real_parent.tgid)`` is
    os.getppid()."""
    from ebpf.link.tracepoint import attach_tracepoint

    with bpf.load(tp_parent, constants={"me": os.getpid()}) as coll:
        with attach_tracepoint(coll.tp_parent, "raw_syscalls", "sys_enter"):
            os.getppid()
        assert coll.variables["syscall_ppid"].get() == os.getppid()


# -- differential: every integer member of task_struct, direct load vs core_read --------------

def _int_members(task: btf.Composite) -> list[str]:
    """Names of the task_struct members that read as integers (bitfields included)."""
    from ebpf.bpf._kstruct import resolve_field

    out = []
    for name in dict.fromkeys(m.name for m in task.members if m.name):
        try:
            f = resolve_field(task, name)
        except (KeyError, errors.BPFError):
            continue
        if f.kind == "int":
            out.append(name)
    return out


def test_direct_loads_and_core_read_agree_on_every_integer_member(tmp_path: Path) -> None:
    """A generated tp_btf program reads each integer member of the current task directly,
    then with core_read, then directly again: the probe read equals one of the direct ones
    (a member changed by an interrupt in between may take either value). Some members are
    also compared with Python (pid, tgid, static_prio from the nice value, policy, the number
    of allowed CPUs, exit_signal)."""
    names = _int_members(_task())
    assert len(names) > 40 and "sched_reset_on_fork" in names
    fields = "\n".join(f"    d{i}: i64\n    c{i}: i64\n    e{i}: i64"
                       for i in range(len(names)))
    reads = "\n".join(f"            r.d{i} = t.{n}\n"
                      f"            r.c{i} = bpf.core_read(t.{n})\n"
                      f"            r.e{i} = t.{n}" for i, n in enumerate(names))
    src = f'''from typing import Any
from ebpf import bpf
from ebpf.bpf import i64, u32

me = bpf.const(u32, 0)
rec = bpf.RingBuf(size=1 << 16)


class Members(bpf.Struct):
{fields}


@bpf.tp_btf("sys_enter")
def members(ctx: Any) -> int:
    t = bpf.get_current_task_btf()
    if t.tgid == me:
        r = rec.reserve(Members)
        if r is not None:
{reads}
            rec.submit(r)
    return 0
'''
    path = tmp_path / "gen_task_members.py"
    path.write_text(src)
    mod = _module("gen_task_members", path)
    try:
        with bpf.load(mod.members, constants={"me": os.getpid()}) as coll:
            with attach_tracing(coll.members):
                os.getppid()
            recs = list(coll.rec.read(mod.Members))
    finally:
        sys.modules.pop("gen_task_members", None)
    assert recs
    r = recs[0]
    vals: dict[str, tuple[int, int, int]] = {
        n: (getattr(r, f"d{i}"), getattr(r, f"c{i}"), getattr(r, f"e{i}"))
        for i, n in enumerate(names)}
    # bpf_probe_read_kernel runs with page faults disabled: it sees its own increment
    assert vals.pop("pagefault_disabled") == (0, 1, 0)
    bad = {n: v for n, v in vals.items() if v[1] not in (v[0], v[2])}
    assert not bad
    assert vals["tgid"][0] == os.getpid()
    assert vals["pid"][0] == threading.get_native_id()
    assert vals["static_prio"][0] == 120 + os.getpriority(os.PRIO_PROCESS, 0)
    assert vals["policy"][0] == os.sched_getscheduler(0)
    assert vals["nr_cpus_allowed"][0] == len(os.sched_getaffinity(0))
    assert vals["exit_signal"][0] == 17  # SIGCHLD
    # narrower than 64 bits: the i64 record keeps the member's sign (prio fields are ints)
    assert all(v[0] >= 0 for n, v in vals.items() if n in ("pid", "tgid"))


# -- compile-time errors -----------------------------------------------------------------------
def test_unknown_member_is_a_compile_error_with_close_names() -> None:
    @bpf.tp_btf("sched_switch")
    def typo(ctx: Any) -> int:
        return ctx.prev.real_parent.tgidd  # type: ignore[no-any-return]

    with pytest.raises(bpf.CompileError) as ei:
        typo.compile()
    msg = str(ei.value)
    assert msg.startswith(f"{__file__}:{typo.fn.__code__.co_firstlineno + 2}:")
    assert "struct task_struct has no member 'tgidd'; close: tgid" in msg


def test_probe_pointers_need_core_read_and_places_are_not_values() -> None:
    @bpf.raw_tracepoint("sys_enter")
    def direct(ctx: Any) -> int:
        return bpf.get_current_task().pid  # type: ignore[no-any-return]

    with pytest.raises(bpf.CompileError, match=r"bpf\.core_read\(bpf\.get_current_task\(\)"
                                               r"\.pid\)"):
        direct.compile()

    @bpf.tp_btf("sched_switch")
    def embedded(ctx: Any) -> int:
        se = ctx.prev.se
        return se  # type: ignore[no-any-return]

    with pytest.raises(bpf.CompileError, match="struct sched_entity inside a kernel object"):
        embedded.compile()

    @bpf.raw_tracepoint("sys_enter")
    def cast(ctx: Any) -> int:
        return bpf.core_read(bpf.kernel.no_such_struct_here(ctx.arg0).x)  # type: ignore

    with pytest.raises(bpf.CompileError, match="no struct or union 'no_such_struct_here'"):
        cast.compile()

    @bpf.tp_btf("sched_switch")
    def bad_index(ctx: Any) -> int:
        return ctx.prev.comm[16]  # type: ignore[no-any-return]

    with pytest.raises(bpf.CompileError, match=r"constant in range 0\.\.15"):
        bad_index.compile()


def test_kernel_cast_reads_a_raw_tracepoint_argument() -> None:
    """raw_tp sched_switch: ``arg1`` is the prev task's address; ``bpf.kernel.task_struct``
    makes it a pointer core_read can follow (here: prev's tgid is the current tgid)."""
    same = bpf.Array(u64, max_entries=2)

    @bpf.raw_tracepoint("sched_switch")
    def cast_prev(ctx: Any) -> int:
        if bpf.get_current_pid_tgid() >> 32 == me:
            prev = bpf.kernel.task_struct(ctx.arg1)
            if bpf.core_read(prev.tgid) == me:
                same[0] += 1
            else:
                same[1] += 1
        return 0

    with bpf.load(cast_prev, constants={"me": os.getpid()}) as coll:
        with attach_raw_tracepoint(coll.cast_prev, "sched_switch"):
            for _ in range(5):
                time.sleep(0.002)
        assert coll.same[0] >= 5 and coll.same[1] == 0


# -- fentry / LSM: the VM ------------------------------------------------------------------
class Unlink(bpf.Struct):
    name: u64
    iname: bpf.bytes_[16]


unlink_events = bpf.RingBuf(size=1 << 12)


@bpf.fentry("do_unlinkat")
def fentry_unlink(ctx: Any) -> int:
    if bpf.get_current_pid_tgid() >> 32 == me:
        e = unlink_events.reserve(Unlink)
        if e is not None:
            e.name = ctx.name.name        # const char *: an integer
            e.iname = ctx.name.iname   # a flexible array: the first 16 bytes
            unlink_events.submit(e)
    return 0


def test_fentry_reads_the_filename_struct() -> None:
    """fentry do_unlinkat(int dfd, struct filename *name): ``name->iname`` holds the path
    this process passed."""
    with _load("fentry", fentry_unlink, constants={"me": os.getpid()}) as coll, \
            tempfile.TemporaryDirectory() as d:
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
        try:
            with attach_tracing(coll.fentry_unlink):
                for name in ("kst-a", "kst-bb"):
                    open(os.path.join(d, name), "w").close()
                    os.unlink(name, dir_fd=fd)
        finally:
            os.close(fd)
        events = list(coll.unlink_events.read(Unlink))
    assert [e.iname.split(b"\0")[0] for e in events] == [b"kst-a", b"kst-bb"]
    assert all(e.name != 0 for e in events)


kprobe_events = bpf.RingBuf(size=1 << 12)


@bpf.kprobe("do_unlinkat")
def kprobe_unlink(ctx: Any) -> int:
    if bpf.get_current_pid_tgid() >> 32 == me:
        e = kprobe_events.reserve(Unlink)
        if e is not None:
            e.name = bpf.core_read(ctx.arg1.name)    # arg1: struct filename *, from BTF
            e.iname = bpf.core_read(ctx.arg1.iname)
            kprobe_events.submit(e)
    return 0


def test_kprobe_arguments_are_typed_from_btf(tracefs: str) -> None:
    """A kprobe's struct pointer arguments take the type of the function's BTF prototype
    (do_unlinkat's ``struct filename *name``), read with core_read."""
    from ebpf.link.kprobe import attach_kprobe

    with bpf.load(kprobe_unlink, constants={"me": os.getpid()}) as coll, \
            tempfile.TemporaryDirectory() as d:
        try:
            link = attach_kprobe(coll.kprobe_unlink, "do_unlinkat")
        except errors.NotSupportedError as e:
            cause = e.__cause__
            if isinstance(cause, OSError) and cause.errno == errno.ENOENT:
                pytest.skip(f"kprobes unavailable (ENOENT, no CONFIG_KPROBES): {e}")
            raise
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
        try:
            with link:
                open(os.path.join(d, "kst-k"), "w").close()
                os.unlink("kst-k", dir_fd=fd)
        finally:
            os.close(fd)
        events = list(coll.kprobe_events.read(Unlink))
    assert [e.iname.split(b"\0")[0] for e in events] == [b"kst-k"]
    assert events[0].name != 0


class Mkdir(bpf.Struct):
    dir_ino: u64
    parent_ino: u64
    name_len: u32
    mode: u32


mkdir_events = bpf.RingBuf(size=1 << 12)


@bpf.lsm("inode_mkdir")
def lsm_mkdir(ctx: Any) -> int:
    if bpf.get_current_pid_tgid() >> 32 == me:
        e = mkdir_events.reserve(Mkdir)
        if e is not None:
            e.dir_ino = ctx.dir.i_ino
            e.parent_ino = ctx.dentry.d_parent.d_inode.i_ino
            e.name_len = ctx.dentry.d_name.len   # in an anonymous struct in a union
            e.mode = ctx.mode
            mkdir_events.submit(e)
    return 0


def test_lsm_reads_inode_and_dentry() -> None:
    """lsm inode_mkdir(struct inode *dir, struct dentry *dentry, umode_t mode): the parent's
    inode number (directly and through ``dentry->d_parent->d_inode``) is the directory's
    st_ino and ``dentry->d_name.len`` the new name's length."""
    with _load("LSM", lsm_mkdir, constants={"me": os.getpid()}) as coll, \
            tempfile.TemporaryDirectory() as d:
        try:
            link = attach_tracing(coll.lsm_mkdir)
        except errors.SyscallError as e:
            if e.errno == errno.EOPNOTSUPP:
                pytest.skip(f"{e.cmd}: EOPNOTSUPP (bpf is not in this kernel's lsm= list)")
            raise
        with link:
            os.mkdir(os.path.join(d, "kst-dir"), 0o755)
        events = list(coll.mkdir_events.read(Mkdir))
        ino = os.stat(d).st_ino
    assert [(e.dir_ino, e.parent_ino, e.name_len) for e in events] == [(ino, ino, 7)]


# -- differential: bitfields decoded in the kernel vs a Python decoder of the same BTF -------
_DECODE_STRUCTS = ("perf_branch_entry", "tcp_options_received", "desc_struct", "vt_mode",
                   "ipcm6_cookie")


def _python_decode(comp: btf.Composite, name: str, raw: bytes) -> int:
    """C's value of member ``name`` of ``comp`` in ``raw``, straight from the BTF member."""
    m = comp.member(name)
    t = comp.spec.resolve(m.type)
    assert isinstance(t, (btf.Int, btf.Enum, btf.Enum64))
    width, start = m.bitfield_size, m.offset
    if not width and isinstance(t, btf.Int):
        width, start = t.bits, m.offset + t.bit_offset
    width = width or t.size * 8
    v = (int.from_bytes(raw, "little") >> start) & ((1 << width) - 1)
    if t.signed and v >> (width - 1):
        v -= 1 << width
    return v


def test_bitfields_decode_as_python_does(tmp_path: Path) -> None:
    """Every integer member (bitfields of 1..31 bits, plain ints, signed 16- and 32-bit ones)
    of a few kernel structs, read by core_read from a stack copy of random bytes
    (``bpf.kernel.<struct>(stack pointer)``, run by BPF_PROG_TEST_RUN of a raw tracepoint
    program), equals the value a Python decoder of the same BTF members gives."""
    from ebpf.bpf._kstruct import kernel_type, resolve_field

    members: list[tuple[str, str]] = []
    for sname in _DECODE_STRUCTS:
        try:
            comp = kernel_type(sname)
        except KeyError:
            continue
        assert comp.size <= 96
        for m in comp.members:
            if m.name and resolve_field(comp, m.name).kind == "int":
                members.append((sname, m.name))
    assert sum(1 for s, n in members
               if resolve_field(kernel_type(s), n).bits > 1) >= 5
    _decode_differential(tmp_path, members, kernel_type, "gen_bitfields")


def test_signed_bitfields_decode_as_python_does(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel's own BTF has no signed bitfields, so the compiler is given a synthetic
    struct (signed and unsigned bitfields of 1..64 bits, across byte and word boundaries,
    with and without kind_flag; signed 8/16/32-bit members) as if the kernel had it; the
    program runs on the kernel as above."""
    from ebpf.bpf import _kstruct
    from ebpf.btf.writer import BTFWriter, Field

    w = BTFWriter()
    ints = {(n, sg): w.int_(("" if sg else "unsigned ") + c, n, signed=sg)
            for n, c in ((1, "char"), (2, "short"), (4, "int"), (8, "long"))
            for sg in (False, True)}
    layout = [("a", 1, True, 0, 3), ("b", 4, True, 3, 7), ("c", 4, False, 10, 9),
              ("d", 8, True, 19, 33), ("e", 2, True, 52, 12), ("f", 8, True, 64, 64),
              ("g", 8, False, 128, 61), ("h", 4, True, 189, 3), ("i", 1, True, 192, 0),
              ("j", 2, True, 208, 0), ("k", 4, True, 224, 0), ("m", 8, True, 256, 1),
              ("n", 2, False, 257, 15)]
    fields = [Field(n, ints[(sz, sg)], off, bits) for n, sz, sg, off, bits in layout]
    # one INT-encoded bitfield (no kind_flag): a signed 5-bit value at bit 2 of a byte
    fields.append(Field("o", w.int_("s5", 1, signed=True, bits=5, bit_offset=2), 272))
    w.struct("kst_synthetic", fields, size=40)
    spec = btf.Spec.from_bytes(w.encode())
    monkeypatch.setattr(_kstruct, "_spec", lambda: spec)
    members = [("kst_synthetic", n) for n, *_ in layout] + [("kst_synthetic", "o")]
    _decode_differential(tmp_path, members, _kstruct.kernel_type, "gen_signed_bitfields")


def _decode_differential(tmp_path: Path, members: list[tuple[str, str]], find: Any,
                         modname: str) -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    words = ", ".join(f"w{i}=ctx.arg{i}" for i in range(12))
    fields = "\n".join(f"    v{i}: i64" for i in range(len(members)))
    reads = "\n".join(f"        o.v{i} = bpf.core_read(bpf.kernel.{s}(b).{n}"
                      f"{'_' if keyword.iskeyword(n) else ''})"  # p.from_ for from
                      for i, (s, n) in enumerate(members))
    wfields = "\n".join(f"    w{i}: u64" for i in range(12))
    src = f'''from typing import Any
from ebpf import bpf
from ebpf.bpf import i64, u64


class Words(bpf.Struct):
{wfields}


class Values(bpf.Struct):
{fields}


values = bpf.Array(Values, max_entries=1)


@bpf.raw_tracepoint("sys_enter")
def decode(ctx: Any) -> int:
    b = Words({words})
    o = values.lookup(0)
    if o is not None:
{reads}
    return 0
'''
    path = tmp_path / f"{modname}.py"
    path.write_text(src)
    mod = _module(modname, path)
    comps = {s: find(s) for s, _ in members}
    try:
        with bpf.load(mod.decode) as coll:
            @settings(max_examples=150)
            @given(st.binary(min_size=96, max_size=96))
            def check(raw: bytes) -> None:
                coll.decode.test_run(ctx=raw)
                got = coll.values.lookup(0)                 # a Values (typed map)
                for i, (s, n) in enumerate(members):
                    want = _python_decode(comps[s], n, raw[:comps[s].size])
                    assert getattr(got, f"v{i}") % (1 << 64) == want % (1 << 64), (s, n)

            check()
    finally:
        sys.modules.pop(modname, None)


def test_fexit_return_pointer_and_arguments_are_typed() -> None:
    """fexit's ``ctx.ret`` of a function returning a struct pointer is typed like the
    arguments (compiled here; loads are refused on this host): the chain compiles to
    NULL-checked loads at the BTF offsets."""
    from ebpf.bpf._kstruct import kernel_type, resolve_field

    @bpf.fexit("d_alloc")
    def after_alloc(ctx: Any) -> int:
        if ctx.ret is not None and ctx.parent.d_name.len == 3:
            return 0
        return ctx.ret.d_name.len  # type: ignore[no-any-return]

    listing = after_alloc.asm()
    dentry = kernel_type("dentry")
    d_name = resolve_field(dentry, "d_name")
    assert d_name.target is not None
    off = d_name.offset + resolve_field(d_name.target, "len").offset
    loads = re.findall(rf"= \*\(u32 \*\)\(r\d \+ {off:#x}\)", listing)
    assert len(loads) == 2, listing  # parent->d_name.len and ret->d_name.len
    lines = listing.splitlines()
    for k, line in enumerate(lines):  # each load right after its pointer's NULL check
        if re.search(rf"\(r\d \+ {off:#x}\)", line):
            assert re.search(r"if r\d == 0x0 goto", lines[k - 1]), listing
