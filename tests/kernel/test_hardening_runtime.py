"""Hardening of the runtime layer (issue 14): data integrity of the ring/perf readers, the fd
reuse race, range-checked attrs, object-kind checks, clear errors, nothing left behind."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import struct
from collections.abc import Iterator

import pytest

import ebpf
from ebpf import MapType, ProgramType, asm, features
from ebpf._maps import Map
from ebpf.asm import R0, R1, R2, R3, R4, R5, R6, R7, R9, R10, Helper
from ebpf.perf import PerfBuffer
from ebpf.ringbuf import RingBuffer

PKT = bytes(64)
CURRENT_CPU = 0xFFFF_FFFF  # BPF_F_CURRENT_CPU


# --- ring buffer / perf buffer: one consumer position ---------------------------------------

def ring_producer(rb: Map, counter: Map, loops: int) -> ebpf.Program:
    """XDP: ``loops`` times reserve 16 bytes and write seq = counter[0]++ into them."""
    return ebpf.Program.load(ProgramType.XDP, [
        asm.mov(R9, 0),
        asm.label("loop"),
        asm.store_imm(asm.W, R10, -4, 0),
        asm.load_map(R1, counter), asm.mov(R2, R10), asm.add(R2, -4),
        asm.call(Helper.MAP_LOOKUP_ELEM),
        asm.jeq(R0, 0, "out"),
        asm.mov(R7, 1),
        asm.atomic_add(asm.DW, R0, R7, 0, fetch=True),
        asm.load_map(R1, rb), asm.mov(R2, 16), asm.mov(R3, 0),
        asm.call(Helper.RINGBUF_RESERVE),
        asm.jeq(R0, 0, "out"),
        asm.store(asm.DW, R0, 0, R7),
        asm.store(asm.DW, R0, 8, R7),
        asm.mov(R1, R0), asm.mov(R2, 0), asm.call(Helper.RINGBUF_SUBMIT),
        asm.add(R9, 1),
        asm.jlt(R9, loops, "loop"),
        asm.label("out"),
        asm.mov(R0, 2), asm.exit(),
    ], license="GPL")


def perf_producer(pm: Map, counter: Map, loops: int) -> ebpf.Program:
    """XDP: ``loops`` times output 8 bytes (seq = counter[0]++) to the current CPU's ring."""
    return ebpf.Program.load(ProgramType.XDP, [
        asm.mov(R6, R1),
        asm.mov(R9, 0),
        asm.label("loop"),
        asm.store_imm(asm.W, R10, -4, 0),
        asm.load_map(R1, counter), asm.mov(R2, R10), asm.add(R2, -4),
        asm.call(Helper.MAP_LOOKUP_ELEM),
        asm.jeq(R0, 0, "out"),
        asm.mov(R7, 1),
        asm.atomic_add(asm.DW, R0, R7, 0, fetch=True),
        asm.store(asm.DW, R10, -16, R7),
        asm.mov(R1, R6), asm.load_map(R2, pm), asm.load_imm64(R3, CURRENT_CPU),
        asm.mov(R4, R10), asm.add(R4, -16), asm.mov(R5, 8),
        asm.call(Helper.PERF_EVENT_OUTPUT),
        asm.add(R9, 1),
        asm.jlt(R9, loops, "loop"),
        asm.label("out"),
        asm.mov(R0, 2), asm.exit(),
    ], license="GPL")


def seqs(records: Iterator[object]) -> list[int]:
    return [struct.unpack_from("=Q", bytes(r))[0] for r in records]  # type: ignore[arg-type]


@pytest.fixture
def ring() -> Iterator[tuple[Map, Map]]:
    with Map.create(MapType.RINGBUF, max_entries=1 << 16) as rb, \
            Map.create(MapType.ARRAY, key_size=4, value_size=8, max_entries=1) as counter:
        yield rb, counter


@pytest.mark.requires(features.have_map_type, MapType.RINGBUF)
def test_ringbuf_live_iterator_and_new_read_no_duplicates(ring: tuple[Map, Map]) -> None:
    rb, counter = ring
    with ring_producer(rb, counter, 100) as prog, RingBuffer(rb) as r:
        prog.test_run(PKT)
        first = r.read()
        got = [struct.unpack_from("=Q", bytes(next(first)))[0] for _ in range(30)]
        got += seqs(r.read())  # a second read while the first is alive
        pos = r._rings[0].cons[0]
        del first
        gc.collect()  # the old iterator must not write its stale position back
        assert r._rings[0].cons[0] == pos
        prog.test_run(PKT)
        got += seqs(r.read())
        assert got == list(range(200))


