"""Helper metadata: ids equal the kernel's BTF, generated file up to date, lookups."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ebpf import asm, btf
from ebpf.asm import Helper
from ebpf.asm.helpers import check_helper_allowed, helper_name, helpers_for

ROOT = Path(__file__).resolve().parents[2]
PINNED = ROOT / "tests" / "testdata" / "vmlinux.btf.gz"


def test_every_helper_equals_the_kernel_btf() -> None:
    spec = btf.Spec.from_file(str(PINNED))
    enum = spec.find("bpf_func_id", kind=btf.Enum)
    kernel = {v.name: v.value for v in enum.values if v.name.startswith("BPF_FUNC_")}
    ours = {h.kernel_name: int(h) for h in Helper}
    assert ours == kernel
    assert len(ours) > 200


def test_generated_file_is_current() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_helpers.py"), "--check"],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_signatures_cover_documented_helpers() -> None:
    documented = [h for h in Helper if h.signature is not None]
    assert len(documented) >= len(Helper) - 2
    sig = Helper.PROBE_READ_KERNEL.signature
    assert sig is not None and sig.return_type == "long"
    assert [n for _, n in sig.params] == ["dst", "size", "unsafe_ptr"]
    assert Helper.CGRP_STORAGE_GET.signature is not None  # newer than the 6.1 header


def test_lookups() -> None:
    assert helper_name(1) == "bpf_map_lookup_elem"
    assert helper_name(0) is None and helper_name(100000) is None
    assert Helper.MAP_LOOKUP_ELEM.c_name == "bpf_map_lookup_elem"
    assert Helper.MAP_LOOKUP_ELEM.kernel_name == "BPF_FUNC_map_lookup_elem"
    # program types are recorded only by tools/gen_helpers.py --probe
    if Helper.MAP_LOOKUP_ELEM.program_types is None:
        assert helpers_for(1) is None
        check_helper_allowed(1, 1)  # unknown: nothing to check
        assert asm.call(Helper.MAP_LOOKUP_ELEM, prog_type=1) == asm.call(1)
    text = asm.disassemble(asm.call(Helper.TRACE_PRINTK).encode())
    assert text.strip() == "call bpf_trace_printk"
