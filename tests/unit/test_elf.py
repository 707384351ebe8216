"""ELF loader on clang-19 objects (both byte orders), the SEC() table, CO-RE against the pinned
vmlinux BTF, and corrupt/fuzzed input (ParseError or success, nothing else)."""

from __future__ import annotations

import contextlib
import shutil
import struct
import subprocess
import sysconfig
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ebpf
from ebpf import btf
from ebpf._spec import CollectionSpec, PinType, ReferenceKind
from ebpf.btf.core import apply_relocations
from ebpf.elf import ELFFile, load_collection_spec, match_section
from ebpf.elf.reader import SectionType
from ebpf.errors import ParseError

SRC = Path(__file__).resolve().parents[1] / "testdata" / "elf"
VMLINUX_BTF = Path(__file__).resolve().parents[1] / "testdata" / "vmlinux.btf.gz"
CLANG = shutil.which("clang-19")
BPFTOOL = shutil.which("bpftool")

pytestmark = pytest.mark.skipif(CLANG is None, reason="clang-19 not installed")


def _multiarch() -> list[str]:
    arch = sysconfig.get_config_var("MULTIARCH")
    return [f"-I/usr/include/{arch}"] if arch else []


@pytest.fixture(scope="module")
def objects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """globals/subprog/maps for bpfel and bpfeb (``-eb`` suffix); core/kfunc need vmlinux.h
    (generated from the pinned BTF's kernel: any vmlinux.h works for parsing)."""
    out = tmp_path_factory.mktemp("elf")
    inc = _multiarch()
    if BPFTOOL is not None:
        src = "/sys/kernel/btf/vmlinux" if Path("/sys/kernel/btf/vmlinux").exists() else None
        if src is not None:
            (out / "vmlinux.h").write_bytes(subprocess.run(
                [BPFTOOL, "btf", "dump", "file", src, "format", "c"], check=True,
                capture_output=True).stdout)
    objs: dict[str, bytes] = {}
    assert CLANG is not None
    for name in ("globals", "subprog", "maps", "core", "kfunc"):
        for target, suffix in (("bpfel", ""), ("bpfeb", "-eb")):
            if name in ("core", "kfunc") and (suffix or not (out / "vmlinux.h").exists()):
                continue
            o = out / f"{name}{suffix}.o"
            subprocess.run([CLANG, "-O2", "-g", "-target", target, "-mcpu=v3", *inc,
                            f"-I{out}", "-c", str(SRC / f"{name}.c"), "-o", str(o)],
                           check=True)
            objs[name + suffix] = o.read_bytes()
    return objs


# --- the loader ------------------------------------------------------------------------------

def test_globals_spec(objects: dict[str, bytes]) -> None:
    spec = load_collection_spec(objects["globals"])
    assert set(spec.programs) == {"count_xdp", "drop_all", "sock_len"}
    xdp = spec.programs["count_xdp"]
    assert xdp.type is ebpf.ProgramType.XDP and xdp.attach_type is ebpf.AttachType.XDP
    assert xdp.section == "xdp" and xdp.license == "GPL"
    assert spec.programs["drop_all"].section == "xdp"   # two programs in one section
    assert spec.programs["sock_len"].type is ebpf.ProgramType.SOCKET_FILTER
    counts = spec.maps["counts"]
    assert (counts.type, counts.key_size, counts.value_size, counts.max_entries) == (
        ebpf.MapType.HASH, 4, 8, 16)
    assert counts.btf_key_type_id and counts.btf_value_type_id
    ro = spec.maps[".rodata"]
    assert ro.freeze and ro.flags & 0x80 and ro.flags & 0x400  # RDONLY_PROG | MMAPABLE
    assert spec.maps[".data"].contents == ((0, struct.pack("<I", 7)),)
    assert spec.maps[".bss"].value_size == 16
    v = spec.variables["key_base"]
    assert (v.map, v.offset, v.size) == (".rodata", 4, 4)
    kinds = {(r.kind, r.name) for r in xdp.references}
    assert (ReferenceKind.MAP, "counts") in kinds
    assert (ReferenceKind.MAP_VALUE, ".bss") in kinds
    offs = {r.offset for r in xdp.references if r.name == ".bss"}
    assert offs == {0, 8}                                 # packets, bytes_seen
    for r in xdp.references:                              # every ref sits on an ld_imm64
        assert xdp.instructions[r.index * 8] == 0x18
    # func/line info are per program instruction indexes, starting at the entry.
    assert xdp.func_info[0][0] == 0 and xdp.line_info


