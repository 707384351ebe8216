"""Tracepoint format parsing, and the ABI constants of the tracing link modules.

Formats are real ones copied from a 6.18 kernel's tracefs (``events/*/*/format``). Kernel ABI
layouts defined by hand in the link modules are checked against the pinned vmlinux BTF.
"""

from __future__ import annotations

import contextlib
import ctypes
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ebpf import asm, btf, errors
from ebpf.link import perf_event
from ebpf.link.iter import IterLinkInfoUnion
from ebpf.link.perf_event import pt_regs_arg_offset, pt_regs_offset, pt_regs_return_offset
from ebpf.link.tracepoint import TracepointField, parse_format

OPENAT = """\
name: sys_enter_openat
ID: 782
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;
\tfield:int dfd;\toffset:16;\tsize:8;\tsigned:0;
\tfield:const char * filename;\toffset:24;\tsize:8;\tsigned:0;
\tfield:int flags;\toffset:32;\tsize:8;\tsigned:0;
\tfield:umode_t mode;\toffset:40;\tsize:8;\tsigned:0;

print fmt: "dfd: 0x%08lx, filename: 0x%08lx", ((unsigned long)(REC->dfd)), \
((unsigned long)(REC->filename))
"""

EXEC = """\
name: sched_process_exec
ID: 365
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:__data_loc char[] filename;\toffset:8;\tsize:4;\tsigned:0;
\tfield:pid_t pid;\toffset:12;\tsize:4;\tsigned:1;
\tfield:pid_t old_pid;\toffset:16;\tsize:4;\tsigned:1;

print fmt: "filename=%s pid=%d old_pid=%d", __get_str(filename), REC->pid, REC->old_pid
"""

SWITCH_AND_ODDITIES = """\
name: odd
ID: 9
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;

\tfield:char prev_comm[16];\toffset:8;\tsize:16;\tsigned:0;
\tfield:unsigned long args[6];\toffset:24;\tsize:48;\tsigned:0;
\tfield:char buf[];\toffset:72;\tsize:0;\tsigned:0;
\tfield:char name[TASK_COMM_LEN];\toffset:72;\tsize:16;\tsigned:0;
\tfield:__rel_loc u8[] data;\toffset:88;\tsize:4;\tsigned:0;
\tfield:struct foo * ptr;\toffset:96;\tsize:8;

print fmt: ""
"""


def test_syscall_format() -> None:
    fmt = parse_format(OPENAT, category="syscalls")
    assert (fmt.name, fmt.id, fmt.category) == ("sys_enter_openat", 782, "syscalls")
    assert [f.name for f in fmt.fields if f.common] == [
        "common_type", "common_flags", "common_preempt_count", "common_pid"]
    assert [f.name for f in fmt.event_fields] == [
        "__syscall_nr", "dfd", "filename", "flags", "mode"]
    fn = fmt["filename"]
    assert (fn.type, fn.offset, fn.size, fn.signed) == ("const char *", 24, 8, False)
    assert fmt["common_pid"].signed
    assert "mode" in fmt and "nope" not in fmt
    assert fmt.size == 48
    assert fmt.print_fmt.startswith('"dfd: 0x%08lx')
    with pytest.raises(KeyError, match="did you mean 'flags'"):
        fmt["flag"]


def test_field_load_builds_the_context_access() -> None:
    fmt = parse_format(OPENAT)
    assert fmt["flags"].load(asm.R2) == asm.load(asm.DW, asm.R2, asm.R1, 32)
    assert fmt["__syscall_nr"].load(asm.R3, asm.R6) == asm.load(asm.W, asm.R3, asm.R6, 8)
    assert fmt["common_type"].load(asm.R0) == asm.load(asm.H, asm.R0, asm.R1, 0)


def test_dynamic_and_array_fields() -> None:
    exe = parse_format(EXEC)
    fn = exe["filename"]
    assert (fn.dynamic, fn.type, fn.is_array, fn.array_len, fn.size) == (
        "__data_loc", "char", True, None, 4)
    assert fn.load(asm.R2) == asm.load(asm.W, asm.R2, asm.R1, 8)  # the u32 locator
    odd = parse_format(SWITCH_AND_ODDITIES)
    assert odd["prev_comm"] == TracepointField("prev_comm", "char", 8, 16, False, 16, True)
    assert odd["args"].array_len == 6 and odd["args"].type == "unsigned long"
    assert odd["buf"].is_array and odd["buf"].array_len is None and odd["buf"].size == 0
    assert odd["name"].is_array and odd["name"].array_len is None  # symbolic length
    assert odd["data"].dynamic == "__rel_loc" and odd["data"].type == "u8"
    assert odd["ptr"].type == "struct foo *" and not odd["ptr"].signed  # no signed: field
    with pytest.raises(ValueError, match="not a scalar"):
        odd["prev_comm"].load(asm.R1)


