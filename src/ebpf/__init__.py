"""ebpf: a pure-Python library to write, load, attach and observe eBPF programs.

The kernel is entered only through ``bpf(2)`` and ``perf_event_open(2)`` via ctypes; there is
no native dependency. See the README for a tour and ``docs/`` for the concepts.
"""

from __future__ import annotations

from . import errors as errors
from . import platform as platform
from ._collection import Collection as Collection
from ._collection import Variable as Variable
from ._collection import load as load
from ._maps import Map as Map
from ._programs import Program as Program
from ._programs import ProgramInfo as ProgramInfo
from ._programs import TestRunResult as TestRunResult
from ._spec import CollectionSpec as CollectionSpec
from ._spec import MapSpec as MapSpec
from ._spec import ProgramSpec as ProgramSpec
from ._spec import VariableSpec as VariableSpec
from ._types import AttachType as AttachType
from ._types import LinkType as LinkType
from ._types import MapFlags as MapFlags
from ._types import MapType as MapType
from ._types import ProgramFlags as ProgramFlags
from ._types import ProgramType as ProgramType
from ._types import StatsType as StatsType
from ._types import UpdateFlags as UpdateFlags
from ._types import XDPAction as XDPAction
from ._types import XDPMode as XDPMode
from .errors import BPFError as BPFError
from .errors import NotSupportedError as NotSupportedError
from .errors import SyscallError as SyscallError
from .errors import VerifierError as VerifierError

__version__ = "0.1.0"

__all__ = [
    "AttachType",
    "BPFError",
    "Collection",
    "CollectionSpec",
    "LinkType",
    "Map",
    "MapFlags",
    "MapSpec",
    "MapType",
    "NotSupportedError",
    "Program",
    "ProgramFlags",
    "ProgramInfo",
    "ProgramSpec",
    "ProgramType",
    "StatsType",
    "SyscallError",
    "TestRunResult",
    "UpdateFlags",
    "Variable",
    "VariableSpec",
    "VerifierError",
    "XDPAction",
    "XDPMode",
    "errors",
    "load",
    "platform",
]


def __getattr__(name: str) -> object:
    # Subpackages that are heavier or optional load on first use: ebpf.asm, ebpf.btf,
    # ebpf.features, ebpf.link, ebpf.packet.
    import importlib

    if name in ("asm", "btf", "elf", "features", "link", "packet", "testing", "cli"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'ebpf' has no attribute {name!r}")
