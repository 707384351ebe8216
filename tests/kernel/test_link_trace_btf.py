"""fentry, fexit, fmod_ret, LSM and freplace.

This machine kind refuses to *load* these programs (``BPF_PROG_LOAD`` gives ``EPERM`` with an
empty log). Each test builds the program completely, loads it, and skips only on that exact
errno; on a kernel that loads them, it attaches and checks that the program runs.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ebpf
from ebpf import asm, errors
from ebpf._sys.fd import FD
from ebpf._sys.syscall import bpf_fd
from ebpf._uapi import _generated_types as _t
from ebpf.asm import R7
from ebpf.link.raw_tracepoint import RawTracepointLink
from ebpf.link.tracing import TracingLink, attach_tracing
from ebpf.testing.modules import import_file

H = import_file(Path(__file__).with_name("_trace_link_factories.py"))
P = ebpf.ProgramType
A = ebpf.AttachType


@pytest.fixture
def counter() -> Iterator[Any]:
    with H.counter_map() as m:
        yield m


def _load_or_skip(what: str, prog_type: P, insns: Any, **kw: Any) -> ebpf.Program:
    """Load, skipping only on the EPERM this machine kind answers for these types."""
    try:
        return H.load(prog_type, insns, **kw)
    except errors.SyscallError as e:
        if e.errno == errno.EPERM:
            pytest.skip(f"{what}: {e.cmd} refused with EPERM on this kernel")
        raise


def test_fentry_sees_argument(counter: Any) -> None:
    insns = H.counting_insns(counter, pid=os.getpid(), value=[asm.load(asm.DW, R7, asm.R6, 0)])
    with _load_or_skip("fentry", P.TRACING, insns, expected_attach_type=A.TRACE_FENTRY,
                       attach_to="bpf_fentry_test1") as prog, attach_tracing(prog) as link:
        assert isinstance(link, TracingLink)
        assert link.target().attach_type == A.TRACE_FENTRY
        prog.test_run(repeat=0)  # calls bpf_fentry_test1(1) and its friends
        assert counter[0] >= 1
        assert counter[1] == 1


def test_fexit_sees_return_value(counter: Any) -> None:
    # fexit context: the arguments, then the return value (int a -> a + 1).
    insns = H.counting_insns(counter, pid=os.getpid(), value=[asm.load(asm.DW, R7, asm.R6, 8)])
    with _load_or_skip("fexit", P.TRACING, insns, expected_attach_type=A.TRACE_FEXIT,
                       attach_to="bpf_fentry_test1") as prog, attach_tracing(prog):
        prog.test_run(repeat=0)
        assert counter[0] >= 1
        assert counter[1] & 0xFFFFFFFF == 2


def test_fmod_ret_replaces_the_return_value() -> None:
    insns = [asm.mov(asm.R0, 7), asm.exit()]
    try:
        prog = _load_or_skip("fmod_ret", P.TRACING, insns, expected_attach_type=A.MODIFY_RETURN,
                             attach_to="bpf_modify_return_test")
    except errors.VerifierError as e:
        # Only functions on the error-injection list (or security_*) may have their return
        # replaced; bpf_modify_return_test is on it only with CONFIG_FUNCTION_ERROR_INJECTION.
        if e.errno == errno.EINVAL and "is not modifiable" in str(e):
            pytest.skip("fmod_ret: bpf_modify_return_test() is not modifiable (EINVAL): "
                        "kernel without CONFIG_FUNCTION_ERROR_INJECTION")
        raise
    # From Linux 6.2 the test run also calls bpf_modify_return_test2(1, &b, 3, 4, 5, 6, 7)
    # (not attached here: b becomes 3, so it returns 1 + 3 + 3 + 4 + 5 + 6 + 7 = 29) and
    # adds its result to ours.
    from ebpf import btf

    try:
        btf.load_kernel().find("bpf_modify_return_test2", kind=btf.Func)
        second = 29
    except KeyError:
        second = 0
    with prog, attach_tracing(prog):
        res = prog.test_run(repeat=0)
        # bpf_modify_return_test was skipped (side effect 1 << 16) and returned 7.
        assert res.retval == (1 << 16) | (7 + second)


def test_fmod_ret_on_a_security_hook_denies_the_call() -> None:
    """fmod_ret on ``security_task_getsid`` (security_* functions are always modifiable):
    getsid(2) of this process fails with the errno the program returns, only while attached."""
    pid = os.getpid()
    insns = [
        asm.mov(R7, 0),
        asm.call(asm.Helper.GET_CURRENT_PID_TGID), asm.rsh(asm.R0, 32),
        asm.jne(asm.R0, pid, "out"),
        asm.mov(R7, -errno.EACCES),
        asm.label("out"), asm.mov(asm.R0, R7), asm.exit(),
    ]
    with _load_or_skip("fmod_ret", P.TRACING, insns, expected_attach_type=A.MODIFY_RETURN,
                       attach_to="security_task_getsid") as prog:
        sid = os.getsid(pid)  # getsid(0) skips the hook: ask for this process by pid
        with attach_tracing(prog) as link:
            assert link.target().attach_type == A.MODIFY_RETURN
            with pytest.raises(PermissionError) as ei:
                os.getsid(pid)
            assert ei.value.errno == errno.EACCES
        assert os.getsid(pid) == sid


def test_lsm_file_open_runs(counter: Any, tmp_path: Path) -> None:
    insns = H.counting_insns(counter, pid=os.getpid(), ret=0)  # 0: allow
    with _load_or_skip("LSM", P.LSM, insns, expected_attach_type=A.LSM_MAC,
                       attach_to="file_open") as prog, attach_tracing(prog) as link:
        assert isinstance(link, TracingLink)
        for _ in range(3):
            (tmp_path / "f").write_text("x")
        assert counter[0] >= 3


# --- freplace -----------------------------------------------------------------------------------

def _btf_blob() -> tuple[bytes, int]:
    """BTF for ``int xdp_main(struct xdp_md *ctx)``; returns (blob, FUNC type id)."""
    strings = b"\0int\0xdp_md\0ctx\0xdp_main\0"
    off = {s: strings.index(s.encode() + b"\0") for s in ("int", "xdp_md", "ctx", "xdp_main")}
    types = b"".join([
        struct.pack("<III", off["int"], 1 << 24, 4), struct.pack("<I", (1 << 24) | 32),  # 1 INT
        struct.pack("<III", off["xdp_md"], 4 << 24, 24),                             # 2 STRUCT
        struct.pack("<III", 0, 2 << 24, 2),                                          # 3 PTR
        struct.pack("<III", 0, (13 << 24) | 1, 1), struct.pack("<II", off["ctx"], 3),  # 4 PROTO
        struct.pack("<III", off["xdp_main"], (12 << 24) | 1, 4),                     # 5 FUNC
    ])
    header = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings))
    return header + types + strings, 5


def _btf_load(blob: bytes) -> FD:
    buf = ctypes.create_string_buffer(blob, len(blob))
    attr = _t.BtfLoadAttr()
    attr.btf = ctypes.addressof(buf)
    attr.btf_size = len(blob)
    return bpf_fd(_t.bpf_cmd.BPF_BTF_LOAD, attr, keep=buf, what="BTF")


def test_freplace_replaces_a_program_function() -> None:
    blob, func_id = _btf_blob()
    func_info = struct.pack("<II", 0, func_id)
    with _btf_load(blob) as btf_fd:
        target = H.load(P.XDP, [asm.mov(asm.R0, 2), asm.exit()], name="xdp_main",  # XDP_PASS
                        prog_btf_fd=btf_fd.fileno(), func_info=func_info, func_info_rec_size=8)
        with target:
            packet = bytes(64)
            assert target.test_run(packet).retval == 2
            with _load_or_skip("freplace", P.EXT, [asm.mov(asm.R0, 1), asm.exit()],  # XDP_DROP
                               prog_btf_fd=btf_fd.fileno(), func_info=func_info,
                               func_info_rec_size=8, attach_prog_fd=target.fileno(),
                               attach_btf_id=func_id) as ext:
                with attach_tracing(ext) as link:
                    assert isinstance(link, TracingLink)
                    assert target.test_run(packet).retval == 1
                assert target.test_run(packet).retval == 2


def _btf_blob_with_subprog() -> tuple[bytes, int, int]:
    """BTF for ``int xdp_main(struct xdp_md *ctx)`` calling the global function
    ``int scale(int x)``; returns (blob, main's FUNC id, scale's FUNC id)."""
    names = ("int", "xdp_md", "ctx", "xdp_main", "x", "scale")
    strings = b"\0" + b"".join(n.encode() + b"\0" for n in names)
    off = {n: strings.index(b"\0" + n.encode() + b"\0") + 1 for n in names}
    types = b"".join([
        struct.pack("<III", off["int"], 1 << 24, 4), struct.pack("<I", (1 << 24) | 32),  # 1 INT
        struct.pack("<III", off["xdp_md"], 4 << 24, 24),                             # 2 STRUCT
        struct.pack("<III", 0, 2 << 24, 2),                                          # 3 PTR
        struct.pack("<III", 0, (13 << 24) | 1, 1), struct.pack("<II", off["ctx"], 3),  # 4 PROTO
        struct.pack("<III", off["xdp_main"], (12 << 24) | 1, 4),                     # 5 FUNC
        struct.pack("<III", 0, (13 << 24) | 1, 1), struct.pack("<II", off["x"], 1),    # 6 PROTO
        struct.pack("<III", off["scale"], (12 << 24) | 1, 6),                        # 7 FUNC
    ])
    header = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings))
    return header + types + strings, 5, 7


def test_freplace_replaces_a_global_subprogram() -> None:
    """libbpf's freplace use: an XDP program calls a global (separately verified) function,
    an EXT program loaded against that function's BTF id replaces it while linked."""
    blob, main_id, scale_id = _btf_blob_with_subprog()
    target_insns = [
        asm.mov(asm.R1, 5), asm.call("scale"), asm.exit(),       # return scale(5)
        asm.label("scale"), asm.mov(asm.R0, asm.R1), asm.add(asm.R0, 1), asm.exit(),
    ]
    func_info = struct.pack("<IIII", 0, main_id, 3, scale_id)
    with _btf_load(blob) as btf_fd:
        target = H.load(P.XDP, target_insns, name="xdp_main", prog_btf_fd=btf_fd.fileno(),
                        func_info=func_info, func_info_rec_size=8)
        with target:
            packet = bytes(64)
            assert target.test_run(packet).retval == 6
            replacement = [asm.mov(asm.R0, asm.R1), asm.mul(asm.R0, 10), asm.exit()]
            with _load_or_skip("freplace", P.EXT, replacement, prog_btf_fd=btf_fd.fileno(),
                               func_info=struct.pack("<II", 0, scale_id),
                               func_info_rec_size=8, attach_prog_fd=target.fileno(),
                               attach_btf_id=scale_id) as ext:
                with attach_tracing(ext) as link:
                    assert isinstance(link, TracingLink)
                    assert target.test_run(packet).retval == 50   # scale(5) = 5 * 10
                    info = link.info()
                    assert info.prog_id == ext.id
                assert target.test_run(packet).retval == 6


