"""ebpf.btf.writer: every kind read back by our reader, layouts against ctypes and clang,
string/type dedup, func/line info records, .BTF.ext, and the errors for bad input."""

from __future__ import annotations

import ctypes
import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ebpf import btf
from ebpf.btf.ext import ExtInfo
from ebpf.btf.writer import MAX_NAME_LEN, BTFError, BTFWriter, Field

CLANG = shutil.which("clang-19")


def _parse(w: BTFWriter) -> btf.Spec:
    return btf.Spec.from_bytes(w.encode())


def test_exported_from_package() -> None:
    assert btf.BTFWriter is BTFWriter


# --- every kind round trips ------------------------------------------------------------------


def test_every_kind_round_trips() -> None:
    w = BTFWriter()
    u8 = w.int_("unsigned char", 1)
    i32 = w.int_("int", 4, signed=True)
    ch = w.int_("char", 1, char=True)
    b = w.int_("_Bool", 1, bool_=True)
    narrow = w.int_("nibble", 1, bits=4, bit_offset=2)
    u64 = w.int_("u64", 8)
    p = w.pointer(i32)
    vp = w.pointer(0)
    arr = w.array(ch, 16)
    node = w.reserve()
    node_p = w.pointer(node)
    assert w.struct("node", [("next", node_p), ("val", i32)], id=node) == node
    bits = w.struct("flags", [Field("a", u8, bits=3), Field("b", u8, bits=5),
                              Field("c", i32, bits=20), ("d", u64)])
    un = w.union("u", [("i", i32), ("l", u64), Field("x", i32, bits=7)])
    e = w.enum("color", {"RED": 0, "GREEN": 1, "NEG": -5})
    eu = w.enum("big", [("TOP", 0xFFFFFFFF)], size=4)
    e64 = w.enum64("wide", {"A": 1 << 40, "B": 0xFFFF_FFFF_FFFF_FFFF})
    e64s = w.enum64("swide", {"M": -(1 << 62)})
    fwd_s = w.fwd("task_struct")
    fwd_u = w.fwd("some_union", union=True)
    td = w.typedef("u32_t", w.int_("unsigned int", 4))
    vol = w.volatile(i32)
    cst = w.const(vol)
    rst = w.restrict(p)
    proto = w.func_proto(i32, [("a", i32), ("b", p)])
    variadic = w.func_proto(0, [("fmt", w.pointer(cst))], variadic=True)
    fn = w.func("add", proto, btf.Linkage.GLOBAL)
    fn_static = w.func("helper", proto)
    fl = w.float_("double", 8)
    tag_t = w.type_tag("user", i32)
    tag_ptr = w.pointer(tag_t)
    tag_attr = w.type_tag("attr_tag", i32, attr=True)
    dt = w.decl_tag("kptr", bits)
    dt_member = w.decl_tag("member_tag", bits, 1)
    dt_param = w.decl_tag("param_tag", fn, 0, attr=True)
    sec = w.data_section(".data", [("counter", u64), ("small", u8), ("limit", i32)])
    static = w.var("local.x", i32, btf.Linkage.STATIC)
    ro = w.datasec(".rodata", [(static, 0)])
    s: Any = _parse(w)

    def get(tid: int, cls: type[Any]) -> Any:
        t = s[tid]
        assert isinstance(t, cls), t
        return t

    assert (get(u8, btf.Int).name, s[u8].size, s[u8].bits, s[u8].encoding) == \
        ("unsigned char", 1, 8, 0)
    assert get(i32, btf.Int).signed and get(ch, btf.Int).is_char and get(b, btf.Int).is_bool
    assert (get(narrow, btf.Int).bits, s[narrow].bit_offset) == (4, 2)
    assert get(p, btf.Pointer).target_id == i32 and get(vp, btf.Pointer).target_id == 0
    a = get(arr, btf.Array)
    assert (a.elem_type_id, a.nelems, a.index_type.name) == (ch, 16, "__ARRAY_SIZE_TYPE__")
    n = get(node, btf.Struct)
    assert (n.name, n.size) == ("node", 16)
    assert [(m.name, m.type_id, m.offset) for m in n.members] == [("next", node_p, 0),
                                                                 ("val", i32, 64)]
    fb = get(bits, btf.Struct)
    assert [(m.name, m.offset, m.bitfield_size) for m in fb.members] == [
        ("a", 0, 3), ("b", 3, 5), ("c", 8, 20), ("d", 64, 0)]
    assert fb.size == 16
    u = get(un, btf.Union)
    assert u.size == 8 and [(m.name, m.offset, m.bitfield_size) for m in u.members] == [
        ("i", 0, 0), ("l", 0, 0), ("x", 0, 7)]
    en = get(e, btf.Enum)
    assert en.signed and en.as_dict() == {"RED": 0, "GREEN": 1, "NEG": -5} and en.size == 4
    assert not get(eu, btf.Enum).signed and s[eu].value("TOP") == 0xFFFFFFFF
    assert get(e64, btf.Enum64).as_dict() == {"A": 1 << 40, "B": 0xFFFF_FFFF_FFFF_FFFF}
    assert get(e64s, btf.Enum64).signed and s[e64s].value("M") == -(1 << 62)
    assert not get(fwd_s, btf.Fwd).is_union and get(fwd_u, btf.Fwd).is_union
    assert get(td, btf.Typedef).name == "u32_t" and s.resolve(td).name == "unsigned int"
    assert get(cst, btf.Const).type_id == vol and get(vol, btf.Volatile).type_id == i32
    assert get(rst, btf.Restrict).type_id == p
    fp = get(proto, btf.FuncProto)
    assert fp.return_type_id == i32 and [(x.name, x.type_id) for x in fp.params] == [
        ("a", i32), ("b", p)] and not fp.variadic
    vf = get(variadic, btf.FuncProto)
    assert vf.variadic and vf.return_type_id == 0 and len(vf.params) == 1
    assert get(fn, btf.Func).linkage == btf.Linkage.GLOBAL and s[fn].proto_id == proto
    assert get(fn_static, btf.Func).linkage == btf.Linkage.STATIC
    assert get(fl, btf.Float).size == 8
    assert get(tag_t, btf.TypeTag).name == "user" and not s[tag_t].is_attr
    assert get(tag_ptr, btf.Pointer).target_id == tag_t
    assert get(tag_attr, btf.TypeTag).is_attr
    assert (get(dt, btf.DeclTag).component_idx, s[dt].type_id) == (-1, bits)
    assert get(dt_member, btf.DeclTag).component_idx == 1
    assert get(dt_param, btf.DeclTag).is_attr and s[dt_param].component_idx == 0
    ds = get(sec.type_id, btf.DataSec)
    assert ds.name == ".data" and ds.size == sec.size == 16
    assert [(v.type.name, v.offset, v.size) for v in ds.vars] == [
        ("counter", 0, 8), ("small", 8, 1), ("limit", 12, 4)]
    assert sec.offsets == {"counter": 0, "small": 8, "limit": 12}
    assert get(sec.var_ids["limit"], btf.Var).linkage == btf.Linkage.GLOBAL
    assert get(static, btf.Var).linkage == btf.Linkage.STATIC
    assert [(v.type_id, v.offset, v.size) for v in get(ro, btf.DataSec).vars] == [
        (static, 0, 4)]
    assert len(s) == len(w) + 1  # + void


