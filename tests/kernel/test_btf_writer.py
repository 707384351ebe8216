"""ebpf.btf.writer against the kernel: BPF_BTF_LOAD takes every kind; a map is created with
key/value BTF from the writer (and decodes through it); a program is loaded with func_info
and line_info from the writer, and its line info read back from the kernel matches."""

from __future__ import annotations

import ctypes
import errno
import struct
from collections.abc import Callable

import pytest

import ebpf
from ebpf import asm, btf
from ebpf._sys import commands
from ebpf._uapi import _generated_types as _t
from ebpf.asm import R0, R1
from ebpf.btf.handle import BTFHandle
from ebpf.btf.writer import FUNC_INFO_SIZE, LINE_INFO_SIZE, BTFWriter, Field


def _kernel_spec(btf_id: int) -> btf.Spec:
    """The BTF object ``btf_id`` as the kernel holds it, parsed."""
    with commands.fd_by_id(commands.ObjKind.BTF, btf_id, "BTF") as fd:
        info = commands.obj_info(fd.fileno(), _t.BpfBtfInfo())
        buf = ctypes.create_string_buffer(info.btf_size)
        info2 = _t.BpfBtfInfo()
        info2.btf = ctypes.addressof(buf)
        info2.btf_size = info.btf_size
        commands.obj_info(fd.fileno(), info2)
        return btf.Spec.from_bytes(buf.raw[: info2.btf_size])


def _int(w: BTFWriter) -> int:
    return w.int_("int", 4, signed=True)


def _ints(w: BTFWriter) -> None:
    w.int_("unsigned char", 1)
    w.int_("char", 1, char=True)
    w.int_("_Bool", 1, bool_=True)
    w.int_("long long", 8, signed=True)
    w.int_("__int128", 16, signed=True)
    w.int_("narrow", 4, bits=12, bit_offset=4)


def _composites(w: BTFWriter) -> None:
    i = _int(w)
    u8 = w.int_("unsigned char", 1)
    node = w.reserve()
    w.struct("node", [("next", w.pointer(node)), ("val", i),
                      ("name", w.array(u8, 10))], id=node)
    w.struct("bits", [Field("a", u8, bits=1), Field("b", i, bits=31), ("c", i),
                      Field("d", w.enum("e", {"X": 1, "Y": 2}), bits=2)])
    w.union("u", [("i", i), ("b", w.array(u8, 8)), Field("f", i, bits=5)])
    w.struct("", [("anon", i)])


_KINDS: dict[str, tuple[str, Callable[[BTFWriter], object]]] = {
    "int": ("5.2", _ints),
    "ptr": ("5.2", lambda w: (w.pointer(_int(w)), w.pointer(0))),
    "array": ("5.2", lambda w: w.array(w.array(_int(w), 3), 4)),
    "struct_union_bitfields": ("5.2", _composites),
    "enum": ("5.2", lambda w: w.enum("e", {"A": 0, "B": 7, "C": 0xFFFF_FFFF})),
    "enum_signed": ("6.0", lambda w: w.enum("s", {"NEG": -1, "POS": 1})),
    "enum64": ("6.0", lambda w: w.enum64("e64", {"BIG": 1 << 40, "NEG": -2})),
    "fwd": ("5.2", lambda w: (w.fwd("a_struct"), w.fwd("a_union", union=True))),
    "typedef": ("5.2", lambda w: w.typedef("my_int", _int(w))),
    "qualifiers": ("5.2", lambda w: w.restrict(w.pointer(w.const(w.volatile(_int(w)))))),
    "func_proto": ("5.2", lambda w: (w.func_proto(0), w.func_proto(
        _int(w), [("fmt", w.pointer(0))], variadic=True))),
    "func": ("5.2", lambda w: (
        w.func("g", w.func_proto(_int(w), [("x", _int(w))]), ebpf.btf.Linkage.GLOBAL),
        w.func("s", w.func_proto(0, [("p", w.pointer(0))])))),
    "var_datasec": ("5.2", lambda w: (
        w.data_section(".data", [("a", _int(w)), ("b", w.int_("long", 8, signed=True))]),
        w.data_section(".rodata", [("limit", _int(w))]),
        w.datasec(".bss", [(w.var("s.x", _int(w), ebpf.btf.Linkage.STATIC), 8)], size=16))),
    "float": ("5.13", lambda w: (w.float_("float", 4), w.float_("double", 8))),
    "decl_tag": ("5.16", lambda w: (
        w.decl_tag("on_struct", s := w.struct("t", [("a", _int(w))])),
        w.decl_tag("on_member", s, 0),
        w.decl_tag("on_param", f := w.func("f", w.func_proto(0, [("x", _int(w))])), 0),
        w.decl_tag("on_func", f),
        w.decl_tag("on_var", w.var("v", _int(w))),
        w.decl_tag("on_typedef", w.typedef("td", _int(w))))),
    "type_tag": ("5.17", lambda w: w.pointer(w.type_tag("user", w.const(_int(w))))),
    "tag_attr": ("6.15", lambda w: (w.pointer(w.type_tag("a", _int(w), attr=True)),
                                   w.decl_tag("d", w.var("v", _int(w)), attr=True))),
}


