"""ebpf.bpf map-element iterators with typed ``ctx.key``/``ctx.value``, on the kernel.

``@bpf.iter("bpf_map_elem", map=flows)`` types the iterator's key and value by the map's
declaration: the program walks a struct-keyed hash of struct values filled from Python,
prints each element with ``seq_printf`` and updates the value in place; an integer-keyed
array made from Python and typed with ``key=``/``value=`` is summed, and one with smaller
values is refused at attach. The text read back and the map contents are
compared with what Python wrote. This host refuses ``bpf_map_elem`` iterator loads with
EPERM (libbpf's too), so the loads skip there on that errno and run in the 6.1 VM.
"""

from __future__ import annotations

import errno
import re
from pathlib import Path
from typing import Any

import pytest

from ebpf import Map, MapType, bpf
from ebpf.bpf import u16, u32, u64
from ebpf.errors import BPFError
from ebpf.link.iter import attach_iter
from ebpf.testing.modules import import_file

H = import_file(Path(__file__).with_name("_trace_link_factories.py"))


class Key(bpf.Struct, frozen=True):
    port: u16
    proto: u16


class Stats(bpf.Struct):
    packets: u64
    seen: u32


flows = bpf.Hash(Key, Stats, max_entries=64)
totals = bpf.Array(u64, max_entries=1)


@bpf.iter("bpf_map_elem", map=flows)
def dump_flows(ctx: Any) -> int:
    k = ctx.key
    v = ctx.value
    if k is None or v is None:
        return 0
    v.seen += 1                              # the value is writable in place
    bpf.seq_printf(ctx, "%u/%u %llu %u\n", k.port, k.proto, v.packets, v.seen)
    return 0


@bpf.iter("bpf_map_elem", key=u32, value=u32)
def sum_numbers(ctx: Any) -> int:
    k = ctx.key
    v = ctx.value
    if k is None or v is None:
        return 0
    totals[0] += v.value * (k.value + 1)
    return 0


def test_struct_keys_and_values_are_typed() -> None:
    with H.bpf_load_or_skip("iter/bpf_map_elem", dump_flows) as coll:
        want = {Key(port=p, proto=6 + p % 2): Stats(packets=p * 10) for p in range(1, 9)}
        for k, s in want.items():
            coll.flows[k] = s
        for round_ in (1, 2):
            with attach_iter(coll.dump_flows, map=coll.flows) as it:
                text = it.read().decode()
            got = {}
            for line in text.splitlines():
                m = re.fullmatch(r"(\d+)/(\d+) (\d+) (\d+)", line)
                assert m is not None, line
                got[Key(port=int(m[1]), proto=int(m[2]))] = (int(m[3]), int(m[4]))
            assert got == {k: (s.packets, round_) for k, s in want.items()}
        assert {k: v.seen for k, v in coll.flows.items()} == {k: 2 for k in want}


def test_integer_keys_and_values_are_cells() -> None:
    with H.bpf_load_or_skip("iter/bpf_map_elem", sum_numbers) as coll, \
            Map.create(MapType.ARRAY, key_size=4, value_size=4, max_entries=16) as numbers:
        for i in range(16):                       # a map made from Python: typed by key=/value=
            numbers[i] = 3 * i + 1
        with attach_iter(coll.sum_numbers, map=numbers) as it:
            assert it.read() == b""
        assert coll.totals[0] == sum((3 * i + 1) * (i + 1) for i in range(16))
        with Map.create(MapType.ARRAY, key_size=4, value_size=2, max_entries=4) as small, \
                pytest.raises(OSError) as ei:     # the kernel's size check at attach
            attach_iter(coll.sum_numbers, map=small)
        assert ei.value.errno == errno.EACCES


def test_typing_errors() -> None:
    with pytest.raises(BPFError, match="map= or key=/value="):
        bpf.iter("bpf_map_elem", map=flows, key=u32)
    with pytest.raises(BPFError, match=r"integer type or a bpf\.Struct"):
        bpf.iter("bpf_map_elem", value=int)

    @bpf.iter("task", key=u32)
    def no_key(ctx: Any) -> int:
        return ctx.key  # type: ignore[no-any-return]

    with pytest.raises(bpf.CompileError, match="not a void \\* field"):
        no_key.compile()
