"""cgroup attach (links and BPF_PROG_ATTACH with its flags) in a fresh child cgroup v2.

The workload runs in a child *process* that moves itself into the test cgroup, so only its
traffic is seen; the test process stays outside. Attachments are undone by ``with`` blocks
and the cgroup is removed by the fixture, also when a test fails.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

import ebpf
from ebpf import asm, errors
from ebpf._maps import Map
from ebpf.asm import R0, R1, R2, R10, Helper
from ebpf.features import have_link_type
from ebpf.link.cgroup import (
    CGROUP_ATTACH_TYPES,
    CgroupAttachment,
    CgroupLink,
    CgroupMode,
    attach_cgroup,
    query_cgroup,
)
from ebpf.testing.modules import import_file

pytestmark = pytest.mark.capabilities(ebpf.platform.Capability.SYS_ADMIN)

AT, PT = ebpf.AttachType, ebpf.ProgramType
needs_link = pytest.mark.requires(have_link_type, ebpf.LinkType.CGROUP)
MODES = [pytest.param(CgroupMode.LINK, marks=needs_link), CgroupMode.MULTI]


def counter(m: Map, ret: int) -> list[object]:
    return [
        asm.store_imm(asm.W, R10, -4, 0),
        asm.mov(R2, R10), asm.add(R2, -4),
        asm.load_map(R1, m),
        asm.call(Helper.MAP_LOOKUP_ELEM),
        asm.jeq(R0, 0, "out"),
        asm.mov(R1, 1), asm.atomic_add(asm.DW, R0, R1, 0),
        asm.label("out"),
        asm.mov(R0, ret), asm.exit(),
    ]


def ret(value: int) -> list[object]:
    return [asm.mov(R0, value), asm.exit()]


@pytest.fixture
def counts() -> Iterator[Map]:
    with Map.create(ebpf.MapType.ARRAY, key_size=4, value_size=8, max_entries=1) as m:
        yield m




run_in_cgroup = import_file(Path(__file__).with_name("_trace_link_factories.py")).run_in_cgroup


UDP_SENDER = """
import socket
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    for _ in range({n}):
        s.sendto(b"ping", ("127.0.0.1", {port}))
"""

CONNECTOR = """
import socket
s = socket.socket()
try:
    s.connect(("127.0.0.1", {port}))
    print("connected")
except OSError as e:
    print(e.errno)
