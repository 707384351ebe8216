"""Key/value codecs: round trips, size and type checks (no kernel)."""

from __future__ import annotations

import ctypes
import ipaddress
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ebpf._codec import (
    CtypesCodec,
    FdCodec,
    IntCodec,
    LPMKeyCodec,
    NumpyCodec,
    PerCPUCodec,
    PerCPUValues,
    RawCodec,
    StructCodec,
    make_codec,
    round_up,
)


class Flow(ctypes.Structure):
    _fields_ = (("saddr", ctypes.c_uint32), ("daddr", ctypes.c_uint32),
                ("sport", ctypes.c_uint16), ("dport", ctypes.c_uint16),
                ("proto", ctypes.c_uint8))


def test_round_up() -> None:
    assert [round_up(n, 8) for n in (0, 1, 7, 8, 9, 12, 16)] == [0, 8, 8, 8, 16, 16, 16]


@given(st.integers(0, 2**32 - 1))
def test_int_roundtrip_u32(v: int) -> None:
    c = IntCodec(4)
    assert c.decode(c.encode(v)) == v
    assert c.encode(v) == struct.pack("=I", v)


@given(st.integers(-(2**63), 2**63 - 1))
def test_int_roundtrip_s64(v: int) -> None:
    c = IntCodec(8, signed=True)
    assert c.decode(c.encode(v)) == v


@pytest.mark.parametrize("bad", [-1, 2**32, 2**40])
def test_int_out_of_range_is_valueerror(bad: int) -> None:
    with pytest.raises(ValueError, match="does not fit"):
        IntCodec(4, what="key").encode(bad)


@pytest.mark.parametrize("bad", [1.5, "1", None, object()])
def test_int_wrong_type_is_typeerror(bad: object) -> None:
    with pytest.raises(TypeError):
        IntCodec(4).encode(bad)


def test_raw_bytes_accepted_by_every_codec_and_checked() -> None:
    for c in (IntCodec(4), RawCodec(4), StructCodec("HH"), CtypesCodec(ctypes.c_uint32)):
        assert c.encode(b"\x01\x02\x03\x04") == b"\x01\x02\x03\x04"
        assert c.encode(memoryview(b"\x01\x02\x03\x04")) == b"\x01\x02\x03\x04"
        with pytest.raises(ValueError, match="must be 4 bytes, got 3"):
            c.encode(b"abc")
        with pytest.raises(ValueError):
            c.encode(bytearray(5))


def test_raw_codec() -> None:
    c = RawCodec(3)
    assert c.decode(b"xyz") == b"xyz"
    with pytest.raises(TypeError):
        c.encode(5)


def test_decode_does_not_alias_buffer() -> None:
    buf = bytearray(b"abcd")
    for c in (RawCodec(4), CtypesCodec(ctypes.c_char * 4), NumpyCodec("u1, u1, u1, u1")):
        v = c.decode(buf)
        buf[0] = 0x7A
        assert bytes(v)[0] == ord("a") if c.size else True
        buf[0] = ord("a")


def test_struct_codec() -> None:
    c = StructCodec("IH")
    assert c.size == 6  # struct adds no trailing padding (C would make this 8)
    assert c.decode(c.encode((1, 2))) == (1, 2)
    with pytest.raises(ValueError, match="2 field"):
        c.encode((1,))
    with pytest.raises(ValueError):
        c.encode((1, 70000))
    single = StructCodec(struct.Struct("=Q"))
    assert single.decode(single.encode(7)) == 7
    s = StructCodec("4s")
    assert s.decode(s.encode(b"ab\0\0")) == b"ab\0\0"


def test_ctypes_simple_decodes_to_scalar() -> None:
    c = CtypesCodec(ctypes.c_uint64)
    assert c.fmt in ("Q", "L")
    assert c.decode(c.encode(5)) == 5
    assert c.encode(ctypes.c_uint64(9)) == struct.pack("=Q", 9)
    with pytest.raises(ValueError):
        c.encode(-1)
    with pytest.raises(TypeError):
        c.encode("x")
    d = CtypesCodec(ctypes.c_double)
    assert d.decode(d.encode(1.5)) == 1.5


def test_ctypes_structure() -> None:
    c = CtypesCodec(Flow)
    assert c.size == ctypes.sizeof(Flow) == 16
    f = Flow(1, 2, 3, 4, 6)
    out = c.decode(c.encode(f))
    assert isinstance(out, Flow)
    assert (out.saddr, out.daddr, out.sport, out.dport, out.proto) == (1, 2, 3, 4, 6)
    assert bytes(c.decode(c.encode((1, 2, 3, 4, 6)))) == bytes(f)
    assert c.decode(c.encode({"sport": 80})).sport == 80
    with pytest.raises(TypeError):
        c.encode(5)

    class Other(ctypes.Structure):
        _fields_ = (("x", ctypes.c_uint64), ("y", ctypes.c_uint64))

    with pytest.raises(TypeError):
        c.encode(Other())


