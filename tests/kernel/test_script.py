"""ebpf.script.Script: maps, programs, a real tracepoint attachment and pins made in one
block and torn down in reverse order; a failure half-way leaves no fd, link or pin."""

from __future__ import annotations

import os

import pytest

import ebpf
from ebpf import asm
from ebpf._sys.fd import open_count
from ebpf.asm import R0, R1, R2, R10
from ebpf.lib import fp
from ebpf.lib import helpers as h
from ebpf.lib import patterns as p
from ebpf.link.tracepoint import attach_tracepoint
from ebpf.platform import Capability
from ebpf.script import Script, ScriptError, attach, map_, program

pytestmark = pytest.mark.capabilities(Capability.BPF)


@pytest.fixture
def pindir(bpffs: str) -> str:
    return bpffs


def _counter(maps: dict[str, ebpf.Map]) -> list[asm.Item]:
    return [*p.filter_by_pid(os.getpid(), skip="out"),
            asm.store_imm(asm.W, R10, -4, 0),
            *h.map_lookup_elem(maps["counts"], fp(-4)), asm.jeq(R0, 0, "out"),
            asm.mov(R1, 1), asm.atomic_add(asm.DW, R0, R1, 0),
            asm.label("out"), asm.mov(R0, 0), asm.exit()]


def test_script_counts_a_tracepoint_and_tears_down(pindir: str, tracefs: str) -> None:
    before = open_count()
    pin = os.path.join(pindir, "counts")
    with Script(
        maps=[map_("counts", ebpf.MapType.ARRAY, key_size=4, value_size=8, max_entries=1,
                   pin=pin)],
        programs=[program("count", ebpf.ProgramType.TRACEPOINT, _counter)],
        attach=[attach("count", attach_tracepoint, "syscalls", "sys_enter_getppid")],
    ) as s:
        for _ in range(3):
            os.getppid()
        assert s.maps["counts"][0] == 3
        assert os.path.exists(pin) and len(s.links) == 1
        # names in instructions resolve against the script's maps
        s.add_program("byname", ebpf.ProgramType.XDP, [
            asm.store_imm(asm.W, R10, -4, 0), asm.load_map(R1, "counts"),
            asm.mov(R2, R10), asm.add(R2, -4), asm.call(asm.Helper.MAP_LOOKUP_ELEM),
            asm.mov(R0, 2), asm.exit()])
    os.getppid()
    assert not os.path.exists(pin)
    assert open_count() == before


def test_failure_half_way_leaves_nothing_behind(pindir: str) -> None:
    before = open_count()
    pin_m, pin_p = os.path.join(pindir, "m"), os.path.join(pindir, "p")
    good = [asm.mov(R0, 2), asm.exit()]
    bad = [asm.mov(R0, R1), asm.add(R0, R2), asm.exit()]  # reads an uninitialised R2
    s = Script(
        maps=[map_("m", ebpf.MapType.ARRAY, key_size=4, value_size=8, max_entries=1,
                   pin=pin_m)],
        programs=[program("ok", ebpf.ProgramType.XDP, good, pin=pin_p),
                  program("bad", ebpf.ProgramType.XDP, bad)],
    )
    with pytest.raises(ScriptError, match="program 'bad' failed") as ei, s:
        pass
    assert isinstance(ei.value.__cause__, ebpf.errors.VerifierError)
    assert not os.path.exists(pin_m) and not os.path.exists(pin_p)
    assert open_count() == before
    assert s.maps == {} and s.programs == {}


def test_attach_to_unknown_program_fails_cleanly() -> None:
    before = open_count()
    with pytest.raises(ScriptError, match="no program 'nope'"), Script(
        programs=[program("ok", ebpf.ProgramType.XDP, [asm.mov(R0, 2), asm.exit()])],
        attach=[attach("nope", attach_tracepoint, "syscalls", "sys_enter_getppid")],
    ):
        pass
    assert open_count() == before


def test_error_inside_the_block_tears_down() -> None:
    before = open_count()
    with pytest.raises(RuntimeError), Script(
            maps=[map_("m2", ebpf.MapType.HASH, key_size=4, value_size=4, max_entries=4)]) as s:
        s.maps["m2"][1] = 2
        raise RuntimeError("boom")
    assert open_count() == before