@pytest.mark.requires(features.have_map_type, MapType.RINGBUF)
def test_ringbuf_old_iterator_resumed_after_new_read(ring: tuple[Map, Map]) -> None:
    rb, counter = ring
    with ring_producer(rb, counter, 100) as prog, RingBuffer(rb) as r:
        prog.test_run(PKT)
        a = r.read()
        got = seqs(next(a) for _ in range(10))
        b = r.read()
        got += seqs(next(b) for _ in range(10))
        got += seqs(a)  # both go on: each record still comes once, in order
        got += seqs(b)
        assert got == list(range(100))


@pytest.mark.requires(features.have_map_type, MapType.RINGBUF)
def test_ringbuf_async_for_break_then_again(ring: tuple[Map, Map]) -> None:
    rb, counter = ring

    async def take(r: RingBuffer, n: int) -> list[int]:
        out: list[int] = []
        async for rec in r:
            out.append(struct.unpack_from("=Q", bytes(rec))[0])
            if len(out) == n:
                break
        return out

    async def main(r: RingBuffer, prog: ebpf.Program) -> list[int]:
        got = await take(r, 30)  # its generator is finalized later, by the loop
        got += await take(r, 50)
        gc.collect()
        for _ in range(5):
            await asyncio.sleep(0)
        prog.test_run(PKT)
        got += await take(r, 120)
        return got

    with ring_producer(rb, counter, 100) as prog, RingBuffer(rb) as r:
        prog.test_run(PKT)
        got = asyncio.run(main(r, prog))
        assert got == list(range(200))
        assert r.available() == 0


@pytest.mark.requires(features.have_map_type, MapType.PERF_EVENT_ARRAY)
def test_perf_live_iterator_and_new_read_no_duplicates() -> None:
    cpu = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpu)})
    try:
        with Map.create(MapType.PERF_EVENT_ARRAY) as pm, \
                Map.create(MapType.ARRAY, key_size=4, value_size=8, max_entries=1) as counter, \
                perf_producer(pm, counter, 100) as prog, PerfBuffer(pm, cpus=[min(cpu)]) as pb:
            prog.test_run(PKT)
            first = pb.read()
            got = [struct.unpack_from("=Q", next(first)[1])[0] for _ in range(30)]
            got += [struct.unpack_from("=Q", rec)[0] for _, rec in pb.read()]
            ring0 = pb._order[0]
            pos = ring0.tail[0]
            del first
            gc.collect()
            assert ring0.tail[0] == pos
            prog.test_run(PKT)
            got += [struct.unpack_from("=Q", rec)[0] for _, rec in pb.read()]
            assert got == list(range(200))
    finally:
        os.sched_setaffinity(0, cpu)


# --- fd reuse: a closed object never reaches a recycled fd number ------------------------------

def test_fd_reuse_race_never_writes_into_new_map() -> None:
    """Writer threads write while the main thread closes the map and creates a new one, which
    usually gets the same fd number: the write must fail cleanly, never land in the new map.
    Eight writers, 300 rounds: before the fix a write landed in the new map in 31 of 300
    rounds this way (2 of 300 with a single writer, which a run can miss)."""
    import sys

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: widen the window
    try:
        _race_rounds(300)
    finally:
        sys.setswitchinterval(interval)


WRITERS = 8


def _race_rounds(rounds: int) -> None:
    import threading

    reused = 0
    for _ in range(rounds):
        old = Map.create(MapType.HASH, key_size=4, value_size=4, max_entries=4)
        start = threading.Event()
        stop = threading.Event()
        failed: list[BaseException] = []

        def writer(m: Map = old, start: threading.Event = start,
                   stop: threading.Event = stop, failed: list[BaseException] = failed) -> None:
            start.set()
            try:
                while not stop.is_set():
                    m[1] = 0xBAD
            except ValueError:  # "operation on a closed map"
                pass
            except ebpf.errors.SyscallError as e:  # the fd was invalidated under us
                if e.errno != 9:  # EBADF
                    failed.append(e)

        threads = [threading.Thread(target=writer) for _ in range(WRITERS)]
        for t in threads:
            t.start()
        start.wait()
        num = old.fileno()
        old.close()
        new = Map.create(MapType.HASH, key_size=4, value_size=4, max_entries=4)
        try:
            reused += new.fileno() == num
            stop.set()
            for t in threads:
                t.join()
            assert not failed
            assert len(new) == 0, "a write of the closed map landed in the new one"
        finally:
            stop.set()
            for t in threads:
                t.join()
            new.close()
    assert reused > 0


