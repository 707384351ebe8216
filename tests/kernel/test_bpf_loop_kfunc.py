"""ebpf.bpf: ``bpf.loop`` (the bpf_loop helper), kfuncs from BTF, ``min``/``max`` and
``m.lookup`` on integer values, compiled and run on the kernel against plain Python."""

from __future__ import annotations

import errno
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ebpf import errors
from ebpf.bpf import i8, i16, i32, i64, u8, u16, u32, u64
from ebpf.testing.modules import import_source

TYPES = [u8, u16, u32, u64, i8, i16, i32, i64]
FIXTURE = [HealthCheck.function_scoped_fixture]


def _ints(t: Any) -> st.SearchStrategy[int]:
    lo, hi = t.min(), t.max()
    return st.one_of(st.sampled_from([lo, hi, 0, 1, -1 if lo < 0 else 2, lo + 1, hi - 1]),
                     st.integers(lo, hi))


# -- min / max ---------------------------------------------------------------------------------
def _minmax_source(t: str) -> str:
    return f'''
from ebpf import bpf
from ebpf.bpf import u8, u16, u32, u64, i8, i16, i32, i64

class Io(bpf.Struct):
    a: {t}
    b: {t}
    lo: {t}
    hi: {t}
    lo7: {t}
    hi7: {t}
    # mixed signedness: i32 vs u32 compare (and return) as u32, i64 vs u32 as i64
    s: i32
    u: u32
    mix_lo: u32
    mix_hi: u32
    wide_lo: i64

@bpf.xdp
def mm(ctx: bpf.XDP) -> int:
    p = ctx.load(Io)
    if p is None:
        return bpf.XDP_ABORTED
    a = p.a
    b = p.b
    p.lo = min(a, b)
    p.hi = max(a, b)
    p.lo7 = min(7, a)
    p.hi7 = max(a, 7)
    p.mix_lo = min(p.s, p.u)
    p.mix_hi = max(p.s, p.u)
    p.wide_lo = min(i64(p.s), p.u)
    return bpf.XDP_PASS
'''


@pytest.fixture(scope="module")
def minmax(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[Any, Any]]:
    from ebpf import bpf

    tmp = tmp_path_factory.mktemp("minmax")
    out: dict[Any, Any] = {}
    try:
        for t in TYPES:
            mod = import_source(tmp, f"bpf_minmax_{t.__name__}", _minmax_source(t.__name__))
            out[t] = (bpf.load(mod.mm), mod.Io)
        yield out
    finally:
        for coll, _ in out.values():
            coll.close()


@pytest.mark.parametrize("t", TYPES, ids=[t.__name__ for t in TYPES])
def test_min_max_match_python(minmax: dict[Any, Any], t: Any) -> None:
    coll, io = minmax[t]

    @settings(max_examples=100, deadline=None, suppress_health_check=FIXTURE)
    @given(a=_ints(t), b=_ints(t), s=_ints(i32), u=_ints(u32))
    def check(a: int, b: int, s: int, u: int) -> None:
        res = coll.mm.test_run(io(a=a, b=b, s=s, u=u).encode())
        assert res.retval == 2
        out = io.decode(res.data)
        assert (out.lo, out.hi, out.lo7, out.hi7) == (min(a, b), max(a, b), min(7, a),
                                                      max(a, 7))
        assert out.mix_lo == min(u32.wrap(s), u) and out.mix_hi == max(u32.wrap(s), u)
        assert out.wide_lo == min(s, u)

    check()


# -- m.lookup on integer values ----------------------------------------------------------------
LOOKUP = '''
from ebpf import bpf
from ebpf.bpf import i32, u32, u64

class Io(bpf.Struct):
    key: u32
    add: i32
    seen: u32
    before: u64
    after: u64
    slot: i32

counts = bpf.Hash(u32, u64, max_entries=64)
levels = bpf.Array(i32, max_entries=8)

@bpf.xdp
def look(ctx: bpf.XDP) -> int:
    p = ctx.load(Io)
    if p is None:
        return bpf.XDP_ABORTED
    c = counts.lookup(p.key)
    if c is not None:
        p.seen = 1
        p.before = c.value
        c.value += 5                 # atomic add on the value in place
        p.after = c.value
    lv = levels.lookup(p.key & 7)
    if lv is not None:
        lv.value = lv.value - p.add  # a plain read and write through the pointer
        p.slot = lv.value
    return bpf.XDP_PASS
'''


@settings(max_examples=60, deadline=None, suppress_health_check=FIXTURE)
@given(ops=st.lists(st.tuples(st.integers(0, 20), st.integers(-(1 << 31), (1 << 31) - 1)),
                    min_size=1, max_size=12),
       present=st.sets(st.integers(0, 20), max_size=10))
