"""The smaller clj-ebpf gaps on the kernel: atomics and a CAS loop, a tail-call chain, TCP
seq/ack/window and UDP payload loads, DNS/DHCP predicates, IPv4-mapped 16-byte addresses,
weighted random pick, timestamps, and the retry helpers."""

from __future__ import annotations

import errno
import struct
import time

import pytest

import ebpf
from ebpf import asm, errors, packet
from ebpf.asm import R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10
from ebpf.hooks import xdp
from ebpf.lib import atomics, fp, maps, tail_calls
from ebpf.lib import helpers as h
from ebpf.lib import time as btime
from ebpf.lib.net import EtherType, ethernet, ipv4, l4, tcp, udp
from ebpf.platform import Capability
from ebpf.script import TailCallChain, retry

pytestmark = pytest.mark.capabilities(Capability.BPF)

XDP = ebpf.ProgramType.XDP
ARRAY = ebpf.MapType.ARRAY
PKT = bytes(64)


def _value0(m: ebpf.Map, dst: asm.Register = R6) -> list[asm.Item]:
    return [asm.store_imm(asm.W, R10, -4, 0), *h.map_lookup_elem(m, fp(-4), dst=dst),
            asm.jeq(dst, 0, "out")]


def test_atomics_and_cas_loop() -> None:
    with ebpf.Map.create(ARRAY, key_size=4, value_size=32, max_entries=1) as m:
        def bump_max(old: asm.Register, new: asm.Register) -> list[asm.Item]:
            # new = max(old, seq) where seq = R7 (the run number from the counter)
            return [asm.mov(new, R7), asm.jge(new, old, "keep"), asm.mov(new, old),
                    asm.label("keep")]
        items: list[asm.Item] = [
            *_value0(m),
            *atomics.increment(R6, 0, by=3, tmp=R1),              # +3 per run
            *atomics.decrement(R6, 8, tmp=R1),                    # -1 per run
            *atomics.set_bit(R6, 5, 16, tmp=R1),
            *atomics.toggle_bit(R6, 0, 16, tmp=R1),
            *atomics.increment(R6, 24, tmp=R7, fetch=True),       # R7 = old value (run no.)
            atomics.cas_loop(R6, 0, bump_max, new=R8, on_fail="out"),
            asm.label("out"), asm.mov(R0, 2), asm.exit(),
        ]
        m[0] = struct.pack("<qqQQ", 0, 0, 1 << 40 | 1 << 0 | 1, 0)
        with ebpf.Program.load(XDP, items) as prog:
            prog.test_run(data=PKT, repeat=11)
        a, b, bits, runs = struct.unpack("<qqQQ", m[0])
        assert runs == 11 and b == -11
        assert a == 33  # max(3*k, k-1) is always 3*k
        assert bits == (1 << 40) | (1 << 5) | (1 if 11 % 2 == 0 else 0)
    with pytest.raises(errors.AssemblerError):
        atomics.set_bit(R6, 64, tmp=R1)


def test_tail_call_chain() -> None:
    with ebpf.Program.load(XDP, [asm.mov(R0, 42), asm.exit()]) as last, \
            TailCallChain([last], slots=1) as chain:
        first = [asm.mov(R6, R1), *tail_calls.jump(R6, chain.map, 0),
                 asm.mov(R0, 1), asm.exit()]
        empty = [asm.mov(R6, R1), *tail_calls.jump(R6, chain.map, 1),
                 asm.mov(R0, 7), asm.exit()]
        with ebpf.Program.load(XDP, first) as p0, ebpf.Program.load(XDP, empty) as p1:
            assert p0.test_run(data=PKT).retval == 42
            assert p1.test_run(data=PKT).retval == 7   # empty slot falls through
            chain.clear(0)
            assert p0.test_run(data=PKT).retval == 1


def _l4_prologue(proto: int) -> list[asm.Item]:
    """R9 l3, R4 l4 (bounds-checked for 20 bytes), R8 end."""
    return [xdp.prologue(ctx=R6, data=R7, data_end=R8),
            ethernet.parse(R7, R8, proto=R2, l3=R9, on_short="out", tmp=R1),
            asm.jne(R2, EtherType.IPV4, "out"),
            ipv4.parse(R9, R8, l4=R4, proto=R2, on_short="out", tmp=R1),
            asm.jne(R2, proto, "out")]