def test_set_variables(objects: dict[str, bytes]) -> None:
    spec = load_collection_spec(objects["globals"])
    new = spec.set_variables(verdict=1, key_base=0x01020304)
    data = new.maps[".rodata"].contents[0][1]
    assert isinstance(data, bytes)
    assert struct.unpack("<II", data[:8]) == (1, 0x01020304)
    assert spec.maps[".rodata"].contents[0][1][:4] == struct.pack("<I", 2)  # original intact
    with pytest.raises(KeyError):
        spec.set_variables(nope=1)
    with pytest.raises(ValueError, match="4 bytes"):
        spec.set_variables(verdict=b"\0")


def test_parse_is_deterministic(objects: dict[str, bytes]) -> None:
    assert load_collection_spec(objects["globals"]) == load_collection_spec(objects["globals"])
    assert CollectionSpec.from_bytes(objects["maps"]) == load_collection_spec(objects["maps"])


@pytest.mark.parametrize("name", ["globals", "subprog", "maps"])
def test_big_endian_object_gives_the_same_spec(objects: dict[str, bytes], name: str) -> None:
    le = load_collection_spec(objects[name])
    be = load_collection_spec(objects[name + "-eb"])
    assert be.byteorder == ">" and le.byteorder == "<"
    assert le.maps.keys() == be.maps.keys()
    for k in le.maps:
        a, b = le.maps[k], be.maps[k]
        assert (a.type, a.key_size, a.value_size, a.max_entries, a.flags) == (
            b.type, b.key_size, b.value_size, b.max_entries, b.flags)
    for k, p in le.programs.items():
        q = be.programs[k]
        assert (p.type, p.insn_count, p.references, p.func_info) == (
            q.type, q.insn_count, q.references, q.func_info)


def test_subprograms_are_linked(objects: dict[str, bytes]) -> None:
    spec = load_collection_spec(objects["subprog"])
    assert set(spec.programs) == {"calls"}        # .text functions are not programs
    p = spec.programs["calls"]
    code = p.instructions
    starts = [i for i, _ in p.func_info]
    assert starts[0] == 0 and len(starts) == 4    # calls + loop_cb + add_sq + triple
    targets = set()
    for i in range(p.insn_count):
        op, regs, _off, imm = struct.unpack_from("<BBhi", code, i * 8)
        if op == 0x85 and regs >> 4 == 1:         # bpf-to-bpf call
            targets.add(i + imm + 1)
        if op == 0x18 and regs >> 4 == 4:         # BPF_PSEUDO_FUNC (bpf_loop callback)
            targets.add(i + imm + 1)
    assert targets == set(starts[1:])


def test_map_in_map_and_prog_array_specs(objects: dict[str, bytes]) -> None:
    spec = load_collection_spec(objects["maps"])
    outer = spec.maps["outer"]
    assert outer.type is ebpf.MapType.ARRAY_OF_MAPS and outer.value_size == 4
    assert outer.inner is not None and outer.inner.type is ebpf.MapType.ARRAY
    assert outer.contents == ((1, "inner_a"),)
    assert spec.maps["jumps"].contents == ((2, "tail_target"),)
    assert spec.maps["pinned_counts"].pinning is PinType.BY_NAME


def test_btf_blob_is_fixed_for_the_kernel(objects: dict[str, bytes]) -> None:
    spec = load_collection_spec(objects["globals"])
    assert spec.btf_blob is not None
    fixed = btf.Spec.from_bytes(spec.btf_blob)
    secs = {t.name: t for t in fixed.types(btf.DataSec)}
    assert secs[".bss"].size == 16 and secs[".rodata"].size == 8
    assert [v.offset for v in secs[".rodata"].vars] == [0, 4]
    assert len(fixed) == len(spec.btf) if spec.btf is not None else False


def test_kfunc_extern(objects: dict[str, bytes]) -> None:
    if "kfunc" not in objects:
        pytest.skip("no vmlinux.h (bpftool or /sys/kernel/btf/vmlinux missing)")
    spec = load_collection_spec(objects["kfunc"])
    p = spec.programs["kern_ctx"]
    assert (ReferenceKind.KFUNC, "bpf_cast_to_kern_ctx") in {(r.kind, r.name)
                                                             for r in p.references}
    assert spec.btf_blob is not None
    fixed = btf.Spec.from_bytes(spec.btf_blob)
    ksyms = fixed.find(".ksyms", btf.DataSec)
    assert ksyms.size > 0 and all(isinstance(v.type, btf.Var) for v in ksyms.vars)


