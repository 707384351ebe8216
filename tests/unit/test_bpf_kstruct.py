"""Kernel struct member resolution (``ebpf.bpf._kstruct.resolve_field``) on synthetic BTF:
offsets through anonymous structs/unions, bitfields (with and without ``kind_flag``), sizes
and signedness, pointers, arrays, close names for a typo. The loads themselves are proved
on the kernel by tests/kernel/test_bpf_kernel_structs.py."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ebpf import btf
from ebpf.bpf import i8, i16, i32, i64, u8, u16, u32, u64
from ebpf.bpf._kstruct import pointer_target, resolve_field
from ebpf.btf.writer import BTFWriter, Field
from ebpf.errors import BPFError


def _spec() -> tuple[btf.Spec, btf.Composite]:
    w = BTFWriter()
    u32_ = w.int_("unsigned int", 4)
    int_ = w.int_("int", 4, signed=True)
    s8 = w.int_("signed char", 1, signed=True)
    u16_ = w.int_("short unsigned int", 2)
    u64_ = w.int_("long long unsigned int", 8)
    bool_ = w.int_("_Bool", 1, bool_=True)
    char = w.int_("char", 1, char=True)
    narrow = w.int_("u3", 1, bits=3, bit_offset=2)  # a bitfield encoded in the INT
    en = w.enum("e", {"A": -1, "B": 1}, size=2, signed=True)
    fwd = w.fwd("other")
    other = w.struct("other", [("x", u64_)])
    inner = w.struct("", [("hash", u32_), ("len", u32_)])
    un = w.union("", [("", inner), ("hash_len", u64_)])
    qstr = w.struct("qstr", [("", un), ("name", w.pointer(char))])
    outer = w.struct("outer", [
        ("a", s8),
        Field("flag", u32_, 8, 1),
        Field("level", int_, 9, 5),           # signed 5-bit
        Field("wide", u64_, 14, 40),          # spans 6 bytes: an 8-byte load
        ("b", u16_, 64),
        ("e", en, 80),
        ("ok", bool_, 96),
        ("nb", narrow, 104),
        ("q", qstr, 128),
        ("comm", w.array(char, 16), 256),
        ("p", w.pointer(w.typedef("other_t", other)), 384),
        ("f", w.pointer(fwd), 448),
        ("v", w.pointer(0), 512),
        ("big", w.int_("long long int", 8, signed=True), 576),
    ])
    spec = btf.Spec.from_bytes(w.encode())
    comp = spec[outer]
    assert isinstance(comp, btf.Composite)
    return spec, comp


SPEC, OUTER = _spec()


def test_plain_members_have_their_size_and_sign() -> None:
    f = resolve_field(OUTER, "a")
    assert (f.kind, f.offset, f.size, f.ty, f.bits) == ("int", 0, 1, i8, 0)
    assert resolve_field(OUTER, "b").ty is u16
    assert (resolve_field(OUTER, "e").ty, resolve_field(OUTER, "e").offset) == (i16, 10)
    assert resolve_field(OUTER, "ok").ty is u8
    assert resolve_field(OUTER, "big").ty is i64


def test_bitfields_load_the_smallest_covering_unit() -> None:
    f = resolve_field(OUTER, "flag")
    assert (f.offset, f.size, f.bit, f.bits, f.ty) == (1, 1, 0, 1, u32)
    lv = resolve_field(OUTER, "level")     # bits 9..13: byte 1, one byte
    assert (lv.offset, lv.size, lv.bit, lv.bits, lv.ty) == (1, 1, 1, 5, i32)
    wd = resolve_field(OUTER, "wide")      # bits 14..53: bytes 1..6
    assert (wd.offset, wd.size, wd.bit, wd.bits, wd.ty) == (1, 8, 6, 40, u64)
    nb = resolve_field(OUTER, "nb")        # INT-encoded: 3 bits from bit 104 + 2
    assert (nb.offset, nb.size, nb.bit, nb.bits) == (13, 1, 2, 3)


def test_anonymous_members_embedded_structs_pointers_and_arrays() -> None:
    q = resolve_field(OUTER, "q")
    assert (q.kind, q.offset) == ("comp", 16) and q.target is not None
    ln = resolve_field(q.target, "len")    # qstr { union { struct { hash; len }; ... } }
    assert (ln.offset, ln.ty) == (4, u32)
    assert resolve_field(q.target, "hash_len").ty is u64
    name = resolve_field(q.target, "name")
    assert (name.kind, name.offset, name.target) == ("ptr", 8, None)  # char *: an integer
    comm = resolve_field(OUTER, "comm")
    assert (comm.kind, comm.offset, comm.size, comm.count) == ("array", 32, 16, 16)
    p = resolve_field(OUTER, "p")          # through a typedef
    assert p.kind == "ptr" and p.target is not None and p.target.name == "other"
    f = resolve_field(OUTER, "f")          # a forward declaration resolves by name
    assert f.target is not None and f.target.name == "other"
    assert resolve_field(OUTER, "v").target is None


def test_unknown_members_list_close_names() -> None:
    with pytest.raises(KeyError, match="struct outer has no member 'lvel'; close: level"):
        resolve_field(OUTER, "lvel")
    q = resolve_field(OUTER, "q").target
    assert q is not None
    with pytest.raises(KeyError, match="close: len"):  # found inside the anonymous members
        resolve_field(q, "lne")
    with pytest.raises(KeyError) as ei:
        resolve_field(OUTER, "zzzzzz")
    assert "close" not in str(ei.value)


def test_pointer_target_skips_qualifiers() -> None:
    w = BTFWriter()
    s = w.struct("s", [("x", w.int_("int", 4, signed=True))])
    ptr = w.pointer(w.type_tag("rcu", w.const(s)))
    spec = btf.Spec.from_bytes(w.encode())
    target = pointer_target(spec[ptr])
    assert target is not None and target.name == "s"
    assert pointer_target(spec[s]) is None


def test_unreadable_members_are_refused() -> None:
    w = BTFWriter()
    s = w.struct("s", [("f", w.float_("double", 8)),
                       ("h", w.int_("__int128", 16, signed=True))])
    comp = btf.Spec.from_bytes(w.encode())[s]
    assert isinstance(comp, btf.Composite)
    with pytest.raises(BPFError, match="Float"):
        resolve_field(comp, "f")
    with pytest.raises(BPFError):
        resolve_field(comp, "h")


@given(st.data())
def test_bitfield_extraction_matches_a_python_decoder(data: st.DataObject) -> None:
    """The shift pair the compiler emits (``lsh 64-bit-bits``, then ``rsh``/``arsh
    64-bits``) on the covering little-endian load gives C's value of the bitfield."""
    size = data.draw(st.sampled_from([1, 2, 4, 8]))
    signed = data.draw(st.booleans())
    bits = data.draw(st.integers(1, size * 8))
    start = data.draw(st.integers(0, 64 - bits))
    w = BTFWriter()
    t = w.int_("int" if signed else "unsigned int", size, signed=signed)
    pad = w.int_("long long unsigned int", 8)
    if bits == size * 8 and start % 8 == 0:
        return  # a plain member, not a bitfield
    sid = w.struct("s", [Field("x", t, start, bits), ("pad", pad, 64)])
    comp = btf.Spec.from_bytes(w.encode())[sid]
    assert isinstance(comp, btf.Composite)
    f = resolve_field(comp, "x")
    raw = data.draw(st.binary(min_size=16, max_size=16))
    word = int.from_bytes(raw[f.offset:f.offset + f.size], "little")
    left = 64 - f.bit - f.bits
    v = (word << left) & (1 << 64) - 1
    got = v >> (64 - f.bits)
    if signed and got >> (f.bits - 1):
        got -= 1 << f.bits
    whole = int.from_bytes(raw, "little")
    want = (whole >> start) & ((1 << bits) - 1)
    if signed and want >> (bits - 1):
        want -= 1 << bits
    assert got == want
    assert f.ty is {(1, True): i8, (2, True): i16, (4, True): i32, (8, True): i64,
                    (1, False): u8, (2, False): u16, (4, False): u32, (8, False): u64}[
        (size, signed)]