# --- attrs: range-checked, named errors, before any syscall ----------------------------------

InvalidArgumentError = ebpf.errors.InvalidArgumentError


@pytest.mark.parametrize(("kw", "field"), [
    ({"key_size": 2**32 + 4}, "key_size"),
    ({"value_size": 2**32 + 8}, "value_size"),
    ({"max_entries": 2**32 + 1}, "max_entries"),
    ({"flags": 2**32}, "map_flags"),
    ({"map_type": 2**32 + 1}, "map_type"),
    ({"max_entries": -1}, "max_entries"),
    ({"map_extra": 2**64}, "map_extra"),
    ({"name": "a b-c/d"}, "name"),
    ({"name": "caf\u00e9"}, "name"),
])
def test_map_create_rejects_what_would_be_truncated(kw: dict[str, object], field: str) -> None:
    args: dict[str, object] = {"map_type": MapType.HASH, "key_size": 4, "value_size": 4,
                               "max_entries": 4}
    args.update(kw)
    before = ebpf._sys.fd.open_count()
    with pytest.raises(InvalidArgumentError) as e:
        Map.create(**args)  # type: ignore[arg-type]
    assert e.value.field == field
    assert isinstance(e.value, ValueError)
    assert ebpf._sys.fd.open_count() == before


RET2 = [asm.mov(R0, 2), asm.exit()]


@pytest.mark.parametrize(("kw", "field"), [
    ({"prog_type": 2**32 + 1}, "prog_type"),
    ({"flags": 2**32}, "prog_flags"),
    ({"kern_version": -1}, "kern_version"),
    ({"name": "bad name"}, "name"),
    ({"license": None}, "license"),
    ({"func_info": b"\0" * 8}, "func_info_rec_size"),
    ({"line_info": b"\0" * 16}, "line_info_rec_size"),
    ({"func_info": b"\0" * 12, "func_info_rec_size": 8}, "func_info"),
])
def test_program_load_rejects_bad_arguments(kw: dict[str, object], field: str) -> None:
    args: dict[str, object] = {"prog_type": ProgramType.XDP}
    args.update(kw)
    pt = args.pop("prog_type")
    with pytest.raises(InvalidArgumentError) as e:
        ebpf.Program.load(pt, RET2, **args)  # type: ignore[arg-type]
    assert e.value.field == field


def test_test_run_repeat_out_of_range_on_every_path() -> None:
    with ebpf.Program.load(ProgramType.XDP, RET2) as p:
        for kwargs in ({}, {"data_out_size": 128}, {"flags": 0, "cpu": 0, "ctx": None}):
            with pytest.raises(InvalidArgumentError, match="repeat"):
                p.test_run(PKT, repeat=2**32 + 1, **kwargs)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgumentError, match="repeat"):
            p.test_run(PKT, repeat=-1)
        with pytest.raises(InvalidArgumentError, match="cpu"):
            p.test_run(PKT, cpu=2**32)
        assert p.test_run(PKT, repeat=3).retval == 2


# --- object kinds, pins, paths ----------------------------------------------------------------

ObjectKindError = ebpf.errors.ObjectKindError


def test_wrong_kind_of_pin_or_fd(bpffs: str) -> None:
    from ebpf.link import Link

    with ebpf.Program.load(ProgramType.XDP, RET2) as p, \
            Map.create(MapType.HASH, key_size=4, value_size=4, max_entries=1) as m:
        p.pin(f"{bpffs}/prog")
        m.pin(f"{bpffs}/map")
        before = ebpf._sys.fd.open_count()
        with pytest.raises(ObjectKindError, match="is a BPF program, not a BPF map"):
            Map.from_pin(f"{bpffs}/prog")
        with pytest.raises(ObjectKindError, match="program"):
            Link.from_pin(f"{bpffs}/prog")
        with pytest.raises(ObjectKindError, match="is a BPF map, not a BPF program"):
            ebpf.Program.from_pin(f"{bpffs}/map")
        with pytest.raises(ObjectKindError):
            Map.from_fd(p.fileno())
        with pytest.raises(ObjectKindError):
            ebpf.Program.from_fd(m.fileno())
        with pytest.raises(ObjectKindError):
            Link.from_fd(m.fileno())
        assert isinstance(ObjectKindError("x", "map", "y"), TypeError)
        assert ebpf._sys.fd.open_count() == before
        with Map.from_pin(f"{bpffs}/map") as again:
            assert again.key_size == 4
        os.unlink(f"{bpffs}/prog")
        m.unpin()