def test_tcp_fields_and_ipv4_mapped() -> None:
    frame = bytes(packet.Ethernet() / packet.IPv4(src="10.1.2.3", dst="10.0.0.2")
                  / packet.TCP(sport=1, dport=2, seq=0xDEADBEEF, ack=12345, window=4321))
    with ebpf.Map.create(ARRAY, key_size=4, value_size=32, max_entries=1) as out:
        items: list[asm.Item] = [
            *_l4_prologue(l4.Proto.TCP),
            tcp.parse(R4, R8, on_short="out", tmp=R1),
            *l4.ipv4_mapped(-32, R9, ipv4.SADDR, tmp=R1),
            asm.mov(R7, R4),
            *_value0(out, R6),
            *l4.tcp_seq(R1, R7), asm.store(asm.W, R6, 0, R1),
            *l4.tcp_ack(R1, R7), asm.store(asm.W, R6, 4, R1),
            *l4.tcp_window(R1, R7), asm.store(asm.W, R6, 8, R1),
            *[x for i in range(0, 16, 8)
              for x in (asm.load(asm.DW, R1, R10, -32 + i), asm.store(asm.DW, R6, 16 + i, R1))],
            asm.label("out"), asm.mov(R0, 2), asm.exit(),
        ]
        with ebpf.Program.load(XDP, items) as prog:
            prog.test_run(data=frame)
        seq, ack, win = struct.unpack_from("<III", out[0])
        assert (seq, ack, win) == (0xDEADBEEF, 12345, 4321)
        import ipaddress
        assert ipaddress.IPv6Address(out[0][16:32]).ipv4_mapped == ipaddress.IPv4Address(
            "10.1.2.3")


@pytest.mark.parametrize(("sport", "dport", "want"), [
    (40000, 53, 1), (53, 40000, 1), (68, 67, 2), (67, 68, 2), (68, 68, 0), (1000, 2000, 0)])
def test_dns_dhcp_predicates_and_udp_payload(sport: int, dport: int, want: int) -> None:
    frame = bytes(packet.Ethernet() / packet.IPv4(src="10.0.0.1", dst="10.0.0.2")
                  / packet.UDP(sport=sport, dport=dport) / b"\x7fpayload")
    items: list[asm.Item] = [
        *_l4_prologue(l4.Proto.UDP),
        udp.parse(R4, R8, on_short="out", tmp=R1, sport=R2, dport=R3),
        l4.udp_payload(R5, R4, R8, 1, "out", tmp=R1),
        asm.load(asm.B, R7, R5, 0),                   # first payload byte, 0x7f
        *l4.if_dns(R2, R3, "dns"), l4.if_dhcp(R2, R3, "dhcp"),
        asm.mov(R0, R7), asm.lsh(R0, 8), asm.exit(),
        asm.label("dns"), asm.mov(R0, R7), asm.lsh(R0, 8), asm.or_(R0, 1), asm.exit(),
        asm.label("dhcp"), asm.mov(R0, R7), asm.lsh(R0, 8), asm.or_(R0, 2), asm.exit(),
        asm.label("out"), asm.mov(R0, 0), asm.exit(),
    ]
    with ebpf.Program.load(XDP, items) as prog:
        assert prog.test_run(data=frame).retval == 0x7F00 | want
    assert (int(l4.Proto.GRE), int(l4.Proto.SCTP)) == (47, 132)


def test_weighted_pick_distribution() -> None:
    weights = [0, 3, 1, 0]
    with ebpf.Map.create(ARRAY, key_size=4, value_size=8, max_entries=4) as counts:
        items: list[asm.Item] = [
            btime.weighted_pick(weights, R6),
            maps.array_add(counts, R6, key_stack=-4),
            asm.mov(R0, 2), asm.exit(),
        ]
        with ebpf.Program.load(XDP, items) as prog:
            prog.test_run(data=PKT, repeat=8000)
        got = [counts[i] for i in range(4)]
    assert sum(got) == 8000 and got[0] == got[3] == 0
    assert 5600 < got[1] < 6400 and 1600 < got[2] < 2400, got
    with pytest.raises(errors.AssemblerError):
        btime.weighted_pick([0, 0], R6)


