"""TC classifier/action programs (``BPF_PROG_TYPE_SCHED_CLS``/``SCHED_ACT``, tcx).

The context is ``struct __sk_buff`` (see :mod:`ebpf.hooks.skb`, re-exported here).
"""

from __future__ import annotations

import enum

from .. import asm
from .._types import ProgramType
from ..asm import Helper
from ..lib._call import Arg, call
from ._common import ret, save_ctx
from .skb import CONTEXT, data, data_end, field, load_bytes, prologue, store, store_bytes

__all__ = [
    "CONTEXT",
    "PROGRAM_TYPE",
    "Action",
    "data",
    "data_end",
    "field",
    "load_bytes",
    "prologue",
    "redirect",
    "ret",
    "save_ctx",
    "store",
    "store_bytes",
]

PROGRAM_TYPE = ProgramType.SCHED_CLS


class Action(enum.IntEnum):
    """``TC_ACT_*`` of ``linux/pkt_cls.h`` (``#define``s, so not in BTF); tcx uses the same
    numbers (``TCX_NEXT`` -1, ``TCX_PASS`` 0, ``TCX_DROP`` 2, ``TCX_REDIRECT`` 7)."""

    UNSPEC = -1
    OK = 0
    RECLASSIFY = 1
    SHOT = 2
    PIPE = 3
    STOLEN = 4
    QUEUED = 5
    REPEAT = 6
    REDIRECT = 7


def redirect(ifindex: Arg, flags: Arg = 0) -> list[asm.Instruction]:
    """``r0 = bpf_redirect(ifindex, flags)``: return R0 to redirect (``BPF_F_INGRESS``...)."""
    return call(Helper.REDIRECT, ifindex, flags)
