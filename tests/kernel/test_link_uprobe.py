"""uprobes, uretprobes, uprobe_multi and USDT on the real kernel.

The target is tests/testdata/uprobe/target.c, compiled with gcc at test time; libc probes use
the C library of this very process (called through ``os.getppid``).
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ebpf
from ebpf import asm
from ebpf._elfsym import ElfFile, SymbolNotFoundError
from ebpf.asm import R7
from ebpf.link import perf_event, uprobe
from ebpf.link.perf_event import (
    PerfEventKind,
    PerfEventLink,
    PerfEventLinks,
    pt_regs_arg_offset,
    pt_regs_offset,
    pt_regs_return_offset,
)
from ebpf.link.uprobe import (
    UprobeMultiLink,
    attach_uprobe,
    attach_uprobe_multi,
    attach_usdt,
    resolve_binary,
    usdt_argument,
    usdt_probes,
)
from ebpf.testing.modules import import_file

H = import_file(Path(__file__).with_name("_trace_link_factories.py"))
P = ebpf.ProgramType
A = ebpf.AttachType
N = 7


target_bin = H.target_bin  # fixtures of _trace_link_factories
target = H.target


@pytest.fixture(scope="module")
def tracefs() -> Iterator[str]:
    with H.tracefs_mounted() as path:
        yield path


@pytest.fixture
def counter() -> Iterator[Any]:
    with H.counter_map() as m:
        yield m


def _regs_load(offset: int) -> list[Any]:
    return [asm.load(asm.DW, R7, asm.R6, offset)]


# --- the test binary --------------------------------------------------------------------------

def test_uprobe_on_binary_sees_argument(target: Any, target_bin: str, counter: Any) -> None:
    insns = H.counting_insns(counter, pid=target.pid, value=_regs_load(pt_regs_arg_offset(0)))
    with H.load(P.KPROBE, insns, name="up_add") as prog:
        with attach_uprobe(prog, target_bin, "ebpf_target_add", pid=target.pid) as link:
            assert isinstance(link, PerfEventLink)
            assert target.ask(f"add 40 2 {N}") == "42"
            pe = H.perf_info(link)
            if pe is not None:
                assert pe.kind == PerfEventKind.UPROBE
                assert pe.name == os.path.realpath(target_bin)
                with ElfFile.open(target_bin) as elf:
                    assert pe.offset == elf.symbol_offset("ebpf_target_add")
        assert counter[0] == N
        assert counter[1] & 0xFFFFFFFF == 40
        assert target.ask("add 1 1 3") == "2"  # detached
        assert counter[0] == N


def test_uretprobe_on_binary_sees_return_value(target: Any, target_bin: str,
                                               counter: Any) -> None:
    insns = H.counting_insns(counter, pid=target.pid, value=_regs_load(pt_regs_return_offset()))
    with H.load(P.KPROBE, insns) as prog, attach_uprobe(
            prog, target_bin, "ebpf_target_add", retprobe=True, pid=target.pid) as link:
        assert target.ask(f"add 1000 337 {N}") == "1337"
        assert counter[0] == N
        assert counter[1] & 0xFFFFFFFF == 1337
        pe = H.perf_info(link)
        assert pe is None or pe.kind == PerfEventKind.URETPROBE


def test_uprobe_all_processes(target: Any, target_bin: str, counter: Any) -> None:
    """pid=-1: one probe for every process mapping the file (filtered here by the program)."""
    insns = H.counting_insns(counter, pid=target.pid)
    with H.load(P.KPROBE, insns) as prog, attach_uprobe(prog, target_bin, "ebpf_target_add"):
        target.ask("add 1 2 5")
        assert counter[0] == 5


def test_uprobe_by_address_and_offset(target: Any, target_bin: str, counter: Any) -> None:
    with ElfFile.open(target_bin) as elf:
        sym = elf.find_symbol("ebpf_target_add")
        off = elf.symbol_to_offset(sym)
    insns = H.counting_insns(counter, pid=target.pid)
    with H.load(P.KPROBE, insns) as prog:
        with attach_uprobe(prog, target_bin, address=sym.value, pid=target.pid):
            target.ask("add 1 2 2")
        with attach_uprobe(prog, target_bin, offset=off, pid=target.pid):
            target.ask("add 1 2 3")
    assert counter[0] == 5


def test_uprobe_through_tracefs_uprobe_events(target: Any, target_bin: str, counter: Any,
                                              tracefs: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The pre-4.17 path (no uprobe PMU): a probe event in <tracefs>/uprobe_events."""

    def no_pmu(name: str) -> int:
        raise FileNotFoundError(2, "no PMU", name)

    monkeypatch.setattr(uprobe, "pmu_type", no_pmu)
    insns = H.counting_insns(counter, pid=target.pid, value=_regs_load(pt_regs_arg_offset(1)))
    control = os.path.join(tracefs, "uprobe_events")
    with H.load(P.KPROBE, insns) as prog:
        link = attach_uprobe(prog, target_bin, "ebpf_target_add", pid=target.pid)
        try:
            event = link._event
            assert event is not None
            assert f"{event.group}/{event.event}" in Path(control).read_text()
            assert target.ask("add 5 6 4") == "11"
        finally:
            link.close()
        assert counter[0] == 4
        assert counter[1] & 0xFFFFFFFF == 6
        assert f"{event.event} " not in Path(control).read_text()  # removed on close