def test_lookup_of_integer_values_matches_a_dict(tmp_path_factory: pytest.TempPathFactory,
                                                  ops: list[tuple[int, int]],
                                                  present: set[int]) -> None:
    from ebpf import bpf

    mod = _module(tmp_path_factory, "bpf_lookup_int", LOOKUP)
    counts = {k: 100 * k for k in present}
    levels = [0] * 8
    with bpf.load(mod.look) as coll:
        for k, v in counts.items():
            coll.counts[k] = v
        for key, add in ops:
            out = mod.Io.decode(coll.look.test_run(mod.Io(key=key, add=add).encode()).data)
            if key in counts:
                assert (out.seen, out.before, out.after) == (1, counts[key], counts[key] + 5)
                counts[key] += 5
            else:
                assert out.seen == 0
            levels[key & 7] = i32.wrap(levels[key & 7] - add)
            assert out.slot == levels[key & 7]
        assert {k: coll.counts[k] for k in counts} == counts
        assert [coll.levels[k] for k in range(8)] == levels        # i32: reads negative


_MODULES: dict[str, Any] = {}


def _module(factory: pytest.TempPathFactory, name: str, source: str) -> Any:
    if name not in _MODULES:
        _MODULES[name] = import_source(factory.mktemp(name), name, source)
    return _MODULES[name]


# -- bpf.loop ------------------------------------------------------------------------------------
LOOP = '''
from ebpf import bpf
from ebpf.bpf import u32, u64

class Io(bpf.Struct):
    n: u32
    stop: u32
    limit: u64
    total: u64
    count: u64
    first: u64
    ran: u64
    inner: u64

hits = bpf.Array(u64, max_entries=4)

@bpf.func
def past(i: u32) -> u32:          # a bpf.loop(n, fn) callback: 1 stops the loop
    return i * i > 40000

@bpf.func
def tri(n: u32) -> u64:           # a bpf.loop inside a subprogram, with an early return
    s: u64 = 0
    for j in bpf.loop(n):
        s += j
        if s > 5000000:
            return 1
    return s

@bpf.xdp
def lp(ctx: bpf.XDP) -> int:
    p = ctx.load(Io)
    if p is None:
        return bpf.XDP_ABORTED
    n = p.n
    stop = p.stop
    limit = p.limit
    total: u64 = 0
    count: u64 = 0
    first: u64 = 0
    for i in bpf.loop(n):
        if i == stop:
            break
        if i % 3 == 0:
            continue
        total += i
        count += 1
        if first == 0 and (i & 0xFF) == 0xFF:
            first = i
        hits[i & 3] += 1
        if total > limit:
            return 7
    p.total = total
    p.count = count
    p.first = first
    p.ran = bpf.loop(n, past)
    p.inner = tri(n & 0xFFF)
    return bpf.XDP_PASS
'''


def loop_reference(n: int, stop: int, limit: int) -> tuple[int, dict[str, int], list[int]]:
    """The program above in plain Python: (return value, fields, hits per slot)."""
    total = count = first = 0
    hits = [0] * 4
    for i in range(n):
        if i == stop:
            break
        if i % 3 == 0:
            continue
        total += i
        count += 1
        if first == 0 and (i & 0xFF) == 0xFF:
            first = i
        hits[i & 3] += 1
        if total > limit:
            return 7, {}, hits
    ran = n
    for i in range(n):
        if i * i > 40000:
            ran = i + 1
            break
    s = 0
    inner = -1
    for j in range(n & 0xFFF):
        s += j
        if s > 5000000:
            inner = 1
            break
    return 2, {"total": total, "count": count, "first": first, "ran": ran,
               "inner": s if inner < 0 else 1}, hits


@pytest.fixture(scope="module")
def looped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    from ebpf import bpf

    mod = _module(tmp_path_factory, "bpf_loop_prog", LOOP)
    with bpf.load(mod.lp) as coll:
        assert coll.collection.btf_error is None  # func info of the callbacks accepted
        assert [f[1] for f in coll.compiled["lp"].funcs] == ["lp", "lp_loop1", "past", "tri",
                                                              "tri_loop1"]
        yield coll, mod.Io


@settings(max_examples=60, deadline=None)
@given(n=st.one_of(st.sampled_from([0, 1, 2, 3, 256, 100_000, 1 << 20, 1 << 23]),
                   st.integers(0, 300_000)),
       stop=st.one_of(st.just(0xFFFF_FFFF), st.integers(0, 300_000)),
       limit=st.one_of(st.just((1 << 64) - 1), st.integers(0, 1 << 36)))
