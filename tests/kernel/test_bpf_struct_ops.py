"""``@bpf.struct_ops``: a TCP congestion control written in Python, compiled, registered with
the kernel, picked by a loopback TCP connection in a private network namespace, run, and
unregistered - once through a bpf_link (Linux 6.4) and once by the map update (5.6).

The congestion control is Reno through the kernel's own kfuncs (``tcp_reno_cong_avoid``...)
with counters in a map and a global, and ``ssthresh``/``undo_cwnd`` computed in Python from
``struct tcp_sock`` fields. Each test registers a uniquely named one (the list of congestion
controls is kernel-wide) and removes it in a ``with`` block, also when it fails.
"""

from __future__ import annotations

import socket
import struct
import threading
import uuid
from typing import Any

import pytest

import ebpf
from ebpf import bpf, errors
from ebpf.bpf import u32, u64
from ebpf.features import have_link_type, have_program_type
from ebpf.link.struct_ops import StructOps, StructOpsAttachment, StructOpsLink, attach_struct_ops

pytestmark = pytest.mark.requires(have_program_type, ebpf.ProgramType.STRUCT_OPS)

AVAILABLE = "/proc/sys/net/ipv4/tcp_available_congestion_control"
INIT, CONG_AVOID, ACK_EVENT, RELEASE = range(4)

calls = bpf.Array(u64, max_entries=4)
max_cwnd = bpf.var(u32)
events = bpf.var(u64)
CA_EVENT_TX_START = 0


def reno(name: str, link: bool | None = None) -> Any:
    """A Reno congestion control called ``name`` that counts its callbacks."""

    @bpf.struct_ops("tcp_congestion_ops", name=name, link=link)
    class PyReno:
        flags = 0

        def init(sk) -> None:
            calls[INIT] += 1

        def release(sk) -> None:
            calls[RELEASE] += 1

        def ssthresh(tp: bpf.kernel.tcp_sock) -> u32:
            """Half the window, at least 2 segments (tcp_reno_ssthresh)."""
            return max(tp.snd_cwnd >> 1, 2)

        def undo_cwnd(tp: bpf.kernel.tcp_sock) -> u32:
            return max(tp.snd_cwnd, tp.prior_cwnd)

        def cong_avoid(sk, ack: u32, acked: u32) -> None:
            calls[CONG_AVOID] += 1
            bpf.kfunc.tcp_reno_cong_avoid(sk, ack, acked)

        def in_ack_event(tp: bpf.kernel.tcp_sock, flags: u32) -> None:
            global max_cwnd
            calls[ACK_EVENT] += 1
            max_cwnd = max(max_cwnd, tp.snd_cwnd)

        def cwnd_event(sk, event) -> None:  # enum tcp_ca_event
            global events
            events |= 1 << (event & 63)

    return PyReno


def aimd(name: str) -> Any:
    """The same callbacks with ``cong_avoid`` in Python: slow start below ``snd_ssthresh``,
    then one segment per window of acked segments, written into ``struct tcp_sock``."""

    @bpf.struct_ops("tcp_congestion_ops", name=name)
    class PyAimd:
        def init(sk) -> None:
            calls[INIT] += 1

        def release(sk) -> None:
            calls[RELEASE] += 1

        def ssthresh(tp: bpf.kernel.tcp_sock) -> u32:
            return max(tp.snd_cwnd >> 1, 2)

        def undo_cwnd(tp: bpf.kernel.tcp_sock) -> u32:
            return max(tp.snd_cwnd, tp.prior_cwnd)

        def cong_avoid(tp: bpf.kernel.tcp_sock, ack: u32, acked: u32) -> None:
            calls[CONG_AVOID] += 1
            if tp.snd_cwnd < tp.snd_ssthresh:  # slow start
                tp.snd_cwnd = min(tp.snd_cwnd + acked, tp.snd_cwnd_clamp)
                return
            tp.snd_cwnd_cnt += acked
            if tp.snd_cwnd_cnt >= tp.snd_cwnd:
                tp.snd_cwnd_cnt -= tp.snd_cwnd
                if tp.snd_cwnd < tp.snd_cwnd_clamp:
                    tp.snd_cwnd += 1

        def in_ack_event(tp: bpf.kernel.tcp_sock, flags: u32) -> None:
            global max_cwnd
            calls[ACK_EVENT] += 1
            max_cwnd = max(max_cwnd, tp.snd_cwnd)

        def cwnd_event(sk, event) -> None:
            global events
            events |= 1 << (event & 63)

    return PyAimd


