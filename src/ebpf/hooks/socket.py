"""Socket programs: socket filters, SK_SKB stream parser/verdict, SK_MSG.

* ``SOCKET_FILTER``: context ``__sk_buff`` (:mod:`ebpf.hooks.skb`); the return value is the
  number of bytes to keep, 0 drops (:data:`KEEP_ALL` keeps the whole packet).
* ``SK_SKB``: ``__sk_buff`` too; verdict programs return :class:`Verdict`.
* ``SK_MSG``: context ``struct sk_msg_md`` (:data:`MSG_CONTEXT`); returns :class:`Verdict`.
"""

from __future__ import annotations

import enum

from .. import asm
from .._types import ProgramType
from .._uapi import _generated_types as _t
from ..asm import R1, Register
from ._common import ret, save_ctx
from ._context import Context
from .skb import CONTEXT, data, data_end, field, load_bytes, prologue

__all__ = [
    "CONTEXT",
    "DROP",
    "KEEP_ALL",
    "MSG_CONTEXT",
    "PROGRAM_TYPE",
    "Verdict",
    "data",
    "data_end",
    "field",
    "load_bytes",
    "msg_field",
    "prologue",
    "ret",
    "save_ctx",
]

PROGRAM_TYPE = ProgramType.SOCKET_FILTER
KEEP_ALL = 0xFFFF_FFFF  #: a socket filter's "keep the whole packet"
DROP = 0  #: a socket filter's "drop"
#: ``struct sk_msg_md``, from the kernel's BTF
MSG_CONTEXT = Context(_t.SkMsgMd, "struct sk_msg_md")


class Verdict(enum.IntEnum):
    """``enum sk_action``: SK_SKB verdict, SK_MSG, SK_LOOKUP and SK_REUSEPORT results."""

    DROP = _t.SK_DROP
    PASS = _t.SK_PASS


def msg_field(dst: Register, name: str, ctx: Register = R1) -> asm.Instruction:
    """``dst = msg->name`` (``struct sk_msg_md``: ``"data"``, ``"size"``, ``"local_port"``...)."""
    return MSG_CONTEXT.load(dst, name, ctx)
