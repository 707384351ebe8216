"""XDP: drop UDP to one port, pass everything else (Ethernet, VLAN, IPv4/IPv6 parsed).

Run as root: python examples/xdp_drop_udp.py
"""

import sys

import ebpf
from ebpf import asm, packet
from ebpf.asm import R1, R2, R3, R4, R5, R6, R7, R8, R9
from ebpf.hooks import xdp
from ebpf.lib.net import EtherType, IPProto, ethernet, ipv4, ipv6, udp

BLOCKED_PORT = 53

program = [
    xdp.prologue(ctx=R6, data=R7, data_end=R8),
    ethernet.parse(R7, R8, proto=R2, l3=R9, on_short="pass", tmp=R1, vlan_tags=2),
    asm.jeq(R2, EtherType.IPV4, "v4"),
    asm.jeq(R2, EtherType.IPV6, "v6"),
    asm.ja("pass"),
    asm.label("v4"),
    ipv4.parse(R9, R8, l4=R4, proto=R5, on_short="pass", tmp=R1, on_fragment="pass"),
    asm.ja("l4"),
    asm.label("v6"),
    ipv6.parse(R9, R8, l4=R4, proto=R5, on_short="pass", tmp=R1, max_ext=2),
    asm.label("l4"),
    asm.jne(R5, IPProto.UDP, "pass"),
    udp.parse(R4, R8, on_short="pass", tmp=R1, dport=R3),
    asm.jne(R3, BLOCKED_PORT, "pass"),
    xdp.ret(xdp.Action.DROP),
    asm.label("pass"),
    xdp.ret(xdp.Action.PASS),
]

eth = packet.Ethernet(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
v4 = packet.IPv4(src="10.0.0.1", dst="10.0.0.2")
v6 = packet.IPv6(src="fd00::1", dst="fd00::2")
cases = {
    "IPv4 UDP to 53": (eth / v4 / packet.UDP(sport=4000, dport=53) / b"q", xdp.Action.DROP),
    "IPv4 UDP to 54": (eth / v4 / packet.UDP(sport=4000, dport=54) / b"q", xdp.Action.PASS),
    "VLAN IPv6 UDP to 53": (eth / packet.Dot1Q(vid=7) / v6 / packet.UDP(dport=53),
                            xdp.Action.DROP),
    "IPv4 TCP to 53": (eth / v4 / packet.TCP(dport=53), xdp.Action.PASS),
    "truncated UDP": (bytes(eth / v4 / packet.UDP(dport=53))[:38], xdp.Action.PASS),
}

failed = 0
with ebpf.Program.load(ebpf.ProgramType.XDP, program, name="drop_udp") as prog:
    for name, (pkt, want) in cases.items():
        got = xdp.Action(prog.test_run(data=bytes(pkt)).retval)
        print(f"{name:22} -> {got.name:5} {'ok' if got == want else 'WRONG, want ' + want.name}")
        failed += got != want
sys.exit(1 if failed else 0)
