"""ebpf.lib.net on the kernel: parsers, byte order, checksums and NAT under BPF_PROG_TEST_RUN.

Every program is built with the library, loaded, and run on frames from ebpf.packet; the
expected results come from how the test built the frame (header lengths, field values), and
rewritten frames are checked with ebpf.packet's own checksum computation.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterator

import pytest

import ebpf
from ebpf import asm, packet
from ebpf.asm import R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10
from ebpf.hooks import tc, xdp
from ebpf.lib import fp, maps
from ebpf.lib.net import (
    EtherType,
    IPProto,
    byteorder,
    checksum,
    ethernet,
    icmp,
    ipv4,
    ipv6,
    nat,
    tcp,
    udp,
)
from ebpf.lib.structs import Struct
from ebpf.platform import Capability

pytestmark = pytest.mark.capabilities(Capability.BPF)

MAC1, MAC2 = "02:00:00:00:00:01", "02:00:00:00:00:02"

Result = Struct("parse_result", [
    ("status", "u32"), ("ethertype", "u16"), ("vid", "u16"), ("l3_off", "u16"),
    ("l4_off", "u16"), ("l4proto", "u8"), ("icmp_type", "u8"), ("tcp_flags", "u8"),
    ("sport", "u16"), ("dport", "u16"),
])
OK, SHORT, INVALID, FRAGMENT = 0, 1, 2, 3
RES = -Result.size - 8 & ~7  # fp offset of the result record
KEY = -4


def _store(field: str, src: asm.Register | int) -> asm.Instruction:
    return Result.store(R10, field, src, off=RES)


def _parser_program(results: ebpf.Map) -> list[asm.Item]:
    """Parse eth -> (vlan x2) -> IPv4/IPv6 (3 ext headers) -> TCP/UDP/ICMP, record it all."""
    return [
        xdp.prologue(ctx=R6, data=R7, data_end=R8),
        Result.zero(R10, RES),
        ethernet.parse(R7, R8, proto=R2, l3=R9, on_short="short", tmp=R1, vlan_tags=2, vid=R3),
        _store("ethertype", R2), _store("vid", R3),
        asm.jeq(R2, EtherType.IPV4, "ipv4"),
        asm.jeq(R2, EtherType.IPV6, "ipv6"),
        asm.ja("done"),
        asm.label("ipv4"),
        ipv4.parse(R9, R8, l4=R4, proto=R2, on_short="short", tmp=R1, on_invalid="invalid",
                   on_fragment="fragment"),
        asm.ja("l4"),
        asm.label("ipv6"),
        ipv6.parse(R9, R8, l4=R4, proto=R2, on_short="short", tmp=R1, max_ext=3,
                   on_fragment="fragment", on_invalid="invalid"),
        asm.label("l4"),
        asm.mov(R1, R9), asm.sub(R1, R7), _store("l3_off", R1),
        asm.mov(R1, R4), asm.sub(R1, R7), _store("l4_off", R1),
        _store("l4proto", R2),
        asm.jeq(R2, IPProto.TCP, "tcp"), asm.jeq(R2, IPProto.UDP, "udp"),
        asm.jeq(R2, IPProto.ICMP, "icmp"), asm.jeq(R2, IPProto.ICMPV6, "icmp"),
        asm.ja("done"),
        asm.label("tcp"),
        tcp.parse(R4, R8, on_short="short", tmp=R1, sport=R3, dport=R5, flags=R0),
        _store("sport", R3), _store("dport", R5), _store("tcp_flags", R0), asm.ja("done"),
        asm.label("udp"),
        udp.parse(R4, R8, on_short="short", tmp=R1, sport=R3, dport=R5),
        _store("sport", R3), _store("dport", R5), asm.ja("done"),
        asm.label("icmp"),
        icmp.parse(R4, R8, on_short="short", tmp=R1, type=R3),
        _store("icmp_type", R3), asm.ja("done"),
        asm.label("short"), _store("status", SHORT), asm.ja("done"),
        asm.label("invalid"), _store("status", INVALID), asm.ja("done"),
        asm.label("fragment"), _store("status", FRAGMENT),
        asm.label("done"),
        asm.store_imm(asm.W, R10, KEY, 0),
        maps.update(results, fp(KEY), fp(RES)),
        xdp.ret(xdp.Action.PASS),
    ]


@pytest.fixture(scope="module")
def parser() -> Iterator[tuple[ebpf.Program, ebpf.Map]]:
    with ebpf.Map.create(ebpf.MapType.ARRAY, key_size=4, value=Result.codec,
                         max_entries=1) as results, \
            ebpf.Program.load(ebpf.ProgramType.XDP, _parser_program(results),
                              name="lib_parse") as prog:
        yield prog, results


def _run(parser: tuple[ebpf.Program, ebpf.Map], frame: bytes) -> object:
    prog, results = parser
    results[0] = Result.encode()
    assert prog.test_run(data=frame).retval == xdp.Action.PASS
    return results[0]


def _hopopts(next_header: int) -> bytes:
    return bytes([next_header, 0]) + bytes([1, 4, 0, 0, 0, 0])  # PadN to 8 bytes


def _tcp_bytes(sport: int, dport: int, flags: int) -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, flags, 1024, 0, 0)


# (frame layers, expected fields of Result, the length of the headers parsed)
def _cases() -> list[tuple[str, bytes, dict[str, int]]]:
    eth = packet.Ethernet(src=MAC1, dst=MAC2)
    v4 = packet.IPv4(src="10.0.0.1", dst="10.0.0.2")
    v6 = packet.IPv6(src="fd00::1", dst="fd00::2")
    syn_ack = int(packet.TCPFlags.SYN | packet.TCPFlags.ACK)
    return [
        ("ipv4_udp", bytes(eth / v4 / packet.UDP(sport=1234, dport=53) / b"q"),
         dict(ethertype=0x0800, l3_off=14, l4_off=34, l4proto=17, sport=1234, dport=53)),
        ("ipv4_opts_tcp",
         bytes(eth / packet.IPv4(src="10.0.0.1", dst="10.0.0.2", options=b"\x01" * 8)
               / packet.TCP(sport=40000, dport=443, flags=syn_ack)),
         dict(ethertype=0x0800, l3_off=14, l4_off=42, l4proto=6, sport=40000, dport=443,
              tcp_flags=syn_ack)),
        ("vlan_ipv4_icmp", bytes(eth / packet.Dot1Q(vid=42) / v4 / packet.ICMP(id=7, seq=1)),
         dict(ethertype=0x0800, vid=42, l3_off=18, l4_off=38, l4proto=1, icmp_type=8)),
        ("qinq_ipv6_udp",
         bytes(packet.Ethernet(src=MAC1, dst=MAC2, type=EtherType.QINQ)
               / packet.Dot1Q(vid=100) / packet.Dot1Q(vid=200) / v6
               / packet.UDP(sport=5353, dport=5354) / b"x"),
         dict(ethertype=0x86DD, vid=100, l3_off=22, l4_off=62, l4proto=17, sport=5353,
              dport=5354)),
        ("ipv6_hopopts_tcp",
         bytes(eth / packet.IPv6(src="fd00::1", dst="fd00::2", next_header=0)
               / (_hopopts(6) + _tcp_bytes(1, 2, int(packet.TCPFlags.SYN)))),
         dict(ethertype=0x86DD, l3_off=14, l4_off=62, l4proto=6, sport=1, dport=2,
              tcp_flags=int(packet.TCPFlags.SYN))),
        ("ipv6_icmpv6", bytes(eth / v6 / packet.ICMPv6(type=128)),
         dict(ethertype=0x86DD, l3_off=14, l4_off=54, l4proto=58, icmp_type=128)),
        ("arp", bytes(eth / packet.ARP()), dict(ethertype=0x0806)),
    ]


@pytest.mark.parametrize("name,frame,want", _cases(), ids=[c[0] for c in _cases()])
def test_parse(parser: tuple[ebpf.Program, ebpf.Map], name: str, frame: bytes,
               want: dict[str, int]) -> None:
    assert _run(parser, frame) == Result.decode(Result.encode(status=OK, **want))


def _needed(want: dict[str, int]) -> int:
    """Bytes the parser must see: the end of the last header it reads."""
    if "l4proto" not in want:
        return want.get("l3_off", 14)
    l4 = want["l4_off"]
    return l4 + {6: 20, 17: 8, 1: 8, 58: 8}[want["l4proto"]]


@pytest.mark.parametrize("name,frame,want", _cases(), ids=[c[0] for c in _cases()])
def test_truncated_frames_take_the_short_path(parser: tuple[ebpf.Program, ebpf.Map],
                                              name: str, frame: bytes,
                                              want: dict[str, int]) -> None:
    need = _needed(want)
    for n in range(14, len(frame)):  # test_run needs a whole Ethernet header
        got = _run(parser, frame[:n])
        if n >= need:
            assert got == Result.decode(Result.encode(status=OK, **want)), n
        else:
            assert got.status == SHORT, (n, got)  # type: ignore[attr-defined]


def test_invalid_and_fragments(parser: tuple[ebpf.Program, ebpf.Map]) -> None:
    eth = packet.Ethernet(src=MAC1, dst=MAC2)
    good = bytes(eth / packet.IPv4(src="1.1.1.1", dst="2.2.2.2") / packet.UDP())
    bad_version = bytearray(good)
    bad_version[14] = 0x55
    assert _run(parser, bytes(bad_version)).status == INVALID  # type: ignore[attr-defined]
    bad_ihl = bytearray(good)
    bad_ihl[14] = 0x44
    assert _run(parser, bytes(bad_ihl)).status == INVALID  # type: ignore[attr-defined]
    frag = bytes(eth / packet.IPv4(src="1.1.1.1", dst="2.2.2.2", proto=17, frag_offset=100)
                 / bytes(8))
    assert _run(parser, frag).status == FRAGMENT  # type: ignore[attr-defined]
    first = bytes(eth / packet.IPv4(src="1.1.1.1", dst="2.2.2.2", flags=1)
                  / packet.UDP(sport=9, dport=10))  # MF set, offset 0: has the UDP header
    assert _run(parser, first).dport == 10  # type: ignore[attr-defined]
    v6frag = bytes(eth / packet.IPv6(src="::1", dst="::2", next_header=44)
                   / (bytes([17, 0]) + struct.pack("!HI", 8 << 3, 1) + bytes(8)))
    assert _run(parser, v6frag).status == FRAGMENT  # type: ignore[attr-defined]


# --- byte order -------------------------------------------------------------------------------


def test_network_order_loads_and_stores() -> None:
    """load_be must give 0x0800 for IPv4 and 53 for DNS, store_be must write big-endian:
    with to_be/to_le swapped (the seed library's bug) both fail on little-endian hosts."""
    insns = [
        xdp.prologue(ctx=R6, data=R7, data_end=R8),
        ethernet.parse(R7, R8, proto=R2, l3=R9, on_short="drop", tmp=R1),
        asm.jne(R2, EtherType.IPV4, "drop"),
        ipv4.parse(R9, R8, l4=R4, proto=R2, on_short="drop", tmp=R1),
        udp.parse(R4, R8, on_short="drop", tmp=R1, dport=R3),
        asm.jne(R3, 53, "drop"),
        *ipv4.load(R5, R9, "tot_len"), asm.jne(R5, 20 + 8 + 3, "drop"),
        *ipv4.load(R5, R9, "daddr"), asm.jne32(R5, 0x0A000002, "drop"),
        *ipv4.load(R5, R9, "daddr", host_order=False),
        asm.jne32(R5, ipv4.address("10.0.0.2"), "drop"),
        asm.mov(R5, 8080), *byteorder.store_be(asm.H, R4, udp.DPORT, R5, tmp=R3),
        asm.jne(R5, 8080, "drop"),  # the source register is kept
        *byteorder.store_be_imm(asm.H, R4, udp.SPORT, 0x1234),
        *byteorder.load_be(asm.W, R5, R9, ipv4.SADDR),
        asm.add(R5, 1), *byteorder.store_be(asm.W, R9, ipv4.SADDR, R5),
        xdp.ret(xdp.Action.TX),
        asm.label("drop"), xdp.ret(xdp.Action.DROP),
    ]
    frame = bytes(packet.Ethernet(src=MAC1, dst=MAC2)
                  / packet.IPv4(src="10.0.0.1", dst="10.0.0.2") / packet.UDP(sport=1, dport=53)
                  / b"abc")
    with ebpf.Program.load(ebpf.ProgramType.XDP, insns) as prog:
        res = prog.test_run(data=frame)
    assert res.retval == xdp.Action.TX
    out = packet.parse(res.data or b"")
    assert out[packet.UDP].dport == 8080 and out[packet.UDP].sport == 0x1234
    assert out[packet.IPv4].src == ipaddress.IPv4Address("10.0.0.2")
    assert res.data[34:38] == bytes.fromhex("12341f90")  # type: ignore[index]


# --- checksums --------------------------------------------------------------------------------


def _frames(n: int, seed: int) -> list[bytes]:
    import random

    rnd = random.Random(seed)
    out = []
    for i in range(n):
        ip = packet.IPv4(src=ipaddress.IPv4Address(rnd.getrandbits(32)),
                         dst=ipaddress.IPv4Address(rnd.getrandbits(32)),
                         ttl=rnd.choice([2, 3, 64, 128, 255, rnd.randrange(2, 256)]),
                         id=rnd.getrandbits(16), tos=rnd.getrandbits(8), flags=2 * (i % 2))
        l4: packet.Layer = (packet.UDP(sport=rnd.getrandbits(16), dport=rnd.getrandbits(16))
                            if i % 2 else
                            packet.TCP(sport=rnd.getrandbits(16), dport=rnd.getrandbits(16),
                                       seq=rnd.getrandbits(32), flags=0x18))
        out.append(bytes(packet.Ethernet(src=MAC1, dst=MAC2) / ip / l4
                         / rnd.randbytes(rnd.randrange(0, 40))))
    return out


def test_decrement_ttl_updates_the_header_checksum() -> None:
    insns = [
        xdp.prologue(ctx=R6, data=R7, data_end=R8),
        ethernet.parse(R7, R8, proto=R2, l3=R9, on_short="pass", tmp=R1),
        asm.jne(R2, EtherType.IPV4, "pass"),
        ipv4.parse(R9, R8, l4=R4, proto=R2, on_short="pass", tmp=R1),
        ipv4.decrement_ttl(R9, "expired", acc=R1, tmp=R2, old=R3),
        xdp.ret(xdp.Action.TX),
        asm.label("expired"), xdp.ret(xdp.Action.DROP),
        asm.label("pass"), xdp.ret(xdp.Action.PASS),
    ]
    with ebpf.Program.load(ebpf.ProgramType.XDP, insns) as prog:
        for frame in _frames(200, seed=1):
            res = prog.test_run(data=frame)
            before, after = packet.parse(frame), packet.parse(res.data or b"")
            assert res.retval == xdp.Action.TX
            assert after[packet.IPv4].ttl == before[packet.IPv4].ttl - 1
            assert after.checksum_errors() == []
            # and the whole header equals one built with the lower TTL
            want = packet.IPv4(src=before[packet.IPv4].src, dst=before[packet.IPv4].dst,
                               ttl=before[packet.IPv4].ttl - 1, id=before[packet.IPv4].id,
                               tos=before[packet.IPv4].tos, flags=before[packet.IPv4].flags,
                               proto=before[packet.IPv4].proto,
                               total_length=before[packet.IPv4].total_length)
            assert res.data[14:34] == bytes(want)  # type: ignore[index]
        for ttl in (0, 1):
            frame = bytes(packet.Ethernet() / packet.IPv4(ttl=ttl) / packet.UDP())
            res = prog.test_run(data=frame)
            assert res.retval == xdp.Action.DROP and res.data == frame


def test_ipv4_header_checksum_from_scratch() -> None:
    insns = [
        xdp.prologue(ctx=R6, data=R7, data_end=R8),
        ethernet.parse(R7, R8, proto=R2, l3=R9, on_short="pass", tmp=R1),
        asm.jne(R2, EtherType.IPV4, "pass"),
        ipv4.parse(R9, R8, l4=R4, proto=R2, on_short="pass", tmp=R1),
        asm.store_imm(asm.H, R9, ipv4.CHECK, 0xDEAD),
        checksum.ipv4_header(R9, acc=R1, tmp=R2),
        asm.label("pass"), xdp.ret(xdp.Action.PASS),
    ]
    with ebpf.Program.load(ebpf.ProgramType.XDP, insns) as prog:
        for frame in _frames(50, seed=2):
            assert prog.test_run(data=frame).data == frame


# --- NAT --------------------------------------------------------------------------------------

NatConfig = Struct("nat_config", [("addr", "be32"), ("port", "be16")])


def _xdp_nat_program(cfg: ebpf.Map, side: str) -> list[asm.Item]:
    rewrite = nat.dnat if side == "dst" else nat.snat
    scratch = (R0, R1, R2, R3)
    return [
        asm.mov(R6, R1),
        asm.store_imm(asm.W, R10, KEY, 0),
        *maps.lookup(cfg, fp(KEY), "pass"),
        xdp.data(R7, R6), xdp.data_end(R8, R6),
        NatConfig.load(R5, R0, "addr"), NatConfig.load(R6, R0, "port"),  # wire order
        ethernet.parse(R7, R8, proto=R2, l3=R9, on_short="pass", tmp=R1),
        asm.jne(R2, EtherType.IPV4, "pass"),
        ipv4.parse(R9, R8, l4=R4, proto=R2, on_short="pass", tmp=R1),
        asm.jeq(R2, IPProto.UDP, "udp"), asm.jeq(R2, IPProto.TCP, "tcp"),
        asm.jeq(R2, IPProto.ICMP, "icmp"), asm.ja("pass"),
        asm.label("udp"),
        udp.parse(R4, R8, on_short="pass", tmp=R1),
        rewrite(R9, R4, addr=R5, port=R6, l4proto=IPProto.UDP, regs=scratch),
        asm.ja("tx"),
        asm.label("tcp"),
        tcp.parse(R4, R8, on_short="pass", tmp=R1),
        rewrite(R9, R4, addr=R5, port=R6, l4proto=IPProto.TCP, regs=scratch),
        asm.ja("tx"),
        asm.label("icmp"),
        rewrite(R9, None, addr=R5, regs=scratch),
        asm.label("tx"), xdp.ret(xdp.Action.TX),
        asm.label("pass"), xdp.ret(xdp.Action.PASS),
    ]


def _expected_nat(frame: bytes, side: str, addr: str, port: int) -> bytes:
    """The rewritten frame, built from scratch by ebpf.packet (checksums recomputed)."""
    p = packet.parse(frame)
    ip, l4 = p[packet.IPv4], p.layers[2]
    ip_kw = dict(src=ip.src, dst=ip.dst, ttl=ip.ttl, id=ip.id, tos=ip.tos, flags=ip.flags)
    ip_kw[side] = ipaddress.IPv4Address(addr)
    if isinstance(l4, packet.ICMP):
        new_l4: packet.Layer = l4
    elif isinstance(l4, packet.UDP):
        kw = dict(sport=l4.sport, dport=l4.dport)
        kw["sport" if side == "src" else "dport"] = port
        new_l4 = packet.UDP(**kw, checksum=0 if l4.checksum == 0 else None)
    else:
        assert isinstance(l4, packet.TCP)
        kw = dict(sport=l4.sport, dport=l4.dport, seq=l4.seq, ack=l4.ack, flags=l4.flags,
                  window=l4.window)
        kw["sport" if side == "src" else "dport"] = port
        new_l4 = packet.TCP(**kw)
    return bytes(p.layers[0] / packet.IPv4(**ip_kw) / new_l4 / p.payload)  # type: ignore[arg-type]


def _nat_cases(seed: int) -> list[tuple[bytes, str, int]]:
    import random

    rnd = random.Random(seed)
    frames = _frames(120, seed)
    frames.append(bytes(packet.Ethernet() / packet.IPv4(src="10.1.1.1", dst="10.2.2.2")
                        / packet.UDP(sport=5, dport=6, checksum=0) / b"no checksum"))
    frames.append(bytes(packet.Ethernet() / packet.IPv4(src="10.1.1.1", dst="10.2.2.2")
                        / packet.ICMP(id=1, seq=2) / b"ping"))
    return [(f, str(ipaddress.IPv4Address(rnd.getrandbits(32))), rnd.getrandbits(16))
            for f in frames]


@pytest.mark.parametrize("side", ["dst", "src"])
def test_xdp_nat_rewrites_with_correct_checksums(side: str) -> None:
    with ebpf.Map.create(ebpf.MapType.ARRAY, key_size=4, value_size=8, max_entries=1) as cfg, \
            ebpf.Program.load(ebpf.ProgramType.XDP, _xdp_nat_program(cfg, side)) as prog:
        for frame, addr, port in _nat_cases(seed=3 if side == "dst" else 4):
            cfg[0] = NatConfig.encode(addr=int(ipaddress.IPv4Address(addr)), port=port)
            res = prog.test_run(data=frame)
            assert res.retval == xdp.Action.TX
            assert res.data == _expected_nat(frame, side, addr, port)
            out = packet.parse(res.data)
            if out.get(packet.UDP) is None or out[packet.UDP].checksum != 0:  # 0: none sent
                assert out.checksum_errors() == []


def test_xdp_nat_with_constants() -> None:
    insns = [
        xdp.prologue(ctx=R6, data=R7, data_end=R8),
        ethernet.parse(R7, R8, proto=R2, l3=R9, on_short="pass", tmp=R1),
        ipv4.parse(R9, R8, l4=R4, proto=R2, on_short="pass", tmp=R1),
        asm.jne(R2, IPProto.TCP, "pass"),
        tcp.parse(R4, R8, on_short="pass", tmp=R1),
        nat.dnat(R9, R4, addr="192.168.1.10", port=8080, l4proto=IPProto.TCP,
                 regs=(R0, R1, R2, R3)),
        asm.label("pass"), xdp.ret(xdp.Action.PASS),
    ]
    with ebpf.Program.load(ebpf.ProgramType.XDP, insns) as prog:
        for frame in _frames(20, seed=5)[::2]:  # the TCP ones
            res = prog.test_run(data=frame)
            assert res.data == _expected_nat(frame, "dst", "192.168.1.10", 8080)


def _tc_nat_program(cfg: ebpf.Map, side: str) -> list[asm.Item]:
    rewrite = nat.tc_dnat if side == "dst" else nat.tc_snat
    proto_slot = -16
    return [
        tc.prologue(ctx=R6, data=R7, data_end=R8),
        ethernet.parse(R7, R8, proto=R2, l3=R3, on_short="ok", tmp=R1),
        asm.jne(R2, EtherType.IPV4, "ok"),
        ipv4.parse(R3, R8, l4=R4, proto=R5, on_short="ok", tmp=R1),
        asm.store(asm.B, R10, proto_slot, R5),
        asm.mov(R9, R4), asm.sub(R9, R7),  # l4 offset, kept across the helper calls
        asm.store_imm(asm.W, R10, KEY, 0),
        *maps.lookup(cfg, fp(KEY), "ok"),
        NatConfig.load(R7, R0, "addr"), NatConfig.load(R8, R0, "port"),
        asm.load(asm.B, R5, R10, proto_slot),
        asm.jeq(R5, IPProto.UDP, "udp"), asm.jeq(R5, IPProto.TCP, "tcp"),
        asm.jeq(R5, IPProto.ICMP, "icmp"), asm.ja("ok"),
        asm.label("udp"),
        rewrite(R6, l3_off=14, l4_off=R9, addr=R7, port=R8, l4proto=IPProto.UDP, stack=-32,
                on_error="shot"),
        asm.ja("ok"),
        asm.label("tcp"),
        rewrite(R6, l3_off=14, l4_off=R9, addr=R7, port=R8, l4proto=IPProto.TCP, stack=-32,
                on_error="shot"),
        asm.ja("ok"),
        asm.label("icmp"),
        rewrite(R6, l3_off=14, addr=R7, stack=-32, on_error="shot"),
        asm.label("ok"), tc.ret(tc.Action.OK),
        asm.label("shot"), tc.ret(tc.Action.SHOT),
    ]


@pytest.mark.parametrize("side", ["dst", "src"])
def test_tc_nat_rewrites_with_csum_helpers(side: str) -> None:
    with ebpf.Map.create(ebpf.MapType.ARRAY, key_size=4, value_size=8, max_entries=1) as cfg, \
            ebpf.Program.load(ebpf.ProgramType.SCHED_CLS, _tc_nat_program(cfg, side)) as prog:
        for frame, addr, port in _nat_cases(seed=6 if side == "dst" else 7):
            cfg[0] = NatConfig.encode(addr=int(ipaddress.IPv4Address(addr)), port=port)
            res = prog.test_run(data=frame)
            assert res.retval == tc.Action.OK
            assert res.data == _expected_nat(frame, side, addr, port)


def test_tc_nat_short_packet_takes_the_error_path() -> None:
    with ebpf.Program.load(ebpf.ProgramType.SCHED_CLS, [
        tc.prologue(ctx=R6, data=None, data_end=None),
        nat.tc_dnat(R6, l3_off=14, l4_off=34, addr="1.2.3.4", port=99, l4proto=IPProto.UDP,
                    stack=-8, on_error="shot"),
        tc.ret(tc.Action.OK),
        asm.label("shot"), tc.ret(tc.Action.SHOT),
    ]) as prog:
        frame = bytes(packet.Ethernet(type=0x88B5) / b"short")
        assert prog.test_run(data=frame).retval == tc.Action.SHOT


def _v6_frames(seed: int) -> list[tuple[bytes, str, int]]:
    import random

    rnd = random.Random(seed)
    out = []
    for i in range(60):
        ip = packet.IPv6(src=ipaddress.IPv6Address(rnd.getrandbits(128)),
                         dst=ipaddress.IPv6Address(rnd.getrandbits(128)))
        l4: packet.Layer = [packet.UDP(sport=rnd.getrandbits(16), dport=rnd.getrandbits(16)),
                            packet.TCP(sport=rnd.getrandbits(16), dport=rnd.getrandbits(16)),
                            packet.ICMPv6(type=128)][i % 3]
        frame = bytes(packet.Ethernet() / ip / l4 / rnd.randbytes(rnd.randrange(0, 30)))
        out.append((frame, str(ipaddress.IPv6Address(rnd.getrandbits(128))),
                    rnd.getrandbits(16)))
    return out


@pytest.mark.parametrize("side", ["dst", "src"])
def test_xdp_nat_ipv6_from_a_map_value(side: str) -> None:
    """The new address is read through a pointer into a map value (16 bytes)."""
    scratch = (R0, R1, R2, R3)

    def branch(proto: int, port: bool) -> list[asm.Item]:
        return [nat.rewrite6(R9, R4, side=side, addr=R5, port=R6 if port else None,
                             l4proto=proto, regs=scratch), asm.ja("tx")]

    with ebpf.Map.create(ebpf.MapType.ARRAY, key_size=4, value_size=20,
                         max_entries=1) as cfg:
        insns = [
            xdp.prologue(ctx=None, data=R7, data_end=R8),
            asm.store_imm(asm.W, R10, KEY, 0),
            *maps.lookup(cfg, fp(KEY), "pass"),
            asm.mov(R5, R0), asm.load(asm.H, R6, R0, 16),
            ethernet.parse(R7, R8, proto=R2, l3=R9, on_short="pass", tmp=R1),
            asm.jne(R2, EtherType.IPV6, "pass"),
            ipv6.parse(R9, R8, l4=R4, proto=R2, on_short="pass", tmp=R1),
            asm.jeq(R2, IPProto.UDP, "udp"), asm.jeq(R2, IPProto.TCP, "tcp"),
            asm.jne(R2, IPProto.ICMPV6, "pass"),
            icmp.parse(R4, R8, on_short="pass", tmp=R1), *branch(IPProto.ICMPV6, False),
            asm.label("udp"), udp.parse(R4, R8, on_short="pass", tmp=R1),
            *branch(IPProto.UDP, True),
            asm.label("tcp"), tcp.parse(R4, R8, on_short="pass", tmp=R1),
            *branch(IPProto.TCP, True),
            asm.label("tx"), xdp.ret(xdp.Action.TX),
            asm.label("pass"), xdp.ret(xdp.Action.PASS),
        ]
        with ebpf.Program.load(ebpf.ProgramType.XDP, insns) as prog:
            for frame, addr, port in _v6_frames(seed=8 if side == "dst" else 9):
                cfg[0] = ipaddress.IPv6Address(addr).packed + struct.pack("!H", port) + b"\0\0"
                res = prog.test_run(data=frame)
                assert res.retval == xdp.Action.TX
                p = packet.parse(frame)
                ip, l4 = p[packet.IPv6], p.layers[2]
                kw = dict(src=ip.src, dst=ip.dst)
                kw[side] = ipaddress.IPv6Address(addr)
                if isinstance(l4, packet.ICMPv6):
                    new_l4: packet.Layer = packet.ICMPv6(type=l4.type, code=l4.code)
                else:
                    ports = dict(sport=l4.sport, dport=l4.dport)  # type: ignore[attr-defined]
                    ports["sport" if side == "src" else "dport"] = port
                    new_l4 = (packet.UDP(**ports) if isinstance(l4, packet.UDP) else
                              packet.TCP(**ports, seq=l4.seq, flags=l4.flags))  # type: ignore[attr-defined]
                want = bytes(p.layers[0] / packet.IPv6(**kw) / new_l4 / p.payload)  # type: ignore[arg-type]
                assert res.data == want
