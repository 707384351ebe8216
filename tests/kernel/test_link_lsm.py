"""BPF LSM: hooks that deny what the test then sees fail, LSM_CGROUP, and local storage
used from LSM programs.

This machine kind refuses LSM loads (``BPF_PROG_LOAD`` gives ``EPERM``); the tests skip on
exactly that and run for real in the VM (``python -m tools.vmtest test``), whose kernel boots
with ``lsm=...,bpf``. A kernel without ``bpf`` in its LSM list loads the programs but the
attach gives ``EOPNOTSUPP``; that is skipped too, with its reason.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

import ebpf
from ebpf import asm, errors
from ebpf._maps import Map
from ebpf.asm import R0, R1, R2, R3, R4, R6, Helper
from ebpf.hooks import kernel_types
from ebpf.link.cgroup import CgroupLink, attach_cgroup
from ebpf.link.tracing import attach_tracing

P = ebpf.ProgramType
A = ebpf.AttachType
MT = ebpf.MapType


def _load(insns: list[Any], hook: str, at: ebpf.AttachType = A.LSM_MAC) -> ebpf.Program:
    try:
        return ebpf.Program.load(P.LSM, insns, license="GPL", expected_attach_type=at,
                                 attach_to=hook)
    except errors.SyscallError as e:
        if e.errno == errno.EPERM:
            pytest.skip(f"LSM program on {hook}: {e.cmd} refused with EPERM on this kernel")
        raise


def _attach(attach: Any, *args: Any) -> Any:
    try:
        return attach(*args)
    except errors.SyscallError as e:
        if e.errno == errno.EOPNOTSUPP:
            pytest.skip(f"{e.cmd}: EOPNOTSUPP (bpf is not in this kernel's lsm= list)")
        raise


@pytest.fixture
def marks() -> Iterator[Map]:
    try:
        m = Map.create(MT.INODE_STORAGE, value_size=8, name="lsm_marks")
    except errors.NotSupportedError as e:
        pytest.skip(str(e))
    with m:
        yield m


def _deny_marked_files(marks: Map) -> list[Any]:
    """file_open(struct file *file): -EPERM if file's inode carries a mark of 1, else 0."""
    return [
        asm.load(asm.DW, R6, R1, 0),                                # r6 = file
        kernel_types.load(R2, R6, "file", "f_inode"),               # r2 = file->f_inode
        asm.load_map(R1, marks), asm.mov(R3, 0), asm.mov(R4, 0),
        asm.call(Helper.INODE_STORAGE_GET),                         # mark of this inode
        asm.jeq(R0, 0, "allow"),
        asm.load(asm.DW, R1, R0, 0),
        asm.jne(R1, 1, "allow"),
        asm.mov(R0, -errno.EPERM), asm.exit(),
        asm.label("allow"), asm.mov(R0, 0), asm.exit(),
    ]


def test_lsm_file_open_denies_a_marked_file(marks: Map) -> None:
    """The mark is set from Python in the inode's local storage; the LSM program reads it
    with bpf_inode_storage_get and refuses to open that file, and only that file."""
    with tempfile.TemporaryDirectory() as d:
        marked, other = os.path.join(d, "marked"), os.path.join(d, "other")
        for p in (marked, other):
            with open(p, "w") as f:
                f.write("x")
        with _load(_deny_marked_files(marks), "file_open") as prog:
            with open(marked) as f:
                marks[f] = 1
            with _attach(attach_tracing, prog):
                with pytest.raises(PermissionError) as ei:
                    open(marked).close()
                assert ei.value.errno == errno.EPERM
                with open(other) as f:  # no mark: allowed
                    assert f.read() == "x"
            with open(marked) as f:  # detached: allowed again
                assert f.read() == "x"
                del marks[f]


def test_lsm_task_storage_counts_this_process_opens() -> None:
    """Task local storage from an LSM program: each open by this process bumps its count."""
    try:
        store = Map.create(MT.TASK_STORAGE, value_size=8, name="lsm_opens")
    except errors.NotSupportedError as e:
        pytest.skip(str(e))
    pid = os.getpid()
    insns = [
        asm.call(Helper.GET_CURRENT_PID_TGID), asm.rsh(R0, 32), asm.jne(R0, pid, "out"),
        asm.call(Helper.GET_CURRENT_TASK_BTF),
        asm.mov(R2, R0), asm.load_map(R1, store), asm.mov(R3, 0),
        asm.mov(R4, 1),                                   # BPF_LOCAL_STORAGE_GET_F_CREATE
        asm.call(Helper.TASK_STORAGE_GET),
        asm.jeq(R0, 0, "out"),
        asm.mov(R1, 1), asm.atomic_add(asm.DW, R0, R1, 0),
        asm.label("out"), asm.mov(R0, 0), asm.exit(),
    ]
    pidfd = os.pidfd_open(pid)
    try:
        with store, _load(insns, "file_open") as prog:
            with _attach(attach_tracing, prog), tempfile.TemporaryFile() as f:
                for _ in range(5):
                    os.close(os.open(f"/proc/self/fd/{f.fileno()}", os.O_RDONLY))
            assert store[pidfd] >= 5
            del store[pidfd]
    finally:
        os.close(pidfd)


_BIND = ("import socket, sys\n"
         "s = socket.socket()\n"
         "try:\n"
         "    s.bind(('127.0.0.1', 0))\n"
         "except PermissionError:\n"
         "    sys.exit(13)\n")


def _bind_in(cgroup: str | None) -> int:
    def enter() -> None:
        if cgroup is not None:
            with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))

    return subprocess.run([sys.executable, "-c", _BIND], preexec_fn=enter,
                          timeout=60).returncode


def test_lsm_cgroup_denies_bind_inside_the_cgroup_only(cgroup: str) -> None:
    """LSM_CGROUP on socket_bind (>= 6.0): returning 0 denies. A process in the child cgroup
    cannot bind; one outside can."""
    prog = _load([asm.mov(R0, 0), asm.exit()], "socket_bind", A.LSM_CGROUP)
    with prog:
        with _attach(attach_cgroup, prog, cgroup) as link:
            assert isinstance(link, CgroupLink)
            assert link.attach_type is A.LSM_CGROUP
            assert _bind_in(cgroup) == 13
            assert _bind_in(None) == 0
        assert _bind_in(cgroup) == 0  # detached
