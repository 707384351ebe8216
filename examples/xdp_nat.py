"""XDP: DNAT UDP/TCP traffic for a virtual IP to a backend, checksums fixed in pure
instructions (XDP cannot call bpf_l3/l4_csum_replace). The backend comes from a map.

Run as root: python examples/xdp_nat.py
"""

import ipaddress
import sys

import ebpf
from ebpf import asm, packet
from ebpf.asm import R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10
from ebpf.hooks import xdp
from ebpf.lib import fp, maps
from ebpf.lib.net import EtherType, IPProto, ethernet, ipv4, nat, tcp, udp
from ebpf.lib.structs import Struct

VIP = "10.0.0.100"
Backend = Struct("backend", [("addr", "be32"), ("port", "be16")])

backends = ebpf.Map.create(ebpf.MapType.ARRAY, key_size=4, value=Backend.codec, max_entries=1)
backends[0] = {"addr": int(ipaddress.IPv4Address("192.168.1.7")), "port": 8080}

program = [
    xdp.prologue(ctx=None, data=R7, data_end=R8),  # R7/R8 survive helper calls
    asm.store_imm(asm.W, R10, -4, 0),
    maps.lookup(backends, fp(-4), on_miss="pass"),
    Backend.load(R5, R0, "addr"), Backend.load(R6, R0, "port"),  # wire order
    ethernet.parse(R7, R8, proto=R2, l3=R9, on_short="pass", tmp=R1),
    asm.jne(R2, EtherType.IPV4, "pass"),
    ipv4.parse(R9, R8, l4=R4, proto=R2, on_short="pass", tmp=R1),
    ipv4.load(R1, R9, "daddr", host_order=False),
    asm.jne32(R1, ipv4.address(VIP), "pass"),
    asm.jeq(R2, IPProto.TCP, "tcp"),
    asm.jne(R2, IPProto.UDP, "pass"),
    udp.parse(R4, R8, on_short="pass", tmp=R1),
    nat.dnat(R9, R4, addr=R5, port=R6, l4proto=IPProto.UDP, regs=(R0, R1, R2, R3)),
    xdp.ret(xdp.Action.TX),
    asm.label("tcp"),
    tcp.parse(R4, R8, on_short="pass", tmp=R1),
    nat.dnat(R9, R4, addr=R5, port=R6, l4proto=IPProto.TCP, regs=(R0, R1, R2, R3)),
    xdp.ret(xdp.Action.TX),
    asm.label("pass"),
    xdp.ret(xdp.Action.PASS),
]

eth = packet.Ethernet(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
ok = True
with backends, ebpf.Program.load(ebpf.ProgramType.XDP, program, name="xdp_nat") as prog:
    for l4 in (packet.UDP(sport=5000, dport=80), packet.TCP(sport=5000, dport=80)):
        frame = bytes(eth / packet.IPv4(src="10.0.0.1", dst=VIP) / l4 / b"payload")
        res = prog.test_run(data=frame)
        out = packet.parse(res.data or b"")
        ip, l4out = out[packet.IPv4], out.layers[2]
        good = (res.retval == xdp.Action.TX and str(ip.dst) == "192.168.1.7"
                and l4out.dport == 8080 and not out.checksum_errors())
        print(f"{type(l4).__name__}: {ip.src}:{l4out.sport} -> {ip.dst}:{l4out.dport}, "
              f"checksums {'ok' if not out.checksum_errors() else out.checksum_errors()}")
        ok &= good
sys.exit(0 if ok else 1)
