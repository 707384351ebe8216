"""struct_ops: a TCP congestion control written with the assembler, registered, used by a TCP
socket over loopback, and removed again. Each test registers its own uniquely named one (the
kernel is shared), and unregisters it in a ``with`` block, also when it fails."""

from __future__ import annotations

import errno
import socket
import threading
import uuid
from collections.abc import Iterator

import pytest

import ebpf
from ebpf import asm, btf, errors
from ebpf._maps import Map
from ebpf.asm import R0, R1, R2, R10, Helper
from ebpf.features import have_link_type, have_program_type
from ebpf.link.struct_ops import (
    StructOps,
    StructOpsAttachment,
    StructOpsLink,
    StructOpsType,
    attach_struct_ops,
    load_struct_ops_program,
)

pytestmark = pytest.mark.requires(have_program_type, ebpf.ProgramType.STRUCT_OPS)
needs_link = pytest.mark.requires(have_link_type, ebpf.LinkType.STRUCT_OPS)

CC = "tcp_congestion_ops"
CONG_AVOID, INIT = 0, 1  # counter slots
AVAILABLE = "/proc/sys/net/ipv4/tcp_available_congestion_control"


def snd_cwnd_offset() -> int:
    return btf.load_kernel().find("tcp_sock", kind=btf.Struct).member("snd_cwnd").byte_offset


def count(m: Map, slot: int) -> list[object]:
    return [
        asm.store_imm(asm.W, R10, -4, slot),
        asm.mov(R2, R10), asm.add(R2, -4),
        asm.load_map(R1, m),
        asm.call(Helper.MAP_LOOKUP_ELEM),
        asm.jeq(R0, 0, f"skip{slot}"),
        asm.mov(R1, 1), asm.atomic_add(asm.DW, R0, R1, 0),
        asm.label(f"skip{slot}"),
    ]


def cc_programs(m: Map) -> dict[str, ebpf.Program]:
    """A Reno-like congestion control that counts its init and cong_avoid calls.

    The callbacks get their arguments as u64s in the context; the ``struct sock *`` is typed
    as ``struct tcp_sock`` for tcp_congestion_ops programs, so ``snd_cwnd`` is readable.
    """
    cwnd = snd_cwnd_offset()
    bodies: dict[str, list[object]] = {
        "ssthresh": [  # max(snd_cwnd / 2, 2)
            asm.load(asm.DW, R1, R1, 0), asm.load(asm.W, R0, R1, cwnd),
            asm.rsh(R0, 1), asm.jge(R0, 2, "ok"), asm.mov(R0, 2), asm.label("ok"), asm.exit(),
        ],
        "undo_cwnd": [asm.load(asm.DW, R1, R1, 0), asm.load(asm.W, R0, R1, cwnd), asm.exit()],
        "cong_avoid": [*count(m, CONG_AVOID), asm.mov(R0, 0), asm.exit()],
        "init": [*count(m, INIT), asm.mov(R0, 0), asm.exit()],
    }
    progs: dict[str, ebpf.Program] = {}
    try:
        for member, insns in bodies.items():
            progs[member] = load_struct_ops_program(CC, member, insns, name=f"cc_{member}")
    except BaseException:
        for p in progs.values():
            p.close()
        raise
    return progs


@pytest.fixture
def counts() -> Iterator[Map]:
    with Map.create(ebpf.MapType.ARRAY, key_size=4, value_size=8, max_entries=2) as m:
        yield m


@pytest.fixture
def programs(counts: Map) -> Iterator[dict[str, ebpf.Program]]:
    progs = cc_programs(counts)
    try:
        yield progs
    finally:
        for p in progs.values():
            p.close()


def unique_name() -> str:
    return "pyebpf_" + uuid.uuid4().hex[:8]


def available() -> list[str]:
    with open(AVAILABLE) as f:
        return f.read().split()


