"""Socket filters and sockmap programs on loopback sockets.

Nothing here is global: a socket filter sees one socket, and the sockmap programs only the
sockets put into the test's own map.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator

import pytest

import ebpf
from ebpf import asm, errors
from ebpf._maps import Map
from ebpf.asm import R0, R1, R2, R10, Helper
from ebpf.features import have_link_type
from ebpf.link.socket import (
    ReuseportAttachment,
    SocketFilter,
    SockmapAttachment,
    SockmapLink,
    attach_reuseport,
    attach_socket_filter,
    attach_sockmap,
)

AT, PT = ebpf.AttachType, ebpf.ProgramType
SK_PASS = 1


def ret(value: int) -> list[object]:
    return [asm.mov(R0, value), asm.exit()]


def counter(m: Map, slot: int, result: int) -> list[object]:
    return [
        asm.store_imm(asm.W, R10, -4, slot),
        asm.mov(R2, R10), asm.add(R2, -4),
        asm.load_map(R1, m),
        asm.call(Helper.MAP_LOOKUP_ELEM),
        asm.jeq(R0, 0, "out"),
        asm.mov(R1, 1), asm.atomic_add(asm.DW, R0, R1, 0),
        asm.label("out"),
        asm.mov(R0, result), asm.exit(),
    ]


@pytest.fixture
def udp_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx,
    ):
        rx.bind(("127.0.0.1", 0))
        rx.settimeout(2.0)
        tx.connect(rx.getsockname())
        yield rx, tx


# --- socket filter -----------------------------------------------------------------------------


def test_socket_filter_trims_packets(udp_pair: tuple[socket.socket, socket.socket]) -> None:
    rx, tx = udp_pair
    # A UDP socket's filter sees the packet from the UDP header: keep 8 + 4 bytes.
    with ebpf.Program.load(PT.SOCKET_FILTER, ret(8 + 4), name="trim") as prog:
        with attach_socket_filter(prog, rx) as att:
            assert isinstance(att, SocketFilter)
            tx.send(b"hello, world")
            assert rx.recv(100) == b"hell"
        tx.send(b"hello, world")
        assert rx.recv(100) == b"hello, world"


def test_socket_filter_drops_and_counts(udp_pair: tuple[socket.socket, socket.socket]) -> None:
    rx, tx = udp_pair
    with (
        Map.create(ebpf.MapType.ARRAY, key_size=4, value_size=8, max_entries=1) as counts,
        ebpf.Program.load(PT.SOCKET_FILTER, counter(counts, 0, 0), name="drop") as prog,
    ):
        att = attach_socket_filter(prog, rx.fileno())  # a raw fd works too
        try:
            for _ in range(3):
                tx.send(b"x")
            rx.settimeout(0.2)
            with pytest.raises(TimeoutError):
                rx.recv(100)
            assert counts[0] == 3
        finally:
            att.detach()
        att.detach()  # idempotent
        tx.send(b"y")
        assert rx.recv(100) == b"y"


def test_socket_filter_detach_after_close() -> None:
    with ebpf.Program.load(PT.SOCKET_FILTER, ret(0)) as prog:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        att = attach_socket_filter(prog, s)
        s.close()
        att.detach()  # the socket went first: nothing to do, no error


def test_reuseport_selects_by_program() -> None:
    with ebpf.Program.load(PT.SK_REUSEPORT, ret(SK_PASS), name="reuseport") as prog:
        socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
        try:
            for s in socks:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            socks[0].bind(("127.0.0.1", 0))
            socks[1].bind(socks[0].getsockname())
            with attach_reuseport(prog, socks[0]) as att:
                assert isinstance(att, ReuseportAttachment)
        finally:
            for s in socks:
                s.close()


def test_socket_filter_inputs() -> None:
    with ebpf.Program.load(PT.XDP, ret(2)) as xdp, socket.socket() as s:
        with pytest.raises(ValueError, match="expected SOCKET_FILTER"):
            attach_socket_filter(xdp, s)
        with pytest.raises(ValueError, match="expected SK_REUSEPORT or SOCKET_FILTER"):
            attach_reuseport(xdp, s)
    with ebpf.Program.load(PT.SOCKET_FILTER, ret(0)) as prog:
        closed = socket.socket()
        closed.close()
        with pytest.raises(ValueError, match="closed"):
            attach_socket_filter(prog, closed)
        with pytest.raises(TypeError):
            attach_socket_filter(prog, "eth0")  # type: ignore[arg-type]


# --- sockmap -----------------------------------------------------------------------------------

METHODS = [pytest.param("link", marks=pytest.mark.requires(have_link_type, ebpf.LinkType.SOCKMAP)),
           "attach"]


@pytest.fixture
def tcp_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        client = socket.create_connection(server.getsockname(), timeout=2.0)
        peer, _ = server.accept()
        peer.settimeout(2.0)
        with client, peer:
            yield client, peer


@pytest.mark.parametrize("map_type", [ebpf.MapType.SOCKMAP, ebpf.MapType.SOCKHASH])
@pytest.mark.parametrize("method", METHODS)
def test_sk_msg_and_sk_skb_on_sockmap(tcp_pair: tuple[socket.socket, socket.socket],
                                      method: str, map_type: ebpf.MapType) -> None:
    client, peer = tcp_pair
    with (
        Map.create(ebpf.MapType.ARRAY, key_size=4, value_size=8, max_entries=2) as counts,
        Map.create(map_type, key_size=4, value_size=4, max_entries=2) as socks,
        ebpf.Program.load(PT.SK_MSG, counter(counts, 0, SK_PASS), name="msg_count") as msg,
        ebpf.Program.load(PT.SK_SKB, counter(counts, 1, SK_PASS), name="skb_count",
                          expected_attach_type=AT.SK_SKB_STREAM_VERDICT) as skb,
        attach_sockmap(msg, socks, method=method) as a_msg,  # type: ignore[call-overload]
        attach_sockmap(skb, socks, method=method) as a_skb,  # type: ignore[call-overload]
    ):
        kind = SockmapLink if method == "link" else SockmapAttachment
        assert isinstance(a_msg, kind) and isinstance(a_skb, kind)
        if isinstance(a_msg, SockmapLink):
            assert a_msg.attach_type is AT.SK_MSG_VERDICT
            assert a_skb.attach_type is AT.SK_SKB_STREAM_VERDICT
            assert a_msg.map_id == socks.id
        socks[0] = client.fileno()
        socks[1] = peer.fileno()
        client.sendall(b"through the sockmap")
        got = b""
        while len(got) < len(b"through the sockmap"):
            got += peer.recv(100)
        assert got == b"through the sockmap"
        assert counts[0] >= 1  # sk_msg ran on the send
        assert counts[1] >= 1  # sk_skb verdict ran on the receive
        del socks[0]
        del socks[1]


def test_sockmap_attach_replaces_and_link_is_exclusive() -> None:
    with (
        Map.create(ebpf.MapType.SOCKMAP, key_size=4, value_size=4, max_entries=1) as socks,
        ebpf.Program.load(PT.SK_MSG, ret(SK_PASS)) as p1,
        ebpf.Program.load(PT.SK_MSG, ret(SK_PASS)) as p2,
    ):
        with attach_sockmap(p1, socks, method="attach"), \
                attach_sockmap(p2, socks, method="attach"):
            pass  # PROG_ATTACH replaces the program of that attach type
        if ebpf.features.supports(have_link_type, ebpf.LinkType.SOCKMAP):
            with attach_sockmap(p1, socks, method="link"):
                with pytest.raises(errors.SyscallError) as exc:
                    attach_sockmap(p2, socks, method="link")
                assert exc.value.errno == errno.EBUSY


def test_sockmap_inputs() -> None:
    with (
        Map.create(ebpf.MapType.SOCKMAP, key_size=4, value_size=4, max_entries=1) as socks,
        Map.create(ebpf.MapType.ARRAY, key_size=4, value_size=4, max_entries=1) as array,
        ebpf.Program.load(PT.SK_SKB, ret(SK_PASS)) as skb,
        ebpf.Program.load(PT.SK_MSG, ret(SK_PASS)) as msg,
        ebpf.Program.load(PT.XDP, ret(2)) as xdp,
    ):
        with pytest.raises(ValueError, match="attach_type is required"):
            attach_sockmap(skb, socks)
        with pytest.raises(ValueError, match="expected SK_SKB or SK_MSG"):
            attach_sockmap(xdp, socks)
        with pytest.raises(ValueError, match="expected SK_SKB"):
            attach_sockmap(msg, socks, AT.SK_SKB_STREAM_PARSER)
        with pytest.raises(ValueError, match="not a sockmap attach type"):
            attach_sockmap(msg, socks, AT.XDP)
        with pytest.raises(ValueError, match="expected SOCKMAP or SOCKHASH"):
            attach_sockmap(msg, array)
