"""DSL constructors, validation errors, labels and scopes, references, source mapping, tag."""

from __future__ import annotations

import hashlib
import pickle

import pytest

from ebpf import asm
from ebpf.asm import DW, R0, R1, R2, R3, R6, R10, B, H, Helper, Instruction, W
from ebpf.errors import AssemblerError, ParseError


class FakeMap:
    def __init__(self, fd: int, name: str = "m") -> None:
        self.fd = fd
        self.name = name

    def fileno(self) -> int:
        return self.fd


def enc(*items: object) -> bytes:
    return asm.Instructions(items).encode(check=False)  # type: ignore[arg-type]


# -- golden bytes of each constructor (kernel include/linux/filter.h macros by hand) ----------
@pytest.mark.parametrize(
    ("insn", "expected"),
    [
        (asm.mov(R0, 2), "b700000002000000"),
        (asm.mov(R6, R1), "bf16000000000000"),
        (asm.mov32(R0, -1), "b4000000ffffffff"),
        (asm.mov32(R0, 0xFFFFFFFF), "b4000000ffffffff"),
        (asm.add(R2, -4), "07020000fcffffff"),
        (asm.sdiv(R1, R2), "3f21010000000000"),
        (asm.smod32(R1, 3), "9401010003000000"),
        (asm.movsx(R1, R2, 32), "bf21200000000000"),
        (asm.to_be(R1, 16), "dc01000010000000"),
        (asm.to_le(R1, 32), "d401000020000000"),
        (asm.bswap(R1, 64), "d701000040000000"),
        (asm.load(W, R0, R1, 4), "6110040000000000"),
        (asm.loadsx(H, R0, R1, -2), "8910feff00000000"),
        (asm.store(DW, R10, -8, R1), "7b1af8ff00000000"),
        (asm.store_imm(W, R10, -4, 0), "620afcff00000000"),
        (asm.atomic_add(DW, R0, R1, 0), "db10000000000000"),
        (asm.atomic_add(W, R0, R1, 0, fetch=True), "c310000001000000"),
        (asm.atomic_xchg(DW, R0, R1, 8), "db100800e1000000"),
        (asm.atomic_cmpxchg(W, R0, R1, 8), "c3100800f1000000"),
        (asm.load_acquire(B, R0, R1, 0), "d310000000010000"),
        (asm.store_release(DW, R1, 0, R2), "db21000010010000"),
        (asm.ld_abs(H, 12), "280000000c000000"),
        (asm.ld_ind(B, R1, 2), "5010000002000000"),
        (asm.load_imm64(R1, 0x1122334455667788), "1801000088776655000000004433221100"[:32]),
        (asm.load_map(R1, 5), "18110000050000000000000000000000"),
        (asm.load_map_value(R1, 5, 8), "18210000050000000000000008000000"),
        (asm.load_btf_id(R1, 77), "183100004d0000000000000000000000"),
        (asm.load_map_idx(R1, 2), "18510000020000000000000000000000"),
        (asm.load_map_idx_value(R1, 2, 4), "18610000020000000000000004000000"),
        (asm.jeq(R0, 0, 3), "1500030000000000"),
        (asm.jgt32(R1, R2, -1), "2e21ffff00000000"),
        (asm.ja(1), "0500010000000000"),
        (asm.gotol(70000), "0600000070110100"),
        (asm.may_goto(2), "e500020000000000"),
        (asm.call(Helper.MAP_LOOKUP_ELEM), "8500000001000000"),
        (asm.call_pc(-5), "85100000fbffffff"),
        (asm.kfunc_call(1234, 1), "85200100d2040000"),
        (asm.exit(), "9500000000000000"),
    ],
)
def test_constructor_bytes(insn: Instruction, expected: str) -> None:
    assert insn.encode().hex() == expected


def test_byte_swap_opcodes_are_not_swapped() -> None:
    # clj-ebpf emitted BPF_TO_LE for to_be; the kernel's BPF_TO_BE is 0x08 (source bit set).
    assert asm.to_be(R1, 16).opcode == 0xD4 | 0x08
    assert asm.to_le(R1, 16).opcode == 0xD4


def test_xchg_and_cmpxchg_include_fetch() -> None:
    assert asm.atomic_xchg(DW, R1, R2).imm == 0xE0 | 0x01
    assert asm.atomic_cmpxchg(DW, R1, R2).imm == 0xF0 | 0x01


