"""Instructions (the assembler proper): every way of passing items gives the same program, the
same as an independent encoder; label and reference errors; no garbage collections while
assembling a large program."""

from __future__ import annotations

import gc
import random
import struct
from collections.abc import Iterable, Iterator

import pytest

from ebpf import asm
from ebpf.asm import DW, R0, R1, R2, R3, R10, Instruction, W
from ebpf.asm.instruction import iter_decode
from ebpf.errors import AssemblerError, ParseError

MAPS: dict[object, int] = {"m0": 3, "m1": 4, "m2": 5}


def random_program(seed: int, n: int = 400) -> list[asm.Instruction | asm.Label]:
    """Straight code, ld_imm64, map loads, calls and jumps of every kind to labels placed at
    random; ends in exit after the last label (control flow is not meant to be sensible)."""
    rng = random.Random(seed)
    names = [f"l{i}" for i in range(n // 10)]
    body: list[asm.Instruction | asm.Label] = []
    for _ in range(n):
        k = rng.randrange(12)
        target = rng.choice(names)
        if k == 0:
            body.append(asm.jeq(R1, rng.randrange(-5, 5), target))
        elif k == 1:
            body.append(asm.jgt(R1, R2, target))
        elif k == 2:
            body.append(asm.ja(target))
        elif k == 3:
            body.append(asm.gotol(target))
        elif k == 4:
            body.append(asm.call_label(target))
        elif k == 5:
            body.append(asm.load_func(R2, target))
        elif k == 6:
            body.append(asm.load_imm64(R3, rng.randrange(1 << 64)))
        elif k == 7:
            body.append(asm.load_map(R1, rng.choice(["m0", "m1", "m2"])))
        elif k == 8:
            body.append(asm.jlt32(R1, 7, target))
        else:
            body.append(rng.choice([asm.mov(R0, 1), asm.add(R1, 14), asm.exit(),
                                    asm.load(W, R2, R1, 4), asm.store(DW, R10, -8, R0)]))
    for name in names:
        body.insert(rng.randrange(len(body) + 1), asm.label(name))
    return [*body, asm.exit()]


def reference_encode(items: list[asm.Instruction | asm.Label]) -> bytes:
    """An encoder written for this test alone: two passes, one slot at a time."""
    slots: dict[str, int] = {}
    pc = 0
    for it in items:
        if isinstance(it, asm.Label):
            slots[it.name] = pc
        else:
            pc += it.size
    out = bytearray()
    pc = 0
    for it in items:
        if isinstance(it, asm.Label):
            continue
        raw = bytearray(it.replace(target=None, reference=None).encode("little"))
        if it.target is not None:
            rel = slots[it.target] - pc - 1
            if it.opcode in (0x06, 0x85, 0x18):
                struct.pack_into("<i", raw, 4, rel)
            else:
                struct.pack_into("<h", raw, 2, rel)
        if it.reference is not None:
            struct.pack_into("<i", raw, 4, MAPS[it.reference])
        out += raw
        pc += it.size
    return bytes(out)


def shapes(items: list[asm.Instruction | asm.Label]) -> Iterator[Iterable[asm.Item]]:
    """The same program as a list, a tuple, a generator, nested lists and tuples, runs of
    instructions between other items."""
    yield items
    yield tuple(items)
    yield (it for it in items)
    yield [items[i : i + 37] for i in range(0, len(items), 37)]
    yield [items[:5], tuple(items[5:50]), iter(items[50:120]), items[120:]]  # type: ignore[list-item]
    yield [*items[:200], asm.Fragment([]), *items[200:]]  # a long run, then something else
    yield iter([items[:10], *items[10:300], (), *items[300:]])


@pytest.mark.parametrize("seed", range(6))
def test_every_shape_assembles_as_the_reference_encoder(seed: int) -> None:
    items = random_program(seed)
    want = reference_encode(items)
    first = asm.Instructions(items)
    assert first.encode(MAPS, check=False) == want
    for shape in shapes(items):
        prog = asm.Instructions(shape)
        assert prog.encode(MAPS, check=False) == want
        assert prog.labels == first.labels
        assert prog.references == first.references
        assert list(prog) == list(first)
        assert prog == first
    # the resolved instructions carry the offsets that were encoded
    resolved = b"".join(i.replace(target=None, reference=None).encode() for i in first)
    assert resolved == first.encode(check=False, maps=dict.fromkeys(MAPS, 0))
    assert [i.target for i in first] == [i.target for i in items if isinstance(i, Instruction)]
    assert first.tag() == asm.program_tag(first.encode(MAPS, check=False))


@pytest.mark.parametrize("head", [0, 15, 16, 17, 300])
@pytest.mark.parametrize("kind", ["label", "jump", "map", "imm64", "numeric", "none"])
def test_straight_head_then_something_to_resolve(head: int, kind: str) -> None:
    """A list whose first items need nothing (tried as a straight run first) and whose later
    ones do: the same program as the reference encoder's, labels, references and checks."""
    straight = [asm.mov(R0, i) for i in range(head)]
    special: list[asm.Instruction | asm.Label] = {
        "label": [asm.label("l"), asm.mov(R1, 1)],
        "jump": [asm.jeq(R1, 0, "end")],
        "map": [asm.load_map(R1, "m1")],
        "imm64": [asm.load_imm64(R2, 1 << 40)],
        "numeric": [asm.ja(0)],
        "none": [],
    }[kind]
    items = [*straight, *special, asm.add(R0, 1), asm.label("end"), asm.exit()]
    want = reference_encode(items)
    for shape in (items, tuple(items), [items], [straight, items[head:]]):
        prog = asm.Instructions(shape)
        assert prog.encode(MAPS) == want
        assert prog.slots == len(want) // 8
        assert prog.labels["end"] == prog.slots - 1
        assert ("l" in prog.labels) == (kind == "label")
        assert prog.references == ([(head, "m1")] if kind == "map" else [])
        assert [i.target for i in prog] == [
            i.target for i in items if isinstance(i, Instruction)]
    with pytest.raises(AssemblerError, match="outside the program"):
        asm.Instructions([*straight, asm.ja(5_000), asm.exit()]).encode()
    with pytest.raises(AssemblerError, match="undefined label 'nowhere'"):
        asm.Instructions([*straight, asm.ja("nowhere"), asm.exit()])


def test_duplicate_labels_in_bulk_and_across_pieces() -> None:
    with pytest.raises(AssemblerError, match="duplicate label 'a'"):
        asm.Instructions([asm.label("a"), asm.label("b"), asm.mov(R0, 0), asm.label("a"),
                          asm.label("b"), asm.exit()])
    with pytest.raises(AssemblerError, match="duplicate label 'x'"):
        asm.Instructions([[asm.label("x"), asm.ja("x")], asm.label("x"), asm.exit()])
    with pytest.raises(AssemblerError, match="duplicate label 'x'"):
        asm.Instructions(iter([asm.label("x"), asm.mov(R0, 0), asm.label("x"), asm.exit()]))
    with pytest.raises(AssemblerError, match="duplicate label 'frag#1/y'"):
        asm.Instructions([asm.Fragment([asm.label("y"), asm.label("y")], name="frag"),
                          asm.exit()])


def test_labels_resolve_outwards_from_fragments() -> None:
    inner = asm.Fragment([asm.jeq(R1, 0, "out"), asm.ja("here"), asm.label("here")])
    prog = asm.Instructions([inner, inner, asm.label("out"), asm.exit()])
    insns = asm.decode(prog.encode())
    assert [i.off for i in insns] == [3, 0, 1, 0, 0]
    with pytest.raises(AssemblerError, match=r"undefined label 'fragment#1/nowhere' \(insn 0\)"):
        asm.Instructions([asm.Fragment([asm.ja("nowhere")]), asm.exit()])


def test_only_jumps_calls_and_ld_imm64_take_a_label() -> None:
    bad = Instruction(0xB7, dst=0, imm=1, target="x")
    with pytest.raises(AssemblerError, match=r"insn 0 \(opcode 0xb7\) refers to label 'x'"):
        asm.Instructions([bad, asm.label("x"), asm.exit()])


def test_subprogram_entry_after_ld_imm64_falls_through() -> None:
    fine: list[asm.Item] = [asm.call_label("f"), asm.exit(), asm.label("f"), asm.mov(R0, 0),
                            asm.exit()]
    asm.Instructions(fine).encode()
    bad: list[asm.Item] = [asm.call_label("f"), asm.load_imm64(R0, 1), asm.label("f"), asm.exit()]
    with pytest.raises(AssemblerError, match="the insn before 3 falls through"):
        asm.Instructions(bad).encode()
    with pytest.raises(AssemblerError, match="the insn before 5 falls through"):
        asm.Instructions([asm.load_func(R2, "f"), asm.exit(), *bad[1:]]).encode()


@pytest.mark.parametrize("value", [-1, 1 << 31, (5, -1), (5, 1 << 15), (5,), "7", True, 2.0])
def test_bad_kfunc_resolution(value: object) -> None:
    prog = asm.Instructions([asm.kfunc_call("bpf_f"), asm.exit()])
    with pytest.raises(AssemblerError, match=r"kfunc 'bpf_f' \(insn 0\) resolved to"):
        prog.encode(kfuncs={"bpf_f": value})  # type: ignore[dict-item]


def test_kfunc_tag_keeps_the_module_index() -> None:
    prog = asm.Instructions([asm.kfunc_call("bpf_f", 2), asm.load_map(R1, "m0"), asm.exit()])
    code = prog.encode({"m0": 0}, kfuncs={"bpf_f": (0, 2)})
    assert prog.tag() == asm.program_tag(code)
    assert asm.decode(prog.encode({"m0": 3}, kfuncs={"bpf_f": (9, 2)}))[0].imm == 9


def test_assembling_sets_off_no_garbage_collection() -> None:
    items: list[asm.Item] = []
    for block in range(2_000):  # 30k instructions, labels, map loads
        out = f"out{block}"
        items += [asm.load(W, R2, R1, 0), asm.jgt(R1, R2, out), asm.load_map(R1, "m0"),
                  asm.load_imm64(R3, block), asm.mov(R2, R10), asm.add(R2, -8),
                  asm.call(asm.Helper.MAP_LOOKUP_ELEM), asm.jeq(R0, 0, out), asm.mov(R1, 1),
                  asm.atomic_add(DW, R0, R1, 0), asm.gotol(out), asm.label(out), asm.mov(R0, 2)]
    items.append(asm.exit())
    counts = [0]

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            counts[0] += 1

    gc.collect()
    gc.callbacks.append(count)
    try:
        for _ in range(3):
            asm.Instructions(items).encode(MAPS, check=False)
    finally:
        gc.callbacks.remove(count)
    assert counts == [0]


def _check_error(prog: asm.Instructions) -> str | None:
    try:
        prog.check()
    except AssemblerError as e:
        return str(e)
    return None


@pytest.mark.parametrize("seed", range(6, 30))
def test_decoded_programs_check_as_their_source(seed: int) -> None:
    """The checks of numeric jumps and calls (decoded code) agree with those of labels."""
    prog = asm.Instructions(random_program(seed, 60))
    code = prog.encode(MAPS, check=False)
    decoded = asm.Instructions.decode(code)
    assert decoded.encode(check=False) == code
    labelled, numeric = _check_error(prog), _check_error(decoded)
    assert (labelled is None) == (numeric is None), (labelled, numeric)
    if labelled is not None and "falls through" in labelled:
        assert numeric is not None and "falls through into the subprogram" in numeric


def test_numeric_jump_and_call_errors() -> None:
    call = Instruction(0x85, src=1, imm=2)  # call the subprogram at insn 3
    with pytest.raises(AssemblerError,
                       match="insn 1 falls through into the subprogram at insn 3"):
        asm.Instructions([call, asm.load_imm64(R0, 1), asm.exit()]).check()
    with pytest.raises(AssemblerError, match="insn 2 falls through into the subprogram at insn 3"):
        asm.Instructions([call, asm.exit(), asm.mov(R0, 0), asm.exit()]).check()
    asm.Instructions([Instruction(0x85, src=1, imm=1), asm.exit(), asm.exit()]).check()
    with pytest.raises(AssemblerError, match="insn 0 calls the middle of an ld_imm64 at insn 1"):
        asm.Instructions([Instruction(0x85, src=1, imm=1), asm.load_imm64(R0, 1),
                          asm.exit()]).check()
    with pytest.raises(AssemblerError, match=r"insn 0 jumps to -1, outside the program \(0..1\)"):
        asm.Instructions([asm.ja(-2), asm.exit()]).check()


@pytest.mark.parametrize("seed", range(4))
def test_decode_matches_slot_by_slot_decoding(seed: int) -> None:
    code = asm.Instructions(random_program(seed)).encode(MAPS, check=False)
    rng = random.Random(seed)
    noise = b"".join(  # slots with random fields (no ld_imm64): any slot decodes
        struct.pack("<BBhi", op, rng.randrange(256), rng.randrange(-0x8000, 0x8000),
                    rng.randrange(-(1 << 31), 1 << 31))
        for op in (rng.choice([o for o in range(256) if o != 0x18]) for _ in range(300))
    )
    for prog in (code, noise + code):
        got = asm.decode(prog)
        want = list(iter_decode(prog))
        assert got == want
        assert [(i.opcode, i.dst, i.src, i.off, i.imm, i.next_imm) for i in got] == [
            (i.opcode, i.dst, i.src, i.off, i.imm, i.next_imm) for i in want]
        assert b"".join(i.encode() for i in got) == prog
        assert asm.decode(bytearray(prog)) == got == asm.decode(memoryview(prog))  # type: ignore[arg-type]
    # equal slots share one (immutable) Instruction
    twice = asm.decode(asm.Instructions([asm.mov(R0, 1), asm.mov(R0, 1), asm.exit()]).encode())
    assert twice[0] is twice[1]


def test_decode_error_offsets() -> None:
    ld = asm.load_imm64(R1, 1).encode()
    plain = asm.mov(R0, 0).encode()
    with pytest.raises(ParseError, match="without its second slot") as e:
        asm.decode(plain + ld + plain + ld[:8])
    assert e.value.offset == 32
    bad = ld[:8] + bytes.fromhex("0000010000000000")
    with pytest.raises(ParseError, match="reserved") as e:
        asm.decode(plain + ld + bad + plain)
    assert e.value.offset == 32


def test_text_assembler_parses_repeated_statements_alike() -> None:
    text = asm.disassemble(asm.Instructions(random_program(3, 300)).encode(MAPS, check=False))
    lines = text.splitlines()
    got = asm.assemble(text)
    one_by_one = [x for line in lines for x in asm.assemble(line)]
    assert got == one_by_one
    assert asm.Instructions(got).encode(check=False) == asm.Instructions(one_by_one).encode(
        check=False)
    with pytest.raises(AssemblerError, match=r"line 3: .*'r11 = 1'"):
        asm.assemble("r0 = 1\nr0 = 1\nr11 = 1\nr11 = 1")
