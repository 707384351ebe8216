"""Typed integer arguments of the BTF-typed tracing kinds (``tp_btf``, ``fentry``, ``fexit``,
``lsm``): each context slot reads as its parameter's C type (``ebpf.bpf._tracing.arg_layout``)
on synthetic BTF (typedef/const/volatile chains, enums by size and sign flag, bool, structs
by value taking one or two slots) and on the running kernel's BTF (``bpf_fentry_test*`` of
net/bpf/test_run.c); the code a narrow signed argument compiles to (a narrow load, then
sign extension); the sleepable variants' sections and flags. The loads themselves are proved
on the kernel by tests/kernel/test_bpf_typed_args.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ebpf import AttachType, ProgramFlags, ProgramType, btf
from ebpf.bpf import i8, i16, i32, i64, u8, u16, u32, u64
from ebpf.bpf._tracing import arg_layout, arg_offsets
from ebpf.btf.writer import BTFWriter
from ebpf.errors import BPFError
from ebpf.testing.modules import import_source

VMLINUX = Path("/sys/kernel/btf/vmlinux")
needs_vmlinux = pytest.mark.skipif(not VMLINUX.exists(), reason="no /sys/kernel/btf/vmlinux")


def _proto(build: Any) -> tuple[list[btf.Param], btf.Type | None]:
    """The parameters and return type of the FUNC_PROTO ``build(writer)`` returns."""
    w = BTFWriter()
    proto_id = build(w)
    spec = btf.Spec.from_bytes(w.encode())
    proto = spec[proto_id]
    assert isinstance(proto, btf.FuncProto)
    return list(proto.params), (proto.return_type if proto.return_type_id else None)


def _all_kinds(w: BTFWriter) -> int:
    int_ = w.int_("int", 4, signed=True)
    u8_ = w.int_("unsigned char", 1)
    char = w.int_("char", 1, char=True)
    short = w.int_("short int", 2, signed=True)
    long_ = w.int_("long int", 8, signed=True)
    i128 = w.int_("__int128", 16, signed=True)
    uid = w.struct("", [("val", w.int_("unsigned int", 4))])
    pair = w.struct("pair", [("a", long_), ("b", long_)])  # 16 bytes: two slots
    task = w.struct("task_struct", [("pid", int_)])
    return w.func_proto(w.const(int_), [
        ("dfd", w.const(int_)),                              # 0: const int
        ("flag", w.typedef("u8", u8_)),                      # 1: typedef -> unsigned char
        ("c", w.volatile(char)),                             # 2: plain char (unsigned)
        ("s", w.typedef("s16", short)),                      # 3
        ("neg", w.enum("sign", {"A": -1, "B": 1})),          # 4: signed enum, 4 bytes
        ("big", w.enum64("wide", {"Y": -(1 << 40)}, size=8)),  # 5: signed ENUM64
        ("uid", w.typedef("kuid_t", uid)),                   # 6: a struct by value, 4 bytes
        ("p", pair),                                         # 7: two slots, no field
        ("wide", i128),                                      # 8: two slots, no field
        ("t", w.pointer(task)),                              # 9 at slot 11
    ])


def test_each_argument_reads_as_its_c_type() -> None:
    params, ret = _proto(_all_kinds)
    lay = arg_layout(params, ret, with_ret=True)
    want = {
        "dfd": (0, i32), "flag": (8, u8), "c": (16, u8), "s": (24, i16), "neg": (32, i32),
        "big": (40, i64), "uid": (48, u32), "t": (88, u64), "ret": (96, i32),
    }
    assert {k: v for k, v in lay.items() if not k.startswith("arg")} == want
    names = ["dfd", "flag", "c", "s", "neg", "big", "uid", "p", "wide", "t"]
    for i, n in enumerate(names):  # argN is the same slot and type as the named parameter
        assert lay.get(f"arg{i}") == want.get(n)
    assert "p" not in lay and "wide" not in lay and "arg7" not in lay
    assert arg_offsets(params)[7:] == [56, 72, 88, 96]


def test_signed_char_small_enum_bool_and_no_return_value() -> None:
    def build(w: BTFWriter) -> int:
        sc = w.int_("signed char", 1, signed=True)
        small = w.enum("small", {"X": 1}, size=1)
        bool_ = w.int_("_Bool", 1, bool_=True)
        return w.func_proto(0, [("a", sc), ("ret", w.pointer(0)), ("e", small), ("ok", bool_)])

    params, ret = _proto(build)
    assert ret is None
    # fexit of a void function: no ctx.ret, so a parameter called ret keeps its name
    assert arg_layout(params, ret, with_ret=True) == {
        "arg0": (0, i8), "arg1": (8, u64), "arg2": (16, u8), "arg3": (24, u8),
        "a": (0, i8), "ret": (8, u64), "e": (16, u8), "ok": (24, u8)}


def test_a_parameter_named_ret_gives_way_to_the_return_value() -> None:
    def build(w: BTFWriter) -> int:
        long_ = w.int_("long int", 8, signed=True)
        return w.func_proto(w.int_("short unsigned int", 2), [("ret", long_)])

    params, ret = _proto(build)
    assert arg_layout(params, ret, with_ret=True) == {"arg0": (0, i64), "ret": (8, u16)}
    assert arg_layout(params, ret, with_ret=False) == {"arg0": (0, i64), "ret": (0, i64)}


def test_too_many_argument_slots_are_refused() -> None:
    def build(w: BTFWriter) -> int:
        long_ = w.int_("long int", 8, signed=True)
        return w.func_proto(0, [(f"a{i}", long_) for i in range(13)])

    params, ret = _proto(build)
    with pytest.raises(BPFError, match="13 argument slots; BPF reaches 12"):
        arg_layout(params, ret, with_ret=False, target="f13")


# -- the running kernel's BTF -------------------------------------------------------------
def _fields(kind: Any, target: str) -> dict[str, tuple[int, Any]]:
    def body(ctx: Any) -> int:
        return 0

    decl = kind(target)(body)
    assert decl.ctx_layout is not None
    return dict(decl.ctx_layout())


@needs_vmlinux
def test_bpf_fentry_test_functions_from_kernel_btf() -> None:
    """bpf_fentry_test3(char a, int b, u64 c) and test5(u64 a, void *b, short c, int d,
    u64 e), both returning int (net/bpf/test_run.c)."""
    from ebpf import bpf

    char = btf.load_kernel().find("char", kind=btf.Int)
    assert isinstance(char, btf.Int)
    ch = i8 if char.signed else u8  # signed before Linux 6.2 (-funsigned-char since)
    t3 = _fields(bpf.fexit, "bpf_fentry_test3")
    assert {k: v for k, v in t3.items() if not k.startswith("arg")} == {
        "a": (0, ch), "b": (8, i32), "c": (16, u64), "ret": (24, i32)}
    assert [t3[f"arg{i}"] for i in range(3)] == [t3["a"], t3["b"], t3["c"]]
    t5 = _fields(bpf.fentry, "bpf_fentry_test5")
    assert [t5[n] for n in "abcde"] == [(0, u64), (8, u64), (16, i16), (24, i32), (32, u64)]
    assert "ret" not in t5
    assert _fields(bpf.fexit, "bpf_fentry_test1") == {
        "arg0": (0, i32), "a": (0, i32), "ret": (8, i32)}


@needs_vmlinux
def test_tracepoint_and_lsm_arguments_from_kernel_btf() -> None:
    from ebpf import bpf

    ex = _fields(bpf.tp_btf, "sys_exit")  # (struct pt_regs *regs, long ret)
    assert ex["regs"] == (0, u64) and ex["ret"] == (8, i64) == ex["arg1"]
    mk = _fields(bpf.lsm, "inode_mkdir")  # (struct inode *, struct dentry *, umode_t mode)
    assert mk["mode"] == (16, u16) and "ret" not in mk
    # a DEFINE_EVENT of class filelock_lock: its names come from __bpf_trace_filelock_lock
    lk = _fields(bpf.tp_btf, "fcntl_setlk")  # (struct inode *, struct file_lock *, int ret)
    assert lk["ret"] == lk["arg2"] == (16, i32) and lk["inode"] == (0, u64)


PROGRAMS = '''
from typing import Any
from ebpf import bpf
from ebpf.bpf import i64, u8, u64

out = bpf.Array(u64, max_entries=4)
last = bpf.var(i64, 0)


@bpf.fexit("bpf_fentry_test3")
def prog(ctx: Any) -> int:
    global last
    last = ctx.b
    if ctx.ret < 0:
        out[0] += 1
    x: u8 = ctx.b
    out[1] = x
    out[2] = ctx.c
    return 0


@bpf.fentry("bpf_fentry_test7", sleepable=True)
def sleepy(ctx: Any) -> int:
    out[3] = ctx.arg.a
    return 0


@bpf.fexit("bpf_fentry_test1", sleepable=True)
def sleepy_exit(ctx: Any) -> int:
    return 0


@bpf.lsm("file_open", sleepable=True)
def sleepy_lsm(ctx: Any) -> int:
    return 0
'''


@needs_vmlinux
def test_narrow_signed_arguments_load_narrow_and_sign_extend(tmp_path: Path) -> None:
    """``int b`` at slot 1: a 4-byte load at offset 8 (the low half on a little-endian
    machine) then <<32 s>>32; ``ctx.ret < 0`` on the int result is a signed compare; a u8
    local from it truncates as in C; ``u64 c`` is one 8-byte load."""
    m = import_source(tmp_path, "typed_args_progs", PROGRAMS)
    text = m.prog.asm()
    assert "= *(u32 *)(r1 + 0x8)" in text
    assert "<<= 0x20" in text and "s>>= 0x20" in text
    assert "*(u32 *)(r1 + 0x18)" in text  # ret: slot 3
    assert "s>= 0x0 goto" in text         # ctx.ret < 0: signed
    assert "*(u64 *)(r1 + 0x10)" in text or "*(u64 *)(r6 + 0x10)" in text


@needs_vmlinux
def test_sleepable_kinds_set_section_and_flag(tmp_path: Path) -> None:
    from ebpf import bpf

    m = import_source(tmp_path, "typed_args_progs", PROGRAMS)
    spec, _ = bpf.build_spec((m.sleepy, m.sleepy_exit, m.sleepy_lsm, m.prog))
    got = {n: (p.section, p.type, p.attach_type, p.attach_to, p.flags)
           for n, p in spec.programs.items()}
    s = int(ProgramFlags.SLEEPABLE)
    assert got == {
        "sleepy": ("fentry.s/bpf_fentry_test7", ProgramType.TRACING, AttachType.TRACE_FENTRY,
                   "bpf_fentry_test7", s),
        "sleepy_exit": ("fexit.s/bpf_fentry_test1", ProgramType.TRACING,
                        AttachType.TRACE_FEXIT, "bpf_fentry_test1", s),
        "sleepy_lsm": ("lsm.s/file_open", ProgramType.LSM, AttachType.LSM_MAC, "file_open", s),
        "prog": ("fexit/bpf_fentry_test3", ProgramType.TRACING, AttachType.TRACE_FEXIT,
                 "bpf_fentry_test3", 0),
    }
    # a struct pointer argument of a sleepable kind is still a BTF pointer (ctx.arg.a)
    assert "*(u64 *)" in m.sleepy.asm()


@pytest.mark.parametrize("deco", ["fentry", "fexit", "lsm"])
def test_sleepable_must_be_a_bool(deco: str) -> None:
    from ebpf import bpf

    with pytest.raises(BPFError, match="sleepable is True or False"):
        getattr(bpf, deco)("file_open", sleepable=1)