def transfer_with(cc: str, size: int = 2_000_000) -> str:
    """Send ``size`` bytes over loopback TCP with congestion control ``cc``; return what the
    socket reports as its congestion control."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.socket() as client:
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, cc.encode())
            client.connect(server.getsockname())
            peer, _ = server.accept()
            with peer:
                got = 0

                def drain() -> None:
                    nonlocal got
                    while got < size:
                        data = peer.recv(1 << 16)
                        if not data:
                            return
                        got += len(data)

                reader = threading.Thread(target=drain)
                reader.start()
                client.sendall(bytes(size))
                reader.join(timeout=30)
                assert got == size
            raw = client.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16)
            return raw.split(b"\0", 1)[0].decode()


@needs_link
def test_tcp_congestion_control_through_a_link(counts: Map,
                                               programs: dict[str, ebpf.Program]) -> None:
    name = unique_name()
    with StructOps.create(CC, programs, fields={"name": name}) as ops:
        with attach_struct_ops(ops) as link:
            assert isinstance(link, StructOpsLink)
            assert link.map_id == ops.id
            assert link.info().type is ebpf.LinkType.STRUCT_OPS
            assert name in available()
            assert transfer_with(name) == name
            assert counts[INIT] >= 1  # callbacks of our table ran for the socket
            assert counts[CONG_AVOID] >= 1
        assert name not in available()


def test_tcp_congestion_control_through_map_update(counts: Map,
                                                   programs: dict[str, ebpf.Program]) -> None:
    name = unique_name()
    with StructOps.create(CC, programs, fields={"name": name}, link=False) as ops:
        with attach_struct_ops(ops, method="update") as att:
            assert isinstance(att, StructOpsAttachment)
            assert name in available()
            assert transfer_with(name) == name
            assert counts[INIT] >= 1
            with pytest.raises(errors.NotSupportedError):
                att.pin("/sys/fs/bpf/never")
        assert name not in available()


@needs_link
def test_link_update_swaps_the_table(counts: Map, programs: dict[str, ebpf.Program]) -> None:
    name = unique_name()
    with (
        StructOps.create(CC, programs, fields={"name": name}) as first,
        StructOps.create(CC, programs, fields={"name": name}) as second,
        attach_struct_ops(first) as link,
    ):
        with pytest.raises(errors.SyscallError):  # the expected table is not registered
            link.update(second, expected=second)
        link.update(second, expected=first)
        assert link.map_id == second.id
        assert transfer_with(name) == name


@needs_link
def test_duplicate_name_is_eexist(programs: dict[str, ebpf.Program]) -> None:
    name = unique_name()
    with (
        StructOps.create(CC, programs, fields={"name": name}) as a,
        StructOps.create(CC, programs, fields={"name": name}) as b,
        attach_struct_ops(a),
        pytest.raises(errors.SyscallError) as exc,
    ):
        attach_struct_ops(b)
    assert exc.value.errno == errno.EEXIST


def test_layout_from_btf() -> None:
    t = StructOpsType.lookup(CC)
    assert t.member("ssthresh").is_function and t.member("ssthresh").index == 0
    assert t.member("name").is_char_array and t.member("name").size == 16
    assert t.value_size >= t.data_offset + t.size
    with pytest.raises(errors.NotSupportedError):
        StructOpsType.lookup("no_such_ops")


def test_inputs_checked(programs: dict[str, ebpf.Program]) -> None:
    with pytest.raises(ValueError, match="no member"):
        StructOps.create(CC, {"nope": programs["init"]})
    with pytest.raises(ValueError, match="data member"):
        StructOps.create(CC, {"name": programs["init"]})
    with pytest.raises(ValueError, match="function pointer"):
        StructOps.create(CC, programs, fields={"init": 1})
    with pytest.raises(ValueError, match="at most 15"):
        StructOps.create(CC, programs, fields={"name": "x" * 16})
    with pytest.raises(ValueError, match="member index"):
        StructOps.create(CC, {"ssthresh": programs["init"]})
    with pytest.raises(ValueError, match="not a function pointer"):
        load_struct_ops_program(CC, "flags", [asm.mov(R0, 0), asm.exit()])
    with ebpf.Program.load(ebpf.ProgramType.XDP, [asm.mov(R0, 2), asm.exit()]) as xdp, \
            pytest.raises(ValueError, match="expected STRUCT_OPS"):
        StructOps.create(CC, {"init": xdp})
    with pytest.raises(TypeError):
        attach_struct_ops(programs["init"])  # type: ignore[call-overload]
