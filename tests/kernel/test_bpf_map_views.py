"""Maps of ``bpf.load`` typed from Python by their declarations, on the kernel.

Each test loads a compiled program, runs it with ``BPF_PROG_TEST_RUN`` (pinned to a CPU
where per-CPU values matter) and reads its maps from Python through ``coll.<map>``: struct
values decode to instances of the declared ``bpf.Struct``, signed integer types read
negative, per-CPU maps give one typed value per CPU, and values written from Python are what
the program reads. ``coll.collection.maps[name]`` stays the untyped map on the same fd.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ebpf import Map, MapType, PerCPUValues, platform
from ebpf.bpf import i16, i64, u32
from ebpf.testing.modules import import_source

SOURCE = '''
from ebpf import bpf
from ebpf.bpf import u8, u16, u32, u64, i16, i32, i64, be16

class Stats(bpf.Struct):
    packets: u64
    delta: i32
    port: be16
    tag: bpf.bytes_[6]

class Config(bpf.Struct):
    scale: i16
    bias: i32

class Io(bpf.Struct):
    x: i64
    out: i64
    cfg_out: i64
    cpu: u32

stats = bpf.Array(Stats, max_entries=4)
flows = bpf.Hash(u64, Stats, max_entries=16)
signed = bpf.Hash(u32, i64, max_entries=16)
small = bpf.Array(i16, max_entries=4)
config = bpf.Array(Config, max_entries=1)
pc_count = bpf.PerCPUArray(i32, max_entries=2)
pc_stats = bpf.PerCPUArray(Stats, max_entries=1)
ports = bpf.Hash(be16, u32, max_entries=8)

@bpf.xdp
def views(ctx: bpf.XDP) -> int:
    p = ctx.load(Io)
    if p is None:
        return bpf.XDP_ABORTED
    s = stats.lookup(1)
    if s is not None:
        s.packets += 1
        s.delta -= 3
        s.port = 8080
    rec = Stats(packets=7, delta=-9, port=53)
    flows[p.x & 7] = rec
    signed[1] -= 5
    signed[2] = p.x * 3 - 7
    small[0] = small[0] - 2
    c = config.lookup(0)
    if c is not None:
        p.cfg_out = p.x * c.scale + c.bias
    v = signed.lookup(3)
    if v is not None:
        p.out = v.value
    pc_count[0] -= 1
    ps = pc_stats.lookup(0)
    if ps is not None:
        ps.packets += 1
        ps.delta += ps.port
    p.cpu = bpf.get_smp_processor_id()
    ports[443] = 1
    return bpf.XDP_PASS
'''


@pytest.fixture(scope="module")
def mod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    import sys

    m = import_source(tmp_path_factory.mktemp("views"), "bpf_map_views_mod", SOURCE)
    yield m
    sys.modules.pop(m.__name__, None)


@pytest.fixture
def coll(mod: ModuleType) -> Iterator[Any]:
    from ebpf import bpf

    with bpf.load(mod.views) as c:
        yield c


def _run(coll: Any, mod: ModuleType, x: int = 0, cpu: int | None = None) -> Any:
    """One test run of ``views`` with ``Io(x=x)`` as the packet (on ``cpu`` if given)."""
    data = mod.Io(x=x).encode() + bytes(64)
    old = os.sched_getaffinity(0)
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    try:
        res = coll.views.test_run(data)
    finally:
        os.sched_setaffinity(0, old)
    assert res.retval == 2  # XDP_PASS
    return mod.Io.decode(res.data)


def test_struct_values_decode_to_the_declared_class(coll: Any, mod: ModuleType) -> None:
    for x in (3, 5):
        _run(coll, mod, x)
    s = coll.stats[1]
    assert isinstance(s, mod.Stats)
    assert (s.packets, s.delta, s.port) == (2, -6, 8080)    # i32 negative, be16 in host order
    assert coll.stats.lookup(1) == s == coll.stats.get(1)
    assert coll.stats[0] == mod.Stats()                     # untouched: zeroed
    assert dict(coll.flows.items()) == {3: mod.Stats(packets=7, delta=-9, port=53),
                                        5: mod.Stats(packets=7, delta=-9, port=53)}
    keys, values = coll.flows.lookup_batch()
    assert sorted(keys) == [3, 5] and all(v == mod.Stats(packets=7, delta=-9, port=53)
                                          for v in values)
    assert coll.maps["stats"] is coll.stats                 # coll.maps is the typed view too


def test_batch_reads_as_numpy_records(coll: Any, mod: ModuleType) -> None:
    np = pytest.importorskip("numpy")
    _run(coll, mod, 1)
    _run(coll, mod, 1)
    keys, values = coll.stats.lookup_batch(raw=True)
    dt = coll.stats.value_codec.dtype                       # Stats.dtype()
    assert dt == mod.Stats.dtype()
    arr = np.frombuffer(values, dt)
    idx = np.frombuffer(keys, coll.stats.key_codec.dtype)
    assert idx.tolist() == [0, 1, 2, 3]
    assert arr["packets"].tolist() == [0, 2, 0, 0]
    assert arr["delta"].tolist() == [0, -6, 0, 0]
    assert arr["port"].tolist() == [0, 8080, 0, 0]          # big-endian field, read right
    assert np.frombuffer(coll.signed.lookup_batch(raw=True)[1],
                         coll.signed.value_codec.dtype).min() < 0


def test_signed_values_read_negative_and_are_range_checked(coll: Any, mod: ModuleType) -> None:
    _run(coll, mod, -4)
    assert coll.signed[1] == -5
    assert coll.signed[2] == -4 * 3 - 7
    assert coll.small[0] == -2
    assert coll.collection.maps["signed"][1] == (1 << 64) - 5    # the untyped view
    coll.small[0] = -32768
    _run(coll, mod)
    assert coll.small[0] == 32766                           # -32768 - 2 wraps in i16
    coll.signed[3] = -(1 << 63)
    assert _run(coll, mod).out == -(1 << 63)                # written from Python, read by BPF
    with pytest.raises(ValueError, match="does not fit"):
        coll.signed[3] = 1 << 63
    with pytest.raises(ValueError, match="does not fit"):
        coll.small[1] = 40000
    with pytest.raises(ValueError, match="does not fit"):
        coll.signed[-1] = 0                                 # the key is a u32


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(x=st.integers(-(1 << 40), 1 << 40), scale=st.integers(i16.min(), i16.max()),
       bias=st.integers(-(1 << 31), (1 << 31) - 1), v=st.integers(i64.min(), i64.max()))
def test_python_writes_are_what_the_program_reads(coll: Any, mod: ModuleType, x: int,
                                                  scale: int, bias: int, v: int) -> None:
    coll.config[0] = mod.Config(scale=scale, bias=bias)
    coll.signed[3] = v
    out = _run(coll, mod, x)
    assert out.cfg_out == i64.wrap(x * scale + bias)
    assert out.out == v
    assert coll.config[0] == mod.Config(scale=scale, bias=bias)


def test_per_cpu_values_are_typed_per_cpu(coll: Any, mod: ModuleType) -> None:
    n = platform.possible_cpus()
    cpus = sorted(os.sched_getaffinity(0))
    coll.pc_stats[0] = [mod.Stats(port=10 * (c + 1)) for c in range(n)]   # one per CPU
    for c in cpus:
        for _ in range(c + 1):
            assert _run(coll, mod, cpu=c).cpu == c
    counts = coll.pc_count[0]
    assert isinstance(counts, PerCPUValues) and len(counts) == n
    assert [counts[c] for c in cpus] == [-(c + 1) for c in cpus]          # i32 per CPU
    assert counts.sum() == -sum(c + 1 for c in cpus)
    per = coll.pc_stats[0]
    assert all(isinstance(s, mod.Stats) for s in per)
    for c in cpus:
        assert per[c].packets == c + 1 and per[c].delta == (c + 1) * 10 * (c + 1)
    coll.pc_count[1] = -7                                   # one value: every CPU
    assert list(coll.pc_count[1]) == [-7] * n
    keys, values = coll.pc_stats.lookup_batch()
    assert keys == [0] and list(values[0]) == list(per)


def test_writes_take_instances_or_exact_bytes(coll: Any, mod: ModuleType) -> None:
    s = mod.Stats(packets=1, delta=-2, port=3, tag=b"abc")
    coll.stats[2] = s
    assert coll.stats[2] == s
    coll.stats[3] = s.encode()                              # the raw layout is accepted
    assert coll.stats[3] == s
    with pytest.raises(TypeError, match="Stats"):
        coll.stats[2] = 5
    with pytest.raises(TypeError, match="Stats"):
        coll.stats[2] = mod.Config()
    with pytest.raises(ValueError, match=f"{mod.Stats.size} bytes"):
        coll.stats[2] = b"short"
    coll.flows.update({9: s})
    assert coll.flows.pop(9) == s and 9 not in coll.flows


def test_big_endian_keys_match_the_program(coll: Any, mod: ModuleType) -> None:
    _run(coll, mod)
    assert dict(coll.ports.items()) == {443: 1}
    assert list(coll.collection.maps["ports"].keys()) == [int.from_bytes(
        (443).to_bytes(2, "big"), "little")]                # stored in network order


def test_untyped_view_and_lifetime(mod: ModuleType) -> None:
    from ebpf import bpf

    with bpf.load(mod.views) as coll:
        _run(coll, mod, 1)
        raw = coll.collection.maps["stats"]
        assert raw is not coll.stats and raw.fileno() == coll.stats.fileno()
        assert raw[1] == coll.stats[1].encode()             # bytes: the escape hatch
        typed = coll.stats
    assert typed.closed and raw.closed


def test_struct_keys_through_map_create(mod: ModuleType) -> None:
    """``bpf.Struct`` classes type any ``ebpf.Map``: a hash keyed by a struct (programs do
    not take struct keys yet, so the map is made directly)."""
    with Map.create(MapType.HASH, key=mod.Config, value=mod.Stats, max_entries=8) as m:
        k1, k2 = mod.Config(scale=-1, bias=2), mod.Config(scale=3, bias=-4)
        m[k1] = mod.Stats(packets=1)
        m[k2] = mod.Stats(delta=-1)
        assert m[k1] == mod.Stats(packets=1) and m.get(mod.Config()) is None
        got = sorted(((k.scale, k.bias), v.delta) for k, v in m.items())
        assert got == [((-1, 2), 0), ((3, -4), -1)]
        keys, _ = m.lookup_batch()
        assert {(k.scale, k.bias) for k in keys} == {(-1, 2), (3, -4)}
    with Map.create(MapType.ARRAY, key=u32, value=i64, max_entries=2) as a:
        a[0] = -3
        assert a[0] == -3 and a.value_codec.signed


def test_maps_without_element_types_stay_the_collections(tmp_path: Path) -> None:
    from ebpf import bpf

    src = '''
from ebpf import bpf
from ebpf.bpf import u32

class E(bpf.Struct):
    v: u32

events = bpf.RingBuf(size=1 << 12)
n = bpf.var(u32)

@bpf.xdp
def ev(ctx: bpf.XDP) -> int:
    global n
    n += 1
    e = events.reserve(E)
    if e is not None:
        e.v = 7
        events.submit(e)
    return bpf.XDP_PASS
'''
    m = import_source(tmp_path, "bpf_map_views_ring", src)
    with bpf.load(m.ev) as coll:
        coll.ev.test_run(bytes(64))
        assert coll.maps["events"] is coll.collection.maps["events"]
        assert coll.maps[".bss"] is coll.collection.maps[".bss"]
        assert [e.v for e in coll.events.read(m.E)] == [7]
        assert coll.variables["n"].get() == 1
