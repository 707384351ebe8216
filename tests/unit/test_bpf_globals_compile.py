"""ebpf.bpf globals and stack objects without a kernel: compile errors with file:line and the
.data/.bss/.rodata layout of the collection spec."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

HEADER = """\
from ebpf import bpf
from ebpf.bpf import u8, u16, u32, u64, i8, i16, i32, i64
"""


def module(tmp: Path, body: str, name: str = "bpf_gcase") -> ModuleType:
    path = tmp / f"{name}.py"
    path.write_text(HEADER + textwrap.dedent(body))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


# lines are counted with the 2-line HEADER
@pytest.mark.parametrize(("body", "where", "message"), [
    ("""
     n = bpf.var(u32)
     @bpf.xdp
     def prog(ctx: bpf.XDP) -> int:
         n += 1
         return 2
     """, ":7:5:", "declare `global n`"),
    ("""
     n = bpf.const(u32, 1)
     @bpf.xdp
     def prog(ctx: bpf.XDP) -> int:
         global n
         return 2
     """, ":7:5:", "only a module-level bpf.var"),
    ("""
     @bpf.xdp
     def prog(ctx: bpf.XDP) -> int:
         a = bpf.array(u32, 4)
         return a[4]
     """, ":7:14:", "index 4 is out of range 0..3"),
    ("""
     @bpf.xdp
     def prog(ctx: bpf.XDP) -> int:
         a = bpf.array(u32, ctx.rx_queue_index)
         return 0
     """, ":6:24:", "positive constant"),
    ("""
     @bpf.xdp
     def prog(ctx: bpf.XDP) -> int:
         a = bpf.array(u32, 4)
         a = 3
         return 0
     """, ":7:5:", "stack array"),
    ("""
     @bpf.xdp
     def prog(ctx: bpf.XDP) -> int:
         a = bpf.array(u64, 70)
         return 0
     """, ":6:9:", "512"),
])
def test_compile_errors_name_file_and_line(tmp_path: Path, body: str, where: str,
                                           message: str) -> None:
    from ebpf import bpf

    mod = module(tmp_path, body)
    with pytest.raises(bpf.CompileError) as ei:
        mod.prog.compile()
    text = str(ei.value)
    assert text.startswith(str(tmp_path / "bpf_gcase.py") + where), text
    assert message in text


def test_globals_are_placed_by_section(tmp_path: Path) -> None:
    from ebpf import bpf

    mod = module(tmp_path, """
        z = bpf.var(u16)
        d = bpf.var(i32, -2)
        k = bpf.const(u8, 4)
        @bpf.xdp
        def prog(ctx: bpf.XDP) -> int:
            global z, d
            z = k
            d += z
            return 2
        """)
    spec, _ = bpf.build_spec((mod.prog,))
    assert {n: (v.map, v.offset, v.size) for n, v in spec.variables.items()} == {
        "z": (".bss", 0, 2), "d": (".data", 0, 4), "k": (".rodata", 0, 1)}
    assert spec.maps[".data"].contents == ((0, (-2).to_bytes(4, "little", signed=True)
                                            + bytes(4)),)
    assert spec.maps[".bss"].contents == ()
    assert not spec.maps[".bss"].freeze and spec.maps[".rodata"].freeze
    refs = {(r.name, r.offset) for r in spec.programs["prog"].references}
    assert refs == {(".bss", 0), (".data", 0), (".rodata", 0)}


def test_array_and_struct_are_python_values_too() -> None:
    from ebpf import bpf
    from ebpf.bpf import u32

    assert bpf.array(u32, 3) == [0, 0, 0]
    with pytest.raises(bpf.CompileError.__mro__[1]):
        bpf.array(u32, 200)
