"""ebpf.btf on hand-built blobs: every kind, both byte orders, split BTF, malformed input,
and a fuzz test: any blob parses and decodes completely, or raises ParseError. Nothing else."""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ebpf import btf
from ebpf.btf import wire
from ebpf.errors import ParseError

# --- a small BTF writer, for tests only -----------------------------------------------------


class Builder:
    """Writes BTF blobs record by record. Ids are handed out in order, from ``first_id``."""

    def __init__(self, order: str = "<", *, first_id: int = 1, str_base: int = 0) -> None:
        self.order = order
        self.records: list[bytes] = []
        self.first_id = first_id
        self.str_base = str_base  # split BTF: offsets continue after the base's strings
        self.strings = bytearray(b"" if str_base else b"\0")
        self._str_at: dict[str, int] = {} if str_base else {"": 0}

    def s(self, text: str) -> int:
        if text not in self._str_at:
            self._str_at[text] = self.str_base + len(self.strings)
            self.strings += text.encode() + b"\0"
        return self._str_at[text]

    def words(self, *values: int) -> bytes:
        return struct.pack(f"{self.order}{len(values)}I", *(v & 0xFFFFFFFF for v in values))

    def add(
        self,
        kind: int,
        name: str | int = "",
        *,
        vlen: int = 0,
        kflag: bool = False,
        size_type: int = 0,
        tail: bytes = b"",
    ) -> int:
        name_off = self.s(name) if isinstance(name, str) else name
        info = (int(kflag) << 31) | (kind << 24) | vlen
        self.records.append(self.words(name_off, info, size_type) + tail)
        return self.first_id + len(self.records) - 1

    # one helper per kind
    def int_(
        self, name: str, size: int, *, bits: int | None = None, offset: int = 0, enc: int = 0
    ) -> int:
        bits = size * 8 if bits is None else bits
        return self.add(1, name, size_type=size, tail=self.words(enc << 24 | offset << 16 | bits))

    def ptr(self, target: int) -> int:
        return self.add(2, size_type=target)

    def array(self, elem: int, index: int, nelems: int) -> int:
        return self.add(3, tail=self.words(elem, index, nelems))

    def composite(
        self,
        kind: int,
        name: str,
        size: int,
        members: Sequence[tuple[str, int, int, int]],
        *,
        kflag: bool = False,
    ) -> int:
        tail = b"".join(
            self.words(self.s(n), t, (bf << 24 | off) if kflag else off)
            for n, t, off, bf in members
        )
        return self.add(kind, name, vlen=len(members), kflag=kflag, size_type=size, tail=tail)

    def struct(
        self, name: str, size: int, members: Sequence[tuple[str, int, int, int]], **kw: bool
    ) -> int:
        return self.composite(4, name, size, members, **kw)

    def union(
        self, name: str, size: int, members: Sequence[tuple[str, int, int, int]], **kw: bool
    ) -> int:
        return self.composite(5, name, size, members, **kw)

    def enum(
        self, name: str, values: Sequence[tuple[str, int]], *, signed: bool = False, size: int = 4
    ) -> int:
        tail = b"".join(self.words(self.s(n), v) for n, v in values)
        return self.add(6, name, vlen=len(values), kflag=signed, size_type=size, tail=tail)

    def enum64(self, name: str, values: Sequence[tuple[str, int]], *, signed: bool = False) -> int:
        tail = b"".join(self.words(self.s(n), v, v >> 32) for n, v in values)
        return self.add(19, name, vlen=len(values), kflag=signed, size_type=8, tail=tail)

    def fwd(self, name: str, *, union: bool = False) -> int:
        return self.add(7, name, kflag=union)

    def ref(self, kind: int, target: int, name: str = "") -> int:
        return self.add(kind, name, size_type=target)

    def func(self, name: str, proto: int, linkage: int = 1) -> int:
        return self.add(12, name, vlen=linkage, size_type=proto)

    def func_proto(
        self, ret: int, params: Sequence[tuple[str, int]], *, variadic: bool = False
    ) -> int:
        all_params = [*params, ("", 0)] if variadic else list(params)
        tail = b"".join(self.words(self.s(n), t) for n, t in all_params)
        return self.add(13, vlen=len(all_params), size_type=ret, tail=tail)

    def var(self, name: str, type_id: int, linkage: int = 1) -> int:
        return self.add(14, name, size_type=type_id, tail=self.words(linkage))

    def datasec(self, name: str, size: int, variables: Sequence[tuple[int, int, int]]) -> int:
        tail = b"".join(self.words(*v) for v in variables)
        return self.add(15, name, vlen=len(variables), size_type=size, tail=tail)

    def float_(self, name: str, size: int) -> int:
        return self.add(16, name, size_type=size)

    def decl_tag(self, name: str, type_id: int, component_idx: int = -1) -> int:
        return self.add(17, name, size_type=type_id, tail=self.words(component_idx))

    def type_tag(self, name: str, type_id: int) -> int:
        return self.add(18, name, size_type=type_id)

    def build(self, *, hdr_len: int = 24, gap: int = 0) -> bytes:
        types = b"".join(self.records)
        strings = bytes(self.strings)
        header = wire.HEADER[self.order].pack(
            0xEB9F, 1, 0, hdr_len, 0, len(types), len(types) + gap, len(strings)
        )
        return header + bytes(hdr_len - 24) + types + bytes(gap) + strings


