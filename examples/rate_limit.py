"""XDP: a token bucket per source IPv4 address (5 packets of burst, 2 per second).

The buckets live in an LRU hash map; Python rewinds a bucket's clock to show the refill.
Run as root: python examples/rate_limit.py
"""

import ipaddress
import sys
import time

import ebpf
from ebpf import asm, packet
from ebpf.asm import R1, R2, R4, R6, R7, R8, R9, R10
from ebpf.hooks import xdp
from ebpf.lib import fp, rate_limit
from ebpf.lib.net import EtherType, ethernet, ipv4

LIMIT = rate_limit.Config(rate=2, burst=5)
buckets = ebpf.Map.create(ebpf.MapType.LRU_HASH, key_size=4, value_size=16, max_entries=1024)

program = [
    xdp.prologue(ctx=R6, data=R7, data_end=R8),
    ethernet.parse(R7, R8, proto=R2, l3=R9, on_short="pass", tmp=R1),
    asm.jne(R2, EtherType.IPV4, "pass"),
    ipv4.parse(R9, R8, l4=R4, proto=R2, on_short="pass", tmp=R1),
    asm.load(asm.W, R1, R9, ipv4.SADDR), asm.store(asm.W, R10, -4, R1),  # key: source
    rate_limit.check(buckets, fp(-4), config=LIMIT, on_drop="drop", stack=-64),
    asm.label("pass"), xdp.ret(xdp.Action.PASS),
    asm.label("drop"), xdp.ret(xdp.Action.DROP),
]


def burst(prog: ebpf.Program, src: str, n: int) -> str:
    frame = bytes(packet.Ethernet() / packet.IPv4(src=src, dst="10.0.0.2") / packet.UDP())
    return "".join("P" if prog.test_run(data=frame).retval == xdp.Action.PASS else "."
                   for _ in range(n))


with buckets, ebpf.Program.load(ebpf.ProgramType.XDP, program, name="ratelimit") as prog:
    first = burst(prog, "10.0.0.1", 8)
    other = burst(prog, "10.0.0.7", 3)
    key = int.from_bytes(ipaddress.IPv4Address("10.0.0.1").packed, sys.byteorder)
    buckets[key] = rate_limit.bucket(0, time.monotonic_ns() - 1_500_000_000)  # 1.5 s ago
    later = burst(prog, "10.0.0.1", 4)
    print(f"10.0.0.1, 8 packets:           {first}")
    print(f"10.0.0.7, 3 packets:           {other}")
    print(f"10.0.0.1, 1.5 s later, 4 more: {later}  "
          f"({rate_limit.tokens(buckets[key]):.2f} tokens left)")
sys.exit(0 if (first, other, later) == ("PPPPP...", "PPP", "PPP.") else 1)