def test_ctypes_array() -> None:
    c = CtypesCodec(ctypes.c_uint64 * 4)
    v = c.decode(c.encode([1, 2, 3, 4]))
    assert list(v) == [1, 2, 3, 4]


def test_numpy_codec() -> None:
    np = pytest.importorskip("numpy")
    dt = np.dtype([("pid", "<u4"), ("ts", "<u8")], align=True)
    c = make_codec(dt, None)
    assert isinstance(c, NumpyCodec)
    assert c.size == 16
    rec = c.decode(c.encode((7, 99)))
    assert rec["pid"] == 7 and rec["ts"] == 99
    arr = np.zeros(1, dt)
    arr[0] = (1, 2)
    assert c.encode(arr[0]) == arr.tobytes()
    assert make_codec(np.uint32, 4).decode(b"\x01\0\0\0") == 1
    vals = c.decode_many(c.encode_many([(1, 2), (3, 4)]), 2)
    assert [int(v["pid"]) for v in vals] == [1, 3]


def test_percpu_codec_layout() -> None:
    c = PerCPUCodec(IntCodec(4), 3)
    assert c.stride == 8 and c.size == 24  # round_up(4, 8) per CPU
    raw = c.encode(5)
    assert raw == (struct.pack("=I", 5) + b"\0" * 4) * 3
    v = c.decode(raw)
    assert isinstance(v, PerCPUValues) and v == (5, 5, 5)
    assert v.sum() == 15 and v.max() == 5 and v.min() == 5
    assert c.decode(c.encode([1, 2, 3])) == (1, 2, 3)
    with pytest.raises(ValueError, match="3 values"):
        c.encode([1, 2])
    c8 = PerCPUCodec(IntCodec(8), 2)
    assert c8.decode(c8.encode([1, 2])).sum() == 3
    assert c8.decode(bytes(c8.encode([4, 5]))) == (4, 5)


def test_percpu_struct_values() -> None:
    c = PerCPUCodec(StructCodec("=IIB"), 2)  # 9 bytes -> stride 16
    assert c.stride == 16
    assert c.decode(c.encode((1, 2, 3))) == ((1, 2, 3), (1, 2, 3))
    assert c.decode(c.encode([(1, 2, 3), (4, 5, 6)])) == ((1, 2, 3), (4, 5, 6))


def test_fd_codec() -> None:
    class F:
        def fileno(self) -> int:
            return 42

    c = FdCodec()
    assert c.decode(c.encode(F())) == 42
    assert c.decode(c.encode(7)) == 7
    with pytest.raises(TypeError):
        c.encode("x")


def test_lpm_codec() -> None:
    c = LPMKeyCodec(8)
    raw = c.encode("10.0.0.0/8")
    assert raw == struct.pack("=I", 8) + bytes([10, 0, 0, 0])
    assert c.decode(raw) == ipaddress.ip_network("10.0.0.0/8")
    assert c.encode("10.1.2.3") == struct.pack("=I", 32) + bytes([10, 1, 2, 3])
    assert c.encode((16, 0x0A010000)) == struct.pack("=I", 16) + bytes([10, 1, 0, 0])
    assert c.encode((24, b"\x0a\x01\x02\x00")) == struct.pack("=I", 24) + b"\x0a\x01\x02\x00"
    with pytest.raises(ValueError):
        c.encode((33, b"\0\0\0\0"))
    with pytest.raises(ValueError):
        c.encode("::1")  # 16 bytes into a 4-byte trie
    c6 = LPMKeyCodec(20)
    assert c6.decode(c6.encode("2001:db8::/32")) == ipaddress.ip_network("2001:db8::/32")
    odd = LPMKeyCodec(6)
    assert odd.decode(odd.encode((9, b"\xff\x80"))) == (9, b"\xff\x80")


def test_make_codec_defaults_and_mismatch() -> None:
    assert isinstance(make_codec(None, 4), IntCodec)
    assert isinstance(make_codec(None, 8), IntCodec)
    assert isinstance(make_codec(None, 12), RawCodec)
    assert isinstance(make_codec(bytes, 4), RawCodec)
    assert isinstance(make_codec(ctypes.c_uint64, None), CtypesCodec)
    assert isinstance(make_codec("=IQ", None), StructCodec)
    with pytest.raises(ValueError, match="8 bytes but the map's key_size is 4"):
        make_codec(ctypes.c_uint64, 4, "key")
    with pytest.raises(TypeError):
        make_codec(None, None, "key")
    with pytest.raises(TypeError):
        make_codec(3.5, 4)
    with pytest.raises(ValueError):
        make_codec(int, 3)


def test_encode_many_decode_many() -> None:
    c = IntCodec(4)
    buf = c.encode_many(range(10))
    assert len(buf) == 40
    assert c.decode_many(buf, 10) == list(range(10))
    with pytest.raises(ValueError):
        c.encode_many([1, -1])
    s = StructCodec("=HH")
    assert s.decode_many(s.encode_many([(1, 2), (3, 4)]), 2) == [(1, 2), (3, 4)]
    with pytest.raises(ValueError, match="expected 3"):
        c.encode_many([1, 2], 3)
