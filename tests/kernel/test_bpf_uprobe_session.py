"""``@bpf.uprobe_session``: one program run at entry and at return of a user function
(uprobe_multi link with ``BPF_TRACE_UPROBE_SESSION``, Linux 6.13), with ``ctx.is_return``
and the per-call ``bpf.session_cookie()``.

Compiled from Python, loaded, attached with ``attach_uprobe_multi`` to ``ebpf_target_add``
of the test binary (tests/testdata/uprobe/target.c) and fired for real: the entry run keeps
a timestamp in the session cookie and the return run turns it into a duration; entry runs
that return 1 (odd first argument) have no return run. A kernel without sessions refuses
the link with ``EINVAL`` (the attach type is unknown to it); the test skips on exactly that.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import ebpf
from ebpf import bpf, errors
from ebpf.bpf import i32, u32, u64
from ebpf.link.uprobe import UprobeMultiLink, attach_uprobe_multi
from ebpf.testing.modules import import_file

P = ebpf.ProgramType
A = ebpf.AttachType

H = import_file(Path(__file__).with_name("_trace_link_factories.py"))
target_bin = H.target_bin  # fixtures of _trace_link_factories
target = H.target

#: [0] entry runs, [1] return runs, [2] entry runs that skipped their return, [3] sum of
#: the results seen at return, [4] return runs whose cookie was not the entry's timestamp
counts = bpf.Array(u64, max_entries=8)
durations = bpf.Array(u64, max_entries=2)  # [0] sum of ns, [1] largest
seen_pid = bpf.var(u32, 0)


@contextmanager
def _session(prog: ebpf.Program, binary: str, names: tuple[str, ...], pid: int
             ) -> Iterator[UprobeMultiLink]:
    try:
        link = attach_uprobe_multi(prog, binary, names, pid=pid)
    except errors.NotSupportedError as e:
        pytest.skip(str(e))
    except OSError as e:
        if e.errno == errno.EINVAL and not _have_sessions():
            pytest.skip("the kernel refuses BPF_TRACE_UPROBE_SESSION links (EINVAL): "
                        "uprobe sessions are Linux 6.13")
        raise
    with link:
        yield link


def _have_sessions() -> bool:
    """Whether the kernel has uprobe sessions (6.13): its BTF's ``enum bpf_attach_type``
    names ``BPF_TRACE_UPROBE_SESSION``. (The ``bpf_session_cookie`` kfunc alone is not
    enough: 6.10-6.12 have it for kprobe sessions only, and refuse it here with EACCES.)"""
    from ebpf import btf

    try:
        e = btf.load_kernel().find("bpf_attach_type", kind=btf.Enum)
    except (KeyError, OSError, errors.BPFError):
        return False
    assert isinstance(e, btf.Enum)
    return any(v.name == "BPF_TRACE_UPROBE_SESSION" for v in e.values)


def _body(ctx: Any) -> int:
    return 0


def test_uprobe_session_declaration(target_bin: str) -> None:
    d = bpf.uprobe_session(target_bin, ["ebpf_target_add"])(_body)
    spec, _ = bpf.build_spec((d,))
    ps = spec.programs["_body"]
    assert (ps.type, ps.attach_type, ps.section) == (
        P.KPROBE, A.TRACE_UPROBE_SESSION, f"uprobe.session/{target_bin}:ebpf_target_add")
    assert d.probe_target == (target_bin, "ebpf_target_add")
    g = bpf.uprobe_session(target_bin, "ebpf_target_*")(_body)
    assert g.probe_target == (target_bin, "ebpf_target_add")


def test_uprobe_session_pairs_entry_and_return(target: Any, target_bin: str) -> None:
    if not _have_sessions():
        pytest.skip("the kernel's BTF has no BPF_TRACE_UPROBE_SESSION (uprobe sessions are "
                    "6.13)")

    @bpf.uprobe_session(target_bin, ["ebpf_target_add"])
    def on_add(ctx: Any) -> int:
        if bpf.get_current_pid_tgid() >> 32 != seen_pid:
            return 1
        c = bpf.session_cookie()
        if ctx.is_return:
            counts[1] += 1
            counts[3] += ctx.ret & 0xFFFFFFFF
            d = bpf.ktime_get_ns() - c.value
            if c.value == 0 or d > 10_000_000_000:
                counts[4] += 1
            durations[0] += d
            durations[1] = max(durations[1], d)
            return 0
        counts[0] += 1
        if i32(ctx.arg0) & 1:
            counts[2] += 1
            return 1  # no return run for this call
        c.value = bpf.ktime_get_ns()
        return 0

    pid = target.pid
    with bpf.load(on_add, constants={"seen_pid": pid}) as coll:
        prog = coll.on_add
        assert prog.type == P.KPROBE
        with _session(prog, target_bin, on_add.probe_target[1:], pid):
            assert target.ask("add 1 2 3") == "3"   # odd: entry only, 3 times
            assert target.ask("add 2 5 4") == "7"   # even: entry and return, 4 times
        got = [coll.counts[i] for i in range(5)]
        assert got == [7, 4, 3, 4 * 7, 0], got
        assert 0 < coll.durations[1] <= coll.durations[0] < 4 * 10_000_000_000
        assert target.ask("add 2 2 5") == "4"  # detached
        assert coll.counts[0] == 7


def test_session_kfuncs_only_in_session_programs(target_bin: str) -> None:
    def body(ctx: Any) -> int:
        c = bpf.session_cookie()
        c.value = 1
        return 0

    d = bpf.uprobe_multi(target_bin, ["ebpf_target_add"])(body)
    with pytest.raises(bpf.CompileError, match="uprobe session programs"):
        bpf.build_spec((d,))
