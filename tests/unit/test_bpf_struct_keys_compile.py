"""ebpf.bpf struct map keys without a kernel: what compiles (the key pointer passed as is,
a key written in place zeroed first) and the compile errors, with file:line:col."""

from __future__ import annotations

import textwrap
from pathlib import Path
from types import ModuleType

import pytest

from ebpf.testing.modules import import_source

HEADER = """\
from ebpf import bpf
from ebpf.bpf import u8, u16, u32, u64, be16, be32

class Key(bpf.Struct):
    saddr: be32
    dport: be16
    proto: u8

class Other(bpf.Struct):
    saddr: be32
    dport: be16
    proto: u8

counts = bpf.Hash(Key, u64, max_entries=8)
lru = bpf.LRUHash(Key, Other, max_entries=8)
"""
LINES = HEADER.count("\n")


def module(tmp: Path, body: str, name: str = "bpf_skcase") -> ModuleType:
    return import_source(tmp, name, HEADER + textwrap.dedent(body))


@pytest.mark.parametrize(("body", "line", "col", "message"), [
    ("""
     @bpf.xdp
     def prog(ctx: bpf.XDP) -> int:
         return counts[1]
     """, 3, 19, "keys are Key records"),
    ("""
     @bpf.xdp
     def prog(ctx: bpf.XDP) -> int:
         k = Other()
         counts[k] = 1
         return 2
     """, 4, 12, "keys are Key records: pass a Key"),
    ("""
     @bpf.xdp
     def prog(ctx: bpf.XDP) -> int:
         k = ctx.load(Key)
         return counts[k]
     """, 4, 19, "k may be None here"),
    ("""
     @bpf.xdp
     def prog(ctx: bpf.XDP) -> int:
         del counts[Other(dport=1)]
         return 2
     """, 3, 16, "keys are Key records, not Other"),
    ("""
     @bpf.xdp
     def prog(ctx: bpf.XDP) -> int:
         k = Key()
         counts.update(k, 1, flags=7)
         return 2
     """, 4, 5, "update flags are a constant"),
    ("""
     @bpf.xdp
     def prog(ctx: bpf.XDP) -> int:
         k = Key()
         counts.update(k)
         return 2
     """, 4, 5, "update(key, value, flags=0)"),
    ("""
     @bpf.xdp
     def prog(ctx: bpf.XDP) -> int:
         k = Key()
         r = Key()
         lru[k] = r
         return 2
     """, 5, 14, "holds Other records"),
])
def test_struct_key_errors(tmp_path: Path, body: str, line: int, col: int,
                           message: str) -> None:
    from ebpf import bpf

    mod = module(tmp_path, body)
    with pytest.raises(bpf.CompileError) as ei:
        mod.prog.compile()
    e = ei.value
    assert message in e.message
    assert (e.line, e.col + 1) == (LINES + 1 + line, col), str(e)  # + the blank line


def test_struct_keys_compile_to_pointer_arguments(tmp_path: Path) -> None:
    from ebpf import MapType, bpf

    mod = module(tmp_path, """
     @bpf.xdp
     def prog(ctx: bpf.XDP) -> int:
         k = Key()
         k.dport = 80
         counts[k] += 1
         v = lru.lookup(k)
         if v is None:
             r = Other(dport=1)
             lru[k] = r
         n = counts[Key(saddr=1, dport=2, proto=3)]
         res = counts.update(k, n, flags=1)
         del lru[k]
         return 2 if res == 0 else 1
     """)
    listing = mod.prog.asm()
    assert listing.count("call bpf_map_lookup_elem") == 3
    assert listing.count("call bpf_map_update_elem") == 3   # += insert, lru[k] =, update
    assert "call bpf_map_delete_elem" in listing
    spec = bpf.build_spec([mod.prog])[0]
    assert spec.maps["lru"].type == MapType.LRU_HASH
    assert spec.maps["counts"].key_size == mod.Key.size == 8