def test_instruction_value_semantics() -> None:
    a, b = asm.mov(R0, 1), asm.mov(R0, 1)
    assert a == b and hash(a) == hash(b) and a != asm.mov(R0, 2)
    with pytest.raises(AttributeError):
        a.imm = 3  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(a)) == a
    assert Instruction(0xB7, dst=0, imm=1) == a
    assert a.replace(imm=2) == asm.mov(R0, 2)
    assert asm.load_imm64(R1, -1).imm64 == 0xFFFF_FFFF_FFFF_FFFF
    assert repr(a) == "Instruction('r0 = 0x1')"
    assert Instruction.decode(asm.load_imm64(R2, 7).encode()) == asm.load_imm64(R2, 7)
    assert asm.Instruction.decode(asm.mov(R0, 1).encode("big"), byteorder="big") == a


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: asm.mov(0, 1), "not a register"),  # type: ignore[arg-type]
        (lambda: asm.mov(R10, 1), "read-only"),
        (lambda: asm.add(R1, 1 << 31), "sign-extended"),
        (lambda: asm.add32(R1, 1 << 32), "32 bits"),
        (lambda: asm.lsh(R1, 64), "shift"),
        (lambda: asm.rsh32(R1, 32), "shift"),
        (lambda: asm.div(R1, 0), "division by zero"),
        (lambda: asm.load(W, R1, R2, 1 << 15), "16 bits"),
        (lambda: asm.jeq(R1, 0, -(1 << 15) - 1), "16 bits"),
        (lambda: asm.loadsx(DW, R1, R2, 0), "size"),
        (lambda: asm.atomic_add(B, R1, R2, 0), "size"),
        (lambda: asm.to_be(R1, 8), "width"),
        (lambda: asm.movsx32(R1, R2, 32), "width"),
        (lambda: asm.load_imm64(R1, 1 << 64), "64 bits"),
        (lambda: asm.load_map(R1, 3.5), "expected a map"),  # type: ignore[arg-type]
        (lambda: asm.call(1.0), "helper id or a label"),  # type: ignore[arg-type]
        (lambda: Instruction(0x100), "8 bits"),
        (lambda: Instruction(0xB7, dst=16), "register"),
    ],
)
def test_validation_errors(build: object, message: str) -> None:
    with pytest.raises(AssemblerError, match=message):
        build()  # type: ignore[operator]


# -- labels ----------------------------------------------------------------------------------
def test_labels_resolve_forward_and_backward() -> None:
    prog = asm.Instructions([
        asm.mov(R0, 0),
        asm.label("top"),
        asm.load_imm64(R2, 1),
        asm.jeq(R1, 0, "out"),
        asm.add(R1, -1),
        asm.ja("top"),
        asm.label("out"),
        asm.exit(),
    ])
    code = prog.encode()
    insns = asm.decode(code)
    assert insns[2].off == 2  # jeq at slot 3 -> out at slot 6
    assert insns[4].off == -5  # ja at slot 5 -> top at slot 1
    assert prog.labels == {"top": 1, "out": 6}
    assert prog[2].target == "out"


def test_gotol_call_and_func_labels() -> None:
    prog = asm.Instructions([
        asm.load_func(R2, "cb"),
        asm.call("sub"),
        asm.gotol("end"),
        asm.label("sub"), asm.mov(R0, 1), asm.exit(),
        asm.label("cb"), asm.mov(R0, 0), asm.exit(),
        asm.label("end"), asm.exit(),
    ])
    insns = asm.decode(prog.encode())
    assert insns[0].imm == 6 - 1 - 0 and insns[0].src == 4
    assert insns[1].imm == 4 - 3 and insns[1].src == 1
    assert insns[2].imm == 8 - 4 and insns[2].opcode == 0x06


def test_label_errors() -> None:
    with pytest.raises(AssemblerError, match="undefined label 'nowhere'"):
        asm.Instructions([asm.ja("nowhere"), asm.exit()])
    with pytest.raises(AssemblerError, match="duplicate label 'x'"):
        asm.Instructions([asm.label("x"), asm.label("x"), asm.exit()])
    with pytest.raises(AssemblerError, match="end of the program"):
        asm.Instructions([asm.ja("end"), asm.exit(), asm.label("end")])
    far = [asm.jeq(R1, 0, "far"), *[asm.mov(R0, 0)] * 40000, asm.label("far"), asm.exit()]
    with pytest.raises(AssemblerError, match="jump out of range"):
        asm.Instructions(far)
    # gotol reaches it
    asm.Instructions([asm.gotol("far"), *far[1:]]).encode()


