"""The syscall layer on the real kernel: maps, programs, introspection, pinning, fds."""

from __future__ import annotations

import ctypes
import errno
import gc
import os

import pytest

import ebpf
from ebpf import errors
from ebpf._sys import commands
from ebpf._sys.fd import FD, open_count
from ebpf._sys.syscall import bpf, bpf_fd, raw_caller
from ebpf._uapi import _generated_types as _t

C = _t.bpf_cmd
RET7 = bytes.fromhex("b707000000000000"[:0] + "b700000007000000" "9500000000000000")


def _hash_map(max_entries: int = 16) -> FD:
    attr = _t.MapCreateAttr()
    attr.map_type = ebpf.MapType.HASH
    attr.key_size, attr.value_size, attr.max_entries = 4, 8, max_entries
    attr.map_name = b"t_hash"
    return bpf_fd(C.BPF_MAP_CREATE, attr)


def _elem(fd: FD, key: ctypes.c_uint32, value: ctypes.c_uint64 | None = None,
          flags: int = 0) -> _t.MapElemAttr:
    attr = _t.MapElemAttr()
    attr.map_fd = fd.fileno()
    attr.key = ctypes.addressof(key)
    if value is not None:
        attr.value = ctypes.addressof(value)
    attr.flags = flags
    return attr


def test_hash_map_through_syscall_layer() -> None:
    with _hash_map() as fd:
        k, v = ctypes.c_uint32(), ctypes.c_uint64()
        for i in range(10):
            k.value, v.value = i, i * i
            bpf(C.BPF_MAP_UPDATE_ELEM, _elem(fd, k, v), keep=(k, v))
        # read
        k.value = 7
        bpf(C.BPF_MAP_LOOKUP_ELEM, _elem(fd, k, v), keep=(k, v))
        assert v.value == 49
        # NOEXIST on an existing key
        with pytest.raises(errors.KeyExistsError):
            bpf(C.BPF_MAP_UPDATE_ELEM, _elem(fd, k, v, _t.BPF_NOEXIST), keep=(k, v))
        # iterate with GET_NEXT_KEY
        seen = set()
        nk = ctypes.c_uint32()
        attr = _t.MapElemAttr()
        attr.map_fd = fd.fileno()
        attr.key = 0  # NULL: first key
        attr.next_key = ctypes.addressof(nk)
        while True:
            try:
                bpf(C.BPF_MAP_GET_NEXT_KEY, attr, keep=(k, nk))
            except KeyError:
                break
            seen.add(nk.value)
            k.value = nk.value
            attr.key = ctypes.addressof(k)
        assert seen == set(range(10))
        # delete, then a miss is a KeyError that is also an OSError(ENOENT)
        k.value = 3
        bpf(C.BPF_MAP_DELETE_ELEM, _elem(fd, k), keep=k)
        with pytest.raises(KeyError) as exc:
            bpf(C.BPF_MAP_LOOKUP_ELEM, _elem(fd, k, v), keep=(k, v))
        assert isinstance(exc.value, OSError) and exc.value.errno == errno.ENOENT
        assert str(exc.value).startswith("BPF_MAP_LOOKUP_ELEM")


def test_raw_caller_fast_path() -> None:
    with _hash_map() as fd:
        k, v = ctypes.c_uint32(1), ctypes.c_uint64(42)
        bpf(C.BPF_MAP_UPDATE_ELEM, _elem(fd, k, v))
        out = ctypes.c_uint64()
        attr = _elem(fd, k, out)
        lookup = raw_caller(C.BPF_MAP_LOOKUP_ELEM, attr)
        assert lookup() == 0 and out.value == 42
        k.value = 2
        with pytest.raises(errors.KeyNotFoundError):
            lookup()


def test_trivial_program_runs() -> None:
    with ebpf.Program.load(ebpf.ProgramType.SOCKET_FILTER, RET7, name="ret7") as prog:
        res = prog.test_run(data=bytes(64), repeat=10)
        assert res.retval == 7
        info = prog.info()
        assert info.name == "ret7" and info.type is ebpf.ProgramType.SOCKET_FILTER
        assert info.xlated_prog_len == len(RET7)
        assert prog.xlated() == RET7
        assert info.id in set(commands.iter_ids(commands.ObjKind.PROG))
        with ebpf.Program.from_id(info.id) as again:
            assert again.info().tag == info.tag


