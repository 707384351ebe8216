"""rtnetlink against the real kernel: links, addresses, clsact, cls_bpf filters, XDP.

Everything happens inside network namespaces the tests create (nothing touches the host's
interfaces) and is removed afterwards, also when a test fails half-way.
"""

from __future__ import annotations

import contextlib
import errno
import json
import shutil
import subprocess
from collections.abc import Iterator

import pytest

import ebpf
from ebpf import asm, errors
from ebpf._sys import _nlattr as nl
from ebpf._sys import netlink
from ebpf.asm import R0
from ebpf.testing.netns import NetNS, VethPair, icmp_echo, veth_pair


def _cap_eff() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return 0


CAP_NET_ADMIN, CAP_SYS_ADMIN = 12, 21
pytestmark = pytest.mark.skipif(
    not all(_cap_eff() >> c & 1 for c in (CAP_NET_ADMIN, CAP_SYS_ADMIN)),
    reason="needs CAP_NET_ADMIN and CAP_SYS_ADMIN (setns, rtnetlink changes)",
)

XDP_DROP, XDP_PASS = ebpf.XDPAction.DROP, ebpf.XDPAction.PASS
TC_ACT_OK, TC_ACT_SHOT = 0, 2  # linux/pkt_cls.h
PROG_TYPE_SCHED_CLS, PROG_TYPE_XDP = ebpf.ProgramType.SCHED_CLS, ebpf.ProgramType.XDP


@contextlib.contextmanager
def program(prog_type: ebpf.ProgramType, ret: int) -> Iterator[int]:
    """Load ``r0 = ret; exit`` and yield its fd."""
    with ebpf.Program.load(prog_type, [asm.mov(R0, int(ret)), asm.exit()], name="nltest") as prog:
        yield prog.fileno()


def prog_id(fd: int) -> int:
    """The kernel id of the program behind ``fd``."""
    with ebpf.Program.from_fd(fd) as prog:  # from_fd duplicates an int fd
        return prog.id


@pytest.fixture
def ns() -> Iterator[NetNS]:
    with NetNS() as made:
        yield made


@pytest.fixture
def pair() -> Iterator[VethPair]:
    with veth_pair() as made:
        yield made


def tc_json(ns: NetNS, *args: str) -> list[dict[str, object]] | None:
    """``tc -j ARGS`` inside ``ns`` through nsenter (no /sys remount), if both tools exist."""
    if shutil.which("tc") is None or shutil.which("nsenter") is None:
        return None
    out = subprocess.run(
        ["nsenter", f"--net=/proc/self/fd/{ns.fd}", "tc", "-j", *args],
        pass_fds=(ns.fd,),
        capture_output=True,
        text=True,
        check=True,
    )
    result: list[dict[str, object]] = json.loads(out.stdout or "[]")
    return result


# --- links and addresses ---------------------------------------------------------------------


def test_link_basics(ns: NetNS) -> None:
    index = netlink.veth_create("nlA", "nlB", netns=ns.fd)
    assert netlink.ifindex("nlA", netns=ns.fd) == index
    info = netlink.link_info("nlA", netns=ns.fd)
    assert (info.index, info.name, info.kind, info.up) == (index, "nlA", "veth", False)
    assert len(info.mac) == 6 and info.mtu == 1500
    peer = netlink.link_info("nlB", netns=ns.fd)
    assert info.link == peer.index and peer.link == index
    names = {link.name for link in netlink.link_list(netns=ns.fd)}
    assert names == {"lo", "nlA", "nlB"}
    netlink.link_set_up(index, netns=ns.fd)
    assert netlink.link_info(index, netns=ns.fd).up
    netlink.link_set_up("nlA", False, netns=ns.fd)
    assert not netlink.link_info(index, netns=ns.fd).up
    with pytest.raises(errors.SyscallError) as exc:
        netlink.veth_create("nlA", "nlC", netns=ns.fd)
    assert exc.value.errno == errno.EEXIST and exc.value.cmd == "RTM_NEWLINK"
    netlink.link_del("nlB", netns=ns.fd)
    assert {link.name for link in netlink.link_list(netns=ns.fd)} == {"lo"}
    with pytest.raises(ValueError, match="no network interface named 'nlA'"):
        netlink.ifindex("nlA", netns=ns.fd)
    with pytest.raises(ValueError, match="no network interface"):
        netlink.link_info("nlA", netns=ns.fd)