def test_fall_off_the_end_and_bad_jumps() -> None:
    with pytest.raises(AssemblerError, match="fall off its end"):
        asm.Instructions([asm.mov(R0, 0)]).encode()
    with pytest.raises(AssemblerError, match="outside the program"):
        asm.Instructions([asm.ja(5), asm.exit()]).encode()
    with pytest.raises(AssemblerError, match="middle of an ld_imm64"):
        asm.Instructions([asm.ja(1), asm.load_imm64(R0, 1), asm.exit()]).encode()
    with pytest.raises(AssemblerError, match="falls through into the subprogram"):
        asm.Instructions(
            [asm.call("f"), asm.mov(R0, 0), asm.label("f"), asm.mov(R0, 1), asm.exit()]
        ).encode()
    with pytest.raises(AssemblerError, match="empty program"):
        asm.Instructions([]).encode()
    asm.Instructions([asm.mov(R0, 0)]).encode(check=False)


def test_fragments_scope_their_labels() -> None:
    def bounds(n: int) -> asm.Fragment:
        return asm.Fragment([
            asm.mov(R3, R2), asm.add(R3, n),
            asm.jle(R3, R1, "ok"),
            asm.ja("drop"),  # label of the enclosing program
            asm.label("ok"),
        ], name="bounds")

    prog = asm.Instructions([
        bounds(14), bounds(20),
        [asm.mov(R0, 2), asm.exit()],  # plain nested list: same scope
        asm.label("drop"), asm.mov(R0, 1), asm.exit(),
    ])
    insns = asm.decode(prog.encode())
    assert insns[2].off == 1 and insns[6].off == 1  # each "ok" is its own
    assert insns[3].off == 10 - 4 and insns[7].off == 10 - 8
    assert prog.labels == {"bounds#1/ok": 4, "bounds#2/ok": 8, "drop": 10}
    # the same label at top level and in a fragment does not clash
    asm.Instructions([asm.Fragment([asm.label("x"), asm.ja("x")]), asm.label("x"), asm.exit()])


def test_map_references_stay_symbolic() -> None:
    m = FakeMap(7)
    prog = asm.Instructions([
        asm.load_map(R1, m),
        asm.load_map(R2, "counts"),
        asm.load_map_value(R3, "cfg", 16),
        asm.kfunc_call("bpf_task_acquire"),
        asm.exit(),
    ])
    assert prog.references == [(0, m), (2, "counts"), (4, "cfg")]
    assert prog.kfunc_references() == [(6, "bpf_task_acquire")]
    with pytest.raises(AssemblerError, match="'counts'"):
        prog.encode(kfuncs={"bpf_task_acquire": 5})
    with pytest.raises(AssemblerError, match="kfunc 'bpf_task_acquire'"):
        prog.encode(maps={"counts": 3, "cfg": FakeMap(4)})
    code = prog.encode(maps={"counts": 3, "cfg": FakeMap(4)}, kfuncs={"bpf_task_acquire": (5, 1)})
    insns = asm.decode(code)
    assert [i.imm for i in insns[:3]] == [7, 3, 4]
    assert insns[2].next_imm == 16
    assert (insns[3].imm, insns[3].off, insns[3].src) == (5, 1, 2)
    # a map object can also be overridden through maps=
    assert asm.decode(prog.encode(maps={m: 9, "counts": 3, "cfg": 4},
                                  kfuncs={"bpf_task_acquire": 5}))[0].imm == 9
    # nothing was baked into the instructions
    assert prog[1].imm == 0 and prog[1].reference == "counts"


def test_source_mapping() -> None:
    prog = asm.Instructions([
        asm.load_imm64(R1, 5),
        asm.label("miss"),
        asm.mov(R0, 2),
        asm.mov(R0, 3),
        asm.exit(),
    ])
    assert prog.source(2) == "insn 2: r0 = 0x2 (label 'miss')"
    assert prog.source(3) == "insn 3: r0 = 0x3 (label 'miss' + 1)"
    assert prog.source(1).startswith("insn 1 (second slot of the ld_imm64 at insn 0)")
    assert prog.source(99) == "insn 99 (outside the program)"