def test_big_endian_round_trip() -> None:
    for order in "<>":
        w = BTFWriter(byteorder=order)
        i = w.int_("int", 4, signed=True)
        st_ = w.struct("s", [("a", i), Field("b", i, bits=3)])
        w.enum64("e", {"X": 1 << 33})
        blob = w.encode()
        assert struct.unpack_from(order + "H", blob)[0] == 0xEB9F
        s = btf.Spec.from_bytes(blob)
        got = s[st_]
        assert isinstance(got, btf.Struct)
        assert [(m.name, m.offset, m.bitfield_size) for m in got.members] == [
            ("a", 0, 0), ("b", 32, 3)]
        assert s.find("e", btf.Enum64).value("X") == 1 << 33
        fi = w.func_info([(0, w.func("f", w.func_proto(i, [("x", i)])))])
        assert struct.unpack(order + "II", fi) == (0, len(w))


# --- dedup -------------------------------------------------------------------------------------


def test_strings_are_stored_once() -> None:
    w = BTFWriter()
    i = w.int_("int", 4, signed=True)
    w.struct("int_pair", [("a", i), ("b", i)])
    w.struct("other", [("a", i), ("b", i), ("c", i)])
    assert w.string("a") == w.string("a") and w.string("") == 0
    strings = _parse(w).strings
    for name in (b"int", b"a", b"b", b"c"):
        assert strings.count(b"\0" + name + b"\0") == 1


def test_types_merged_where_safe() -> None:
    w = BTFWriter()
    i = w.int_("int", 4, signed=True)
    assert w.int_("int", 4, signed=True) == i
    assert w.int_("int", 4) != i  # unsigned: another type
    assert w.pointer(i) == w.pointer(i)
    assert w.array(i, 4) == w.array(i, 4) != w.array(i, 5)
    assert w.const(i) == w.const(i)
    s1 = w.struct("s", [("a", i)])
    assert w.struct("s", [("a", i)]) == s1 != w.struct("s2", [("a", i)])
    proto = w.func_proto(i, [("x", i)])
    assert w.func_proto(i, [("x", i)]) == proto
    # functions, variables and sections have an identity: never merged
    assert w.func("f", proto) != w.func("f", proto)
    assert w.var("v", i) != w.var("v", i)
    v = w.var("w", i)
    assert w.datasec(".data", [(v, 0)]) != w.datasec(".data", [(v, 0)])
    n = len(w)
    nd = BTFWriter(dedup=False)
    assert nd.int_("int", 4) != nd.int_("int", 4)
    assert n == len(w)


