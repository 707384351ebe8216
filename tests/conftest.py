"""Suite-wide settings: the ebpf plugin's session leak check is on for our own tests (a test
that leaves a BPF object, fd, pin, mount, cgroup or netns behind fails the run), and
hypothesis has no per-example deadline: these 2-core machines run helpers in parallel and the
kernel matrix runs under TCG (about 10x slower), so a wall-clock deadline only measures load.
Slow cases are caught by the fuzz harness's own per-case budget instead."""

from __future__ import annotations

import pytest
from hypothesis import settings

settings.register_profile("ebpf", deadline=None)
settings.load_profile("ebpf")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("ebpf_leak_check", default=None) is None:
        config.option.ebpf_leak_check = True