def test_calls_follow_the_calling_threads_namespace(ns: NetNS) -> None:
    netlink.veth_create("inside0", "inside1", netns=ns.fd)
    with ns.enter():
        assert netlink.ifindex("inside0") > 0
        assert {link.name for link in netlink.link_list()} == {"lo", "inside0", "inside1"}
    with pytest.raises(ValueError):
        netlink.ifindex("inside0")  # not in the caller's namespace


def test_link_set_netns() -> None:
    with NetNS() as a, NetNS() as b:
        netlink.veth_create("mvA", "mvB", netns=a.fd)
        netlink.link_set_netns("mvB", b.fd, netns=a.fd)
        assert {link.name for link in netlink.link_list(netns=a.fd)} == {"lo", "mvA"}
        moved = netlink.link_info("mvB", netns=b.fd)
        assert moved.kind == "veth"


def test_addresses(ns: NetNS) -> None:
    netlink.veth_create("adA", "adB", netns=ns.fd)
    netlink.addr_add("adA", "10.77.201.1/24", netns=ns.fd)
    netlink.addr_add("adA", "fd00:77:c9::1/64", netns=ns.fd)
    got = {str(a.address) for a in netlink.addr_list("adA", netns=ns.fd)}
    assert {"10.77.201.1/24", "fd00:77:c9::1/64"} <= got
    v6 = next(a for a in netlink.addr_list("adA", netns=ns.fd) if a.address.version == 6)
    assert v6.flags & nl.IFA_F_NODAD
    with pytest.raises(errors.SyscallError) as exc:
        netlink.addr_add("adA", "10.77.201.1/24", netns=ns.fd)
    assert exc.value.errno == errno.EEXIST and exc.value.cmd == "RTM_NEWADDR"
    netlink.addr_del("adA", "10.77.201.1/24", netns=ns.fd)
    got = {str(a.address) for a in netlink.addr_list("adA", netns=ns.fd)}
    assert "10.77.201.1/24" not in got
    with pytest.raises(ValueError):
        netlink.addr_add("adA", "not-an-address", netns=ns.fd)


# --- clsact and cls_bpf ----------------------------------------------------------------------


def test_clsact_add_del(ns: NetNS) -> None:
    netlink.veth_create("qdA", "qdB", netns=ns.fd)
    assert netlink.clsact_add("qdA", netns=ns.fd) is True
    assert netlink.clsact_add("qdA", netns=ns.fd) is False
    with pytest.raises(errors.SyscallError) as exc:
        netlink.clsact_add("qdA", exist_ok=False, netns=ns.fd)
    assert exc.value.errno == errno.EEXIST
    assert exc.value.cmd == "RTM_NEWQDISC"
    assert exc.value.detail == "Exclusivity flag on, cannot modify"
    kinds = {q.kind for q in netlink.qdisc_list("qdA", netns=ns.fd)}
    assert "clsact" in kinds
    shown = tc_json(ns, "qdisc", "show", "dev", "qdA")
    if shown is not None:
        assert any(q.get("kind") == "clsact" for q in shown)
    netlink.clsact_del("qdA", netns=ns.fd)
    assert "clsact" not in {q.kind for q in netlink.qdisc_list("qdA", netns=ns.fd)}
    with pytest.raises(errors.SyscallError) as exc:
        netlink.clsact_del("qdA", netns=ns.fd)
    assert exc.value.cmd == "RTM_DELQDISC" and exc.value.detail
    netlink.clsact_del("qdA", missing_ok=True, netns=ns.fd)