def test_reserved_type_must_be_defined() -> None:
    w = BTFWriter()
    r = w.reserve()
    w.pointer(r)
    with pytest.raises(BTFError, match="reserved but never defined"):
        w.encode()
    with pytest.raises(BTFError, match="not yet defined"):
        w.struct("holder", [("x", r)])
    i = w.int_("int", 4)
    w.struct("later", [("x", i)], id=r)
    with pytest.raises(BTFError, match="not reserved"):
        w.struct("again", [("x", i)], id=r)
    with pytest.raises(BTFError, match="not reserved"):
        w.struct("bad", [("x", i)], id=i)
    assert _parse(w)[r].name == "later"


# --- layouts -----------------------------------------------------------------------------------

_CT = {"u8": (ctypes.c_uint8, 1), "u16": (ctypes.c_uint16, 2), "u32": (ctypes.c_uint32, 4),
       "u64": (ctypes.c_uint64, 8), "i8": (ctypes.c_int8, 1), "i16": (ctypes.c_int16, 2),
       "i32": (ctypes.c_int32, 4), "i64": (ctypes.c_int64, 8)}

_member = st.tuples(st.sampled_from(sorted(_CT)), st.integers(0, 3))  # (type, array len or 0)


@settings(deadline=None)  # slow machines (the TCG guest of tools.vmtest)
@given(st.lists(st.lists(_member, min_size=1, max_size=8), min_size=1, max_size=3))
def test_auto_layout_matches_ctypes(structs: list[list[tuple[str, int]]]) -> None:
    """Nested structs and arrays laid out as the C ABI (ctypes) does."""
    w = BTFWriter()
    ids = {n: w.int_(n, size, signed=n[0] == "i") for n, (_, size) in _CT.items()}
    prev: tuple[int, type[ctypes.Structure]] | None = None
    for k, members in enumerate(structs):
        fields: list[tuple[str, Any]] = []
        btf_members: list[tuple[str, int]] = []
        if prev is not None:  # nest the previous struct as the first member
            fields.append(("inner", prev[1]))
            btf_members.append(("inner", prev[0]))
        for j, (tname, n) in enumerate(members):
            ct: Any = _CT[tname][0]
            tid = ids[tname]
            if n:
                ct, tid = ct * n, w.array(tid, n)
            fields.append((f"m{j}", ct))
            btf_members.append((f"m{j}", tid))
        cls = type(f"S{k}", (ctypes.Structure,), {"_fields_": fields})
        sid = w.struct(f"s{k}", btf_members)
        assert w.sizeof(sid) == ctypes.sizeof(cls)
        assert w.alignof(sid) == ctypes.alignment(cls)
        got = _parse(w)[sid]
        assert isinstance(got, btf.Struct) and got.size == ctypes.sizeof(cls)
        for m in got.members:
            assert m.offset == getattr(cls, m.name).offset * 8, m
        prev = (sid, cls)


_raw_member = st.tuples(st.integers(0, 7), st.integers(0, 64), st.booleans())


