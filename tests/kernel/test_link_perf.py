"""perf_event programs on software (and, where present, hardware) events, on the real kernel."""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ebpf
from ebpf import errors
from ebpf.link import perf_event
from ebpf.link.perf_event import (
    HardwareEvent,
    PerfEventKind,
    PerfEventLinks,
    SoftwareEvent,
    attach_perf_event,
)
from ebpf.testing.modules import import_file

H = import_file(Path(__file__).with_name("_trace_link_factories.py"))
P = ebpf.ProgramType


@pytest.fixture
def counter() -> Iterator[Any]:
    with H.counter_map() as m:
        yield m


@pytest.fixture
def prog(counter: Any) -> Iterator[ebpf.Program]:
    with H.load(P.PERF_EVENT, H.counting_insns(counter), name="perf_count") as p:
        yield p


def _busy(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


@pytest.mark.parametrize("use_link", [True, False], ids=["bpf_link", "ioctl"])
def test_cpu_clock_samples_on_every_cpu(prog: ebpf.Program, counter: Any, use_link: bool,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    if not use_link:
        monkeypatch.setattr(perf_event, "_perf_link_supported", lambda: False)
    with attach_perf_event(prog, SoftwareEvent.CPU_CLOCK, sample_period=1_000_000) as links:
        assert isinstance(links, PerfEventLinks)
        assert list(links.cpus) == ebpf.platform.online_cpus()
        assert all(link.uses_bpf_link is use_link for link in links)
        _busy(0.3)
        first = counter[0]
        assert first > 0
        _busy(0.2)
        assert counter[0] > first  # the counter grows
    stopped = counter[0]
    _busy(0.1)
    assert counter[0] == stopped
    assert links.closed


def test_sample_freq_and_single_cpu(prog: ebpf.Program, counter: Any) -> None:
    with attach_perf_event(prog, sample_freq=1000, cpu=0) as links:
        assert len(links) == 1 and links.cpus == (0,)
        os.sched_setaffinity(0, {0})
        try:
            _busy(0.3)
        finally:
            os.sched_setaffinity(0, set(ebpf.platform.online_cpus()))
        assert counter[0] > 0


def test_task_clock_follows_this_process(prog: ebpf.Program, counter: Any) -> None:
    with attach_perf_event(prog, SoftwareEvent.TASK_CLOCK, sample_period=1_000_000,
                           pid=os.getpid()) as links:
        assert links.cpus == (-1,)
        _busy(0.3)
        assert counter[0] > 0


def test_perf_event_link_info_and_pin(prog: ebpf.Program, bpffs: str) -> None:
    with attach_perf_event(prog, sample_period=50_000_000, cpu=0) as links:
        info = H.perf_info(links[0])
        if info is not None:
            assert info.kind == PerfEventKind.EVENT
            assert info.config == SoftwareEvent.CPU_CLOCK
            # PERF_TYPE_SOFTWARE, or the dynamic type of the hidden cpu_clock PMU the kernel
            # hands the event to (6.18 reports 6 here).
            assert info.type == 1 or info.type >= 6
        assert links[0].info().type == ebpf.LinkType.PERF_EVENT
        links.pin(bpffs)
        assert "cpu0" in os.listdir(bpffs)
        links.unpin()
        assert "cpu0" not in os.listdir(bpffs)


def test_hardware_event_needs_a_pmu(prog: ebpf.Program, counter: Any) -> None:
    try:
        links = attach_perf_event(prog, HardwareEvent.CPU_CYCLES, sample_period=100_000)
    except errors.SyscallError as e:
        if e.errno == errno.ENOENT:
            pytest.skip("no hardware PMU on this machine (perf_event_open: ENOENT)")
        raise
    with links:
        _busy(0.2)
        assert counter[0] > 0


def test_attach_perf_event_checks_inputs(prog: ebpf.Program,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*a: object, **k: object) -> None:
        raise AssertionError("syscall before the inputs were checked")

    monkeypatch.setattr(perf_event, "perf_event_open", boom)
    with H.load(P.KPROBE, H.ret0()) as wrong, pytest.raises(ValueError,
                                                            match="expected PERF_EVENT"):
        attach_perf_event(wrong, sample_period=1000)
    with pytest.raises(ValueError, match="exactly one"):
        attach_perf_event(prog)
    with pytest.raises(ValueError, match="exactly one"):
        attach_perf_event(prog, sample_period=1, sample_freq=1)
    with pytest.raises(ValueError, match="positive"):
        attach_perf_event(prog, sample_period=0)
    with pytest.raises(ValueError, match="needs a cpu"):
        attach_perf_event(prog, sample_period=1000, cpu=-1)
