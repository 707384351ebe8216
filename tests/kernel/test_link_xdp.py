"""XDP attach on a veth pair in private namespaces: bpf_link and netlink, generic and native.

Frames sent from namespace *a* arrive on *b*'s veth, where the program counts them in a map
and drops them (so the pings get no answer). Everything is torn down with the namespaces,
and each attachment is detached by its ``with`` block, also when an assertion fails.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator

import pytest

import ebpf
from ebpf import asm, errors
from ebpf._maps import Map
from ebpf._sys import netlink
from ebpf.asm import R0, R1, R2, R10, Helper
from ebpf.features import have_link_type
from ebpf.link.xdp import XDPAttachment, XDPLink, attach_xdp
from ebpf.testing.netns import VethPair, icmp_echo, veth_pair

pytestmark = pytest.mark.capabilities(ebpf.platform.Capability.NET_ADMIN,
                                      ebpf.platform.Capability.SYS_ADMIN)

XDP_DROP, XDP_PASS = ebpf.XDPAction.DROP, ebpf.XDPAction.PASS
MODES = [ebpf.XDPMode.GENERIC, ebpf.XDPMode.NATIVE]


def counter(m: Map, ret: int) -> list[object]:
    """``counts[0] += 1; return ret``."""
    return [
        asm.store_imm(asm.W, R10, -4, 0),
        asm.mov(R2, R10), asm.add(R2, -4),
        asm.load_map(R1, m),
        asm.call(Helper.MAP_LOOKUP_ELEM),
        asm.jeq(R0, 0, "out"),
        asm.mov(R1, 1), asm.atomic_add(asm.DW, R0, R1, 0),
        asm.label("out"),
        asm.mov(R0, int(ret)), asm.exit(),
    ]


@pytest.fixture
def counts() -> Iterator[Map]:
    with Map.create(ebpf.MapType.ARRAY, key_size=4, value_size=8, max_entries=1) as m:
        yield m


@pytest.fixture
def pair() -> Iterator[VethPair]:
    with veth_pair() as made:
        yield made


def load(m: Map, ret: int) -> ebpf.Program:
    return ebpf.Program.load(ebpf.ProgramType.XDP, counter(m, ret), name="xdp_count")


@pytest.mark.requires(have_link_type, ebpf.LinkType.XDP)
@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.name)
def test_link_counts_and_drops(pair: VethPair, counts: Map, mode: ebpf.XDPMode) -> None:
    assert pair.a.run(icmp_echo, pair.b.ip, count=2, timeout=2.0) == 2  # resolves ARP too
    with load(counts, XDP_DROP) as prog, pair.b.enter():
        with attach_xdp(prog, pair.b.ifname, mode=mode, method="link") as link:
            assert isinstance(link, XDPLink)
            assert link.ifindex == pair.b.ifindex
            assert link.info().prog_id == prog.id
            xdp = netlink.xdp_query(pair.b.ifindex)
            got = xdp.skb_prog_id if mode is ebpf.XDPMode.GENERIC else xdp.drv_prog_id
            assert got == prog.id
            assert pair.a.run(icmp_echo, pair.b.ip, count=3, timeout=0.5) == 0
            assert counts[0] >= 3
        assert netlink.xdp_query(pair.b.ifindex).prog_id == 0
        assert pair.a.run(icmp_echo, pair.b.ip, count=2, timeout=2.0) == 2


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.name)
def test_netlink_counts_and_drops(pair: VethPair, counts: Map, mode: ebpf.XDPMode) -> None:
    assert pair.a.run(icmp_echo, pair.b.ip, count=2, timeout=2.0) == 2  # resolves ARP too
    with load(counts, XDP_DROP) as prog, pair.b.enter():
        with attach_xdp(prog, pair.b.ifname, mode=mode, method="netlink") as att:
            assert isinstance(att, XDPAttachment)
            xdp = netlink.xdp_query(pair.b.ifindex)
            got = xdp.skb_prog_id if mode is ebpf.XDPMode.GENERIC else xdp.drv_prog_id
            assert got == prog.id
            assert pair.a.run(icmp_echo, pair.b.ip, count=3, timeout=0.5) == 0
            assert counts[0] >= 3
            with pytest.raises(errors.NotSupportedError):
                att.pin("/sys/fs/bpf/never")
        assert netlink.xdp_query(pair.b.ifindex).prog_id == 0
        assert pair.a.run(icmp_echo, pair.b.ip, count=2, timeout=2.0) == 2


def test_netlink_replace_with_expected(pair: VethPair, counts: Map) -> None:
    with (
        load(counts, XDP_DROP) as drop,
        load(counts, XDP_PASS) as ok,
        pair.b.enter(),
        attach_xdp(drop, pair.b.ifindex, mode=ebpf.XDPMode.GENERIC, method="netlink") as first,
    ):
        # the expected program is not attached: EEXIST, nothing changes
        with pytest.raises(errors.SyscallError) as exc:
            attach_xdp(drop, pair.b.ifindex, mode=ebpf.XDPMode.GENERIC, replace=ok)
        assert exc.value.errno == errno.EEXIST
        assert netlink.xdp_query(pair.b.ifindex).prog_id == drop.id
        with attach_xdp(ok, pair.b.ifindex, mode=ebpf.XDPMode.GENERIC,
                        replace=drop) as second:
            assert netlink.xdp_query(pair.b.ifindex).prog_id == ok.id
            assert pair.a.run(icmp_echo, pair.b.ip, count=2, timeout=2.0) == 2
            first.detach()  # ours was replaced: leaves the new one alone
            assert netlink.xdp_query(pair.b.ifindex).prog_id == ok.id
            second.update(drop)
            assert netlink.xdp_query(pair.b.ifindex).prog_id == drop.id
        assert netlink.xdp_query(pair.b.ifindex).prog_id == 0


@pytest.mark.requires(have_link_type, ebpf.LinkType.XDP)
def test_link_update_and_busy(pair: VethPair, counts: Map) -> None:
    with (
        load(counts, XDP_DROP) as drop,
        load(counts, XDP_PASS) as ok,
        pair.b.enter(),
        attach_xdp(ok, pair.b.ifname, mode=ebpf.XDPMode.GENERIC) as link,
    ):
        assert isinstance(link, XDPLink)  # the default method where links exist
        with pytest.raises(errors.BusyError):
            attach_xdp(drop, pair.b.ifname, mode=ebpf.XDPMode.GENERIC, method="netlink")
        with pytest.raises(errors.SyscallError):
            attach_xdp(drop, pair.b.ifname, mode=ebpf.XDPMode.GENERIC, method="link")
        assert pair.a.run(icmp_echo, pair.b.ip, count=1, timeout=2.0) == 1
        with pytest.raises(errors.SyscallError):  # expected program is not attached
            link.update(drop, expected=drop)
        link.update(drop, expected=ok)
        assert link.info().prog_id == drop.id
        assert pair.a.run(icmp_echo, pair.b.ip, count=2, timeout=0.5) == 0
        link.detach()
        assert netlink.xdp_query(pair.b.ifindex).prog_id == 0
        assert pair.a.run(icmp_echo, pair.b.ip, count=1, timeout=2.0) == 1


@pytest.mark.requires(have_link_type, ebpf.LinkType.XDP)
def test_pinned_link_survives_close(pair: VethPair, counts: Map, bpffs: str) -> None:
    path = f"{bpffs}/xdp_link"
    with load(counts, XDP_DROP) as prog, pair.b.enter():
        link = attach_xdp(prog, pair.b.ifname, mode=ebpf.XDPMode.GENERIC, method="link")
        try:
            link.pin(path)
            link.close()
            assert netlink.xdp_query(pair.b.ifindex).prog_id == prog.id
            with XDPLink.from_pin(path) as again:
                assert isinstance(again, XDPLink)
                assert again.ifindex == pair.b.ifindex
                again.unpin()
        finally:
            link.close()
        assert netlink.xdp_query(pair.b.ifindex).prog_id == 0


def test_inputs_checked_before_any_syscall(counts: Map) -> None:
    sf = ebpf.Program.load(ebpf.ProgramType.SOCKET_FILTER, [asm.mov(R0, 0), asm.exit()])
    with sf, pytest.raises(ValueError, match="expected XDP"):
        attach_xdp(sf, "lo")
    with load(counts, XDP_PASS) as prog:
        with pytest.raises(ValueError, match="no network interface"):
            attach_xdp(prog, "nosuchif0")
        with pytest.raises(ValueError, match="invalid interface name"):
            attach_xdp(prog, "bad/name")
        with pytest.raises(ValueError, match="invalid interface index"):
            attach_xdp(prog, 0)
        with pytest.raises(TypeError):
            attach_xdp(prog, "lo", mode=2)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="method"):
            attach_xdp(prog, "lo", method="ioctl")  # type: ignore[call-overload]


def test_native_on_loopback_is_eopnotsupp(netns: object, counts: Map) -> None:
    with load(counts, XDP_PASS) as prog:
        with pytest.raises(errors.SyscallError) as exc:
            attach_xdp(prog, "lo", mode=ebpf.XDPMode.NATIVE, method="netlink")
        assert exc.value.errno == errno.EOPNOTSUPP


@pytest.mark.parametrize("method", ["link", "netlink"])
def test_offload_needs_an_offload_device(pair: VethPair, counts: Map, method: str) -> None:
    # veth cannot offload, and the program was not loaded for a device: EINVAL either way.
    with load(counts, XDP_PASS) as prog, pair.b.enter():
        with pytest.raises(errors.SyscallError) as exc:
            attach_xdp(prog, pair.b.ifname, mode=ebpf.XDPMode.OFFLOAD,
                       method=method)  # type: ignore[call-overload]
        assert exc.value.errno == errno.EINVAL
        assert netlink.xdp_query(pair.b.ifindex).prog_id == 0


def test_falls_back_to_netlink_without_xdp_links(pair: VethPair, counts: Map,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import ebpf.link.xdp as xdp_module

    monkeypatch.setattr(xdp_module, "_have_xdp_link", lambda: False)
    with load(counts, XDP_DROP) as prog, pair.b.enter():
        with attach_xdp(prog, pair.b.ifname, mode=ebpf.XDPMode.GENERIC) as att:
            assert isinstance(att, XDPAttachment)
            assert netlink.xdp_query(pair.b.ifindex).skb_prog_id == prog.id
        assert netlink.xdp_query(pair.b.ifindex).prog_id == 0
