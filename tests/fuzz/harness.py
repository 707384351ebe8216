"""A small deterministic mutation fuzzer for the parsers (no dependency beyond the library).

A *target* is a function of one input (``bytes`` or ``str``) that drives a parser and
re-raises nothing but the parser's documented error types, which the target lists in
``allowed``. The engine mutates seeds (byte- and field-level mutations for binary input,
token- and line-level ones for assembly text), runs each case under a time limit (SIGALRM,
plus the measured time) and an address-space limit (so a 2 GiB allocation is a finding, not
a swap storm), and records every *finding*: an exception outside ``allowed``, a case over
the time limit, a ``MemoryError``, or a failed property (the disassembler round trip).
Findings are deduplicated by exception type and innermost frame in ``src/ebpf``, keeping
the smallest input, and written to a directory as reproducers.

Documented error types per parser (the contract the targets check):

* ELF objects (:func:`ebpf.elf.load_collection_spec`, :class:`ebpf.elf.ELFFile`):
  :class:`~ebpf.errors.ParseError`.
* BTF (:meth:`ebpf.btf.Spec.from_bytes` / ``from_file`` and every lookup on the spec):
  :class:`~ebpf.errors.ParseError`; ``find`` also :class:`~ebpf.errors.TypeNotFoundError`,
  ``Composite.member`` / ``Enum.value`` also :class:`KeyError` for a missing name.
* BTF.ext (:meth:`ebpf.btf.ext.ExtInfo.from_bytes`): :class:`~ebpf.errors.ParseError`.
* Disassembler (:func:`ebpf.asm.disassemble`, :func:`ebpf.asm.decode`):
  :class:`~ebpf.errors.ParseError`; whatever it prints, :func:`ebpf.asm.assemble` reads back
  to the same bytes.
* Text assembler (:func:`ebpf.asm.assemble`, then :class:`ebpf.asm.Instructions`):
  :class:`~ebpf.errors.AssemblerError`.
* Uprobe/USDT layer (:class:`ebpf._elfsym.ElfFile` on a userspace binary):
  :class:`~ebpf.errors.ParseError`; symbol lookups also
  :class:`~ebpf.errors.SymbolNotFoundError`; USDT argument strings never raise.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import hashlib
import os
import random
import re
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import ebpf
from ebpf import asm, btf
from ebpf.btf.ext import ExtInfo
from ebpf.elf import ELFFile, load_collection_spec
from ebpf.elf.reader import SectionType
from ebpf.errors import AssemblerError, ParseError, TypeNotFoundError

ROOT = Path(__file__).resolve().parents[2]
TESTDATA = ROOT / "tests" / "testdata"
CLANG = shutil.which("clang-19")
BPFTOOL = shutil.which("bpftool")
SRC_DIR = str(Path(ebpf.__file__).resolve().parent)

#: How much slower this machine is than a real CPU: 10 in tools.vmtest's TCG guest (it sets
#: EBPF_VMTEST_GUEST), where one 5.5 MB vmlinux case took 1.3 s.
SLOWDOWN = 10.0 if os.environ.get("EBPF_VMTEST_GUEST") else 1.0
#: Seconds one case may take.
TIME_LIMIT = 1.0 * SLOWDOWN
#: Address space a campaign may add to the process (bytes).
MEMORY_LIMIT = 1 << 30


class FuzzTimeout(BaseException):
    """Raised by the alarm inside a case that runs past the time limit."""


class PropertyFailed(Exception):
    """A target's property (e.g. the disassembler round trip) does not hold."""


# --- targets -------------------------------------------------------------------------------

@dataclasses.dataclass
class Target:
    name: str
    run: Callable[[Any], None]
    seeds: list[Any]
    text: bool = False
    #: byte regions per seed to bias mutations to (seed index -> [(start, size)])
    hot: dict[int, list[tuple[int, int]]] = dataclasses.field(default_factory=dict)
    #: structured fields per seed: (offset, size in bytes, byte order)
    fields: dict[int, list[tuple[int, int, str]]] = dataclasses.field(default_factory=dict)
    #: slot-structured input (eBPF code): mutate whole instruction fields
    slots: bool = False


def run_elf(data: bytes) -> None:
    """ELF object -> CollectionSpec; the reader's tables directly. ParseError only."""
    try:
        elf = ELFFile(data)
    except ParseError:
        return
    with contextlib.suppress(ParseError):
        for sec in elf.sections:
            elf.section_data(sec)
            if sec.type in (SectionType.REL, SectionType.RELA):
                elf.relocations(sec)
        elf.symbols()
        for rel_target in elf.relocation_sections():
            del rel_target
    with contextlib.suppress(ParseError):
        spec = load_collection_spec(data)
        _ = spec.btf_blob  # the BTF fix-up runs at first read
        for prog in spec.programs.values():
            _ = prog.instructions  # and each program is linked at first read


_TYPE_LIMIT = 4000


