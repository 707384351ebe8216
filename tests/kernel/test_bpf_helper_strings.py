"""ebpf.bpf string literals as helper arguments, on the kernel.

``bpf.helper.snprintf(r.text, "pid=%d x=%u", args)`` formats into a map value: the format
is a ``const char *`` the verifier wants in read-only map memory (``ARG_PTR_TO_CONST_STR``),
so the compiler places the literal, NUL-terminated, in the frozen ``.rodata``;
``bpf.helper.strncmp(r.text, "...")`` compares against one. An XDP program run with
``BPF_PROG_TEST_RUN`` on hypothesis-drawn values shows the text and the comparisons.
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
from ebpf.bpf import i32, i64, u32, u64

class In(bpf.Struct):
    a: i32
    b: u32

class Rec(bpf.Struct):
    n: i64           # snprintf's result: the length with the NUL
    same: i64        # strncmp(text, "a=7 b=9"): 0 when equal
    prefix: i64      # strncmp of the first 2 bytes against "a="
    text: bpf.bytes_[40]

out = bpf.Array(Rec, max_entries=1)

@bpf.xdp
def fmt(ctx: bpf.XDP) -> int:
    p = ctx.load(In)
    if p is None:
        return bpf.XDP_ABORTED
    r = out.lookup(0)
    if r is None:
        return bpf.XDP_ABORTED
    args = bpf.array(u64, 2)
    args[0] = p.a
    args[1] = p.b
    r.n = bpf.helper.snprintf(r.text, "a=%d b=%u", args)
    r.same = bpf.helper.strncmp(r.text, 40, "a=7 b=9")
    r.prefix = bpf.helper.strncmp(r.text, 2, "a=")
    return bpf.XDP_PASS
'''


@pytest.fixture(scope="module")
def mod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    m = import_source(tmp_path_factory.mktemp("strings"), "bpf_helper_strings_mod", SOURCE)
    yield m
    sys.modules.pop(m.__name__, None)


@pytest.fixture
def coll(mod: ModuleType) -> Iterator[Any]:
    from ebpf import bpf

    with bpf.load(mod.fmt) as c:
        yield c


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(a=st.integers(-(1 << 31), (1 << 31) - 1), b=st.integers(0, (1 << 32) - 1))
def test_snprintf_and_strncmp(coll: Any, mod: ModuleType, a: int, b: int) -> None:
    res = coll.fmt.test_run(mod.In(a=a, b=b).encode() + bytes(16))
    assert res.retval == 2  # XDP_PASS
    r = coll.out[0]
    want = f"a={a} b={b}".encode()
    assert r.text == want and r.n == len(want) + 1
    assert (r.same == 0) == (want == b"a=7 b=9")
    assert r.prefix == 0


def test_literals_live_in_frozen_rodata(coll: Any, mod: ModuleType) -> None:
    coll.fmt.test_run(mod.In(a=7, b=9).encode() + bytes(16))
    assert coll.out[0].same == 0
    ro = coll.collection.maps[".rodata"]
    data = ro[0]
    assert b"a=%d b=%u\0" in data and b"a=7 b=9\0" in data and b"a=\0" in data
    assert ro.info().flags & 0x80                # BPF_F_RDONLY_PROG
    with pytest.raises(OSError):
        ro[0] = bytes(len(data))                  # frozen


def test_nul_in_a_literal_is_a_compile_error(tmp_path: Any) -> None:
    from ebpf import bpf

    src = SOURCE.replace('"a=%d b=%u"', '"a=%d\\0b=%u"')
    m = import_source(tmp_path, "bpf_helper_strings_bad", src)
    try:
        with pytest.raises(bpf.CompileError, match="cannot contain NUL"):
            m.fmt.compile()
    finally:
        sys.modules.pop(m.__name__, None)