def test_filter_add_list_del(ns: NetNS) -> None:
    netlink.veth_create("flA", "flB", netns=ns.fd)
    netlink.clsact_add("flA", netns=ns.fd)
    with (
        program(PROG_TYPE_SCHED_CLS, TC_ACT_OK) as fd1,
        program(PROG_TYPE_SCHED_CLS, TC_ACT_OK) as fd2,
    ):
        first = netlink.filter_add("flA", "ingress", fd1, name="first", netns=ns.fd)
        assert first.kind == "bpf" and first.name == "first" and first.direct_action
        assert first.prog_id == prog_id(fd1)
        assert first.priority > 0 and first.handle > 0  # chosen by the kernel
        assert first.protocol == nl.ETH_P_ALL
        assert first.parent == netlink.INGRESS and len(first.tag) == 8

        second = netlink.filter_add(
            "flA",
            "ingress",
            fd2,
            name="second",
            priority=10,
            handle=5,
            protocol=nl.ETH_P_IP,
            netns=ns.fd,
        )
        assert (second.priority, second.handle, second.protocol) == (10, 5, nl.ETH_P_IP)
        listed = netlink.filter_list("flA", "ingress", netns=ns.fd)
        assert sorted((f.name, f.priority, f.handle, f.prog_id) for f in listed) == sorted(
            [
                ("first", first.priority, first.handle, first.prog_id),
                ("second", 10, 5, prog_id(fd2)),
            ]
        )
        assert netlink.filter_list("flA", "egress", netns=ns.fd) == []

        shown = tc_json(ns, "filter", "show", "dev", "flA", "ingress")
        if shown is not None:
            ids = {o.get("options", {}).get("prog", {}).get("id") for o in shown}  # type: ignore[union-attr]
            assert {first.prog_id, second.prog_id} <= ids

        with pytest.raises(errors.SyscallError) as exc:
            netlink.filter_add(
                "flA", "ingress", fd1, priority=10, handle=5, protocol=nl.ETH_P_IP, netns=ns.fd
            )
        assert exc.value.errno == errno.EEXIST and exc.value.cmd == "RTM_NEWTFILTER"

        replaced = netlink.filter_add(
            "flA",
            "ingress",
            fd1,
            name="again",
            priority=10,
            handle=5,
            protocol=nl.ETH_P_IP,
            replace=True,
            netns=ns.fd,
        )
        assert replaced.prog_id == prog_id(fd1) and replaced.name == "again"

        netlink.filter_del("flA", "ingress", 10, 5, nl.ETH_P_IP, netns=ns.fd)
        assert [f.name for f in netlink.filter_list("flA", "ingress", netns=ns.fd)] == ["first"]
        netlink.filter_del("flA", "ingress", first.priority, netns=ns.fd)  # whole priority
        assert netlink.filter_list("flA", "ingress", netns=ns.fd) == []
    netlink.clsact_del("flA", netns=ns.fd)


def test_filter_without_clsact_reports_kernel_message(ns: NetNS) -> None:
    netlink.veth_create("ncA", "ncB", netns=ns.fd)
    with program(PROG_TYPE_SCHED_CLS, TC_ACT_OK) as fd, pytest.raises(errors.SyscallError) as exc:
        netlink.filter_add("ncA", "egress", fd, netns=ns.fd)
    assert exc.value.cmd == "RTM_NEWTFILTER"
    assert exc.value.detail  # the kernel says why (e.g. "Parent Qdisc doesn't exists")


def test_tc_filter_drops_traffic(pair: VethPair) -> None:
    a = pair.a
    assert a.run(icmp_echo, pair.b.ip, count=2) == 2
    netlink.clsact_add(a.ifname, netns=a.ns.fd)
    with program(PROG_TYPE_SCHED_CLS, TC_ACT_SHOT) as fd:
        f = netlink.filter_add(a.ifname, "egress", fd, name="drop", netns=a.ns.fd)
        assert a.run(icmp_echo, pair.b.ip, count=2, timeout=0.4) == 0
        netlink.filter_del(a.ifname, "egress", f.priority, f.handle, netns=a.ns.fd)
    assert a.run(icmp_echo, pair.b.ip, count=2) == 2
    netlink.clsact_del(a.ifname, netns=a.ns.fd)