"""


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.name)
def test_cgroup_skb_counts_a_child_process(cgroup: str, counts: Map, mode: CgroupMode) -> None:
    prog = ebpf.Program.load(PT.CGROUP_SKB, counter(counts, 1), name="cg_count",
                             expected_attach_type=AT.CGROUP_INET_EGRESS)
    with prog, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
        rx.bind(("127.0.0.1", 0))
        port = rx.getsockname()[1]
        with attach_cgroup(prog, cgroup, AT.CGROUP_INET_EGRESS, mode=mode) as att:
            assert isinstance(att, CgroupLink if mode is CgroupMode.LINK else CgroupAttachment)
            run_in_cgroup(cgroup, UDP_SENDER.format(n=5, port=port))
            assert counts[0] == 5
            run_in_cgroup(None, UDP_SENDER.format(n=3, port=port))  # outside: not counted
            assert counts[0] == 5
            q = query_cgroup(cgroup, AT.CGROUP_INET_EGRESS)
            assert q.prog_ids == (prog.id,)
            if mode is CgroupMode.MULTI:
                assert q.attach_flags == ebpf._uapi._defines.BPF_F_ALLOW_MULTI
        assert query_cgroup(cgroup, AT.CGROUP_INET_EGRESS).prog_ids == ()
        run_in_cgroup(cgroup, UDP_SENDER.format(n=2, port=port))
        assert counts[0] == 5


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.name)
def test_sock_addr_denies_connect(cgroup: str, mode: CgroupMode) -> None:
    deny = ebpf.Program.load(PT.CGROUP_SOCK_ADDR, ret(0), name="deny_connect",
                             expected_attach_type=AT.CGROUP_INET4_CONNECT)
    with deny, socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert run_in_cgroup(cgroup, CONNECTOR.format(port=port)).strip() == "connected"
        with attach_cgroup(deny, cgroup, mode=mode):  # attach type from the program
            got = run_in_cgroup(cgroup, CONNECTOR.format(port=port)).strip()
            assert got == str(errno.EPERM)
            outside = run_in_cgroup(None, CONNECTOR.format(port=port)).strip()
            assert outside == "connected"
        assert run_in_cgroup(cgroup, CONNECTOR.format(port=port)).strip() == "connected"


#: Cgroup attach types newer than the rest (the others are all in 5.x kernels).
_NEWER_ATTACH_TYPES = {"CGROUP_UNIX_CONNECT": "6.7", "CGROUP_UNIX_SENDMSG": "6.7",
                       "CGROUP_UNIX_RECVMSG": "6.7", "CGROUP_UNIX_GETPEERNAME": "6.7",
                       "CGROUP_UNIX_GETSOCKNAME": "6.7"}


def _load_for(at: ebpf.AttachType) -> ebpf.Program:
    pt = CGROUP_ATTACH_TYPES[at]
    try:
        return ebpf.Program.load(pt, ret(1), expected_attach_type=at, name="cg_any")
    except errors.SyscallError as e:
        need = _NEWER_ATTACH_TYPES.get(at.name)
        if e.errno == errno.EINVAL and need and ebpf.platform.kernel_version() < need:
            pytest.skip(f"BPF_PROG_LOAD with expected_attach_type {at.name}: EINVAL on "
                        f"Linux {os.uname().release} (the attach type is new in {need})")
        raise


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.name)
@pytest.mark.parametrize("at", [a for a in CGROUP_ATTACH_TYPES if a is not AT.LSM_CGROUP],
                         ids=lambda a: a.name)
def test_every_cgroup_attach_type(cgroup: str, at: ebpf.AttachType, mode: CgroupMode) -> None:
    with _load_for(at) as prog:
        with attach_cgroup(prog, cgroup, at, mode=mode) as att:
            assert query_cgroup(cgroup, at).prog_ids == (prog.id,)
            if isinstance(att, CgroupLink):
                assert att.attach_type is at
                assert att.cgroup_id == os.stat(cgroup).st_ino
        assert query_cgroup(cgroup, at).prog_ids == ()


def test_lsm_cgroup(cgroup: str) -> None:
    try:
        prog = ebpf.Program.load(PT.LSM, ret(0), expected_attach_type=AT.LSM_CGROUP,
                                 attach_to="socket_bind", name="lsm_cg")
    except errors.SyscallError as e:
        # This machine kind refuses BPF LSM loads (see kernel-capabilities §7).
        if e.errno == errno.EPERM:
            pytest.skip(f"BPF_PROG_LOAD of an LSM_CGROUP program: EPERM ({e})")
        raise
    with prog, attach_cgroup(prog, cgroup) as att:
        assert isinstance(att, CgroupLink)


def test_flags_exclusive_override_multi_replace(cgroup: str, counts: Map) -> None:
    at = AT.CGROUP_INET_EGRESS
    p1, p2, p3 = (ebpf.Program.load(PT.CGROUP_SKB, counter(counts, 1), expected_attach_type=at)
                  for _ in range(3))
    with p1, p2, p3:
        with attach_cgroup(p1, cgroup, at, mode=CgroupMode.EXCLUSIVE) as a1:
            assert query_cgroup(cgroup, at).attach_flags == 0
            with pytest.raises(errors.BPFPermissionError):  # other flags on the hook: EPERM
                attach_cgroup(p2, cgroup, at, mode=CgroupMode.MULTI)
            a1.update(p2)  # exclusive: attaching again replaces the one program
            assert query_cgroup(cgroup, at).prog_ids == (p2.id,)
        assert query_cgroup(cgroup, at).prog_ids == ()
        with attach_cgroup(p1, cgroup, at, mode=CgroupMode.OVERRIDE):
            assert query_cgroup(cgroup, at).attach_flags == ebpf._uapi._defines.BPF_F_ALLOW_OVERRIDE
        with (
            attach_cgroup(p1, cgroup, at, mode=CgroupMode.MULTI) as m1,
            attach_cgroup(p2, cgroup, at, mode=CgroupMode.MULTI),
        ):
            assert query_cgroup(cgroup, at).prog_ids == (p1.id, p2.id)
            m3 = attach_cgroup(p3, cgroup, at, replace=p1)
            assert isinstance(m3, CgroupAttachment)
            with m3:
                assert query_cgroup(cgroup, at).prog_ids == (p3.id, p2.id)
                m1.detach()  # replaced already: ENOENT is not an error
                assert query_cgroup(cgroup, at).prog_ids == (p3.id, p2.id)
            assert query_cgroup(cgroup, at).prog_ids == (p2.id,)
        assert query_cgroup(cgroup, at).prog_ids == ()


@needs_link
def test_link_and_effective_query(cgroup: str, counts: Map) -> None:
    at = AT.CGROUP_INET_EGRESS
    child = os.path.join(cgroup, "child")
    os.mkdir(child)
    try:
        with (
            ebpf.Program.load(PT.CGROUP_SKB, counter(counts, 1), expected_attach_type=at) as p,
            attach_cgroup(p, cgroup, at) as link,
        ):
            assert isinstance(link, CgroupLink)
            assert query_cgroup(child, at).prog_ids == ()
            assert query_cgroup(child, at, effective=True).prog_ids == (p.id,)
            fd = os.open(cgroup, os.O_RDONLY)
            try:
                assert query_cgroup(fd, at).prog_ids == (p.id,)
            finally:
                os.close(fd)
    finally:
        os.rmdir(child)


def test_inputs_checked_before_any_syscall(cgroup: str, tmp_path: object) -> None:
    with ebpf.Program.load(PT.CGROUP_SKB, ret(1)) as skb:
        with pytest.raises(ValueError, match="attach_type is required"):
            attach_cgroup(skb, cgroup)
        with pytest.raises(ValueError, match="expected CGROUP_SOCK_ADDR"):
            attach_cgroup(skb, cgroup, AT.CGROUP_INET4_CONNECT)
        with pytest.raises(ValueError, match="not a cgroup attach type"):
            attach_cgroup(skb, cgroup, AT.XDP)
        with pytest.raises(ValueError, match="not a cgroup v2 directory"):
            attach_cgroup(skb, str(tmp_path), AT.CGROUP_INET_EGRESS)
        with pytest.raises(FileNotFoundError):
            attach_cgroup(skb, os.path.join(cgroup, "missing"), AT.CGROUP_INET_EGRESS)
        with pytest.raises(ValueError, match="replace= needs"):
            attach_cgroup(skb, cgroup, AT.CGROUP_INET_EGRESS, mode=CgroupMode.EXCLUSIVE,
                          replace=skb)  # type: ignore[call-overload]
    bind = ebpf.Program.load(PT.CGROUP_SOCK_ADDR, ret(1), expected_attach_type=AT.CGROUP_INET4_BIND)
    with bind, pytest.raises(ValueError, match="expected_attach_type CGROUP_INET4_BIND"):
        attach_cgroup(bind, cgroup, AT.CGROUP_INET4_CONNECT)
    with ebpf.Program.load(PT.XDP, ret(2)) as xdp:
        with pytest.raises(ValueError, match="attach_type is required"):
            attach_cgroup(xdp, cgroup)
        with pytest.raises(ValueError, match="invalid program type XDP"):
            attach_cgroup(xdp, cgroup, AT.CGROUP_INET_EGRESS)


def test_falls_back_to_prog_attach_without_cgroup_links(
        cgroup: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import ebpf.link.cgroup as cgroup_module

    monkeypatch.setattr(cgroup_module, "_have_cgroup_link", lambda: False)
    at = AT.CGROUP_INET_EGRESS
    with (
        ebpf.Program.load(PT.CGROUP_SKB, ret(1), expected_attach_type=at) as prog,
        attach_cgroup(prog, cgroup) as att,
    ):
        assert isinstance(att, CgroupAttachment) and att.mode is CgroupMode.MULTI
        assert query_cgroup(cgroup, at).attach_flags == ebpf._uapi._defines.BPF_F_ALLOW_MULTI
