"""ebpf.bpf tail calls: bpf.ProgArray filled at module level, tail_call(ctx, i) jumps to the
slot's program or falls through when the slot is empty (hypothesis over indexes)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from ebpf.testing.modules import import_source

SOURCE = '''
from ebpf import bpf
from ebpf.bpf import u32

class In(bpf.Struct):
    idx: u32

progs = bpf.ProgArray(max_entries=4)

@bpf.xdp
def entry(ctx: bpf.XDP) -> int:
    p = ctx.load(In)
    if p is None:
        return bpf.XDP_ABORTED
    progs.tail_call(ctx, p.idx)
    return bpf.XDP_PASS          # empty slot or index out of range

@bpf.xdp
def drop(ctx: bpf.XDP) -> int:
    return bpf.XDP_DROP

@bpf.xdp
def tx(ctx: bpf.XDP) -> int:
    return bpf.XDP_TX

progs.set(0, drop)
progs.set(2, tx)
'''


def test_tail_call_jumps_to_the_slot_or_falls_through(tmp_path: Path) -> None:
    from ebpf import bpf

    mod = import_source(tmp_path, "bpf_tail_prog", SOURCE)
    expect = {0: bpf.XDP_DROP, 2: bpf.XDP_TX}
    with bpf.load(mod.entry) as coll:  # drop and tx are loaded as the slots' programs
        assert set(coll.programs) == {"entry", "drop", "tx"}

        @settings(max_examples=60, deadline=None)
        @given(idx=st.one_of(st.integers(0, 5), st.integers(0, 2**32 - 1)))
        def check(idx: int) -> None:
            res = coll.entry.test_run(mod.In(idx=idx).encode() + bytes(60))
            assert res.retval == expect.get(idx, bpf.XDP_PASS), idx

        check()