def test_bpf_loop_matches_python(looped: tuple[Any, Any], n: int, stop: int,
                                 limit: int) -> None:
    coll, io = looped
    for k in range(4):
        coll.hits[k] = 0
    res = coll.lp.test_run(io(n=n, stop=stop, limit=limit).encode())
    want_ret, want, want_hits = loop_reference(n, stop, limit)
    assert res.retval == want_ret
    out = io.decode(res.data)
    assert {k: getattr(out, k) for k in want} == want
    assert [coll.hits[k] for k in range(4)] == want_hits


def test_bpf_loop_past_its_limit_runs_nothing(looped: tuple[Any, Any]) -> None:
    coll, io = looped
    out = io.decode(coll.lp.test_run(io(n=(1 << 23) + 1, stop=5, limit=9).encode()).data)
    assert (out.total, out.count, out.ran) == (0, 0, (1 << 64) - 7)  # -E2BIG, no iteration


RANGE_TOO_LONG = '''
from ebpf import bpf
from ebpf.bpf import u64

total = bpf.var(u64, 0)

@bpf.xdp
def long_range(ctx: bpf.XDP) -> int:
    global total
    s: u64 = 0
    for i in range(3000000):
        s += i ^ (s >> 3)
    total = s
    return bpf.XDP_PASS

@bpf.xdp
def long_loop(ctx: bpf.XDP) -> int:
    global total
    s: u64 = 0
    for i in bpf.loop(3000000):
        s += i ^ (s >> 3)
    total = s
    return bpf.XDP_PASS
'''


def test_a_loop_too_long_for_the_verifier_runs_with_bpf_loop(tmp_path: Path) -> None:
    from ebpf import bpf

    mod = import_source(tmp_path, "bpf_long_loop", RANGE_TOO_LONG)
    with pytest.raises(errors.BPFError) as ei:  # the verifier gives up: 1M insns walked
        bpf.load(mod.long_range)
    assert getattr(ei.value, "errno", None) == errno.E2BIG or "too large" in str(ei.value), \
        str(ei.value)
    s = 0
    for i in range(3000000):
        s = (s + (i ^ (s >> 3))) & ((1 << 64) - 1)
    with bpf.load(mod.long_loop) as coll:
        assert coll.long_loop.test_run(bytes(64)).retval == 2
        assert coll.variables["total"].get() == s


# -- kfuncs --------------------------------------------------------------------------------------
KFUNC = '''
from ebpf import bpf
from ebpf.bpf import i32, u32

class Io(bpf.Struct):
    pid: i32
    found: u32
    tgid: i32
    ppid: i32

@bpf.xdp
def kf(ctx: bpf.XDP) -> int:
    p = ctx.load(Io)
    if p is None:
        return bpf.XDP_ABORTED
    t = bpf.kfunc.bpf_task_from_pid(p.pid)     # KF_ACQUIRE | KF_RET_NULL
    if t is not None:
        p.found = 1
        p.tgid = t.tgid
        p.ppid = t.real_parent.tgid
        bpf.kfunc.bpf_task_release(t)           # KF_RELEASE
    return bpf.XDP_PASS

@bpf.xdp
def leak(ctx: bpf.XDP) -> int:
    t = bpf.kfunc.bpf_task_from_pid(1)
    if t is not None:
        return t.pid
    return 0
'''