def unique_name() -> str:
    return "pyreno_" + uuid.uuid4().hex[:8]


def available() -> list[str]:
    with open(AVAILABLE) as f:
        return f.read().split()


def transfer_with(cc: str, size: int = 4_000_000) -> tuple[str, int]:
    """Send ``size`` bytes over loopback TCP with congestion control ``cc``; the socket's
    congestion control name and final ``snd_cwnd`` (TCP_INFO)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.socket() as client:
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, cc.encode())
            client.connect(server.getsockname())
            peer, _ = server.accept()
            with peer:
                got = [0]

                def drain() -> None:
                    while got[0] < size:
                        data = peer.recv(1 << 16)
                        if not data:
                            return
                        got[0] += len(data)

                reader = threading.Thread(target=drain)
                reader.start()
                client.sendall(bytes(size))
                reader.join(timeout=30)
                assert got[0] == size
            raw = client.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16)
            info = client.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    return raw.split(b"\0", 1)[0].decode(), struct.unpack_from("=I", info, 80)[0]


def load(cc: Any) -> bpf.Loaded:
    try:
        return bpf.load(cc)
    except errors.SyscallError as e:
        if e.errno == 524:  # ENOTSUPP: kernel without the tcp_congestion_ops struct_ops
            pytest.skip(f"struct_ops tcp_congestion_ops refused: {e}")
        raise


def check_run(coll: bpf.Loaded, name: str) -> None:
    assert name in available()
    cc, cwnd = transfer_with(name)
    assert cc == name
    assert coll.calls[INIT] >= 1
    assert coll.calls[CONG_AVOID] >= 1
    assert coll.calls[ACK_EVENT] >= 1
    assert coll.calls[RELEASE] >= 1  # the sockets are closed by now
    assert cwnd > 10  # our cong_avoid grew it from the initial 10 (a kfunc or a store)
    assert coll.variables["max_cwnd"].get() > 10  # read from struct tcp_sock
    assert coll.variables["events"].get() & 1 << CA_EVENT_TX_START


@pytest.mark.requires(have_link_type, ebpf.LinkType.STRUCT_OPS)
def test_python_aimd_with_tcp_sock_writes_through_a_link(netns: Any) -> None:
    name = unique_name()
    with load(aimd(name)) as coll:
        ops = coll.PyAimd
        assert isinstance(ops, StructOps) and ops.link_mode
        assert set(ops.programs) == {"init", "release", "ssthresh", "undo_cwnd", "cong_avoid",
                                     "in_ack_event", "cwnd_event"}
        assert name not in available()  # created, not registered yet
        with attach_struct_ops(ops, method="link") as link:
            assert isinstance(link, StructOpsLink)
            assert link.map_id == ops.id
            check_run(coll, name)
        assert name not in available()


def test_python_reno_with_kfuncs_by_map_update(netns: Any) -> None:
    name = unique_name()
    with load(reno(name, link=False)) as coll:
        ops = coll.PyReno
        assert not ops.link_mode
        with attach_struct_ops(ops, method="update") as att:
            assert isinstance(att, StructOpsAttachment)
            check_run(coll, name)
        assert name not in available()


def test_listing_and_declared_values() -> None:
    cc = reno("pyreno_list")
    assert cc.fields == {"name": "pyreno_list", "flags": 0}
    progs = cc.programs
    assert progs["cong_avoid"].section == "struct_ops/cong_avoid"
    assert progs["cong_avoid"].name == "PyReno_cong_avoid"
    listing = cc.asm()
    assert "tcp_congestion_ops.ssthresh" in listing and "call" in listing


def _error(cc: Any) -> bpf.CompileError:
    with pytest.raises(bpf.CompileError) as info:
        bpf.build_spec((cc,))
    return info.value


def _line_of(text: str) -> int:
    with open(__file__) as f:
        for i, line in enumerate(f, 1):
            if text in line:
                return i
    raise AssertionError(text)


def test_unknown_member_is_a_compile_error() -> None:
    @bpf.struct_ops("tcp_congestion_ops", name="pyreno_bad")
    class Bad:
        def ssthresh(sk) -> u32:
            return 2

        def ssthreshold(sk) -> u32:  # the unknown member
            return 2

    e = _error(Bad)
    assert e.filename == __file__ and e.line == _line_of("# the unknown member")
    assert "no member 'ssthreshold'" in e.message and "ssthresh" in e.message


def test_wrong_argument_count_is_a_compile_error() -> None:
    @bpf.struct_ops("tcp_congestion_ops", name="pyreno_bad")
    class Bad:
        def cong_avoid(sk, ack: u32) -> None:  # one argument short
            pass

    e = _error(Bad)
    assert e.filename == __file__ and e.line == _line_of("# one argument short")
    assert "cong_avoid(struct sock *, u32, u32) takes 3 argument(s)" in e.message


def test_bad_declarations_are_compile_errors() -> None:
    @bpf.struct_ops("tcp_congestion_ops")
    class DataAsMethod:
        def name(sk) -> None:  # name is data
            pass

    e = _error(DataAsMethod)
    assert e.line == _line_of("# name is data") and "is a data member" in e.message

    @bpf.struct_ops("tcp_congestion_ops")
    class LongName:
        name = "x" * 16  # too long

    e = _error(LongName)
    assert e.line == _line_of("# too long") and "at most 15 bytes" in e.message

    @bpf.struct_ops("tcp_congestion_ops", name="pyreno_bad")
    class WrongType:
        def ssthresh(sk: u32) -> u32:  # a pointer
            return 2

    e = _error(WrongType)
    assert e.line == _line_of("# a pointer") and "struct sock *" in e.message

    @bpf.struct_ops("tcp_congestion_ops", name="pyreno_bad")
    class BadField:
        def ssthresh(tp: bpf.kernel.tcp_sock) -> u32:
            return tp.snd_cwndd  # a typo

    e = _error(BadField)
    assert e.line == _line_of("# a typo") and "snd_cwnd" in e.message

    with pytest.raises(errors.BPFError, match="no struct no_such_ops_type"):
        bpf.build_spec((bpf.struct_ops("no_such_ops_type")(WrongType.cls),))


def test_kernel_writes_outside_struct_ops_are_compile_errors() -> None:
    @bpf.tp_btf("sched_switch")
    def writer(ctx) -> int:
        ctx.prev.pid = 1  # not struct_ops
        return 0

    with pytest.raises(bpf.CompileError) as info:
        writer.compile()
    assert info.value.line == _line_of("# not struct_ops")
    assert "only by @bpf.struct_ops programs" in info.value.message

    @bpf.struct_ops("tcp_congestion_ops", name="pyreno_bad")
    class Bitfield:
        def ssthresh(tp: bpf.kernel.tcp_sock) -> u32:
            tp.is_cwnd_limited = 1  # a bitfield
            return 2

    e = _error(Bitfield)
    assert e.line == _line_of("# a bitfield") and "bitfield" in e.message


def test_a_field_the_kernel_does_not_let_us_write_is_reported_at_its_line() -> None:
    @bpf.struct_ops("tcp_congestion_ops", name="pyreno_bad")
    class Refused:
        def ssthresh(tp: bpf.kernel.tcp_sock) -> u32:
            tp.srtt_us = 1  # not writable
            return 2

    with pytest.raises(errors.VerifierError) as info:
        bpf.load(Refused).close()
    assert info.value.source is not None and "# not writable" in info.value.source