def test_core_relocations_against_pinned_vmlinux(objects: dict[str, bytes]) -> None:
    if "core" not in objects:
        pytest.skip("no vmlinux.h (bpftool or /sys/kernel/btf/vmlinux missing)")
    spec = load_collection_spec(objects["core"])
    assert spec.btf is not None
    target = btf.Spec.from_file(VMLINUX_BTF)
    p = spec.programs["core_skb"]
    code = bytearray(p.instructions)
    results = apply_relocations(code, p.core_relos, spec.btf, target)
    skb = target.find("__sk_buff", btf.Struct)
    by_access = {(r.access, r.kind): res for (_, r), res in zip(p.core_relos, results,
                                                                 strict=True)}
    assert by_access[("0:0", 0)].value == skb.member("protocol").byte_offset or \
        by_access[("0:0", 0)].value == skb.member("len").byte_offset
    assert by_access[("0:2", 2)].value == 0           # does_not_exist
    assert by_access[("0:1", 2)].value == 1
    assert by_access[("0:12", 1)].value == target.sizeof(skb.member("cb").type)
    task = target.find("task_struct", btf.Struct)
    assert by_access[("0", 9)].value == task.size
    # The local struct put `protocol` first; the kernel's offset was written in.
    i = next(i for i, r in p.core_relos if r.access == "0:0" and
             spec.btf is not None and spec.btf[r.type_id].name == "__sk_buff___local")
    assert struct.unpack_from("<i", code, i * 8 + 4)[0] == skb.member("protocol").byte_offset
    # No target BTF: offsets are poisoned (call 0xbad2310), existence reads 0.
    code2 = bytearray(p.instructions)
    apply_relocations(code2, p.core_relos, spec.btf, None)
    assert struct.unpack_from("<Bxhi", code2, i * 8) == (0x85, 0, 0xBAD2310)


# --- the SEC() table ---------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "ptype", "atype", "target"), [
    ("xdp", "XDP", "XDP", None),
    ("xdp.frags", "XDP", "XDP", None),
    ("xdp/devmap", "XDP", "XDP_DEVMAP", None),
    ("socket", "SOCKET_FILTER", None, None),
    ("tc/ingress", "SCHED_CLS", "TCX_INGRESS", None),
    ("tc", "SCHED_CLS", None, None),
    ("kprobe/do_unlinkat", "KPROBE", None, "do_unlinkat"),
    ("tracepoint/syscalls/sys_enter_execve", "TRACEPOINT", None, "syscalls/sys_enter_execve"),
    ("tp_btf/sched_switch", "TRACING", "TRACE_RAW_TP", "sched_switch"),
    ("fentry.s/do_sys_open", "TRACING", "TRACE_FENTRY", "do_sys_open"),
    ("lsm/file_open", "LSM", "LSM_MAC", "file_open"),
    ("iter/task", "TRACING", "TRACE_ITER", "task"),
    ("cgroup/connect4", "CGROUP_SOCK_ADDR", "CGROUP_INET4_CONNECT", None),
    ("cgroup_skb/egress", "CGROUP_SKB", "CGROUP_INET_EGRESS", None),
    ("sk_skb/stream_verdict", "SK_SKB", "SK_SKB_STREAM_VERDICT", None),
    ("raw_tp/sys_enter", "RAW_TRACEPOINT", None, "sys_enter"),
    ("uprobe.multi/libc:malloc", "KPROBE", "TRACE_UPROBE_MULTI", "libc:malloc"),
])
def test_section_names(name: str, ptype: str, atype: str | None, target: str | None) -> None:
    m = match_section(name)
    assert m is not None
    d, tgt = m
    assert d.prog_type == ebpf.ProgramType[ptype]
    assert d.attach_type == (ebpf.AttachType[atype] if atype else None)
    assert tgt == target


def test_unknown_section_is_not_a_program_type() -> None:
    assert match_section("xdpfoo") is None and match_section("my_section") is None


# --- the reader and corrupt input ----------------------------------------------------------------