@settings(deadline=None)
@given(st.lists(_raw_member, min_size=1, max_size=12), st.integers(0, 16))
def test_explicit_offsets_and_bitfields_round_trip(
        raw: list[tuple[int, int, bool]], slack: int) -> None:
    """Members at given offsets (bitfields inside bytes included) read back unchanged."""
    w = BTFWriter()
    types = [w.int_(f"t{s}", s, signed=bool(k & 1)) for k, s in enumerate((1, 2, 4, 8))]
    members: list[Field] = []
    off = 0
    for k, (t, gap, is_bits) in enumerate(raw):
        tid = types[t % 4]
        size = w.sizeof(tid) * 8
        if is_bits:
            width = 1 + gap % size
            off += gap % 5
            members.append(Field(f"f{k}", tid, off, width))
            off += width
        else:
            off = -(-(off + gap) // 8) * 8
            members.append(Field(f"f{k}", tid, off))
            off += size
    total = -(-off // 8) + slack
    sid = w.struct("", members, size=total)
    got = _parse(w)[sid]
    assert isinstance(got, btf.Struct) and got.size == total and got.name == ""
    assert [(m.name, m.type_id, m.offset, m.bitfield_size) for m in got.members] == [
        (f.name, f.type_id, f.bit_offset, f.bits) for f in members]


_C_TYPES = {"unsigned char": 1, "unsigned short": 2, "unsigned int": 4,
            "unsigned long long": 8, "signed char": 1, "short": 2, "int": 4, "long long": 8}
_c_member = st.tuples(st.sampled_from(sorted(_C_TYPES)), st.integers(0, 64))


@pytest.mark.skipif(CLANG is None, reason="clang-19 not installed")
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(_c_member, min_size=1, max_size=10), min_size=1, max_size=8))
def test_auto_layout_matches_clang(tmp_path_factory: pytest.TempPathFactory,
                                   structs: list[list[tuple[str, int]]]) -> None:
    """Bitfields and plain members mixed: our layout is clang's (BPF target) layout, read
    from the BTF clang emits. Width 0 in a member means "not a bitfield"."""
    from ebpf.elf import load_collection_spec

    tmp = tmp_path_factory.mktemp("layout")
    src = []
    w = BTFWriter()
    ids = {t: w.int_(t, n, signed=not t.startswith("unsigned")) for t, n in _C_TYPES.items()}
    ours = {}
    for k, members in enumerate(structs):
        lines, fields = [], []
        for j, (t, raw_width) in enumerate(members):
            width = raw_width % (8 * _C_TYPES[t] + 1)
            if width:
                lines.append(f"{t} m{j} : {width};")
                fields.append(Field(f"m{j}", ids[t], bits=width))
            else:
                lines.append(f"{t} m{j};")
                fields.append(Field(f"m{j}", ids[t]))
        src.append(f"struct s{k} {{ {' '.join(lines)} }} v{k};")
        ours[f"s{k}"] = w.struct(f"s{k}", fields)
    c = tmp / "layout.c"
    c.write_text("\n".join(src) + "\n")
    o = tmp / "layout.o"
    assert CLANG is not None
    subprocess.run([CLANG, "-g", "-O2", "-target", "bpf", "-c", str(c), "-o", str(o)],
                   check=True)
    theirs = load_collection_spec(o.read_bytes()).btf
    assert theirs is not None
    mine = _parse(w)
    for name, sid in ours.items():
        a, b = mine[sid], theirs.find(name, btf.Struct)
        assert isinstance(a, btf.Struct)
        assert a.size == b.size, (name, c.read_text())
        assert [(m.name, m.offset, m.bitfield_size) for m in a.members] == \
            [(m.name, m.offset, m.bitfield_size) for m in b.members], c.read_text()


# --- func_info, line_info, .BTF.ext -------------------------------------------------------------


def test_func_and_line_info_records() -> None:
    w = BTFWriter()
    i = w.int_("int", 4, signed=True)
    main = w.func("main", w.func_proto(i, [("ctx", w.pointer(0))]), btf.Linkage.GLOBAL)
    sub = w.func("sub", w.func_proto(i, [("x", i)]))
    fi = w.func_info([(0, main), (5, sub)])
    assert [tuple(r) for r in struct.iter_unpack("=II", fi)] == [(0, main), (5, sub)]
    li = w.line_info([(0, "prog.py", 10, 5, "x = 1"), (3, "prog.py", 11, 0, "return x"),
                      (5, "prog.py", 20, 1023, "def sub(x):")])
    recs = list(struct.iter_unpack("=IIII", li))
    s = _parse(w)  # strings added by line_info are in the blob encoded afterwards
    assert [(r[0], s.string(r[1]), s.string(r[2]), r[3] >> 10, r[3] & 0x3FF) for r in recs] == [
        (0, "prog.py", "x = 1", 10, 5), (3, "prog.py", "return x", 11, 0),
        (5, "prog.py", "def sub(x):", 20, 1023)]


def test_ext_section_round_trips() -> None:
    w = BTFWriter()
    i = w.int_("int", 4, signed=True)
    f = w.func("f", w.func_proto(i, [("x", i)]))
    g = w.func("g", w.func_proto(i, [("x", i)]))
    raw = w.ext({"xdp": [(0, f), (64, g)], "tc": [(0, g)]},
                {"xdp": [(0, "a.c", 1, 2, "int f(int x)"), (8, "a.c", 2, 3, "return x;")]})
    s = _parse(w)
    ext = ExtInfo.from_bytes(raw, strings=s.string)
    assert [(r.insn_off, r.type_id) for r in ext.func_info["xdp"]] == [(0, f), (64, g)]
    assert [(r.insn_off, r.type_id) for r in ext.func_info["tc"]] == [(0, g)]
    li = ext.line_info["xdp"]
    assert [(r.insn_off, s.string(r.file_name_off), s.string(r.line_off), r.line, r.column)
            for r in li] == [(0, "a.c", "int f(int x)", 1, 2), (8, "a.c", "return x;", 2, 3)]
    assert (ext.func_info_rec_size, ext.line_info_rec_size) == (8, 16)
    empty = BTFWriter().ext()
    assert ExtInfo.from_bytes(empty, strings=s.string).func_info == {}


