"""Typed skeletons of BPF objects, like ``bpftool gen skeleton`` or cilium's bpf2go.

``python -m ebpf gen skeleton obj.o > obj_skel.py`` writes a module that embeds the object
and gives it types: one class whose ``maps``/``programs`` attributes are the object's maps and
programs, ``rodata``/``bss``/``data`` namespaces with a typed property per global variable
(set ``.rodata`` before :meth:`load`, read and write ``.bss``/``.data`` after), and
:mod:`ctypes` structures for the structs used as map keys and values, global variables and
any ``--type NAME`` (e.g. ring buffer events)::

    from obj_skel import Obj, event
    with Obj() as skel:
        skel.rodata.targ_pid = 42
        skel.load()
        for raw in ringbuf.read(): ev = event.from_buffer_copy(raw)

The output passes ``mypy --strict``. Pure: reads the object, writes text.
"""

from __future__ import annotations

import argparse
import base64
import keyword
import os
import sys
from collections.abc import Iterable, Mapping, Sequence

from .. import btf as _btf
from .._spec import CollectionSpec
from ..errors import BPFError

__all__ = ["generate", "main"]

_DATA_NAMESPACES = {".rodata": "rodata", ".bss": "bss", ".data": "data", ".kconfig": "kconfig"}


def _ident(name: str) -> str:
    """A Python identifier for a BPF object name (``.rodata`` -> ``rodata``)."""
    out = "".join(c if c.isalnum() or c == "_" else "_" for c in name).strip("_") or "x"
    if out[0].isdigit():
        out = "_" + out
    if keyword.iskeyword(out) or out in ("load", "close", "spec", "collection"):
        out += "_"
    return out


def _class_name(path: str) -> str:
    base = os.path.basename(path).split(".", 1)[0]
    return "".join(p.capitalize() for p in _ident(base).split("_") if p) or "Skeleton"


class _Types:
    """ctypes declarations for BTF types, dependencies first."""

    def __init__(self, spec: _btf.Spec) -> None:
        self.spec = spec
        self.lines: list[str] = []
        self.done: dict[int, str] = {}
        self.names: set[str] = set()

    def ctype(self, t: _btf.Type, depth: int = 0) -> str:
        """The ctypes expression for ``t`` (declaring structs as needed)."""
        if depth > 16:
            raise BPFError("skeleton: types nest too deeply")
        t = self.spec.resolve(t)
        if isinstance(t, _btf.Int):
            if t.is_bool:
                return "ctypes.c_bool"
            if t.size == 1 and (t.is_char or t.name == "char"):
                return "ctypes.c_char"
            if t.size not in (1, 2, 4, 8, 16):
                return f"ctypes.c_uint8 * {t.size}"
            if t.size == 16:
                return "ctypes.c_uint64 * 2"
            return f"ctypes.c_{'' if t.signed else 'u'}int{t.size * 8}"
        if isinstance(t, (_btf.Enum, _btf.Enum64)):
            return f"ctypes.c_{'' if t.signed else 'u'}int{t.size * 8}"
        if isinstance(t, _btf.Pointer):
            return "ctypes.c_uint64"
        if isinstance(t, _btf.Float):
            return {4: "ctypes.c_float", 8: "ctypes.c_double"}.get(
                self.spec.sizeof(t), f"ctypes.c_uint8 * {self.spec.sizeof(t)}")
        if isinstance(t, _btf.Array):
            return f"({self.ctype(t.elem_type, depth + 1)}) * {t.nelems}"
        if isinstance(t, _btf.Composite):
            return self.struct(t, depth)
        try:
            size = self.spec.sizeof(t)
        except (ValueError, KeyError):
            size = 0
        return f"ctypes.c_uint8 * {size}"

    def struct(self, t: _btf.Composite, depth: int = 0) -> str:
        if t.id in self.done:
            return self.done[t.id]
        base = _ident(t.name) if t.name else f"anon_{t.id}"
        name = base
        n = 1
        while name in self.names:
            n += 1
            name = f"{base}_{n}"
        self.names.add(name)
        self.done[t.id] = name
        fields: list[str] = []
        end = 0  # bytes ctypes has laid out so far (members are not reordered)
        pad = 0
        size = self.spec.sizeof(t)
        is_struct = isinstance(t, _btf.Struct)
        for m in t.members:
            mtype = self.ctype(m.type, depth + 1)
            mname = _ident(m.name) if m.name else f"_anon{len(fields)}"
            try:
                msize = self.spec.sizeof(m.type)
            except (ValueError, KeyError):
                msize = 0
            start = m.offset // 8
            if m.bitfield_size and msize:
                start = m.offset // (8 * msize) * msize  # the storage unit ctypes allocates
            if is_struct and start > end:
                fields.append(f"        (\"_pad{pad}\", ctypes.c_uint8 * {start - end}),")
                pad += 1
                end = start
            if m.bitfield_size:
                fields.append(f"        (\"{mname}\", {mtype}, {m.bitfield_size}),")
                if is_struct:
                    end = max(end, start + msize)
            else:
                fields.append(f"        (\"{mname}\", {mtype}),")
                if is_struct:
                    end = start + msize
        if is_struct and size > end:
            fields.append(f"        (\"_pad{pad}\", ctypes.c_uint8 * {size - end}),")
        kind = "Union" if isinstance(t, _btf.Union) else "Structure"
        lines = [f"class {name}(ctypes.{kind}):",
                 f"    \"\"\"``{'union' if kind == 'Union' else 'struct'} {t.name or '(anonymous)'}"
                 f"`` ({size} bytes) from the object's BTF.\"\"\"", "",
                 "    _pack_ = 1"]
        lines.append("    _fields_ = [" if fields else "    _fields_: list[tuple[str, Any]] = []")
        if fields:
            lines += fields
            lines.append("    ]")
        self.lines += [*lines, "", ""]
        return name