def sample(order: str = "<") -> tuple[bytes, dict[str, int]]:
    """A blob with every kind; returns it and the ids by label."""
    b = Builder(order)
    ids: dict[str, int] = {}
    ids["int"] = b.int_("int", 4, enc=1)
    ids["uint"] = b.int_("unsigned int", 4)
    ids["char"] = b.int_("char", 1, enc=2)
    ids["bool"] = b.int_("_Bool", 1, enc=4)
    ids["long"] = b.int_("long", 8, enc=1)
    ids["u32"] = b.ref(8, ids["uint"], "u32")
    ids["cint"] = b.ref(10, ids["int"])
    ids["vcint"] = b.ref(9, ids["cint"])
    ids["ptr"] = b.ptr(ids["vcint"])
    ids["rptr"] = b.ref(11, ids["ptr"])
    ids["arr"] = b.array(ids["u32"], ids["int"], 16)
    ids["inner"] = b.struct("", 8, [("a", ids["int"], 0, 0), ("b", ids["int"], 32, 0)])
    ids["anon_u"] = b.union("", 8, [("", ids["inner"], 0, 0), ("raw", ids["long"], 0, 0)])
    ids["bits"] = b.struct(
        "bits",
        24,
        [
            ("x", ids["u32"], 0, 3),
            ("y", ids["u32"], 3, 5),
            ("", ids["anon_u"], 64, 0),
            ("arr_p", ids["ptr"], 128, 0),
        ],
        kflag=True,
    )
    ids["plain"] = b.struct("plain", 16, [("p", ids["ptr"], 0, 0), ("n", ids["uint"], 64, 0)])
    ids["u"] = b.union("u", 8, [("i", ids["int"], 0, 0), ("l", ids["long"], 0, 0)])
    ids["enum"] = b.enum("color", [("RED", 0), ("GREEN", 1), ("BLUE", 0xFFFFFFFF)])
    ids["senum"] = b.enum("sign", [("NEG", -2 & 0xFFFFFFFF), ("POS", 3)], signed=True)
    ids["enum64"] = b.enum64("big", [("HUGE", 1 << 40), ("MAX", (1 << 64) - 1)])
    ids["senum64"] = b.enum64("sbig", [("MIN", -(1 << 63) & ((1 << 64) - 1))], signed=True)
    ids["fwd_s"] = b.fwd("later_s")
    ids["fwd_u"] = b.fwd("later_u", union=True)
    ids["proto"] = b.func_proto(ids["int"], [("ctx", ids["ptr"]), ("n", ids["u32"])])
    ids["vproto"] = b.func_proto(0, [("fmt", ids["ptr"])], variadic=True)
    ids["func"] = b.func("handler", ids["proto"], linkage=1)
    ids["sfunc"] = b.func("helper", ids["vproto"], linkage=0)
    ids["var"] = b.var("counter", ids["u32"], linkage=1)
    ids["var2"] = b.var("table", ids["arr"], linkage=0)
    ids["sec"] = b.datasec(".data", 68, [(ids["var"], 0, 4), (ids["var2"], 4, 64)])
    ids["float"] = b.float_("double", 8)
    ids["dtag"] = b.decl_tag("my_tag", ids["bits"], 1)
    ids["dtag_all"] = b.decl_tag("whole", ids["func"])
    ids["ttag"] = b.type_tag("user", ids["int"])
    ids["tptr"] = b.ptr(ids["ttag"])
    ids["dup_s"] = b.struct("dup", 4, [("v", ids["int"], 0, 0)])
    ids["dup_t"] = b.ref(8, ids["dup_s"], "dup")
    return b.build(), ids


