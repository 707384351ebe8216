"""ebpf.bpf ``x in (...)`` / ``x not in (...)`` of constant integers, on the kernel.

An XDP program run with ``BPF_PROG_TEST_RUN`` tests packet values against literal tuples,
sets and lists, a module-level frozenset and range, signed and 64-bit members (beyond a
32-bit immediate), in ``if``, ``elif``, ``and``/``or`` and as values; the results equal
Python's own ``in`` over hypothesis-drawn values.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ebpf.testing.modules import import_source

SOURCE = '''
from ebpf import bpf
from ebpf.bpf import i32, u32, u64

PORTS = frozenset({22, 80, 443})
LOW = range(0, 10)
BIG = (1 << 40, (1 << 64) - 1)

class Pkt(bpf.Struct):
    x: u32
    s: i32
    w: u64
    out: u64

@bpf.xdp
def member(ctx: bpf.XDP) -> int:
    p = ctx.load(Pkt)
    if p is None:
        return bpf.XDP_ABORTED
    r: u64 = 0
    if p.x in (1, 5, 300, 70000):
        r |= 1
    if p.x not in [1, 2, 3]:
        r |= 2
    if p.x in PORTS:
        r |= 4
    elif p.x in LOW:
        r |= 8
    if p.s in {-1, -100, 7}:
        r |= 16
    if p.w in BIG or p.w in (0, 3):
        r |= 32
    if p.x in (22, 80) and p.s not in (0,):
        r |= 64
    p.out = r
    return bpf.XDP_PASS
'''


@pytest.fixture(scope="module")
def mod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    m = import_source(tmp_path_factory.mktemp("member"), "bpf_membership_mod", SOURCE)
    yield m
    sys.modules.pop(m.__name__, None)


@pytest.fixture(scope="module")
def coll(mod: ModuleType) -> Iterator[Any]:
    from ebpf import bpf

    with bpf.load(mod.member) as c:
        yield c


def _want(x: int, s: int, w: int) -> int:
    r = 0
    r |= 1 if x in (1, 5, 300, 70000) else 0
    r |= 2 if x not in (1, 2, 3) else 0
    r |= 4 if x in {22, 80, 443} else (8 if x in range(10) else 0)
    r |= 16 if s in (-1, -100, 7) else 0
    r |= 32 if w in (1 << 40, (1 << 64) - 1, 0, 3) else 0
    r |= 64 if x in (22, 80) and s != 0 else 0
    return r


interesting = st.sampled_from([0, 1, 2, 3, 5, 7, 9, 10, 22, 80, 300, 443, 70000])


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(x=interesting | st.integers(0, (1 << 32) - 1),
       s=st.sampled_from([-1, -100, 7, 0, 1]) | st.integers(-(1 << 31), (1 << 31) - 1),
       w=st.sampled_from([0, 3, 1 << 40, (1 << 64) - 1, 1 << 32]) |
       st.integers(0, (1 << 64) - 1))
def test_membership_matches_python(coll: Any, mod: ModuleType, x: int, s: int, w: int) -> None:
    res = coll.member.test_run(mod.Pkt(x=x, s=s, w=w).encode() + bytes(16))
    assert res.retval == 2
    assert mod.Pkt.decode(res.data).out == _want(x, s, w)


def test_membership_errors(tmp_path: Any) -> None:
    from ebpf import bpf

    for cond, message in [("p.x in (1, p.x)", "constant integers"),
                          ("p.x in ()", "1 to 64"),
                          ("p.x in (1, 1 << 40)", "does not fit in u32")]:
        src = SOURCE.replace("if p.x in (1, 5, 300, 70000):", f"if {cond}:")
        m = import_source(tmp_path, "bpf_membership_bad", src)
        try:
            with pytest.raises(bpf.CompileError, match=message):
                m.member.compile()
        finally:
            sys.modules.pop(m.__name__, None)
