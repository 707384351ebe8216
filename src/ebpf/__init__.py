"""ebpf: a pure-Python library to write, load, attach and observe eBPF programs."""

from __future__ import annotations

from . import errors as errors

__version__ = "0.1.0"
__all__ = ["errors"]
