"""``@bpf.usdt`` on a probe whose sites place its argument differently.

The uprobe test binary (tests/testdata/uprobe/target.c, its ``.note.stapsdt`` entries written
by inline asm) has one USDT probe, ``ebpf_lay:val``, at three sites: a constant
(``-4@$4242``), a register (the loop index times 3) and a stack slot (a ``volatile long
long``). The program,
compiled from Python, carries the fetch of each layout and picks it by the attach cookie
that ``attach_usdt`` gives each site (its layout number); all three values arrive.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ebpf import bpf, errors
from ebpf.bpf import i64, u32, u64
from ebpf.link.uprobe import attach_usdt, usdt_layouts, usdt_probes
from ebpf.testing.modules import import_file

H = import_file(Path(__file__).with_name("_trace_link_factories.py"))


seen = bpf.Hash(i64, u64, max_entries=32)
seen_pid = bpf.var(u32, 0)
N = 3


target_bin = H.target_bin  # fixtures of _trace_link_factories


@pytest.fixture
def layouts_bin(target_bin: str) -> str:
    """The uprobe test binary (tests/testdata/uprobe/target.c: ``lay N`` fires ebpf_lay:val
    at its three sites); x86-64 only, as the layouts asserted are its AT&T operands."""
    import platform

    if platform.machine() != "x86_64":
        pytest.skip("the layouts asserted are x86-64 operands")
    return target_bin


def test_the_probe_has_three_layouts(layouts_bin: str) -> None:
    sites = [p for p in usdt_probes(layouts_bin) if (p.provider, p.name) == ("ebpf_lay", "val")]
    assert len(sites) == 3
    layouts, index = usdt_layouts(sites)
    assert sorted(lay[0].kind for lay in layouts) == ["const", "deref", "reg"]
    assert sorted(index) == [0, 1, 2]


def test_usdt_sites_with_different_layouts_all_arrive(layouts_bin: str) -> None:
    @bpf.usdt(layouts_bin, "ebpf_lay", "val")
    def on_val(ctx: Any) -> int:
        if bpf.get_current_pid_tgid() >> 32 == seen_pid:
            seen[ctx.arg0] += 1
        return 0

    with H.Target(layouts_bin) as t, bpf.load(on_val, constants={"seen_pid": t.pid}) as coll:
        try:
            links = attach_usdt(coll.on_val, layouts_bin, "ebpf_lay", "val", pid=t.pid)
        except errors.NotSupportedError as e:  # bpf_cookie on perf events: 5.15
            pytest.skip(str(e))
        with links:
            assert t.ask(f"lay {N}") == str(N)
        got = dict(coll.seen.items())
        want = {4242: N} | {3 * i: 1 for i in range(N)} | {-1000 * (i + 1): 1
                                                            for i in range(N)}
        assert got == want, got
        assert t.ask("lay 1") == "1"  # detached
        assert coll.seen[4242] == N


def test_usdt_argument_type_widens_when_layouts_disagree(layouts_bin: str) -> None:
    from ebpf.bpf._kinds import _USDTAccess

    acc = _USDTAccess(layouts_bin, "ebpf_lay", "val")
    assert acc.fields["arg0"].type is i64  # an int at two sites, a long long at one