# --- every kind, both byte orders -----------------------------------------------------------


@pytest.fixture(params=["<", ">"], ids=["le", "be"])
def order(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_every_kind(order: str) -> None:
    data, ids = sample(order)
    spec = btf.Spec.from_bytes(data)
    assert spec.byte_order == order
    assert len(spec) == max(ids.values()) + 1
    assert isinstance(spec[0], btf.Void) and spec[0].kind is btf.Kind.VOID

    i = spec[ids["int"]]
    assert isinstance(i, btf.Int)
    assert (i.name, i.size, i.bits, i.bit_offset, i.signed, i.is_char, i.is_bool) == (
        "int",
        4,
        32,
        0,
        True,
        False,
        False,
    )
    assert spec.find("char", btf.Int).is_char
    assert spec.find("_Bool", btf.Int).is_bool

    u32 = spec.find("u32")
    assert isinstance(u32, btf.Typedef) and u32.type_id == ids["uint"]
    assert spec.resolve(u32) == spec[ids["uint"]]
    assert spec.sizeof(u32) == 4

    p = spec[ids["ptr"]]
    assert isinstance(p, btf.Pointer) and p.target_id == ids["vcint"]
    assert isinstance(p.target, btf.Volatile)
    assert isinstance(p.target.type, btf.Const)
    assert spec.resolve(p.target) == i
    assert isinstance(spec[ids["rptr"]], btf.Restrict)
    assert spec.sizeof(p) == 8 == spec.pointer_size

    a = spec[ids["arr"]]
    assert isinstance(a, btf.Array)
    assert (a.elem_type, a.index_type, a.nelems) == (u32, i, 16)
    assert spec.sizeof(a) == 64

    bits = spec.find("bits", btf.Struct)
    assert bits.size == 24
    assert [(m.name, m.offset, m.bitfield_size) for m in bits.members] == [
        ("x", 0, 3),
        ("y", 3, 5),
        ("", 64, 0),
        ("arr_p", 128, 0),
    ]
    assert bits.member("y").type == u32
    # through an anonymous union holding an anonymous struct: cumulative offsets
    assert bits.member("raw").offset == 64
    assert bits.member("a").offset == 64
    assert bits.member("b").offset == 96
    assert bits.member("b").byte_offset == 12
    with pytest.raises(KeyError):
        bits.member("zzz")

    plain = spec.find("plain", btf.Struct)
    assert [(m.name, m.offset, m.bitfield_size) for m in plain.members] == [
        ("p", 0, 0),
        ("n", 64, 0),
    ]
    un = spec.find("u", btf.Union)
    assert un.kind is btf.Kind.UNION and [m.offset for m in un.members] == [0, 0]

    e = spec.find("color", btf.Enum)
    assert not e.signed and e.size == 4
    assert e.as_dict() == {"RED": 0, "GREEN": 1, "BLUE": 0xFFFFFFFF}
    assert e.value("GREEN") == 1
    se = spec.find("sign", btf.Enum)
    assert se.signed and se.as_dict() == {"NEG": -2, "POS": 3}
    e64 = spec.find("big", btf.Enum64)
    assert e64.as_dict() == {"HUGE": 1 << 40, "MAX": (1 << 64) - 1}
    assert spec.find("sbig", btf.Enum64).value("MIN") == -(1 << 63)

    fs, fu = spec[ids["fwd_s"]], spec[ids["fwd_u"]]
    assert isinstance(fs, btf.Fwd) and not fs.is_union
    assert isinstance(fu, btf.Fwd) and fu.is_union

    f = spec.find("handler", btf.Func)
    assert f.linkage is btf.Linkage.GLOBAL
    assert f.proto == spec[ids["proto"]]
    assert f.proto.return_type == i
    assert [(x.name, x.type) for x in f.proto.params] == [("ctx", p), ("n", u32)]
    assert not f.proto.variadic
    h = spec.find("helper", btf.Func)
    assert h.linkage is btf.Linkage.STATIC
    assert h.proto.variadic and [x.name for x in h.proto.params] == ["fmt"]
    assert isinstance(h.proto.return_type, btf.Void)

    sec = spec.find(".data", btf.DataSec)
    assert sec.size == 68
    assert [(v.type.name, v.offset, v.size) for v in sec.vars] == [
        ("counter", 0, 4),
        ("table", 4, 64),
    ]
    var = spec.find("counter", btf.Var)
    assert var.linkage is btf.Linkage.GLOBAL and var.type == u32
    assert spec.sizeof(var) == 4

    fl = spec.find("double", btf.Float)
    assert fl.size == 8 and spec.sizeof(fl) == 8

    dt = spec[ids["dtag"]]
    assert isinstance(dt, btf.DeclTag)
    assert (dt.name, dt.type, dt.component_idx) == ("my_tag", bits, 1)
    assert spec[ids["dtag_all"]].component_idx == -1  # type: ignore[attr-defined]
    tt = spec[ids["ttag"]]
    assert isinstance(tt, btf.TypeTag) and tt.name == "user" and tt.type == i
    assert spec.resolve(spec[ids["tptr"]].target) == i  # type: ignore[attr-defined]

    # same name, two kinds
    assert [type(t) for t in spec.find_all("dup")] == [btf.Struct, btf.Typedef]
    assert spec.find("dup") == spec[ids["dup_s"]]
    assert spec.find("dup", btf.Typedef) == spec[ids["dup_t"]]
    assert spec.find_all("dup", btf.Typedef) == [spec[ids["dup_t"]]]
    assert spec.find_all("dup", btf.Qualifier) == [spec[ids["dup_t"]]]

    for unsized in (spec[0], f, f.proto, fs, dt):
        with pytest.raises(ValueError):
            spec.sizeof(unsized)

    # raw access
    assert spec.raw == data
    assert spec.record_offset(1) == 0
    assert spec.raw_record(ids["int"]) == data[24 : 24 + 16]
    assert spec.string(1) == "int"
    assert spec.first_id == 1 and spec.base is None


def test_both_orders_decode_the_same() -> None:
    le = btf.Spec.from_bytes(sample("<")[0])
    be = btf.Spec.from_bytes(sample(">")[0])
    assert len(le) == len(be)
    assert [repr(t) for t in le.types()] == [repr(t) for t in be.types()]


def test_types_and_iteration(order: str) -> None:
    data, ids = sample(order)
    spec = btf.Spec.from_bytes(data)
    every = list(spec.types())
    assert [t.id for t in every] == list(range(len(spec)))
    assert list(spec) == every
    assert [t.id for t in spec.types(btf.Enum)] == [ids["enum"], ids["senum"]]
    assert all(isinstance(t, btf.Qualifier) for t in spec.types(btf.Qualifier))
    assert list(spec.types(btf.Void)) == [spec[0]]


def test_many_lookups_build_the_index() -> None:
    data, ids = sample()
    spec = btf.Spec.from_bytes(data)
    names = ["int", "u32", "bits", "color", "handler", "counter", ".data", "dup", "nope", ""]
    cold = {n: [t.id for t in btf.Spec.from_bytes(data).find_all(n)] for n in names}
    for _ in range(5):  # goes past the cold-lookup budget
        for n in names:
            assert [t.id for t in spec.find_all(n)] == cold[n]
    assert cold["int"] == [ids["int"]]
    assert cold["nope"] == []
    assert ids["ptr"] in cold[""]


def test_split_btf(order: str) -> None:
    base_data, ids = sample(order)
    base = btf.Spec.from_bytes(base_data)
    nbase_str = len(base.strings)
    b = Builder(order, first_id=len(base), str_base=nbase_str)
    mod_struct = b.struct(
        "mod_state", 16, [("counter", ids["u32"], 0, 0), ("next", len(base) + 1, 64, 0)]
    )
    mod_ptr = b.ptr(mod_struct)
    reuse = b.add(8, name=1, size_type=ids["int"])  # typedef named "int", a base string
    split = btf.Spec.from_bytes(b.build(), base=base)
    assert split.base is base and split.first_id == len(base)
    assert len(split) == len(base) + 3
    s = split.find("mod_state", btf.Struct)
    assert s.id == mod_struct
    assert s.member("counter").type == base[ids["u32"]]
    assert s.member("next").type == split[mod_ptr]
    assert split[ids["int"]] is base[ids["int"]]
    assert split.find("bits", btf.Struct) is base.find("bits", btf.Struct)
    assert [t.id for t in split.find_all("int")] == [ids["int"], reuse]
    assert [t.id for t in split.types()] == list(range(len(split)))
    assert split.string(1) == "int"


def test_non_ascii_names() -> None:
    b = Builder()
    b.int_("int", 4)
    b.struct("caf\u00e9", 4, [("na\u00efve", 1, 0, 0), ("plain", 1, 0, 0)])
    b.ref(8, 2, "after")
    data = b.build()
    one = btf.Spec.from_bytes(data)
    assert one[2].name == "caf\u00e9"
    assert one[3].name == "after"
    every = btf.Spec.from_bytes(data)
    assert [t.name for t in every.types()] == ["", "int", "caf\u00e9", "after"]
    s = every.find("caf\u00e9", btf.Struct)
    assert [m.name for m in s.members] == ["na\u00efve", "plain"]
    assert every.find("after").id == 3


def test_header_extension_and_gap() -> None:
    b = Builder()
    b.int_("int", 4)
    spec = btf.Spec.from_bytes(b.build(hdr_len=32, gap=8))
    assert spec.header.hdr_len == 32
    assert spec.find("int").name == "int"


def test_from_file_gzip(tmp_path: pytest.TempPathFactory) -> None:
    import gzip
    from pathlib import Path

    data, _ = sample()
    p = Path(str(tmp_path)) / "x.btf.gz"
    p.write_bytes(gzip.compress(data))
    assert len(btf.Spec.from_file(p)) == len(btf.Spec.from_bytes(data))
    (Path(str(tmp_path)) / "plain.btf").write_bytes(data)
    assert len(btf.Spec.from_file(Path(str(tmp_path)) / "plain.btf")) == len(
        btf.Spec.from_bytes(data)
    )
    (Path(str(tmp_path)) / "bad.gz").write_bytes(b"\x1f\x8b" + b"junk")
    with pytest.raises(ParseError):
        btf.Spec.from_file(Path(str(tmp_path)) / "bad.gz")
    assert len(btf.Spec.from_bytes(memoryview(data))) == len(btf.Spec.from_bytes(bytearray(data)))


def test_records_are_immutable() -> None:
    spec = btf.Spec.from_bytes(sample()[0])
    s = spec.find("bits", btf.Struct)
    with pytest.raises(AttributeError):
        s.size = 1  # type: ignore[misc]
    with pytest.raises(AttributeError):
        s.members[0].offset = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        iter(s)  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        s[0]  # type: ignore[index]
    assert s and s.members[0]
    assert s.members[0] == s.members[0] and hash(s.members[0]) == hash(s.members[0])
    assert {s: 1}[spec[s.id]] == 1
    built = btf.Int(spec, 99, "mine", 2, 16, 0, 1)
    assert built.size == 2 and built.signed
    with pytest.raises(TypeError):
        btf.Int(spec, 99, "mine")
    with pytest.raises(TypeError):
        btf.Spec()


# --- malformed input ------------------------------------------------------------------------


def _hdr(order: str = "<", **fields: int) -> bytes:
    values = {
        "magic": 0xEB9F,
        "version": 1,
        "flags": 0,
        "hdr_len": 24,
        "type_off": 0,
        "type_len": 0,
        "str_off": 0,
        "str_len": 1,
    }
    values.update(fields)
    return wire.HEADER[order].pack(*values.values())


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "truncated"),
        (b"\x9f\xeb\x01\x00" + bytes(10), "truncated"),
        (b"\x00\x00" + bytes(30), "magic"),
        (_hdr(version=2) + b"\0", "version"),
        (_hdr(hdr_len=8) + b"\0", "hdr_len"),
        (_hdr(hdr_len=4096) + b"\0", "hdr_len"),
        (_hdr(type_len=400) + b"\0", "type section"),
        (_hdr(type_off=2, type_len=0) + b"\0\0\0", "aligned"),
        (_hdr(type_len=6) + bytes(8), "aligned"),
        (_hdr(str_off=0, str_len=5) + b"\0", "string section"),
        (_hdr(str_len=0), "NUL"),
        (_hdr(str_len=2) + b"a\0", "NUL"),
        (_hdr(str_len=2) + b"\0a", "NUL"),
    ],
)
def test_bad_header(data: bytes, match: str) -> None:
    with pytest.raises(ParseError, match=match):
        btf.Spec.from_bytes(data)


