"""ebpf.lib and ebpf.hooks without a kernel: argument moves, byte order opcodes, layouts,
argument checks and the layering rule (the libraries are pure code generators)."""

from __future__ import annotations

import ast
import ctypes
import itertools
import random
import sys
from pathlib import Path

import pytest

from ebpf import asm
from ebpf._uapi import _generated_types as _t
from ebpf.asm import R0, R1, R2, R3, R4, R5, R6, R7, R10, Register
from ebpf.errors import AssemblerError
from ebpf.hooks import Context, cgroup, raw_tracepoint, skb, tracing, xdp
from ebpf.lib import call, fp, memory, parallel_move, rate_limit, set_reg, stack_value
from ebpf.lib.net import byteorder, checksum, ethernet, ipv4, ipv6, nat, udp
from ebpf.lib.structs import Struct

SRC = Path(__file__).resolve().parents[2] / "src" / "ebpf"


# --- a tiny evaluator for the register moves the generators emit ----------------------------------


def _run_moves(insns: list[asm.Instruction], regs: dict[int, int]) -> dict[int, int]:
    regs = dict(regs)
    for insn in insns:
        op = insn.opcode
        if op == 0xBF:  # mov64 reg
            regs[insn.dst] = regs[insn.src]
        elif op == 0xB7:  # mov64 imm
            regs[insn.dst] = insn.imm & (2**64 - 1)
        elif op == 0xB4:  # mov32 imm
            regs[insn.dst] = insn.imm & 0xFFFF_FFFF
        elif op == 0x18:  # ld_imm64
            regs[insn.dst] = insn.imm64 & (2**64 - 1)
        elif op == 0x07:  # add64 imm
            regs[insn.dst] = (regs[insn.dst] + insn.imm) & (2**64 - 1)
        elif op == 0x79:  # ldx dw (stack_value): model as a marker
            regs[insn.dst] = ("stack", insn.off)  # type: ignore[assignment]
        else:
            raise AssertionError(f"unexpected {insn}")
    return regs


@pytest.mark.parametrize("seed", range(200))
def test_parallel_move_reads_every_source_before_writing(seed: int) -> None:
    rnd = random.Random(seed)
    dsts = rnd.sample(range(1, 10), rnd.randrange(1, 6))
    moves: list[tuple[Register, object]] = []
    for d in dsts:
        kind = rnd.random()
        if kind < 0.7:
            moves.append((Register(d), Register(rnd.randrange(1, 10))))
        elif kind < 0.85:
            moves.append((Register(d), rnd.choice([0, -1, 7, 0x8000_0000, 2**40 + 3])))
        else:
            moves.append((Register(d), fp(-8 * rnd.randrange(1, 8))))
    before = {r: 1000 + r for r in range(11)}
    after = _run_moves(parallel_move(moves), before)  # type: ignore[arg-type]
    for d, v in moves:
        if isinstance(v, Register):
            want = before[v]
        elif isinstance(v, fp):
            want = (before[10] + v.off) & (2**64 - 1)
        else:
            want = v & (2**64 - 1)  # type: ignore[operator]
        assert after[d] == want, (moves, after)
    for r in range(1, 10):  # registers not moved keep their values (R0 is the scratch)
        if r not in dsts:
            assert after[r] == before[r]


def test_parallel_move_cycles_and_errors() -> None:
    out = parallel_move([(R1, R2), (R2, R3), (R3, R1)])
    got = _run_moves(out, {0: 0, 1: 1, 2: 2, 3: 3})
    assert (got[1], got[2], got[3]) == (2, 3, 1)
    with pytest.raises(AssemblerError, match="set twice"):
        parallel_move([(R1, R2), (R1, 3)])
    with pytest.raises(AssemblerError, match="cycle"):
        parallel_move([(R0, R1), (R1, R0)])
    with pytest.raises(AssemblerError, match="read-only"):
        parallel_move([(R10, 1)])


def test_call_places_arguments() -> None:
    insns = call(asm.Helper.MAP_UPDATE_ELEM, 5, fp(-8), stack_value(-16), 0)
    assert insns[-1] == asm.call(asm.Helper.MAP_UPDATE_ELEM)
    assert asm.load(asm.DW, R3, R10, -16) in insns
    with pytest.raises(AssemblerError):
        call(1, 1, 2, 3, 4, 5, 6)
    with pytest.raises(AssemblerError, match="frame"):
        fp(8)


@pytest.mark.parametrize("value", [0, 1, -1, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF,
                                   2**32, 2**63, -(2**63), 2**64 - 1])
def test_set_reg_any_constant(value: int) -> None:
    got = _run_moves(set_reg(R1, value), {1: 12345})
    assert got[1] == value & (2**64 - 1)


# --- byte order ----------------------------------------------------------------------------------