def test_program_tag_zeroes_map_fds() -> None:
    a = asm.Instructions([asm.load_map(R1, 3), asm.load_map_value(R2, 3, 8), asm.exit()])
    b = asm.Instructions([asm.load_map(R1, 9), asm.load_map_value(R2, 9, 16), asm.exit()])
    assert a.tag() == b.tag() == asm.program_tag(a.encode())
    zeroed = asm.Instructions([asm.load_map(R1, 0), asm.load_map_value(R2, 0, 0), asm.exit()])
    assert a.tag() == hashlib.sha256(zeroed.encode()).digest()[:8]
    assert a.tag(algorithm="sha1") == hashlib.sha1(zeroed.encode()).digest()[:8]
    plain = asm.Instructions([asm.load_imm64(R1, 3), asm.exit()])
    assert plain.tag() == hashlib.sha256(plain.encode()).digest()[:8]
    # symbolic references need no resolving for the tag
    assert asm.Instructions([asm.load_map(R1, "x"), asm.exit()]).tag() == asm.Instructions(
        [asm.load_map(R1, 0), asm.exit()]).tag()


def test_decode_errors() -> None:
    with pytest.raises(ParseError, match="multiple of 8"):
        asm.decode(b"\0" * 9)
    with pytest.raises(ParseError, match="second slot"):
        asm.decode(asm.load_imm64(R1, 1).encode()[:8])
    bad = asm.load_imm64(R1, 1).encode()[:8] + bytes.fromhex("0100000000000000")
    with pytest.raises(ParseError, match="reserved"):
        asm.decode(bad)


def test_helper_enum() -> None:
    assert Helper.MAP_LOOKUP_ELEM == 1
    assert Helper(1) is Helper.MAP_LOOKUP_ELEM
    assert Helper.by_name("map_lookup_elem") is Helper.MAP_LOOKUP_ELEM
    assert Helper.by_name("bpf_map_lookup_elem") is Helper.MAP_LOOKUP_ELEM
    assert Helper.by_name("BPF_FUNC_map_lookup_elem") is Helper.MAP_LOOKUP_ELEM
    sig = Helper.MAP_LOOKUP_ELEM.signature
    assert sig is not None
    assert str(sig) == "void *bpf_map_lookup_elem(struct bpf_map *map, const void *key)"
    assert sig.return_type == "void *" and sig.params[0] == ("struct bpf_map *", "map")
    assert Helper.MAP_LOOKUP_ELEM.description.startswith("Perform a lookup in map")
    assert Helper.TAIL_CALL.call() == asm.call(12)
    with pytest.raises(KeyError):
        Helper.by_name("no_such_helper")
    # ids clj-ebpf got wrong (research report, appendix A)
    assert Helper.LOOP == 181 and Helper.STRNCMP == 182 and Helper.SNPRINTF == 165
    assert Helper.KTIME_GET_COARSE_NS == 160 and Helper.COPY_FROM_USER == 148
    assert Helper.SKB_SET_TSTAMP == 192 and Helper.COPY_FROM_USER_TASK == 191


def test_call_helper_names_and_labels_are_unambiguous() -> None:
    """``call("ktime_get_ns")`` used to become a bpf-to-bpf call to a label of that name."""
    assert asm.call("bpf_ktime_get_ns") == asm.call(asm.Helper.KTIME_GET_NS)
    with pytest.raises(AssemblerError, match=r"Helper\.KTIME_GET_NS.*call_label"):
        asm.call("ktime_get_ns")
    sub = asm.call_label("ktime_get_ns")
    assert sub.src == 1 and sub.target == "ktime_get_ns"
    assert asm.call("bpf_not_a_helper").target == "bpf_not_a_helper"  # no such helper: a label
    assert asm.call("Double").target == "Double"
    for bad in ("", 3):
        with pytest.raises(AssemblerError):
            asm.call_label(bad)  # type: ignore[arg-type]
    # text: "call bpf_x" is the helper, "call x" always a label
    assert asm.assemble("call bpf_ktime_get_ns\nexit")[0] == asm.call(asm.Helper.KTIME_GET_NS)
    assert asm.assemble("call ktime_get_ns\nktime_get_ns:\nexit")[0].target == "ktime_get_ns"
