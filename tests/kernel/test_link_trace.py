"""Tracepoints, raw tracepoints and tp_btf on the real kernel: they fire on our own syscalls."""

from __future__ import annotations

import errno
import glob
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ebpf
from ebpf import asm, errors
from ebpf._elfsym import SymbolNotFoundError
from ebpf.asm import R0, R6, R7, Helper
from ebpf.link import perf_event
from ebpf.link.perf_event import PerfEventKind, PerfEventLink
from ebpf.link.raw_tracepoint import RawTracepointLink, attach_raw_tracepoint
from ebpf.link.tracepoint import (
    attach_tracepoint,
    parse_format,
    tracepoint_format,
    tracepoint_id,
)
from ebpf.link.tracing import attach_tracing
from ebpf.testing.modules import import_file

H = import_file(Path(__file__).with_name("_trace_link_factories.py"))
P = ebpf.ProgramType
A = ebpf.AttachType
N = 25


@pytest.fixture(scope="module")
def tracefs() -> Iterator[str]:
    with H.tracefs_mounted() as path:
        yield path


@pytest.fixture
def counter() -> Iterator[Any]:
    with H.counter_map() as m:
        yield m


def _no_syscalls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any perf_event_open/bpf call of the link modules fail the test."""
    def boom(*a: object, **k: object) -> None:
        raise AssertionError("a syscall was made before the inputs were checked")

    monkeypatch.setattr(perf_event, "perf_event_open", boom)
    monkeypatch.setattr(perf_event, "link_create", boom)
    monkeypatch.setattr(perf_event, "ioctl", boom)


def _getppid_n(n: int = N) -> None:
    for _ in range(n):
        os.getppid()


# --- tracepoint ------------------------------------------------------------------------------

def _tp_program(counter: Any, fmt: Any) -> ebpf.Program:
    insns = H.counting_insns(counter, pid=os.getpid(), value=[fmt["__syscall_nr"].load(R7, R6)])
    return H.load(P.TRACEPOINT, insns, name="tp_getppid")


@pytest.mark.parametrize("use_link", [True, False], ids=["bpf_link", "ioctl"])
def test_tracepoint_fires_on_getppid(tracefs: str, counter: Any, use_link: bool,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    if not use_link:  # the fallback for kernels without perf event links, for real
        monkeypatch.setattr(perf_event, "_perf_link_supported", lambda: False)
    fmt = tracepoint_format("syscalls", "sys_enter_getppid")
    with _tp_program(counter, fmt) as prog:
        with attach_tracepoint(prog, "syscalls", "sys_enter_getppid") as link:
            assert isinstance(link, PerfEventLink)
            assert link.uses_bpf_link is use_link
            _getppid_n()
        hits = counter[0]
        assert hits >= N
        nr = counter[1]
        assert nr == H.NR_GETPPID.get(ebpf.platform.ARCH, nr)
        _getppid_n()  # detached: no more hits
        assert counter[0] == hits


def test_tracepoint_link_info_and_cookie(tracefs: str, counter: Any) -> None:
    insns = H.counting_insns(counter, pid=os.getpid(),
                             value=[asm.mov(R6, asm.R1), asm.call(Helper.GET_ATTACH_COOKIE),
                                    asm.mov(R7, R0)])
    with H.load(P.TRACEPOINT, insns) as prog, attach_tracepoint(
            prog, "syscalls", "sys_enter_getppid", cookie=0xC0FFEE) as link:
        _getppid_n(3)
        assert counter[0] >= 3
        assert counter[1] == 0xC0FFEE
        info = link.info()
        assert info.type == ebpf.LinkType.PERF_EVENT
        assert info.prog_id == prog.info().id
        pe = H.perf_info(link)
        if pe is not None:
            assert pe.kind == PerfEventKind.TRACEPOINT
            assert pe.name == "sys_enter_getppid"
            assert pe.cookie == 0xC0FFEE
        assert link.perf_event_fd is not None


def test_tracepoint_pin_outlives_object(tracefs: str, counter: Any, bpffs: str) -> None:
    fmt = tracepoint_format("syscalls", "sys_enter_getppid")
    with _tp_program(counter, fmt) as prog:
        link = attach_tracepoint(prog, "syscalls", "sys_enter_getppid")
        pin = os.path.join(bpffs, "tp")
        link.pin(pin)
        link.close()  # pinned: stays attached
        _getppid_n()
        assert counter[0] >= N
        again = ebpf.link.Link.from_pin(pin)
        assert isinstance(again, PerfEventLink)
        assert again.perf_event_fd is None
        again.unpin()
        again.close()
        before = counter[0]
        _getppid_n()
        assert counter[0] == before


def test_tracepoint_inputs_checked_before_syscalls(tracefs: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    with H.load(P.RAW_TRACEPOINT, H.ret0()) as wrong, H.load(P.TRACEPOINT, H.ret0()) as ok:
        _no_syscalls(monkeypatch)
        with pytest.raises(ValueError, match="expected TRACEPOINT"):
            attach_tracepoint(wrong, "syscalls", "sys_enter_getppid")
        with pytest.raises(SymbolNotFoundError, match="sys_enter_getppidd") as ei:
            attach_tracepoint(ok, "syscalls", "sys_enter_getppidd")
        assert "syscalls/sys_enter_getppid" in ei.value.suggestions
        assert isinstance(ei.value, LookupError)
        with pytest.raises(ValueError, match="invalid tracepoint"):
            attach_tracepoint(ok, "..", "x")
        with pytest.raises(ValueError, match="empty"):
            attach_tracepoint(ok, "syscalls", "")


def test_tracefs_not_mounted_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ebpf.platform, "tracefs_path", lambda mount_if_missing=False: None)
    with pytest.raises(errors.NotSupportedError, match="tracefs is not mounted"):
        tracepoint_id("syscalls", "sys_enter_getppid")


def test_tracepoint_id_matches_format(tracefs: str) -> None:
    fmt = tracepoint_format("sched", "sched_switch")
    assert fmt.id == tracepoint_id("sched", "sched_switch")
    assert fmt["prev_comm"].array_len == 16
    assert fmt["next_pid"].signed


def test_every_tracefs_format_parses(tracefs: str) -> None:
    files = glob.glob(os.path.join(tracefs, "events", "*", "*", "format"))
    assert len(files) > 100
    for path in files:
        try:
            with open(path) as f:
                text = f.read()
        except OSError:  # some events are not readable (permissions, vanished)
            continue
        fmt = parse_format(text)
        names = [fl.name for fl in fmt.fields]
        assert len(names) == len(set(names)), path
        id_file = Path(path).with_name("id")
        if id_file.exists():  # ftrace's own events have a format but no id
            assert fmt.id == int(id_file.read_text())
        common = [fl.name for fl in fmt.fields if fl.common]
        assert common[:1] == ["common_type"], path
        for fl in fmt.fields:
            assert fl.offset >= 0 and fl.size >= 0, (path, fl)


# --- raw tracepoint --------------------------------------------------------------------------

def _raw_tp_program(counter: Any) -> ebpf.Program:
    """Count sys_enter with id == getppid from this process; store the id."""
    nr = H.NR_GETPPID[ebpf.platform.ARCH]
    insns = H.counting_insns(counter, pid=os.getpid(),
                             value=[asm.load(asm.DW, R7, R6, 8)],        # args[1]: long id
                             filter_=[asm.jne(R7, nr, "out")])
    return H.load(P.RAW_TRACEPOINT, insns, name="raw_getppid")


def test_raw_tracepoint_fires_on_getppid(counter: Any) -> None:
    with _raw_tp_program(counter) as prog:
        with attach_raw_tracepoint(prog, "sys_enter") as link:
            assert isinstance(link, RawTracepointLink)
            _getppid_n()
            assert link.info().type == ebpf.LinkType.RAW_TRACEPOINT
            assert link.tracepoint_name() == "sys_enter"
        hits = counter[0]
        assert hits >= N
        _getppid_n()
        assert counter[0] == hits


def test_raw_tracepoint_errors() -> None:
    with H.load(P.RAW_TRACEPOINT, H.ret0()) as prog:
        with pytest.raises(SymbolNotFoundError, match="sys_enterr") as ei:
            attach_raw_tracepoint(prog, "sys_enterr")
        assert "sys_enter" in ei.value.suggestions
        assert isinstance(ei.value.__cause__, OSError)
        assert ei.value.__cause__.errno == errno.ENOENT
        with pytest.raises(ValueError, match="bare name"):
            attach_raw_tracepoint(prog, "syscalls/sys_enter")
    with H.load(P.TRACEPOINT, H.ret0()) as wrong, pytest.raises(
            ValueError, match="expected RAW_TRACEPOINT or RAW_TRACEPOINT_WRITABLE"):
        attach_raw_tracepoint(wrong, "sys_enter")


def test_raw_tracepoint_pinned_and_reopened(counter: Any, bpffs: str) -> None:
    with _raw_tp_program(counter) as prog:
        link = attach_raw_tracepoint(prog, "sys_enter")
        link.pin(os.path.join(bpffs, "raw"))
        link.close()
        again = ebpf.link.Link.from_pin(os.path.join(bpffs, "raw"))
        assert isinstance(again, RawTracepointLink)
        _getppid_n()
        assert counter[0] >= N
        again.unpin()
        again.close()


# --- tp_btf -----------------------------------------------------------------------------------

def _tp_btf_program(counter: Any) -> ebpf.Program:
    nr = H.NR_GETPPID[ebpf.platform.ARCH]
    insns = H.counting_insns(counter, pid=os.getpid(),
                             value=[asm.load(asm.DW, R7, R6, 8)],        # (regs, long id)
                             filter_=[asm.jne(R7, nr, "out")])
    return H.load(P.TRACING, insns, name="tpbtf_getppid",
                  expected_attach_type=A.TRACE_RAW_TP, attach_to="sys_enter")


@pytest.mark.parametrize("path", ["link_create", "raw_tracepoint_open"])
def test_tp_btf_fires_on_getppid(counter: Any, path: str,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from ebpf.link import tracing

    if path == "raw_tracepoint_open":  # the fallback for kernels before 5.13
        def refuse(*a: object, **k: object) -> None:
            raise errors.from_errno("BPF_LINK_CREATE", errno.EINVAL)
        monkeypatch.setattr(tracing, "link_create", refuse)
    with _tp_btf_program(counter) as prog:
        with attach_tracing(prog) as link:
            assert isinstance(link, RawTracepointLink)
            assert link.tracepoint_name() == "sys_enter"
            _getppid_n()
        hits = counter[0]
        assert hits >= N
        assert counter[1] == H.NR_GETPPID[ebpf.platform.ARCH]
        _getppid_n()
        assert counter[0] == hits


def test_tp_btf_cookie(counter: Any) -> None:
    insns = H.counting_insns(counter, pid=os.getpid(),
                             value=[asm.mov(R6, asm.R1), asm.call(Helper.GET_ATTACH_COOKIE),
                                    asm.mov(R7, R0)])
    try:
        prog = H.load(P.TRACING, insns, expected_attach_type=A.TRACE_RAW_TP,
                      attach_to="sys_enter")
    except errors.VerifierError as e:
        if e.errno == errno.EINVAL and "unknown func bpf_get_attach_cookie" in str(e):
            pytest.skip("tp_btf: bpf_get_attach_cookie is unknown to tp_btf programs (EINVAL) "
                        "before 6.10")
        raise
    with prog, attach_tracing(prog, cookie=77):
        _getppid_n(2)
        assert counter[0] >= 2
        assert counter[1] == 77