def _blob(records: bytes, strings: bytes = b"\0name\0", order: str = "<") -> bytes:
    return (
        _hdr(order, type_len=len(records), str_off=len(records), str_len=len(strings))
        + records
        + strings
    )


def _rec(
    name_off: int, kind: int, vlen: int = 0, size_type: int = 0, *tail: int, order: str = "<"
) -> bytes:
    return struct.pack(f"{order}{3 + len(tail)}I", name_off, kind << 24 | vlen, size_type, *tail)


def _parse_all(data: bytes) -> btf.Spec:
    """Parse and index every record (the type section is indexed lazily)."""
    spec = btf.Spec.from_bytes(data)
    len(spec)
    return spec


def test_unknown_kind() -> None:
    for kind in (0, 20, 31):
        data = _blob(_rec(0, 1, 0, 4, 32) + _rec(0, kind))
        with pytest.raises(ParseError, match="unknown BTF kind") as exc:
            _parse_all(data)
        assert exc.value.offset == 24 + 16 + 4
        spec = btf.Spec.from_bytes(data)
        assert isinstance(spec[1], btf.Int)  # records before the bad one still decode
        with pytest.raises(ParseError, match="unknown BTF kind"):
            spec[2]
        with pytest.raises(ParseError, match="unknown BTF kind"):
            list(spec.types())
        with pytest.raises(ParseError, match="unknown BTF kind"):
            len(spec)  # and again: the error sticks


