"""kprobes, kretprobes and kprobe_multi.

This machine kind has no ``CONFIG_KPROBES`` (no kprobe PMU, no ``kprobe_events``) and no
``CONFIG_FPROBE`` (kprobe_multi gives ``EOPNOTSUPP``). The tests build everything, go as far
as the kernel lets them, and skip only on those exact errnos, so a kernel that has kprobes
runs them in full.
"""

from __future__ import annotations

import ctypes
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ebpf
from ebpf import asm, errors
from ebpf._elfsym import SymbolNotFoundError
from ebpf.asm import R7
from ebpf.link import kprobe, perf_event
from ebpf.link.kprobe import KprobeMultiLink, attach_kprobe, attach_kprobe_multi
from ebpf.link.perf_event import PerfEventKind, PerfEventLink, pt_regs_return_offset
from ebpf.testing.modules import import_file

H = import_file(Path(__file__).with_name("_trace_link_factories.py"))
P = ebpf.ProgramType
A = ebpf.AttachType
FUNC = "do_unlinkat"
N = 5


@pytest.fixture(scope="module")
def tracefs() -> Iterator[str]:
    with H.tracefs_mounted() as path:
        yield path


@pytest.fixture
def counter() -> Iterator[Any]:
    with H.counter_map() as m:
        yield m


def _unlink_n(n: int = N) -> None:
    with tempfile.TemporaryDirectory() as d:
        for i in range(n):
            p = os.path.join(d, f"f{i}")
            Path(p).touch()
            os.unlink(p)


def _attach_or_skip(prog: ebpf.Program, **kw: Any) -> PerfEventLink:
    """attach_kprobe, skipping only when the kernel has no kprobe interface at all (ENOENT)."""
    try:
        return attach_kprobe(prog, FUNC, **kw)
    except errors.NotSupportedError as e:
        cause = e.__cause__
        if isinstance(cause, OSError) and cause.errno == errno.ENOENT:
            pytest.skip(f"kprobes unavailable (ENOENT): {e}")
        raise


def test_kprobe_counts_unlinks(tracefs: str, counter: Any) -> None:
    with H.load(P.KPROBE, H.counting_insns(counter, pid=os.getpid())) as prog, \
            _attach_or_skip(prog) as link:
        _unlink_n()
        assert counter[0] >= N
        pe = H.perf_info(link)
        assert pe is None or pe.kind == PerfEventKind.KPROBE


def test_kretprobe_sees_return_value(tracefs: str, counter: Any) -> None:
    insns = H.counting_insns(counter, pid=os.getpid(),
                             value=[asm.load(asm.DW, R7, asm.R6, pt_regs_return_offset())])
    with H.load(P.KPROBE, insns) as prog, _attach_or_skip(prog, retprobe=True):
        _unlink_n()
        assert counter[0] >= N
        assert counter[1] == 0  # do_unlinkat succeeded


def test_kprobe_pmu_request_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a kprobe PMU present, the perf_event_attr names the function, offset and flavour."""
    seen: list[tuple[int, int, bytes, int, int, int]] = []

    def fake_pmu_type(name: str) -> int:
        assert name == "kprobe"
        return 4242

    def fake_open(attr: Any, pid: int, cpu: int, group_fd: int = -1, flags: int = 0) -> Any:
        func = ctypes.string_at(attr.kprobe_func) if attr.kprobe_func else b""
        seen.append((attr.type, attr.config, func, attr.probe_offset, pid, cpu))
        raise errors.from_errno("perf_event_open", errno.ENOENT)

    monkeypatch.setattr(kprobe, "pmu_type", fake_pmu_type)
    monkeypatch.setattr(kprobe, "pmu_config_bit", lambda pmu, field: (0, 0))
    monkeypatch.setattr(perf_event, "perf_event_open", fake_open)
    with H.load(P.KPROBE, H.ret0()) as prog:
        for retprobe in (False, True):
            with pytest.raises(errors.SyscallError) as ei:
                attach_kprobe(prog, FUNC, offset=4, retprobe=retprobe)
            assert ei.value.errno == errno.ENOENT
    assert seen == [(4242, 0, FUNC.encode(), 4, -1, 0), (4242, 1, FUNC.encode(), 4, -1, 0)]


def test_kprobe_events_request_is_built(tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a kprobe PMU: the kprobe_events line, the event's id, and its removal."""
    lines: list[str] = []

    def no_pmu(name: str) -> int:
        raise FileNotFoundError(errno.ENOENT, "no such PMU", name)

    def write(path: str, line: str) -> None:
        assert path == str(tmp_path / "kprobe_events")
        lines.append(line)
        if not line.startswith("-:"):
            group_event = line.split(maxsplit=1)[0].split(":", 1)[1]
            (tmp_path / "events" / group_event).mkdir(parents=True)
            (tmp_path / "events" / group_event / "id").write_text("4321\n")

    opened: list[int] = []

    def fake_tracepoint_event(tp_id: int, **kw: Any) -> Any:
        opened.append(tp_id)
        raise errors.from_errno("perf_event_open", errno.ENOENT)

    monkeypatch.setattr(kprobe, "pmu_type", no_pmu)
    monkeypatch.setattr(perf_event, "_write_control", write)
    monkeypatch.setattr(perf_event, "tracefs_root", lambda tracefs=None: str(tmp_path))
    monkeypatch.setattr(kprobe, "tracepoint_event", fake_tracepoint_event)
    with H.load(P.KPROBE, H.ret0()) as prog:
        for retprobe in (False, True):
            with pytest.raises(errors.SyscallError):
                attach_kprobe(prog, FUNC, offset=8, retprobe=retprobe)
    assert opened == [4321, 4321]
    add_p, del_p, add_r, del_r = lines
    assert add_p.startswith(f"p:ebpf/ebpf_{os.getpid()}_") and add_p.endswith(f" {FUNC}+8")
    assert add_r.startswith("r:ebpf/") and add_r.endswith(f" {FUNC}+8")
    assert del_p == "-:" + add_p.split()[0][2:] and del_r == "-:" + add_r.split()[0][2:]


