"""ebpf.bpf ``LPMTrie``: longest-prefix match in programs, on the kernel.

An XDP program run with ``BPF_PROG_TEST_RUN`` looks an IPv4 address up in a
``bpf.LPMTrie`` of routes (a ``Prefix`` struct key: ``prefixlen`` then a ``be32``), counts
hits on the matched prefix (``+=`` through the value pointer, and on an integer-valued trie,
which inserts nothing on a miss), and on request inserts or deletes an exact prefix.
Routes written from Python and from the program are compared with a Python longest-match
over hypothesis-drawn addresses and prefixes.
"""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ebpf import MapType
from ebpf.errors import BPFError
from ebpf.testing.modules import import_source

SOURCE = '''
from ebpf import bpf
from ebpf.bpf import u8, u32, u64, be32

class Prefix(bpf.Struct, frozen=True):
    prefixlen: u32
    addr: be32

class Hit(bpf.Struct):
    route: u32
    hits: u32

class Query(bpf.Struct):      # the packet
    addr: be32
    op: u32                   # 1: insert plen/addr2 -> val, 2: delete it (no lookup)
    plen: u32
    addr2: be32
    val: u32
    route: u32                # what the lookup found (0: no prefix matched)
    found: u32

routes = bpf.LPMTrie(Prefix, Hit, max_entries=256)
counts = bpf.LPMTrie(Prefix, u64, max_entries=16)

@bpf.xdp
def route(ctx: bpf.XDP) -> int:
    q = ctx.load(Query)
    if q is None:
        return bpf.XDP_ABORTED
    if q.op == 1:
        h = Hit(route=q.val)
        routes[Prefix(prefixlen=q.plen, addr=q.addr2)] = h
    elif q.op == 2:
        del routes[Prefix(prefixlen=q.plen, addr=q.addr2)]
    if q.op != 0:
        return bpf.XDP_PASS
    k = Prefix(prefixlen=32, addr=q.addr)
    counts[k] += 1                            # the matched prefix's counter; no insert
    r = routes.lookup(k)
    if r is not None:
        q.route = r.route
        q.found = 1
        r.hits += 1
    return bpf.XDP_PASS
'''


@pytest.fixture(scope="module")
def mod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    m = import_source(tmp_path_factory.mktemp("lpm"), "bpf_lpm_trie_mod", SOURCE)
    yield m
    sys.modules.pop(m.__name__, None)


@pytest.fixture
def coll(mod: ModuleType) -> Iterator[Any]:
    from ebpf import bpf

    with bpf.load(mod.route) as c:
        yield c


def _send(coll: Any, mod: ModuleType, addr: int, op: int = 0, plen: int = 0,
          addr2: int = 0, val: int = 0) -> Any:
    q = mod.Query(addr=addr, op=op, plen=plen, addr2=addr2, val=val)
    res = coll.route.test_run(q.encode() + bytes(16))
    assert res.retval == 2  # XDP_PASS
    return mod.Query.decode(res.data)


def _net(addr: int, plen: int) -> int:
    return addr & ~((1 << (32 - plen)) - 1) & 0xFFFFFFFF


prefixes = st.lists(st.tuples(st.integers(0, 32), st.integers(0, (1 << 32) - 1),
                              st.integers(1, 1000)), min_size=1, max_size=12)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(python_side=prefixes, program_side=prefixes,
       probes=st.lists(st.integers(0, (1 << 32) - 1), min_size=1, max_size=12))
def test_longest_prefix_match(coll: Any, mod: ModuleType, python_side: list[tuple[int, int,
                              int]], program_side: list[tuple[int, int, int]],
                              probes: list[int]) -> None:
    for k in list(coll.routes.keys()):
        del coll.routes[k]
    table: dict[tuple[int, int], int] = {}
    for plen, addr, val in python_side:                 # written from Python
        coll.routes[mod.Prefix(prefixlen=plen, addr=_net(addr, plen))] = mod.Hit(route=val)
        table[plen, _net(addr, plen)] = val
    for plen, addr, val in program_side:                # inserted by the program
        _send(coll, mod, 0, op=1, plen=plen, addr2=_net(addr, plen), val=val)
        table[plen, _net(addr, plen)] = val
    hits: dict[tuple[int, int], int] = {}
    for a in probes + [addr for _, addr, _ in python_side]:
        out = _send(coll, mod, a)
        match = max((k for k in table if ipaddress.IPv4Address(a) in
                     ipaddress.IPv4Network((k[1], k[0]))), default=None)
        assert (out.found, out.route) == ((0, 0) if match is None else (1, table[match]))
        if match is not None:
            hits[match] = hits.get(match, 0) + 1
    got = {(k.prefixlen, k.addr): (v.route, v.hits) for k, v in coll.routes.items()}
    assert got == {k: (v, hits.get(k, 0)) for k, v in table.items()}


def test_aug_assign_counts_the_matched_prefix_only(coll: Any, mod: ModuleType) -> None:
    ten = int(ipaddress.IPv4Address("10.0.0.0"))
    coll.counts[mod.Prefix(prefixlen=8, addr=ten)] = 0
    for a in (ten + 1, ten + 0x10203, ten + 0x1000000, ten - 1):   # 2 in 10/8, 2 outside
        _send(coll, mod, a)
    assert dict(coll.counts.items()) == {mod.Prefix(prefixlen=8, addr=ten): 2}


def test_program_deletes_exact_prefixes(coll: Any, mod: ModuleType) -> None:
    ten = int(ipaddress.IPv4Address("10.0.0.0"))
    coll.routes[mod.Prefix(prefixlen=8, addr=ten)] = mod.Hit(route=8)
    coll.routes[mod.Prefix(prefixlen=24, addr=ten)] = mod.Hit(route=24)
    assert _send(coll, mod, ten + 5).route == 24
    _send(coll, mod, 0, op=2, plen=24, addr2=ten)
    assert _send(coll, mod, ten + 5).route == 8          # the /24 is gone, the /8 matches
    _send(coll, mod, 0, op=2, plen=8, addr2=ten)
    assert _send(coll, mod, ten + 5).found == 0
    assert coll.collection.maps["routes"].type == MapType.LPM_TRIE


def test_key_must_start_with_prefixlen() -> None:
    from ebpf import bpf
    from ebpf.bpf import be32, u32

    class NoLen(bpf.Struct):
        addr: be32

    with pytest.raises(BPFError, match="prefixlen: u32"):
        bpf.LPMTrie(NoLen, u32, max_entries=4)
