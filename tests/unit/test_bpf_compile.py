"""ebpf.bpf without a kernel: compiler output, compile errors with file:line, Struct layout,
BTF, the integer semantics of the emulation."""

from __future__ import annotations

import ctypes
import importlib.util
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ebpf import btf
from ebpf.bpf import emulate, i8, i32, i64, u8, u16, u32, u64

HEADER = """\
from ebpf import bpf
from ebpf.bpf import u8, u16, u32, u64, i8, i16, i32, i64
"""


def module(tmp: Path, body: str, name: str = "bpf_case") -> ModuleType:
    path = tmp / f"{name}.py"
    path.write_text(HEADER + textwrap.dedent(body))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def compile_error(tmp_path: Path, body: str) -> str:
    from ebpf import bpf

    mod = module(tmp_path, body)
    with pytest.raises(bpf.CompileError) as ei:
        mod.prog.compile()
    return str(ei.value)


# lines are counted with the 2-line HEADER
@pytest.mark.parametrize(("body", "where", "message"), [
    ("""
     @bpf.xdp
     def prog(ctx: bpf.XDP) -> int:
         try:
             pass
         finally:
             pass
         return 2
     """, ":6:5:", "Try statements are not supported"),
    ("""
     @bpf.xdp
     def prog(ctx: bpf.XDP) -> int:
         x = ctx.rx_queue_index / 2
         return x
     """, ":6:9:", "use //"),
    ("""
     @bpf.xdp
     def prog(ctx: bpf.XDP) -> int:
         x: u8 = 300
         return x
     """, ":6:13:", "300 does not fit in u8"),
    ("""
     @bpf.xdp
     def prog(ctx: bpf.XDP) -> int:
         x = ctx.rx_queue_index << 32
         return x
     """, ":6:9:", "shift by 32 is out of range for u32"),
    ("""
     @bpf.xdp
     def prog(ctx: bpf.XDP) -> int:
         return undefined_thing + 1
     """, ":6:12:", "name 'undefined_thing' is not defined"),
    ("""
     @bpf.xdp
     def prog(ctx: bpf.XDP) -> int:
         eth = ctx.load(bpf.net.Ethernet)
         return eth.proto
     """, ":7:12:", "eth may be None here"),
    ("""
     @bpf.xdp
     def prog(ctx: bpf.XDP) -> int:
         return ctx.nonexistent
     """, ":6:12:", "no readable field 'nonexistent'"),
    ("""
     @bpf.xdp
     def prog(ctx: bpf.XDP) -> int:
         for i in range(10, step_var):
             pass
         return 0
     """, ":6:24:", "name 'step_var' is not defined"),
    ("""
     @bpf.xdp
     def prog(ctx: bpf.XDP) -> int:
         def inner():
             return 1
         return 0
     """, ":6:5:", "nested functions"),
    ("""
     @bpf.xdp
     def prog(ctx: bpf.XDP, other) -> int:
         return 0
     """, ":5:1:", "exactly one parameter"),
    ("""
     @bpf.xdp
     def prog(ctx: bpf.XDP) -> int:
         a = b = 1
         return a
     """, ":6:5:", "chained assignment"),
    ("""
     @bpf.xdp
     def prog(ctx: bpf.XDP) -> int:
         x = ctx.rx_queue_index
         return x.bit_length()
     """, ":7:12:", "cannot call x.bit_length"),
    ("""
     @bpf.xdp
     def prog(ctx: bpf.XDP) -> int:
         return bpf.helper.map_lookup_elem(1, 2)
     """, ":6:12:", "neither an integer nor a struct pointer"),
    ("""
     @bpf.xdp
     def prog(ctx: bpf.XDP) -> int:
         return bpf.ktime_get_ns(1)
     """, ":6:12:", "takes 0 argument(s)"),
    ("""
     @bpf.xdp
     def prog(ctx: bpf.XDP) -> int:
         return bpf.get_current_comm()
     """, ":6:12:", "bytes_[N] field"),
    ("""
     @bpf.xdp
     def prog(ctx: bpf.XDP) -> int:
         x = [1, 2]
         return 0
     """, ":6:9:", "List expressions are not supported"),
    ("""
     @bpf.xdp
     def prog(ctx: bpf.XDP) -> int:
         while ctx.rx_queue_index:
             pass
         else:
             pass
         return 0
     """, ":6:5:", "while ... else"),
])
def test_compile_errors_name_file_and_line(tmp_path: Path, body: str, where: str,
                                           message: str) -> None:
    text = compile_error(tmp_path, body)
    assert text.startswith(str(tmp_path / "bpf_case.py") + where), text
    assert message in text


def test_listing_interleaves_python_lines(tmp_path: Path) -> None:
    mod = module(tmp_path, """
        counts = bpf.Array(u64, max_entries=4)

        @bpf.xdp
        def prog(ctx: bpf.XDP) -> int:
            q = ctx.rx_queue_index & 3
            counts[q] += 1
            return bpf.XDP_PASS
        """)
    text = mod.prog.asm()
    assert "bpf_case.py:8: q = ctx.rx_queue_index & 3" in text
    assert "bpf_case.py:9: counts[q] += 1" in text
    assert "lock *(u64 *)(r0 + 0x0) += r" in text
    assert "call bpf_map_lookup_elem" in text
    c = mod.prog.compile()
    pcs = [pc for pc, *_ in c.lines]
    assert pcs == sorted(set(pcs)) and pcs[0] == 0
    assert list(c.maps) == ["counts"]
    assert c.line_of(pcs[-1])[1:] == (9 + 1, "return bpf.XDP_PASS")


