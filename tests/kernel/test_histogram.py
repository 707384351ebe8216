"""ebpf.lib.histogram on the kernel: slots computed by the verifier-checked program match
bcc's log2l and the linear formula for every value fed through XDP test runs."""

from __future__ import annotations

import ebpf
from ebpf import asm
from ebpf.asm import R1, R2, R6, R7, R8, R9, R10
from ebpf.hooks import xdp
from ebpf.lib import histogram as h


def _log2l(v: int) -> int:
    return max(v.bit_length(), 1)


def _run(program, sizes):
    with ebpf.Program.load(ebpf.ProgramType.XDP, program, name="hist") as prog:
        for n in sizes:
            prog.test_run(data=bytes(n))


def test_log2_and_linear_histograms() -> None:
    sizes = [14, 15, 16, 31, 32, 33, 64, 100, 128, 255, 256, 1000, 1500, 4000]
    with ebpf.Map.create(ebpf.MapType.ARRAY, key_size=4, value_size=8,
                         max_entries=h.LOG2_SLOTS) as log2, \
            ebpf.Map.create(ebpf.MapType.PERCPU_ARRAY, key_size=4, value_size=8,
                            max_entries=10) as lin, \
            ebpf.Map.create(ebpf.MapType.HASH, key_size=8, value_size=8,
                            max_entries=64) as keyed:
        program = [
            xdp.prologue(ctx=R6, data=R7, data_end=R8),
            asm.sub(R8, R7),                             # frame length
            h.log2_increment(log2, R8, slot=R9, tmp=R1, key_stack=-4),
            h.linear_increment(lin, R8, slot=R9, step=100, slots=10, key_stack=-4,
                               percpu=True),
            # per key: key = length & 1 (u32), then the log2 slot
            asm.mov(R2, R8), asm.and_(R2, 1), asm.store(asm.W, R10, -16, R2),
            h.log2_slot(R9, R8, R1),
            h.keyed_increment(keyed, R9, key_stack=-16, key_size=4, value_stack=-24),
            xdp.ret(xdp.Action.PASS),
        ]
        _run(program, sizes)
        got = h.read(log2)
        want = [0] * h.LOG2_SLOTS
        for n in sizes:
            want[_log2l(n)] += 1
        assert list(got) == want
        assert list(h.read(lin)) == [sum(1 for n in sizes if min(n // 100, 9) == i)
                                     for i in range(10)]
        per = h.read_keyed(keyed, key_size=4)
        for parity in (0, 1):
            exp = [0] * h.LOG2_SLOTS
            for n in sizes:
                if n & 1 == parity:
                    exp[_log2l(n)] += 1
            assert list(per[parity.to_bytes(4, "little")]) == exp
        assert "-> 2047" in h.format_log2(got, "bytes")


def test_log2_slot_extremes() -> None:
    # values over 32 bits, via a constant: slot = bit length, clamped to slots-1
    for value, slots in [(0, 65), (1, 65), (1 << 40, 65), ((1 << 64) - 1, 65), (1 << 40, 20)]:
        with ebpf.Map.create(ebpf.MapType.ARRAY, key_size=4, value_size=8,
                             max_entries=slots) as m:
            program = [asm.load_imm64(R8, value),
                       h.log2_increment(m, R8, slot=R9, tmp=R1, key_stack=-4, slots=slots),
                       xdp.ret(xdp.Action.PASS)]
            _run(program, [64])
            assert list(h.read(m)).index(1) == min(_log2l(value), slots - 1)
