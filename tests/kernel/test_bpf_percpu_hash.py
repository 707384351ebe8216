"""ebpf.bpf per-CPU hashes and frozen struct keys, on the kernel.

An XDP program run with ``BPF_PROG_TEST_RUN`` (pinned to each CPU in turn) reads a
``frozen=True`` key from the packet and counts it in a ``bpf.PerCPUHash`` (``m[k] += n``: the
running CPU's value, inserted on a miss) and in a ``bpf.LRUPerCPUHash``; it reports back the
value this CPU holds for the key (``lookup``), so values written from Python per CPU are what
each CPU reads. Python reads the maps as ``{Key: PerCPUValues}``: frozen keys are hashable,
so ``dict(m.items())`` works and is compared with a per-CPU ``Counter`` of what was sent.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ebpf import MapType, PerCPUValues, platform
from ebpf.testing.modules import import_source

LRU_MAX = 256
LRU_FLOWS = 700   # past LRU_MAX (and 6.1's per-CPU free batches of 128 times 2 CPUs)

SOURCE = f'''
from ebpf import bpf
NCPU = {platform.possible_cpus()}
from ebpf.bpf import u8, u16, u32, u64

class Key(bpf.Struct, frozen=True):
    port: u16
    proto: u8        # one byte of padding follows: stack and packet keys both zero it

class Query(bpf.Struct):   # the packet: a Key's layout, then what the program saw
    port: u16
    proto: u8
    pad: u8
    add: u32
    mine: u64        # this CPU's value of counts[key] after the add
    cpu: u32

counts = bpf.PerCPUHash(Key, u64, max_entries=1024)
recent = bpf.LRUPerCPUHash(Key, u32, max_entries={LRU_MAX})

@bpf.xdp
def count(ctx: bpf.XDP) -> int:
    q = ctx.load(Query)
    if q is None:
        return bpf.XDP_ABORTED
    k = Key(port=q.port, proto=q.proto)
    counts[k] += q.add
    recent[k] += 1
    v = counts.lookup(k)
    if v is not None:
        q.mine = v.value
    q.cpu = bpf.get_smp_processor_id()
    return bpf.XDP_PASS

class Total(bpf.Struct):    # the packet of `total`: a Key, then every CPU's sum
    port: u16
    proto: u8
    pad: u8
    cpus: u32               # CPUs whose value exists (lookup_percpu is not None)
    sum: u64

@bpf.xdp
def total(ctx: bpf.XDP) -> int:
    t = ctx.load(Total)
    if t is None:
        return bpf.XDP_ABORTED
    k = Key(port=t.port, proto=t.proto)
    for c in range(NCPU + 1):              # one past the last CPU: None there
        v = counts.lookup_percpu(k, c)
        if v is not None:
            t.cpus += 1
            t.sum += v.value
    return bpf.XDP_PASS
'''


@pytest.fixture(scope="module")
def mod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    import sys

    m = import_source(tmp_path_factory.mktemp("percpu_hash"), "bpf_percpu_hash_mod", SOURCE)
    yield m
    sys.modules.pop(m.__name__, None)


@pytest.fixture
def coll(mod: ModuleType) -> Iterator[Any]:
    from ebpf import bpf

    with bpf.load(mod.count) as c:
        yield c


def _send(coll: Any, mod: ModuleType, port: int, proto: int, add: int, cpu: int) -> Any:
    data = mod.Query(port=port, proto=proto, add=add).encode() + bytes(32)
    old = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        res = coll.count.test_run(data)
    finally:
        os.sched_setaffinity(0, old)
    assert res.retval == 2  # XDP_PASS
    out = mod.Query.decode(res.data)
    assert out.cpu == cpu
    return out


def test_map_types(coll: Any) -> None:
    assert coll.collection.maps["counts"].type == MapType.PERCPU_HASH
    assert coll.collection.maps["recent"].type == MapType.LRU_PERCPU_HASH


def test_frozen_keys_are_hashable_and_immutable(mod: ModuleType) -> None:
    k = mod.Key(port=80, proto=6)
    assert {k: 1}[mod.Key(port=80, proto=6)] == 1
    assert mod.Key.decode(k.encode()) == k and hash(mod.Key.decode(k.encode())) == hash(k)
    with pytest.raises(AttributeError, match="frozen"):
        k.port = 81
    with pytest.raises(TypeError, match="frozen=True"):
        hash(mod.Query())


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sends=st.lists(st.tuples(st.sampled_from([22, 53, 80, 443, 8080]),
                                st.sampled_from([6, 17]), st.integers(1, 1000),
                                st.integers(0, 63)), min_size=1, max_size=20))
def test_per_cpu_counts_match_what_was_sent(coll: Any, mod: ModuleType,
                                            sends: list[tuple[int, int, int, int]]) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    n = platform.possible_cpus()
    for k in list(coll.counts.keys()):
        del coll.counts[k]
    want: Counter[tuple[Any, int]] = Counter()
    for port, proto, add, c in sends:
        cpu = cpus[c % len(cpus)]
        key = mod.Key(port=port, proto=proto)
        want[key, cpu] += add
        assert _send(coll, mod, port, proto, add, cpu).mine == want[key, cpu]
    got = dict(coll.counts.items())                 # frozen keys: a dict of them
    assert all(isinstance(v, PerCPUValues) and len(v) == n for v in got.values())
    assert {(k, c): v[c] for k, v in got.items() for c in range(n) if v[c]} == +want
    assert {k: v.sum() for k, v in got.items()} == {
        k: sum(a for (kk, _), a in want.items() if kk == k) for k, _ in want}


def test_python_writes_per_cpu_values_each_cpu_reads(coll: Any, mod: ModuleType) -> None:
    n = platform.possible_cpus()
    key = mod.Key(port=9, proto=17)
    coll.counts[key] = [1000 * (c + 1) for c in range(n)]    # one value per CPU
    for c in sorted(os.sched_getaffinity(0)):
        assert _send(coll, mod, 9, 17, 5, c).mine == 1000 * (c + 1) + 5
    coll.counts[key] = 7                                      # one value: every CPU
    assert list(coll.counts[key]) == [7] * n


def test_lookup_percpu_reads_every_cpu(mod: ModuleType) -> None:
    from ebpf import bpf

    n = platform.possible_cpus()
    with bpf.load(mod.total) as coll:
        key = mod.Key(port=77, proto=6)
        coll.counts[key] = [10 * (c + 1) for c in range(n)]
        res = coll.total.test_run(mod.Total(port=77, proto=6).encode() + bytes(16))
        out = mod.Total.decode(res.data)
        assert (out.cpus, out.sum) == (n, sum(10 * (c + 1) for c in range(n)))
        res = coll.total.test_run(mod.Total(port=78, proto=6).encode() + bytes(16))
        assert mod.Total.decode(res.data).cpus == 0            # no such key


def test_lru_per_cpu_hash_evicts_instead_of_failing(coll: Any, mod: ModuleType) -> None:
    cpu = sorted(os.sched_getaffinity(0))[0]
    for port in range(1, LRU_FLOWS + 1):
        _send(coll, mod, port, 6, 1, cpu)
    recent = dict(coll.recent.items())
    assert 0 < len(recent) <= LRU_MAX
    assert all(v[cpu] == 1 and v.sum() == 1 for v in recent.values())
    assert mod.Key(port=LRU_FLOWS, proto=6) in recent           # the newest key stays
    assert len(dict(coll.counts.items())) == LRU_FLOWS          # the plain one kept all
