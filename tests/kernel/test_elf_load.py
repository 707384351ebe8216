"""clang-19 objects loaded and run for real: BTF maps and global data, subprograms and a
bpf_loop callback, CO-RE against the running kernel's BTF, a kfunc extern, map-in-map,
program arrays and pinning. Every test checks that it leaves no fd open."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sysconfig
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import ebpf
from ebpf import btf
from ebpf._collection import Collection, relocate
from ebpf._collection import load as load_object
from ebpf._spec import CollectionSpec, ReferenceKind
from ebpf._sys.fd import open_count

SRC = Path(__file__).resolve().parents[1] / "testdata" / "elf"
CLANG = shutil.which("clang-19")
BPFTOOL = shutil.which("bpftool")

pytestmark = [
    pytest.mark.skipif(CLANG is None, reason="clang-19 not installed"),
    pytest.mark.capabilities(ebpf.platform.Capability.BPF, ebpf.platform.Capability.NET_ADMIN),
]

FRAME = bytes(64)


@pytest.fixture(scope="module")
def obj(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("elf")
    arch = sysconfig.get_config_var("MULTIARCH")
    inc = [f"-I/usr/include/{arch}"] if arch else []
    if BPFTOOL is not None and Path("/sys/kernel/btf/vmlinux").exists():
        (out / "vmlinux.h").write_bytes(subprocess.run(
            [BPFTOOL, "btf", "dump", "file", "/sys/kernel/btf/vmlinux", "format", "c"],
            check=True, capture_output=True).stdout)
    paths: dict[str, Path] = {}
    assert CLANG is not None
    for name in ("globals", "subprog", "maps", "core", "kfunc"):
        if name in ("core", "kfunc") and not (out / "vmlinux.h").exists():
            continue
        o = out / f"{name}.o"
        subprocess.run([CLANG, "-O2", "-g", "-target", "bpf", "-mcpu=v3", *inc, f"-I{out}",
                        "-c", str(SRC / f"{name}.c"), "-o", str(o)], check=True)
        paths[name] = o
    return paths


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    before = open_count()
    yield
    assert open_count() == before, "the test left BPF fds open"


def _need(obj: dict[str, Path], name: str) -> Path:
    if name not in obj:
        pytest.skip("vmlinux.h could not be generated (bpftool or kernel BTF missing)")
    return obj[name]


def test_xdp_and_socket_filter_with_maps_and_globals(obj: dict[str, Path]) -> None:
    spec = CollectionSpec.from_file(obj["globals"]).set_variables(verdict=1, key_base=1000)
    with Collection.load(spec) as coll:
        assert coll.btf_error is None
        xdp = coll.programs["count_xdp"]
        coll.variables["packets"].set(100)      # written through the mmap'd .bss
        for _ in range(3):
            assert xdp.test_run(FRAME).retval == 1        # XDP_DROP from .rodata
        assert coll.maps["counts"][1000 + len(FRAME)] == 3
        v = coll.variables
        assert v["packets"].get() == 103
        assert v["bytes_seen"].get() == 3 * len(FRAME)
        assert v["generation"].get() == 10                 # .data started at 7
        assert v["verdict"].get() == 1 and v["key_base"].get() == 1000
        with pytest.raises(PermissionError):
            v["verdict"].set(2)
        with pytest.raises(ebpf.errors.SyscallError):      # .rodata is frozen
            coll.maps[".rodata"][0] = bytes(8)
        assert coll.programs["drop_all"].test_run(FRAME).retval == 1
        assert coll.programs["sock_len"].test_run(FRAME).retval == 0
        assert coll.maps["legacy_like"][1] == len(FRAME) - 14   # skb->len after eth pull
        info = xdp.info()
        assert info.btf_id != 0                           # func/line info were accepted
        assert coll.maps["counts"].id in info.map_ids


def test_map_references_hold_the_map_fds(obj: dict[str, Path]) -> None:
    spec = CollectionSpec.from_file(obj["globals"])
    with Collection.load(spec) as coll:
        ps = spec.programs["count_xdp"]
        code = relocate(spec, ps, coll.maps, None)
        seen = 0
        for r in ps.references:
            op, regs, _off, imm = struct.unpack_from("<BBhi", code, r.index * 8)
            _op2, _r2, _o2, imm2 = struct.unpack_from("<BBhi", code, r.index * 8 + 8)
            assert op == 0x18 and imm == coll.maps[r.name].fileno()
            if r.kind is ReferenceKind.MAP:
                assert (regs >> 4, imm2) == (1, 0)           # BPF_PSEUDO_MAP_FD
            else:
                assert (regs >> 4, imm2) == (2, r.offset)    # BPF_PSEUDO_MAP_VALUE
            seen += 1
        assert seen == len(ps.references) >= 7
        # The unpatched spec still says 0 there: loading is what fills them in.
        assert struct.unpack_from("<i", ps.instructions, ps.references[0].index * 8 + 4)[0] \
            == 0


def test_subprograms_and_bpf_loop_callback(obj: dict[str, Path]) -> None:
    with load_object(obj["subprog"]) as coll:
        assert coll.programs["calls"].test_run(FRAME).retval == 2
        # bpf_loop(10, cb) sums 0..9; triple(add_sq(1, 2)) == 15
        assert coll.variables["result"].get() == 45 * 1000 + 15
        coll.variables["loops"].set(5)
        coll.programs["calls"].test_run(FRAME)
        assert coll.variables["result"].get() == 10 * 1000 + 15


def test_core_against_kernel_btf(obj: dict[str, Path]) -> None:
    kbtf = btf.load_kernel()
    skb = kbtf.find("__sk_buff", btf.Struct)
    with load_object(_need(obj, "core")) as coll:
        assert coll.programs["core_skb"].test_run(FRAME).retval == 0
        out = struct.unpack("<8Q", coll.variables["out"].raw())
        assert out[0] == skb.member("len").byte_offset
        # The local __sk_buff___local put `protocol` at 0; the kernel's offset was applied.
        assert out[1] == skb.member("protocol").byte_offset != 0
        assert out[2] == 0                       # a field the kernel does not have
        assert out[3] == 1
        assert out[4] == kbtf.sizeof(skb.member("cb").type)
        assert out[5] == kbtf.find("task_struct", btf.Struct).size
        assert out[6] == len(FRAME) - 14         # l->len read at the relocated offset
        assert out[7] == kbtf.find("bpf_map_type", btf.Enum).value("BPF_MAP_TYPE_RINGBUF")
        # BPF_CORE_READ through bpf_probe_read_kernel at relocated task_struct offsets.
        seen: dict[str, int] = {}

        def run() -> None:
            coll.programs["core_task"].test_run(ctx=bytes(16))
            seen["pid"] = int(coll.variables["pid_seen"].get())
            seen["tgid"] = int(coll.variables["tgid_seen"].get())
            seen["tid"] = threading.get_native_id()

        t = threading.Thread(target=run)
        t.start()
        t.join()
        assert seen["pid"] == seen["tid"] != os.getpid()
        assert seen["tgid"] == os.getpid()


def test_kfunc_extern(obj: dict[str, Path]) -> None:
    spec = CollectionSpec.from_file(_need(obj, "kfunc"))
    kbtf = btf.load_kernel()
    try:
        kbtf.find("bpf_cast_to_kern_ctx", btf.Func)
    except KeyError:
        k = ebpf.platform.kernel_version()
        kv = f"{k.major}.{k.minor}"
        pytest.skip(f"kfunc 'bpf_cast_to_kern_ctx' not supported: not in kernel BTF on {kv} "
                    "(added in 6.2)")
    with Collection.load(spec, kernel_btf=kbtf) as coll:
        assert coll.btf_error is None
        assert coll.programs["kern_ctx"].test_run(FRAME).retval == 2
        assert coll.variables["ifindex_seen"].get() == 1      # test_run runs on lo
        ps = spec.programs["kern_ctx"]
        code = relocate(spec, ps, coll.maps, kbtf)
        ref = next(r for r in ps.references if r.kind is ReferenceKind.KFUNC)
        op, regs, _off, imm = struct.unpack_from("<BBhi", code, ref.index * 8)
        assert (op, regs >> 4) == (0x85, 2)                     # BPF_PSEUDO_KFUNC_CALL
        assert imm == kbtf.find("bpf_cast_to_kern_ctx", btf.Func).id


def test_map_in_map_prog_array_and_pinning(obj: dict[str, Path], bpffs: str) -> None:
    spec = CollectionSpec.from_file(obj["maps"])
    with Collection.load(spec, pin_path=bpffs) as coll:
        assert coll.programs["entry"].test_run(FRAME).retval == 3   # XDP_TX via tail call
        with coll.maps["outer"].open_map(1) as inner:
            assert inner[0] == 42
        assert coll.maps["inner_a"][0] == 42
        assert coll.maps["pinned_counts"][0] == 1
        coll.maps["pinned_counts"][0] = 7
    assert os.path.exists(os.path.join(bpffs, "pinned_counts"))
    with Collection.load(spec, pin_path=bpffs) as again:          # the pin is reused
        assert again.maps["pinned_counts"][0] == 7
    os.unlink(os.path.join(bpffs, "pinned_counts"))
    with pytest.raises(ValueError, match="pin_path"):
        Collection.load(spec)


def test_failed_load_closes_everything(obj: dict[str, Path]) -> None:
    spec = CollectionSpec.from_file(obj["globals"])
    exit_only = b"\x95" + bytes(7)                          # exit with R0 never written
    bad = spec.programs["sock_len"].replace(instructions=exit_only, references=(),
                                            func_info=(), line_info=())
    with pytest.raises(ebpf.VerifierError, match="R0 !read_ok"):
        Collection.load(spec.replace(programs={**spec.programs, "sock_len": bad}))