# --- XDP ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "attached"),
    [
        (nl.XDP_FLAGS_SKB_MODE, netlink.XDPAttached.SKB),
        (nl.XDP_FLAGS_DRV_MODE, netlink.XDPAttached.DRV),
    ],
    ids=["generic", "native"],
)
def test_xdp_attach_query_detach(pair: VethPair, mode: int, attached: netlink.XDPAttached) -> None:
    b = pair.b
    with program(PROG_TYPE_XDP, XDP_PASS) as pass_fd, program(PROG_TYPE_XDP, XDP_DROP) as drop_fd:
        netlink.xdp_attach(b.ifname, pass_fd, mode, netns=b.ns.fd)
        try:
            info = netlink.xdp_query(b.ifindex, netns=b.ns.fd)
            assert info.attached is attached
            assert info.prog_id == prog_id(pass_fd)
            per_mode = info.skb_prog_id if attached is netlink.XDPAttached.SKB else info.drv_prog_id
            assert per_mode == info.prog_id
            assert pair.a.run(icmp_echo, b.ip, count=2) == 2

            # Atomic replace, guarded by the expected program.
            netlink.xdp_attach(b.ifname, drop_fd, mode, expected_fd=pass_fd, netns=b.ns.fd)
            assert netlink.xdp_query(b.ifindex, netns=b.ns.fd).prog_id == prog_id(drop_fd)
            assert pair.a.run(icmp_echo, b.ip, count=2, timeout=0.4) == 0

            # The guard holds: pass_fd is no longer the attached program.
            with pytest.raises(errors.SyscallError) as exc:
                netlink.xdp_attach(b.ifname, pass_fd, mode, expected_fd=pass_fd, netns=b.ns.fd)
            assert exc.value.cmd == "RTM_SETLINK" and exc.value.detail

            with pytest.raises(errors.SyscallError) as exc:
                netlink.xdp_attach(
                    b.ifname, pass_fd, mode | nl.XDP_FLAGS_UPDATE_IF_NOEXIST, netns=b.ns.fd
                )
            assert exc.value.errno in (errno.EBUSY, errno.EEXIST) and exc.value.detail
        finally:
            netlink.xdp_detach(b.ifname, mode, netns=b.ns.fd)
        assert netlink.xdp_query(b.ifindex, netns=b.ns.fd) == netlink.XDPInfo()
        assert pair.a.run(icmp_echo, b.ip, count=2) == 2


def test_xdp_generic_and_native_conflict(pair: VethPair) -> None:
    b = pair.b
    with program(PROG_TYPE_XDP, XDP_PASS) as fd:
        netlink.xdp_attach(b.ifname, fd, nl.XDP_FLAGS_SKB_MODE, netns=b.ns.fd)
        try:
            with pytest.raises(errors.SyscallError) as exc:
                netlink.xdp_attach(b.ifname, fd, nl.XDP_FLAGS_DRV_MODE, netns=b.ns.fd)
            assert exc.value.errno == errno.EEXIST
            assert exc.value.detail == "Native and generic XDP can't be active at the same time"
            assert "Native and generic XDP" in str(exc.value)
        finally:
            netlink.xdp_detach(b.ifname, nl.XDP_FLAGS_SKB_MODE, netns=b.ns.fd)


def test_xdp_native_on_loopback_is_refused_with_reason(ns: NetNS) -> None:
    with program(PROG_TYPE_XDP, XDP_PASS) as fd, pytest.raises(errors.SyscallError) as exc:
        netlink.xdp_attach("lo", fd, nl.XDP_FLAGS_DRV_MODE, netns=ns.fd)
    assert exc.value.errno == errno.EOPNOTSUPP
    assert "native mode" in exc.value.detail


def test_xdp_detach_when_nothing_attached(pair: VethPair) -> None:
    netlink.xdp_detach(pair.b.ifname, nl.XDP_FLAGS_SKB_MODE, netns=pair.b.ns.fd)
    assert netlink.xdp_query(pair.b.ifname, netns=pair.b.ns.fd).attached is netlink.XDPAttached.NONE
