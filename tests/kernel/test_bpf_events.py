"""ebpf.bpf events: a stack struct sent with ``RingBuf.output`` and decoded by the same class
(differential over hypothesis inputs), and examples/py_execsnoop.py run on a real exec."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ebpf import MapType, features
from ebpf.bpf import u16, u32
from ebpf.testing.modules import import_source

ROOT = Path(__file__).resolve().parents[2]

SOURCE = '''
from ebpf import bpf
from ebpf.bpf import u8, u16, u32, u64, i16

class In(bpf.Struct):
    a: u32
    b: i16

class Rec(bpf.Struct):
    a: u32
    b: i16
    s: u16
    t: u64

events = bpf.RingBuf(size=1 << 16)

@bpf.xdp
def emit(ctx: bpf.XDP) -> int:
    p = ctx.load(In)
    if p is None:
        return bpf.XDP_ABORTED
    r = Rec(a=p.a, b=p.b)
    r.s = p.a + p.b
    r.t = p.a * 3
    if events.output(r) != 0:
        return bpf.XDP_DROP
    return bpf.XDP_PASS
'''


@pytest.fixture(scope="module")
def emit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, ModuleType]]:
    from ebpf import bpf

    mod = import_source(tmp_path_factory.mktemp("events"), "bpf_events_prog", SOURCE)
    with bpf.load(mod.emit) as coll:
        yield coll, mod


@pytest.mark.requires(features.have_map_type, MapType.RINGBUF)
def test_stack_struct_output_decodes_with_the_same_class(emit: tuple[Any, ModuleType]) -> None:
    coll, mod = emit

    @settings(max_examples=100, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(a=st.integers(0, 2**32 - 1), b=st.integers(-(2**15), 2**15 - 1))
    def check(a: int, b: int) -> None:
        assert coll.emit.test_run(mod.In(a=a, b=b).encode() + bytes(56)).retval == 2
        recs = list(coll.events.read(mod.Rec, timeout=1.0))
        assert len(recs) == 1
        r = recs[0]
        # a + b is computed in u32 (the common type), then stored into a u16 field
        assert (r.a, r.b, r.s, r.t) == (a, b, u16(u32(a + b)), u32(a * 3))

    check()


@pytest.mark.requires(features.have_map_type, MapType.RINGBUF)
def test_execsnoop_example_sees_an_exec(tracefs: str) -> None:
    res = subprocess.run([sys.executable, str(ROOT / "examples" / "py_execsnoop.py")],
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "seen: True" in res.stdout


PERF = '''
from ebpf import bpf
from ebpf.bpf import u32, u64, i16

class In(bpf.Struct):
    a: u32
    b: i16

class Sample(bpf.Struct):
    a: u32
    b: i16
    cpu: u32
    t: u64

samples = bpf.PerfEventArray()

@bpf.xdp
def perf(ctx: bpf.XDP) -> int:
    p = ctx.load(In)
    if p is None:
        return bpf.XDP_ABORTED
    s = Sample(a=p.a, b=p.b)
    s.cpu = bpf.get_smp_processor_id()
    s.t = p.a + 1
    if samples.output(ctx, s) != 0:
        return bpf.XDP_DROP
    return bpf.XDP_PASS
'''


@pytest.mark.requires(features.have_map_type, MapType.PERF_EVENT_ARRAY)
def test_perf_output_of_a_stack_struct(tmp_path: Path) -> None:
    from ebpf import bpf

    mod = import_source(tmp_path, "bpf_perf_prog", PERF)
    with bpf.load(mod.perf) as coll:
        coll.samples.open()

        @settings(max_examples=50, deadline=None)
        @given(a=st.integers(0, 2**32 - 1), b=st.integers(-(2**15), 2**15 - 1))
        def check(a: int, b: int) -> None:
            assert coll.perf.test_run(mod.In(a=a, b=b).encode() + bytes(56)).retval == 2
            recs = list(coll.samples.read(mod.Sample, timeout=1.0))
            assert [(r.a, r.b, r.t) for r in recs] == [(a, b, u32(a + 1))]

        check()
        assert coll.samples.lost == 0