def _py_type(spec: _btf.Spec | None, t: _btf.Type | None, size: int) -> str:
    if t is None:
        return "int" if size in (1, 2, 4, 8) else "bytes"
    if isinstance(t, _btf.Var):
        t = t.type
    r = t.spec.resolve(t)
    if isinstance(r, (_btf.Int, _btf.Enum, _btf.Enum64)):
        return "int"
    return "bytes"


def generate(data: bytes, object_name: str = "obj.o", types: Iterable[str] = (),
             events: Mapping[str, str] | None = None) -> str:
    """The skeleton module for the object ``data`` (its file name is ``object_name``).

    ``types`` are extra structs to declare; ``events`` maps a ring buffer map's name to the
    struct of its records, which gives the skeleton a typed ``read_<map>()`` iterator."""
    events = dict(events or {})
    types = [*types, *events.values()]
    spec = CollectionSpec.from_bytes(data)
    for mname in events:
        if mname not in spec.maps:
            raise BPFError(f"skeleton: no map {mname!r} for --event")
    cls = _class_name(object_name)
    tt = _Types(spec.btf) if spec.btf is not None else None
    struct_for: dict[str, str] = {}
    if tt is not None:
        wanted: list[_btf.Type] = []
        btf_spec = spec.btf
        assert btf_spec is not None
        for ms in spec.maps.values():
            for tid in (ms.btf_key_type_id, ms.btf_value_type_id):
                if tid:
                    t = btf_spec.resolve(btf_spec[tid])
                    if isinstance(t, _btf.Composite) and not isinstance(t, _btf.DataSec):
                        wanted.append(t)
        for vs in spec.variables.values():
            if vs.type is not None:
                t = vs.type.type if isinstance(vs.type, _btf.Var) else vs.type
                t = btf_spec.resolve(t)
                if isinstance(t, _btf.Composite):
                    wanted.append(t)
        for name in types:
            found = None
            for kind in (_btf.Struct, _btf.Union):
                try:
                    found = btf_spec.find(name, kind)
                    break
                except KeyError:
                    continue
            if found is None:
                raise BPFError(f"skeleton: no struct or union {name!r} in the object's BTF")
            wanted.append(found)
        for t in wanted:
            assert isinstance(t, _btf.Composite)
            struct_for[t.name] = tt.struct(t)
    b64 = base64.b64encode(data).decode()
    chunks = [b64[i:i + 76] for i in range(0, len(b64), 76)]
    out: list[str] = [
        f'"""Typed skeleton of {os.path.basename(object_name)} '
        f'(generated by ``python -m ebpf gen skeleton``; do not edit)."""',
        "",
        "from __future__ import annotations",
        "",
        "import base64",
        "import ctypes",
        "from collections.abc import Iterator",
        "from types import TracebackType",
        "from typing import Any",
        "",
        "from ebpf._collection import Collection, Variable",
        "from ebpf._maps import Map",
        "from ebpf._programs import Program",
        "from ebpf._spec import CollectionSpec",
        "from ebpf.ringbuf import RingBuffer",
        "",
        "_OBJECT = base64.b64decode(",
        *[f'    "{c}"' for c in chunks],
        ")",
        "",
        "",
    ]
    if tt is not None:
        out += tt.lines
    # variables, grouped by data map
    groups: dict[str, list[tuple[str, str, str]]] = {}
    for vname, vs in spec.variables.items():
        ns = _DATA_NAMESPACES.get(vs.map, _ident(vs.map))
        groups.setdefault(ns, []).append((_ident(vname), vname, _py_type(spec.btf, vs.type,
                                                                         vs.size)))
    for ns, vars_ in groups.items():
        out += [f"class _{cls}_{ns}:",
                f"    \"\"\"Variables of ``{ns}``: set before ``load()`` (the object's "
                "initial values), read and written after (``.rodata``/``.kconfig`` are "
                "read-only once loaded).\"\"\"", "",
                "    def __init__(self, skel: _Base) -> None:",
                "        self._skel = skel", ""]
        for ident, vname, pyt in vars_:
            conv = "_as_int" if pyt == "int" else "_as_bytes"
            out += ["    @property",
                    f"    def {ident}(self) -> {pyt}:",
                    f"        return {conv}(self._skel._get({vname!r}))", "",
                    f"    @{ident}.setter",
                    f"    def {ident}(self, value: {pyt}) -> None:",
                    f"        self._skel._set({vname!r}, value)", ""]
        out.append("")
    out += [
        "def _as_int(v: int | bytes) -> int:",
        "    return v if isinstance(v, int) else int.from_bytes(v, 'little')",
        "",
        "",
        "def _as_bytes(v: int | bytes) -> bytes:",
        "    return v if isinstance(v, bytes) else bytes(ctypes.c_uint64(v))",
        "",
        "",
        "class _Base:",
        "    def __init__(self) -> None:",
        "        self.spec = CollectionSpec.from_bytes(_OBJECT)",
        "        self.collection: Collection | None = None",
        "",
        "    def _get(self, name: str) -> int | bytes:",
        "        if self.collection is not None:",
        "            return self.collection.variables[name].get()",
        "        vs = self.spec.variables[name]",
        "        ms = self.spec.maps[vs.map]",
        "        raw = ms.contents[0][1] if ms.contents else b''",
        "        assert isinstance(raw, bytes)",
        "        val = raw[vs.offset:vs.offset + vs.size].ljust(vs.size, b'\\0')",
        "        return int.from_bytes(val, 'little') if vs.size in (1, 2, 4, 8) else val",
        "",
        "    def _set(self, name: str, value: object) -> None:",
        "        if self.collection is not None:",
        "            self.collection.variables[name].set(value)",
        "        else:",
        "            self.spec = self.spec.set_variables({name: value})",
        "",
        "    def _loaded(self) -> Collection:",
        "        if self.collection is None:",
        "            raise RuntimeError('call load() first')",
        "        return self.collection",
        "",
        "",
    ]
    out += [f"class _{cls}Maps:", "    def __init__(self, coll: Collection) -> None:",
            "        self._coll = coll", ""]
    for mname in spec.maps:
        out += ["    @property", f"    def {_ident(mname)}(self) -> Map:",
                f"        return self._coll.maps[{mname!r}]", ""]
    out += ["", f"class _{cls}Programs:", "    def __init__(self, coll: Collection) -> None:",
            "        self._coll = coll", ""]
    for pname in spec.programs:
        out += ["    @property", f"    def {_ident(pname)}(self) -> Program:",
                f"        return self._coll.programs[{pname!r}]", ""]
    out += ["", f"class {cls}(_Base):",
            f"    \"\"\"{os.path.basename(object_name)}: maps {sorted(spec.maps)}, programs "
            f"{sorted(spec.programs)}.\"\"\"", "",
            "    def __init__(self) -> None:",
            "        super().__init__()"]
    for ns in groups:
        out.append(f"        self.{ns} = _{cls}_{ns}(self)")
    out.append("        self._readers: dict[str, RingBuffer] = {}")
    for mname, sname in events.items():
        ctype = struct_for[sname]
        out += ["",
                f"    def read_{_ident(mname)}(self, timeout: float | None = 0.0"
                f") -> Iterator[{ctype}]:",
                f"        \"\"\"Records of ring buffer ``{mname}`` as ``{ctype}``.\"\"\"",
                f"        rb = self._readers.get({mname!r})",
                "        if rb is None:",
                f"            rb = self._readers[{mname!r}] = RingBuffer("
                f"self._loaded().maps[{mname!r}])",
                "        for raw in rb.read(timeout):",
                f"            yield {ctype}.from_buffer_copy(bytes(raw)"
                f"[:ctypes.sizeof({ctype})])"]
    out += ["",
            "    def load(self, **kwargs: Any) -> None:",
            "        \"\"\"Create maps and load programs (``Collection.load`` keywords).\"\"\"",
            "        self.collection = Collection.load(self.spec, **kwargs)",
            "",
            "    @property",
            f"    def maps(self) -> _{cls}Maps:",
            f"        return _{cls}Maps(self._loaded())",
            "",
            "    @property",
            f"    def programs(self) -> _{cls}Programs:",
            f"        return _{cls}Programs(self._loaded())",
            "",
            "    def variable(self, name: str) -> Variable:",
            "        return self._loaded().variables[name]",
            "",
            "    def close(self) -> None:",
            "        for rb in self._readers.values():",
            "            rb.close()",
            "        self._readers.clear()",
            "        if self.collection is not None:",
            "            self.collection.close()",
            "            self.collection = None",
            "",
            f"    def __enter__(self) -> {cls}:",
            "        return self",
            "",
            "    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,",
            "                 tb: TracebackType | None) -> None:",
            "        self.close()",
            ""]
    exported = sorted({cls, *struct_for.values()})
    at = out.index("_OBJECT = base64.b64decode(")
    out[at:at] = ["__all__ = [" + ", ".join(repr(n) for n in exported) + "]", ""]
    return "\n".join(out).rstrip() + "\n"


def main(argv: Sequence[str]) -> int:
    """``ebpf gen skeleton OBJ [--type NAME ...]``: print the skeleton module."""
    ap = argparse.ArgumentParser(prog="ebpf gen", description="Generate typed code.")
    sub = ap.add_subparsers(dest="what", required=True)
    p = sub.add_parser("skeleton", help="typed Python module for a BPF object")
    p.add_argument("object")
    p.add_argument("--type", "-t", action="append", default=[],
                   help="also declare this struct/union")
    p.add_argument("--event", "-e", action="append", default=[], metavar="MAP=STRUCT",
                   help="ring buffer MAP carries STRUCT records: adds read_MAP()")
    args = ap.parse_args(list(argv))
    events = dict(e.partition("=")[::2] for e in args.event)
    with open(args.object, "rb") as f:
        data = f.read()
    try:
        sys.stdout.write(generate(data, args.object, args.type, events))
    except BPFError as e:
        print(f"ebpf gen skeleton: {e}", file=sys.stderr)
        return 1
    return 0