def test_forgotten_tracefs_uprobe_is_removed(tracefs: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A link never closed still removes its uprobe_events entry when collected (and warns)."""
    def no_pmu(name: str) -> int:
        raise FileNotFoundError(2, "no PMU", name)

    monkeypatch.setattr(uprobe, "pmu_type", no_pmu)
    control = Path(tracefs, "uprobe_events")
    with H.load(P.KPROBE, H.ret0()) as prog:
        link = attach_uprobe(prog, "libc.so.6", "getppid", pid=0)
        assert link._event is not None
        name = link._event.event
        assert name in control.read_text()
        with pytest.warns(ResourceWarning, match="unclosed PerfEventLink"):
            del link
            gc.collect()
        assert name not in control.read_text()


# --- libc -------------------------------------------------------------------------------------

def test_uprobe_on_libc_in_this_process(counter: Any) -> None:
    insns = H.counting_insns(counter, pid=os.getpid())
    with H.load(P.KPROBE, insns) as prog, attach_uprobe(prog, "libc.so.6", "getppid", pid=0):
        for _ in range(N):
            os.getppid()
        assert counter[0] >= N


def test_uretprobe_on_libc_sees_return_value(counter: Any) -> None:
    insns = H.counting_insns(counter, pid=os.getpid(), value=_regs_load(pt_regs_return_offset()))
    with H.load(P.KPROBE, insns) as prog, attach_uprobe(
            prog, H.libc_path(), "getppid", retprobe=True, pid=os.getpid()):
        ppid = os.getppid()
        assert counter[0] >= 1
        assert counter[1] & 0xFFFFFFFF == ppid


def test_uprobe_multi_on_libc(counter: Any) -> None:
    H.require_link_type(ebpf.LinkType.UPROBE_MULTI)
    insns = H.counting_insns(counter, pid=os.getpid())
    with H.load(P.KPROBE, insns, expected_attach_type=A.TRACE_UPROBE_MULTI) as prog, \
            attach_uprobe_multi(prog, H.libc_path(), ["getppid", "getpid"],
                                cookies=[1, 2], pid=os.getpid()) as link:
        assert isinstance(link, UprobeMultiLink)
        for _ in range(N):
            os.getppid()
            os.getpid()
        assert counter[0] >= 2 * N
        info = link.uprobe_info()
        assert info.path == os.path.realpath(H.libc_path())
        with ElfFile.open(H.libc_path()) as elf:
            assert info.offsets == (elf.symbol_offset("getppid"), elf.symbol_offset("getpid"))
        assert info.cookies == (1, 2)
        assert info.pid == os.getpid()
        assert not info.retprobe
        assert link.info().type == ebpf.LinkType.UPROBE_MULTI


def test_uprobe_multi_return(target: Any, target_bin: str, counter: Any) -> None:
    H.require_link_type(ebpf.LinkType.UPROBE_MULTI)
    insns = H.counting_insns(counter, pid=target.pid, value=_regs_load(pt_regs_return_offset()))
    with H.load(P.KPROBE, insns, expected_attach_type=A.TRACE_UPROBE_MULTI) as prog, \
            attach_uprobe_multi(prog, target_bin, ["ebpf_target_add"], retprobe=True) as link:
        assert target.ask("add 20 3 3") == "23"
        assert counter[0] == 3
        assert counter[1] & 0xFFFFFFFF == 23
        assert link.uprobe_info().retprobe


# --- USDT -------------------------------------------------------------------------------------

def test_usdt_notes_of_the_target(target_bin: str) -> None:
    probes = {(p.provider, p.name): p for p in usdt_probes(target_bin)}
    tick = probes["ebpf_test", "tick"]
    plain = probes["ebpf_test", "plain"]
    assert tick.semaphore_address and tick.semaphore_offset
    assert plain.semaphore_address == 0 and plain.semaphore_offset == 0
    (arg,) = tick.arguments
    assert arg.size == 4 and arg.signed and arg.kind == "reg"


@pytest.mark.parametrize("multi", [False, True], ids=["uprobe", "uprobe_multi"])
def test_usdt_with_semaphore(target: Any, target_bin: str, counter: Any, multi: bool) -> None:
    if multi:
        H.require_link_type(ebpf.LinkType.UPROBE_MULTI)
    (tick,) = [p for p in usdt_probes(target_bin) if p.name == "tick"]
    (arg,) = tick.arguments
    insns = H.counting_insns(counter, pid=target.pid,
                             value=_regs_load(pt_regs_offset(arg.register)))
    eat = A.TRACE_UPROBE_MULTI if multi else None
    assert target.ask("sem") == "0"
    assert target.ask("fire 3") == "0"  # not enabled: the guarded probe is skipped
    with H.load(P.KPROBE, insns, expected_attach_type=eat) as prog:
        with attach_usdt(prog, target_bin, "ebpf_test", "tick", pid=target.pid) as links:
            assert isinstance(links, UprobeMultiLink if multi else PerfEventLinks)
            assert target.ask("sem") == "1"  # incremented by the kernel while attached
            assert target.ask(f"fire {N}") == str(N)
            assert counter[0] == N
            assert counter[1] & 0xFFFFFFFF == N - 1  # the argument: the loop index
        assert target.ask("sem") == "0"  # and decremented on detach
        assert target.ask("fire 3") == "0"
        assert counter[0] == N


@pytest.mark.parametrize("probe,expected", [("mem", -1000 * N), ("konst", -1234),
                                            ("tick", N - 1)])
def test_usdt_arguments_read_with_usdt_argument(target: Any, target_bin: str, counter: Any,
                                                probe: str, expected: int) -> None:
    """Memory, constant and register arguments, fetched by the generated code."""
    (site,) = [p for p in usdt_probes(target_bin) if p.name == probe]
    (arg,) = site.arguments
    insns = H.counting_insns(counter, pid=target.pid, value=usdt_argument(arg, R7))
    command = {"mem": f"mem {N}", "konst": f"mem {N}", "tick": f"fire {N}"}[probe]
    with H.load(P.KPROBE, insns) as prog, attach_usdt(prog, target_bin, "ebpf_test", probe,
                                                     pid=target.pid):
        assert target.ask(command) == str(N)
    assert counter[0] == N
    assert counter[1] == expected & (2**64 - 1)  # sign-extended to 64 bits


def test_usdt_semaphore_set_for_processes_started_later(target_bin: str, counter: Any) -> None:
    with H.load(P.KPROBE, H.counting_insns(counter)) as prog, attach_usdt(
            prog, target_bin, "ebpf_test", "tick"), H.Target(target_bin) as t:
        assert t.ask("sem") == "1"
        assert t.ask("fire 4") == "4"
    assert counter[0] >= 4


def test_usdt_without_semaphore(target: Any, target_bin: str, counter: Any) -> None:
    insns = H.counting_insns(counter, pid=target.pid)
    with H.load(P.KPROBE, insns) as prog, attach_usdt(prog, target_bin, "ebpf_test", "plain",
                                                     pid=target.pid) as links:
        assert len(links) == 1
        assert target.ask("always 5") == "5"
        assert counter[0] == 5


# --- errors -----------------------------------------------------------------------------------

def _no_syscalls(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*a: object, **k: object) -> None:
        raise AssertionError("a syscall was made before the inputs were checked")

    for mod, names in ((perf_event, ("perf_event_open", "link_create", "ioctl")),
                       (uprobe, ("link_create", "open_perf_event", "create_probe_event"))):
        for n in names:
            monkeypatch.setattr(mod, n, boom)


def test_uprobe_inputs_checked_before_syscalls(target_bin: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    with H.load(P.KPROBE, H.ret0()) as prog, H.load(P.TRACEPOINT, H.ret0()) as wrong, \
            H.load(P.KPROBE, H.ret0(), expected_attach_type=A.TRACE_UPROBE_MULTI) as multi:
        _no_syscalls(monkeypatch)
        with pytest.raises(SymbolNotFoundError, match="ebpf_target_ad") as ei:
            attach_uprobe(prog, target_bin, "ebpf_target_ad")
        assert "ebpf_target_add" in ei.value.suggestions
        with pytest.raises(ValueError, match="expected KPROBE"):
            attach_uprobe(wrong, target_bin, "ebpf_target_add")
        with pytest.raises(ValueError, match="expected none"):
            attach_uprobe(multi, target_bin, "ebpf_target_add")
        with pytest.raises(ValueError, match="TRACE_UPROBE_MULTI"):
            attach_uprobe_multi(prog, target_bin, ["ebpf_target_add"])
        with pytest.raises(FileNotFoundError):
            attach_uprobe(prog, "/nonexistent/binary", "main")
        with pytest.raises(FileNotFoundError):
            attach_uprobe(prog, "libdoesnotexist.so.9", "main")
        with pytest.raises(SymbolNotFoundError, match="USDT probe 'ebpf_test:tock'") as ei:
            attach_usdt(prog, target_bin, "ebpf_test", "tock")
        assert "ebpf_test:tick" in ei.value.suggestions
        with pytest.raises(ValueError, match="not both"):
            attach_uprobe(prog, target_bin, "main", address=0x1000)
        with pytest.raises(ValueError, match="cookies"):
            attach_uprobe_multi(multi, target_bin, ["main"], cookies=[1, 2])


def test_resolve_binary() -> None:
    libc = resolve_binary("libc.so.6")
    assert os.path.isabs(libc) and os.path.basename(libc) == "libc.so.6"
    assert resolve_binary(sys.executable) == os.path.abspath(sys.executable)
    assert os.path.isabs(resolve_binary("sh"))
