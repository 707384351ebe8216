"""Tail calls in programs (clj-ebpf ``create-tail-call-chain``): the call that jumps to the
next program of a ``PROG_ARRAY``. The userspace half, the array filled with programs, is
:class:`ebpf.script.TailCallChain` (this package stays free of kernel objects)::

    with TailCallChain([first, second, third]) as chain:   # slots 0, 1, 2
        chain.map                                          # the PROG_ARRAY
    tail_calls.jump(R6, chain.map, 1)   # in a program: go to slot 1 (falls through if empty)

The kernel allows 33 tail calls in a row (``MAX_TAIL_CALL_CNT``).
"""

from __future__ import annotations

from .. import asm
from . import helpers
from ._call import Arg

__all__ = ["MAX_TAIL_CALLS", "jump"]

MAX_TAIL_CALLS = 33


def jump(ctx: Arg, prog_array: Arg, index: Arg) -> list[asm.Instruction]:
    """``bpf_tail_call(ctx, prog_array, index)``; the code after it runs only when the slot
    is empty or the chain is too long."""
    return helpers.tail_call(ctx, prog_array, index)
