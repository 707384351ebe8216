"""TC attach (TCX links and clsact/cls_bpf filters) on a veth pair in private namespaces.

Raw frames of each EtherType are injected from namespace *a*; the program, on *b*'s ingress
(or *a*'s egress), counts them by ``skb->protocol``. Every attachment is undone by its ``with``
block and the namespaces are deleted afterwards, also when a test fails.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Iterator

import pytest

import ebpf
from ebpf import asm, errors
from ebpf._maps import Map
from ebpf._uapi import _generated_types as _t
from ebpf.asm import R0, R1, R2, R6, R10, Helper
from ebpf.features import have_link_type
from ebpf.link.tc import (
    ETH_P_ALL,
    TCAttachment,
    TCXLink,
    attach_tc,
    delete_tc_filter,
    query_tcx,
    tc_filters,
)
from ebpf.packet import ARP, UDP, Ethernet, EtherType, IPv4, IPv6
from ebpf.testing.netns import VethPair, send_frame, veth_pair

pytestmark = pytest.mark.capabilities(ebpf.platform.Capability.NET_ADMIN,
                                      ebpf.platform.Capability.SYS_ADMIN)

TC_ACT_OK, TC_ACT_SHOT, TCX_NEXT = 0, 2, -1
PROTOCOL_OFF = _t.SkBuff.protocol.offset
# counter slot per EtherType; skb->protocol holds it in network byte order
SLOTS = {EtherType.IPV4: 0, EtherType.IPV6: 1, EtherType.ARP: 2}
OTHER = 3
LOCAL_EXPERIMENTAL = 0x88B5
needs_tcx = pytest.mark.requires(have_link_type, ebpf.LinkType.TCX)


def htons(v: int) -> int:
    return ((v & 0xFF) << 8) | (v >> 8)


def classify_and_count(m: Map, ret: int) -> list[object]:
    """``counts[slot(skb->protocol)] += 1; return ret``."""
    insns: list[object] = [
        asm.mov(R6, R1),
        asm.load(asm.W, R2, R6, PROTOCOL_OFF),
        asm.store_imm(asm.W, R10, -4, OTHER),
    ]
    for etype, slot in SLOTS.items():
        insns += [asm.jne(R2, htons(etype), f"not{slot}"),
                  asm.store_imm(asm.W, R10, -4, slot),
                  asm.label(f"not{slot}")]
    insns += [
        asm.mov(R2, R10), asm.add(R2, -4),
        asm.load_map(R1, m),
        asm.call(Helper.MAP_LOOKUP_ELEM),
        asm.jeq(R0, 0, "out"),
        asm.mov(R1, 1), asm.atomic_add(asm.DW, R0, R1, 0),
        asm.label("out"),
        asm.mov(R0, ret), asm.exit(),
    ]
    return insns


@pytest.fixture
def counts() -> Iterator[Map]:
    with Map.create(ebpf.MapType.ARRAY, key_size=4, value_size=8, max_entries=4) as m:
        yield m


@pytest.fixture
def pair() -> Iterator[VethPair]:
    with veth_pair() as made:
        yield made


def load(m: Map, ret: int = TC_ACT_OK) -> ebpf.Program:
    return ebpf.Program.load(ebpf.ProgramType.SCHED_CLS, classify_and_count(m, ret),
                             name="tc_count")


def frames(pair: VethPair) -> dict[int, bytes]:
    eth = Ethernet(dst=pair.b.mac, src=pair.a.mac)
    return {
        SLOTS[EtherType.IPV4]: bytes(eth / IPv4(src=pair.a.ip, dst=pair.b.ip)
                                     / UDP(sport=4000, dport=4001) / b"v4"),
        SLOTS[EtherType.IPV6]: bytes(eth / IPv6(src=pair.a.ip6, dst=pair.b.ip6)
                                     / UDP(sport=4000, dport=4001) / b"v6"),
        SLOTS[EtherType.ARP]: bytes(Ethernet(src=pair.a.mac) / ARP(
            op=1, sha=pair.a.mac, spa=pair.a.ip, tpa=pair.b.ip)),
        OTHER: bytes(Ethernet(dst=pair.b.mac, src=pair.a.mac, type=LOCAL_EXPERIMENTAL)
                     / bytes(46)),
    }


def send_all_and_check(pair: VethPair, counts: Map) -> None:
    """Inject one frame of each kind from *a*; each must be counted in its slot."""
    before = {slot: counts[slot] for slot in range(4)}
    for frame in frames(pair).values():
        pair.a.run(send_frame, pair.a.ifname, frame)
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        if all(counts[s] > before[s] for s in range(4)):
            break
        time.sleep(0.02)
    seen = {slot: counts[slot] - before[slot] for slot in range(4)}
    assert all(n >= 1 for n in seen.values()), f"frames counted per slot: {seen}"


MODES = [pytest.param("tcx", marks=needs_tcx), "clsact"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("direction", ["ingress", "egress"])
def test_every_protocol_reaches_the_program(pair: VethPair, counts: Map, mode: str,
                                           direction: str) -> None:
    # ingress: on b's veth as frames arrive; egress: on a's veth as they leave
    end = pair.b if direction == "ingress" else pair.a
    with load(counts) as prog, end.enter():
        with attach_tc(prog, end.ifname, direction=direction, mode=mode) as att:  # type: ignore[call-overload]
            assert isinstance(att, TCXLink if mode == "tcx" else TCAttachment)
            send_all_and_check(pair, counts)
        # detached: nothing more is counted
        total = sum(counts[s] for s in range(4))
        for frame in frames(pair).values():
            pair.a.run(send_frame, pair.a.ifname, frame)
        time.sleep(0.1)
        assert sum(counts[s] for s in range(4)) == total


def test_clsact_filter_list_and_delete(pair: VethPair, counts: Map) -> None:
    with load(counts) as prog, pair.b.enter():
        att = attach_tc(prog, pair.b.ifname, mode="clsact", priority=7, handle=3,
                        name="counter")
        with att:
            assert (att.priority, att.handle) == (7, 3)
            (f,) = tc_filters(pair.b.ifname, "ingress")
            assert (f.priority, f.handle, f.protocol) == (7, 3, ETH_P_ALL)
            assert f.prog_id == prog.id and f.direct_action and f.name == "counter"
            assert f.kind == "bpf"
            assert tc_filters(pair.b.ifname, "egress") == []
            send_all_and_check(pair, counts)
            delete_tc_filter(pair.b.ifname, "ingress", 7, 3)
            assert tc_filters(pair.b.ifname, "ingress") == []
            with pytest.raises(errors.SyscallError):
                delete_tc_filter(pair.b.ifname, "ingress", 7, 3)
        # detaching after an outside delete is fine


def test_clsact_kernel_picks_priority_and_replace(pair: VethPair, counts: Map) -> None:
    with (
        load(counts) as p1, load(counts, TC_ACT_SHOT) as p2, pair.b.enter(),
        attach_tc(p1, pair.b.ifname, mode="clsact") as a1,
    ):
        assert a1.priority > 0 and a1.handle > 0
        with pytest.raises(errors.SyscallError) as exc:
            attach_tc(p2, pair.b.ifname, priority=a1.priority, handle=a1.handle)
        assert exc.value.errno == errno.EEXIST
        a2 = attach_tc(p2, pair.b.ifname, priority=a1.priority, handle=a1.handle,
                       replace=True)
        with a2:
            (f,) = tc_filters(pair.b.ifname)
            assert f.prog_id == p2.id
            a1.detach()  # replaced: must not remove p2's filter
            assert [x.prog_id for x in tc_filters(pair.b.ifname)] == [p2.id]
        assert tc_filters(pair.b.ifname) == []


def test_clsact_single_protocol(pair: VethPair, counts: Map) -> None:
    with (
        load(counts) as prog, pair.b.enter(),
        attach_tc(prog, pair.b.ifname, protocol=EtherType.ARP) as att,
    ):
        assert isinstance(att, TCAttachment)
        assert att.filter.protocol == EtherType.ARP
        for frame in frames(pair).values():
            pair.a.run(send_frame, pair.a.ifname, frame)
        deadline = time.monotonic() + 2.0
        while counts[SLOTS[EtherType.ARP]] == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert counts[SLOTS[EtherType.ARP]] >= 1
        assert counts[SLOTS[EtherType.IPV4]] == 0 and counts[OTHER] == 0


@needs_tcx
def test_tcx_ordering_and_revision(pair: VethPair, counts: Map) -> None:
    progs = [load(counts, TCX_NEXT) for _ in range(4)]
    try:
        with pair.b.enter():
            a = attach_tc(progs[0], pair.b.ifname, mode="tcx")
            with a:
                b = attach_tc(progs[1], pair.b.ifname, first=True)
                with b:
                    c = attach_tc(progs[2], pair.b.ifname, after=a)
                    with c:
                        q = query_tcx(pair.b.ifname)
                        assert q.prog_ids == (progs[1].id, progs[0].id, progs[2].id)
                        assert q.link_ids == (b.id, a.id, c.id)
                        with pytest.raises(errors.SyscallError) as exc:
                            attach_tc(progs[3], pair.b.ifname,
                                      expected_revision=q.revision + 5)
                        assert exc.value.errno == errno.ESTALE
                        with attach_tc(progs[3], pair.b.ifname, before=progs[0],
                                       expected_revision=q.revision):
                            ids = query_tcx(pair.b.ifname).prog_ids
                            assert ids == (progs[1].id, progs[3].id, progs[0].id, progs[2].id)
                        with pytest.raises(errors.SyscallError) as exc:  # already in the list
                            attach_tc(progs[0], pair.b.ifname, mode="tcx")
                        assert exc.value.errno == errno.EEXIST
                        assert c.direction == "ingress" and c.ifindex == pair.b.ifindex
            assert query_tcx(pair.b.ifname).prog_ids == ()
    finally:
        for p in progs:
            p.close()


def test_inputs_checked_before_any_syscall(counts: Map) -> None:
    xdp = ebpf.Program.load(ebpf.ProgramType.XDP, [asm.mov(R0, 2), asm.exit()])
    with xdp, pytest.raises(ValueError, match="expected SCHED_CLS"):
        attach_tc(xdp, "lo")
    with load(counts) as prog:
        with pytest.raises(ValueError, match="no network interface"):
            attach_tc(prog, "nosuchif0")
        with pytest.raises(ValueError, match="direction"):
            attach_tc(prog, "lo", direction="sideways")  # type: ignore[call-overload]
        with pytest.raises(ValueError, match="not both"):
            attach_tc(prog, "lo", priority=1, first=True)
        with pytest.raises(ValueError, match="mode='clsact'"):
            attach_tc(prog, "lo", mode="tcx", priority=1)  # type: ignore[call-overload]
        with pytest.raises(ValueError, match="mode='tcx'"):
            attach_tc(prog, "lo", mode="clsact", first=True)  # type: ignore[call-overload]
        with pytest.raises(ValueError, match="priority"):
            attach_tc(prog, "lo", priority=70000)
        with pytest.raises(ValueError, match="at most one"):
            attach_tc(prog, "lo", before=prog, after=prog)


def test_falls_back_to_clsact_without_tcx(pair: VethPair, counts: Map,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import ebpf.link.tc as tc_module

    monkeypatch.setattr(tc_module, "_have_tcx", lambda: False)
    with load(counts) as prog, pair.b.enter():
        with attach_tc(prog, pair.b.ifname) as att:
            assert isinstance(att, TCAttachment)
            send_all_and_check(pair, counts)
        assert tc_filters(pair.b.ifname) == []