@pytest.mark.parametrize("text,match", [
    ("hello world\n", "not a tracepoint format"),
    ("name: x\nformat:\n\tfield:int a;\toffset:0;\n", "bad field line"),
    ("name: x\nID: zz\n", "bad ID line"),
    ("name: x\nformat:\n", "no ID line"),
    ("name: x\nID: 1\nformat:\n\tfield:;\toffset:0;\tsize:4;\tsigned:0;\n", "declaration"),
])
def test_malformed_formats(text: str, match: str) -> None:
    with pytest.raises(errors.ParseError, match=match):
        parse_format(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_fuzz_parse_format(text: str) -> None:
    with contextlib.suppress(errors.ParseError):
        parse_format(text)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(OPENAT)), st.text(max_size=20))
def test_fuzz_edited_format(pos: int, insert: str) -> None:
    with contextlib.suppress(errors.ParseError):
        parse_format(OPENAT[:pos] + insert + OPENAT[pos:])


# --- ABI checks against the pinned vmlinux BTF ---------------------------------------------------

PINNED = Path(__file__).parent.parent / "testdata" / "vmlinux.btf.gz"


@pytest.fixture(scope="module")
def spec() -> btf.Spec:
    return btf.Spec.from_file(PINNED)


def test_iter_link_info_layout(spec: btf.Spec) -> None:
    u = spec.find("bpf_iter_link_info", kind=btf.Union)
    assert ctypes.sizeof(IterLinkInfoUnion) == spec.sizeof(u)
    for arm, names in (("map", ("map_fd",)), ("cgroup", ("order", "cgroup_fd", "cgroup_id")),
                       ("task", ("tid", "pid", "pid_fd"))):
        struct_t = spec.resolve(u.member(arm).type)
        ours = getattr(IterLinkInfoUnion, arm)
        assert ours.offset == 0
        ours_t = dict(IterLinkInfoUnion._fields_)[arm]  # generated: also via test_uapi
        for name in names:
            m = struct_t.member(name)
            assert getattr(ours_t, name).offset == m.offset // 8, (arm, name)


def test_x86_64_pt_regs_offsets(spec: btf.Spec) -> None:
    """The pinned BTF is an x86-64 kernel's: its struct pt_regs must match our table."""
    regs = spec.find("pt_regs", kind=btf.Struct)
    for name in ("di", "si", "dx", "cx", "r8", "r9", "ax", "sp", "ip", "bp", "orig_ax"):
        assert pt_regs_offset(name, "x86_64") == regs.member(name).offset // 8, name
    assert pt_regs_offset("%rdi", "x86_64") == pt_regs_offset("edi", "x86_64")
    assert pt_regs_offset("r8d", "x86_64") == regs.member("r8").offset // 8
    assert pt_regs_offset("rip", "x86_64") == regs.member("ip").offset // 8
    assert pt_regs_arg_offset(0, "x86_64") == regs.member("di").offset // 8
    assert pt_regs_return_offset("x86_64") == regs.member("ax").offset // 8


def test_pt_regs_other_architectures() -> None:
    assert pt_regs_arg_offset(0, "aarch64") == 0
    assert pt_regs_offset("w3", "aarch64") == 24
    assert pt_regs_offset("sp", "aarch64") == 248
    assert pt_regs_return_offset("riscv64") == 80  # a0
    assert pt_regs_offset("s0", "riscv64") == pt_regs_offset("fp", "riscv64")
    with pytest.raises(ValueError, match="not passed in a register"):
        pt_regs_arg_offset(6, "x86_64")
    with pytest.raises(ValueError, match="unknown register"):
        pt_regs_offset("xmm0", "x86_64")
    with pytest.raises(errors.NotSupportedError):
        pt_regs_offset("r1", "s390x")


def test_perf_ioctl_numbers() -> None:
    if perf_event.platform.ARCH not in ("x86_64", "aarch64", "riscv64"):
        pytest.skip("encoding checked for the asm-generic ioctl layout only")
    assert perf_event.PERF_EVENT_IOC_ENABLE == 0x2400
    assert perf_event.PERF_EVENT_IOC_DISABLE == 0x2401
    assert perf_event.PERF_EVENT_IOC_SET_BPF == 0x40042408