def test_vlen_overrun() -> None:
    with pytest.raises(ParseError, match="overruns"):
        _parse_all(_blob(_rec(0, 4, 3, 8, 0, 1, 0)))  # 3 members, 1 present
    with pytest.raises(ParseError, match="overruns"):
        _parse_all(_blob(_rec(0, 1, 0, 4)))  # INT without its encoding word
    with pytest.raises(ParseError, match="overruns"):
        _parse_all(_blob(_rec(0, 2) + struct.pack("<I", 0)))  # 1-word tail
    spec = btf.Spec.from_bytes(_blob(_rec(1, 2) + _rec(0, 4, 9, 8)))
    assert spec.find("name").id == 1  # lazy: the records before the bad one are fine
    with pytest.raises(ParseError, match="overruns"):
        len(spec)
    with pytest.raises(ParseError, match="overruns"):
        spec[2]


def test_string_offset_out_of_range() -> None:
    spec = btf.Spec.from_bytes(_blob(_rec(1000, 1, 0, 4, 32)))
    assert len(spec) == 2
    with pytest.raises(ParseError, match="string offset"):
        spec[1]
    spec = btf.Spec.from_bytes(_blob(_rec(0, 4, 1, 4, 999, 0, 0)))  # member name
    s = spec[1]
    assert isinstance(s, btf.Struct)
    with pytest.raises(ParseError, match="string offset"):
        _ = s.members
    with pytest.raises(ParseError):
        spec.string(-1)


