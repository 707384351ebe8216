#!/usr/bin/env python3
"""Generate ``src/ebpf/_uapi/_generated_types.py`` from kernel BTF, with the package's own reader.

Output: the kernel enums (verbatim names, as ``IntEnum`` classes and module constants), the flag
constants the kernel's BTF carries in anonymous enums, one ``ctypes.Structure`` per
``union bpf_attr`` command arm, the ``bpf_*_info`` structs, ``perf_event_attr`` and the program
context structs, and ``EXPECTED_LAYOUT`` (field -> (offset, size)) so a test can check ctypes
against BTF on every architecture.

Structs are emitted with ``_pack_ = 1`` and explicit padding at the byte offsets BTF gives, so
the ctypes layout is the kernel's by construction, whatever ctypes' own alignment rules are on
the host (``__aligned_u64`` is 4-aligned on i386 in ctypes, 8-aligned in the kernel).
Bitfields become a storage field plus a property, which avoids ctypes' bitfield layout rules.

Usage: ``python tools/gen_types.py [--btf PATH] [--check]``.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from ebpf import btf  # noqa: E402

PINNED = ROOT / "tests" / "testdata" / "vmlinux.btf.gz"
PINNED_VERSION = ROOT / "tests" / "testdata" / "vmlinux.btf.version"
OUTPUT = ROOT / "src" / "ebpf" / "_uapi" / "_generated_types.py"
STUB = OUTPUT.with_suffix(".pyi")

ENUMS = [
    "bpf_cmd",
    "bpf_map_type",
    "bpf_prog_type",
    "bpf_attach_type",
    "bpf_link_type",
    "bpf_func_id",
    "xdp_action",
    "bpf_stats_type",
    "bpf_perf_event_type",
    "bpf_task_fd_type",
    "bpf_adj_room_mode",
    "bpf_hdr_start_off",
    "bpf_lwt_encap_mode",
    "sk_action",
    "bpf_ret_code",
    "bpf_addr_space_cast",
    "perf_type_id",
    "perf_sw_ids",
    "perf_hw_id",
    "bpf_cgroup_iter_order",
    "perf_event_sample_format",
    "perf_event_type",
    "nf_inet_hooks",
]

#: Prefixes of constants in anonymous enums that are part of the ABI we use.
FLAG_PREFIXES = (
    "BPF_F_",
    "BPF_ANY",
    "BPF_NOEXIST",
    "BPF_EXIST",
    "BPF_RB_",
    "BPF_RINGBUF_",
    "BPF_SK_LOOKUP_",
    "BPF_FLOW_DISSECTOR_",
    "BPF_LOAD_HDR_OPT_",
    "BPF_WRITE_HDR_",
    "BPF_SOCK_OPS_",
    "BPF_FIB_",
    "BPF_MTU_",
    "BPF_CSUM_",
    "BPF_LOCAL_STORAGE_",
    "BPF_SKB_",
    "BPF_XFRM_",
    "BPF_STREAM_",
    "XDP_FLAGS_",
    "XDP_ATTACHED_",
    "IFLA_XDP_",
    "NFPROTO_",
    "TCP_BPF_",
    "BPF_OBJ_NAME_LEN",
    "BPF_TAG_SIZE",
    "BPF_BUILD_ID_SIZE",
    "BTF_F_",
    "BTF_VAR_",
    "BTF_FUNC_",
)

#: ``union bpf_attr`` arms, identified by their member name or (when anonymous) by the name of
#: their first field. Value: generated class name.
ATTR_ARMS = {
    "map_type": "MapCreateAttr",
    "map_fd": "MapElemAttr",
    "batch": "MapBatchAttr",
    "prog_type": "ProgLoadAttr",
    "pathname": "ObjAttr",
    "target_fd": "ProgAttachAttr",
    "test": "ProgTestRunAttr",
    "start_id": "GetIdAttr",
    "info": "ObjInfoAttr",
    "query": "ProgQueryAttr",
    "raw_tracepoint": "RawTracepointOpenAttr",
    "btf": "BtfLoadAttr",
    "task_fd_query": "TaskFdQueryAttr",
    "link_create": "LinkCreateAttr",
    "link_update": "LinkUpdateAttr",
    "link_detach": "LinkDetachAttr",
    "enable_stats": "EnableStatsAttr",
    "iter_create": "IterCreateAttr",
    "prog_bind_map": "ProgBindMapAttr",
    "token_create": "TokenCreateAttr",
    "prog_stream_read": "ProgStreamReadAttr",
}

#: (C kind, C name) -> class name for other structs.
STRUCTS = {
    ("struct", "bpf_prog_info"): "BpfProgInfo",
    ("struct", "bpf_map_info"): "BpfMapInfo",
    ("struct", "bpf_btf_info"): "BpfBtfInfo",
    ("struct", "bpf_link_info"): "BpfLinkInfo",
    ("struct", "perf_event_attr"): "PerfEventAttr",
    ("struct", "perf_event_mmap_page"): "PerfEventMmapPage",
    ("struct", "perf_event_header"): "PerfEventHeader",
    ("struct", "xdp_md"): "XdpMd",
    ("struct", "__sk_buff"): "SkBuff",
    ("struct", "bpf_sock"): "BpfSock",
    ("struct", "bpf_sock_addr"): "BpfSockAddr",
    ("struct", "bpf_sock_ops"): "BpfSockOps",
    ("struct", "sk_msg_md"): "SkMsgMd",
    ("struct", "sk_reuseport_md"): "SkReuseportMd",
    ("struct", "bpf_sk_lookup"): "BpfSkLookup",
    ("struct", "bpf_flow_keys"): "BpfFlowKeys",
    ("struct", "bpf_sysctl"): "BpfSysctl",
    ("struct", "bpf_sockopt"): "BpfSockopt",
    ("struct", "bpf_cgroup_dev_ctx"): "BpfCgroupDevCtx",
    ("struct", "bpf_raw_tracepoint_args"): "BpfRawTracepointArgs",
    ("struct", "bpf_nf_ctx"): "BpfNfCtx",
    ("struct", "bpf_cgroup_storage_key"): "BpfCgroupStorageKey",
    ("struct", "bpf_func_info"): "BpfFuncInfo",
    ("struct", "bpf_line_info"): "BpfLineInfo",
    ("struct", "bpf_core_relo"): "BpfCoreRelo",
    ("struct", "bpf_spin_lock"): "BpfSpinLock",
    ("struct", "bpf_timer"): "BpfTimer",
    ("struct", "bpf_stack_build_id"): "BpfStackBuildId",
    ("struct", "bpf_perf_event_value"): "BpfPerfEventValue",
    ("struct", "bpf_prog_stats"): "BpfProgStats",
    ("struct", "pt_regs"): "PtRegs",
    ("union", "bpf_iter_link_info"): "BpfIterLinkInfo",
}


class Gen:
    def __init__(self, spec: btf.Spec) -> None:
        self.spec = spec
        self.out: list[str] = []
        self.layout: dict[str, dict[str, tuple[int, int]]] = {}
        self.origin: dict[str, tuple[str, str]] = {}
        self.lazy: list[str] = []  # names built on first use, in definition order
        self.stub: list[str] = []  # the same names as the type checker sees them

    # --- types ---------------------------------------------------------------------------
    def ctype(self, t: btf.Type, nested_name: str, owner_lines: list[str]) -> str:
        t = self.spec.resolve(t)
        if isinstance(t, btf.Int):
            if t.size == 1 and (t.is_char or t.name == "char"):
                return "ctypes.c_char"
            signed = t.signed and not t.is_bool
            return f"ctypes.c_{'' if signed else 'u'}int{t.size * 8}"
        if isinstance(t, (btf.Enum, btf.Enum64)):
            return f"ctypes.c_{'' if t.signed else 'u'}int{t.size * 8}"
        if isinstance(t, btf.Pointer):
            return "ctypes.c_uint64"
        if isinstance(t, btf.Array):
            elem = self.spec.resolve(t.elem_type)
            return f"({self.ctype(elem, nested_name, owner_lines)} * {t.nelems})"
        if isinstance(t, (btf.Struct, btf.Union)):
            self.emit_struct(nested_name, t, owner_lines)
            return f"_get({nested_name!r})"
        if isinstance(t, btf.Float):
            floats = {4: "ctypes.c_float", 8: "ctypes.c_double"}
            return floats.get(t.size, f"(ctypes.c_uint8 * {t.size})")
        raise TypeError(f"cannot map {t!r} to ctypes")

    def emit_struct(self, name: str, t: btf.Struct | btf.Union, lines: list[str],
                    doc: str = "") -> None:
        is_union = isinstance(t, btf.Union)
        body: list[str] = []
        fields: list[str] = []
        anonymous: list[str] = []
        props: list[str] = []
        pos = 0
        emitted_units: set[int] = set()
        for i, m in enumerate(t.members):
            mt = self.spec.resolve(m.type)
            byte_off = m.offset // 8
            if m.bitfield_size:
                size = self.spec.sizeof(mt)
                unit = (m.offset // (size * 8)) * size
                if unit + size > t.size:
                    unit = t.size - size
                store = f"_bf_{unit}"
                if unit not in emitted_units:
                    if not is_union and unit < pos:
                        # Storage overlaps a previous field: fall back to a byte-wide unit.
                        unit, size, store = byte_off, 1, f"_bf_{byte_off}"
                    if unit not in emitted_units:
                        if not is_union and unit > pos:
                            fields.append(f"(\"_pad_{pos}\", ctypes.c_uint8 * {unit - pos}),")
                        fields.append(f"(\"{store}\", ctypes.c_uint{size * 8}),")
                        emitted_units.add(unit)
                        pos = max(pos, unit + size)
                shift = m.offset - unit * 8
                mask = (1 << m.bitfield_size) - 1
                keep = f"(self.{store} & ~({mask:#x} << {shift}))"
                props.append(
                    f"{m.name} = property(\n"
                    f"    lambda self: (self.{store} >> {shift}) & {mask:#x},\n"
                    f"    lambda self, v: setattr(self, \"{store}\", {keep}"
                    f" | ((v & {mask:#x}) << {shift})),\n)"
                )
                continue
            fname = m.name or f"_anon{i}"
            ctype = self.ctype(mt, f"{name}_{fname.lstrip('_')}", lines)
            if not is_union:
                if byte_off < pos:
                    raise ValueError(f"{name}.{fname}: overlapping layout")
                if byte_off > pos:
                    fields.append(f"(\"_pad_{pos}\", ctypes.c_uint8 * {byte_off - pos}),")
                pos = byte_off + self.spec.sizeof(mt)
            fields.append(f"(\"{fname}\", {ctype}),")
            if not m.name:
                anonymous.append(fname)
        if is_union:
            fields.append(f"(\"_size\", ctypes.c_uint8 * {t.size}),")
        elif pos < t.size:
            fields.append(f"(\"_pad_{pos}\", ctypes.c_uint8 * {t.size - pos}),")
        kind = "ctypes.Union" if is_union else "ctypes.Structure"
        cname = ("union " if is_union else "struct ") + (t.name or "(anonymous)")
        docline = f"\"\"\"{doc or f'``{cname}``'} ({t.size} bytes).\"\"\""
        body.append(f"def _mk_{name}() -> type:")
        body.append(f"    class {name}({kind}):")
        body.append(f"        {docline}")
        body.append("")
        body.append("        _pack_ = 1")
        body.append("        _layout_ = \"ms\"  # explicit for Python >= 3.14; "
                    "with _pack_ 1 as gcc")
        if anonymous:
            body.append(f"        _anonymous_ = ({', '.join(repr(a) for a in anonymous)},)")
        body.append("        _fields_ = (")
        body.extend("            " + f for f in fields)
        body.append("        )")
        for p in props:
            body.append("        " + p.replace("\n", "\n        "))
        body.append("")
        body.append(f"    {name}.__qualname__ = {name!r}")
        body.append(f"    assert ctypes.sizeof({name}) == {t.size}, {name!r}")
        body.append(f"    return {name}")
        lines.append("\n".join(body) + "\n\n\n")
        self.layout[name] = self.member_layout(t)
        self.lazy.append(name)
        bits = [p.split(" = property", 1)[0] for p in props]
        stub = [f"class {name}({kind}):", f"    {docline}"]
        stub.extend(f"    {b}: int" for b in bits)
        self.stub.append("\n".join(stub) + "\n\n")

    def member_layout(self, t: btf.Struct | btf.Union) -> dict[str, tuple[int, int]]:
        """Named members, with anonymous members flattened, as name -> (byte offset, size)."""
        result: dict[str, tuple[int, int]] = {"__size__": (0, t.size)}

        def walk(s: btf.Struct | btf.Union, base: int) -> None:
            for m in s.members:
                mt = self.spec.resolve(m.type)
                if not m.name:
                    if isinstance(mt, (btf.Struct, btf.Union)):
                        walk(mt, base + m.offset)
                    continue
                if m.bitfield_size:
                    continue
                result.setdefault(m.name, ((base + m.offset) // 8, self.spec.sizeof(mt)))

        walk(t, 0)
        return result

    # --- enums ---------------------------------------------------------------------------
    def emit_enum(self, t: btf.Enum | btf.Enum64) -> str:
        cls = [f"class {t.name}(enum.IntEnum):", f"    \"\"\"``enum {t.name}``.\"\"\"", ""]
        seen: set[str] = set()
        for v in t.values:
            if v.name in seen:
                continue
            seen.add(v.name)
            cls.append(f"    {v.name} = {v.value}")
        consts = [f"{v.name} = {v.value}" for v in t.values]
        self.lazy.append(t.name)
        self.stub.append("\n".join(cls) + "\n\n" + "".join(f"{c.split(' = ')[0]}: int\n"
                                                           for c in consts) + "\n")
        thunk = [f"def _mk_{t.name}() -> type:"]
        thunk.extend(("    " + line) if line else "" for line in cls)
        thunk.append("")
        thunk.append(f"    {t.name}.__qualname__ = {t.name!r}")
        thunk.append(f"    return {t.name}")
        return "\n".join(thunk) + "\n\n\n" + "\n".join(consts) + "\n"

    def run(self, source: str) -> str:
        spec = self.spec
        head = [
            f"# Code generated by tools/gen_types.py from {source}; DO NOT EDIT.",
            '"""Kernel ABI of bpf(2) and perf_event_open(2), generated from kernel BTF."""',
            "",
            "from __future__ import annotations",
            "",
            "import _thread",
            "import ctypes",
            "import enum",
            "",
            "# ruff: noqa",
            "",
            "# (Annotations stay unevaluated strings: importing typing here would cost more than",
            "# the whole module.)",
            "# Enums and structs are built on first use (PEP 562 module __getattr__): an import",
            "# then costs a few constants instead of ~200 classes. The type checker reads the",
            "# names from _generated_types.pyi.",
            "",
        ]
        parts: list[str] = []
        for name in ENUMS:
            e: btf.Enum | btf.Enum64
            try:
                e = spec.find(name, kind=btf.Enum)
            except KeyError:
                try:
                    e = spec.find(name, kind=btf.Enum64)
                except KeyError:
                    print(f"warning: enum {name} not in BTF", file=sys.stderr)
                    continue
            parts.append(self.emit_enum(e) + "\n")
        # Flag constants from anonymous enums.
        flags: dict[str, int] = {}
        anon: list[btf.Enum | btf.Enum64] = [*spec.types(btf.Enum), *spec.types(btf.Enum64)]
        for t in anon:
            if t.name:
                continue
            for v in t.values:
                if v.name.startswith(FLAG_PREFIXES) and v.name not in flags:
                    flags[v.name] = v.value
        parts.append("# Flag constants from anonymous kernel enums.\n")
        parts.extend(f"{k} = {v}\n" for k, v in sorted(flags.items()))
        self.stub_flags = "".join(f"{k}: int\n" for k in sorted(flags)) + "\n"
        parts.append("\n\n")
        # union bpf_attr arms.
        attr = spec.find("bpf_attr", kind=btf.Union)
        arm_sizes: dict[str, int] = {}
        for i, m in enumerate(attr.members):
            key = m.name or self.first_leaf(m)
            cls = ATTR_ARMS.get(key)
            if cls is None:
                cls = f"BpfAttrArm{i}"
                print(f"warning: unknown bpf_attr arm {key!r} -> {cls}", file=sys.stderr)
            mt = spec.resolve(m.type)
            assert isinstance(mt, (btf.Struct, btf.Union))
            lines: list[str] = []
            self.emit_struct(cls, mt, lines, doc=f"``union bpf_attr`` arm ``{key}``")
            parts.extend(lines)
            self.origin[cls] = ("bpf_attr", key)
            arm_sizes[cls] = mt.size
        parts.append(f"BPF_ATTR_SIZE = {attr.size}\n\n")
        for (kind, cname), cls in STRUCTS.items():
            try:
                st: btf.Struct | btf.Union
                if kind == "struct":
                    st = spec.find(cname, kind=btf.Struct)
                else:
                    st = spec.find(cname, kind=btf.Union)
            except KeyError:
                print(f"warning: {kind} {cname} not in BTF", file=sys.stderr)
                continue
            lines = []
            self.emit_struct(cls, st, lines)
            parts.extend(lines)
            self.origin[cls] = (kind, cname)
        parts.append("#: class -> ('bpf_attr', arm key) or ('struct', C name)\n")
        parts.append("ORIGIN: dict[str, tuple[str, str]] = {\n")
        parts.extend(f"    {k!r}: {v!r},\n" for k, v in self.origin.items())
        parts.append("}\n\n")
        parts.append("def _mk_EXPECTED_LAYOUT() -> dict[str, dict[str, tuple[int, int]]]:\n")
        parts.append("    \"\"\"class -> {member: (byte offset, size)} from BTF, for the layout "
                     "test.\"\"\"\n")
        parts.append("    return {\n")
        for cls in self.origin:
            parts.append(f"        {cls!r}: {self.layout[cls]!r},\n")
        parts.append("    }\n\n\n")
        self.lazy.append("EXPECTED_LAYOUT")
        parts.append("_LAZY: dict[str, Any] = {\n")
        parts.extend(f"    {n!r}: _mk_{n},\n" for n in self.lazy)
        parts.append("}\n")
        parts.append(_LAZY_TAIL)
        return "\n".join(head) + "\n" + "".join(parts)

    def run_stub(self, source: str) -> str:
        """The names of :meth:`run`'s module as a type checker sees them (call after run)."""
        head = [
            f"# Code generated by tools/gen_types.py from {source}; DO NOT EDIT.",
            '"""Types of the lazily built kernel ABI module ``_generated_types``."""',
            "",
            "import ctypes",
            "import enum",
            "from typing import Any",
            "",
            "# ruff: noqa",
            "",
        ]
        tail = [
            "BPF_ATTR_SIZE: int",
            "ORIGIN: dict[str, tuple[str, str]]",
            "EXPECTED_LAYOUT: dict[str, dict[str, tuple[int, int]]]",
            "",
            "def __getattr__(name: str) -> Any: ...",
            "",
        ]
        return "\n".join(head) + "\n" + "".join(self.stub) + self.stub_flags + "\n".join(tail)

    def first_leaf(self, m: btf.Member) -> str:
        t = self.spec.resolve(m.type)
        while isinstance(t, (btf.Struct, btf.Union)) and t.members:
            first = t.members[0]
            if first.name:
                return first.name
            t = self.spec.resolve(first.type)
        return m.name