@pytest.mark.parametrize("kind", sorted(_KINDS))
def test_btf_load_accepts_kind(kind: str) -> None:
    need, build = _KINDS[kind]
    w = BTFWriter()
    build(w)
    blob = w.encode()
    try:
        h = BTFHandle.load(blob)
    except ebpf.errors.VerifierError as e:
        if e.errno == errno.EINVAL and ebpf.platform.kernel_version() < need:
            pytest.skip(f"{e} ({kind} needs kernel >= {need})")
        raise
    with h:
        info = commands.obj_info(h.fileno(), _t.BpfBtfInfo())
        got = _kernel_spec(info.id)
    assert got.raw == blob  # the kernel keeps what it verified, byte for byte
    ours = btf.Spec.from_bytes(blob)
    assert [repr(t) for t in got] == [repr(t) for t in ours]


def test_btf_load_every_kind_at_once() -> None:
    w = BTFWriter()
    for need, build in _KINDS.values():
        if ebpf.platform.kernel_version() >= need:
            build(w)
    with BTFHandle.load(w.encode()) as h:
        assert h.fileno() >= 0


def test_map_with_writer_key_value_btf() -> None:
    w = BTFWriter()
    u32 = w.int_("u32", 4)
    u64 = w.int_("u64", 8)
    value = w.struct("stats", [("packets", u64), ("bytes", u64), ("proto", u32),
                               ("name", w.array(w.int_("char", 1, char=True), 4))])
    with BTFHandle.load(w.encode()) as h:
        m = ebpf.Map.create(ebpf.MapType.HASH, key_size=4, value_size=w.sizeof(value),
                            max_entries=8, btf=h, btf_key_type_id=u32,
                            btf_value_type_id=value)
    with m:
        info = m.info()
        assert (info.btf_key_type_id, info.btf_value_type_id) == (u32, value)
        st = _kernel_spec(info.btf_id).resolve(value)
        assert isinstance(st, btf.Struct) and st.name == "stats" and st.size == 24
        m[struct.pack("=I", 1)] = struct.pack("=QQI4s", 10, 1500, 17, b"udp")
        with ebpf.Map.from_fd(m.fileno()) as typed:  # decodes through the map's BTF
            v = typed[struct.pack("=I", 1)]
            assert (v.packets, v.bytes, v.proto, v.name) == (10, 1500, 17, b"udp")


def test_spin_lock_and_datasec_maps() -> None:
    """What map creation builds (a bpf_spin_lock value) and a global-data map whose
    value type is a DATASEC, both from the writer."""
    w = BTFWriter()
    i = _int(w)
    lock = w.struct("bpf_spin_lock", [("val", i)])
    value = w.struct("locked", [("lock", lock), ("count", i)])
    data = w.data_section(".data", [("hits", w.int_("u64", 8)), ("limit", i)])
    with BTFHandle.load(w.encode()) as h:
        locked = ebpf.Map.create(ebpf.MapType.ARRAY, key_size=4, value_size=w.sizeof(value),
                                 max_entries=1, btf=h, btf_key_type_id=i,
                                 btf_value_type_id=value)
        glob = ebpf.Map.create(ebpf.MapType.ARRAY, key_size=4, value_size=data.size,
                               max_entries=1, btf=h, btf_value_type_id=data.type_id,
                               name=".data")
    with locked, glob:
        key = struct.pack("=I", 0)
        raw = struct.pack("=Ii", 0, 5)
        locked.update(key, raw, flags=ebpf.UpdateFlags.LOCK)
        got = locked.lookup(key, flags=ebpf.UpdateFlags.LOCK)  # an 8-byte value reads as int
        assert got == struct.unpack("=Q", raw)[0]
        glob[key] = struct.pack("=Qi", 3, 9)
        assert glob.info().btf_value_type_id == data.type_id