def test_type_id_out_of_range() -> None:
    spec = btf.Spec.from_bytes(_blob(_rec(1, 2, 0, 77) + _rec(0, 4, 1, 4, 0, 55, 0)))
    p = spec[1]
    assert isinstance(p, btf.Pointer) and p.target_id == 77
    with pytest.raises(ParseError, match="type id 77"):
        _ = p.target
    s = spec[2]
    assert isinstance(s, btf.Struct)
    with pytest.raises(ParseError):
        _ = s.members[0].type
    with pytest.raises(ParseError):
        s.member("nope")  # looks through the anonymous member, whose type is bad
    with pytest.raises(KeyError):
        spec[77]


def test_reference_loops() -> None:
    b = Builder()
    t1 = b.ref(8, 2, "a")  # typedef a -> 2
    b.ref(10, t1)  # const -> 1
    arr = b.array(4, 0, 2)  # array of itself (id 3 refers to id 4 = this? no: 4 is next)
    b.array(arr, 0, 2)  # 4: array of 3 -> array of 4: loop
    anon1 = b.struct("", 4, [("", 6, 0, 0)])  # 5 -> anonymous member of type 6
    b.struct("", 4, [("", anon1, 0, 0)])  # 6 -> 5
    fn = b.func("f", t1)  # FUNC whose proto is a typedef
    spec = btf.Spec.from_bytes(b.build())
    with pytest.raises(ParseError, match="loop"):
        spec.resolve(spec[1])
    with pytest.raises(ParseError, match="loop"):
        spec.sizeof(spec[1])
    with pytest.raises(ParseError, match="loop"):
        spec.sizeof(spec[arr])
    with pytest.raises(ParseError, match="cycle"):
        spec[anon1].member("x")  # type: ignore[attr-defined]
    with pytest.raises(ParseError):
        _ = spec[fn].proto  # type: ignore[attr-defined]


