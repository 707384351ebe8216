"""ebpf: a pure-Python library to write, load, attach and observe eBPF programs.

The kernel is entered only through ``bpf(2)`` and ``perf_event_open(2)`` via ctypes; there is
no native dependency. See the README for a tour and ``docs/`` for the concepts.
"""

from __future__ import annotations

from . import errors as errors
from .errors import BPFError as BPFError
from .errors import NotSupportedError as NotSupportedError
from .errors import SyscallError as SyscallError
from .errors import VerifierError as VerifierError

# Neither ``typing`` nor ``importlib`` at import time (each costs more than the rest of this
# module): TYPE_CHECKING is the constant type checkers treat specially, and the lazy names are
# imported with the builtin ``__import__``.
TYPE_CHECKING = False

if TYPE_CHECKING:  # the names below are loaded on first use (PEP 562), see __getattr__
    from . import platform as platform
    from ._collection import Collection as Collection
    from ._collection import Variable as Variable
    from ._collection import load as load
    from ._maps import BloomFilter as BloomFilter
    from ._maps import Map as Map
    from ._maps import MapEntry as MapEntry
    from ._maps import MapInfo as MapInfo
    from ._maps import PerCPUValues as PerCPUValues
    from ._maps import QueueMap as QueueMap
    from ._programs import Program as Program
    from ._programs import ProgramInfo as ProgramInfo
    from ._programs import TestRunResult as TestRunResult
    from ._spec import CollectionSpec as CollectionSpec
    from ._spec import MapSpec as MapSpec
    from ._spec import PinType as PinType
    from ._spec import ProgramSpec as ProgramSpec
    from ._spec import VariableSpec as VariableSpec
    from ._testrun import TestRunner as TestRunner
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
    from .perf import PerfBuffer as PerfBuffer
    from .perf import PerfBufferClosed as PerfBufferClosed
    from .ringbuf import RecordBatch as RecordBatch
    from .ringbuf import RingBuffer as RingBuffer
    from .ringbuf import RingBufferClosed as RingBufferClosed
    from .ringbuf import UserRingBuffer as UserRingBuffer

__version__ = "0.1.0"

__all__ = [
    "AttachType",
    "BPFError",
    "BloomFilter",
    "Collection",
    "CollectionSpec",
    "LinkType",
    "Map",
    "MapEntry",
    "MapFlags",
    "MapInfo",
    "MapSpec",
    "MapType",
    "NotSupportedError",
    "PerCPUValues",
    "PerfBuffer",
    "PerfBufferClosed",
    "PinType",
    "Program",
    "ProgramFlags",
    "ProgramInfo",
    "ProgramSpec",
    "ProgramType",
    "QueueMap",
    "RecordBatch",
    "RingBuffer",
    "RingBufferClosed",
    "StatsType",
    "SyscallError",
    "TestRunResult",
    "TestRunner",
    "UpdateFlags",
    "UserRingBuffer",
    "Variable",
    "VariableSpec",
    "VerifierError",
    "XDPAction",
    "XDPMode",
    "errors",
    "load",
    "platform",
]


#: public name -> module it lives in; imported on first access so that ``import ebpf`` (and
#: ``import ebpf.btf``) stay cheap: a process that only parses BTF never builds the kernel ABI.
_LAZY: dict[str, str] = {
    "AttachType": "._types",
    "BloomFilter": "._maps",
    "Collection": "._collection",
    "CollectionSpec": "._spec",
    "LinkType": "._types",
    "Map": "._maps",
    "MapEntry": "._maps",
    "MapFlags": "._types",
    "MapInfo": "._maps",
    "MapSpec": "._spec",
    "MapType": "._types",
    "PerCPUValues": "._maps",
    "PerfBuffer": ".perf",
    "PerfBufferClosed": ".perf",
    "PinType": "._spec",
    "Program": "._programs",
    "ProgramFlags": "._types",
    "ProgramInfo": "._programs",
    "ProgramSpec": "._spec",
    "ProgramType": "._types",
    "QueueMap": "._maps",
    "RecordBatch": ".ringbuf",
    "RingBuffer": ".ringbuf",
    "RingBufferClosed": ".ringbuf",
    "StatsType": "._types",
    "TestRunResult": "._programs",
    "TestRunner": "._testrun",
    "UpdateFlags": "._types",
    "UserRingBuffer": ".ringbuf",
    "Variable": "._collection",
    "VariableSpec": "._spec",
    "XDPAction": "._types",
    "XDPMode": "._types",
    "load": "._collection",
}
_SUBMODULES = ("asm", "bpf", "btf", "cli", "elf", "features", "hooks", "lib", "link", "packet",
               "perf", "platform", "ringbuf", "testing")


def __getattr__(name: str) -> object:
    if name in _LAZY:
        # level 1 with a fromlist: the submodule itself, as importlib.import_module gives
        value = getattr(__import__(_LAZY[name][1:], globals(), None, (name,), 1), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        module = __import__(name, globals(), None, (), 1)  # a dotless name: the submodule
        globals()[name] = module
        return module
    raise AttributeError(f"module 'ebpf' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
