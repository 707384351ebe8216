"""The scalar-map fast path (issue 13): ints through the slot's cast memoryviews; the first
``bytes`` key or value switches the map to the class that copies exact-size ``bytes`` in
directly; everything else goes through the codec with its precise error. Every form must reach
the same kernel element."""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterator

import numpy as np
import pytest

from ebpf import MapType
from ebpf._maps import Map, _ScalarBytesMap, _ScalarMap


class Port(enum.IntEnum):
    HTTP = 80


@pytest.fixture
def m() -> Iterator[Map]:
    with Map.create(MapType.HASH, key_size=4, value_size=8, max_entries=64) as mp:
        assert type(mp) is _ScalarMap
        yield mp


def test_bytes_and_int_keys_name_the_same_element(m: Map) -> None:
    m[5] = 1
    assert m[5] == 1 and 5 in m and m.get(6) is None
    assert type(m) is _ScalarMap  # ints only: no bytes test on the hot path
    m[b"\x05\0\0\0"] = 7
    assert type(m) is _ScalarBytesMap and repr(m).startswith("<Map HASH")
    assert m[5] == 7 and m[b"\x05\0\0\0"] == 7
    assert m.get(b"\x05\0\0\0") == 7 and m.get(b"\x06\0\0\0", -1) == -1
    assert b"\x05\0\0\0" in m and 5 in m
    assert b"\x06\0\0\0" not in m and 6 not in m
    m[6] = struct.pack("=Q", 1 << 40)  # bytes value of the exact size
    assert m[6] == 1 << 40


@pytest.mark.parametrize("op", ["get", "in", "getitem", "value"])
def test_first_bytes_use_switches_class(m: Map, op: str) -> None:
    m[3] = 9
    k = b"\x03\0\0\0"
    if op == "get":
        assert m.get(k) == 9
    elif op == "in":
        assert k in m
    elif op == "getitem":
        assert m[k] == 9
    else:
        m[3] = struct.pack("=Q", 10)
        assert m[3] == 10
    assert type(m) is _ScalarBytesMap
    assert m[k] == m[3] and k in m and m.get(b"\x04\0\0\0", -1) == -1


def test_int_like_keys_and_values(m: Map) -> None:
    m[Port.HTTP] = np.uint64(3)
    m[np.uint32(81)] = True
    assert m[80] == 3 and m[81] == 1
    assert Port.HTTP in m and np.uint32(81) in m


@pytest.mark.parametrize("bad", [b"\x01\0\0", bytearray(5), memoryview(bytes(3))])
def test_wrong_sized_bytes_keys_refused(m: Map, bad: object) -> None:
    for op in (lambda: m[bad], lambda: m.__setitem__(bad, 1), lambda: m.get(bad),
               lambda: bad in m):
        with pytest.raises(ValueError, match="key must be 4 bytes"):
            op()
    with pytest.raises(ValueError, match="value must be 8 bytes"):
        m[1] = b"\0" * 7
    assert len(m) == 0  # nothing was written
    assert len(m._pool) == 1  # the slot went back to the pool after every error
    assert type(m) is _ScalarMap  # refused bytes switch nothing


def test_out_of_range_and_wrong_types_refused(m: Map) -> None:
    with pytest.raises(ValueError):
        m[1 << 32] = 1
    with pytest.raises(ValueError):
        m[1] = -1
    with pytest.raises(TypeError):
        m["1"] = 1
    with pytest.raises(TypeError):
        m[1.0]
    with pytest.raises(KeyError):
        m[1]