def exercise_btf(spec: btf.Spec, limit: int = _TYPE_LIMIT, whole: bool = True) -> None:
    """Touch every decoding path of up to ``limit`` types (``whole``: also decode the whole
    blob at once). ParseError (and the documented lookup errors) only."""
    with contextlib.suppress(ParseError):
        len(spec)
    names: list[str] = []
    for tid in range(limit):
        try:
            t = spec[tid]
        except KeyError:
            break
        except ParseError:
            continue
        if t.name and len(names) < 8:
            names.append(t.name)
        with contextlib.suppress(ParseError):
            _touch_type(spec, t)
    if whole:
        with contextlib.suppress(ParseError):
            for t in islice(spec.types(), limit):
                repr(t)  # the fields a walk reads from the record on demand (linkage...)
        with contextlib.suppress(ParseError):
            for t in islice(spec.types(btf.Struct), limit // 4):
                t.members  # noqa: B018
    for name in [*names, "task_struct", "long", "", "int"]:
        with contextlib.suppress(ParseError, TypeNotFoundError):
            spec.find(name)
        with contextlib.suppress(ParseError):
            spec.find_all(name, btf.Struct)
    with contextlib.suppress(ParseError):
        spec.pointer_size  # noqa: B018
    repr(spec)


def _touch_type(spec: btf.Spec, t: btf.Type) -> None:
    repr(t)
    spec.resolve(t)
    if isinstance(t, (btf.Int, btf.Composite, btf.Enum, btf.Enum64, btf.Float, btf.DataSec,
                      btf.Pointer, btf.Array, btf.Typedef, btf.Const, btf.Volatile, btf.Var)):
        with contextlib.suppress(ParseError):
            spec.sizeof(t)
    if isinstance(t, btf.Composite):
        ms = t.members
        for m in ms[:64]:
            m.type  # noqa: B018
            m.byte_offset  # noqa: B018
            repr(m)
        if ms:
            with contextlib.suppress(KeyError):
                t.member(ms[-1].name or "x")
    elif isinstance(t, (btf.Enum, btf.Enum64)):
        vs = t.values
        if vs:
            t.value(vs[0].name)
        t.as_dict()
    elif isinstance(t, btf.FuncProto):
        for p in t.params[:64]:
            p.type  # noqa: B018
        t.return_type  # noqa: B018
    elif isinstance(t, btf.Func):
        t.proto  # noqa: B018
    elif isinstance(t, btf.Pointer):
        t.target  # noqa: B018
    elif isinstance(t, btf.Array):
        t.elem_type  # noqa: B018
        t.index_type  # noqa: B018
    elif isinstance(t, (btf.Qualifier, btf.Var, btf.DeclTag)):
        t.type  # noqa: B018
    elif isinstance(t, btf.DataSec):
        for v in t.vars[:64]:
            v.type  # noqa: B018


def run_btf(data: bytes) -> None:
    try:
        spec = btf.Spec.from_bytes(data)
    except ParseError:
        return
    if len(data) > 1 << 20:  # vmlinux: the index, names and lookups, some types
        exercise_btf(spec, 300, whole=False)
    else:
        exercise_btf(spec)


def run_btf_file(data: bytes) -> None:
    """Spec.from_file on a (gzip) file: ParseError only, never a large allocation."""
    with tempfile.TemporaryDirectory(prefix="ebpf-fuzz-") as tmp:
        path = os.path.join(tmp, "case.btf.gz")
        with open(path, "wb") as f:
            f.write(data)
        try:
            spec = btf.Spec.from_file(path)
        except ParseError:
            return
    exercise_btf(spec, 500)


def make_run_ext(specs: list[btf.Spec]) -> Callable[[bytes], None]:
    def run_ext(data: bytes) -> None:
        # the string table is the seed object's (picked by the first byte of the input)
        spec = specs[data[-1] % len(specs)] if data else specs[0]
        for bo in (None, spec.byte_order):
            with contextlib.suppress(ParseError):
                ExtInfo.from_bytes(data, spec.string, bo)

    return run_ext


def run_disasm(data: bytes) -> None:
    """disassemble(bytes) reads back through assemble() to the same bytes; ParseError only
    from the disassembler, nothing from the assembler."""
    for labels, numbers in ((True, False), (False, True)):
        try:
            text = asm.disassemble(data, labels=labels, numbers=numbers)
        except ParseError:
            return
        try:
            again = asm.Instructions(asm.assemble(text)).encode(check=False)
        except AssemblerError as e:
            raise PropertyFailed(f"assemble refuses disassemble's text: {e}") from None
        if again != data:
            raise PropertyFailed(f"round trip changed the bytes: {text[:300]!r}")
    insns = asm.decode(data)
    text = asm.disassemble(insns)
    try:
        again = asm.Instructions(asm.assemble(text)).encode(check=False)
    except AssemblerError as e:
        raise PropertyFailed(f"assemble refuses disassemble(decode())'s text: {e}") from None
    if again != data:
        raise PropertyFailed("round trip through decode() changed the bytes")
    asm.disassemble(data, style="llvm")
    with contextlib.suppress(ParseError):
        asm.objdump(data)


def run_asm(text: str) -> None:
    """assemble(): AssemblerError only; each line alone too (a bad first line would hide
    what the others do)."""
    for line in text.splitlines()[:80]:
        with contextlib.suppress(AssemblerError):
            asm.assemble(line)
    try:
        items = asm.assemble(text)
    except AssemblerError:
        return
    with contextlib.suppress(AssemblerError):
        prog = asm.Instructions(items)
        prog.encode(check=False)
    with contextlib.suppress(AssemblerError):
        asm.Instructions(items).encode()


def run_elfsym(data: bytes) -> None:
    """The uprobe/USDT layer on a (mutated) userspace binary: ParseError, and
    SymbolNotFoundError from symbol lookups."""
    from ebpf._elfsym import ElfFile
    from ebpf.errors import SymbolNotFoundError

    try:
        f = ElfFile.from_bytes(data)
    except ParseError:
        return
    with contextlib.suppress(ParseError):
        for _ in islice(f.symbols(), 5000):
            pass
    for name in ("main", "ebpf_target_add", "ebpf_target_add@@X", "no_such_function"):
        with contextlib.suppress(ParseError, SymbolNotFoundError):
            f.symbol_offset(name)
    with contextlib.suppress(ParseError):
        for probe in f.usdt_probes():
            probe.arguments  # noqa: B018


def compile_uprobe_targets(out: Path) -> list[bytes]:
    """tests/testdata/uprobe/target.c built with the C compiler (with and without -g)."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        return []
    bins = []
    for flags in (["-O1", "-g0"], ["-O2", "-g"]):
        exe = out / f"target{flags[1]}"
        res = subprocess.run([cc, *flags, "-o", str(exe), str(TESTDATA / "uprobe" / "target.c")],
                             capture_output=True)
        if res.returncode == 0:
            bins.append(exe.read_bytes())
    return bins


# --- seeds ---------------------------------------------------------------------------------

def _multiarch() -> list[str]:
    import sysconfig

    arch = sysconfig.get_config_var("MULTIARCH")
    return [f"-I/usr/include/{arch}"] if arch else []


def compile_objects(out: Path) -> dict[str, bytes]:
    """Objects of tests/testdata/{elf,asm}/*.c for bpfel and bpfeb (CO-RE/kfunc sources need
    a vmlinux.h from the running kernel's BTF and bpftool; skipped without them)."""
    if CLANG is None:
        return {}
    out.mkdir(parents=True, exist_ok=True)
    have_vmlinux_h = False
    if BPFTOOL is not None and Path("/sys/kernel/btf/vmlinux").exists():
        res = subprocess.run([BPFTOOL, "btf", "dump", "file", "/sys/kernel/btf/vmlinux",
                              "format", "c"], capture_output=True)
        if res.returncode == 0:
            (out / "vmlinux.h").write_bytes(res.stdout)
            have_vmlinux_h = True
    objs: dict[str, bytes] = {}
    sources = sorted((TESTDATA / "elf").glob("*.c")) + sorted((TESTDATA / "asm").glob("*.c"))
    procs = []
    for src in sources:
        needs_vmlinux = "vmlinux.h" in src.read_text()
        for target, suffix in (("bpfel", ""), ("bpfeb", "-eb")):
            if needs_vmlinux and (suffix or not have_vmlinux_h):
                continue
            o = out / f"{src.parent.name}-{src.stem}{suffix}.o"
            cmd = [CLANG, "-O2", "-g", "-target", target, "-mcpu=v4", *_multiarch(),
                   f"-I{out}", f"-I{src.parent}", "-c", str(src), "-o", str(o)]
            procs.append((o, subprocess.Popen(cmd, stderr=subprocess.DEVNULL)))
    for o, p in procs:
        if p.wait() == 0:
            objs[o.stem] = o.read_bytes()
    return objs


def slice_btf(blob: bytes, count: int) -> bytes:
    """A small well-formed BTF made of the first ``count`` records of ``blob`` (references
    past them dangle) with a string section of just the names they use."""
    from ebpf.btf import wire

    header, bo = wire.parse_header(blob)
    ts, ss = header.type_start, header.str_start
    words = list(struct.unpack_from(f"{bo}{header.type_len // 4}I", blob, ts))
    strings = blob[ss:ss + header.str_len]
    table = bytearray(b"\0")
    index: dict[int, int] = {0: 0}

    def name(off: int) -> int:
        if off not in index:
            end = strings.index(b"\0", off)
            index[off] = len(table)
            table.extend(strings[off:end + 1])
        return index[off]

    out: list[int] = []
    o = 0
    for _ in range(count):
        if o >= len(words):
            break
        info = words[o + 1]
        n = wire.record_words(info)
        rec = words[o:o + n]
        rec[0] = name(rec[0])
        kind = (info >> 24) & 0x1F
        step = wire.VLEN_WORDS[kind]
        if kind in (4, 5, 6, 13, 19):  # members, enumerators, params, enum64 values: name first
            base = wire.BASE_WORDS[kind] or 3
            for j in range(base, n, step):
                rec[j] = name(rec[j])
        out.extend(rec)
        o += n
    types = struct.pack(f"{bo}{len(out)}I", *out)
    hdr = wire.HEADER[bo].pack(wire.MAGIC, 1, 0, 24, 0, len(types), len(types), len(table))
    return hdr + types + bytes(table)


def _btf_fields(blob: bytes) -> list[tuple[int, int, str]]:
    """Header fields and record words (name_off, info, size/type) of a BTF blob."""
    from ebpf.btf import wire

    try:
        header, bo = wire.parse_header(blob)
    except ParseError:
        return []
    fields = [(4, 4, bo), (8, 4, bo), (12, 4, bo), (16, 4, bo), (20, 4, bo)]
    ts = header.type_start
    words = struct.unpack_from(f"{bo}{header.type_len // 4}I", blob, ts)
    o = 0
    while o + 2 < len(words) and len(fields) < 4000:
        try:
            n = wire.record_words(words[o + 1])
        except ValueError:
            break
        for j in range(min(n, 9)):
            fields.append((ts + 4 * (o + j), 4, bo))
        fields.append((ts + 4 * o + 4, 2, bo))  # vlen
        fields.append((ts + 4 * o + 7, 1, bo))  # kind / kind_flag byte (little endian)
        o += n
    return fields


def _elf_layout(data: bytes) -> tuple[list[tuple[int, int]], list[tuple[int, int, str]]]:
    """Hot regions (headers, tables, BTF) and the fields of every section header of an ELF."""
    try:
        elf = ELFFile(data)
    except ParseError:
        return [(0, 64)], []
    bo = elf.byteorder
    hot = [(0, 64), (elf.header.shoff, len(elf.sections) * elf.header.shentsize)]
    for s in elf.sections:
        if s.type in (SectionType.SYMTAB, SectionType.REL, SectionType.RELA,
                      SectionType.STRTAB) or s.name in (".BTF", ".BTF.ext", ".maps", "maps",
                                                       "license", "version"):
            hot.append((s.offset, s.size))
    fields: list[tuple[int, int, str]] = [(16, 2, bo), (18, 2, bo), (40, 8, bo), (58, 2, bo),
                                          (60, 2, bo), (62, 2, bo)]
    # Elf64_Shdr: name, type (4); flags, addr, offset, size (8); link, info (4); align, entsize
    layout = ((0, 4), (4, 4), (8, 8), (16, 8), (24, 8), (32, 8), (40, 4), (44, 4), (48, 8),
              (56, 8))
    for s in elf.sections:
        base = elf.header.shoff + s.index * elf.header.shentsize
        fields.extend((base + o, n, bo) for o, n in layout)
    symtab = elf.symtab
    if symtab is not None:
        for i in range(min(symtab.size // 24, 200)):
            base = symtab.offset + 24 * i
            fields.extend((base + o, n, bo) for o, n in ((0, 4), (4, 1), (6, 2), (8, 8),
                                                         (16, 8)))
    for s in elf.sections:
        if s.type == SectionType.REL:
            for i in range(min(s.size // 16, 200)):
                fields.extend(((s.offset + 16 * i, 8, bo), (s.offset + 16 * i + 8, 4, bo),
                               (s.offset + 16 * i + 12, 4, bo)))
        if s.name == ".BTF" and not s.nobits:
            sub = elf.section_data(s)
            fields.extend((s.offset + o, n, b) for o, n, b in _btf_fields(sub)[:1500])
    return hot, fields


def _code_sections(data: bytes) -> list[bytes]:
    try:
        elf = ELFFile(data)
        return [elf.section_data(s) for s in elf.sections
                if s.executable and not s.nobits and s.size and elf.byteorder == "<"]
    except ParseError:
        return []


#: Statements covering every rule of the text assembler (seeds for the asm target).
ASM_SNIPPETS = """\
r0 = 1
w1 = -0x7fffffff
r1 += r2
w3 s/= w4
r5 s%= 7
r6 <<= 63
w7 s>>= 31
r8 = -r8
w9 = -w9
r1 = be16 r1
r2 = le32 r2
r3 = bswap64 r3
r4 = (s8)r5
w4 = (s16)w5
r1 = addr_space_cast(r2, 0x1, 0x0)
r0 = *(u8 *)(r1 + 0x4)
w0 = *(u32 *)(r10 - 0x8)
r2 = *(s16 *)(r1 + 2)
*(u64 *)(r10 - 0x10) = r1
*(u32 *)(r10 - 4) = 0x1234
lock *(u64 *)(r1 + 0x0) += r2
lock *(u32 *)(r1 + 0x8) ^= w3
r2 = atomic_fetch_add((u64 *)(r1 + 0x0), r2)
w2 = atomic_fetch_or((u32 *)(r1 - 0x4), w2)
r3 = xchg_64(r1 + 0x8, r3)
w3 = xchg32_32(r1 - 8, w3)
r0 = cmpxchg_64(r1 + 0x0, r0, r4)
w0 = load_acquire((u32 *)(r1 + 0x0))
store_release((u64 *)(r1 + 0x10), r2)
r0 = *(u16 *)skb[0x10]
r0 = *(u8 *)skb[r6 + 0x2]
r1 = 0x123456789abcdef0 ll
r1 = map[counts]
r2 = map[fd:5]
r3 = map_value[data] + 0x8
r4 = map_idx[3]
r5 = map_idx_value[2] + 0x10
r6 = btf_id[1234, btf_fd:7]
r7 = func[out]
r7 = func[pc+0x2]
call bpf_map_lookup_elem
call 12
call pc+0x1
call out
call kfunc[1234]
call kfunc[bpf_obj_new_impl, btf:2]
callx r3
if r1 > 0x5 goto +0x3
if w1 s<= w2 goto out
if r3 & 0x8 goto -0x1
goto out
gotol +0x0
may_goto +0x1
.8byte 0x95
12: r0 = 0 # comment
out: exit  // done
frag#1/out: r0 = 2; exit
"""


def build_seeds(workdir: Path) -> dict[str, Target]:
    """Every target with its seeds (compiles the test sources into ``workdir``)."""
    objs = compile_objects(workdir)
    rng = random.Random(1)
    targets: dict[str, Target] = {}

    elf_seeds = list(objs.values())
    elf = Target("elf", run_elf, elf_seeds)
    for i, data in enumerate(elf_seeds):
        elf.hot[i], elf.fields[i] = _elf_layout(data)
    targets["elf"] = elf

    # BTF: the objects' .BTF, a 3000-type slice of the pinned vmlinux, and the whole blob
    btf_seeds: list[bytes] = []
    ext_seeds: list[bytes] = []
    ext_specs: list[btf.Spec] = []
    for data in objs.values():
        e = ELFFile(data)
        sec, ext = e.get_section(".BTF"), e.get_section(".BTF.ext")
        if sec is None:
            continue
        blob = e.section_data(sec)
        btf_seeds.append(blob)
        if ext is not None:
            ext_seeds.append(e.section_data(ext))
            ext_specs.append(btf.Spec.from_bytes(blob))
    vmlinux = gzip.decompress((TESTDATA / "vmlinux.btf.gz").read_bytes())
    btf_seeds.append(slice_btf(vmlinux, 3000))
    btf_seeds.append(slice_btf(vmlinux, 300))
    b = Target("btf", run_btf, btf_seeds)
    for i, data in enumerate(btf_seeds):
        b.fields[i] = _btf_fields(data)
        ts = 24
        b.hot[i] = [(0, 24), (ts, min(len(data) - ts, 4096))]
    targets["btf"] = b
    # the whole vmlinux blob, mutated where the name decoder and the index look
    vm = Target("btf_vmlinux", run_btf, [vmlinux])
    vm.fields[0] = _btf_fields(vmlinux)[:3000]
    vm.hot[0] = [(0, 24), (24, 1 << 16)]
    targets["btf_vmlinux"] = vm

    gz_seeds = [gzip.compress(s, 6) for s in btf_seeds[:4]]
    targets["btf_gz"] = Target("btf_gz", run_btf_file, gz_seeds)

    if ext_specs:
        # the last byte picks the string table: keep each seed paired with its own
        run_ext = make_run_ext(ext_specs)
        paired = [s + bytes([i]) for i, s in enumerate(ext_seeds)]
        ext_t = Target("btf_ext", run_ext, paired)
        for i, s in enumerate(paired):
            bo = "<" if s[:2] == b"\x9f\xeb" else ">"
            ext_t.fields[i] = [(o, 4, bo) for o in range(4, min(len(s) - 4, 4096), 4)]
        targets["btf_ext"] = ext_t

    code: list[bytes] = []
    for data in objs.values():
        code.extend(_code_sections(data))
    code = [c[:8 * 400] for c in code if c]
    for _ in range(8):
        code.append(bytes(rng.getrandbits(8) for _ in range(8 * rng.randint(1, 40))))
    targets["disasm"] = Target("disasm", run_disasm, code, slots=True)

    texts = [ASM_SNIPPETS]
    for c in code[:12]:
        with contextlib.suppress(ParseError):
            texts.append(asm.disassemble(c[:8 * 120]))
            texts.append(asm.disassemble(c[:8 * 60], numbers=True, labels=False))
    targets["asm"] = Target("asm", run_asm, texts, text=True)

    bins = compile_uprobe_targets(workdir)
    if bins:
        es = Target("elfsym", run_elfsym, bins)
        for i, data in enumerate(bins):
            es.hot[i], es.fields[i] = _elf_layout(data)
            stapsdt = ELFFile(data).get_section(".note.stapsdt")
            if stapsdt is not None:
                es.hot[i].append((stapsdt.offset, stapsdt.size))
        targets["elfsym"] = es
    return targets


# --- mutation ------------------------------------------------------------------------------

_INTERESTING = (0, 1, 2, 3, 4, 7, 8, 15, 16, 24, 31, 32, 63, 64, 127, 128, 255, 256, 4096,
                0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE,
                0xFFFFFFFF, 0x100000000, 0x7FFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFF)


def _interesting(rng: random.Random, size: int, hint: int) -> int:
    r = rng.random()
    mask = (1 << (8 * size)) - 1
    if r < 0.6:
        v = rng.choice(_INTERESTING)
    elif r < 0.8:
        v = hint + rng.choice((-1, 1, -4, 4, 8, -8, 16))
    elif r < 0.9:
        v = hint * rng.choice((2, 16, 256))
    else:
        v = rng.getrandbits(8 * size)
    return v & mask


class Mutator:
    def __init__(self, target: Target, rng: random.Random) -> None:
        self.t = target
        self.rng = rng

    def __call__(self) -> tuple[int, Any]:
        rng = self.rng
        i = rng.randrange(len(self.t.seeds))
        seed = self.t.seeds[i]
        n = 1 + min(int(rng.expovariate(0.7)), 12)
        if self.t.text:
            s = str(seed)
            for _ in range(n):
                s = self._text(s)
            return i, s
        buf = bytearray(seed)
        for _ in range(n):
            self._bytes(buf, i)
        return i, bytes(buf)

    # binary
    def _pos(self, buf: bytearray, i: int) -> int:
        hot = self.t.hot.get(i)
        if hot and self.rng.random() < 0.7:
            start, size = self.rng.choice(hot)
            p = start + self.rng.randrange(max(size, 1))
        else:
            p = self.rng.randrange(max(len(buf), 1))
        return min(p, max(len(buf) - 1, 0))

    def _bytes(self, buf: bytearray, i: int) -> None:
        rng = self.rng
        if not buf:
            buf.extend(rng.randbytes(rng.randint(1, 64)))
            return
        if self.t.slots and len(buf) >= 8 and rng.random() < 0.6:
            self._slot(buf)
            return
        fields = self.t.fields.get(i)
        r = rng.random()
        if fields and r < 0.45:
            off, size, bo = rng.choice(fields)
            if off + size <= len(buf):
                hint = int.from_bytes(buf[off:off + size], "little" if bo == "<" else "big")
                v = _interesting(rng, size, hint)
                buf[off:off + size] = v.to_bytes(size, "little" if bo == "<" else "big")
            return
        r = rng.random()
        p = self._pos(buf, i)
        if r < 0.25:
            buf[p] ^= 1 << rng.randrange(8)
        elif r < 0.45:
            buf[p] = rng.choice((0, 1, 0x7F, 0x80, 0xFF, rng.getrandbits(8)))
        elif r < 0.65:
            size = rng.choice((2, 4, 8))
            if rng.random() < 0.5:
                p -= p % size
            if p + size <= len(buf):
                bo = rng.choice(("little", "big"))
                hint = int.from_bytes(buf[p:p + size], bo)
                buf[p:p + size] = _interesting(rng, size, hint).to_bytes(size, bo)
        elif r < 0.72:
            del buf[p:p + rng.choice((1, 4, 8, 16, rng.randint(1, 256)))]
        elif r < 0.78:
            ln = rng.randint(1, 64)
            src = rng.randrange(len(buf))
            buf[p:p] = buf[src:src + ln]
        elif r < 0.84:
            buf[p:p] = rng.randbytes(rng.randint(1, 16))
        elif r < 0.9:
            ln = rng.randint(1, 64)
            src = rng.randrange(len(buf))
            chunk = buf[src:src + ln]
            buf[p:p + len(chunk)] = chunk
        elif r < 0.95:
            del buf[rng.randrange(len(buf)):]
        else:
            other = bytes(rng.choice(self.t.seeds))
            q = rng.randrange(len(other) + 1)
            buf[p:] = other[q:]

    def _slot(self, buf: bytearray) -> None:
        rng = self.rng
        k = rng.randrange(len(buf) // 8) * 8
        r = rng.random()
        if r < 0.3:
            buf[k] = rng.getrandbits(8)
        elif r < 0.45:
            buf[k + 1] = rng.getrandbits(8) if rng.random() < 0.3 else (
                rng.randrange(11) | rng.randrange(11) << 4)
        elif r < 0.6:
            buf[k + 2:k + 4] = _interesting(rng, 2, 0).to_bytes(2, "little")
        elif r < 0.8:
            buf[k + 4:k + 8] = _interesting(rng, 4, 0).to_bytes(4, "little")
        elif r < 0.9:
            buf[k:k + 8] = rng.randbytes(8)
        elif r < 0.95:
            buf[k:k] = bytes([0x18]) + rng.randbytes(7)
        else:
            del buf[k:k + 8]

    # text
    def _text(self, s: str) -> str:
        rng = self.rng
        if not s:
            return rng.choice(ASM_SNIPPETS.splitlines())
        lines = s.split("\n")
        r = rng.random()
        if r < 0.12:
            j = rng.randrange(len(lines))
            del lines[j]
            return "\n".join(lines)
        if r < 0.2:
            j = rng.randrange(len(lines))
            lines.insert(rng.randrange(len(lines) + 1), lines[j])
            return "\n".join(lines)
        if r < 0.26:
            other = rng.choice(self.t.seeds).split("\n")
            lines.insert(rng.randrange(len(lines) + 1), rng.choice(other))
            return "\n".join(lines)
        if r < 0.45:
            nums = list(re.finditer(r"(?<![\w])(?:0x[0-9a-fA-F]+|\d+)", s))
            if nums:
                m = rng.choice(nums)
                return s[:m.start()] + self._number() + s[m.end():]
        if r < 0.55:
            p = rng.randrange(len(s) + 1)
            ws = rng.choice(("\t", " ", "  ", "\t "))
            return s[:p] + ws * rng.choice((1, 2, 10, 1000, 30000)) + s[p:]
        if r < 0.7:
            p = rng.randrange(len(s) + 1)
            chars = "()[]*+-=<>!&|^%/su8163264xlrw ;:#,.\t\n_kfunc"
            ins = "".join(rng.choice(chars) for _ in range(rng.randint(1, 4)))
            return s[:p] + ins + s[p:]
        if r < 0.8:
            p = rng.randrange(len(s))
            return s[:p] + s[p + rng.randint(1, 8):]
        if r < 0.88:
            p = rng.randrange(len(s))
            piece = s[p:p + rng.randint(1, 6)]
            return s[:p] + piece * rng.choice((2, 50, 3000)) + s[p:]
        if r < 0.94:
            regs = list(re.finditer(r"\b([rw])(\d+)\b", s))
            if regs:
                m = rng.choice(regs)
                return s[:m.start(2)] + self._number(reg=True) + s[m.end(2):]
        p = rng.randrange(len(s))
        return s[:p] + chr(rng.choice((0, 0x80, 0xFF, 0x2028, 0x85, 0x1F600, 0x0B, 0x0C,
                                       rng.randrange(32, 127)))) + s[p + 1:]

    def _number(self, reg: bool = False) -> str:
        rng = self.rng
        r = rng.random()
        if r < 0.15:
            return "9" * rng.choice((20, 4301, 6000))
        if r < 0.25:
            return "0x" + "f" * rng.choice((9, 17, 5000))
        if reg:
            return str(rng.choice((0, 9, 10, 11, 15, 16, 99, 2**31)))
        v = rng.choice(_INTERESTING)
        sign = rng.choice(("", "-", "+", "- "))
        return sign + (hex(v) if rng.random() < 0.5 else str(v))


# --- running ---------------------------------------------------------------------------------

@dataclasses.dataclass
class Finding:
    target: str
    kind: str
    signature: str
    message: str
    data: Any
    seconds: float = 0.0
    count: int = 1

    def describe(self) -> str:
        size = len(self.data)
        return (f"[{self.target}] {self.kind}: {self.signature} ({self.count}x, smallest "
                f"{size} {'chars' if isinstance(self.data, str) else 'bytes'}"
                f"{f', {self.seconds:.2f} s' if self.seconds else ''}): {self.message[:300]}")


@dataclasses.dataclass
class Report:
    target: str
    cases: int = 0
    seconds: float = 0.0
    slowest: float = 0.0
    findings: dict[str, Finding] = dataclasses.field(default_factory=dict)


def _signature(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if f.filename.startswith(SRC_DIR)]
    where = ours[-1] if ours else (frames[-1] if frames else None)
    loc = f"{os.path.relpath(where.filename, ROOT)}:{where.lineno} ({where.name})" if where \
        else "?"
    return f"{type(exc).__name__} at {loc}"


def _alarm(signum: int, frame: object) -> None:
    raise FuzzTimeout


@contextlib.contextmanager
def _limits(memory: int | None) -> Iterator[None]:
    """SIGALRM handler and an address-space cap for the campaign."""
    # pytest-timeout's alarm (if any) is put back, less the time the campaign took
    old_timer = signal.getitimer(signal.ITIMER_REAL)[0]
    t0 = time.monotonic()
    old_handler = signal.signal(signal.SIGALRM, _alarm)
    old_as = resource.getrlimit(resource.RLIMIT_AS)
    if memory:
        vm = 0
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    vm = int(line.split()[1]) * 1024
        cap = vm + memory
        if old_as[0] == resource.RLIM_INFINITY or old_as[0] > cap:
            resource.setrlimit(resource.RLIMIT_AS, (cap, old_as[1]))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_handler)
        resource.setrlimit(resource.RLIMIT_AS, old_as)
        if old_timer:
            signal.setitimer(signal.ITIMER_REAL, max(old_timer - (time.monotonic() - t0), 0.01))


def run_case(target: Target, data: Any, limit: float = TIME_LIMIT) -> tuple[
        BaseException | None, float]:
    """Run one case; the exception it ended with (None when within the contract) and its
    duration."""
    start = time.perf_counter()
    signal.setitimer(signal.ITIMER_REAL, limit * 2)
    try:
        target.run(data)
        exc: BaseException | None = None
    except FuzzTimeout as e:
        exc = e
    except (Exception, RecursionError) as e:
        exc = e
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return exc, time.perf_counter() - start


def campaign(target: Target, cases: int, seed: int = 0, limit: float = TIME_LIMIT,
             memory: int | None = MEMORY_LIMIT, progress: Callable[[str], None] | None = None,
             ) -> Report:
    """Run ``cases`` mutated inputs (the seeds themselves first) against ``target``."""
    rng = random.Random(f"{target.name}:{seed}")
    mutate = Mutator(target, rng)
    report = Report(target.name)
    t0 = time.perf_counter()
    with _limits(memory):
        for n in range(cases):
            if n < len(target.seeds):
                data = target.seeds[n]
            else:
                _, data = mutate()
            exc, dt = run_case(target, data, limit)
            report.slowest = max(report.slowest, dt)
            kind = None
            if isinstance(exc, FuzzTimeout) or dt > limit:
                kind, sig, msg = "slow", "over the time limit", f"{dt:.2f} s"
                if exc is not None:
                    sig = _signature(exc)
            elif isinstance(exc, MemoryError):
                kind, sig, msg = "memory", _signature(exc), "MemoryError (address-space cap)"
            elif isinstance(exc, PropertyFailed):
                kind, sig, msg = "property", str(exc).split(":")[0], str(exc)
            elif exc is not None:
                kind, sig, msg = "exception", _signature(exc), f"{type(exc).__name__}: {exc}"
            if kind is not None:
                key = f"{kind}|{sig}"
                old = report.findings.get(key)
                if old is None:
                    report.findings[key] = Finding(target.name, kind, sig, msg, data,
                                                   dt if kind == "slow" else 0.0)
                else:
                    old.count += 1
                    if len(data) < len(old.data):
                        old.data, old.message = data, msg
            if progress is not None and n and n % 2000 == 0:
                progress(f"{target.name}: {n} cases, {len(report.findings)} findings")
    report.cases = cases
    report.seconds = time.perf_counter() - t0
    return report


def save(findings: Sequence[Finding], out: Path) -> list[Path]:
    """Write each finding's input to ``out`` (``<target>-<kind>-<hash>.bin``/``.s``)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for f in findings:
        raw = f.data.encode("utf-8", "surrogatepass") if isinstance(f.data, str) else f.data
        h = hashlib.sha1(raw).hexdigest()[:12]
        p = out / f"{f.target}-{f.kind}-{h}.{'s' if isinstance(f.data, str) else 'bin'}"
        p.write_bytes(raw)
        (p.with_suffix(p.suffix + ".txt")).write_text(f.describe() + "\n")
        paths.append(p)
    return paths


#: Share of the budget per target (sums to 1).
SHARES = {"elf": 0.22, "btf": 0.19, "btf_vmlinux": 0.01, "btf_gz": 0.03, "btf_ext": 0.1,
          "disasm": 0.2, "asm": 0.2, "elfsym": 0.05}


def budget(total: int, names: Sequence[str]) -> dict[str, int]:
    share = sum(SHARES[n] for n in names)
    return {n: max(1, round(total * SHARES[n] / share)) for n in names}


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.split("\n")[0])
    ap.add_argument("--cases", type=int, default=int(os.environ.get("EBPF_FUZZ_CASES", "20000")),
                    help="total cases over the targets (default 20000)")
    ap.add_argument("--target", action="append", choices=sorted(SHARES),
                    help="only this target (repeatable)")
    ap.add_argument("--seed", type=int, default=int(os.environ.get("EBPF_FUZZ_SEED", "0")))
    ap.add_argument("--out", type=Path, default=Path("fuzz-findings"),
                    help="directory for reproducers (default ./fuzz-findings)")
    ap.add_argument("--limit", type=float, default=TIME_LIMIT, help="seconds per case")
    args = ap.parse_args(argv)
    names = args.target or list(SHARES)
    with tempfile.TemporaryDirectory(prefix="ebpf-fuzz-") as tmp:
        targets = build_seeds(Path(tmp))
    names = [n for n in names if n in targets]
    found: list[Finding] = []
    for name, n in budget(args.cases, names).items():
        rep = campaign(targets[name], n, args.seed, args.limit,
                       progress=lambda m: print(m, file=sys.stderr, flush=True))
        print(f"{name}: {rep.cases} cases in {rep.seconds:.1f} s "
              f"(slowest {rep.slowest * 1000:.0f} ms), {len(rep.findings)} findings", flush=True)
        for f in rep.findings.values():
            print("  " + f.describe(), flush=True)
        found.extend(rep.findings.values())
    if found:
        for p in save(found, args.out):
            print(f"wrote {p}")
    return 1 if found else 0
