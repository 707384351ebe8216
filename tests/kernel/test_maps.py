"""Map protocol against the real kernel: dict operations, flags, typed keys and values, sizes
checked before any syscall, per-CPU layout, batches, pinning, freeze, mmap, threads."""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import ebpf
from ebpf import MapFlags, MapType, ProgramType, UpdateFlags, asm, errors, platform
from ebpf import _maps as maps_mod
from ebpf._codec import PerCPUCodec, PerCPUValues
from ebpf._maps import BloomFilter, Map, MapEntry, QueueMap
from ebpf._sys import syscall as sc
from ebpf.asm import R0, R1, R2, R10, Helper

NCPU = platform.possible_cpus()


class FlowKey(ctypes.Structure):
    _fields_ = (("saddr", ctypes.c_uint32), ("daddr", ctypes.c_uint32),
                ("sport", ctypes.c_uint16), ("dport", ctypes.c_uint16),
                ("proto", ctypes.c_uint8))


@pytest.fixture
def counts() -> Iterator[Map]:
    with Map.create(MapType.HASH, key_size=4, value_size=8, max_entries=1024,
                    name="counts") as m:
        yield m


@pytest.fixture
def no_syscalls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record every bpf(2) the map layer makes; tests assert the list stays empty."""
    calls: list[int] = []
    real_raw, real_bpf = maps_mod._raw_syscall, sc.bpf

    def raw(nr: int, cmd: int, ref: Any, size: int) -> int:
        calls.append(cmd)
        return int(real_raw(nr, cmd, ref, size))

    def bpf(cmd: int, attr: Any, size: int = 0, keep: object = None) -> int:
        calls.append(cmd)
        return real_bpf(cmd, attr, size, keep)

    monkeypatch.setattr(maps_mod, "_raw_syscall", raw)
    monkeypatch.setattr(sc, "bpf", bpf)
    return calls


def test_api_shape_from_the_design(counts: Map) -> None:
    counts[1] = 5
    assert counts[1] == 5
    del counts[1]
    with pytest.raises(KeyError):
        counts[1]
    counts.update({i: i * i for i in range(10)})
    assert dict(counts.items()) == {i: i * i for i in range(10)}
    assert counts.name == "counts" and counts.info().name == "counts"
    assert counts.fileno() == counts.fd.fileno() >= 0
    assert repr(counts).startswith("<Map HASH 'counts'")


def test_dict_protocol(counts: Map) -> None:
    assert 3 not in counts and counts.get(3) is None and counts.get(3, "x") == "x"
    counts[3] = 9
    assert 3 in counts and counts.get(3) == 9
    assert counts.setdefault(3, 1) == 9
    assert counts.setdefault(4, 1) == 1
    assert sorted(counts) == [3, 4] == sorted(counts.keys())
    assert sorted(counts.values()) == [1, 9]
    assert len(counts) == 2 and bool(counts)
    assert counts.pop(3) == 9 and 3 not in counts
    assert counts.pop(3, None) is None
    with pytest.raises(KeyError):
        counts.pop(3)
    k, v = counts.popitem()
    assert (k, v) == (4, 1)
    with pytest.raises(KeyError):
        counts.popitem()
    counts.update([(1, 1), (2, 2)])
    counts.update(7, 70)  # the single-element form
    counts.clear()
    assert len(counts) == 0 and list(counts.items()) == []


def test_update_flags(counts: Map) -> None:
    counts.put(1, 10, UpdateFlags.NOEXIST)
    with pytest.raises(errors.KeyExistsError):
        counts.put(1, 11, UpdateFlags.NOEXIST)
    counts.put(1, 12, UpdateFlags.EXIST)
    assert counts[1] == 12
    with pytest.raises(KeyError):
        counts.put(2, 1, UpdateFlags.EXIST)
    with pytest.raises(errors.KeyExistsError):
        counts.update({1: 3}, flags=UpdateFlags.NOEXIST)


def test_missed_lookup_is_keyerror_and_logs_nothing(
        counts: Map, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(KeyError) as ei:
        counts[12345]
    assert isinstance(ei.value, errors.KeyNotFoundError)
    assert ei.value.errno == errno.ENOENT
    assert counts.get(12345) is None
    assert 12345 not in counts
    with pytest.raises(KeyError):
        del counts[12345]
    assert caplog.records == []
    out, err = capfd.readouterr()
    assert out == err == ""


@pytest.mark.parametrize("bad_key, exc", [
    (b"abc", ValueError), (b"abcde", ValueError), (2**32, ValueError), (-1, ValueError),
    (1.5, TypeError), ("1", TypeError), (None, TypeError),
])
def test_wrong_key_rejected_before_any_syscall(counts: Map, no_syscalls: list[int],
                                               bad_key: object, exc: type) -> None:
    for op in (lambda: counts[bad_key], lambda: counts.__setitem__(bad_key, 1),
               lambda: counts.__delitem__(bad_key), lambda: counts.get(bad_key),
               lambda: bad_key in counts, lambda: counts.put(bad_key, 1, UpdateFlags.ANY)):
        with pytest.raises(exc):
            op()
    assert no_syscalls == []


@pytest.mark.parametrize("bad_value, exc", [
    (b"1234567", ValueError), (bytes(9), ValueError), (2**64, ValueError), (-5, ValueError),
    (1.0, TypeError), (object(), TypeError),
])
def test_wrong_value_rejected_before_any_syscall(counts: Map, no_syscalls: list[int],
                                                 bad_value: object, exc: type) -> None:
    with pytest.raises(exc):
        counts[1] = bad_value
    with pytest.raises(exc):
        counts.put(1, bad_value, UpdateFlags.NOEXIST)
    with pytest.raises(exc):
        counts.update({1: bad_value, 2: 3})
    assert no_syscalls == []


def test_wrong_types_at_create_rejected_before_syscall(no_syscalls: list[int]) -> None:
    with pytest.raises(ValueError, match="8 bytes but the map's key_size is 4"):
        Map.create(MapType.HASH, key_size=4, key=ctypes.c_uint64, value_size=8,
                   max_entries=1)
    with pytest.raises(TypeError):
        Map.create(MapType.HASH, value_size=8, max_entries=1)
    with pytest.raises(ValueError, match="no keys"):
        Map.create(MapType.QUEUE, key_size=4, value_size=4, max_entries=1)
    assert no_syscalls == []


def test_raw_bytes_keys_and_values(counts: Map) -> None:
    counts[b"\x01\0\0\0"] = struct.pack("=Q", 7)
    assert counts[1] == 7
    with Map.create(MapType.HASH, key_size=6, value_size=3, max_entries=4) as m:
        m[b"abcdef"] = b"xyz"
        assert m[b"abcdef"] == b"xyz"
        assert dict(m.items()) == {b"abcdef": b"xyz"}


def test_typed_ctypes_struct_numpy_values() -> None:
    with Map.create(MapType.LRU_HASH, key=FlowKey, value=ctypes.c_uint64,
                    max_entries=64) as flows:
        assert flows.key_size == 16 and flows.value_size == 8
        k = FlowKey(1, 2, 80, 443, 6)
        flows[k] = 10
        flows[FlowKey(1, 2, 80, 444, 6)] = 11
        assert flows[k] == 10
        got = dict((bytes(kk), v) for kk, v in flows.items())
        assert got[bytes(k)] == 10
        assert all(isinstance(kk, FlowKey) for kk in flows)
    with Map.create(MapType.HASH, key="=HH", value="=Iq", max_entries=8) as m:
        m[(1, 2)] = (3, -4)
        assert m[(1, 2)] == (3, -4)
    ev = np.dtype([("pid", "<u4"), ("ts", "<u8")], align=True)
    with Map.create(MapType.ARRAY, key_size=4, value=ev, max_entries=4) as m:
        m[0] = (7, 1 << 40)
        rec = m[0]
        assert rec["pid"] == 7 and rec["ts"] == 1 << 40
        m.key_codec  # noqa: B018 - property access
        with pytest.raises(ValueError):
            Map.create(MapType.ARRAY, key_size=4, value=ev, value_size=8, max_entries=1)


@pytest.mark.parametrize("value_size", [4, 8, 12, 16])
def test_percpu_values_sized_round_up_times_possible_cpus(value_size: int) -> None:
    """The kernel writes round_up(value_size, 8) bytes for each *possible* CPU."""
    with Map.create(MapType.PERCPU_ARRAY, key_size=4, value_size=value_size,
                    max_entries=4) as m:
        codec = m.value_codec
        assert isinstance(codec, PerCPUCodec)
        assert codec.size == ((value_size + 7) // 8) * 8 * NCPU
        raw = m[0]
        assert isinstance(raw, PerCPUValues) and len(raw) == NCPU
        one = bytes(range(1, value_size + 1)) if value_size not in (4, 8) else 5
        m[1] = one
        assert list(m[1]) == [one] * NCPU
        if value_size == 8:
            m[2] = list(range(10, 10 + NCPU))
            assert m[2].sum() == sum(range(10, 10 + NCPU)) and m[2].max() == 9 + NCPU
            keys, values = m.lookup_batch()
            assert keys == [0, 1, 2, 3] and values[2] == tuple(range(10, 10 + NCPU))


def test_percpu_hash_from_bpf_on_each_cpu() -> None:
    """A program adds 1 on the CPU it runs on; run it pinned to every CPU in turn."""
    with Map.create(MapType.PERCPU_HASH, key_size=4, value_size=8, max_entries=4) as m:
        m[0] = 0
        insns = [
            asm.store_imm(asm.W, R10, -4, 0),
            asm.load_map(R1, m), asm.mov(R2, R10), asm.add(R2, -4),
            asm.call(Helper.MAP_LOOKUP_ELEM),
            asm.jeq(R0, 0, "out"),
            asm.mov(R1, 1), asm.atomic_add(asm.DW, R0, R1, 0),
            asm.label("out"), asm.mov(R0, 2), asm.exit(),
        ]
        with ebpf.Program.load(ProgramType.XDP, insns) as prog:
            saved = os.sched_getaffinity(0)
            try:
                for cpu in platform.online_cpus():
                    os.sched_setaffinity(0, {cpu})
                    prog.test_run(data=bytes(64), repeat=cpu + 1)
            finally:
                os.sched_setaffinity(0, saved)
        per_cpu = m[0]
        for cpu in platform.online_cpus():
            assert per_cpu[cpu] == cpu + 1
        assert per_cpu.sum() == sum(c + 1 for c in platform.online_cpus())


def test_batches_final_chunk_enoent_with_count() -> None:
    with Map.create(MapType.HASH, key_size=4, value_size=8, max_entries=5000) as m:
        keys = np.arange(1000, dtype=np.uint32)
        vals = (keys.astype(np.uint64) * 3)
        assert m.update_batch(keys, vals) == 1000  # numpy arrays passed without copying
        chunks = list(m._lookup_chunks(delete=False, chunk=64))
        assert sum(n for _, _, n in chunks) == 1000
        assert len(chunks) >= 1000 // 64  # the last chunk came back as ENOENT with a count
        k, v = m.lookup_batch(chunk=64)
        assert sorted(zip(k, v, strict=True)) == [(i, 3 * i) for i in range(1000)]
        rk, rv = m.lookup_batch(raw=True, chunk=128)
        ka = np.frombuffer(rk, np.uint32)
        va = np.frombuffer(rv, np.uint64)
        assert (va == ka.astype(np.uint64) * 3).all() and len(ka) == 1000
        assert m.delete_batch(list(range(500))) == 500
        assert len(m) == 500
        k, v = m.lookup_batch(delete=True, chunk=100)
        assert sorted(k) == list(range(500, 1000)) and len(m) == 0
    with Map.create(MapType.ARRAY, key_size=4, value_size=8, max_entries=100) as arr:
        arr.update({i: i + 1 for i in range(100)})
        assert dict(arr.items()) == {i: i + 1 for i in range(100)}
        arr.clear()
        assert set(arr.values()) == {0}
        with pytest.raises(errors.NotSupportedError):
            arr.lookup_batch(delete=True)


def test_iteration_falls_back_without_batch_support() -> None:
    with Map.create(MapType.LPM_TRIE, key_size=8, value_size=4, max_entries=16) as m:
        m["10.0.0.0/8"] = 1
        m["10.1.0.0/16"] = 2
        m.update({"192.168.0.0/24": 3})
        assert len(m) == 3
        assert sorted(v for _, v in m.items()) == [1, 2, 3]
        m.clear()
        assert len(m) == 0


def test_pin_from_pin_from_id_metadata_from_kernel(bpffs: str) -> None:
    with Map.create(MapType.HASH, key=FlowKey, value_size=8, max_entries=32,
                    name="flows", flags=MapFlags.NO_PREALLOC) as m:
        m[FlowKey(1, 2, 3, 4, 5)] = 99
        path = os.path.join(bpffs, "flows")
        m.pin(path)
        assert m.pinned_path == path
        with Map.from_pin(path) as p:
            assert (p.type, p.key_size, p.value_size, p.max_entries, p.name) == (
                MapType.HASH, 16, 8, 32, "flows")
            assert p.flags & MapFlags.NO_PREALLOC
            assert p.id == m.id
            assert p[bytes(FlowKey(1, 2, 3, 4, 5))] == 99
        with Map.from_pin(path, key=FlowKey) as p:
            assert p[FlowKey(1, 2, 3, 4, 5)] == 99
        with pytest.raises(ValueError):
            Map.from_pin(path, key=ctypes.c_uint32)
        with Map.from_id(m.id) as q:
            assert q.info() == m.info()
        with Map.from_pin(path, readonly=True) as ro, pytest.raises(errors.BPFPermissionError):
            ro[bytes(16)] = 1
        m.unpin()
        assert not os.path.exists(path)
        m.unpin()  # no-op


def test_freeze() -> None:
    with Map.create(MapType.ARRAY, key_size=4, value_size=4, max_entries=2) as m:
        m[0] = 1
        m.freeze()
        with pytest.raises(errors.BPFPermissionError):
            m[0] = 2
        assert m[0] == 1


def test_mmapable_array_memoryview_and_numpy() -> None:
    with Map.create(MapType.ARRAY, key_size=4, value_size=4, max_entries=10,
                    flags=MapFlags.MMAPABLE) as m:
        m[3] = 33
        arr = m.ndarray()
        assert arr.shape == (10,) and arr[3] == 33
        arr[5] = 55  # writes go straight to the kernel's memory
        assert m[5] == 55
        mv = m.memoryview()
        assert struct.unpack_from("=I", mv, 8 * 3)[0] == 33  # elements are 8-byte aligned
        del arr, mv
    with Map.create(MapType.ARRAY, key_size=4, value_size=4, max_entries=1) as plain, \
            pytest.raises(OSError):
        plain.mmap()


def test_queue_stack_push_pop_peek_and_blocking_pop() -> None:
    with Map.create(MapType.QUEUE, value_size=4, max_entries=4) as q:
        assert isinstance(q, QueueMap)
        for i in range(4):
            q.push(i)
        with pytest.raises(errors.SyscallError):
            q.push(9)  # full
        q.push(4, overwrite=True)  # drops the oldest
        assert q.peek() == 1
        assert [q.pop() for _ in range(4)] == [1, 2, 3, 4]
        with pytest.raises(KeyError):
            q.pop()
        assert q.pop(None) is None
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            q.pop_wait(0.05)
        assert time.monotonic() - t0 >= 0.04
        threading.Timer(0.05, lambda: q.push(42)).start()
        assert q.pop_wait(5) == 42
        with pytest.raises(TypeError):
            q[0]
    with Map.create(MapType.STACK, value="=HH", max_entries=4) as s:
        s.push((1, 2))
        s.push((3, 4))
        assert list(s.drain()) == [(3, 4), (1, 2)]


def test_bloom_filter() -> None:
    with Map.create(MapType.BLOOM_FILTER, value_size=8, max_entries=1000,
                    map_extra=3) as b:
        assert isinstance(b, BloomFilter)
        for i in range(0, 200, 2):
            b.add(i)
        assert all(i in b for i in range(0, 200, 2))
        false_positives = sum(1 for i in range(1, 200, 2) if i in b)
        assert false_positives < 20


def test_entry_handle_and_watchers() -> None:
    with Map.create(MapType.HASH, key_size=4, value_size=8, max_entries=8) as m:
        e = m.entry(1)
        assert isinstance(e, MapEntry) and not e.exists and e.get() is None
        e.set(5)
        assert e.update(lambda v: v * 2) == 10 and m[1] == 10
        assert m.entry(2).update(lambda v: v + 1, default=0) == 1
        threading.Timer(0.05, lambda: m.__setitem__(3, 7)).start()
        assert m.entry(3).wait_exists(timeout=5) == 7
        threading.Timer(0.05, lambda: m.__setitem__(3, 8)).start()
        assert m.entry(3).wait_changed(timeout=5) == 8
        with pytest.raises(TimeoutError):
            m.entry(4).wait_exists(timeout=0.05)
        e.delete()
        assert not e.exists


def test_spin_lock_values_with_lock_flag() -> None:
    """A value that starts with a bpf_spin_lock (BTF generated): BPF_F_LOCK reads/writes."""
    with Map.create(MapType.HASH, key_size=4, value_size=16, max_entries=4,
                    spin_lock=True) as m:
        m.info().btf_id  # noqa: B018
        assert m.info().btf_value_type_id != 0
        m.put(1, bytes(16), UpdateFlags.NOEXIST)
        e = m.entry(1)
        e.set(b"\0\0\0\0" + b"abcdefghijkl", lock=True)
        assert e.get(lock=True)[4:] == b"abcdefghijkl"
        new = e.update(lambda v: v[:4] + v[4:].upper(), lock=True)
        assert new[4:] == b"ABCDEFGHIJKL"
        assert m.lookup(1, flags=UpdateFlags.LOCK)[4:] == b"ABCDEFGHIJKL"


def test_threads_share_a_map() -> None:
    with Map.create(MapType.HASH, key_size=4, value_size=8, max_entries=40_000) as m:
        errs: list[BaseException] = []

        def work(t: int) -> None:
            try:
                for i in range(5000):
                    k = t * 10_000 + i
                    m[k] = k * 2
                    assert m[k] == k * 2
                    assert m.get(k + 5000) is None
            except BaseException as e:  # pragma: no cover
                errs.append(e)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errs
        assert len(m) == 20_000
        assert all(v == k * 2 for k, v in m.items())


def test_closed_map_refuses_operations() -> None:
    m = Map.create(MapType.HASH, key_size=4, value_size=8, max_entries=4)
    m[1] = 1
    m.close()
    m.close()
    assert m.closed
    with pytest.raises(ValueError, match="closed"):
        m[1]
    with pytest.raises(ValueError, match="closed"):
        m[1] = 2
    with pytest.raises(ValueError):
        m.fileno()


def test_map_fileno_works_with_asm_load_map(counts: Map) -> None:
    counts[0] = 41
    insns = [
        asm.store_imm(asm.W, R10, -4, 0),
        asm.load_map(R1, counts), asm.mov(R2, R10), asm.add(R2, -4),
        asm.call(Helper.MAP_LOOKUP_ELEM),
        asm.jeq(R0, 0, "out"),
        asm.mov(R1, 1), asm.atomic_add(asm.DW, R0, R1, 0),
        asm.label("out"), asm.mov(R0, 2), asm.exit(),
    ]
    with ebpf.Program.load(ProgramType.XDP, insns) as prog:
        prog.test_run(data=bytes(64))
    assert counts[0] == 42


def test_opened_map_decodes_struct_values_from_its_btf(bpffs: str) -> None:
    """A map created with BTF for its value struct: opened again, values decode into ctypes
    structures with the member names from the BTF."""
    from ebpf._maps import _load_btf
    from ebpf.btf import BTFWriter

    b = BTFWriter()
    u32 = b.int_("unsigned int", 4)
    u64 = b.int_("unsigned long long", 8)
    char = b.int_("char", 1, char=True)
    name = b.array(char, 6, index_type=u32)
    val = b.struct("flow_stats", [("packets", u64, 0), ("proto", u32, 64),
                                  ("name", name, 96)], size=24)
    with _load_btf(b.encode()) as btf, \
            Map.create(MapType.HASH, key_size=4, value_size=24, max_entries=4, btf=btf,
                       btf_key_type_id=u32, btf_value_type_id=val) as m:
        m[1] = struct.pack("=QI6s6x", 7, 17, b"eth0")
        path = os.path.join(bpffs, "stats")
        m.pin(path)
        with Map.from_pin(path) as opened:
            v = opened[1]
            assert type(v).__name__ == "flow_stats"
            assert (v.packets, v.proto, v.name) == (7, 17, b"eth0")
            opened[2] = v  # and they encode back
            assert m[2] == m[1]
        m.unpin()