def test_reader_sections_symbols_relocations(objects: dict[str, bytes]) -> None:
    for key in ("globals", "globals-eb"):
        elf = ELFFile(objects[key])
        assert elf.bits == 64 and elf.machine == 247
        assert (elf.header.type, elf.header.machine, elf.segments) == (1, 247, ())
        names = {s.name for s in elf.sections}
        assert {"xdp", "socket", ".maps", ".bss", ".BTF", ".BTF.ext", "license"} <= names
        rel = elf.section(".relxdp")
        assert rel.type == SectionType.REL
        syms = elf.symbols()
        assert "counts" in {syms[r.symbol].name for r in elf.relocations(rel)}


@pytest.mark.parametrize(("data", "match"), [
    (b"", "magic"),
    (b"\x7fELF", "magic"),
    (b"\x7fELF\x03\x01" + bytes(58), "class"),
    (b"\x7fELF\x02\x03" + bytes(58), "encoding"),
    (b"\x7fELF\x02\x01" + bytes(10), "truncated"),
])
def test_corrupt_headers(data: bytes, match: str) -> None:
    with pytest.raises(ParseError, match=match):
        load_collection_spec(data)


def test_not_bpf_machine(objects: dict[str, bytes]) -> None:
    data = bytearray(objects["globals"])
    struct.pack_into("<H", data, 18, 62)  # EM_X86_64
    with pytest.raises(ParseError, match="not a BPF object"):
        load_collection_spec(bytes(data))


def test_truncations_raise_parse_error(objects: dict[str, bytes]) -> None:
    data = objects["globals"]
    for n in range(0, len(data), max(1, len(data) // 400)):
        with contextlib.suppress(ParseError):
            load_collection_spec(data[:n])


def test_fuzzed_objects_raise_parse_error_or_load(objects: dict[str, bytes]) -> None:
    data = objects["subprog"]
    elf = ELFFile(data)
    # Bias mutations toward the interesting parts: headers, symbols, relocations, BTF.
    hot = [(0, 64)] + [(s.offset, s.size) for s in elf.sections
                       if s.type in (SectionType.SYMTAB, SectionType.REL)
                       or s.name in (".BTF", ".BTF.ext", ".maps")]
    hot.append((elf.data.find(b"\0", 0), 0))

    @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.tuples(st.integers(0, len(hot) - 1), st.integers(0, 1 << 20),
                              st.integers(0, 255)), min_size=1, max_size=6))
    def run(muts: list[tuple[int, int, int]]) -> None:
        buf = bytearray(data)
        for region, pos, val in muts:
            start, size = hot[region]
            at = (start + pos % max(size, 1)) if size else pos % len(buf)
            buf[min(at, len(buf) - 1)] = val
        with contextlib.suppress(ParseError):
            load_collection_spec(bytes(buf))

    run()


def test_fixup_and_linking_run_at_first_read(objects: dict[str, bytes]) -> None:
    """The BTF fix-up, the variables and each program's linking are deferred to their first
    read (as libbpf does them at load), once; replace() keeps them deferred; the values are
    the same."""
    from ebpf._spec import _BLOB_SLOT, _DEFERRED_SLOTS, _Deferred
    from ebpf._spec_types import _LINK_SLOTS, _Unlinked

    var_slot = _DEFERRED_SLOTS["variables"]
    spec = load_collection_spec(objects["globals"])
    assert type(var_slot.__get__(spec)) is _Deferred
    copy = spec.replace(byteorder=spec.byteorder)
    assert type(var_slot.__get__(copy)) is _Deferred
    variables = spec.variables
    assert set(variables) >= {"packets", "verdict"} and spec.variables is variables
    assert copy.variables == variables and copy == spec

    spec = load_collection_spec(objects["subprog"])
    assert type(_BLOB_SLOT.__get__(spec)) is _Deferred
    progs = list(spec.programs.values())
    assert progs and all(type(_LINK_SLOTS[0].__get__(p)) is _Unlinked for p in progs)
    copy = spec.replace(byteorder=spec.byteorder).with_program(progs[0].name, autoload=False)
    assert type(_BLOB_SLOT.__get__(copy)) is _Deferred
    assert type(_LINK_SLOTS[0].__get__(copy.programs[progs[0].name])) is _Unlinked
    blob = spec.btf_blob
    assert isinstance(blob, bytes) and spec.btf_blob is blob and copy.btf_blob == blob
    first = progs[0]
    insns = first.instructions  # links: every linked field is filled at once
    assert all(type(s.__get__(first)) is not _Unlinked for s in _LINK_SLOTS)
    assert first.instructions is insns and len(insns) % 8 == 0 and first.func_info
    again = load_collection_spec(objects["subprog"])
    assert again.programs == spec.programs and again == spec
    changed = first.replace(instructions=b"\x95" + bytes(7))
    assert changed.insn_count == 1 and changed.references == first.references