def test_verifier_error_is_readable() -> None:
    bad = bytes.fromhex("7920000000000000" "9500000000000000")  # r0 = *(u64 *)(r2 + 0)
    with pytest.raises(ebpf.VerifierError) as exc:
        ebpf.Program.load(ebpf.ProgramType.SOCKET_FILTER, bad, log_size=64)
    e = exc.value
    assert e.insn == 0
    assert "R2 !read_ok" in str(e) and "0: (79)" in str(e)
    assert e.log[-1].startswith("processed"), "log must be complete (buffer grown on ENOSPC)"
    assert e.errno == errno.EACCES and isinstance(e, OSError)


def test_info_of_map_and_btf_objects() -> None:
    with _hash_map(max_entries=33) as fd:
        info = commands.obj_info(fd.fileno(), _t.BpfMapInfo())
        assert (info.type, info.key_size, info.value_size, info.max_entries) == (
            ebpf.MapType.HASH, 4, 8, 33)
        assert bytes(info.name).rstrip(b"\0") == b"t_hash"
        assert info.id in set(commands.iter_ids(commands.ObjKind.MAP))
        with commands.fd_by_id(commands.ObjKind.MAP, info.id) as fd2:
            assert commands.obj_info(fd2.fileno(), _t.BpfMapInfo()).id == info.id
    # The kernel's own BTF object (vmlinux) is always there with id 1 or so.
    btf_ids = list(commands.iter_ids(commands.ObjKind.BTF))
    assert btf_ids
    with commands.fd_by_id(commands.ObjKind.BTF, btf_ids[0]) as bfd:
        binfo = commands.obj_info(bfd.fileno(), _t.BpfBtfInfo())
        assert binfo.id == btf_ids[0] and binfo.btf_size > 0


def test_missing_id_is_enoent() -> None:
    with pytest.raises(errors.SyscallError) as exc:
        commands.fd_by_id(commands.ObjKind.MAP, 0x7FFFFFF0)
    assert exc.value.errno == errno.ENOENT


def test_pin_and_open_pinned(bpffs: str) -> None:
    path = os.path.join(bpffs, "prog")
    with ebpf.Program.load(ebpf.ProgramType.SOCKET_FILTER, RET7, name="pinned") as prog:
        prog.pin(path)
        with pytest.raises(errors.SyscallError) as exc:
            prog.pin(path)
        assert exc.value.errno == errno.EEXIST
    with ebpf.Program.from_pin(path) as again:
        assert again.name == "pinned" and again.test_run(data=bytes(20)).retval == 7
    os.unlink(path)
    with pytest.raises(errors.SyscallError):
        ebpf.Program.from_pin(path)


def test_enable_stats_counts_runs() -> None:
    with ebpf.Program.load(ebpf.ProgramType.SOCKET_FILTER, RET7) as prog:
        with commands.enable_stats(_t.bpf_stats_type.BPF_STATS_RUN_TIME):
            prog.test_run(data=bytes(20), repeat=1000)
        assert prog.info().run_cnt == 1000


def _process_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_map_create_close_cycles_leak_nothing() -> None:
    gc.collect()
    before, owned = _process_fds(), open_count()
    for _ in range(10_000):
        _hash_map(1).close()
    gc.collect()
    assert _process_fds() == before
    assert open_count() == owned


def test_forgotten_fd_is_closed_with_resource_warning() -> None:
    fd = _hash_map(1)
    raw = fd.fileno()
    with pytest.warns(ResourceWarning, match="unclosed"):
        del fd
        gc.collect()
    with pytest.raises(OSError):
        os.fstat(raw)


def test_fd_close_is_idempotent() -> None:
    fd = _hash_map(1)
    fd.close()
    fd.close()
    assert fd.closed
    with pytest.raises(ValueError):
        fd.fileno()


def test_eperm_is_explained_without_capabilities() -> None:
    """In a child with every capability dropped, a map create fails with a hint naming why."""
    import shutil
    import subprocess
    import sys

    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) not installed")
    code = (
        "import ebpf, sys\n"
        "try:\n"
        "    ebpf.Map.create(ebpf.MapType.ARRAY, key_size=4, value_size=4, max_entries=1)\n"
        "except PermissionError as e:\n"
        "    print(type(e).__name__, e.errno, e.hint); sys.exit(0)\n"
        "sys.exit(3)\n"
    )
    r = subprocess.run([setpriv, "--bounding-set", "-all", "--inh-caps", "-all",
                        sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("BPFPermissionError 1 ")
    assert "CAP_BPF" in r.stdout and "CapEff=0x0" in r.stdout