def test_program_func_and_line_info_read_back() -> None:
    w = BTFWriter()
    i = _int(w)
    main = w.func("main", w.func_proto(i, [("ctx", w.pointer(0))]), btf.Linkage.GLOBAL)
    sub = w.func("add_one", w.func_proto(i, [("x", i)]))
    insns = [
        asm.mov(R1, 7),
        asm.call_label("add_one"),
        asm.exit(),
        asm.label("add_one"),
        asm.mov(R0, R1),
        asm.add(R0, 1),
        asm.exit(),
    ]
    lines = [(0, "prog.py", 3, 5, "x = 7"), (1, "prog.py", 4, 12, "return add_one(x)"),
             (3, "prog.py", 7, 1, "def add_one(x):"), (4, "prog.py", 8, 5, "return x + 1")]
    func_info = w.func_info([(0, main), (3, sub)])
    line_info = w.line_info(lines)
    blob = w.encode()
    with BTFHandle.load(blob) as h, ebpf.Program.load(
            ebpf.ProgramType.SOCKET_FILTER, insns, prog_btf_fd=h.fileno(),
            func_info=func_info, func_info_rec_size=FUNC_INFO_SIZE,
            line_info=line_info, line_info_rec_size=LINE_INFO_SIZE) as prog:
        assert prog.test_run(bytes(64)).retval == 8
        info = commands.obj_info(prog.fileno(), _t.BpfProgInfo())
        n_lines, n_funcs = info.nr_line_info, info.nr_func_info
        assert (n_lines, n_funcs) == (len(lines), 2)
        lbuf = ctypes.create_string_buffer(n_lines * LINE_INFO_SIZE)
        fbuf = ctypes.create_string_buffer(n_funcs * FUNC_INFO_SIZE)
        info2 = _t.BpfProgInfo()
        info2.nr_line_info, info2.line_info_rec_size = n_lines, LINE_INFO_SIZE
        info2.line_info = ctypes.addressof(lbuf)
        info2.nr_func_info, info2.func_info_rec_size = n_funcs, FUNC_INFO_SIZE
        info2.func_info = ctypes.addressof(fbuf)
        commands.obj_info(prog.fileno(), info2)
        spec = _kernel_spec(info.btf_id)
    assert lbuf.raw == line_info and fbuf.raw == func_info  # no rewrite in this program
    got = [(r[0], spec.string(r[1]), r[3] >> 10, r[3] & 0x3FF, spec.string(r[2]))
           for r in struct.iter_unpack("=IIII", lbuf.raw)]
    assert got == lines
    names = [spec[r[1]].name for r in struct.iter_unpack("=II", fbuf.raw)]
    assert names == ["main", "add_one"]


def test_kernel_refuses_missing_line_info_for_a_subprogram() -> None:
    """The one rule the writer leaves to the kernel (it does not see the instructions): a
    subprogram without a line record at its first instruction."""
    w = BTFWriter()
    i = _int(w)
    main = w.func("main", w.func_proto(i, [("ctx", w.pointer(0))]))
    sub = w.func("sub", w.func_proto(i, [("x", i)]))
    insns = [asm.mov(R1, 1), asm.call_label("sub"), asm.exit(), asm.label("sub"),
             asm.mov(R0, R1), asm.exit()]
    func_info = w.func_info([(0, main), (3, sub)])
    line_info = w.line_info([(0, "p.py", 1, 0, "a"), (4, "p.py", 2, 0, "b")])
    with BTFHandle.load(w.encode()) as h, pytest.raises(ebpf.errors.VerifierError) as e:
        ebpf.Program.load(ebpf.ProgramType.SOCKET_FILTER, insns, prog_btf_fd=h.fileno(),
                          func_info=func_info, func_info_rec_size=FUNC_INFO_SIZE,
                          line_info=line_info, line_info_rec_size=LINE_INFO_SIZE)
    assert "missing bpf_line_info for func#1" in "\n".join(e.value.log)


def test_copy_of_kernel_types_loads() -> None:
    """task_struct with everything it refers to (thousands of types, pointer cycles), then
    the whole of vmlinux, copied from the kernel's BTF, are accepted by BPF_BTF_LOAD."""
    kernel = btf.load_kernel()
    w = BTFWriter()
    task = w.copy(kernel.find("task_struct", btf.Struct))
    n_task = len(w)
    assert n_task > 1000 and w.sizeof(task) == kernel.find("task_struct", btf.Struct).size
    with BTFHandle.load(w.encode()) as h:
        assert h.fileno() >= 0
    for t in kernel:
        if t.id:
            w.copy(t)
    # every type once (pahole leaves no exact duplicates to merge, or very few)
    assert 0.99 * (len(kernel) - 1) <= len(w) <= len(kernel) - 1
    with BTFHandle.load(w.encode()) as h:
        assert h.fileno() >= 0
