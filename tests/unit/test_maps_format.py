"""Pure parts of the map and ring buffer layers: record walking, batches, BTF blobs, defaults.

No kernel: ring data is laid out by hand in a bytearray the way kernel/bpf/ringbuf.c does.
"""

from __future__ import annotations

import struct

import pytest

from ebpf import MapFlags, MapType
from ebpf._maps import _defaults, value_btf
from ebpf._sys.attrs import object_name
from ebpf.ringbuf import _BUSY, _DISCARD, RecordBatch, _cutter, _runs


def ring(records: list[tuple[bytes, int]]) -> bytearray:
    """Records (payload, flag bits) with 8-byte headers, each padded to 8 bytes."""
    out = bytearray()
    for payload, flags in records:
        out += struct.pack("=Ii", len(payload) | flags, 0) + payload
        out += bytes(-len(out) % 8)
    return out


def walk(buf: bytearray) -> list[tuple[int, int, int, int]]:
    return list(_runs(memoryview(buf).cast("I"), 0, len(buf)))


def test_runs_of_uniform_records_found_in_one_step() -> None:
    buf = ring([(bytes([i]) * 16, 0) for i in range(100)])
    runs = walk(buf)
    assert sum(k for _, _, _, k in runs) == 100
    assert all(ln == 16 and step == 24 for _, ln, step, _ in runs)
    assert len(runs) <= 4  # windows of 16, 32, 64 ... records


def test_runs_discard_busy_and_mixed_sizes() -> None:
    buf = ring([(b"a" * 8, 0), (b"b" * 8, 0), (b"c" * 8, _DISCARD), (b"d" * 24, 0),
                (b"e" * 5, 0), (b"f" * 8, _BUSY), (b"g" * 8, 0)])
    runs = walk(buf)
    assert runs[0] == (0, 8, 16, 2)
    assert runs[1] == (32, -1, 16, 1)  # discarded
    assert runs[2] == (48, 24, 32, 1)
    assert runs[3] == (80, 5, 16, 1)  # 5 bytes pad to 16 with the header
    assert runs[4][3] == 0  # BUSY ends the walk; the record after it is not reached
    assert len(runs) == 5


def test_cutter_extracts_payloads() -> None:
    buf = ring([(bytes([i]) * 5, 0) for i in range(3)])
    got = [t[0] for t in _cutter(5, 16).iter_unpack(memoryview(buf))]
    assert got == [b"\0" * 5, b"\1" * 5, b"\2" * 5]


def test_record_batch() -> None:
    b = RecordBatch()
    assert len(b) == 0 and list(b) == []
    b.data += b"xxxxAAAAyyBBBBBB"
    b.offsets.extend([4, 10])
    b.lengths.extend([4, 6])
    assert len(b) == 2
    assert [bytes(r) for r in b] == [b"AAAA", b"BBBBBB"]
    assert bytes(b[1]) == b"BBBBBB"
    assert [bytes(r) for r in b[0:1]] == [b"AAAA"]
    np = pytest.importorskip("numpy")
    arr = b.numpy(np.dtype("S4"))
    assert list(arr) == [b"AAAA", b"BBBB"]
    with pytest.raises(ValueError):
        b.numpy(np.dtype("S5"))


def test_value_btf_layout() -> None:
    """The value BTF of storage/spin-lock maps, as our reader sees it."""
    from ebpf import btf
    from ebpf.btf.writer import BTFWriter

    w = BTFWriter()
    i = w.int_("int", 4, signed=True)
    lock = w.struct("bpf_spin_lock", [("val", i, 0)], size=4)
    data = w.array(w.int_("unsigned char", 1), 12, index_type=i)
    v = w.struct("value", [("lock", lock, 0), ("data", data, 32)], size=16)
    spec = btf.Spec.from_bytes(w.encode())
    t = spec[v]
    assert isinstance(t, btf.Struct) and t.size == 16
    assert [(m.name, m.offset) for m in t.members] == [("lock", 0), ("data", 32)]


def test_value_btf_refuses_tiny_spin_lock_values() -> None:
    with pytest.raises(ValueError):
        value_btf(2, spin_lock=True)


def test_defaults_per_type() -> None:
    assert _defaults(MapType.RINGBUF, None, None, 4096, 0) == (0, 0, 4096, 0)
    assert _defaults(MapType.QUEUE, None, 8, 4, 0) == (0, 8, 4, 0)
    with pytest.raises(ValueError):
        _defaults(MapType.STACK, 4, 8, 4, 0)
    assert _defaults(MapType.ARRAY, None, 8, 4, 0)[0] == 4
    assert _defaults(MapType.PROG_ARRAY, None, None, 4, 0)[:2] == (4, 4)
    ks, vs, me, flags = _defaults(MapType.LPM_TRIE, 8, 4, 16, 0)
    assert flags & MapFlags.NO_PREALLOC
    ks, vs, me, flags = _defaults(MapType.SK_STORAGE, None, 16, None, 0)
    assert (ks, vs, me) == (4, 16, 0) and flags & MapFlags.NO_PREALLOC
    assert _defaults(MapType.CGROUP_STORAGE, None, 8, None, 0)[:3] == (16, 8, 0)
    assert _defaults(MapType.ARENA, None, None, 4, 0)[3] & MapFlags.MMAPABLE
    with pytest.raises(TypeError):
        _defaults(MapType.HASH, None, 8, 4, 0)


def test_object_names_kernel_rules() -> None:
    """[A-Za-z0-9_.] as the kernel accepts, cut to 15 bytes; anything else is an error (it
    used to be dropped silently, issue 14)."""
    from ebpf.errors import InvalidArgumentError

    assert object_name("counts") == b"counts"
    assert object_name("d.e_f9") == b"d.e_f9"
    assert len(object_name("x" * 40)) == 15
    for bad in ("a-b c/d.e_f", "caf\u00e9", "a\0b"):
        with pytest.raises(InvalidArgumentError, match="name"):
            object_name(bad)


def test_busy_and_discard_bits() -> None:
    assert _BUSY == 1 << 31 and _DISCARD == 1 << 30
