"""ebpf.bpf ``@bpf.lsm_cgroup``, on the kernel (the 6.1 VM: this host refuses LSM loads).

A cgroup-scoped LSM program on ``socket_bind`` reads the hook's BTF-typed arguments
(``ctx.sock.type``, ``ctx.addrlen``), counts what it sees, and denies UDP binds: a child
process in the attached cgroup binds a TCP socket but gets ``EPERM`` for a UDP one, while a
process outside the cgroup binds both, and after the link is closed the cgroup's process does
too.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest

from ebpf import AttachType, ProgramType, bpf, platform
from ebpf.bpf import u64
from ebpf.link import attach_cgroup
from ebpf.testing.modules import import_file

H = import_file(Path(__file__).with_name("_trace_link_factories.py"))

seen = bpf.Array(u64, max_entries=4)


@bpf.lsm_cgroup("socket_bind")
def no_udp_bind(ctx: Any) -> int:
    seen[0] += 1
    seen[1] = ctx.addrlen
    if ctx.sock.type == 2:      # SOCK_DGRAM
        seen[2] += 1
        return 0                # deny: bind() fails with EPERM
    return 1


BIND = """
import errno, socket
for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind(("127.0.0.1", 0))
            print("ok")
        except OSError as e:
            print(errno.errorcode[e.errno])
"""


def test_decl() -> None:
    assert no_udp_bind.program_type == ProgramType.LSM
    assert no_udp_bind.attach_type == AttachType.LSM_CGROUP
    assert no_udp_bind.section == "lsm_cgroup/socket_bind"


@pytest.mark.capabilities(platform.Capability.SYS_ADMIN)
def test_lsm_cgroup_denies_udp_binds_in_the_cgroup_only(cgroup: str) -> None:
    with H.bpf_load_or_skip("lsm_cgroup/socket_bind", no_udp_bind) as coll:
        with attach_cgroup(coll.no_udp_bind, cgroup) as link:
            assert link.attach_type is AttachType.LSM_CGROUP
            inside = H.run_in_cgroup(cgroup, BIND).split()
            outside = H.run_in_cgroup(os.path.dirname(cgroup), BIND).split()
        after = H.run_in_cgroup(cgroup, BIND).split()
        assert inside == ["ok", "EPERM"]
        assert outside == ["ok", "ok"]
        assert after == ["ok", "ok"]
        assert coll.seen[0] == 2 and coll.seen[2] == 1       # only the cgroup's two binds
        assert coll.seen[1] == 16                            # sizeof(struct sockaddr_in)
    assert socket.SOCK_DGRAM == 2