def test_kprobe_without_any_interface_names_the_cause(tracefs: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def no_pmu(name: str) -> int:
        raise FileNotFoundError(errno.ENOENT, "no such PMU", name)

    monkeypatch.setattr(kprobe, "pmu_type", no_pmu)
    control = os.path.join(tracefs, "kprobe_events")
    with H.load(P.KPROBE, H.ret0()) as prog:
        if os.path.exists(control):
            with attach_kprobe(prog, FUNC) as link:  # the tracefs path works here
                assert link._event is not None
            return
        with pytest.raises(errors.NotSupportedError, match="no kprobe PMU") as ei:
            attach_kprobe(prog, FUNC)
        assert isinstance(ei.value.__cause__, FileNotFoundError)
        assert ei.value.__cause__.errno == errno.ENOENT
        assert "kprobe_events" in str(ei.value)


def test_kprobe_inputs_checked_first(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*a: object, **k: object) -> None:
        raise AssertionError("syscall before the inputs were checked")

    monkeypatch.setattr(kprobe, "pmu_type", boom)
    monkeypatch.setattr(kprobe, "link_create", boom)
    with H.load(P.KPROBE, H.ret0()) as prog, H.load(P.TRACEPOINT, H.ret0()) as wrong, \
            H.load(P.KPROBE, H.ret0(), expected_attach_type=A.TRACE_KPROBE_MULTI) as multi:
        with pytest.raises(ValueError, match="expected KPROBE"):
            attach_kprobe(wrong, FUNC)
        with pytest.raises(ValueError, match="expected none"):
            attach_kprobe(multi, FUNC)
        with pytest.raises(SymbolNotFoundError, match="kernel symbol 'do_unlinkatt'") as ei:
            attach_kprobe(prog, "do_unlinkatt")
        assert FUNC in ei.value.suggestions
        with pytest.raises(ValueError, match="one of them"):
            attach_kprobe(prog)
        with pytest.raises(ValueError, match="TRACE_KPROBE_MULTI"):
            attach_kprobe_multi(prog, [FUNC])
        with pytest.raises(SymbolNotFoundError, match="no_such_fn_xyz"):
            attach_kprobe_multi(multi, [FUNC, "no_such_fn_xyz"])
        with pytest.raises(ValueError, match="cookies"):
            attach_kprobe_multi(multi, [FUNC], cookies=[1, 2])


@pytest.mark.parametrize("retprobe", [False, True])
def test_kprobe_multi(counter: Any, retprobe: bool) -> None:
    insns = H.counting_insns(counter, pid=os.getpid())
    with H.load(P.KPROBE, insns, expected_attach_type=A.TRACE_KPROBE_MULTI) as prog:
        try:
            link = attach_kprobe_multi(prog, [FUNC, "do_rmdir"], cookies=[1, 2],
                                       retprobe=retprobe)
        except errors.SyscallError as e:
            if e.errno == errno.EOPNOTSUPP:
                pytest.skip("kprobe_multi: BPF_LINK_CREATE gives EOPNOTSUPP "
                            "(kernel without CONFIG_FPROBE)")
            raise
        with link:
            assert isinstance(link, KprobeMultiLink)
            _unlink_n()
            assert counter[0] >= N
            info = link.kprobe_info()
            assert info.count == 2 and info.retprobe is retprobe
