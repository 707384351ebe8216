"""TestRunner (issue 13): the reusable BPF_PROG_TEST_RUN gives what the general path gives.

The reference is ``Program.test_run`` with ``data_out_size`` set, which takes the general
path (a fresh attr and fresh buffers per call), not the runner.
"""

from __future__ import annotations

import ctypes
import errno
import gc
import struct
import sys
import threading
from typing import Any

import pytest

import ebpf
from ebpf import asm, errors
from ebpf._uapi import _generated_types as _t
from ebpf.asm import R0, R1, R2, R6, R7, Helper

PT = ebpf.ProgramType

#: XDP: data[0] += 1 (when the packet has a byte), return XDP_PASS.
_XDP_BUMP = """
    r2 = *(u32 *)(r1 + 0)
    r3 = *(u32 *)(r1 + 4)
    r4 = r2
    r4 += 1
    if r4 > r3 goto out
    r5 = *(u8 *)(r2 + 0)
    r5 += 1
    *(u8 *)(r2 + 0) = r5
out:
    r0 = 2
    exit
"""


def _frame(n: int = 64, first: int = 7) -> bytes:
    return bytes([first]) + bytes(i & 0xFF for i in range(1, n))


def _reference(prog: ebpf.Program, data: bytes, repeat: int = 0) -> ebpf.TestRunResult:
    return prog.test_run(data, repeat=repeat, data_out_size=len(data) + 4096)


def test_xdp_runner_matches_test_run_and_sees_the_write() -> None:
    with ebpf.Program.load(PT.XDP, _XDP_BUMP) as prog:
        runner = prog.test_runner(data_size_hint=64)
        for first in (0, 7, 255):
            pkt = _frame(64, first)
            want = _reference(prog, pkt)
            assert want.data is not None and want.data[0] == (first + 1) & 0xFF
            assert runner.run(pkt) == (want.retval, want.data)
            res = runner.run_result(pkt)
            assert (res.retval, res.data, res.ctx) == (want.retval, want.data, None)
            one = prog.test_run(pkt)
            assert (one.retval, one.data, one.ctx) == (want.retval, want.data, None)
            assert prog.test_run(pkt, repeat=1)[::2] == (want.retval, want.data)
        # bytearray, memoryview and a non-byte memoryview of the same bytes
        pkt = _frame(64)
        want = _reference(prog, pkt)
        assert runner.run(bytearray(pkt)) == (want.retval, want.data)
        assert runner.run(memoryview(pkt)) == (want.retval, want.data)
        assert runner.run(memoryview(pkt).cast("I")) == (want.retval, want.data)
        assert runner.run((ctypes.c_uint8 * 64).from_buffer_copy(pkt)) == (want.retval,
                                                                         want.data)
        assert runner.run(memoryview(pkt)[::-1][::-1]) == (want.retval, want.data)
        assert runner.run(pkt)[1] == want.data  # and the fast path again


def test_runner_takes_other_lengths_and_no_data_is_refused_for_xdp() -> None:
    with ebpf.Program.load(PT.XDP, _XDP_BUMP) as prog:
        runner = prog.test_runner(data_size_hint=64)
        for n in (64, 100, 20, 1500, 64, 64):
            pkt = _frame(n)
            want = _reference(prog, pkt)
            assert runner.run(pkt) == (want.retval, want.data), n
            assert prog.test_run(pkt).data == want.data, n
        with pytest.raises(errors.SyscallError) as ei:
            runner.run(b"")  # shorter than an Ethernet header
        assert ei.value.errno == errno.EINVAL
        short = prog.test_runner(data_size_hint=10)
        for _ in range(2):  # the GIL-holding path's failure, raised from the plain call
            with pytest.raises(errors.SyscallError, match="BPF_PROG_TEST_RUN") as ei:
                short.run(bytes(10))
            assert ei.value.errno == errno.EINVAL
        assert runner.run(_frame(64))[1] == _reference(prog, _frame(64)).data
        with pytest.raises(TypeError, match="bytes-like"):
            runner.run("not bytes")
        for bad in ("not bytes", 64):
            with pytest.raises(TypeError, match="bytes-like"):
                prog.test_run(bad)


def test_first_test_run_takes_the_general_path_with_the_same_results() -> None:
    """A program run once builds no runner; the general path grows its output too."""
    insns = [asm.mov(R6, R1), asm.mov(R2, 512), asm.call(Helper.XDP_ADJUST_TAIL),
             asm.mov(R0, ebpf.XDPAction.PASS), asm.exit()]
    for text in (_XDP_BUMP, insns):
        pkt = _frame(64)
        with ebpf.Program.load(PT.XDP, text) as ref:
            want = _reference(ref, pkt)
        with ebpf.Program.load(PT.XDP, text) as prog:
            first = prog.test_run(memoryview(pkt).cast("I"))
            assert prog._runner is None
            second = prog.test_run(pkt)
            assert prog._runner is not None
            assert first[::2] == second[::2] == (want.retval, want.data)


