"""tcpconnect: trace active TCP connections (connect()), as bcc's tool.

``sock:inet_sock_set_state`` reports every TCP state change with the addresses; a change to
``SYN_SENT`` is a connect() and runs in the connecting task, so pid and comm are the caller's.

Options as bcc's: ``-p PID``, ``-u UID`` and ``-4``/``-6`` (address family) filter in the
kernel, ``-P PORT[,PORT...]`` (destination ports) in user space; ``-t`` adds a TIME(s)
column, ``-U`` a UID column. ``-c`` counts connects per (source, destination, port) in a
hash map in the kernel and prints the counts at the end instead of tracing.

The local port is chosen after the state is set to ``SYN_SENT`` (``inet_hash_connect``), so
``-L`` (an LPORT column) and ``-s`` (libbpf-tools': a SPORT column, or the source port as a
count key with ``-c``) park the connect's record in a hash keyed by the socket's address and
report it when the socket leaves ``SYN_SENT`` (established, refused, timed out or closed),
whose event carries the port. The header (pid, comm, time) is the connecting task's.

``--cgroupmap`` and ``--mntnsmap`` (pinned maps of cgroup ids / mount namespaces, as bcc's)
filter in the kernel. ``-d`` (bcc's ``--dns``) adds a QUERY column, the name a DNS answer
gave for the destination (:mod:`._dns`: responses copied at ``netif_receive_skb`` into the
same ring, so an answer is read before the connects that follow it).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import socket
import struct
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack
from typing import Any

from .. import asm
from ..asm import R0, R1, R6, R7, R9, R10
from ..hooks import tracepoint
from ..lib import fp, maps, ringbuf
from ..ringbuf import RingBuffer
from . import _common as c
from . import _dns

TCP_SYN_SENT = 2
BODY = struct.Struct("=HHH2x16s16s")     # family, sport, dport (host order), saddr, daddr
SIZE = c.PAYLOAD + BODY.size
REC = -16 - SIZE                         #: the record on the stack (fp-8: the socket address)
INIT = REC - 8                           #: 8 bytes for a new counter's value


def _ports(text: str) -> list[int]:
    """bcc's ``-P 80,81``: a comma-separated list of destination ports."""
    try:
        ports = [int(p) for p in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port list: {text!r}") from None
    if not all(0 < p < 1 << 16 for p in ports):
        raise argparse.ArgumentTypeError(f"port out of range in {text!r}")
    return ports


def _fill(f: Any, args: argparse.Namespace) -> list[asm.Item]:
    """The record at fp + REC (in R9): header, family, ports, addresses (IPv4 in the first 4
    bytes of the 16). Jumps to ``"out"`` for a filtered-out connect."""
    p = c.PAYLOAD
    copy: list[asm.Item] = []
    for name, at in (("saddr_v6", p + 8), ("daddr_v6", p + 24)):
        for i in range(0, 16, 8):
            copy += [asm.load(asm.DW, R7, R6, f[name].offset + i),
                     asm.store(asm.DW, R9, at + i, R7)]
    v4 = [asm.load(asm.W, R7, R6, f[name].offset) for name in ("saddr", "daddr")]
    family: list[asm.Item] = []
    if args.ipv4 or args.ipv6:
        family = [*tracepoint.field(R7, f, "family", R6),
                  asm.jne(R7, socket.AF_INET if args.ipv4 else socket.AF_INET6, "out")]
    return [
        *family, *c.pid_filter(args, "out"), *c.uid_filter(args, "out"),
        *c.container_filter(args, "out"),
        asm.mov(R9, R10), asm.add(R9, REC), *c.zero(R9, 0, SIZE), *c.fill_header(R9),
        *tracepoint.field(R7, f, "family", R6), asm.store(asm.H, R9, p, R7),
        *tracepoint.field(R7, f, "sport", R6), asm.store(asm.H, R9, p + 2, R7),
        *tracepoint.field(R7, f, "dport", R6), asm.store(asm.H, R9, p + 4, R7),
        *tracepoint.field(R7, f, "family", R6),
        asm.jeq(R7, socket.AF_INET, "v4"), *copy, asm.ja("filled"),
        asm.label("v4"), v4[0], asm.store(asm.W, R9, p + 8, R7),
        v4[1], asm.store(asm.W, R9, p + 24, R7),
        asm.label("filled"),
    ]


def program(args: argparse.Namespace, events: Any, counts: Any, pending: Any
            ) -> list[asm.Item]:
    """The ``inet_sock_set_state`` program. ``pending`` (or None) holds the records of
    connects in ``SYN_SENT`` by socket address until the local port is known."""
    f = c.fmt("sock", "inet_sock_set_state")

    def report() -> list[asm.Item]:             # the record at fp + REC
        if counts is not None:                  # the key: the body (sport 0 unless -s)
            return [maps.increment(counts, fp(REC + c.PAYLOAD), stack=INIT)]
        return [*ringbuf.output(events, fp(REC), SIZE)]

    skaddr = [*tracepoint.field(R7, f, "skaddr", R6), asm.store(asm.DW, R10, -8, R7)]
    code: list[asm.Item] = [
        tracepoint.save_ctx(R6),
        *tracepoint.field(R7, f, "protocol", R6), asm.jne(R7, socket.IPPROTO_TCP, "out"),
        *tracepoint.field(R7, f, "newstate", R6),
    ]
    if pending is None:
        code.append(asm.jne(R7, TCP_SYN_SENT, "out"))
    else:
        code += [
            asm.jeq(R7, TCP_SYN_SENT, "connect"),
            *tracepoint.field(R7, f, "oldstate", R6), asm.jne(R7, TCP_SYN_SENT, "out"),
            *skaddr, *maps.lookup(pending, fp(-8), "out"),
            *[item for i in range(0, SIZE, 8)
              for item in (asm.load(asm.DW, R1, R0, i), asm.store(asm.DW, R10, REC + i, R1))],
            *maps.delete(pending, fp(-8)), asm.jne(R0, 0, "out"),   # another CPU had it
            *tracepoint.field(R7, f, "sport", R6),
            asm.store(asm.H, R10, REC + c.PAYLOAD + 2, R7),
            *report(), asm.ja("out"),
        ]
    code += [asm.label("connect"), *_fill(f, args)]
    if pending is not None:
        code += [*skaddr, *maps.update(pending, fp(-8), fp(REC))]
    else:
        code += report()
    return [*code, asm.label("out"), *tracepoint.ret(0)]


def _addr(family: int, raw: bytes) -> str:
    return str(ipaddress.IPv4Address(raw[:4]) if family == socket.AF_INET
               else ipaddress.IPv6Address(raw))


def _print_counts(args: argparse.Namespace, counts: Any) -> None:
    """bcc's ``-c`` table (libbpf-tools' with ``-s``), most connects first."""
    found = []
    for k, v in counts.items():
        family, sport, dport, sa, da = BODY.unpack(bytes(k))
        if args.port and dport not in args.port:
            continue
        n = int.from_bytes(bytes(v), sys.byteorder) if not isinstance(v, int) else v
        found.append((n, _addr(family, sa), _addr(family, da), sport, dport, family))
    found.sort(key=lambda r: (-r[0], r[5], r[1], r[2], r[3], r[4]))
    if args.json:
        print(json.dumps([{"laddr": la, "raddr": ra, **({"lport": lp} if args.source_port
                                                         else {}),
                           "rport": rp, "connects": n} for n, la, ra, lp, rp, _ in found]),
              flush=True)
        return
    lport = f" {'LPORT':<20}" if args.source_port else ""
    print(f"\n{'LADDR':<25} {'RADDR':<25}{lport} {'RPORT':<20} {'CONNECTS':<10}")
    for n, la, ra, lp, rp, _ in found:
        lport = f" {lp:<20}" if args.source_port else ""
        print(f"{la:<25} {ra:<25}{lport} {rp:<20} {n:<10}")
    sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    ap = c.parser("tcpconnect", "Trace active TCP connections.", clock=(), comm=False,
                  seconds=("-t", "--timestamp"), uid=True, containers=True)
    ap.add_argument("-P", "--port", type=_ports, action="append", default=[],
                    help="comma-separated list of destination ports (repeatable)")
    fam = ap.add_mutually_exclusive_group()
    fam.add_argument("-4", "--ipv4", action="store_true", help="trace IPv4 family only")
    fam.add_argument("-6", "--ipv6", action="store_true", help="trace IPv6 family only")
    ap.add_argument("-L", "--lport", action="store_true", help="include LPORT on output")
    ap.add_argument("-s", "--source-port", action="store_true",
                    help="a SPORT column; with -c, count per source port too")
    ap.add_argument("-c", "--count", action="store_true",
                    help="count connects per src ip and dest ip/port")
    ap.add_argument("-d", "--dns", action="store_true",
                    help="include likely DNS query associated with each connect")
    args = ap.parse_args(argv)
    args.port = {p for ps in args.port for p in ps}
    if args.count and (args.lport or args.seconds or args.print_uid):
        ap.error("-c prints counts: -L, -t and -U are for traced connects")
    if args.count and args.dns:
        ap.error("you may not specify -d/--dns with -c/--count")
    wait_port = args.lport or args.source_port
    with ExitStack() as stack:
        events = None if args.count else c.ring(stack)
        counts = c.hash_map(stack, BODY.size, 8) if args.count else None
        pending = c.hash_map(stack, 8, SIZE) if wait_port else None
        c.open_containers(stack, args, ap)
        c.attach_tp(stack, program(args, events, counts, pending), "sock",
                    "inet_sock_set_state", "tcpconnect")
        hooks = ["tracepoint sock:inet_sock_set_state (newstate == SYN_SENT)"
                 + (", reported when it leaves SYN_SENT (the local port is known)"
                    if wait_port else "")]
        if args.dns:
            c.attach_raw_tp(stack, _dns.program(events), "netif_receive_skb", "tcpconn_dns")
            hooks.append("raw tracepoint net:netif_receive_skb (UDP from port 53)")
        c.hook_note(args, hooks)
        if not args.json:
            print("Tracing connect ... Hit Ctrl-C to end", flush=True)
        if counts is not None:
            c.run_loop(args, time.sleep)
            _print_counts(args, counts)
            return 0
        reader = stack.enter_context(RingBuffer(events))
        out = c.Printer(args, [("PID", "<7"), ("COMM", "<12.12"), ("IP", "<2"), ("SADDR", "<16"),
                               *([("LPORT", "<6")] if args.lport else []),
                               ("DADDR", "<16"),
                               *([("SPORT", "<5")] if args.source_port else []),
                               ("DPORT", "<6" if args.dns else ""),
                               *([("QUERY", "")] if args.dns else [])])
        names = _dns.Cache()

        def handle(raw: bytes) -> None:
            if len(raw) == _dns.SIZE:
                names.add(raw)
                return
            family, sport, dport, sa, da = BODY.unpack_from(raw, c.PAYLOAD)
            if args.port and dport not in args.port:
                return
            h = c.header(raw)
            daddr = _addr(family, da)
            row = {**h, "ip": 4 if family == socket.AF_INET else 6, "saddr": _addr(family, sa),
                   "daddr": daddr, "sport": sport, "lport": sport, "dport": dport}
            if args.dns:
                row["query"] = names.query(daddr, h["ts_ns"])
            out.row(c.stamp(args, row))

        return c.run_loop(args, c.ring_poll(reader, handle))


if __name__ == "__main__":
    sys.exit(main())
