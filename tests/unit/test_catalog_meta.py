"""ebpf.catalog pure parts: helper metadata, custom registry, pt_regs tables."""

from __future__ import annotations

import pytest

from ebpf.asm import Helper
from ebpf.catalog import arch
from ebpf.catalog import helpers as cat
from ebpf.errors import BPFError, NotSupportedError


def test_min_kernel_and_categories() -> None:
    want = {"map_lookup_elem": (3, 19), "probe_read": (4, 1), "tail_call": (4, 2),
            "redirect_map": (4, 14), "spin_lock": (5, 1), "probe_read_kernel": (5, 5),
            "xdp_output": (5, 6), "ktime_get_boot_ns": (5, 8), "ringbuf_output": (5, 8),
            "ktime_get_coarse_ns": (5, 11), "for_each_map_elem": (5, 13),
            "timer_init": (5, 15), "loop": (5, 17), "kptr_xchg": (5, 19),
            "ktime_get_tai_ns": (6, 1), "user_ringbuf_drain": (6, 1),
            "cgrp_storage_get": (6, 2)}
    for name, version in want.items():
        assert cat.min_kernel(name) == version, name
    assert cat.info("bpf_loop") == cat.info(int(Helper.LOOP)) == cat.info("BPF_FUNC_loop")
    assert cat.info("ringbuf_output").category == "events"
    assert cat.info("ktime_get_ns").category == "time"
    assert "bpf_map_lookup_elem(" in cat.info("map_lookup_elem").prototype
    every = cat.all_helpers()
    assert len(every) == len(Helper) - 1
    assert all(i.category in cat.CATEGORIES for i in every)
    # ids only grow with releases, except the listed out-of-order ones
    assert sorted(every, key=lambda i: i.min_kernel)[0].name.startswith("map_")
    assert {i.name for i in cat.by_category("time")} >= {"ktime_get_ns", "jiffies64"}
    assert {i.name for i in cat.search("ringbuf")} >= {"ringbuf_output", "user_ringbuf_drain"}
    assert all(i.min_kernel <= (5, 4) for i in cat.available((5, 4)))
    assert "loop" not in {i.name for i in cat.available((5, 10))}
    with pytest.raises(BPFError):
        cat.info("no_such_helper")
    with pytest.raises(BPFError):
        cat.by_category("nope")


def test_custom_registry() -> None:
    with pytest.raises(BPFError, match="clashes"):
        cat.register("loop", 999)
    try:
        i = cat.register("my_out_of_tree", 4000, min_kernel=(6, 9), description="a vendor helper")
        assert cat.info("bpf_my_out_of_tree") == i and cat.info(4000) == i and i.custom
        assert i in cat.search("vendor")
        assert i in cat.by_category("custom")
    finally:
        cat.unregister("my_out_of_tree")
    with pytest.raises(BPFError):
        cat.info(4000)


def test_pt_regs_offsets() -> None:
    assert arch.supported_arch("s390x") and arch.supported_arch("arm64")
    assert not arch.supported_arch("mips")
    # s390x user_pt_regs: args[1] 0, psw 8..24, gprs from 24
    assert [arch.pt_regs_arg_offset(n, "s390x") for n in range(5)] == [40, 48, 56, 64, 72]
    assert arch.pt_regs_return_offset("s390x") == 40
    assert arch.pt_regs_offset("sp", "s390x") == 24 + 15 * 8
    assert arch.pt_regs_offset("ip", "s390x") == 16
    # ppc64le pt_regs: gpr[32], nip, msr, orig_gpr3, ctr, link
    assert [arch.pt_regs_arg_offset(n, "ppc64le") for n in range(8)] == list(range(24, 88, 8))
    assert arch.pt_regs_return_offset("ppc64le") == 24
    assert arch.pt_regs_offset("sp", "ppc64le") == 8
    assert arch.pt_regs_offset("ip", "ppc64le") == 256
    assert arch.pt_regs_offset("lr", "ppc64le") == 288
    # the others come from ebpf.link.perf_event
    assert arch.pt_regs_arg_offset(0, "x86_64") == 112  # di
    assert arch.pt_regs_arg_offset(0, "arm64") == 0
    with pytest.raises(BPFError):
        arch.pt_regs_arg_offset(5, "s390x")
    with pytest.raises(BPFError):
        arch.pt_regs_offset("r40", "ppc64le")
    with pytest.raises(NotSupportedError):
        arch.pt_regs_offset("r1", "mips")