def test_build_spec_without_a_kernel(tmp_path: Path) -> None:
    from ebpf import MapType, ProgramType, bpf

    mod = module(tmp_path, """
        class Rec(bpf.Struct):
            a: u32
            b: u64

        hits = bpf.Hash(u32, u64, max_entries=16)
        recs = bpf.RingBuf(size=1 << 14)
        limit = bpf.const(u16, 7)

        @bpf.xdp
        def prog(ctx: bpf.XDP) -> int:
            hits[ctx.ingress_ifindex] += limit
            r = recs.reserve(Rec)
            if r is not None:
                r.a = 1
                r.b = bpf.ktime_get_ns()
                recs.submit(r)
            return bpf.XDP_PASS
        """)
    spec, _ = bpf.build_spec((mod.prog,), {"limit": 9})
    assert set(spec.maps) == {"hits", "recs", ".rodata"}
    assert spec.maps["hits"].type == MapType.HASH and spec.maps["hits"].key_size == 4
    assert spec.maps["recs"].type == MapType.RINGBUF
    assert spec.maps[".rodata"].contents == ((0, (9).to_bytes(2, "little") + bytes(6)),)
    assert spec.maps[".rodata"].freeze
    p = spec.programs["prog"]
    assert p.type == ProgramType.XDP and p.section == "xdp"
    assert {r.name for r in p.references} == {"hits", "recs", ".rodata"}
    assert p.func_info and len(p.line_info) >= 8
    # the BTF round-trips through our reader
    assert spec.btf_blob is not None
    parsed = btf.Spec.from_bytes(spec.btf_blob)
    rec = parsed.find("Rec", btf.Struct)
    assert [(m.name, m.byte_offset) for m in rec.members] == [("a", 0), ("b", 8)]
    assert parsed.find("prog", btf.Func) is not None


def test_struct_layout_matches_ctypes() -> None:
    from ebpf import bpf

    class Rec(bpf.Struct):
        a: u8
        b: u32
        c: u16
        d: u64
        name: bpf.bytes_[5]  # type: ignore[valid-type]
        e: i8

    class C(ctypes.Structure):
        _fields_ = [("a", ctypes.c_uint8), ("b", ctypes.c_uint32), ("c", ctypes.c_uint16),
                    ("d", ctypes.c_uint64), ("name", ctypes.c_char * 5), ("e", ctypes.c_int8)]

    assert Rec.size == ctypes.sizeof(C)
    for f in Rec.fields:
        assert f.offset == getattr(C, f.name).offset, f.name
    r = Rec(a=1, b=2, c=3, d=4, name=b"ab", e=-5)
    raw = r.encode()
    assert len(raw) == Rec.size
    back = Rec.decode(raw)
    assert back == r and back.e == -5 and back.name == b"ab"
    c = C.from_buffer_copy(raw)
    assert (c.a, c.b, c.c, c.d, c.e) == (1, 2, 3, 4, -5)
    arr = __import__("numpy").frombuffer(raw, dtype=Rec.dtype())
    assert int(arr["d"][0]) == 4 and int(arr["e"][0]) == -5


def test_network_order_fields_decode_in_host_order() -> None:
    from ebpf.bpf import net

    raw = bytes.fromhex("ffffffffffff" "020000000001" "0800")
    eth = net.Ethernet.decode(raw)
    assert eth.proto == 0x0800 and net.Ethernet.size == 14
    assert net.IPv4.size == 20 and net.UDP.size == 8 and net.TCP.size == 20


def test_struct_rejects_bad_fields() -> None:
    from ebpf import bpf, errors

    with pytest.raises(errors.BPFError, match="not a field type"):
        class Bad(bpf.Struct):
            x: float
    with pytest.raises(errors.BPFError, match="no field"):
        bpf.net.UDP.field("nope")


def test_casts_wrap_like_the_program() -> None:
    assert u8(300) == 44 and i8(200) == -56 and u32(-1) == 0xFFFF_FFFF
    assert i64(1 << 63) == -(1 << 63) and u16(0x12345) == 0x2345


@given(st.integers(-(1 << 31), (1 << 31) - 1), st.integers(-(1 << 31), (1 << 31) - 1))
def test_emulated_division_truncates_like_c(a: int, b: int) -> None:
    q = emulate.binop("//", a, b, i32)
    r = emulate.binop("%", a, b, i32)
    if b == 0:
        assert (q, r) == (0, a)
    elif not (a == -(1 << 31) and b == -1):
        assert q == int(a / b) if abs(a) < (1 << 52) else True
        assert q * b + r == a
        assert r == 0 or (r < 0) == (a < 0)


def test_emulated_shifts_and_wraps() -> None:
    assert emulate.binop(">>", -8, 1, i32) == -4
    assert emulate.binop(">>", 0xFFFF_FFF8, 1, u32) == 0x7FFF_FFFC
    assert emulate.binop("<<", 1, 33, u32) == 2  # counts are masked to the width
    assert emulate.binop("+", 255, 1, u8) == 0
    assert emulate.binop("*", 1 << 32, 1 << 32, u64) == 0
    assert emulate.compare("<", -1, 0, i64) and not emulate.compare("<", -1, 0, u64)


def test_programs_do_not_run_in_python() -> None:
    from ebpf import bpf, errors

    @bpf.xdp
    def prog(ctx: bpf.XDP) -> int:
        return 2

    with pytest.raises(errors.BPFError, match="does not run in Python"):
        prog(None)
    m = bpf.Array(u64, max_entries=1)
    with pytest.raises(errors.BPFError, match="only inside a compiled program"):
        m[0]
    with pytest.raises(errors.BPFError, match="power of two"):
        bpf.RingBuf(size=1000)
    with pytest.raises(errors.BPFError, match="does not fit"):
        bpf.const(u8, 256)
    with pytest.raises(errors.BPFError, match="category/event"):
        bpf.tracepoint("nocategory")