_LAZY_TAIL = '''
_lock = _thread.RLock()


def __getattr__(name: str) -> Any:
    """Build a lazily defined enum or struct once, on first use, and keep it."""
    make = _LAZY.get(name)
    if make is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    with _lock:  # one class per name, also when threads race (nested builds re-enter)
        g = globals()
        if name not in g:
            g[name] = make()
        return g[name]


_get = __getattr__


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
'''


def generate(btf_path: Path) -> tuple[str, str]:
    spec = btf.Spec.from_file(btf_path)
    try:
        source = str(btf_path.relative_to(ROOT))
    except ValueError:
        source = str(btf_path)
    if btf_path == PINNED and PINNED_VERSION.exists():
        source += f" (Linux {PINNED_VERSION.read_text().strip()})"
    gen = Gen(spec)
    text = gen.run(source)
    return text, gen.run_stub(source)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--btf", type=Path, default=PINNED)
    ap.add_argument("--check", action="store_true", help="fail if the generated file is stale")
    args = ap.parse_args(argv)
    text, stub = generate(args.btf)
    if args.check:
        stale = False
        for path, want in ((OUTPUT, text), (STUB, stub)):
            current = path.read_text() if path.exists() else ""
            if current != want:
                sys.stdout.writelines(
                    difflib.unified_diff(current.splitlines(True), want.splitlines(True),
                                         str(path), "regenerated", n=1)
                )
                stale = True
        if stale:
            print(f"{OUTPUT} is stale: run python tools/gen_types.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    STUB.write_text(stub)
    print(f"wrote {OUTPUT} and {STUB.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
