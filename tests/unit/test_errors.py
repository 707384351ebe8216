"""The exception tree: every error is the builtin a caller expects."""

from __future__ import annotations

import errno
import pickle

import pytest

from ebpf import errors


def test_lookup_miss_is_keyerror_and_oserror() -> None:
    e = errors.from_errno("BPF_MAP_LOOKUP_ELEM", errno.ENOENT)
    assert isinstance(e, errors.KeyNotFoundError)
    assert isinstance(e, KeyError) and isinstance(e, OSError)
    assert e.errno == errno.ENOENT
    assert str(e) == "BPF_MAP_LOOKUP_ELEM: No such file or directory"


def test_enoent_elsewhere_is_not_keyerror() -> None:
    e = errors.from_errno("BPF_OBJ_GET", errno.ENOENT)
    assert not isinstance(e, KeyError)
    assert isinstance(e, FileNotFoundError) or e.errno == errno.ENOENT


@pytest.mark.parametrize("code", [errno.EPERM, errno.EACCES])
def test_permission(code: int) -> None:
    e = errors.from_errno("BPF_PROG_LOAD", code)
    assert isinstance(e, PermissionError)
    assert "CAP_BPF" in str(e)


def test_enotsupp_is_named() -> None:
    e = errors.from_errno("BPF_PROG_TEST_RUN", errors.ENOTSUPP)
    assert e.errno == 524
    assert "ENOTSUPP" in str(e)
    assert errors.errno_name(524) == "ENOTSUPP"


def test_exists_and_busy() -> None:
    assert isinstance(errors.from_errno("BPF_MAP_UPDATE_ELEM", errno.EEXIST), errors.KeyExistsError)
    assert isinstance(errors.from_errno("BPF_LINK_CREATE", errno.EBUSY), errors.BusyError)


def test_errors_pickle() -> None:
    e = errors.from_errno("BPF_MAP_LOOKUP_ELEM", errno.ENOENT)
    e2 = pickle.loads(pickle.dumps(e))
    assert type(e2) is type(e) and e2.errno == e.errno and e2.cmd == e.cmd


def test_verifier_summary_names_instruction() -> None:
    log = (
        "func#0 @0\n0: R1=ctx() R10=fp0\n0: (b7) r0 = 0                        ; R0_w=0\n"
        "1: (79) r1 = *(u64 *)(r2 +0)\nR2 !read_ok\nprocessed 2 insns (limit 1000000) "
        "max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0\n"
    )
    e = errors.VerifierError("BPF_PROG_LOAD", errno.EACCES, log.encode() + b"\0\0garbage")
    assert e.insn == 1
    assert "1: (79) r1 = *(u64 *)(r2 +0): R2 !read_ok" in str(e)
    assert e.log[-1].startswith("processed 2 insns")
    assert e.format(tail=1) == e.log[-1]
    assert isinstance(e, OSError) and e.errno == errno.EACCES


def test_not_supported() -> None:
    e = errors.NotSupportedError("BPF_MAP_TYPE_RINGBUF", "5.8")
    assert str(e) == "BPF_MAP_TYPE_RINGBUF not supported (requires >= 5.8)"


def test_parse_error_offset() -> None:
    e = errors.ParseError("bad magic", 0)
    assert isinstance(e, ValueError)
    assert str(e) == "bad magic (at offset 0x0)"
