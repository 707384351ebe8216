"""Hostile inputs beyond issue 14's list: fd numbers handed to the library (adopted with
``from_fd``, put in ``fd_array``, given as a cgroup or netns fd) get a library error naming the
argument before any syscall, instead of ``OverflowError`` from ``os.dup`` or a silent
truncation of ``2**32`` to fd 0 (stdin); and an object whose program sits in a section of no
known type is refused by ``Collection.load`` with the library's error, leaving nothing open."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import ebpf
from ebpf import AttachType, MapType, ProgramType, asm
from ebpf._maps import Map
from ebpf.asm import R0
from ebpf.errors import BPFError, InvalidArgumentError, ObjectKindError
from ebpf.link import Link, attach_cgroup, attach_sk_lookup

RET2 = [asm.mov(R0, 2), asm.exit()]
RET1 = [asm.mov(R0, 1), asm.exit()]


def _fds() -> tuple[int, set[str]]:
    return ebpf._sys.fd.open_count(), set(os.listdir("/proc/self/fd"))


@pytest.fixture
def pipe() -> Iterator[int]:
    r, w = os.pipe()
    yield r
    os.close(r)
    os.close(w)


ADOPTERS: list[tuple[str, Callable[[int], object]]] = [
    ("Map", Map.from_fd), ("Program", ebpf.Program.from_fd), ("Link", Link.from_fd)]


@pytest.mark.parametrize(("kind", "adopt"), ADOPTERS, ids=[k for k, _ in ADOPTERS])
@pytest.mark.parametrize("bad", [-1, 2**31, 2**40, 2**64 + 3, True, "3", 3.0])
def test_from_fd_number_out_of_range(kind: str, adopt: Callable[[object], object],
                                     bad: object) -> None:
    """``Link.from_fd(2**40)`` raised a bare ``OverflowError`` from ``os.dup``."""
    before = _fds()
    with pytest.raises(InvalidArgumentError) as e:
        adopt(bad)
    assert e.value.field == "fd"
    assert _fds() == before


@pytest.mark.parametrize(("kind", "adopt"), ADOPTERS, ids=[k for k, _ in ADOPTERS])
def test_from_fd_of_a_pipe_or_file_or_closed_number(kind: str, adopt: Callable[[int], object],
                                                    pipe: int, tmp_path: Path) -> None:
    before = _fds()
    with pytest.raises(ObjectKindError, match=f"fd {pipe}|not a BPF object"):
        adopt(pipe)
    with open(tmp_path / "f", "w") as f, pytest.raises(ObjectKindError, match="not a BPF"):
        adopt(f.fileno())
    closed = os.dup(pipe)
    os.close(closed)
    with pytest.raises(OSError) as e:  # EBADF from dup, before any bpf() call
        adopt(closed)
    assert e.value.errno == 9
    assert _fds() == before


@pytest.mark.parametrize("bad", [2**32, 2**32 + 1, -1, 2**63])
def test_fd_array_entries_are_range_checked(bad: int) -> None:
    """``fd_array=[2**32]`` was stored in a ``c_int32`` array as 0: the kernel read stdin's
    fd as the program's first map/BTF fd."""
    with Map.create(MapType.ARRAY, key_size=4, value_size=4, max_entries=1) as m:
        with pytest.raises(InvalidArgumentError) as e:
            ebpf.Program.load(ProgramType.XDP, RET2, fd_array=[m.fileno(), bad])
        assert e.value.field == "fd_array[1]"
        with ebpf.Program.load(ProgramType.XDP, RET2, fd_array=[m.fileno()]) as p:
            assert p.test_run(bytes(64)).retval == 2


def test_cgroup_and_netns_fd_out_of_range() -> None:
    before = _fds()
    with ebpf.Program.load(ProgramType.CGROUP_SKB, RET1,
                           expected_attach_type=AttachType.CGROUP_INET_INGRESS) as cg:
        for bad in (2**40, -1):
            with pytest.raises(InvalidArgumentError, match="cgroup"):
                attach_cgroup(cg, bad)
    with ebpf.Program.load(ProgramType.SK_LOOKUP, RET1,
                           expected_attach_type=AttachType.SK_LOOKUP) as sk:
        for bad in (2**40, -1):
            with pytest.raises(InvalidArgumentError, match="netns"):
                attach_sk_lookup(sk, bad)
    assert _fds() == before


CLANG = shutil.which("clang-19")


@pytest.mark.skipif(CLANG is None, reason="clang-19 not installed")
def test_unknown_section_is_refused_before_the_kernel(tmp_path: Path) -> None:
    """A real object whose program is in ``SEC("no_such_type")``: it parses (libbpf also
    opens it), and the load names the program, the section and the fix."""
    s = tmp_path / "odd.s"
    s.write_text("""
        .section "no_such_type","ax"
        .globl odd
        .type odd,@function
odd:
        r0 = 0
        exit
        .size odd, 16
""")
    o = tmp_path / "odd.o"
    assert CLANG is not None
    subprocess.run([CLANG, "-target", "bpf", "-c", str(s), "-o", str(o)], check=True)
    spec = ebpf.CollectionSpec.from_file(o)
    assert int(spec.programs["odd"].type) == 0
    before = _fds()
    with pytest.raises(BPFError, match=r"'odd' in section 'no_such_type'.*with_program") as e:
        ebpf.Collection.load(spec)
    assert not isinstance(e.value, ebpf.errors.SyscallError)
    assert _fds() == before
    fixed = spec.with_program("odd", type=ProgramType.SOCKET_FILTER)
    with ebpf.Collection.load(fixed) as coll:
        assert coll.programs["odd"].test_run(bytes(64)).retval == 0
