"""tcpconnect: trace active TCP connections (connect()), as bcc's tool.

``sock:inet_sock_set_state`` reports every TCP state change with the addresses; a change to
``SYN_SENT`` is a connect() and runs in the connecting task, so pid and comm are the caller's.

Options as bcc's: ``-p PID``, ``-u UID`` and ``-4``/``-6`` (address family) filter in the
kernel, ``-P PORT[,PORT...]`` (destination ports) in user space; ``-t`` adds a TIME(s)
column, ``-U`` a UID column.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import sys
from collections.abc import Sequence
from contextlib import ExitStack

from .. import asm
from ..asm import R6, R7, R9
from ..hooks import tracepoint
from ..lib import ringbuf
from ..ringbuf import RingBuffer
from . import _common as c

TCP_SYN_SENT = 2
BODY = struct.Struct("=HHH2x16s16s")     # family, sport, dport (host order), saddr, daddr
SIZE = c.PAYLOAD + BODY.size


def _ports(text: str) -> list[int]:
    """bcc's ``-P 80,81``: a comma-separated list of destination ports."""
    import argparse

    try:
        ports = [int(p) for p in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port list: {text!r}") from None
    if not all(0 < p < 1 << 16 for p in ports):
        raise argparse.ArgumentTypeError(f"port out of range in {text!r}")
    return ports


def main(argv: Sequence[str] | None = None) -> int:
    ap = c.parser("tcpconnect", "Trace active TCP connections.", clock=(),
                  seconds=("-t", "--timestamp"), uid=True)
    ap.add_argument("-P", "--port", type=_ports, action="append", default=[],
                    help="comma-separated list of destination ports (repeatable)")
    fam = ap.add_mutually_exclusive_group()
    fam.add_argument("-4", "--ipv4", action="store_true", help="trace IPv4 family only")
    fam.add_argument("-6", "--ipv6", action="store_true", help="trace IPv6 family only")
    args = ap.parse_args(argv)
    args.port = {p for ps in args.port for p in ps}
    family_filter: list[asm.Item] = []
    if args.ipv4 or args.ipv6:
        family_filter = [*tracepoint.field(R7, c.fmt("sock", "inet_sock_set_state"), "family",
                                           R6),
                         asm.jne(R7, socket.AF_INET if args.ipv4 else socket.AF_INET6, "out")]
    f = c.fmt("sock", "inet_sock_set_state")
    p = c.PAYLOAD
    copy: list[asm.Item] = []
    for name, at in (("saddr_v6", p + 8), ("daddr_v6", p + 24)):
        for i in range(0, 16, 8):
            copy += [asm.load(asm.DW, R7, R6, f[name].offset + i),
                     asm.store(asm.DW, R9, at + i, R7)]
    for name, at in (("saddr", p + 8), ("daddr", p + 24)):   # IPv4 over the v6 slots
        copy += [asm.load(asm.W, R7, R6, f[name].offset), asm.store(asm.W, R9, at, R7)]
    with ExitStack() as stack:
        events = c.ring(stack)
        program = [
            tracepoint.save_ctx(R6),
            *tracepoint.field(R7, f, "newstate", R6), asm.jne(R7, TCP_SYN_SENT, "out"),
            *tracepoint.field(R7, f, "protocol", R6), asm.jne(R7, socket.IPPROTO_TCP, "out"),
            *family_filter, *c.pid_filter(args, "out"), *c.uid_filter(args, "out"),
            *c.reserve(events, SIZE, R9, "out"),
            *tracepoint.field(R7, f, "family", R6), asm.store(asm.H, R9, p, R7),
            *tracepoint.field(R7, f, "sport", R6), asm.store(asm.H, R9, p + 2, R7),
            *tracepoint.field(R7, f, "dport", R6), asm.store(asm.H, R9, p + 4, R7),
            *tracepoint.field(R7, f, "family", R6),
            asm.jeq(R7, socket.AF_INET, "v4"), *copy[:8], asm.ja("sent"),
            asm.label("v4"), *c.zero(R9, p + 8, 32), *copy[8:],
            asm.label("sent"), *ringbuf.submit(R9),
            asm.label("out"), *tracepoint.ret(0),
        ]
        c.attach_tp(stack, program, "sock", "inet_sock_set_state", "tcpconnect")
        c.hook_note(args, ["tracepoint sock:inet_sock_set_state (newstate == SYN_SENT)"])
        reader = stack.enter_context(RingBuffer(events))
        out = c.Printer(args, [("PID", "<7"), ("COMM", "<16"), ("IP", "<2"),
                               ("SADDR", "<16"), ("DADDR", "<16"), ("DPORT", "")])

        def handle(raw: bytes) -> None:
            family, sport, dport, sa, da = BODY.unpack_from(raw, p)
            if args.port and dport not in args.port:
                return
            v4 = family == socket.AF_INET

            def addr(b: bytes) -> str:
                return str(ipaddress.IPv4Address(b[:4]) if v4 else ipaddress.IPv6Address(b))
            out.row(c.stamp(args, {**c.header(raw), "ip": 4 if v4 else 6,
                                   "saddr": addr(sa), "daddr": addr(da), "sport": sport,
                                   "dport": dport}))

        return c.run_loop(args, c.ring_poll(reader, handle))


if __name__ == "__main__":
    sys.exit(main())
