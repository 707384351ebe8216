"""DNS answers seen as they arrive, for tcpconnect's ``-d`` (bcc's ``--dns``).

bcc copies DNS responses from a kprobe on ``udp_recvmsg``; without kprobes the raw
tracepoint ``netif_receive_skb`` (its argument is the ``struct sk_buff``, 4.17) sees every
received packet with ``skb->data`` at the network header. The program reads the IPv4/IPv6
and UDP headers with ``bpf_probe_read_kernel`` (``sk_buff`` offsets from the kernel's BTF)
and, for a UDP datagram from port 53, copies the UDP header and up to 512 bytes of the
message from the linear part into the tools' ring. :func:`answers` decodes the question
name and the A/AAAA addresses; :class:`Cache` names a connect's destination as bcc does.
"""

from __future__ import annotations

import ipaddress
import struct
import sys
from typing import Any

from .. import asm
from ..asm import R0, R1, R2, R3, R6, R7, R8, R9, R10, Helper
from ..hooks import raw_tracepoint as raw
from ..lib import fp, helpers, ringbuf
from ..lib.patterns import core_read

PORT = 53
COPY = 8 + 512                    #: the UDP header and the message, at most
HEAD = struct.Struct("=QI4x")     #: ktime ns, bytes copied
SIZE = HEAD.size + COPY           #: the ring record (tcpconnect's records are smaller)
_IP, _UDP = -64, -72              #: 40 bytes of the network header, 8 of the UDP header
_SPORT = int.from_bytes(PORT.to_bytes(2, "big"), sys.byteorder)   # as a u16 load sees it
TTL_NS = 86400 * 10**9            #: bcc's cache lifetime (24 h)
MAX_ENTRIES = 10240               #: bcc's cache size
SLOW_MS = 100.0                   #: bcc prints the delay after an answer older than this


def program(events: Any) -> list[asm.Item]:
    """The ``netif_receive_skb`` raw tracepoint program: DNS responses into ``events``."""
    def skb(dst: asm.Register, member: str, size: int) -> list[asm.Item]:
        return list(core_read(dst, R8, [("sk_buff", member)], size=size, stack=-8))

    return [
        raw.arg(R8, 0, R1),
        *skb(R7, "len", 4), *skb(R9, "data_len", 4), asm.sub(R7, R9),   # linear bytes
        *skb(R9, "data", 8),
        *helpers.probe_read_kernel(fp(_IP), 40, R9), asm.jne(R0, 0, "out"),
        asm.load(asm.B, R1, R10, _IP), asm.rsh(R1, 4),
        asm.jeq(R1, 6, "v6"), asm.jne(R1, 4, "out"),
        asm.load(asm.B, R1, R10, _IP + 9), asm.jne(R1, 17, "out"),       # IPPROTO_UDP
        asm.load(asm.B, R6, R10, _IP), asm.and_(R6, 15), asm.lsh(R6, 2), asm.ja("udp"),
        asm.label("v6"), asm.load(asm.B, R1, R10, _IP + 6), asm.jne(R1, 17, "out"),
        asm.mov(R6, 40),
        asm.label("udp"), asm.sub(R7, R6), asm.add(R9, R6),   # R9: UDP header, R7: bytes
        asm.jslt(R7, 8 + 12, "out"), asm.jle(R7, COPY, "sized"), asm.mov(R7, COPY),
        asm.label("sized"),
        *helpers.probe_read_kernel(fp(_UDP), 8, R9), asm.jne(R0, 0, "out"),
        asm.load(asm.H, R1, R10, _UDP), asm.jne(R1, _SPORT, "out"),
        *ringbuf.reserve(events, SIZE, "out"), asm.mov(R8, R0),
        asm.call(Helper.KTIME_GET_NS), asm.store(asm.DW, R8, 0, R0),
        asm.store(asm.W, R8, 8, R7),
        asm.mov(R1, R8), asm.add(R1, HEAD.size), asm.mov(R2, R7), asm.mov(R3, R9),
        asm.call(Helper.PROBE_READ_KERNEL), asm.jne(R0, 0, "drop"),
        *ringbuf.submit(R8), asm.ja("out"),
        asm.label("drop"), *ringbuf.discard(R8),
        asm.label("out"), *raw.ret(0),
    ]


def _name(msg: bytes, off: int) -> tuple[str, int]:
    """The domain name at ``off`` (compression pointers followed) and the offset after it."""
    labels: list[str] = []
    end = None
    for _ in range(128):                  # a loop of pointers ends here
        n = msg[off]
        if n & 0xC0 == 0xC0:
            if end is None:
                end = off + 2
            off = (n & 0x3F) << 8 | msg[off + 1]
            continue
        if n == 0:
            return ".".join(labels), off + 1 if end is None else end
        labels.append(msg[off + 1:off + 1 + n].decode("ascii", "replace"))
        off += 1 + n
    raise ValueError("DNS name: too many labels or pointers")


def answers(record: bytes) -> tuple[int, str, list[str]] | None:
    """``(ktime ns, question, addresses)`` of a DNS response record from :func:`program`,
    None for a query, a message without exactly one question, or a malformed one."""
    ts, n = HEAD.unpack_from(record)
    udp = record[HEAD.size:HEAD.size + n]
    msg = udp[8:max(8, int.from_bytes(udp[4:6], "big"))]   # the UDP length
    try:
        _id, flags, questions, count = struct.unpack_from("!HHHH", msg)
        if not flags & 0x8000 or questions != 1 or count == 0:
            return None
        qname, off = _name(msg, 12)
        off += 4                                             # qtype, qclass
        found = []
        for _ in range(count):
            _, off = _name(msg, off)
            rtype, _cls, _ttl, size = struct.unpack_from("!HHIH", msg, off)
            data = msg[off + 10:off + 10 + size]
            off += 10 + size
            if rtype == 1 and len(data) == 4:
                found.append(str(ipaddress.IPv4Address(data)))
            elif rtype == 28 and len(data) == 16:
                found.append(str(ipaddress.IPv6Address(data)))
    except (struct.error, IndexError, ValueError):
        return None
    return ts, qname, found


class Cache:
    """Addresses to the name they were an answer for, as bcc's ``dns_cache``."""

    def __init__(self) -> None:
        self.seen: dict[str, tuple[str, int]] = {}

    def add(self, record: bytes) -> None:
        got = answers(record)
        if got is None:
            return
        ts, qname, addrs = got
        for a in addrs:
            self.seen.pop(a, None)
            self.seen[a] = (qname, ts)
        while len(self.seen) > MAX_ENTRIES:
            del self.seen[next(iter(self.seen))]

    def query(self, addr: str, ts_ns: int) -> str:
        """bcc's QUERY column for a connect to ``addr`` at ``ts_ns``: the name (and the
        time since its answer when over 100 ms), ``localhost`` or ``No DNS Query``."""
        name, at = self.seen.get(addr, ("", 0))
        if name and ts_ns - at <= TTL_NS:
            ms = (ts_ns - at) / 1e6
            return name + (f" ({ms:.3f}ms)" if ms > SLOW_MS else "")
        return "localhost" if addr in ("127.0.0.1", "::1") else "No DNS Query"
