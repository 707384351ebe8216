"""ebpf.lib.helpers (named helper wrappers) and ebpf.lib.patterns on the kernel: XDP
test_run for the pure helpers, a real syscall tracepoint for the current-task patterns."""

from __future__ import annotations

import errno
import os
import struct
from typing import Any

import pytest

import ebpf
from ebpf import asm, errors
from ebpf.asm import R0, R1, R2, R6, R7, R8, R9, R10
from ebpf.lib import fp
from ebpf.lib import helpers as h
from ebpf.lib import patterns as p
from ebpf.link.tracepoint import attach_tracepoint
from ebpf.platform import Capability

pytestmark = pytest.mark.capabilities(Capability.BPF)

XDP = ebpf.ProgramType.XDP
ARRAY = ebpf.MapType.ARRAY
PKT = bytes(64)


def _run(items: list[asm.Item], **kw: Any) -> int:
    with ebpf.Program.load(XDP, items, **kw) as prog:
        return prog.test_run(data=PKT).retval


def test_clock_random_cpu_wrappers() -> None:
    with ebpf.Map.create(ARRAY, key_size=4, value_size=8, max_entries=8) as out:
        items: list[asm.Item] = [asm.store_imm(asm.W, R10, -4, 0)]
        getters = [h.ktime_get_ns, h.ktime_get_boot_ns, h.ktime_get_coarse_ns,
                   h.ktime_get_tai_ns, h.jiffies64, h.get_prandom_u32,
                   h.get_smp_processor_id, h.get_numa_node_id]
        for i, g in enumerate(getters):
            items += [*g(dst=R6), asm.store_imm(asm.W, R10, -4, i), asm.store(asm.DW, R10, -16, R6),
                      *h.map_update_elem(out, fp(-4), fp(-16))]
        items += [asm.mov(R0, 2), asm.exit()]
        assert _run(items) == 2
        vals = [out[i] for i in range(8)]
        assert all(v > 0 for v in vals[:5]), vals
        assert vals[6] < (os.cpu_count() or 1)


def test_map_wrappers_and_loop_callback() -> None:
    with ebpf.Map.create(ARRAY, key_size=4, value_size=8, max_entries=4) as m:
        for i in range(4):
            m[i] = i + 1
        items: list[asm.Item] = [
            asm.store_imm(asm.DW, R10, -8, 0),
            *h.loop(7, "body", fp(-8)),                     # acc = 0+1+...+6 = 21
            asm.store_imm(asm.DW, R10, -16, 0),
            *h.for_each_map_elem(m, "each", fp(-16)),       # 1+2+3+4 = 10
            asm.store_imm(asm.W, R10, -20, 2),
            *h.map_lookup_elem(m, fp(-20), dst=R6), asm.jeq(R6, 0, "out"),
            asm.load(asm.DW, R7, R6, 0),                    # m[2] = 3
            asm.load(asm.DW, R0, R10, -8), asm.mul(R0, 100),
            asm.load(asm.DW, R1, R10, -16), asm.add(R0, R1), asm.mul(R0, 10),
            asm.add(R0, R7), asm.exit(),
            asm.label("out"), asm.mov(R0, 0), asm.exit(),
            asm.label("body"),
            asm.load(asm.DW, R0, R2, 0), asm.add(R0, R1), asm.store(asm.DW, R2, 0, R0),
            asm.mov(R0, 0), asm.exit(),
            asm.label("each"),
            asm.load(asm.DW, R0, asm.R3, 0), asm.load(asm.DW, R1, asm.R4, 0),
            asm.add(R1, R0), asm.store(asm.DW, asm.R4, 0, R1), asm.mov(R0, 0), asm.exit(),
        ]
        assert _run(items) == (21 * 100 + 10) * 10 + 3


def test_xdp_redirect_map_verdicts() -> None:
    with ebpf.Map.create(ebpf.MapType.DEVMAP, key_size=4, value_size=4, max_entries=2) as dm:
        dm[0] = 1  # lo
        def prog(key: int) -> list[asm.Item]:
            return [asm.mov(R6, key), *p.xdp_redirect_map(dm, R6, fallback=2)]
        assert _run(prog(0)) == 4    # XDP_REDIRECT
        assert _run(prog(1)) == 2    # absent: the fallback, XDP_PASS
        with pytest.raises(errors.AssemblerError):
            p.xdp_redirect_map(dm, 0, fallback=7)


