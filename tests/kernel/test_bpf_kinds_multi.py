"""``@bpf.uprobe_multi`` (one program on many user functions, Linux 6.6) and the option
bytes of ``@bpf.cgroup_sockopt`` programs.

Each program is compiled from Python, loaded, attached through ``ebpf.link`` and fired for
real: the uprobe_multi programs on libc's ``getpid``/``getppid`` called by this process, told
apart by attach cookies and ``bpf_get_func_ip``; before 6.6 attaching raises
:class:`~ebpf.errors.NotSupportedError` and the test skips with its message.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

import ebpf
from ebpf import bpf, errors
from ebpf.bpf import u32, u64
from ebpf.link.uprobe import UprobeMultiLink, attach_uprobe_multi

P = ebpf.ProgramType
A = ebpf.AttachType
N = 5
LIBC = "libc.so.6"

hits = bpf.Array(u64, max_entries=4)
by_ip = bpf.Hash(u64, u64, max_entries=8)
rets = bpf.Array(u64, max_entries=4)
seen_pid = bpf.var(u32, 0)


def _body(ctx: Any) -> int:
    return 0


@contextmanager
def _multi(prog: ebpf.Program, names: tuple[str, ...], **kw: Any
           ) -> Iterator[UprobeMultiLink]:
    try:
        link = attach_uprobe_multi(prog, LIBC, names, pid=os.getpid(), **kw)
    except errors.NotSupportedError as e:
        pytest.skip(str(e))
    with link:
        yield link


# -- uprobe_multi ------------------------------------------------------------------------------
def test_uprobe_multi_declaration() -> None:
    d = bpf.uprobe_multi(LIBC, ["getpid", "getppid"])(_body)
    spec, _ = bpf.build_spec((d,))
    ps = spec.programs["_body"]
    assert (ps.type, ps.attach_type, ps.section) == (
        P.KPROBE, A.TRACE_UPROBE_MULTI, f"uprobe.multi/{LIBC}:getpid,getppid")
    assert d.probe_target == (LIBC, "getpid", "getppid")
    r = bpf.uprobe_multi(LIBC, "get*pid", retprobe=True)(_body)
    assert r.section == f"uretprobe.multi/{LIBC}:get*pid"
    assert r.probe_target is not None and "getpid" in r.probe_target[1:]
    assert "getppid" in r.probe_target[1:]


@pytest.mark.parametrize("make", [
    lambda: bpf.uprobe_multi("", ["f"]), lambda: bpf.uprobe_multi(LIBC, []),
    lambda: bpf.uprobe_multi(LIBC, ""), lambda: bpf.uprobe_multi(LIBC, ["a/b"]),
    lambda: bpf.uprobe_multi(LIBC, "no_such_function_*"),
    lambda: bpf.uprobe_multi(LIBC, "getpid", retprobe=1),  # type: ignore[arg-type]
])
def test_uprobe_multi_bad_arguments(make: Any) -> None:
    with pytest.raises(errors.BPFError):
        make()


def test_uprobe_multi_counts_each_function_by_cookie_and_ip() -> None:
    @bpf.uprobe_multi(LIBC, ["getpid", "getppid"])
    def on_call(ctx: Any) -> int:
        if bpf.get_current_pid_tgid() >> 32 == seen_pid:
            c = ctx.cookie
            if c < 4:
                hits[c] += 1
            by_ip[ctx.func_ip] += 1
        return 0

    names = on_call.probe_target[1:]
    with bpf.load(on_call, constants={"seen_pid": os.getpid()}) as coll:
        assert coll.on_call.type == P.KPROBE
        with _multi(coll.on_call, names, cookies=[1, 2]):
            for _ in range(N):
                os.getppid()
            for _ in range(2 * N):
                os.getpid()
        assert [coll.hits[i] for i in range(4)] == [0, 2 * N, N, 0]
        libc = ctypes.CDLL(LIBC)
        ips = {ctypes.cast(getattr(libc, n), ctypes.c_void_p).value: n for n in names}
        counts = {ips.get(k, hex(k)): v for k, v in coll.by_ip.items()}
        assert counts == {"getpid": 2 * N, "getppid": N}
        os.getpid()  # detached
        assert coll.hits[1] == 2 * N


def test_uretprobe_multi_sees_return_values() -> None:
    @bpf.uprobe_multi(LIBC, "get*pid", retprobe=True)
    def on_ret(ctx: Any) -> int:
        if bpf.get_current_pid_tgid() >> 32 == seen_pid:
            c = ctx.cookie
            if c < 4:
                rets[c] = ctx.ret
        return 0

    names = on_ret.probe_target[1:]
    assert {"getpid", "getppid"} <= set(names)
    with bpf.load(on_ret, constants={"seen_pid": os.getpid()}) as coll:
        cookies = [1 if n == "getpid" else 2 if n == "getppid" else 3 for n in names]
        with _multi(coll.on_ret, names, cookies=cookies, retprobe=True):
            os.getpid()
            os.getppid()
        assert coll.rets[1] == os.getpid()
        assert coll.rets[2] == os.getppid()