def test_compiler_shim_uses_public_writer() -> None:
    from ebpf.bpf import _btf
    from ebpf.bpf.types import Struct, bytes_, u16, u32

    class Pair(Struct):
        a: u32
        b: u16
        name: bytes_[6]  # type: ignore[valid-type]

    shim = _btf.BTFWriter()
    sid = shim.struct_(Pair)
    assert shim.struct_(Pair) == sid
    fid = shim.func("f", shim.int_type(u32), [("x", shim.int_type(u16))], _btf.LINKAGE_GLOBAL)
    s = btf.Spec.from_bytes(shim.encode())
    p = s[sid]
    assert isinstance(p, btf.Struct) and p.size == Pair.size
    assert [(m.name, m.offset) for m in p.members] == [("a", 0), ("b", 32), ("name", 48)]
    assert isinstance(s[fid], btf.Func) and s[fid].name == "f"


# --- errors ------------------------------------------------------------------------------------


def test_unknown_type_id() -> None:
    w = BTFWriter()
    i = w.int_("int", 4)
    calls: list[Callable[[], object]] = [
                 lambda: w.pointer(99), lambda: w.array(42, 1), lambda: w.typedef("t", 7),
                 lambda: w.struct("s", [("a", i + 1)]), lambda: w.func_proto(5),
                 lambda: w.var("v", -1), lambda: w.const(True)]
    for call in calls:
        with pytest.raises(BTFError, match=r"unknown type id|not a type id"):
            call()
    with pytest.raises(ValueError, match="unknown type id 99"):  # a ValueError as well
        w.pointer(99)


def test_names() -> None:
    w = BTFWriter()
    i = w.int_("int", 4)
    long = "x" * (MAX_NAME_LEN + 1)
    with pytest.raises(BTFError, match="512 bytes, the kernel takes at most 511"):
        w.struct(long, [("a", i)])
    w.struct("x" * MAX_NAME_LEN, [("a", i)])
    with pytest.raises(BTFError, match="at most 511"):
        w.typedef(long, i)
    with pytest.raises(BTFError, match="longer than 511"):
        w.type_tag(long, i)
    for bad in ("1abc", "a-b", "a b", "é"):
        with pytest.raises(BTFError, match="not a valid C identifier"):
            w.struct(bad, [("a", i)])
    with pytest.raises(BTFError, match="NUL"):
        w.string("a\0b")
    with pytest.raises(BTFError, match="name is required"):
        w.typedef("", i)
    with pytest.raises(BTFError, match="name is required"):
        w.fwd("")
    with pytest.raises(BTFError, match="repeats"):
        w.struct("dup", [("a", i), ("a", i)])
    with pytest.raises(BTFError, match="repeats"):
        w.enum("e", [("A", 1), ("A", 2)])
    with pytest.raises(BTFError, match="non-empty"):
        w.decl_tag("", w.struct("t", [("a", i)]))
    with pytest.raises(BTFError, match="refuses"):
        w.datasec(".da ta", [(w.var("v", i), 0)])


def test_member_offsets() -> None:
    w = BTFWriter()
    i = w.int_("int", 4)
    with pytest.raises(BTFError, match="ends at bit 64, beyond the 4 bytes"):
        w.struct("s", [("a", i, 32)], size=4)
    with pytest.raises(BTFError, match="not byte aligned"):
        w.struct("s", [("a", i, 3)])
    with pytest.raises(BTFError, match="before the previous member"):
        w.struct("s", [("a", i, 32), ("b", i, 0)])
    with pytest.raises(BTFError, match="overflows the 24-bit offset field"):
        w.struct("s", [("a", i, 1 << 24), Field("b", i, (1 << 24) + 32, 3)], size=1 << 22)
    w.struct("big", [("a", i, 1 << 24)], size=(1 << 21) + 4)  # fine without bitfields
    with pytest.raises(BTFError, match="not a non-negative int"):
        w.struct("s", [("a", i, -8)])
    with pytest.raises(BTFError, match="size"):
        w.struct("s", [("a", i)], size=1 << 32)
    with pytest.raises(BTFError, match="every member of a union is at 0"):
        w.union("u", [("a", i), ("b", i, 32)], size=8)
    with pytest.raises(BTFError, match="is not a Field"):
        w.struct("s", ["a"])  # type: ignore[list-item]


