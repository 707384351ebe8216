"""The map codecs of ``ebpf.bpf`` types (``T.codec()``), without a kernel: what a map typed
by a ``bpf.Struct`` or an integer type encodes, decodes and refuses."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ebpf import bpf
from ebpf._codec import IntCodec, PerCPUCodec, RecordCodec, StructCodec, make_codec
from ebpf.bpf import be16, be32, i8, i16, i32, i64, u8, u16, u32, u64

INTS = [u8, u16, u32, u64, i8, i16, i32, i64]


class Rec(bpf.Struct):
    a: u32
    b: i16
    port: be16
    name: bpf.bytes_[5]
    c: i64


class Other(bpf.Struct):
    x: u64


@pytest.mark.parametrize("t", INTS, ids=lambda t: t.__name__)
def test_int_codecs_cover_the_type_range(t: type[bpf.u8]) -> None:
    c = t.codec()
    assert isinstance(c, IntCodec) and c.size == t.size and c.signed == t.signed
    for v in (t.min(), t.max(), 0):
        assert c.decode(c.encode(v)) == v
    assert c.encode(t.min()) == t.min().to_bytes(t.size, "little", signed=t.signed)
    for bad in (t.min() - 1, t.max() + 1):
        with pytest.raises(ValueError, match="does not fit"):
            c.encode(bad)
    assert c.dtype.itemsize == t.size and c.dtype.kind == ("i" if t.signed else "u")


@pytest.mark.parametrize("t", [be16, be32], ids=lambda t: t.__name__)
def test_big_endian_codecs_store_network_order(t: type[bpf.u8]) -> None:
    c = t.codec()
    assert isinstance(c, StructCodec) and c.size == t.size
    assert c.encode(0x0102) == (0x0102).to_bytes(t.size, "big")
    assert c.decode((0x0A0B).to_bytes(t.size, "big")) == 0x0A0B


def test_struct_codec_round_trips_instances_and_takes_raw_bytes() -> None:
    c = Rec.codec()
    assert isinstance(c, RecordCodec) and c.size == Rec.size
    r = Rec(a=1, b=-2, port=443, name=b"ab", c=-(1 << 63))
    raw = c.encode(r)
    assert raw == r.encode() and c.decode(raw) == r
    assert c.decode(bytes(3) + raw, 3) == r                 # at an offset
    assert c.encode(raw) == raw and c.encode(bytearray(raw)) == raw
    assert c.dtype == Rec.dtype()
    assert c.decode_many(raw * 3, 3) == [r, r, r]
    assert c.encode_many([r, r]) == raw * 2


def test_struct_codec_refuses_other_values() -> None:
    c = Rec.codec()
    for bad in (5, None, (1, 2), Other(), {"a": 1}):
        with pytest.raises(TypeError, match="Rec"):
            c.encode(bad)
    with pytest.raises(ValueError, match=f"{Rec.size} bytes"):
        c.encode(bytes(Rec.size + 1))
    r = Rec()
    r.a = "x"                                               # a field that cannot encode
    with pytest.raises(ValueError, match="value"):
        c.encode(r)
    buf = bytearray(b"\xff" * Rec.size)
    with pytest.raises(ValueError):
        c.encode_into(r, buf)
    assert buf == b"\xff" * Rec.size                        # nothing written on error


def test_make_codec_takes_the_types_themselves() -> None:
    k = make_codec(Rec, Rec.size, "key")
    assert isinstance(k, RecordCodec) and k.what == "key"
    with pytest.raises(TypeError, match="key must be a Rec"):
        k.encode(1)
    assert make_codec(i32, 4).decode(struct.pack("=i", -5)) == -5
    with pytest.raises(ValueError, match="is 8 bytes but the map's value_size is 4"):
        make_codec(Other, 4)
    with pytest.raises(TypeError, match="cannot use"):
        make_codec(object(), 4)


def test_per_cpu_struct_values() -> None:
    c = PerCPUCodec(Rec.codec(), 3)
    one = Rec(a=7)
    assert c.stride == Rec.size and list(c.decode(c.encode(one))) == [one] * 3
    each = [Rec(a=i, b=-i) for i in range(3)]
    assert list(c.decode(c.encode(each))) == each
    with pytest.raises(ValueError, match="needs 3 values"):
        c.encode(each[:2])


@given(a=st.integers(0, (1 << 32) - 1), b=st.integers(-(1 << 15), (1 << 15) - 1),
       port=st.integers(0, 0xFFFF), name=st.binary(max_size=5).map(lambda s: s.split(b"\0")[0]),
       c=st.integers(-(1 << 63), (1 << 63) - 1))
def test_struct_codec_agrees_with_numpy(a: int, b: int, port: int, name: bytes, c: int) -> None:
    np = pytest.importorskip("numpy")
    r = Rec(a=a, b=b, port=port, name=name, c=c)
    codec = Rec.codec()
    row = np.frombuffer(codec.encode(r), codec.dtype)[0]
    assert (int(row["a"]), int(row["b"]), int(row["port"]), bytes(row["name"]),
            int(row["c"])) == (a, b, port, name, c)
    assert codec.decode(row.tobytes()) == r
