"""An XDP program written in Python: per-protocol counts, a per-port hash, a drop rule set
from Python before load; compiled by ebpf.bpf (no LLVM) and run on test packets.

Run as root: python examples/py_xdp_counter.py
"""

import sys

from ebpf import bpf, packet
from ebpf.bpf import u16, u64
from ebpf.bpf.net import ETH_P_IP, IPPROTO_UDP, UDP, Ethernet, IPv4

by_proto = bpf.PerCPUArray(u64, max_entries=256)
by_port = bpf.Hash(u16, u64, max_entries=1024)
blocked_port = bpf.const(u16, 0)


@bpf.xdp
def counter(ctx: bpf.XDP) -> int:
    eth = ctx.load(Ethernet)
    if eth is None or eth.proto != ETH_P_IP:
        return bpf.XDP_PASS
    ip = ctx.load(IPv4, 14)
    if ip is None:
        return bpf.XDP_PASS
    by_proto[ip.protocol] += 1
    if ip.protocol != IPPROTO_UDP:
        return bpf.XDP_PASS
    udp = ctx.load(UDP, 14 + (ip.ver_ihl & 0xF) * 4)
    if udp is None:
        return bpf.XDP_DROP  # truncated
    by_port[udp.dport] += 1
    return bpf.XDP_DROP if udp.dport == blocked_port else bpf.XDP_PASS


def frame(proto: str, dport: int) -> bytes:
    ip = packet.IPv4(src="10.0.0.1", dst="10.0.0.2")
    l4 = packet.UDP(dport=dport) if proto == "udp" else packet.TCP(dport=dport)
    return bytes(packet.Ethernet() / ip / l4 / b"payload")


print("\n".join(counter.asm().splitlines()[:8]))  # generated code with its Python lines
sent = [("udp", 53), ("udp", 53), ("udp", 9), ("tcp", 80)]
with bpf.load(counter, constants={"blocked_port": 9}) as coll:
    verdicts = [coll.counter.test_run(frame(p, port)).retval for p, port in sent]
    udp_count, tcp_count = sum(coll.by_proto[17]), sum(coll.by_proto[6])
    ports = dict(coll.by_port.items())
print(f"verdicts {verdicts}, udp {udp_count}, tcp {tcp_count}, ports {ports}")
ok = verdicts == [bpf.XDP_PASS, bpf.XDP_PASS, bpf.XDP_DROP, bpf.XDP_PASS]
sys.exit(0 if ok and (udp_count, tcp_count) == (3, 1) and ports == {53: 2, 9: 1} else 1)