def test_store_timestamp() -> None:
    with ebpf.Map.create(ebpf.MapType.HASH, key_size=4, value_size=8, max_entries=4) as m:
        def prog(flags: int) -> list[asm.Item]:
            return [asm.store_imm(asm.W, R10, -4, 7),
                    *maps.store_timestamp(m, fp(-4), stack=-16, flags=flags),
                    asm.mov(R0, 2), asm.exit()]
        with ebpf.Program.load(XDP, prog(maps.BPF_EXIST)) as refresh, \
                ebpf.Program.load(XDP, prog(maps.BPF_NOEXIST)) as first:
            refresh.test_run(data=PKT)
            assert 7 not in m                     # BPF_EXIST: absent keys stay absent
            t0 = time.monotonic_ns()
            first.test_run(data=PKT)
            t1 = time.monotonic_ns()
            assert t0 <= m[7] <= t1
            stamp = m[7]
            first.test_run(data=PKT)
            assert m[7] == stamp                  # NOEXIST keeps the first time
            refresh.test_run(data=PKT)
            assert m[7] > stamp


def test_retry_helpers() -> None:
    calls: list[float] = []
    state = {"n": 0}

    def flaky() -> ebpf.Map:
        state["n"] += 1
        if state["n"] < 3:
            raise OSError(errno.EAGAIN, "try again")
        return ebpf.Map.create(ARRAY, key_size=4, value_size=8, max_entries=1)

    with retry.retry(flaky, attempts=3, sleep=calls.append) as m:
        assert m.max_entries == 1
    assert state["n"] == 3 and calls == [0.01, 0.02]
    with pytest.raises(errors.VerifierError) as ei:
        retry.retry(lambda: ebpf.Program.load(XDP, [asm.exit()]), sleep=calls.append)
    assert not retry.is_transient(ei.value) and len(calls) == 2
    assert retry.is_permission(PermissionError(errno.EPERM, "no"))
    assert retry.is_not_supported(errors.NotSupportedError("x"))
    assert retry.is_not_found(KeyError(1)) and retry.errno_of(ei.value) == errno.EACCES


def test_sock_key_from_sock_ops_matches_python(cgroup: str) -> None:
    """A sock_ops program in a child cgroup stores the v4 key of every connection it sees
    established; the key Python builds from the addresses finds it, reversed too."""
    import socket
    import subprocess
    import sys

    from ebpf.lib import sockkey
    from ebpf.link.cgroup import attach_cgroup

    with ebpf.Map.create(ebpf.MapType.HASH, key_size=16, value_size=4, max_entries=8) as m, \
            ebpf.Map.create(ebpf.MapType.HASH, key_size=16, value_size=4,
                            max_entries=8) as rev:
        items: list[asm.Item] = [
            asm.mov(R6, R1),
            asm.load(asm.W, R7, R6, 0),                        # op
            asm.jne(R7, 4, "out"),                             # ACTIVE_ESTABLISHED_CB
            *sockkey.store_key_v4(R6, -16, tmp=R1),
            *sockkey.store_key_v4(R6, -32, tmp=R1, reverse=True),
            asm.store(asm.W, R10, -36, R7),
            *h.map_update_elem(m, fp(-16), fp(-36)),
            *h.map_update_elem(rev, fp(-32), fp(-36)),
            asm.label("out"), asm.mov(R0, 1), asm.exit(),
        ]
        code = (f"open({cgroup + '/cgroup.procs'!r}, 'w').write('0')\n"
                "import socket, sys\n"
                "s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))\n"
                "print(s.getsockname()[1]); s.close()\n")
        with ebpf.Program.load(ebpf.ProgramType.SOCK_OPS, items) as prog, \
                attach_cgroup(prog, cgroup, ebpf.AttachType.CGROUP_SOCK_OPS), \
                socket.socket() as server:
            server.bind(("127.0.0.1", 0))
            server.listen()
            port = server.getsockname()[1]
            out = subprocess.run([sys.executable, "-c", code, str(port)], capture_output=True,
                                 text=True, timeout=60)
            assert out.returncode == 0, out.stderr
            client = int(out.stdout)
        key = sockkey.key_v4(("127.0.0.1", client), ("127.0.0.1", port))
        assert m[key] == 4, list(m.keys())
        assert rev[sockkey.key_v4(("127.0.0.1", port), ("127.0.0.1", client))] == 4
    assert len(sockkey.key_v6(("::1", 1), ("::1", 2))) == sockkey.KEY_V6_SIZE
    with pytest.raises(errors.AssemblerError):
        sockkey.store_key_v4(R6, -12, tmp=R1)


