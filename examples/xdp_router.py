"""XDP: a one-hop "router": decrement the TTL (header checksum updated incrementally,
RFC 1624), swap the MACs and send the frame back out; expired TTLs are dropped.

Run as root: python examples/xdp_router.py
"""

import sys

import ebpf
from ebpf import asm, packet
from ebpf.asm import R1, R2, R3, R4, R5, R6, R7, R8, R9
from ebpf.hooks import xdp
from ebpf.lib.net import EtherType, ethernet, ipv4

program = [
    xdp.prologue(ctx=R6, data=R7, data_end=R8),
    ethernet.parse(R7, R8, proto=R2, l3=R9, on_short="pass", tmp=R1),
    asm.jne(R2, EtherType.IPV4, "pass"),
    ipv4.parse(R9, R8, l4=R4, proto=R2, on_short="pass", tmp=R1),
    ipv4.decrement_ttl(R9, "expired", acc=R3, tmp=R4, old=R5),
    ethernet.swap_macs(R7, tmp1=R3, tmp2=R4),
    xdp.ret(xdp.Action.TX),
    asm.label("expired"), xdp.ret(xdp.Action.DROP),
    asm.label("pass"), xdp.ret(xdp.Action.PASS),
]

ok = True
with ebpf.Program.load(ebpf.ProgramType.XDP, program, name="router") as prog:
    for ttl in (64, 2, 1):
        frame = bytes(packet.Ethernet(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
                      / packet.IPv4(src="10.0.0.1", dst="10.9.9.9", ttl=ttl)
                      / packet.ICMP() / b"ping")
        res = prog.test_run(data=frame)
        action = xdp.Action(res.retval)
        out = packet.parse(res.data or b"")
        print(f"ttl {ttl:3} -> {action.name:4} ttl now {out[packet.IPv4].ttl:3}, "
              f"dst mac {out[packet.Ethernet].dst}, bad checksums: {out.checksum_errors()}")
        if ttl > 1:
            ok &= (action == xdp.Action.TX and out[packet.IPv4].ttl == ttl - 1
                   and out[packet.Ethernet].dst == "02:00:00:00:00:01"
                   and not out.checksum_errors())
        else:
            ok &= action == xdp.Action.DROP and res.data == frame
sys.exit(0 if ok else 1)