def test_packed_layout_is_inferred() -> None:
    """A struct whose offsets are not aligned (``__attribute__((packed))``) aligns at 1, so a
    struct holding it places it as C does."""
    w = BTFWriter()
    u8, u32 = w.int_("u8", 1), w.int_("u32", 4)
    packed = w.struct("hdr", [("kind", u8, 0), ("len", u32, 8)], size=5)
    assert (w.sizeof(packed), w.alignof(packed)) == (5, 1)
    outer = w.struct("outer", [("tag", u8), ("h", packed)])
    assert [m.offset for m in _parse(w)[outer].members] == [0, 8]  # type: ignore[attr-defined]
    assert w.alignof(w.struct("odd", [("a", u32, 0)], size=6)) == 1  # size not a multiple


def test_bitfields() -> None:
    w = BTFWriter()
    u8 = w.int_("u8", 1)
    narrow = w.int_("three", 1, bits=3)
    inner = w.struct("inner", [("a", u8)])
    e = w.enum("e", {"A": 1}, size=2)
    with pytest.raises(BTFError, match="bitfield of 9 bits is wider than its 8-bit type"):
        w.struct("s", [Field("a", u8, bits=9)])
    with pytest.raises(BTFError, match="wider than its 3-bit type"):
        w.struct("s", [Field("a", narrow, bits=4)])
    with pytest.raises(BTFError, match="wider than its 16-bit type"):
        w.struct("s", [Field("a", e, bits=17)])
    with pytest.raises(BTFError, match="must be an int or enum, not a STRUCT"):
        w.struct("s", [Field("a", inner, bits=1)])
    with pytest.raises(BTFError, match="bitfield width"):
        w.struct("s", [Field("a", u8, bits=-1)])
    ok = w.struct("s", [Field("a", w.typedef("t8", u8), bits=8), Field("b", e, bits=16)])
    assert [m.bitfield_size for m in _parse(w)[ok].members] == [8, 16]  # type: ignore[attr-defined]


def test_kind_specific_errors() -> None:
    w = BTFWriter()
    i = w.int_("int", 4, signed=True)
    fwd = w.fwd("later")
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: w.int_("i", 3), "size 3"),
        (lambda: w.int_("i", True), "size True"),
        (lambda: w.int_("i", 4, bits="8"), "must be ints"),  # type: ignore[arg-type]
        (lambda: w.int_("i", 4, bits=33), "do not fit"),
        (lambda: w.int_("i", 1, bits=4, bit_offset=5), "do not fit"),
        (lambda: w.int_("i", 4, signed=True, char=True), "exclude each other"),
        (lambda: w.float_("f", 3), "size 3"),
        (lambda: w.array(0, 1), "void"),
        (lambda: w.array(fwd, 2), "FWD 'later'.*has no size"),
        (lambda: w.array(i, -1), "nelems"),
        (lambda: w.array(i, 1 << 31), "exceeds 4 GiB"),
        (lambda: w.array(i, 1, index_type=w.pointer(i)), "not an INT"),
        (lambda: w.struct("s", [("f", fwd)]), "has no size"),
        (lambda: w.struct("s", [("v", 0)]), "void"),
        (lambda: w.enum("e", {"A": 1 << 32}), r"does not fit.*\(use enum64\)"),
        (lambda: w.enum("e", {"A": -1}, signed=False), "does not fit"),
        (lambda: w.enum("e", {"A": 1}, size=3), "size 3"),
        (lambda: w.enum64("e", {"A": 1 << 64}), "does not fit"),
        (lambda: w.enum("e", {"A": 1.5}), "not an int"),  # type: ignore[arg-type]
        (lambda: w.func_proto(i, [("a", 0)]), "void"),
        (lambda: w.func_proto(i, [("a", i), ("a", i)]), "repeats"),
        (lambda: w.func("f", i), "is a INT, not a FUNC_PROTO"),
        (lambda: w.func("f", w.func_proto(i, [("", i)])), "has no name"),
        (lambda: w.func("f", w.func_proto(i), 3), "linkage 3"),
        (lambda: w.var("v", w.func_proto(i)), "has no size"),
        (lambda: w.var("9v", i), "not a valid variable name"),
        (lambda: w.datasec(".data", []), "size 0"),
        (lambda: w.datasec(".data", [(i, 0)]), "not a VAR"),
        (lambda: w.datasec(".data", [(w.var("a", i), 0)], size=2), "does not hold"),
        (lambda: w.datasec(".data", [(w.var("b", i), 0, 2)]), "takes 4 bytes"),
        (lambda: w.datasec(".data", [(w.var("c", i), 4), (w.var("d", i), 6)]), "overlaps"),
        (lambda: w.data_section(".bss", [("x", i), ("x", i)]), "repeats"),
        (lambda: w.decl_tag("t", i), "not a struct, union, func, var or typedef"),
        (lambda: w.decl_tag("t", w.struct("s", [("a", i)]), 1), "component 1 of type"),
        (lambda: w.decl_tag("t", w.var("e", i), 0), "has no components"),
        (lambda: w.decl_tag("t", w.typedef("td", i), -2), "component_idx -2"),
        (lambda: BTFWriter(byteorder="big"), "byteorder"),
        (lambda: w.const(w.volatile(w.type_tag("user", i))), "type tags before"),
        (lambda: w.typedef("t", w.type_tag("rcu", i)), "type tags before"),
    ]
    for call, match in cases:
        with pytest.raises(BTFError, match=match):
            call()


