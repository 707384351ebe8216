"""Platform facts and per-architecture constants."""

from __future__ import annotations

import os

import pytest

from ebpf import platform
from ebpf._uapi import _arch


def test_cpu_list_parse() -> None:
    assert platform.parse_cpu_list("0-3,5,7-8\n") == [0, 1, 2, 3, 5, 7, 8]
    assert platform.parse_cpu_list("0") == [0]


def test_possible_cpus_counts_possible_not_online() -> None:
    with open("/sys/devices/system/cpu/possible") as f:
        text = f.read()
    assert platform.possible_cpus() == max(platform.parse_cpu_list(text)) + 1
    assert platform.possible_cpus() >= len(platform.online_cpus())


def test_page_size() -> None:
    assert platform.page_size() == os.sysconf("SC_PAGE_SIZE")
    assert platform.page_size() & (platform.page_size() - 1) == 0


def test_kernel_version() -> None:
    v = platform.kernel_version()
    assert v >= "3.19"
    assert v > (3, 0) and v == platform.KernelVersion.parse(str(v))
    assert platform.KernelVersion.parse("6.18.44-fc-v782") == (6, 18, 44)
    assert platform.KernelVersion(5, 4).code == (5 << 16) | (4 << 8)
    with pytest.raises(ValueError):
        platform.KernelVersion.parse("garbage")


@pytest.mark.parametrize(
    ("machine", "numbers"),
    [
        ("x86_64", (321, 298)),
        ("amd64", (321, 298)),
        ("aarch64", (280, 241)),
        ("arm64", (280, 241)),
        ("riscv64", (280, 241)),
        ("loongarch64", (280, 241)),
        ("s390x", (351, 331)),
        ("ppc64le", (361, 319)),
        ("armv7l", (386, 364)),
        ("i686", (357, 336)),
    ],
)
def test_syscall_numbers(machine: str, numbers: tuple[int, int]) -> None:
    assert _arch.SYSCALLS[_arch.normalize_machine(machine)] == numbers


def test_ioctl_encoding_matches_perf_header() -> None:
    # PERF_EVENT_IOC_ENABLE = _IO('$', 0), PERF_EVENT_IOC_SET_BPF = _IOW('$', 8, __u32)
    if _arch.ARCH in ("x86_64", "aarch64", "riscv64", "s390x", "arm", "i386", "loongarch64"):
        assert _arch.ioc("", "$", 0) == 0x2400
        assert _arch.ioc("w", "$", 8, 4) == 0x40042408


def test_capabilities_from_capeff() -> None:
    caps = platform.capabilities()
    with open("/proc/self/status") as f:
        status = f.read()
    line = next(ln for ln in status.splitlines() if ln.startswith("CapEff:"))
    assert caps == int(line.split()[1], 16)