def test_task_iterator_template() -> None:
    """The task iterator template lists our process, with binary rows decoded in Python."""
    import os

    from ebpf.lib import templates
    from ebpf.link.iter import attach_iter

    insns = templates.task_iterator(("tgid", "pid"))
    try:
        prog = ebpf.Program.load(ebpf.ProgramType.TRACING, insns,
                                 expected_attach_type=ebpf.AttachType.TRACE_ITER,
                                 attach_to="task")
    except errors.SyscallError as e:
        if e.errno == errno.EPERM:
            pytest.skip(f"iterators: {e.cmd} refused with EPERM on this kernel")
        raise
    with prog, attach_iter(prog) as it:
        rows = templates.task_rows(it.read())
    assert (os.getpid(), os.getpid()) in rows and len({r[0] for r in rows}) > 3
    with pytest.raises(errors.AssemblerError):
        templates.task_iterator(("comm",))


def test_next_key_and_compare_and_set() -> None:
    """Public get-next-key and MapEntry.compare_and_set against a value a program bumps."""
    with ebpf.Map.create(ebpf.MapType.HASH, key_size=4, value_size=8, max_entries=4) as m:
        assert m.next_key() is None
        m[5] = 0
        m[6] = 1
        first = m.next_key()
        assert {first, m.next_key(first)} == {5, 6}
        assert m.next_key(m.next_key(first)) is None
        items: list[asm.Item] = [asm.store_imm(asm.W, R10, -4, 5),
                                 *h.map_lookup_elem(m, fp(-4), dst=R6), asm.jeq(R6, 0, "out"),
                                 *atomics.increment(R6, 0, tmp=R1),
                                 asm.label("out"), asm.mov(R0, 2), asm.exit()]
        e = m.entry(5)
        seen = e.get()
        with ebpf.Program.load(XDP, items) as prog:
            prog.test_run(data=PKT)          # the program moved the value on
        assert not e.compare_and_set(seen, 100) and m[5] == 1
        assert e.compare_and_set(1, 100) and m[5] == 100
        assert not m.entry(7).compare_and_set(None, 1) and 7 not in m


def test_aimd_congestion_control_template() -> None:
    """The AIMD struct_ops template registers, carries a loopback TCP transfer and grows the
    congestion window from the initial 10 segments (slow start + additive increase)."""
    import socket
    import threading
    import uuid

    from ebpf.features import have_program_type
    from ebpf.lib import templates
    from ebpf.link.struct_ops import StructOps, attach_struct_ops, load_struct_ops_program

    if have_program_type(ebpf.ProgramType.STRUCT_OPS) is not None:
        pytest.skip("no struct_ops programs on this kernel")
    progs: dict[str, ebpf.Program] = {}
    name = "pyebpf_" + uuid.uuid4().hex[:8]
    try:
        for member, insns in templates.aimd_congestion_control().items():
            progs[member] = load_struct_ops_program("tcp_congestion_ops", member, insns,
                                                    name=f"aimd_{member}")
        with StructOps.create("tcp_congestion_ops", progs, fields={"name": name}) as ops, \
                attach_struct_ops(ops), socket.socket() as server:
            server.bind(("127.0.0.1", 0))
            server.listen()
            with socket.socket() as client:
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, name.encode())
                client.connect(server.getsockname())
                peer, _ = server.accept()
                size, got = 4_000_000, [0]

                def drain() -> None:
                    while got[0] < size:
                        data = peer.recv(1 << 16)
                        if not data:
                            return
                        got[0] += len(data)

                with peer:
                    reader = threading.Thread(target=drain)
                    reader.start()
                    client.sendall(bytes(size))
                    reader.join(timeout=30)
                assert got[0] == size
                cc = client.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16)
                info = client.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
        assert cc.split(b"\0")[0].decode() == name
        snd_cwnd = struct.unpack_from("<I", info, 80)[0]
        assert snd_cwnd > 10
    finally:
        for p in progs.values():
            p.close()
    with pytest.raises(errors.AssemblerError):
        templates.aimd_congestion_control(decrease_shift=0)