def test_func_and_line_info_errors() -> None:
    w = BTFWriter()
    i = w.int_("int", 4, signed=True)
    f = w.func("f", w.func_proto(i))
    with pytest.raises(BTFError, match="first function at instruction 0"):
        w.func_info([(2, f)])
    with pytest.raises(BTFError, match="not after the previous"):
        w.func_info([(0, f), (0, f)])
    with pytest.raises(BTFError, match="is a INT, not a FUNC"):
        w.func_info([(0, i)])
    with pytest.raises(BTFError, match="unknown type id"):
        w.func_info([(0, 77)])
    with pytest.raises(BTFError, match="pair of ints"):
        w.func_info([(0,)])  # type: ignore[list-item]
    with pytest.raises(BTFError, match="column 1024"):
        w.line_info([(0, "a.py", 1, 1024, "x")])
    with pytest.raises(BTFError, match="line 4194304"):
        w.line_info([(0, "a.py", 1 << 22, 0, "x")])
    with pytest.raises(BTFError, match="not after the previous"):
        w.line_info([(3, "a.py", 1, 0, "x"), (3, "a.py", 2, 0, "y")])
    with pytest.raises(BTFError, match="is not \\(insn"):
        w.line_info([(0, "a.py", 1)])  # type: ignore[list-item]


def test_errors_do_not_leave_partial_types() -> None:
    w = BTFWriter()
    i = w.int_("int", 4)
    n = len(w)
    with pytest.raises(BTFError):
        w.struct("s", [("a", i), ("b", 99)])
    with pytest.raises(BTFError):
        w.enum("e", {"A": 1, "B": 1 << 40})
    with pytest.raises(BTFError):
        w.data_section(".data", [("a", i), ("b", 99)])
    with pytest.raises(BTFError):
        w.data_section(".data", [("a", i), ("a", i)])
    with pytest.raises(BTFError):
        w.data_section(".data", [])
    assert len(w) == n
    _parse(w)


# --- copy from a parsed spec --------------------------------------------------------------------


def assert_same_graph(a: btf.Type, b: btf.Type) -> None:
    """``a`` and ``b`` (of different specs) describe the same types, references included."""
    todo, seen = [(a, b)], set()
    while todo:
        x, y = todo.pop()
        if (x.id, y.id) in seen:
            continue
        seen.add((x.id, y.id))
        assert type(x) is type(y) and x.name == y.name, (x, y)
        refs: list[tuple[int, int]] = []
        if isinstance(x, btf.Int):
            assert isinstance(y, btf.Int)
            assert (x.size, x.bits, x.bit_offset, x.encoding) == (y.size, y.bits, y.bit_offset,
                                                                  y.encoding)
        elif isinstance(x, btf.Pointer):
            assert isinstance(y, btf.Pointer)
            refs.append((x.target_id, y.target_id))
        elif isinstance(x, btf.Array):
            assert isinstance(y, btf.Array) and x.nelems == y.nelems
            refs += [(x.elem_type_id, y.elem_type_id), (x.index_type_id, y.index_type_id)]
        elif isinstance(x, btf.Composite):
            assert isinstance(y, btf.Composite) and x.size == y.size
            assert len(x.members) == len(y.members)
            for m, n in zip(x.members, y.members, strict=True):
                assert (m.name, m.offset) == (n.name, n.offset), (x, m, n)
                # without kind_flag a bitfield is a narrow int; the copy has kind_flag
                bits = m.bitfield_size
                if not bits and n.bitfield_size:
                    narrow = x.spec.resolve(m.type)
                    assert isinstance(narrow, btf.Int)
                    bits = narrow.bits
                assert bits == n.bitfield_size, (x, m, n)
                refs.append((m.type_id, n.type_id))
        elif isinstance(x, btf.Enum | btf.Enum64):
            assert isinstance(y, btf.Enum | btf.Enum64)
            assert (x.size, x.signed, x.values) == (y.size, y.signed, y.values)
        elif isinstance(x, btf.Fwd):
            assert isinstance(y, btf.Fwd) and x.is_union == y.is_union
        elif isinstance(x, btf.Qualifier):
            assert isinstance(y, btf.Qualifier)
            refs.append((x.type_id, y.type_id))
        elif isinstance(x, btf.FuncProto):
            assert isinstance(y, btf.FuncProto) and x.variadic == y.variadic
            assert [p.name for p in x.params] == [p.name for p in y.params]
            refs += [(x.return_type_id, y.return_type_id)]
            refs += [(p.type_id, q.type_id) for p, q in zip(x.params, y.params, strict=True)]
        elif isinstance(x, btf.Func | btf.Var):
            assert isinstance(y, btf.Func | btf.Var) and x.linkage == y.linkage
            refs.append((x.type_id, y.type_id))
        elif isinstance(x, btf.DataSec):
            assert isinstance(y, btf.DataSec) and x.size == y.size
            assert [(v.offset, v.size) for v in x.vars] == [(v.offset, v.size) for v in y.vars]
            refs += [(v.type_id, u.type_id) for v, u in zip(x.vars, y.vars, strict=True)]
        elif isinstance(x, btf.Float):
            assert isinstance(y, btf.Float) and x.size == y.size
        elif isinstance(x, btf.DeclTag):
            assert isinstance(y, btf.DeclTag)
            assert (x.component_idx, x.is_attr) == (y.component_idx, y.is_attr)
            refs.append((x.type_id, y.type_id))
        if isinstance(x, btf.TypeTag):
            assert isinstance(y, btf.TypeTag) and x.is_attr == y.is_attr
        todo += [(x.spec[i], y.spec[j]) for i, j in refs]