def test_load_be_uses_to_be_not_to_le() -> None:
    """clj-ebpf's "to big-endian" emitted BPF_TO_LE (0xd4): network loads did nothing."""
    for size, bits in ((asm.H, 16), (asm.W, 32), (asm.DW, 64)):
        _, swap = byteorder.load_be(size, R1, R2, 4)
        assert swap.opcode == 0xDC and swap.imm == bits  # BPF_ALU | BPF_END | BPF_TO_BE
    assert byteorder.load_be(asm.B, R1, R2) == [asm.load(asm.B, R1, R2, 0)]
    assert all(i.opcode != 0xD4 for i in byteorder.store_be(asm.H, R1, 0, R2, tmp=R3))


def test_wire_constants() -> None:
    little = sys.byteorder == "little"
    assert byteorder.htons(0x0800) == (0x0008 if little else 0x0800)
    assert byteorder.htonl(0x0A000001) == (0x0100000A if little else 0x0A000001)
    assert ipv4.address("10.0.0.1") == byteorder.htonl(0x0A000001)
    assert ipv6.address("::1")[3] == byteorder.htonl(1)
    with pytest.raises(ValueError):
        byteorder.htons(0x10000)


# --- contexts ------------------------------------------------------------------------------------


@pytest.mark.parametrize("struct", [_t.XdpMd, _t.SkBuff, _t.BpfSock, _t.BpfSockAddr,
                                    _t.BpfSockOps, _t.SkMsgMd, _t.BpfSkLookup, _t.BpfFlowKeys])
def test_context_offsets_are_the_generated_layout(struct: type[ctypes.Structure]) -> None:
    ctx = Context(struct, struct.__name__)
    for name, f in ctx.fields.items():
        if "." in name:
            continue
        assert getattr(struct, name).offset == f.offset, name
        assert f.size * max(f.count, 1) == getattr(struct, name).size, name


def test_context_accessors() -> None:
    assert xdp.data(R2) == asm.load(asm.W, R2, R1, _t.XdpMd.data.offset)
    assert skb.field(R3, "cb[4]", R6) == asm.load(asm.W, R3, R6, _t.SkBuff.cb.offset + 16)
    assert skb.field(R3, "flow_keys") == asm.load(asm.DW, R3, R1, 144)
    # an immediate goes through a scratch register: no BPF_ST into the ctx before 6.3
    mark = _t.SkBuff.mark.offset
    assert skb.store(R6, "mark", 5) == [asm.mov(R0, 5), asm.store(asm.W, R6, mark, R0)]
    assert skb.store(R6, "mark", 5, scratch=R2) == [
        asm.mov(R2, 5), asm.store(asm.W, R6, mark, R2)]
    assert skb.store(R6, "mark", R3) == [asm.store(asm.W, R6, mark, R3)]
    with pytest.raises(AssemblerError, match="scratch"):
        skb.store(R0, "mark", 5)
    assert cgroup.sock_addr_field(R2, "user_port").opcode == asm.load(asm.W, R2, R1).opcode
    assert raw_tracepoint.arg(R2, 3) == asm.load(asm.DW, R2, R1, 24)
    assert tracing.ret_value(R0, 2) == asm.load(asm.DW, R0, R1, 16)
    for bad in ("nope", "cb", "cb[5]", "mark[0]"):
        with pytest.raises(AssemblerError):
            skb.field(R2, bad)
    with pytest.raises(AssemblerError, match="overwrite"):
        xdp.prologue(ctx=None, data=R1)


# --- structs -------------------------------------------------------------------------------------


def test_struct_layout_matches_c() -> None:
    layout = Struct("ev", [("a", "u8"), ("b", "u64"), ("c", "be16"), ("d", "char[5]"),
                           ("e", "s32"), ("f", "u16[3]")])

    class C(ctypes.Structure):
        _fields_ = (("a", ctypes.c_uint8), ("b", ctypes.c_uint64), ("c", ctypes.c_uint16),
                    ("d", ctypes.c_char * 5), ("e", ctypes.c_int32),
                    ("f", ctypes.c_uint16 * 3))

    assert layout.size == ctypes.sizeof(C)
    for name in "abcdef":
        assert layout.offset(name) == getattr(C, name).offset
    rec = layout.encode(a=1, b=2**64 - 1, c=0x1234, d=b"hi", e=-5, f=(1, 2, 3))
    c = C.from_buffer_copy(rec)
    assert (c.a, c.b, c.d, c.e, list(c.f)) == (1, 2**64 - 1, b"hi", -5, [1, 2, 3])
    assert rec[layout.offset("c"):layout.offset("c") + 2] == b"\x12\x34"
    assert layout.decode(rec) == (1, 2**64 - 1, 0x1234, b"hi", -5, (1, 2, 3))
    assert layout.codec.decode(layout.codec.encode({"a": 9})).a == 9