def test_bad_linkage() -> None:
    b = Builder()
    proto = b.func_proto(0, [])
    b.func("f", proto, linkage=7)
    b.var("v", 0, linkage=9)
    spec = btf.Spec.from_bytes(b.build())
    with pytest.raises(ParseError, match="linkage"):
        spec[2]
    with pytest.raises(ParseError, match="linkage"):
        spec[3]


def test_bad_kind_filter_and_ids() -> None:
    spec = btf.Spec.from_bytes(sample()[0])
    with pytest.raises(KeyError):
        spec["int"]  # type: ignore[index]
    with pytest.raises(KeyError):
        spec.record_offset(0)
    assert list(spec.types(btf.Enum64))
    assert list(spec.types(btf.Type)) == list(spec.types())


# --- fuzzing -------------------------------------------------------------------------------

NAMES = ["", "a", "b", "int", "x_y", "task_struct"]


class _Program:
    """Reads a hypothesis-drawn byte string as a stream of small choices (cheap to draw and
    to shrink; 0 once exhausted)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def __bool__(self) -> bool:
        return self.pos < len(self.data)

    def byte(self) -> int:
        self.pos += 1
        return self.data[self.pos - 1] if self.pos <= len(self.data) else 0

    def value(self) -> int:
        """Mostly small values, sometimes large ones (up to 64 bits)."""
        b = self.byte()
        if b < 0xF0:
            return b
        return int.from_bytes(bytes(self.byte() for _ in range(1 << (b & 3))), "little")


def _build(order: str, prog: _Program) -> bytearray:
    b = Builder(order)
    while prog and len(b.records) < 8:
        kind = 1 + prog.byte() % 19
        name = NAMES[prog.byte() % len(NAMES)]
        ref = prog.byte() % 13  # some ids out of range
        small = prog.byte() % 71
        flag = bool(prog.byte() & 1)
        entries = [
            (NAMES[prog.byte() % len(NAMES)], prog.byte() % 13, prog.value(), prog.byte() % 10)
            for _ in range(prog.byte() % 4)
        ]
        if kind == 1:
            b.int_(name, [1, 2, 4, 8, 16][small % 5], enc=small % 8)
        elif kind == 3:
            b.array(ref, small % 13, small)
        elif kind in (4, 5):
            members = [(n, t, v % 256, bf) for n, t, v, bf in entries]
            b.composite(kind, name, small, members, kflag=flag)
        elif kind == 6:
            b.enum(name, [(n, v & 0xFFFFFFFF) for n, _, v, _ in entries], signed=flag)
        elif kind == 19:
            b.enum64(name, [(n, v & (2**64 - 1)) for n, _, v, _ in entries], signed=flag)
        elif kind == 12:
            b.func(name, ref, small % 4)
        elif kind == 13:
            b.func_proto(ref, [(n, t) for n, t, _, _ in entries], variadic=flag)
        elif kind == 14:
            b.var(name, ref, small % 4)
        elif kind == 15:
            b.datasec(name, small, [(t, v % 64, bf) for _, t, v, bf in entries])
        elif kind == 17:
            b.decl_tag(name, ref, small % 5 - 1)
        else:  # PTR FWD TYPEDEF VOLATILE CONST RESTRICT FLOAT TYPE_TAG
            b.add(kind, name, size_type=ref, kflag=flag)
    return bytearray(b.build())


_KIND_BYTES = [0, 0x80, 0x13, 0x14, 0x1F, 0x84, 0x0D]


def _mutate(data: bytearray, order: str, prog: _Program) -> bytes:
    while prog:
        op = prog.byte() % 5
        where = prog.byte() | prog.byte() << 8
        value = prog.value()
        # mostly past the header: a broken header is rejected before anything interesting
        lo = 0 if where & 0x8000 or len(data) <= 24 else 24
        span = len(data) - lo
        if op == 0 and span > 0:  # one byte
            data[lo + where % span] = value & 0xFF
        elif op == 1 and span >= 4:  # one aligned word (ids, vlen, offsets...)
            at = lo + where % (span // 4) * 4
            data[at : at + 4] = (value & 0xFFFFFFFF).to_bytes(
                4, "little" if order == "<" else "big"
            )
        elif op == 2:  # truncate
            del data[lo + where % (span + 1) :]
        elif op == 3:  # append junk
            data += (value & 0xFFFFFFFF).to_bytes(4, "little") * (where % 3)
        elif op == 4 and span > 0:  # a kind byte
            data[lo + where % span] = _KIND_BYTES[value % len(_KIND_BYTES)]
    return bytes(data)


@st.composite
def blobs(draw: st.DrawFn) -> bytes:
    """A small BTF blob (random records, or the every-kind sample), then mutated."""
    order = draw(st.sampled_from("<>"))
    if draw(st.integers(0, 3)) == 0:
        data = bytearray(sample(order)[0])
    else:
        data = _build(order, _Program(draw(st.binary(max_size=96))))
    return _mutate(data, order, _Program(draw(st.binary(max_size=24))))


def touch(spec: btf.Spec) -> None:
    """Decode everything reachable: every type, member, parameter and reference."""
    assert len(spec) >= 1
    names: set[str] = set()
    for t in spec.types():
        repr(t)
        names.add(t.name)
        assert isinstance(t.kind, btf.Kind)
        spec.resolve(t)
        with contextlib.suppress(ValueError):  # unsized (void, func...) or ParseError
            spec.sizeof(t)
        refs: list[Any] = []
        if isinstance(t, btf.Pointer):
            refs.append(t.target)
        elif isinstance(t, btf.Array):
            refs += [t.elem_type, t.index_type]
        elif isinstance(t, btf.Composite):
            for m in t.members:
                repr(m)
                refs.append(m.type)
                if m.name:
                    assert t.member(m.name).name == m.name
        elif isinstance(t, (btf.Enum, btf.Enum64)):
            d = t.as_dict()
            for v in t.values:
                assert v.name in d
        elif isinstance(t, (btf.Qualifier, btf.DeclTag, btf.Var)):
            refs.append(t.type)
        elif isinstance(t, btf.Func):
            refs.append(t.type)
            with contextlib.suppress(ParseError):
                refs.append(t.proto)
        elif isinstance(t, btf.FuncProto):
            refs.append(t.return_type)
            refs += [p.type for p in t.params]
        elif isinstance(t, btf.DataSec):
            refs += [v.type for v in t.vars]
        for r in refs:
            assert isinstance(r, btf.Type)
            spec.resolve(r)
        if t.id:
            spec.raw_record(t.id)
    for name in names:
        for found in spec.find_all(name):
            assert found.name == name


@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blobs())
def test_fuzz_parse_or_parse_error(data: bytes) -> None:
    try:
        spec = btf.Spec.from_bytes(data)
        touch(spec)
    except ParseError:
        pass


def test_touch_sample() -> None:
    for order in "<>":
        touch(btf.Spec.from_bytes(sample(order)[0]))