def test_with_spinlock_counts_every_run() -> None:
    with ebpf.Map.create(ebpf.MapType.HASH, key_size=4, value_size=16, max_entries=1,
                         spin_lock=True) as m:
        m[0] = bytes(16)
        items: list[asm.Item] = [
            asm.store_imm(asm.W, R10, -4, 0),
            *h.map_lookup_elem(m, fp(-4), dst=R6), asm.jeq(R6, 0, "out"),
            p.with_spinlock(R6, 0, [asm.load(asm.DW, R1, R6, 8), asm.add(R1, 3),
                                    asm.store(asm.DW, R6, 8, R1)]),
            asm.label("out"), asm.mov(R0, 2), asm.exit(),
        ]
        with ebpf.Program.load(XDP, items) as prog:
            prog.test_run(data=PKT, repeat=50)
        assert struct.unpack_from("<Q", m[0], 8)[0] == 150
    with pytest.raises(errors.AssemblerError):
        p.with_spinlock(R1, 0, [])


def _tracefs_or_skip() -> None:
    from ebpf.platform import tracefs_path
    if tracefs_path() is None:
        pytest.skip("tracefs is not mounted")


def test_current_task_patterns_on_a_syscall_tracepoint() -> None:
    """filter_by_pid, current tgid/tid/uid/gid/comm, core_read of current->real_parent->tgid
    and trace_println, in a tracepoint program fired by our own getppid()."""
    _tracefs_or_skip()
    with ebpf.Map.create(ARRAY, key_size=4, value_size=64, max_entries=1) as out:
        items: list[asm.Item] = [
            *p.filter_by_pid(os.getpid(), skip="out"),
            asm.store_imm(asm.W, R10, -4, 0),
            *h.map_lookup_elem(out, fp(-4), dst=R9), asm.jeq(R9, 0, "out"),
            *p.current_tgid(R6), asm.store(asm.W, R9, 0, R6),
            *p.current_tid(R6), asm.store(asm.W, R9, 4, R6),
            *p.current_uid(R6), asm.store(asm.W, R9, 8, R6),
            *p.current_gid(R6), asm.store(asm.W, R9, 12, R6),
            *h.get_current_task(dst=R7),
            *p.core_read(R8, R7, [("task_struct", "real_parent"), ("task_struct", "tgid")],
                         size=4, stack=-16),
            asm.store(asm.W, R9, 16, R8),
            *p.current_comm(-48),
            asm.load(asm.DW, R1, R10, -48), asm.store(asm.DW, R9, 24, R1),
            asm.load(asm.DW, R1, R10, -40), asm.store(asm.DW, R9, 32, R1),
            *p.trace_println("ebpf-lib-helpers pid %d ppid %d", R6, R8, stack=-96),
            asm.store(asm.DW, R9, 40, R0),
            asm.label("out"), asm.mov(R0, 0), asm.exit(),
        ]
        with ebpf.Program.load(ebpf.ProgramType.TRACEPOINT, items) as prog, \
                attach_tracepoint(prog, "syscalls", "sys_enter_getppid"):
            os.getppid()
        tgid, tid, uid, gid, ppid = struct.unpack_from("<5I", out[0])
        comm = out[0][24:40].split(b"\0")[0]
        printed = struct.unpack_from("<q", out[0], 40)[0]
        assert (tgid, uid, gid, ppid) == (os.getpid(), os.getuid(), os.getgid(), os.getppid())
        assert tid == __import__("threading").get_native_id()
        with open(f"/proc/{os.getpid()}/comm", "rb") as f:
            assert comm == f.read().strip()[:15]
        assert printed == len(f"ebpf-lib-helpers pid {gid} ppid {ppid}\n")


def test_trace_println_checks() -> None:
    with pytest.raises(errors.AssemblerError):
        p.trace_println("x" * 600, stack=-64)
    with pytest.raises(errors.AssemblerError):
        p.trace_println("%d %d %d %d", R6, R6, R6, R6, stack=-64)


def test_fentry_arg_by_name_and_lsm_verdicts() -> None:
    """fentry argument index from BTF (pure), then fentry/LSM loads, skipped only on the
    EPERM this host answers for them (the 6.1 VM runs them)."""
    assert p.fentry_arg_index("do_unlinkat", "name") == 1
    with pytest.raises(errors.AssemblerError, match="parameters: dfd, name"):
        p.fentry_arg_index("do_unlinkat", "nope")
    insn = p.fentry_arg(R6, "do_unlinkat", "name")
    assert insn == asm.load(asm.DW, R6, R1, 8)
    lsm = [*p.lsm_deny(errno.EACCES)]
    assert lsm[0] == asm.mov(R0, -errno.EACCES)
    try:
        prog = ebpf.Program.load(ebpf.ProgramType.LSM, [*p.lsm_allow()],
                                 expected_attach_type=ebpf.AttachType.LSM_MAC,
                                 attach_to="file_open")
    except errors.SyscallError as e:
        if e.errno == errno.EPERM:
            pytest.skip(f"LSM: {e.cmd} refused with EPERM on this kernel")
        raise
    prog.close()
