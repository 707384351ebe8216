"""Network namespace hooks (sk_lookup, flow dissector), always in namespaces the test owns:
both hooks act on every socket or packet of their namespace."""

from __future__ import annotations

import errno
import os
import socket
import time
from collections.abc import Iterator

import pytest

import ebpf
from ebpf import asm, errors
from ebpf._maps import Map
from ebpf._uapi import _generated_types as _t
from ebpf.asm import R0, R1, R2, R3, R6, R7, R10, Helper
from ebpf.features import have_link_type
from ebpf.link.netns import (
    FlowDissectorAttachment,
    NetNSLink,
    attach_flow_dissector,
    attach_sk_lookup,
    query_netns,
)
from ebpf.testing.netns import NetNS, VethPair, icmp_echo, packet_socket, veth_pair

pytestmark = pytest.mark.capabilities(ebpf.platform.Capability.NET_ADMIN,
                                      ebpf.platform.Capability.SYS_ADMIN)

AT, PT = ebpf.AttachType, ebpf.ProgramType
SK_PASS = 1
BPF_OK = 0
needs_link = pytest.mark.requires(have_link_type, ebpf.LinkType.NETNS)


def steer(sockets: Map, port: int) -> list[object]:
    """sk_lookup: connections to ``port`` go to the socket in ``sockets[0]``."""
    return [
        asm.mov(R6, R1),
        asm.load(asm.W, R2, R6, _t.BpfSkLookup.local_port.offset),
        asm.jne(R2, port, "pass"),
        asm.store_imm(asm.W, R10, -4, 0),
        asm.mov(R2, R10), asm.add(R2, -4),
        asm.load_map(R1, sockets),
        asm.call(Helper.MAP_LOOKUP_ELEM),
        asm.jeq(R0, 0, "pass"),
        asm.mov(R7, R0),
        asm.mov(R1, R6), asm.mov(R2, R7), asm.mov(R3, 0),
        asm.call(Helper.SK_ASSIGN),
        asm.mov(R1, R7),
        asm.call(Helper.SK_RELEASE),
        asm.label("pass"),
        asm.mov(R0, SK_PASS), asm.exit(),
    ]


def counter(m: Map, result: int) -> list[object]:
    return [
        asm.store_imm(asm.W, R10, -4, 0),
        asm.mov(R2, R10), asm.add(R2, -4),
        asm.load_map(R1, m),
        asm.call(Helper.MAP_LOOKUP_ELEM),
        asm.jeq(R0, 0, "out"),
        asm.mov(R1, 1), asm.atomic_add(asm.DW, R0, R1, 0),
        asm.label("out"),
        asm.mov(R0, result), asm.exit(),
    ]


@pytest.fixture
def counts() -> Iterator[Map]:
    with Map.create(ebpf.MapType.ARRAY, key_size=4, value_size=8, max_entries=1) as m:
        yield m


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@needs_link
def test_sk_lookup_steers_a_connection(netns: NetNS) -> None:
    with (
        Map.create(ebpf.MapType.SOCKMAP, key_size=4, value_size=8, max_entries=1) as sockets,
        socket.socket() as server,
    ):
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(2.0)
        sockets[0] = server.fileno()
        target = free_port()  # nothing listens there
        with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
            probe.connect(("127.0.0.1", target))
        with (
            ebpf.Program.load(PT.SK_LOOKUP, steer(sockets, target), name="steer",
                              expected_attach_type=AT.SK_LOOKUP) as prog,
            attach_sk_lookup(prog) as link,
        ):
            assert isinstance(link, NetNSLink)
            assert link.attach_type is AT.SK_LOOKUP
            assert link.netns_ino == os.stat("/proc/thread-self/ns/net").st_ino
            assert query_netns(AT.SK_LOOKUP).prog_ids == (prog.id,)
            with socket.create_connection(("127.0.0.1", target), timeout=2.0) as client:
                conn, _ = server.accept()
                with conn:
                    assert conn.getsockname() == ("127.0.0.1", target)
                    client.sendall(b"steered")
                    assert conn.recv(16) == b"steered"
        with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
            probe.connect(("127.0.0.1", target))


@needs_link
def test_sk_lookup_in_another_namespace_by_path_and_object() -> None:
    with (
        NetNS() as other,
        ebpf.Program.load(PT.SK_LOOKUP, [asm.mov(R0, SK_PASS), asm.exit()],
                          expected_attach_type=AT.SK_LOOKUP) as prog,
    ):
        ino = os.fstat(other.fd).st_ino
        with attach_sk_lookup(prog, other) as a, attach_sk_lookup(prog, other.path) as b:
            assert a.netns_ino == ino and b.netns_ino == ino
            assert query_netns(AT.SK_LOOKUP, other).prog_ids == (prog.id, prog.id)
            here = os.stat("/proc/thread-self/ns/net").st_ino
            assert here != ino