def test_socket_filter_runner_matches_test_run() -> None:
    insns = [asm.load(asm.W, R0, R1, _t.SkBuff.len.offset), asm.exit()]
    with ebpf.Program.load(PT.SOCKET_FILTER, insns) as prog:
        runner = prog.test_runner()
        for n in (64, 64, 200, 64):
            pkt = _frame(n)
            want = _reference(prog, pkt)
            assert want.retval == n - 14  # ETH_HLEN pulled
            assert runner.run(pkt) == (want.retval, want.data)
            assert runner.run_result(pkt)[::2] == (want.retval, want.data)
            assert prog.test_run(pkt, repeat=1)[::2] == (want.retval, want.data)


def test_repeat_runs_release_the_gil_and_agree() -> None:
    with ebpf.Program.load(PT.XDP, _XDP_BUMP) as prog:
        pkt = _frame(64, 1)
        runner = prog.test_runner(repeat=50)
        want = _reference(prog, pkt, repeat=50)
        res = runner.run_result(pkt)
        assert (res.retval, res.data) == (want.retval, want.data)
        assert res.duration_ns > 0 and runner.duration_ns == res.duration_ns
        assert runner.run(pkt) == (want.retval, want.data)
        assert prog.test_run(pkt, repeat=50).data == want.data
        runner.repeat = 1  # back to the GIL-holding path
        assert runner.run(pkt) == (_reference(prog, pkt).retval, _reference(prog, pkt).data)
        run = runner.run
        runner.repeat = 0  # the same kind of call: the functions stay
        assert runner.run is run and runner.repeat == 0
        assert run(pkt)[1] == _reference(prog, pkt).data
        for r in (0, 1, 0, 7, 1):  # test_run switching its runner between kinds
            assert prog.test_run(pkt, repeat=r)[::2] == _reference(prog, pkt, repeat=r)[::2]
        info = prog.info()
        assert info.run_cnt == 0 or info.run_cnt >= 50  # counted only with bpf_stats on
        with pytest.raises(errors.InvalidArgumentError, match="repeat"):
            runner.repeat = 1 << 32
        with pytest.raises(errors.InvalidArgumentError, match="repeat"):
            prog.test_run(pkt, repeat=-1)


def test_output_grows_on_enospc() -> None:
    grow = 512  # more than the default HEADROOM past the input
    insns = [asm.mov(R6, R1), asm.mov(R2, grow), asm.call(Helper.XDP_ADJUST_TAIL),
             asm.mov(R0, ebpf.XDPAction.PASS), asm.exit()]
    with ebpf.Program.load(PT.XDP, insns) as prog:
        pkt = _frame(64)
        want = _reference(prog, pkt)
        assert want.data is not None and len(want.data) == 64 + grow
        runner = prog.test_runner(data_size_hint=64)
        for _ in range(3):  # grown once, then the fast path with the larger buffer
            assert runner.run(pkt) == (want.retval, want.data)
        assert prog.test_run(pkt)[::2] == (want.retval, want.data)
        long_runner = prog.test_runner(repeat=3)  # the tail grows in each of the 3 runs
        want3 = _reference(prog, pkt, repeat=3)
        assert want3.data is not None and len(want3.data) == 64 + 3 * grow
        assert long_runner.run(pkt) == (want3.retval, want3.data)
        fixed = prog.test_runner(data_out_size=100)
        with pytest.raises(errors.SyscallError, match="data_out_size") as ei:
            fixed.run(pkt)
        assert ei.value.errno == errno.ENOSPC


def _counting_grower(runs: ebpf.Map) -> list[Any]:
    """XDP: count the run in ``runs[0]``, grow the packet by 1024 bytes, pass."""
    return [asm.mov(R6, R1), asm.load_map_value(R7, runs, 0), asm.mov(R1, 1),
            asm.atomic_add(asm.DW, R7, R1, 0), asm.mov(R1, R6), asm.mov(R2, 1024),
            asm.call(Helper.XDP_ADJUST_TAIL), asm.mov(R0, ebpf.XDPAction.PASS), asm.exit()]


def test_growth_runs_the_program_once_more_only() -> None:
    """The fast path's ENOSPC grows to the size the kernel reported: one retry, not two."""
    with ebpf.Map.create(ebpf.MapType.ARRAY, key_size=4, value_size=8, max_entries=1) as runs:
        insns = _counting_grower(runs)
        with ebpf.Program.load(PT.XDP, insns) as prog:
            runner = prog.test_runner()

            def count() -> int:
                return int(runs[0])  # an 8-byte value decodes as an int

            retval, out = runner.run(_frame(64))
            assert (retval, len(out or b"")) == (2, 64 + 1024)
            assert count() == 2  # the run that found the buffer small, and the retry
            runner.run(_frame(64))
            assert count() == 3