@pytest.fixture(scope="module")
def kf(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    from ebpf import bpf

    mod = _module(tmp_path_factory, "bpf_kfunc_prog", KFUNC)
    try:
        coll = bpf.load(mod.kf)
    except errors.VerifierError as e:  # pragma: no cover - kernels before 6.2 lack it
        if "unknown func" in str(e) or "not allowed" in str(e):
            pytest.skip(f"bpf_task_from_pid from XDP: {e}")
        raise
    with coll:
        yield coll, mod.Io


def test_kfunc_task_from_pid_matches_proc(kf: tuple[Any, Any]) -> None:
    coll, io = kf
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    child = subprocess.Popen(["sleep", "30"])
    stop = threading.Event()
    ready = threading.Event()
    tids: list[int] = []

    def worker() -> None:
        tids.append(threading.get_native_id())
        ready.set()
        stop.wait()

    th = threading.Thread(target=worker)
    th.start()
    ready.wait()
    try:
        known = {os.getpid(): (os.getpid(), os.getppid()),
                 threading.get_native_id(): (os.getpid(), os.getppid()),
                 tids[0]: (os.getpid(), os.getppid()),
                 child.pid: (child.pid, os.getpid())}

        @settings(max_examples=80, deadline=None, suppress_health_check=FIXTURE)
        @given(pid=st.one_of(st.sampled_from(sorted(known)),
                             st.integers(pid_max, (1 << 31) - 1),
                             st.integers(-(1 << 31), 0)))
        def check(pid: int) -> None:
            out = io.decode(coll.kf.test_run(io(pid=pid).encode()).data)
            if pid in known:
                assert (out.found, out.tgid, out.ppid) == (1, *known[pid])
            else:  # no such task: NULL, never dereferenced or released
                assert (out.found, out.tgid, out.ppid) == (0, 0, 0)

        check()
    finally:
        stop.set()
        th.join()
        child.kill()
        child.wait()


def test_unreleased_kfunc_reference_is_a_verifier_error_at_the_line(
        kf: tuple[Any, Any], tmp_path_factory: pytest.TempPathFactory) -> None:
    from ebpf import bpf

    mod = _module(tmp_path_factory, "bpf_kfunc_prog", KFUNC)
    with pytest.raises(errors.VerifierError) as ei:
        bpf.load(mod.leak)
    assert "bpf_kfunc_prog.py:28: return t.pid" in str(ei.value), str(ei.value)
    assert "reference leak" in str(ei.value) or "Unreleased reference" in str(ei.value)


@pytest.mark.parametrize(("body", "message"), [
    ("x = bpf.kfunc.bpf_task_from_pid(1, 2)",
     ":8:9: kfunc bpf_task_from_pid(i32 pid) takes 1 argument(s), got 2"),
    ("bpf.kfunc.bpf_task_release(5)",
     ":8:32: kfunc bpf_task_release: parameter p is a struct task_struct *, got an integer"),
    ("x = bpf.kfunc.bpf_task_from_pid(bpf.get_current_task_btf())",
     ":8:37: kfunc bpf_task_from_pid: parameter pid is an integer (i32)"),
    ("x = bpf.kfunc.no_such_function_at_all()",
     ":8:9: the kernel's BTF has no function 'no_such_function_at_all'"),
    ("x = bpf.kfunc.do_unlinkat(1, 2)",
     ":8:9: do_unlinkat is not a kfunc (no bpf_kfunc tag in the kernel's BTF)"),
    ("x = bpf.loop(5)", ":8:9: bpf.loop(n) is a `for i in bpf.loop(n):` loop"),
    ("x = bpf.loop(5, 3)", ":8:21: bpf.loop(n, fn): fn must be a @bpf.func"),
    ("for i in bpf.loop(9000000):\n        pass", ":8:23: bpf.loop runs at most 8388608"),
    ("for i in bpf.loop(4):\n        x = ctx.rx_queue_index",
     ":8:5: ctx cannot be used inside a bpf.loop body"),
    ("a = bpf.array(u32, 4)\n    for i in bpf.loop(4):\n        a[0] = i",
     ":9:5: a: only integer locals can be shared with a bpf.loop body"),
    ("for i in bpf.loop(4):\n        y = z\n        z = i",
     ":9:13: z may be used before it is assigned"),
    ("x = min(1)", ":8:9: min(a, b) takes two integers"),
])
def test_compile_errors(tmp_path: Path, body: str, message: str) -> None:
    from ebpf import bpf

    src = f'''
from ebpf import bpf
from ebpf.bpf import u32
q = 1

@bpf.tp_btf("sys_enter")
def prog(ctx) -> int:
    {body}
    return 0
'''
    mod = import_source(tmp_path, f"bpf_lk_err_{abs(hash(body))}", src)
    with pytest.raises(bpf.CompileError) as ei:
        mod.prog.compile()
    assert message in str(ei.value), str(ei.value)


NESTED = '''
from ebpf import bpf
from ebpf.bpf import u64

out = bpf.var(u64, 0)
limit = bpf.var(u64, 0)

@bpf.xdp
def nest(ctx: bpf.XDP) -> int:
    global out
    s: u64 = 0
    for i in bpf.loop(300):
        for j in bpf.loop(i):          # a callback inside a callback
            s += j
            if s > limit:
                return 5               # returns through both callbacks
        for k in range(3):             # a bounded loop inside a callback
            s += k
    out = s
    return 2
'''


def nested_reference(limit: int) -> tuple[int, int]:
    s = 0
    for i in range(300):
        for j in range(i):
            s += j
            if s > limit:
                return 5, 0
        for k in range(3):
            s += k
    return 2, s


@settings(max_examples=40, deadline=None, suppress_health_check=FIXTURE)
@given(limit=st.one_of(st.sampled_from([0, 1, 4455000, 4456000, (1 << 64) - 1]),
                       st.integers(0, 5_000_000)))
def test_nested_bpf_loops_with_return_match_python(
        tmp_path_factory: pytest.TempPathFactory, limit: int) -> None:
    from ebpf import bpf

    mod = _module(tmp_path_factory, "bpf_loop_nested", NESTED)
    with bpf.load(mod.nest) as coll:
        coll.variables["limit"].set(limit)
        ret = coll.nest.test_run(bytes(64)).retval
        assert (ret, coll.variables["out"].get()) == nested_reference(limit)
