"""ebpf.bpf nested struct fields, on the kernel.

A ``bpf.Struct`` field whose type is another ``bpf.Struct`` is a nested record: in programs
``q.key`` is a pointer into the same memory (packet, map value or stack), so ``q.key.port``
reads and writes through it, ``counts[q.key]`` uses it as a struct map key, and
``q.copy = q.key`` / ``r.last = Key(...)`` copy a whole record. An XDP program run with
``BPF_PROG_TEST_RUN`` does each of these on a packet built from hypothesis-drawn keys; the
packet written back and the maps read from Python show the results.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ebpf.testing.modules import import_source

SOURCE = '''
from ebpf import bpf
from ebpf.bpf import u8, u16, u32, u64

class Key(bpf.Struct, frozen=True):
    port: u16
    proto: u8

class Query(bpf.Struct):      # the packet
    key: Key
    add: u32
    out: u64
    copy: Key                 # q.copy = q.key, then q.copy.port += 1
    made: Key                 # q.made = Key(port=7, proto=q.key.proto)

class Rec(bpf.Struct):
    n: u64
    last: Key

counts = bpf.Hash(Key, u64, max_entries=256)
recs = bpf.Hash(Key, Rec, max_entries=256)

@bpf.xdp
def nested(ctx: bpf.XDP) -> int:
    q = ctx.load(Query)
    if q is None:
        return bpf.XDP_ABORTED
    counts[q.key] += q.add                  # a nested packet record as the key
    q.out = q.key.port + counts[q.key]
    q.copy = q.key                          # whole-record copy, packet to packet
    q.copy.port += 1                        # a field store through the nested pointer
    q.made = Key(port=7, proto=q.key.proto)
    r = Rec()                               # a stack record with a nested one
    r.n = q.add
    r.last = q.key
    k = q.copy                              # a local pointer to the nested record
    recs[k] = r
    got = recs.lookup(q.copy)
    if got is not None:
        got.last.proto = got.last.proto + 100   # a nested field of a map value
    return bpf.XDP_PASS
'''


@pytest.fixture(scope="module")
def mod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    m = import_source(tmp_path_factory.mktemp("nested"), "bpf_nested_structs_mod", SOURCE)
    yield m
    sys.modules.pop(m.__name__, None)


@pytest.fixture
def coll(mod: ModuleType) -> Iterator[Any]:
    from ebpf import bpf

    with bpf.load(mod.nested) as c:
        yield c


def test_python_side_nested_records(mod: ModuleType) -> None:
    q = mod.Query(add=1)
    assert q.key == mod.Key() and q.copy == mod.Key()       # zeroed nested records
    assert mod.Query.decode(q.encode()) == q
    assert mod.Query.size == 4 + 4 + 8 + 4 + 4


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sends=st.lists(st.tuples(st.integers(0, 0xFFFE), st.integers(0, 150),
                                st.integers(0, 1 << 20)), min_size=1, max_size=8))
def test_nested_records_in_programs(coll: Any, mod: ModuleType,
                                    sends: list[tuple[int, int, int]]) -> None:
    for m in (coll.counts, coll.recs):
        for k in list(m.keys()):
            del m[k]
    want: dict[Any, int] = {}
    for port, proto, add in sends:
        key = mod.Key(port=port, proto=proto)
        want[key] = want.get(key, 0) + add
        res = coll.nested.test_run(mod.Query(key=key, add=add).encode() + bytes(16))
        assert res.retval == 2  # XDP_PASS
        out = mod.Query.decode(res.data)
        assert out.key == key and out.out == port + want[key]
        assert out.copy == mod.Key(port=port + 1, proto=proto)
        assert out.made == mod.Key(port=7, proto=proto)
        rec = coll.recs[mod.Key(port=port + 1, proto=proto)]
        assert rec.n == add and rec.last == mod.Key(port=port, proto=(proto + 100) & 0xFF)
    assert dict(coll.counts.items()) == want


@pytest.mark.parametrize(("statement", "message"), [
    ("q.copy = r", "copy holds Key records: pass a Key"),
    ("q.copy = Rec()", "copy holds Key records, not Rec"),
    ("q.copy = 5", "copy holds Key records: pass a Key"),
])
def test_whole_record_assignment_errors(tmp_path: Path, statement: str, message: str) -> None:
    from ebpf import bpf

    body = SOURCE.replace("    return bpf.XDP_PASS\n",
                          textwrap.indent(statement, "    ") + "\n    return bpf.XDP_PASS\n")
    m = import_source(tmp_path, "bpf_nested_structs_bad", body)
    try:
        with pytest.raises(bpf.CompileError, match=message):
            m.nested.compile()
    finally:
        sys.modules.pop(m.__name__, None)
