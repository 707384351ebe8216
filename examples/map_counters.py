"""Maps: packets and bytes per IP protocol, counted by a tc classifier in a hash map
(atomic adds, created on first use) and in a per-CPU hash map (one copy per CPU), fed
frames with BPF_PROG_TEST_RUN (a tc program sees the frame from its Ethernet header on
every kernel; cgroup skb programs under test_run lack packet pointers before 6.x).

Run as root: python examples/map_counters.py
"""

import sys

import ebpf
from ebpf import asm, packet
from ebpf.asm import R1, R2, R4, R6, R7, R8, R9, R10
from ebpf.hooks import skb, tc
from ebpf.lib import fp, maps
from ebpf.lib.net import ethernet, ipv4
from ebpf.lib.structs import Struct

Counter = Struct("counter", [("packets", "u64"), ("bytes", "u64")])
shared = ebpf.Map.create(ebpf.MapType.HASH, key_size=4, value=Counter.codec, max_entries=256)
percpu = ebpf.Map.create(ebpf.MapType.PERCPU_HASH, key_size=4, value=Counter.codec,
                         max_entries=256)

program = [
    skb.prologue(ctx=R6, data=R7, data_end=R8),  # tc: data starts at the Ethernet header
    ethernet.parse(R7, R8, proto=R2, l3=R7, on_short="out", tmp=R1),
    asm.jne(R2, ethernet.EtherType.IPV4, "out"),
    ipv4.parse(R7, R8, l4=R4, proto=R2, on_short="out", tmp=R1),
    asm.store(asm.W, R10, -4, R2),               # key: the protocol number
    skb.field(R9, "len", R6),
]
for m, bump in ((shared, maps.increment), (percpu, maps.percpu_increment)):
    program += [bump(m, fp(-4), 1, offset=0, value_size=16, stack=-24),
                bump(m, fp(-4), R9, offset=8, value_size=16, stack=-24)]
program += [asm.label("out"), tc.ret(tc.Action.OK)]

traffic = {packet.UDP(): 5, packet.TCP(): 3, packet.ICMP(): 2}
with shared, percpu, ebpf.Program.load(tc.PROGRAM_TYPE, program,
                                             name="counters") as prog:
    for l4, n in traffic.items():
        frame = bytes(packet.Ethernet() / packet.IPv4(src="10.0.0.1", dst="10.0.0.2") / l4)
        prog.test_run(data=frame, repeat=n)  # run n times
    ok = True
    for proto in sorted(shared):
        c = shared[proto]
        per_cpu = percpu[proto]
        total = (sum(x.packets for x in per_cpu), sum(x.bytes for x in per_cpu))
        print(f"protocol {proto:2}: {c.packets} packets, {c.bytes} bytes; per-CPU sum {total}")
        ok &= total == (c.packets, c.bytes)
    want = {17: 5, 6: 3, 1: 2}
    seen = {p: shared[p].packets for p in shared}
    if seen != want:
        print(f"packets per protocol: {seen}, expected {want}", file=sys.stderr)
        ok = False
sys.exit(0 if ok else 1)