def test_struct_store_emitters() -> None:
    layout = Struct("ev", [("port", "be16"), ("n", "u32"), ("big", "u64")])
    assert layout.store(R0, "port", 53) == asm.store_imm(asm.H, R0, 0, byteorder.htons(53))
    assert layout.store(R0, "n", R7, off=-16) == asm.store(asm.W, R0, -12, R7)
    with pytest.raises(AssemblerError, match="register"):
        layout.store(R0, "big", 2**40)
    with pytest.raises(AssemblerError, match="no field"):
        layout.store(R0, "nope", 1)
    with pytest.raises(ValueError, match="unknown type"):
        Struct("bad", [("x", "u24")])


def test_struct_dtype() -> None:
    np = pytest.importorskip("numpy")
    layout = Struct("ev", [("ts", "u64"), ("port", "be16"), ("comm", "char[6]")])
    arr = np.frombuffer(layout.encode(ts=3, port=80, comm=b"py") * 2, layout.dtype)
    assert arr["port"].tolist() == [80, 80] and arr["comm"].tolist() == [b"py", b"py"]


# --- memory --------------------------------------------------------------------------------------


def test_memory_chunks_cover_exactly_and_are_aligned() -> None:
    for off, size, other in itertools.product(range(-17, 0), range(1, 20),
                                              (None, 0, 1, 2, 3, 4)):
        pos = off
        for o, w in memory._chunks(off, size, other):
            assert o == pos and o % w == 0, (off, size, other)
            if other is not None:
                assert (other + o - off) % w == 0
            pos += w
        assert pos == off + size


def test_memory_errors() -> None:
    with pytest.raises(AssemblerError):
        memory.zero_stack(-4, 8)
    with pytest.raises(AssemblerError):
        memory.memcpy(R1, 0, R2, 0, 8, tmp=R1)
    assert len(memory.zero(R10, -64, 64)) == 8


# --- argument checks -----------------------------------------------------------------------------


def test_register_conflicts_are_rejected() -> None:
    with pytest.raises(AssemblerError):
        ethernet.parse(R2, R3, proto=R3, l3=R4, on_short="x", tmp=R1)
    with pytest.raises(AssemblerError):
        ipv4.parse(R2, R3, l4=R2, proto=R4, on_short="x", tmp=R1)
    with pytest.raises(AssemblerError):
        checksum.replace(R1, 10, R2, R3, 4, acc=R1, tmp=R4)
    with pytest.raises(AssemblerError, match="R6-R9"):
        nat.tc_dnat(R1, l3_off=14, addr="1.2.3.4", stack=-8, on_error="x")
    with pytest.raises(AssemblerError, match="needs l4"):
        nat.dnat(R2, None, port=80, l4proto=6, regs=(R0, R1, R3, R4))
    with pytest.raises(AssemblerError):
        udp.parse(R2, R3, on_short="x", tmp=R2)


def test_fragments_are_reusable_in_one_program() -> None:
    """Labels inside fragments are private: the same parser twice assembles."""
    frag = ipv4.parse(R2, R3, l4=R4, proto=R5, on_short="out", tmp=R1, on_fragment="out")
    prog = asm.Instructions([frag, frag, asm.label("out"), asm.mov(R0, 0), asm.exit()])
    assert len(prog) > 2 * 10
    ext = ipv6.parse(R2, R3, l4=R4, proto=R5, on_short="out", tmp=R1, max_ext=2)
    asm.Instructions([ext, ext, asm.label("out"), asm.mov(R0, 0), asm.exit()])


def test_rate_limit_config_math() -> None:
    cfg = rate_limit.Config(rate=3, burst=10)
    assert cfg.capacity == 10 * rate_limit.NANO
    assert cfg.max_elapsed_ns == -(-10 * rate_limit.NANO // 3)
    assert rate_limit.CONFIG.decode(cfg.encode()) == (3, cfg.capacity, cfg.max_elapsed_ns)
    assert rate_limit.tokens(rate_limit.bucket(2.5, 7)) == 2.5
    for bad in ({"rate": -1, "burst": 1}, {"rate": 1, "burst": 0},
                {"rate": 1, "burst": 2**62}):
        with pytest.raises(ValueError):
            rate_limit.Config(**bad)
    with pytest.raises(AssemblerError, match="one of them"):
        rate_limit.check(1, fp(-8), on_drop="d", stack=-64)
    with pytest.raises(AssemblerError, match="R6-R9"):
        rate_limit.check(1, R2, on_drop="d", stack=-64, config=cfg)


# --- layering ------------------------------------------------------------------------------------


def _imports(path: Path, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    out: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            out.add("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_lib_is_pure_and_hooks_load_kernel_code_lazily() -> None:
    kernel = ("_sys", "_maps", "_programs", "_collection", "link", "ringbuf", "perf")
    for path in (SRC / "lib").rglob("*.py"):
        for mod in _imports(path, top_level_only=False):
            assert not any(part in kernel for part in mod.lstrip(".").split(".")), (path, mod)
    for path in (SRC / "hooks").rglob("*.py"):
        for mod in _imports(path, top_level_only=True):
            assert not any(part in kernel for part in mod.lstrip(".").split(".")), (path, mod)

