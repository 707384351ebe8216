"""ebpf.catalog against the running kernel: helper minimum kernels agree with probes,
tracepoints listed are attachable, the LSM hook list comes from BTF, and the cgroup id
of the current cgroup is what bpf_get_current_cgroup_id reports."""

from __future__ import annotations

import errno
import os

import pytest

import ebpf
from ebpf import asm, errors, features
from ebpf.asm import R0, R6, R10, Helper
from ebpf.catalog import cgroup, lsm, tracepoints
from ebpf.catalog import helpers as cat
from ebpf.lib import fp
from ebpf.lib import helpers as h
from ebpf.lib import patterns as p
from ebpf.link.tracepoint import attach_tracepoint
from ebpf.platform import Capability, kernel_version

pytestmark = pytest.mark.capabilities(Capability.BPF)


def test_helpers_of_this_kernel_are_there() -> None:
    """Every sampled helper the catalog dates at or before this kernel is accepted."""
    kv = kernel_version()
    here = (kv.major, kv.minor)
    for name in ("ktime_get_ns", "ringbuf_output", "loop", "ktime_get_tai_ns",
                 "for_each_map_elem", "jiffies64"):
        i = cat.info(name)
        assert i.min_kernel <= here
        assert features.have_helper(ebpf.ProgramType.XDP, Helper(i.id)) is None, name


def test_listed_tracepoints_exist_and_attach(tracefs: str) -> None:
    cats = tracepoints.categories()
    assert "syscalls" in cats and "sched" in cats
    names = tracepoints.tracepoints("syscalls")
    assert "sys_enter_getppid" in names
    assert tracepoints.exists("syscalls", "sys_enter_getppid")
    assert not tracepoints.exists("syscalls", "no_such_tp")
    assert not tracepoints.exists("..", "syscalls")
    assert tracepoints.tracepoints("no_such_category") == []
    assert ("syscalls", "sys_enter_getppid") in tracepoints.search("getppid")
    with ebpf.Program.load(ebpf.ProgramType.TRACEPOINT, [asm.mov(R0, 0), asm.exit()]) as prog, \
            attach_tracepoint(prog, "syscalls", names[0]):
        pass


def test_lsm_hooks_from_btf() -> None:
    hooks = lsm.hooks()
    assert len(hooks) > 100
    assert {"file_open", "bprm_check_security", "socket_connect", "task_kill"} <= set(hooks)
    assert "verify_prog" not in hooks and lsm.exists("bpf_lsm_file_open")
    assert lsm.category("file_open") == "file" and lsm.category("socket_connect") == "network"
    assert "file_open" in lsm.by_category()["file"]
    assert lsm.params("file_open") == ["file"]
    try:
        prog = ebpf.Program.load(ebpf.ProgramType.LSM, [*p.lsm_allow()],
                                 expected_attach_type=ebpf.AttachType.LSM_MAC,
                                 attach_to=hooks[hooks.index("file_open")])
    except errors.SyscallError as e:
        if e.errno == errno.EPERM:
            pytest.skip(f"LSM: {e.cmd} refused with EPERM on this kernel")
        raise
    prog.close()


def test_cgroup_id_matches_the_kernel(tracefs: str) -> None:
    here = cgroup.current()
    assert cgroup.exists(here) and not cgroup.exists("/proc")
    assert cgroup.root() == os.path.commonpath([cgroup.root(), here])
    kids = cgroup.children()
    assert all(cgroup.exists(k) for k in kids)
    with ebpf.Map.create(ebpf.MapType.ARRAY, key_size=4, value_size=8, max_entries=1) as out:
        items: list[asm.Item] = [
            *p.filter_by_pid(os.getpid(), skip="out"),
            *h.get_current_cgroup_id(dst=R6),
            asm.store_imm(asm.W, R10, -4, 0), asm.store(asm.DW, R10, -16, R6),
            *h.map_update_elem(out, fp(-4), fp(-16)),
            asm.label("out"), asm.mov(R0, 0), asm.exit(),
        ]
        with ebpf.Program.load(ebpf.ProgramType.TRACEPOINT, items) as prog, \
                attach_tracepoint(prog, "syscalls", "sys_enter_getppid"):
            os.getppid()
        assert out[0] == cgroup.cgroup_id() == cgroup.cgroup_id(here)