def test_btf_ext_records_are_read_at_first_link(objects: dict[str, bytes]) -> None:
    """.BTF.ext: a bad header fails at open; a bad record (here a section name offset past
    the strings) at the first read of a program's linked fields, as a ParseError."""
    data = objects["globals"]
    sec = ELFFile(data).get_section(".BTF.ext")
    assert sec is not None
    hdr_len, fi_off = struct.unpack_from("<I", data, sec.offset + 4)[0], \
        struct.unpack_from("<I", data, sec.offset + 8)[0]
    bad = bytearray(data)
    struct.pack_into("<I", bad, sec.offset + hdr_len + fi_off + 4, 0xFFFFFF)  # sec_name_off
    spec = load_collection_spec(bytes(bad))
    assert spec.func_info_rec_size == 8 and spec.line_info_rec_size == 16
    prog = next(iter(spec.programs.values()))
    with pytest.raises(ParseError, match=r"\.BTF\.ext: .*string offset"):
        _ = prog.instructions
    bad = bytearray(data)
    struct.pack_into("<I", bad, sec.offset + hdr_len + fi_off, 4)  # func_info record size
    with pytest.raises(ParseError, match=r"\.BTF\.ext: .*func_info record size 4 too small"):
        load_collection_spec(bytes(bad))


def test_code_relocations_are_read_at_first_link(objects: dict[str, bytes]) -> None:
    """A bad code relocation (a symbol index past the symbol table) is a ParseError at the
    first read of a program's linked fields, every time; the open and the maps are fine."""
    data = objects["globals"]
    elf = ELFFile(data)
    rel = elf.get_section(".relxdp")
    assert rel is not None and rel.type == SectionType.REL
    bad = bytearray(data)
    struct.pack_into("<I", bad, rel.offset + 12, 0xFFFF)  # ELF64 r_info's symbol (high word)
    spec = load_collection_spec(bytes(bad))
    assert set(spec.maps) >= {"counts", ".data"}
    prog = next(p for p in spec.programs.values() if p.section == "xdp")
    for _ in range(2):
        with pytest.raises(ParseError, match="relocation against missing symbol 65535"):
            _ = prog.references


def test_fast_spec_constructors_match_the_dataclass() -> None:
    """MapSpec._of and ProgramSpec._link_later (the reader's constructors, which set the
    slots directly) give what the dataclass __init__ gives."""
    from ebpf._spec import MapSpec, PinType, ProgramSpec

    ms = MapSpec._of("m", 2, 4, 8, 16, 1, 0, None, PinType.BY_NAME, None, ((0, b"x"),), True,
                     1, 2)
    assert ms == MapSpec(name="m", type=2, key_size=4, value_size=8, max_entries=16, flags=1,
                         pinning=PinType.BY_NAME, contents=((0, b"x"),), freeze=True,
                         btf_key_type_id=1, btf_value_type_id=2)
    linked = (b"\x95" + bytes(7), (), (), ((0, 3),), ())
    ps = ProgramSpec._link_later(lambda: linked, "p", 6, "xdp", 37, None, "GPL", 0, 0, "<",
                                 False)
    assert ps == ProgramSpec(name="p", type=6, instructions=linked[0], section="xdp",
                             attach_type=37, func_info=((0, 3),), autoload=False)


def test_from_file_reads_the_whole_file(tmp_path: Path, objects: dict[str, bytes]) -> None:
    """CollectionSpec.from_file reads with os calls: the whole object, an empty file (a
    ParseError from the reader), a missing one (FileNotFoundError)."""
    from ebpf._spec import CollectionSpec, _read_file

    path = tmp_path / "globals.o"
    path.write_bytes(objects["globals"])
    assert _read_file(path) == objects["globals"]
    assert CollectionSpec.from_file(path) == load_collection_spec(objects["globals"])
    empty = tmp_path / "empty.o"
    empty.write_bytes(b"")
    assert _read_file(empty) == b""
    with pytest.raises(ParseError):
        CollectionSpec.from_file(empty)
    with pytest.raises(FileNotFoundError):
        CollectionSpec.from_file(tmp_path / "missing.o")