def test_pin_path_with_nul_is_rejected(bpffs: str) -> None:
    with Map.create(MapType.HASH, key_size=4, value_size=4, max_entries=1) as m:
        with pytest.raises(InvalidArgumentError, match="NUL"):
            m.pin(f"{bpffs}/good\0evil")
        assert m.pinned_path is None
        assert "good" not in os.listdir(bpffs)
        with pytest.raises(InvalidArgumentError, match="NUL"):
            Map.from_pin(f"{bpffs}/good\0evil")


def test_pin_outside_bpffs_and_non_bpf_pin_say_so(tmp_path: object) -> None:
    with Map.create(MapType.HASH, key_size=4, value_size=4, max_entries=1) as m:
        with pytest.raises(ebpf.errors.SyscallError, match="not a bpffs path") as e:
            m.pin(f"{tmp_path}/m")
        assert "LSM" not in str(e.value)
    with pytest.raises(ObjectKindError, match="not a BPF object"):
        Map.from_pin("/etc/passwd")
    with pytest.raises(ObjectKindError, match="not a BPF object"):
        ebpf.Program.from_pin(str(tmp_path))


# --- nothing left behind ----------------------------------------------------------------------

def _proc_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.mark.requires(features.have_map_type, MapType.RINGBUF)
def test_ringbuf_reader_whose_mmap_is_refused_closes_everything(bpffs: str) -> None:
    with Map.create(MapType.RINGBUF, max_entries=1 << 12) as rb:
        rb.pin(f"{bpffs}/rb")
        with Map.from_pin(f"{bpffs}/rb", readonly=True) as ro:  # consumer page not writable
            before, fds = ebpf._sys.fd.open_count(), _proc_fds()
            for _ in range(5):
                with pytest.raises(PermissionError):
                    RingBuffer(ro.fileno())
            assert ebpf._sys.fd.open_count() == before
            assert _proc_fds() == fds
        rb.unpin()


def test_failing_attaches_of_every_kind_leave_no_fd(netns: object, cgroup: str) -> None:
    """~60 attaches that fail in the library or in the kernel, of many kinds; afterwards the
    library's open count and the process's fd table are what they were."""
    from ebpf import AttachType
    from ebpf import link as L

    exit0 = [asm.mov(R0, 0), asm.exit()]
    with ebpf.Program.load(ProgramType.XDP, RET2) as xdp, \
            ebpf.Program.load(ProgramType.SCHED_CLS, exit0) as cls, \
            ebpf.Program.load(ProgramType.TRACEPOINT, exit0) as tp, \
            ebpf.Program.load(ProgramType.KPROBE, exit0) as kp, \
            ebpf.Program.load(ProgramType.RAW_TRACEPOINT, exit0) as raw, \
            ebpf.Program.load(ProgramType.SOCKET_FILTER, exit0) as sf, \
            ebpf.Program.load(ProgramType.CGROUP_SKB, [asm.mov(R0, 1), asm.exit()],
                              expected_attach_type=AttachType.CGROUP_INET_INGRESS) as cg:
        attempts = [
            lambda: L.attach_xdp(xdp, 999_999),
            lambda: L.attach_xdp(xdp, "no-such-if0"),
            lambda: L.attach_xdp(tp, "lo"),
            lambda: L.attach_tc(cls, 999_999, mode="tcx"),
            lambda: L.attach_tc(cls, 999_999, mode="clsact"),
            lambda: L.attach_tc(xdp, "lo"),
            lambda: L.attach_tracepoint(tp, "no_such_category", "no_such_event"),
            lambda: L.attach_tracepoint(xdp, "syscalls", "sys_enter_getpid"),
            lambda: L.attach_raw_tracepoint(raw, "no_such_raw_tracepoint"),
            lambda: L.attach_uprobe(kp, "/bin/true", "no_such_symbol_here"),
            lambda: L.attach_uprobe(kp, "/no/such/binary", "main"),
            lambda: L.attach_cgroup(cg, "/no/such/cgroup"),
            lambda: L.attach_cgroup(cg, cgroup, AttachType.CGROUP_SOCK_OPS),
            lambda: L.attach_cgroup(xdp, cgroup),
            lambda: L.attach_sk_lookup(xdp),
            lambda: L.attach_socket_filter(sf, -1),
            lambda: L.attach_iter(xdp),
            lambda: L.attach_netfilter(xdp),
            lambda: L.link_create(xdp, 999_999, AttachType.XDP),
            lambda: L.link_create(xdp, 1, AttachType.XDP, flags=2**32),
        ]
        for attempt in attempts:  # warm the caches (kernel BTF stays mapped: an fd)
            with contextlib.suppress(Exception):
                attempt()
        before, fds = ebpf._sys.fd.open_count(), _proc_fds()
        failures = 0
        for _ in range(3):
            for i, attempt in enumerate(attempts):
                fds1 = _proc_fds()
                try:
                    got = attempt()
                except (ebpf.errors.BPFError, OSError, ValueError, TypeError, LookupError):
                    failures += 1
                else:  # pragma: no cover - an attach that should have failed
                    got.close()
                    pytest.fail(f"attach unexpectedly worked: {got!r}")
                assert _proc_fds() == fds1, f"attempt {i} left an fd open"
        gc.collect()
        assert failures == 3 * len(attempts)
        assert ebpf._sys.fd.open_count() == before
        assert _proc_fds() == fds