SOL_PACKET, PACKET_FANOUT, PACKET_FANOUT_HASH = 263, 18, 0  # linux/if_packet.h


def _flow_dissector_runs(pair: VethPair, counts: Map) -> None:
    """Ping *b* while a hash-fanout packet socket there makes the kernel dissect each frame
    (veth has no RPS or multiqueue hashing that would do it otherwise)."""
    before = counts[0]
    with pair.b.enter():
        sock = packet_socket(pair.b.ifname)
    with sock:
        sock.setsockopt(SOL_PACKET, PACKET_FANOUT, 0x4242 | (PACKET_FANOUT_HASH << 16))
        assert pair.a.run(icmp_echo, pair.b.ip, count=2, timeout=2.0) == 2
    deadline = time.monotonic() + 2.0
    while counts[0] == before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert counts[0] > before


METHODS = [pytest.param("link", marks=needs_link), "attach"]


@pytest.mark.parametrize("method", METHODS)
def test_flow_dissector_runs(counts: Map, method: str) -> None:
    with (
        veth_pair() as pair,
        ebpf.Program.load(PT.FLOW_DISSECTOR, counter(counts, BPF_OK), name="dissect") as prog,
    ):
        # attach from outside the namespace: by object; the attachment enters it when needed
        with attach_flow_dissector(prog, pair.b.ns, method=method) as att:  # type: ignore[call-overload]
            kind = NetNSLink if method == "link" else FlowDissectorAttachment
            assert isinstance(att, kind)
            assert query_netns(AT.FLOW_DISSECTOR, pair.b.ns).prog_ids == (prog.id,)
            _flow_dissector_runs(pair, counts)
        assert query_netns(AT.FLOW_DISSECTOR, pair.b.ns).prog_ids == ()
        with pair.b.enter(), attach_flow_dissector(prog, method=method):  # type: ignore[call-overload]
            assert query_netns(AT.FLOW_DISSECTOR).prog_ids == (prog.id,)
        assert query_netns(AT.FLOW_DISSECTOR, pair.b.ns).prog_ids == ()


def test_flow_dissector_test_run(counts: Map) -> None:
    from ebpf.packet import UDP, Ethernet, IPv4

    frame = bytes(Ethernet() / IPv4(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2))
    with ebpf.Program.load(PT.FLOW_DISSECTOR, counter(counts, BPF_OK)) as prog:
        prog.test_run(frame)
        assert counts[0] == 1


@needs_link
def test_flow_dissector_one_per_namespace(netns: NetNS) -> None:
    with (
        ebpf.Program.load(PT.FLOW_DISSECTOR, [asm.mov(R0, BPF_OK), asm.exit()]) as p1,
        ebpf.Program.load(PT.FLOW_DISSECTOR, [asm.mov(R0, BPF_OK), asm.exit()]) as p2,
        attach_flow_dissector(p1, method="link") as link,
    ):
        with pytest.raises(errors.SyscallError) as exc:
            attach_flow_dissector(p2, method="link")
        assert exc.value.errno == errno.E2BIG
        with pytest.raises(errors.SyscallError) as exc:
            attach_flow_dissector(p2, method="attach")
        assert exc.value.errno == errno.EEXIST
        link.update(p2)
        assert query_netns(AT.FLOW_DISSECTOR).prog_ids == (p2.id,)


def test_inputs_checked(tmp_path: object) -> None:
    with ebpf.Program.load(PT.XDP, [asm.mov(R0, 2), asm.exit()]) as xdp:
        with pytest.raises(ValueError, match="expected SK_LOOKUP"):
            attach_sk_lookup(xdp)
        with pytest.raises(ValueError, match="expected FLOW_DISSECTOR"):
            attach_flow_dissector(xdp)
    with ebpf.Program.load(PT.FLOW_DISSECTOR, [asm.mov(R0, 0), asm.exit()]) as prog:
        with pytest.raises(ValueError, match="not a network namespace"):
            attach_flow_dissector(prog, "/proc/self/ns/mnt")
        with pytest.raises(ValueError, match="method"):
            attach_flow_dissector(prog, method="ioctl")  # type: ignore[call-overload]
