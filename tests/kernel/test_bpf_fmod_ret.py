"""``@bpf.fmod_ret``: a Python function that replaces a kernel function's return value.

The program runs on ``security_task_getsid`` (``security_*`` hooks are always modifiable, with
or without ``CONFIG_FUNCTION_ERROR_INJECTION``) and makes ``getsid(2)`` of this process fail
with ``EACCES`` while it is attached. This machine kind refuses TRACING loads with ``EPERM``,
so the kernel test skips on exactly that errno here and runs in the 6.1 VM
(``python -m tools.vmtest test -- tests/kernel/test_bpf_fmod_ret.py``).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

import ebpf
from ebpf import bpf, errors
from ebpf.bpf import u32, u64
from ebpf.link.tracing import attach_tracing
from ebpf.testing.modules import import_file

_load = import_file(Path(__file__).with_name("_trace_link_factories.py")).bpf_load_or_skip

seen = bpf.Array(u64, max_entries=3)
me = bpf.const(u32, 0)


@bpf.fmod_ret("security_task_getsid")
def deny_getsid(ctx: Any) -> int:
    if bpf.get_current_pid_tgid() >> 32 == me:
        seen[0] += 1
        if ctx.ret == 0:  # no fmod_ret program before this one chose a value
            seen[1] += 1
        if ctx.p.tgid == me:  # struct task_struct *p: the task asked about (this process)
            seen[2] += 1
        return -errno.EACCES
    return 0


def test_fmod_ret_declaration() -> None:
    """Section, types and the typed context (``p`` a task pointer, ``ret`` an ``int``)."""
    assert deny_getsid.section == "fmod_ret/security_task_getsid"
    assert deny_getsid.program_type == ebpf.ProgramType.TRACING
    assert deny_getsid.attach_type == ebpf.AttachType.MODIFY_RETURN
    with pytest.raises(errors.BPFError, match="fmod_ret: expected a kernel function"):
        bpf.fmod_ret("no such")


def test_fmod_ret_denies_getsid_of_this_process_while_attached() -> None:
    pid = os.getpid()
    with _load("fmod_ret", deny_getsid, constants={"me": pid}) as coll:
        sid = os.getsid(pid)  # getsid(0) skips the hook: ask for this process by pid
        with attach_tracing(coll.deny_getsid):
            for _ in range(3):
                with pytest.raises(PermissionError) as ei:
                    os.getsid(pid)
                assert ei.value.errno == errno.EACCES
        assert os.getsid(pid) == sid  # detached: the call runs again
        assert [coll.seen[i] for i in range(3)] == [3, 3, 3]
