"""pktcount: packets and bytes per IP protocol on an interface, counted by XDP.

The program parses Ethernet and IPv4/IPv6 with :mod:`ebpf.lib.net` and adds to a per-CPU
array indexed by the IP protocol (256 = not IP); every packet passes. Prints one row per
protocol seen, every ``-i`` seconds (default 1) and at the end.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack

from .. import asm
from ..asm import R1, R2, R4, R6, R7, R8, R9
from ..hooks import xdp
from ..lib import maps
from ..lib.net import EtherType, ethernet, ipv4
from . import _common as c

NOT_IP = 256
IPV6_NEXTHDR = 6   # offset of the next-header byte in the IPv6 header
_NAMES = {p: n for n in ("icmp", "tcp", "udp", "icmpv6", "gre", "sctp", "esp")
          for p in [getattr(socket, f"IPPROTO_{n.upper()}", -1)]}


def main(argv: Sequence[str] | None = None) -> int:
    ap = c.parser("pktcount", "Count packets and bytes per IP protocol on an interface (XDP).")
    ap.add_argument("-i", "--interface", required=True, help="network interface")
    ap.add_argument("--interval", type=float, default=1.0, help="seconds between reports")
    ap.add_argument("--mode", choices=("generic", "native", "default"), default="default")
    args = ap.parse_args(argv)
    if args.comm is not None:
        ap.error("-c is not supported by pktcount")
    if args.pid is not None:
        ap.error("-p is not supported by pktcount")
    from .._maps import Map
    from .._programs import Program
    from .._types import MapType, ProgramType, XDPMode
    from ..link.xdp import attach_xdp

    with ExitStack() as stack:
        counts = stack.enter_context(Map.create(MapType.PERCPU_ARRAY, key_size=4,
                                                value_size=16, max_entries=NOT_IP + 1))
        program = [
            xdp.prologue(ctx=R6, data=R7, data_end=R8),
            asm.mov(R9, R8), asm.sub(R9, R7),                  # frame length
            asm.mov(R4, NOT_IP),
            ethernet.parse(R7, R8, proto=R2, l3=R6, on_short="count", tmp=R1),
            asm.jeq(R2, EtherType.IPV6, "v6"), asm.jne(R2, EtherType.IPV4, "count"),
            ipv4.parse(R6, R8, l4=R1, proto=R4, on_short="count", tmp=R2),
            asm.ja("count"),
            asm.label("v6"), asm.mov(R1, R6), asm.add(R1, 40), asm.jgt(R1, R8, "count"),
            asm.load(asm.B, R4, R6, IPV6_NEXTHDR),
            asm.label("count"), asm.mov(R7, R4),               # survives the lookups
            maps.array_add(counts, R7, 1, key_stack=-4, percpu=True),
            maps.array_add(counts, R7, R9, offset=8, key_stack=-4, percpu=True),
            xdp.ret(xdp.Action.PASS),
        ]
        prog = stack.enter_context(Program.load(ProgramType.XDP, program, name="pktcount"))
        mode = {"generic": XDPMode.GENERIC, "native": XDPMode.NATIVE,
                "default": XDPMode.DEFAULT}[args.mode]
        stack.enter_context(attach_xdp(prog, args.interface, mode=mode))
        c.say(args, f"hook: XDP on {args.interface} ({args.mode} mode)")

        def report() -> None:
            rows = []
            for proto in range(NOT_IP + 1):
                pkts = bytes_ = 0
                for v in counts[proto]:
                    raw = bytes(v) if not isinstance(v, int) else v.to_bytes(16, sys.byteorder)
                    pkts += int.from_bytes(raw[:8], sys.byteorder)
                    bytes_ += int.from_bytes(raw[8:], sys.byteorder)
                if pkts:
                    name = "non-ip" if proto == NOT_IP else _NAMES.get(proto, str(proto))
                    rows.append({"proto": name, "packets": pkts, "bytes": bytes_})
            if args.json:
                print(json.dumps({"time": time.strftime("%H:%M:%S"), "interface":
                                  args.interface, "counts": rows}), flush=True)
                return
            print(f"{time.strftime('%H:%M:%S') + ' ' if args.clock else ''}"
                  f"{'PROTO':<8} {'PACKETS':>10} {'BYTES':>12}")
            for r in rows:
                print(f"{r['proto']:<8} {r['packets']:>10} {r['bytes']:>12}", flush=True)

        last = [time.monotonic()]

        def poll(timeout: float) -> None:
            time.sleep(timeout)
            if time.monotonic() - last[0] >= args.interval:
                report()
                last[0] = time.monotonic()

        c.run_loop(args, poll)
        report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
