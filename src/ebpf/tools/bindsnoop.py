"""bindsnoop: trace ``bind`` calls (address, port, result), as bcc's tool.

``sys_enter_bind`` copies the user's ``sockaddr`` into a per-thread record; ``sys_exit_bind``
adds the result. Decoding the address family is left to Python. ``--cgroupmap`` and
``--mntnsmap`` filter in the kernel, as bcc's.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from typing import Any

from .. import asm
from ..asm import R1, R2, R3, R7, R9, Helper
from ..hooks import tracepoint
from ..ringbuf import RingBuffer
from . import _common as c

BODY = struct.Struct("=qq32s")     # ret, fd, sockaddr (up to sockaddr_in6)
SIZE = c.PAYLOAD + BODY.size


def decode_sockaddr(raw: bytes) -> tuple[str, int, str]:
    """(family, port, address) of a ``sockaddr_in``/``sockaddr_in6``."""
    family = int.from_bytes(raw[:2], sys.byteorder)
    port = int.from_bytes(raw[2:4], "big")
    if family == socket.AF_INET:
        return "IPv4", port, str(ipaddress.IPv4Address(raw[4:8]))
    if family == socket.AF_INET6:
        return "IPv6", port, str(ipaddress.IPv6Address(raw[8:24]))
    return f"AF{family}", 0, ""


def main(argv: Sequence[str] | None = None) -> int:
    ap = c.parser("bindsnoop", "Trace bind() calls.", containers=True)
    args = ap.parse_args(argv)
    with ExitStack() as stack:
        c.open_containers(stack, args, ap)
        events = c.ring(stack)

        def fill(f: Any) -> list[asm.Item]:
            return [*tracepoint.field(R7, f, "fd", c.R6),
                    asm.store(asm.DW, R9, c.PAYLOAD + 8, R7),
                    *tracepoint.field(R3, f, "umyaddr", c.R6),
                    asm.mov(R1, R9), asm.add(R1, c.PAYLOAD + 16), asm.mov(R2, 28),
                    asm.call(Helper.PROBE_READ_USER)]

        c.syscall_pair(stack, args, events, "bind", SIZE, fill, c.PAYLOAD)
        reader = stack.enter_context(RingBuffer(events))
        out = c.Printer(args, [("PID", "<7"), ("COMM", "<16"), ("RET", ">4"),
                               ("PROTO", "<5"), ("FD", ">3"), ("PORT", ">5"), ("ADDR", "")])

        def handle(raw: bytes) -> None:
            ret, fd, sa = BODY.unpack_from(raw, c.PAYLOAD)
            family, port, addr = decode_sockaddr(sa)
            out.row(c.stamp(args, {**c.header(raw), "ret": ret, "fd": fd, "proto": family,
                                   "port": port, "addr": addr}))

        return c.run_loop(args, c.ring_poll(reader, handle))


if __name__ == "__main__":
    sys.exit(main())
