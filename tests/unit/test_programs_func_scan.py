"""The load path's scan for "may take a subprogram's address" (ld_imm64 with src_reg
BPF_PSEUDO_FUNC): the same answer as a search for each of the eleven byte pairs."""

from __future__ import annotations

import random

from ebpf import asm
from ebpf._programs import _may_take_func_address
from ebpf.asm import R0, R1


def _pairs(code: bytes) -> bool:
    return any(bytes((0x18, 0x40 | dst)) in code for dst in range(11))


def test_scan_agrees_with_the_pair_search() -> None:
    rng = random.Random(13)
    cases = [b"", b"\x18", b"\x18\x40", b"\x00\x18", b"\x18\x4b", b"\x18\x18\x4a", b"\x18\x3f"]
    for _ in range(3000):
        n = rng.randrange(0, 24)
        cases.append(bytes(rng.choice((0x18, 0x40, 0x4A, 0x4B, 0x00, 0x3F)) for _ in range(n)))
    for code in cases:
        assert _may_take_func_address(code) == _pairs(code), code


def test_scan_on_programs() -> None:
    straight = asm.Instructions([asm.mov(R0, 0), asm.exit()]).encode()
    maps = asm.Instructions([asm.load_map(R1, "m"), asm.mov(R0, 0), asm.exit()]).encode({"m": 3})
    func = asm.Instructions([asm.load_func(R1, "f"), asm.mov(R0, 0), asm.exit(),
                             asm.label("f"), asm.mov(R0, 0), asm.exit()]).encode()
    assert not _may_take_func_address(straight)
    assert not _may_take_func_address(maps)
    assert _may_take_func_address(func)
