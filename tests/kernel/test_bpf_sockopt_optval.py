"""``ctx.optval_load(T)`` of ``@bpf.cgroup_sockopt``: the option's value, read and written.

Sockets of a child process in a fresh child cgroup: a setsockopt program rewrites
``SO_MARK`` 7 to 42 (the kernel's handler gets the changed value), skips the handler for 9
(``ctx.optlen = -1``: the call succeeds, the mark stays) and refuses a 2-byte value, which
is too short for an ``i32`` (the ``None`` path, returning 0: ``EPERM`` instead of the
kernel's own ``EINVAL``); a getsockopt program adds 1000 to the mark it returns and fails a
2-byte read with ``EINVAL`` through ``ctx.retval`` (the kernel alone returns 2 bytes).
"""

from __future__ import annotations

import errno
import socket
import struct
from pathlib import Path
from typing import Any

import pytest

import ebpf
from ebpf import bpf
from ebpf.bpf import i32, u64
from ebpf.link.cgroup import attach_cgroup
from ebpf.testing.modules import import_file

pytestmark = pytest.mark.capabilities(ebpf.platform.Capability.SYS_ADMIN,
                                      ebpf.platform.Capability.NET_ADMIN)

SOL_SOCKET = socket.SOL_SOCKET
SO_MARK = 36  # socket.SO_MARK (Linux)
EINVAL = errno.EINVAL

#: 0: values seen by setsockopt, 1: by getsockopt, 2/3: their None paths
seen = bpf.Array(u64, max_entries=4)


@bpf.cgroup_sockopt("setsockopt")
def set_mark(ctx: Any) -> int:
    if ctx.level != SOL_SOCKET or ctx.optname != SO_MARK:
        return 1
    p = ctx.optval_load(i32)
    if p is None:
        seen[2] += 1
        return 0                  # EPERM
    seen[0] += 1
    if p.value == 7:
        p.value = 42              # the kernel's handler sets 42
    elif p.value == 9:
        ctx.optlen = -1           # the handler is skipped: success, mark unchanged
    return 1


@bpf.cgroup_sockopt("getsockopt")
def get_mark(ctx: Any) -> int:
    if ctx.level != SOL_SOCKET or ctx.optname != SO_MARK:
        return 1
    p = ctx.optval_load(i32)
    if p is None:
        seen[3] += 1
        ctx.retval = -EINVAL
        return 1
    seen[1] += 1
    p.value += 1000
    return 1


CHILD = """
import errno, socket
SOL_SOCKET, SO_MARK = socket.SOL_SOCKET, 36

def attempt(f):
    try:
        return repr(f())
    except OSError as e:
        return errno.errorcode[e.errno]

with socket.socket() as s:
    for step in {steps!r}:
        print(attempt(lambda: eval(step)))
"""


_run_in_cgroup = import_file(Path(__file__).with_name("_trace_link_factories.py")).run_in_cgroup


def _in_cgroup(cgroup: str, steps: list[str]) -> list[str]:
    """Run ``steps`` (expressions on a socket ``s``) in a child process that joins
    ``cgroup`` first: each step's repr or errno name."""
    return _run_in_cgroup(cgroup, CHILD.format(steps=steps)).splitlines()


def _set(v: int | bytes) -> str:
    return f"s.setsockopt(SOL_SOCKET, SO_MARK, {v!r})"


GET = "s.getsockopt(SOL_SOCKET, SO_MARK)"


def test_without_programs_the_kernel_refuses_short_values_and_cuts_short_reads() -> None:
    """The baseline the programs change (this process is in no test cgroup)."""
    with socket.socket() as s:
        with pytest.raises(OSError) as ei:
            s.setsockopt(SOL_SOCKET, SO_MARK, b"\x07\x00")
        assert ei.value.errno == errno.EINVAL
        s.setsockopt(SOL_SOCKET, SO_MARK, 42)
        assert s.getsockopt(SOL_SOCKET, SO_MARK, 2) == struct.pack("<H", 42)


def test_setsockopt_rewrites_skips_and_refuses_the_option_value(cgroup: str) -> None:
    with bpf.load(set_mark) as coll, attach_cgroup(coll.set_mark, cgroup):
        out = _in_cgroup(cgroup, [_set(7), GET, _set(9), GET, _set(b"\x07\x00"), GET,
                                  _set(5), GET])
        counts = [coll.seen[k] for k in range(4)]
    assert out == ["None", "42",      # 7 became 42 before the kernel's handler ran
                   "None", "42",      # 9: handler skipped (optlen -1), the mark stays
                   "EPERM", "42",     # 2 bytes: the None path returned 0
                   "None", "5"]       # other values pass unchanged
    assert counts == [3, 0, 1, 0]


def test_getsockopt_changes_the_returned_value_and_fails_short_reads(cgroup: str) -> None:
    with bpf.load(set_mark, get_mark) as coll, attach_cgroup(coll.set_mark, cgroup), \
            attach_cgroup(coll.get_mark, cgroup):
        out = _in_cgroup(cgroup, [_set(7), GET, "s.getsockopt(SOL_SOCKET, SO_MARK, 2)",
                                  "s.getsockopt(SOL_SOCKET, SO_MARK, 8)", _set(5), GET])
        counts = [coll.seen[k] for k in range(4)]
    assert out == ["None", "1042",             # 42 stored, 1042 returned
                   "EINVAL",                   # 2-byte buffer: the None path's retval
                   repr(struct.pack("<i", 1042)),  # a bigger buffer gets optlen = 4 bytes
                   "None", "1005"]
    assert counts == [2, 3, 0, 1]
