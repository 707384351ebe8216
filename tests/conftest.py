"""Suite-wide settings: the ebpf plugin's session leak check is on for our own tests (a test
that leaves a BPF object, fd, pin, mount, cgroup or netns behind fails the run)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("ebpf_leak_check", default=None) is None:
        config.option.ebpf_leak_check = True
