"""ebpf.bpf ``Queue`` and ``Stack`` maps in programs, on the kernel.

An XDP program run with ``BPF_PROG_TEST_RUN`` pushes, pops and peeks a ``bpf.Queue`` of
``u32`` and a ``bpf.Stack`` of records as each packet asks; hypothesis-drawn operation
sequences are compared with a Python deque and list, and values pushed from Python are what
the program pops (and the reverse).
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ebpf import MapType
from ebpf.testing.modules import import_source

CAP = 4

SOURCE = f'''
from ebpf import bpf
from ebpf.bpf import i32, i64, u16, u32, u64

class Rec(bpf.Struct):
    v: u32
    tag: u16

class Op(bpf.Struct):     # the packet
    op: u32               # 1 push, 2 pop, 3 peek, 4 push with overwrite
    val: u32
    got_q: u32
    has_q: u32
    got_s: u32
    tag_s: u32
    has_s: u32
    rc: i32

fifo = bpf.Queue(u32, max_entries={CAP})
lifo = bpf.Stack(Rec, max_entries={CAP})

@bpf.xdp
def ops(ctx: bpf.XDP) -> int:
    p = ctx.load(Op)
    if p is None:
        return bpf.XDP_ABORTED
    if p.op == 1 or p.op == 4:
        r = Rec(v=p.val, tag=p.val & 0xFF)
        if p.op == 1:
            p.rc = fifo.push(p.val)
            lifo.push(r)
        else:
            p.rc = fifo.push(p.val, overwrite=True)
            lifo.push(Rec(v=p.val, tag=p.val & 0xFF), overwrite=True)   # in place
        return bpf.XDP_PASS
    if p.op == 2:
        q = fifo.pop()
        s = lifo.pop()
    else:
        q = fifo.peek()
        s = lifo.peek()
    if q is not None:
        p.got_q = q.value
        p.has_q = 1
    if s is not None:
        p.got_s = s.v
        p.tag_s = s.tag
        p.has_s = 1
    return bpf.XDP_PASS
'''


@pytest.fixture(scope="module")
def mod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    m = import_source(tmp_path_factory.mktemp("queue"), "bpf_queue_stack_mod", SOURCE)
    yield m
    sys.modules.pop(m.__name__, None)


@pytest.fixture
def coll(mod: ModuleType) -> Iterator[Any]:
    from ebpf import bpf

    with bpf.load(mod.ops) as c:
        yield c


def _op(coll: Any, mod: ModuleType, op: int, val: int = 0) -> Any:
    res = coll.ops.test_run(mod.Op(op=op, val=val).encode() + bytes(16))
    assert res.retval == 2  # XDP_PASS
    return mod.Op.decode(res.data)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(st.tuples(st.sampled_from([1, 2, 3, 4]), st.integers(0, (1 << 32) - 1)),
                    max_size=20))
def test_matches_deque_and_list(coll: Any, mod: ModuleType, ops: list[tuple[int, int]]) -> None:
    while _op(coll, mod, 2).has_q:              # empty both (they drain together)
        pass
    fifo: deque[int] = deque()
    lifo: list[int] = []
    for op, val in ops:
        out = _op(coll, mod, op, val)
        if op in (1, 4):
            full = len(fifo) == CAP
            if op == 1:
                assert out.rc == (-7 if full else 0)            # -E2BIG
                if not full:
                    fifo.append(val)
                    lifo.append(val)
            else:
                assert out.rc == 0
                if full:
                    fifo.popleft()
                    lifo.pop(0)                                 # overwrite drops the oldest
                fifo.append(val)
                lifo.append(val)
            continue
        assert (out.has_q, out.got_q) == ((1, fifo[0]) if fifo else (0, 0))
        assert (out.has_s, out.got_s, out.tag_s) == (
            (1, lifo[-1], lifo[-1] & 0xFF) if lifo else (0, 0, 0))
        if op == 2 and fifo:
            fifo.popleft()
            lifo.pop()


def test_python_and_program_share_the_queue(coll: Any, mod: ModuleType) -> None:
    q = coll.fifo
    assert coll.collection.maps["fifo"].type == MapType.QUEUE
    assert coll.collection.maps["lifo"].type == MapType.STACK
    q.push(11)
    q.push(22)
    assert _op(coll, mod, 2).got_q == 11                # pushed from Python, popped by BPF
    _op(coll, mod, 1, 33)
    assert q.pop() == 22 and q.pop() == 33              # pushed by BPF, popped from Python
    with pytest.raises(KeyError):
        q.pop()
    coll.lifo.push(mod.Rec(v=5, tag=6))
    out = _op(coll, mod, 3)
    assert (out.has_s, out.got_s, out.tag_s) == (1, 5, 6)
    assert coll.lifo.pop() == mod.Rec(v=5, tag=6)       # peek left it there


def test_queue_errors(tmp_path: Any) -> None:
    from ebpf import bpf

    for body, message in [
        ("    fifo[0] = 1\n", "has no keys"),
        ("    fifo.push(1, overwrite=2)\n", "overwrite=True or overwrite=False"),
        ("    fifo.get()\n", "has push"),
        ("    lifo.push(3)\n", "holds Rec records"),
    ]:
        src = ("from ebpf import bpf\nfrom ebpf.bpf import u32\nclass Rec(bpf.Struct):\n"
               "    v: u32\nfifo = bpf.Queue(u32, 4)\nlifo = bpf.Stack(Rec, 4)\n"
               "@bpf.xdp\ndef bad(ctx: bpf.XDP) -> int:\n" + body + "    return 2\n")
        m = import_source(tmp_path, "bpf_queue_bad", src)
        try:
            with pytest.raises(bpf.CompileError, match=message):
                m.bad.compile()
        finally:
            sys.modules.pop(m.__name__, None)
