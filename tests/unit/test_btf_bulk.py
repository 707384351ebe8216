"""Bulk decoding (``ebpf.btf._bulk`` and ``Spec.types``) gives what record-by-record decoding
gives: members (with and without ``kind_flag``), parameters (variadic or not), enumerators
(signed or not, 32 and 64 bits), in both byte orders, and leaves malformed records to be
reported one by one."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ebpf import btf
from ebpf.btf import _bulk
from ebpf.errors import ParseError

_U32 = 0xFFFFFFFF


class _Blob:
    def __init__(self, order: str) -> None:
        self.order = order
        self.records: list[bytes] = []
        self.strings = bytearray(b"\0")

    def s(self, text: str) -> int:
        off = self.strings.find(b"\0" + text.encode() + b"\0")
        if text and off >= 0:
            return off + 1
        if not text:
            return 0
        off = len(self.strings)
        self.strings += text.encode() + b"\0"
        return off

    def add(self, kind: int, name: int, vlen: int, kflag: bool, st_: int, *tail: int) -> int:
        info = int(kflag) << 31 | kind << 24 | vlen
        words = (name, info, st_, *tail)
        self.records.append(struct.pack(f"{self.order}{len(words)}I", *(w & _U32 for w in words)))
        return len(self.records)

    def build(self) -> bytes:
        types = b"".join(self.records)
        header = struct.pack(f"{self.order}HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types),
                             len(types), len(self.strings))
        return header + types + bytes(self.strings)


_names = st.sampled_from(["", "a", "b", "len", "next", "x" * 40])
_member = st.tuples(_names, st.integers(0, 8), st.integers(0, (1 << 24) - 1), st.integers(0, 255))


@st.composite
def blobs(draw: st.DrawFn) -> bytes:
    b = _Blob(draw(st.sampled_from("<>")))
    b.add(1, b.s("int"), 0, False, 4, 32 | 1 << 24)
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from([4, 5, 6, 19, 13, 2, 12]))
        name = b.s(draw(_names))
        if kind in (4, 5):
            kflag = draw(st.booleans())
            members = draw(st.lists(_member, max_size=5))
            tail = []
            for n, t, off, bf in members:
                tail += [b.s(n), t, (bf << 24 | off) if kflag else off | bf << 24]
            b.add(kind, name, len(members), kflag, draw(st.integers(0, 64)), *tail)
        elif kind in (6, 19):
            signed = draw(st.booleans())
            bits = 32 if kind == 6 else 64
            values = draw(st.lists(st.tuples(_names, st.integers(0, (1 << bits) - 1)),
                                   max_size=5))
            tail = []
            for n, v in values:
                tail += [b.s(n), v & _U32] + ([v >> 32] if kind == 19 else [])
            b.add(kind, name, len(values), signed, bits // 8, *tail)
        elif kind == 13:
            params = draw(st.lists(st.tuples(_names, st.integers(0, 8)), max_size=4))
            if draw(st.booleans()):
                params.append(("", 0))  # "..."
            tail = []
            for n, t in params:
                tail += [b.s(n), t]
            b.add(13, 0, len(params), False, draw(st.integers(0, 3)), *tail)
        elif kind == 12:
            b.add(12, name, draw(st.integers(0, 2)), False, 1)
        else:
            b.add(2, 0, 0, False, draw(st.integers(0, 3)))
    return b.build()


def _trailing(t: btf.Type) -> object:
    if isinstance(t, btf.Composite):
        return [(m.name, m.type_id, m.offset, m.bitfield_size) for m in t.members]
    if isinstance(t, btf.FuncProto):
        return ([(p.name, p.type_id) for p in t.params], t.variadic)
    if isinstance(t, (btf.Enum, btf.Enum64)):
        return (t.signed, list(t.values))
    return None


@settings(max_examples=200, deadline=None)
@given(blobs())
def test_bulk_trailing_matches_one_by_one(data: bytes) -> None:
    bulk = btf.Spec.from_bytes(data)
    list(bulk.types())
    _bulk.decode_trailing(bulk, (_bulk.MEMBERS, _bulk.PARAMS, _bulk.VALUES))
    one = btf.Spec.from_bytes(data)
    for t in bulk.types():
        if isinstance(t, btf.Composite):
            assert t.id in bulk._member_cache
        elif isinstance(t, btf.FuncProto):
            assert t.id in bulk._param_cache
        elif isinstance(t, (btf.Enum, btf.Enum64)):
            assert t.id in bulk._value_cache
        u = one[t.id]
        assert repr(t) == repr(u)
        assert _trailing(t) == _trailing(u)
        assert type(t.members if isinstance(t, btf.Composite) else ()) is tuple


def test_walking_everything_decodes_trailing_in_bulk() -> None:
    b = _Blob("<")
    for i in range(100):
        b.add(4, b.s(f"s{i}"), 1, False, 4, b.s("m"), 0, 0)
        b.add(13, 0, 1, False, 0, b.s("p"), 0)
    spec = btf.Spec.from_bytes(b.build())
    for t in spec.types():
        if isinstance(t, btf.Composite):
            assert t.members[0].name == "m"
        elif isinstance(t, btf.FuncProto):
            assert t.params[0].name == "p"
    # one bulk decode of every group, after a few misses: all cached at once
    assert len(spec._member_cache) == len(spec._param_cache) == 100


@pytest.mark.parametrize("group", [_bulk.MEMBERS, _bulk.PARAMS, _bulk.VALUES])
def test_bad_name_offset_is_reported_for_its_record_only(group: int) -> None:
    b = _Blob("<")
    kind = {_bulk.MEMBERS: 4, _bulk.PARAMS: 13, _bulk.VALUES: 6}[group]
    good = b.add(kind, 0, 1, False, 4, b.s("ok"), 0)
    bad = b.add(kind, 0, 1, False, 4, 1 << 20, 0)  # name beyond the string section
    spec = btf.Spec.from_bytes(b.build())
    _bulk.decode_trailing(spec, (group,))  # refused as a whole: nothing cached
    attr = {_bulk.MEMBERS: "members", _bulk.PARAMS: "params", _bulk.VALUES: "values"}[group]
    assert getattr(spec[good], attr)[0].name == "ok"
    with pytest.raises(ParseError):
        getattr(spec[bad], attr)


def test_first_walk_keeps_nothing_second_keeps_all() -> None:
    b = _Blob("<")
    for i in range(50):
        b.add(4, b.s(f"s{i}"), 0, False, 4)
        b.add(2, 0, 0, False, 2 * i + 1)
    spec = btf.Spec.from_bytes(b.build())
    first = list(spec.types())
    assert [t.id for t in first] == list(range(101))
    assert len(spec._types) == 1  # only void: nothing kept
    assert all(t == spec[t.id] for t in first)
    second = list(spec.types())
    assert second == first
    assert all(t is spec[t.id] for t in second)
    assert spec.find("s7").id == first[15].id


def test_walk_reads_linkage_and_variadic_on_demand() -> None:
    b = _Blob("<")
    void_proto = b.add(13, 0, 0, False, 0)
    vproto = b.add(13, 0, 2, False, 0, b.s("a"), 0, 0, 0)  # (a, ...)
    funcs = [b.add(12, b.s(f"f{linkage}"), linkage, False, vproto) for linkage in range(3)]
    spec = btf.Spec.from_bytes(b.build())
    walked = {t.id: t for t in spec.types()}  # the first walk: columns, nothing kept
    one = btf.Spec.from_bytes(b.build())
    assert walked[void_proto].variadic is False and walked[vproto].variadic is True
    assert [p.name for p in walked[vproto].params] == ["a"]
    for linkage, fid in enumerate(funcs):
        assert walked[fid].linkage is btf.Linkage(linkage) is one[fid].linkage
        assert repr(walked[fid]) == repr(one[fid])
    assert repr(walked[vproto]) == repr(one[vproto])


@pytest.mark.parametrize("info_extra", [3, 0xFFFF, 1 << 31])
def test_walk_with_an_odd_func_info_still_checks_it(info_extra: int) -> None:
    b = _Blob("<")
    proto = b.add(13, 0, 0, False, 0)
    good = b.add(12, b.s("ok"), 1, False, proto)
    flag = info_extra >> 31
    odd = b.add(12, b.s("odd"), info_extra & 0xFFFF, bool(flag), proto)
    spec = btf.Spec.from_bytes(b.build())
    if flag:  # kind_flag is ignored on FUNC, as before: the walk decodes it
        assert [t.linkage for t in spec.types() if isinstance(t, btf.Func)] == [
            btf.Linkage.GLOBAL, btf.Linkage.STATIC]
        return
    with pytest.raises(ParseError, match="linkage"):
        list(spec.types())
    assert spec[good].linkage is btf.Linkage.GLOBAL
    with pytest.raises(ParseError, match="linkage"):
        spec[odd]