# --- inputs -------------------------------------------------------------------------------------

def test_attach_tracing_checks_inputs() -> None:
    with H.load(P.TRACING, H.ret0(), expected_attach_type=A.TRACE_ITER,
                attach_to="task") as it, H.load(P.KPROBE, H.ret0()) as kp, H.load(
            P.TRACING, H.ret0(), expected_attach_type=A.TRACE_RAW_TP,
            attach_to="sys_enter") as tp:
        with pytest.raises(ValueError, match="attach_iter"):
            attach_tracing(it)
        with pytest.raises(ValueError, match="expected TRACING, LSM or EXT"):
            attach_tracing(kp)
        with pytest.raises(ValueError, match="only freplace"):
            attach_tracing(tp, target=kp, target_btf_id=5)
        with pytest.raises(ValueError, match="both"):
            attach_tracing(tp, target_btf_id=5)
        with attach_tracing(tp) as link:  # and the valid one attaches
            assert isinstance(link, RawTracepointLink)


def test_attach_tracing_adopted_program(counter: Any) -> None:
    """A program reopened from its id (expected attach type unknown) still attaches."""
    with H.load(P.TRACING, H.ret0(), expected_attach_type=A.TRACE_RAW_TP,
                attach_to="sys_enter") as tp, ebpf.Program.from_id(tp.info().id) as again, \
            attach_tracing(again) as link:
        assert isinstance(link, RawTracepointLink)
