"""``FLOW_DISSECTOR`` programs: fill ``struct bpf_flow_keys`` for the kernel (Linux 4.20).

The context is ``__sk_buff`` (only ``data``, ``data_end`` and ``flow_keys`` readable); the
program writes the flow keys through the pointer :func:`keys` loads, and returns
:class:`Result`. ``flow_keys->nhoff`` is where the program should start parsing
(past the link-layer header); bound it (``asm.jgt(r, 1024, "drop")``) before adding it to
``data``, or the verifier cannot prove any access after it.
"""

from __future__ import annotations

import enum

from .. import asm
from .._types import ProgramType
from .._uapi import _generated_types as _t
from ..asm import R1, Register
from ._common import ret, save_ctx
from ._context import Context
from .skb import CONTEXT, data, data_end

__all__ = [
    "CONTEXT",
    "KEYS",
    "PROGRAM_TYPE",
    "Result",
    "data",
    "data_end",
    "key",
    "keys",
    "ret",
    "save_ctx",
    "store_key",
]

PROGRAM_TYPE = ProgramType.FLOW_DISSECTOR
#: ``struct bpf_flow_keys``, from the kernel's BTF
KEYS = Context(_t.BpfFlowKeys, "struct bpf_flow_keys")


class Result(enum.IntEnum):
    """``enum bpf_ret_code`` values a flow dissector returns."""

    OK = _t.BPF_OK
    DROP = _t.BPF_DROP
    CONTINUE = _t.BPF_FLOW_DISSECTOR_CONTINUE  #: fall back to the kernel's dissector


def keys(dst: Register, ctx: Register = R1) -> asm.Instruction:
    """``dst = skb->flow_keys``: the pointer to the keys to fill."""
    return CONTEXT.load(dst, "flow_keys", ctx)


def key(dst: Register, keys_ptr: Register, name: str) -> asm.Instruction:
    """``dst = keys->name`` (``nhoff``, ``thoff``, ``n_proto``...)."""
    return KEYS.load(dst, name, keys_ptr)


def store_key(keys_ptr: Register, name: str, src: Register | int) -> list[asm.Instruction]:
    """``keys->name = src`` (``ip_proto``, ``sport``/``dport`` in network order,
    ``ipv4_src``...)."""
    return KEYS.store(keys_ptr, name, src)