_CLANG_KINDS = r"""
#define __tag(x) __attribute__((btf_decl_tag(x)))
#define __user __attribute__((btf_type_tag("user")))
typedef unsigned int u32;
typedef unsigned long long u64;
enum color { RED, GREEN = 5, BLUE = -1 };
enum wide { HUGE = 0x100000000ULL };
struct node;
union num { int i; float f; double d; };
struct flags { unsigned a : 3, b : 5; int c : 20; enum color col : 4; long long d; };
struct node {
    struct node *next;
    const volatile u32 *restrict p;
    char name[16][2];
    union num value;
    struct flags f __tag("member_tag");
    struct { int x, y; } anon;
    int __user *uptr;
    void (*cb)(struct node *, int, ...);
} __tag("struct_tag");
struct node global_node;
enum wide wide_var = HUGE;
int counter = 1;
const int limit = 10;
static int hidden;
__attribute__((noinline)) int use(struct node *n __tag("param_tag"), int k) {
    return n->f.c + k + hidden + limit;
}
__attribute__((section("xdp"))) int prog(void *ctx) { return use(&global_node, counter); }
"""


@pytest.mark.skipif(CLANG is None, reason="clang-19 not installed")
def test_copy_every_type_of_a_clang_object(tmp_path: Path) -> None:
    from ebpf.elf import load_collection_spec

    c = tmp_path / "kinds.c"
    c.write_text(_CLANG_KINDS)
    o = tmp_path / "kinds.o"
    assert CLANG is not None
    subprocess.run([CLANG, "-g", "-O2", "-target", "bpf", "-c", str(c), "-o", str(o)],
                   check=True)
    blob = load_collection_spec(o.read_bytes()).btf_blob  # DATASECs fixed up as for loading
    assert blob is not None
    theirs = btf.Spec.from_bytes(blob)
    kinds = {type(t).__name__ for t in theirs}
    assert {"Struct", "Union", "Enum", "Enum64", "Typedef", "Const", "Volatile", "Restrict",
            "FuncProto", "Func", "Var", "DataSec", "Float", "DeclTag", "TypeTag"} <= kinds
    w = BTFWriter()
    ids = {t.id: w.copy(t) for t in theirs if t.id}
    assert w.copy(theirs.find("node", btf.Struct)) == ids[theirs.find("node").id]  # once
    mine = _parse(w)
    for tid, new in ids.items():
        assert_same_graph(theirs[tid], mine[new])


def test_copy_converts_old_style_bitfields() -> None:
    """A struct without kind_flag (narrow ints at bit offsets) becomes one with it."""
    raw = BTFWriter()
    narrow = raw.int_("unsigned int", 4, bits=3)
    i = raw.int_("int", 4)
    raw._records.append((raw.string("old"), 4 << 24 | 2, 4, raw.string("a"), narrow, 0,
                         raw.string("b"), narrow, 3))  # hand-made: no kind_flag
    raw._infos.append(raw._infos[i])
    src = btf.Spec.from_bytes(raw.encode())
    old = src.find("old", btf.Struct)
    assert [m.bitfield_size for m in old.members] == [0, 0]
    w = BTFWriter()
    tid = w.copy(old)
    got = _parse(w)[tid]
    assert isinstance(got, btf.Struct)
    assert [(m.offset, m.bitfield_size) for m in got.members] == [(0, 3), (3, 3)]
    assert_same_graph(old, got)
