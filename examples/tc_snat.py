"""TC: SNAT outgoing UDP/TCP to a public address and port with the skb checksum helpers
(bpf_l3_csum_replace / bpf_l4_csum_replace), no packet pointers needed.

Run as root: python examples/tc_snat.py
"""

import sys

import ebpf
from ebpf import asm, packet
from ebpf.asm import R1, R2, R3, R4, R5, R6, R7, R8, R9
from ebpf.hooks import tc
from ebpf.lib.net import EtherType, IPProto, ethernet, ipv4, nat

PUBLIC, PORT = "203.0.113.5", 40000

program = [
    tc.prologue(ctx=R6, data=R7, data_end=R8),
    ethernet.parse(R7, R8, proto=R2, l3=R3, on_short="ok", tmp=R1),
    asm.jne(R2, EtherType.IPV4, "ok"),
    ipv4.parse(R3, R8, l4=R4, proto=R5, on_short="ok", tmp=R1, on_fragment="ok"),
    asm.mov(R9, R4), asm.sub(R9, R7),  # L4 offset: R9 survives the helper calls
    asm.jeq(R5, IPProto.UDP, "udp"),
    asm.jne(R5, IPProto.TCP, "ok"),
    nat.tc_snat(R6, l3_off=14, l4_off=R9, addr=PUBLIC, port=PORT,
                l4proto=IPProto.TCP, stack=-24, on_error="shot"),
    asm.ja("ok"),
    asm.label("udp"),
    nat.tc_snat(R6, l3_off=14, l4_off=R9, addr=PUBLIC, port=PORT, l4proto=IPProto.UDP,
                stack=-24, on_error="shot"),
    asm.label("ok"), tc.ret(tc.Action.OK),
    asm.label("shot"), tc.ret(tc.Action.SHOT),
]

eth = packet.Ethernet(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
ok = True
with ebpf.Program.load(ebpf.ProgramType.SCHED_CLS, program, name="tc_snat") as prog:
    for l4 in (packet.UDP(sport=1234, dport=53), packet.TCP(sport=1234, dport=443)):
        frame = bytes(eth / packet.IPv4(src="192.168.0.10", dst="198.51.100.1") / l4 / b"hi")
        res = prog.test_run(data=frame)
        out = packet.parse(res.data or b"")
        ip, l4out = out[packet.IPv4], out.layers[2]
        errors = out.checksum_errors()
        print(f"{type(l4).__name__}: now from {ip.src}:{l4out.sport}, "
              f"checksums {errors if errors else 'ok'}")
        ok &= (res.retval == tc.Action.OK and str(ip.src) == PUBLIC and l4out.sport == PORT
               and not errors)
sys.exit(0 if ok else 1)
