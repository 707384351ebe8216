"""Ring buffer: an XDP program reports every UDP datagram as a struct declared once with
ebpf.lib.structs; Python decodes the records with the same declaration (and with numpy).

Run as root: python examples/ringbuf_events.py
"""

import ipaddress
import sys

import ebpf
from ebpf import asm, packet
from ebpf.asm import R1, R2, R4, R6, R7, R8, R9
from ebpf.hooks import xdp
from ebpf.lib import ringbuf
from ebpf.lib import time as btime
from ebpf.lib.net import EtherType, IPProto, ethernet, ipv4, udp
from ebpf.lib.structs import Struct
from ebpf.ringbuf import RingBuffer

Event = Struct("udp_event", [
    ("ts_ns", "u64"), ("saddr", "be32"), ("dport", "be16"), ("length", "u16"),
])

events = ebpf.Map.create(ebpf.MapType.RINGBUF, max_entries=4096)
program = [
    xdp.prologue(ctx=R6, data=R7, data_end=R8),
    ethernet.parse(R7, R8, proto=R2, l3=R9, on_short="out", tmp=R1),
    asm.jne(R2, EtherType.IPV4, "out"),
    ipv4.parse(R9, R8, l4=R4, proto=R2, on_short="out", tmp=R1),
    asm.jne(R2, IPProto.UDP, "out"),
    udp.parse(R4, R8, on_short="out", tmp=R1),
    asm.sub(R8, R7),                           # frame length
    asm.load(asm.W, R6, R9, ipv4.SADDR),       # network order, as the be32 field wants
    asm.load(asm.H, R7, R4, udp.DPORT),        # network order, as the be16 field wants
    *btime.ktime_ns(R9),
    ringbuf.emit(events, Event, {"ts_ns": R9, "saddr": R6, "dport": R7, "length": R8},
                 on_fail="out"),
    asm.label("out"), xdp.ret(xdp.Action.PASS),
]

sent = [("10.0.0.1", 53, 10), ("172.16.5.4", 123, 48), ("10.0.0.9", 5353, 0)]
with events, ebpf.Program.load(ebpf.ProgramType.XDP, program, name="events") as prog, \
        RingBuffer(events) as reader:
    for src, port, size in sent:
        prog.test_run(data=bytes(packet.Ethernet() / packet.IPv4(src=src, dst="10.0.0.2")
                                 / packet.UDP(dport=port) / bytes(size)))
    records = [Event.decode(r) for r in reader.read(timeout=1.0)]
for e in records:
    print(f"t={e.ts_ns} {ipaddress.IPv4Address(e.saddr)} -> port {e.dport}, "
          f"{e.length} bytes")
got = [(str(ipaddress.IPv4Address(e.saddr)), e.dport, e.length - 42) for e in records]
sys.exit(0 if got == sent else 1)
