"""One BPF_MAP_LOOKUP_ELEM through our syscall layer vs a bare ctypes call and C.

Target (issue 2): within 1.15x of a bare ctypes ``libc.syscall`` call with a pre-built attr.

- ours ``bpf()``: ``ebpf._sys.syscall.bpf(cmd, attr)``, the general entry point;
- ours ``raw_caller``: ``raw_caller(cmd, attr)()``, the hot-loop fast path;
- floor ``ctypes``: ``libc.syscall(NR_bpf, 1, attr_ptr, size)`` from a separate ``CDLL``, no
  ``argtypes`` and a pre-built ``c_void_p`` (the cheapest ctypes call there is), no error check;
- floor ``C``: ``syscall(__NR_bpf, ...)`` with a pre-built attr (bench/syscall_lookup.c).

The map is a 1-entry ARRAY (u32 -> u64), so the kernel side is as small as a lookup gets.
"""

from __future__ import annotations

import ctypes
from typing import Any

import common

BENCH = "syscall"
TARGET = 1.15


def _measure(n: int, repeats: int) -> dict[str, list[float]]:
    from ebpf._sys.syscall import bpf, bpf_fd, raw_caller
    from ebpf._uapi import _arch
    from ebpf._uapi import _generated_types as t

    create = t.MapCreateAttr(map_type=2, key_size=4, value_size=8, max_entries=1)  # ARRAY
    fd = bpf_fd(int(t.bpf_cmd.BPF_MAP_CREATE), create, what="map")
    try:
        key = ctypes.c_uint32(0)
        value = ctypes.c_uint64(0)
        attr = t.MapElemAttr(map_fd=fd.fileno())
        attr.key = ctypes.addressof(key)
        attr.value = ctypes.addressof(value)
        cmd = int(t.bpf_cmd.BPF_MAP_LOOKUP_ELEM)
        call = raw_caller(cmd, attr)

        bare = ctypes.CDLL(None, use_errno=True).syscall  # its own function object
        nr = _arch.NR_BPF
        ptr = ctypes.c_void_p(ctypes.addressof(attr))
        size = ctypes.sizeof(attr)

        def ours_bpf(k: int) -> None:
            for _ in range(k):
                bpf(cmd, attr)

        def ours_raw(k: int) -> None:
            for _ in range(k):
                call()

        def floor_ctypes(k: int) -> None:
            for _ in range(k):
                bare(nr, cmd, ptr, size)

        assert call() == 0 and bare(nr, cmd, ptr, size) == 0
        return common.interleaved(
            {"bpf": ours_bpf, "raw": ours_raw, "ctypes": floor_ctypes}, n, repeats)
    finally:
        fd.close()


def run(quick: bool = False) -> list[dict[str, Any]]:
    n, repeats = (10_000, 9) if quick else (20_000, 25)
    got = _measure(n, repeats)
    c: dict[str, Any]
    try:
        cres = common.run_c("syscall_lookup", n, repeats)
        c = {"C syscall": cres.get("syscall"), "C libbpf": cres.get("libbpf")}
    except common.Unavailable as e:
        c = {"C": str(e)}
    target = f"<= {TARGET}x ctypes (issue 2)"
    spec = {"vs": "ctypes", "max_ratio": TARGET}
    return [
        common.row(BENCH, "map lookup via raw_caller()", "ns/op", got["raw"],
                   floors={"ctypes": got["ctypes"], **c}, peers={},
                   target=target, target_spec=spec),
        common.row(BENCH, "map lookup via bpf()", "ns/op", got["bpf"],
                   floors={"ctypes": got["ctypes"], **c}, peers={},
                   target=target, target_spec=spec),
    ]


if __name__ == "__main__":
    common.standalone(run)
