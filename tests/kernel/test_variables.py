"""Global variables read and written through element lookups (data maps without
``BPF_F_MMAPABLE``), including maps whose value is a single 8-byte variable: the map's
codec decodes such a value as an ``int``, which ``Variable`` must not mistake for bytes
(``get()`` returned 0 for an 8-byte ``.rodata`` variable)."""

from __future__ import annotations

import shutil
import subprocess
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

import ebpf
from ebpf._collection import Collection
from ebpf._spec import CollectionSpec
from ebpf._sys.fd import open_count

CLANG = shutil.which("clang-19")
MMAPABLE = 0x400

pytestmark = [
    pytest.mark.skipif(CLANG is None, reason="clang-19 not installed"),
    pytest.mark.capabilities(ebpf.platform.Capability.BPF, ebpf.platform.Capability.NET_ADMIN),
]

SOURCE = r"""
#include <linux/bpf.h>
#define SEC(n) __attribute__((section(n), used))
const volatile __u64 big = 0x1122334455667788ULL;   /* .rodata: one 8-byte variable */
__u64 out;                                          /* .bss: one 8-byte variable */
SEC("xdp") int read_ro(struct xdp_md *ctx) { out = big + 1; return XDP_PASS; }
char LICENSE[] SEC("license") = "GPL";
"""


@pytest.fixture(scope="module")
def obj(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("vars")
    (out / "ro8.c").write_text(SOURCE)
    arch = sysconfig.get_config_var("MULTIARCH")
    inc = [f"-I/usr/include/{arch}"] if arch else []
    assert CLANG is not None
    subprocess.run([CLANG, "-O2", "-g", "-target", "bpf", *inc, "-c", str(out / "ro8.c"),
                    "-o", str(out / "ro8.o")], check=True)
    return out / "ro8.o"


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    before = open_count()
    yield
    assert open_count() == before, "the test left BPF fds open"


@pytest.mark.parametrize("mmapable", [True, False], ids=["mmap", "lookup"])
def test_8_byte_variables(obj: Path, mmapable: bool) -> None:
    spec = CollectionSpec.from_file(obj)
    assert spec.maps[".rodata"].value_size == 8 and spec.maps[".bss"].value_size == 8
    if not mmapable:
        spec = spec.with_map(".rodata", flags=spec.maps[".rodata"].flags & ~MMAPABLE)
        spec = spec.with_map(".bss", flags=spec.maps[".bss"].flags & ~MMAPABLE)
    spec = spec.set_variables(big=0x0102030405060708)
    with Collection.load(spec) as coll:
        assert bool(coll.maps[".rodata"].flags & MMAPABLE) is mmapable
        big, out = coll.variables["big"], coll.variables["out"]
        assert big.get() == 0x0102030405060708
        assert big.raw() == (0x0102030405060708).to_bytes(8, "little")
        assert coll.programs["read_ro"].test_run(bytes(64)).retval == 2  # XDP_PASS
        assert out.get() == 0x0102030405060709                       # written by the program
        out.set(2**64 - 5)
        assert out.get() == 2**64 - 5
        assert coll.maps[".bss"][0] == 2**64 - 5                        # what the kernel holds
        with pytest.raises(PermissionError):
            big.set(1)