# --- the pytest plugin ------------------------------------------------------------------------

def test_plugin_bpffs_is_private(bpffs: str) -> None:
    assert os.stat(bpffs).st_mode & 0o777 == 0o700  # (bpffs always adds the sticky bit)
    assert os.path.basename(bpffs).startswith(f"ebpf-bpffs-{os.getpid()}-")


def _dead_pid() -> int:
    import subprocess

    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_plugin_cleans_stale_mounts_and_cgroups_of_dead_owners_only() -> None:
    import tempfile

    from ebpf import platform
    from ebpf.testing import plugin

    root = plugin.cgroup2_root()
    dead = _dead_pid()
    tmp = tempfile.gettempdir()
    made: list[str] = []
    try:
        for pid in (dead, os.getpid()):
            d = os.path.join(tmp, f"ebpf-bpffs-{pid}-stale1")
            os.mkdir(d)
            made.append(d)
            platform.mount("bpf", d, "bpf", data="mode=0700")
            if root is not None:
                c = os.path.join(root, f"ebpf-test-{pid}-0123456789")
                os.mkdir(c)
                made.append(c)
        removed = plugin.clean_stale()
        assert os.path.join(tmp, f"ebpf-bpffs-{dead}-stale1") in removed
        assert not os.path.exists(os.path.join(tmp, f"ebpf-bpffs-{dead}-stale1"))
        assert platform.is_mounted(os.path.join(tmp, f"ebpf-bpffs-{os.getpid()}-stale1"), "bpf")
        if root is not None:
            assert not os.path.exists(os.path.join(root, f"ebpf-test-{dead}-0123456789"))
            assert os.path.isdir(os.path.join(root, f"ebpf-test-{os.getpid()}-0123456789"))
    finally:
        for path in reversed(made):
            if os.path.exists(path):
                if platform.is_mounted(path, "bpf"):
                    platform.umount(path, lazy=True)
                os.rmdir(path)


LEAKY = '''
import ebpf
KEEP = []

def test_leaks_a_program():
    from ebpf import asm
    p = ebpf.Program.load(ebpf.ProgramType.XDP, [asm.mov(asm.R0, 2), asm.exit()])
    KEEP.append(p.fd.detach())  # fd kept raw: only the kernel object shows it
'''

CLEAN = '''
import ebpf

def test_clean():
    with ebpf.Map.create(ebpf.MapType.HASH, key_size=4, value_size=4, max_entries=1):
        pass
'''


@pytest.mark.parametrize(("source", "code", "needle"), [
    (LEAKY, 1, "program id"),
    (CLEAN, 0, ""),
])
def test_plugin_session_leak_check(tmp_path: object, source: str, code: int,
                                   needle: str) -> None:
    import subprocess
    import sys

    test = os.path.join(str(tmp_path), "test_subject.py")
    with open(test, "w") as f:
        f.write(source)
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "--ebpf-leak-check", "-W", "ignore", "--rootdir", str(tmp_path), test],
                       capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    assert r.returncode == code, r.stdout + r.stderr
    if needle:
        assert "ebpf leak check" in r.stdout and needle in r.stdout, r.stdout
