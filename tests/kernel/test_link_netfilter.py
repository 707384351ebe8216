"""Netfilter links in a private namespace: the program counts and accepts or drops pings."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import ebpf
from ebpf import asm, errors
from ebpf._maps import Map
from ebpf.asm import R0, R1, R2, R10, Helper
from ebpf.features import have_link_type
from ebpf.link.netfilter import NetfilterLink, NFHook, NFProto, attach_netfilter
from ebpf.testing.netns import VethPair, icmp_echo, veth_pair

pytestmark = [
    pytest.mark.capabilities(ebpf.platform.Capability.NET_ADMIN,
                             ebpf.platform.Capability.SYS_ADMIN),
    pytest.mark.requires(have_link_type, ebpf.LinkType.NETFILTER),
]

NF_DROP, NF_ACCEPT = 0, 1


def counter(m: Map, verdict: int) -> list[object]:
    return [
        asm.store_imm(asm.W, R10, -4, 0),
        asm.mov(R2, R10), asm.add(R2, -4),
        asm.load_map(R1, m),
        asm.call(Helper.MAP_LOOKUP_ELEM),
        asm.jeq(R0, 0, "out"),
        asm.mov(R1, 1), asm.atomic_add(asm.DW, R0, R1, 0),
        asm.label("out"),
        asm.mov(R0, verdict), asm.exit(),
    ]


def load(m: Map, verdict: int) -> ebpf.Program:
    return ebpf.Program.load(ebpf.ProgramType.NETFILTER, counter(m, verdict), name="nf_count",
                             expected_attach_type=ebpf.AttachType.NETFILTER)


@pytest.fixture
def counts() -> Iterator[Map]:
    with Map.create(ebpf.MapType.ARRAY, key_size=4, value_size=8, max_entries=1) as m:
        yield m


@pytest.fixture
def pair() -> Iterator[VethPair]:
    with veth_pair() as made:
        yield made


def test_counts_and_accepts(pair: VethPair, counts: Map) -> None:
    with load(counts, NF_ACCEPT) as prog, pair.b.enter():
        with attach_netfilter(prog, protocol=NFProto.IPV4, hook=NFHook.LOCAL_IN,
                              priority=-100) as link:
            assert isinstance(link, NetfilterLink)
            assert (link.protocol, link.hook, link.priority, link.flags) == (
                NFProto.IPV4, NFHook.LOCAL_IN, -100, 0)
            assert pair.a.run(icmp_echo, pair.b.ip, count=3, timeout=2.0) == 3
            assert counts[0] >= 3
            with pytest.raises(errors.NotSupportedError):
                link.update(prog)
        seen = counts[0]
        assert pair.a.run(icmp_echo, pair.b.ip, count=1, timeout=2.0) == 1
        assert counts[0] == seen


def test_drops(pair: VethPair, counts: Map) -> None:
    with load(counts, NF_DROP) as prog, pair.b.enter():
        with attach_netfilter(prog, hook=NFHook.PRE_ROUTING, priority=-50, defrag=True) as link:
            assert link.flags == ebpf._uapi._defines.BPF_F_NETFILTER_IP_DEFRAG
            assert pair.a.run(icmp_echo, pair.b.ip, count=3, timeout=0.5) == 0
            assert counts[0] >= 3
        assert pair.a.run(icmp_echo, pair.b.ip, count=1, timeout=2.0) == 1


def test_ipv6_local_out(pair: VethPair, counts: Map) -> None:
    with (
        load(counts, NF_ACCEPT) as prog,
        pair.a.enter(),
        attach_netfilter(prog, protocol=NFProto.IPV6, hook=NFHook.LOCAL_OUT),
    ):
        assert icmp_echo(pair.b.ip6, count=2, timeout=2.0) == 2
        assert counts[0] >= 2


def test_inputs_checked(counts: Map) -> None:
    xdp = ebpf.Program.load(ebpf.ProgramType.XDP, [asm.mov(R0, 2), asm.exit()])
    with xdp, pytest.raises(ValueError, match="expected NETFILTER"):
        attach_netfilter(xdp)
    with load(counts, NF_ACCEPT) as prog:
        with pytest.raises(ValueError, match="reserved"):
            attach_netfilter(prog, priority=-(2**31))
        with pytest.raises(ValueError, match="reserved"):
            attach_netfilter(prog, priority=2**31 - 1)
        with pytest.raises(ValueError):
            attach_netfilter(prog, protocol=7)  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            attach_netfilter(prog, hook=9)  # type: ignore[arg-type]
