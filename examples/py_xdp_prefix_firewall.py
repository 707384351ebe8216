"""An XDP firewall in Python: source prefixes in an LPM trie decide (the longest match wins,
so an allowed /24 sits inside a blocked /8), hits are counted per prefix, and flows in an LRU
hash under a frozen struct key (Python reads it as a dict). Run on test packets.

Run as root: python examples/py_xdp_prefix_firewall.py
"""

import ipaddress
import sys

from ebpf import bpf, packet
from ebpf.bpf import be16, be32, u8, u32, u64
from ebpf.bpf.net import ETH_P_IP, IPPROTO_TCP, IPPROTO_UDP, UDP, Ethernet, IPv4


class Prefix(bpf.Struct, frozen=True):
    prefixlen: u32
    addr: be32


class Rule(bpf.Struct):
    drop: u32  # 1: drop, 0: allow
    hits: u64


class Flow(bpf.Struct, frozen=True):
    saddr: be32
    dport: be16
    proto: u8


rules = bpf.LPMTrie(Prefix, Rule, max_entries=1024)
flows = bpf.LRUHash(Flow, u64, max_entries=4096)


@bpf.xdp
def firewall(ctx: bpf.XDP) -> int:
    eth = ctx.load(Ethernet)
    if eth is None or eth.proto != ETH_P_IP:
        return bpf.XDP_PASS
    ip = ctx.load(IPv4, 14)
    if ip is None:
        return bpf.XDP_PASS
    f = Flow()
    f.saddr = ip.saddr
    f.proto = ip.protocol
    ports = ctx.load(UDP, 14 + (ip.ver_ihl & 0xF) * 4)   # TCP's ports sit where UDP's do
    if ports is not None and ip.protocol in (IPPROTO_TCP, IPPROTO_UDP):
        f.dport = ports.dport
    flows[f] += 1
    r = rules.lookup(Prefix(prefixlen=32, addr=ip.saddr))
    if r is None:
        return bpf.XDP_PASS
    r.hits += 1
    return bpf.XDP_DROP if r.drop else bpf.XDP_PASS


def net(text: str) -> Prefix:
    n = ipaddress.IPv4Network(text)
    return Prefix(prefixlen=n.prefixlen, addr=int(n.network_address))


def frame(src: str, dport: int, proto: str = "udp") -> bytes:
    l4 = packet.UDP(dport=dport) if proto == "udp" else packet.TCP(dport=dport)
    return bytes(packet.Ethernet() / packet.IPv4(src=src, dst="192.0.2.1") / l4 / b"x")


with bpf.load(firewall) as coll:
    coll.rules[net("10.0.0.0/8")] = Rule(drop=1)          # block 10/8 ...
    coll.rules[net("10.1.2.0/24")] = Rule(drop=0)         # ... except this /24
    sent = [("10.9.9.9", 53), ("10.1.2.3", 53), ("10.1.2.3", 80, "tcp"), ("198.51.100.7", 53)]
    verdicts = [coll.firewall.test_run(frame(*s)).retval for s in sent]
    hits = {f"{ipaddress.IPv4Address(k.addr)}/{k.prefixlen}": v.hits
            for k, v in coll.rules.items()}
    seen = dict(coll.flows.items())                        # frozen keys: a real dict
print(f"verdicts {verdicts}, rule hits {hits}, {len(seen)} flows")
web = Flow(saddr=int(ipaddress.IPv4Address("10.1.2.3")), dport=80, proto=6)
ok = verdicts == [bpf.XDP_DROP, bpf.XDP_PASS, bpf.XDP_PASS, bpf.XDP_PASS] and len(seen) == 4
sys.exit(0 if ok and hits == {"10.0.0.0/8": 1, "10.1.2.0/24": 2} and seen[web] == 1 else 1)
