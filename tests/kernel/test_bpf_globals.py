"""ebpf.bpf globals (``bpf.var`` in .data/.bss), stack structs and stack arrays on the kernel.

Differential: the same steps computed in Python with fixed-width wrapping and run by
BPF_PROG_TEST_RUN, over hypothesis inputs; the globals are also read and written from Python
between runs (through the mmapped data maps).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ebpf.bpf import i16, u8, u32
from ebpf.testing.modules import import_source

SOURCE = '''
from ebpf import bpf
from ebpf.bpf import u8, u16, u32, u64, i16, i32, i64

class Io(bpf.Struct):
    a: u32
    b: i16
    i: u32
    j: i32
    out_arr: u32
    out_struct: i64
    out_hits: u64

acc = bpf.var(u32)          # .bss
bias = bpf.var(i16, -5)     # .data
hits = bpf.var(u64)
seen = bpf.var(u8, 1)
limit = bpf.const(u32, 3)   # .rodata next to them

class Pair(bpf.Struct):
    x: u32
    y: i16
    z: u8

@bpf.xdp
def glob(ctx: bpf.XDP) -> int:
    global acc, bias, hits, seen
    p = ctx.load(Io)
    if p is None:
        return bpf.XDP_ABORTED
    hits += 1
    acc += p.a
    bias = bias + p.b
    seen *= limit
    arr = bpf.array(u32, 8)
    for k in range(8):
        arr[k] = p.a ^ k
    arr[p.i] = 77
    arr[p.j] += 5
    p.out_arr = arr[p.i] + arr[p.j & 7] + arr[3]
    q = Pair(x=p.a, y=p.b)
    q.z = q.z + 200
    p.out_struct = q.x + q.y + q.z
    p.out_hits = hits
    return bpf.XDP_PASS
'''


@pytest.fixture(scope="module")
def glob(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, ModuleType]]:
    from ebpf import bpf

    mod = import_source(tmp_path_factory.mktemp("globals"), "bpf_globals_prog", SOURCE)
    with bpf.load(mod.glob) as coll:
        assert coll.collection.btf_error is None
        yield coll, mod


def test_sections_and_initial_values(glob: tuple[Any, ModuleType]) -> None:
    coll, _ = glob
    spec = {n: v.variable.spec.map for n, v in coll.variables.items()}
    assert spec == {"acc": ".bss", "hits": ".bss", "bias": ".data", "seen": ".data",
                    "limit": ".rodata"}
    assert coll.variables["limit"].get() == 3
    with pytest.raises(PermissionError):
        coll.variables["limit"].set(4)


def _reference(a: int, b: int, i: int, j: int) -> tuple[int, int]:
    arr = [u32(a ^ k) for k in range(8)]
    if i < 8:
        arr[i] = u32(77)
    if 0 <= j < 8:
        arr[j] = u32(arr[j] + 5)
    out_arr = u32(u32((arr[i] if i < 8 else 0) + arr[j & 7]) + arr[3])
    out_struct = u32(u32(a + b) + 200)
    return out_arr, out_struct


def test_globals_stack_struct_and_array_match_python(glob: tuple[Any, ModuleType]) -> None:
    coll, mod = glob
    idx = st.one_of(st.integers(0, 9), st.sampled_from([-1, -8, 2**31 - 1, -(2**31)]))

    @settings(max_examples=200, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(a=st.integers(0, 2**32 - 1), b=st.integers(-(2**15), 2**15 - 1),
           i=st.one_of(st.integers(0, 9), st.integers(0, 2**32 - 1)), j=idx,
           start=st.integers(0, 2**32 - 1), bias=st.integers(-(2**15), 2**15 - 1))
    def check(a: int, b: int, i: int, j: int, start: int, bias: int) -> None:
        v = coll.variables
        v["acc"].set(start)
        v["bias"].set(bias)
        hits, seen = v["hits"].get(), v["seen"].get()
        res = coll.glob.test_run(mod.Io(a=a, b=b, i=i, j=j).encode())
        assert res.retval == 2
        out = mod.Io.decode(res.data)
        assert (out.out_arr, out.out_struct) == _reference(a, b, i, j)
        assert out.out_hits == hits + 1 == v["hits"].get()
        assert v["acc"].get() == u32(start + a)
        assert v["bias"].get() == i16(bias + b)
        assert v["seen"].get() == u8(seen * 3)

    check()


def test_set_rejects_values_that_do_not_fit(glob: tuple[Any, ModuleType]) -> None:
    from ebpf import errors

    coll, _ = glob
    with pytest.raises(errors.BPFError, match="does not fit"):
        coll.variables["bias"].set(1 << 15)


def test_initial_value_override(tmp_path: Path) -> None:
    from ebpf import bpf

    mod = import_source(tmp_path, "bpf_globals_override", SOURCE)
    with bpf.load(mod.glob, constants={"bias": 0, "acc": 9, "limit": 2}) as coll:
        # bias 0 moves to .bss, acc 9 to .data
        assert coll.variables["bias"].variable.spec.map == ".bss"
        assert coll.variables["acc"].variable.spec.map == ".data"
        res = coll.glob.test_run(mod.Io(a=1, b=-3, i=0, j=0).encode())
        assert res.retval == 2
        assert coll.variables["acc"].get() == 10
        assert coll.variables["bias"].get() == -3
        assert coll.variables["seen"].get() == 2
