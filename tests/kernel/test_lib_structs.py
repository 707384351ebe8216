"""Packed Struct layouts (clj-ebpf defevent): the seed's ConnectionEvent is 44 bytes packed,
48 with C alignment; a program writes packed (misaligned) fields into a ring buffer record
and Python decodes them with the same layout."""

from __future__ import annotations

import pytest

import ebpf
from ebpf import asm
from ebpf.asm import R0, R6, R7, R8
from ebpf.lib import ringbuf
from ebpf.lib.structs import Struct
from ebpf.platform import Capability
from ebpf.ringbuf import RingBuffer

pytestmark = pytest.mark.capabilities(Capability.BPF)

FIELDS = [("timestamp", "u64"), ("pid", "u32"), ("saddr", "be32"), ("daddr", "be32"),
          ("sport", "be16"), ("dport", "be16"), ("protocol", "u8"), ("direction", "u8"),
          ("padding", "u8[2]"), ("comm", "char[16]")]
Connection = Struct("ConnectionEvent", FIELDS, packed=True)
Odd = Struct("Odd", [("tag", "u8"), ("value", "u32"), ("big", "u64"), ("port", "be16")],
             packed=True)


def test_layouts() -> None:
    assert Connection.size == 44 and Struct("C", FIELDS).size == 48
    assert Connection.offset("pid") == 8 and Connection.offset("comm") == 28
    assert (Odd.size, Odd.offset("value"), Odd.offset("big"), Odd.offset("port")) == (15, 1, 5, 13)
    assert Odd.dtype.itemsize == 15 and "packed" in repr(Odd)
    raw = Odd.encode(tag=1, value=0x01020304, big=2**40, port=443)
    assert raw == bytes([1, 4, 3, 2, 1]) + (2**40).to_bytes(8, "little") + b"\x01\xbb"
    assert Odd.decode(raw) == (1, 0x01020304, 2**40, 443)


def test_program_writes_packed_fields_to_a_ring_buffer() -> None:
    with ebpf.Map.create(ebpf.MapType.RINGBUF, max_entries=1 << 12) as rbm:
        items: list[asm.Item] = [
            asm.mov(R6, 0x11223344), asm.load_imm64(R7, 0x0102030405060708),
            ringbuf.emit(rbm, Odd, {"tag": 9, "value": R6, "big": R7, "port": 8080},
                         on_fail="out"),
            asm.mov(R8, 4242),
            ringbuf.emit(rbm, Connection, {"pid": R8, "sport": 53, "dport": 1234,
                                           "protocol": 17, "direction": 1}, on_fail="out"),
            asm.label("out"), asm.mov(R0, 2), asm.exit(),
        ]
        with ebpf.Program.load(ebpf.ProgramType.XDP, items) as prog, RingBuffer(rbm) as rb:
            prog.test_run(data=bytes(64))
            recs = list(rb.read(copy=True))
        assert [len(r) for r in recs] == [15, 44]
        assert Odd.decode(recs[0]) == (9, 0x11223344, 0x0102030405060708, 8080)
        ev = Connection.decode(recs[1])
        assert (ev.pid, ev.sport, ev.dport, ev.protocol, ev.direction) == (4242, 53, 1234, 17, 1)