def test_ctx_in_and_out() -> None:
    mark_off = _t.SkBuff.mark.offset
    insns = [asm.load(asm.W, R2, R1, mark_off), asm.add(R2, 1),
             asm.store(asm.W, R1, mark_off, R2), asm.mov(R0, 0), asm.exit()]
    with ebpf.Program.load(PT.SCHED_CLS, insns) as prog:
        skb = _t.SkBuff()
        skb.mark = 41
        pkt = _frame(64)
        want = prog.test_run(pkt, ctx=skb)
        runner = prog.test_runner(ctx=skb)
        res = runner.run_result(pkt)
        assert res.ctx == want.ctx and res.data == want.data
        assert _t.SkBuff.from_buffer_copy(res.ctx).mark == 42
        skb.mark = 99
        assert runner.run_result(pkt, ctx=skb).data == want.data
        out = runner.ctx_out
        assert out is not None and _t.SkBuff.from_buffer_copy(out).mark == 100
        assert runner.run(pkt)[1] == want.data  # the ctx given last stays
        assert _t.SkBuff.from_buffer_copy(runner.ctx_out or b"").mark == 100
    with ebpf.Program.load(PT.XDP, _XDP_BUMP) as xdp:
        ctx = _t.XdpMd()
        ctx.data_end = 64
        runner = xdp.test_runner(ctx=ctx)
        res = runner.run_result(_frame(64))
        assert res.ctx is not None and len(res.ctx) == ctypes.sizeof(_t.XdpMd)
        assert res.data == _reference(xdp, _frame(64)).data


def test_context_only_program() -> None:
    insns = [asm.load(asm.DW, R0, R1, 0), asm.load(asm.DW, R2, R1, 8), asm.add(R0, R2),
             asm.exit()]
    with ebpf.Program.load(PT.RAW_TRACEPOINT, insns) as prog:
        runner = prog.test_runner(ctx=struct.pack("<QQ", 40, 2))
        assert runner.run(None) == (42, None)
        assert runner.run_result(None, ctx=struct.pack("<QQ", 1, 2))[::2] == (3, None)
        assert runner.run(None) == (3, None)
        assert runner.run_result(None).retval == 3


def test_closed_program_is_a_clear_error() -> None:
    prog = ebpf.Program.load(PT.XDP, _XDP_BUMP)
    runner = prog.test_runner()
    long_runner = prog.test_runner(repeat=5)
    pkt = _frame(64)
    assert runner.run(pkt)[0] == 2
    prog.test_run(pkt)
    prog.test_run(pkt)  # the program's own runner exists now
    run = runner.run
    prog.close()
    for call in (lambda: run(pkt), lambda: runner.run_result(pkt), lambda: long_runner.run(pkt),
                 lambda: prog.test_run(pkt), lambda: runner.run(bytes(100))):
        with pytest.raises(ValueError, match="closed"):
            call()
    with pytest.raises(ValueError, match="closed"):
        prog.test_runner()
    assert "closed" in repr(runner) and "XDP" in repr(runner)
    with pytest.raises(TypeError, match="Program"):
        ebpf.TestRunner(object())


def test_runner_function_outlives_the_runner_and_makes_no_cycle() -> None:
    gc.collect()
    gc.disable()
    try:
        prog = ebpf.Program.load(PT.XDP, _XDP_BUMP)
        run = prog.test_runner().run  # the runner object itself is gone
        assert run(_frame(64))[0] == 2
        prog.test_run(_frame(64))
        prog.test_run(_frame(64))  # the second call keeps a runner
        del run
        # No reference cycle holds the fd: dropping the program finalizes it at once.
        with pytest.warns(ResourceWarning, match="unclosed"):
            del prog
    finally:
        gc.enable()


def test_test_run_keywords_signature_and_errors() -> None:
    """test_run takes repeat and **options (no per-call keyword-default lookups): its
    signature as introspected is the full one, every keyword still works, and a wrong
    keyword or a second positional argument is a TypeError naming test_run."""
    import inspect

    from ebpf._programs import _TEST_RUN_KEYWORDS, Program

    full = inspect.signature(Program._test_run)
    assert inspect.signature(Program.test_run) == full
    assert set(full.parameters) - {"self", "data", "repeat"} == _TEST_RUN_KEYWORDS
    assert all(full.parameters[k].kind is inspect.Parameter.KEYWORD_ONLY
               for k in _TEST_RUN_KEYWORDS | {"repeat"})
    with ebpf.Program.load(PT.XDP, _XDP_BUMP) as prog:
        pkt = _frame(64, 1)
        want = _reference(prog, pkt)
        for kw in ({}, {"repeat": 1}, {"flags": 0}, {"cpu": 0, "batch_size": 0},
                   {"data_out_size": 64 + 256}, {"ctx_out_size": None}, {"ctx": None}):
            for _ in range(3):  # first call general path, then the kept runner
                got = prog.test_run(pkt, **kw)
                assert (got.retval, got.data) == (want.retval, want.data), kw
        with pytest.raises(TypeError, match=r"Program\.test_run\(\) got an unexpected "
                                            r"keyword argument 'bogus'"):
            prog.test_run(pkt, bogus=1)
        with pytest.raises(TypeError, match=r"test_run\(\) takes from 1 to 2 positional"):
            prog.test_run(pkt, 1)
        with pytest.raises(errors.InvalidArgumentError):
            prog.test_run(pkt, repeat=-1)


def test_kept_runner_takes_every_size_kind_and_repeat() -> None:
    """test_run's kept runner (from its second packet run on) against the general path:
    other lengths both ways, other buffer kinds, repeat switched, no data, a bad input."""
    with ebpf.Program.load(PT.XDP, _XDP_BUMP) as prog:
        prog.test_run(_frame(64))
        for n in (64, 64, 20, 1500, 14, 64, 2000, 64):
            pkt = _frame(n, n & 0xFF)
            want = _reference(prog, pkt)
            for data in (pkt, bytearray(pkt), memoryview(pkt), memoryview(pkt)[::1]):
                res = prog.test_run(data)
                assert (res.retval, res.data, res.ctx) == (want.retval, want.data, None), n
                assert res.duration_ns >= 0
                assert type(res) is ebpf.TestRunResult
            for repeat in (1, 0, 1, 4, 1):  # XDP repeats run on one frame: 4 bumps
                assert prog.test_run(pkt, repeat=repeat)[::2] == _reference(
                    prog, pkt, repeat)[::2]
        assert prog._runner is not None and prog._oneshot is not None
        with pytest.raises(errors.SyscallError) as ei:
            prog.test_run(b"")  # shorter than an Ethernet header, on the fast path
        assert ei.value.errno == errno.EINVAL
        with pytest.raises(TypeError, match="bytes-like"):
            prog.test_run("not bytes")
        with pytest.raises(errors.InvalidArgumentError, match="repeat"):
            prog.test_run(_frame(64), repeat=1 << 32)
        # each failure put the runner back: the fast path still serves
        assert prog._oneshot is not None
        assert prog.test_run(_frame(64)).data == _reference(prog, _frame(64)).data


def test_kept_runner_grows_on_enospc_once() -> None:
    """An output larger than the kept buffer: grown to the reported size, run once more."""
    with ebpf.Map.create(ebpf.MapType.ARRAY, key_size=4, value_size=8, max_entries=1) as runs:
        insns = _counting_grower(runs)
        with ebpf.Program.load(PT.XDP, insns) as prog:
            prog.test_run(_frame(64), data_out_size=4096)  # general path: 1 run
            assert int(runs[0]) == 1 and prog._runner is None
            res = prog.test_run(_frame(64))  # the first packet run: general path, grown
            assert len(res.data or b"") == 64 + 1024 and int(runs[0]) == 3
            assert prog._runner is None
            res = prog.test_run(_frame(64))  # the runner is made here, grows in its run
            assert len(res.data or b"") == 64 + 1024 and int(runs[0]) == 5
            for k in (6, 7):  # fast path, the grown buffer: one run each
                res = prog.test_run(_frame(64))
                assert len(res.data or b"") == 64 + 1024 and int(runs[0]) == k


@pytest.mark.parametrize("warm", [True, False])
def test_kept_runner_shared_by_threads(warm: bool) -> None:
    """Threads running one program at once each get their own packet back: a call that
    finds the kept runner in use takes the general path with its own buffers. Cold, the
    threads race to make the runner too."""
    with ebpf.Program.load(PT.XDP, _XDP_BUMP) as prog:
        if warm:
            prog.test_run(_frame(64))
            prog.test_run(_frame(64))
        errs: list[BaseException] = []
        start = threading.Barrier(4)

        def worker(k: int) -> None:
            try:
                start.wait()
                for i in range(300):
                    n = 40 + 30 * k + (i % 3)  # lengths differ per thread and per call
                    pkt = _frame(n, (k * 50 + i) & 0xFF)
                    res = prog.test_run(pkt, repeat=(i % 2))
                    want = bytes([(pkt[0] + 1) & 0xFF]) + pkt[1:]
                    assert (res.retval, res.data) == (ebpf.XDPAction.PASS, want), (k, i)
            except BaseException as e:
                errs.append(e)

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
        old = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)  # switch as often as the GIL allows
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        finally:
            sys.setswitchinterval(old)
        assert not errs, errs[0]
        assert prog._oneshot is not None
