"""Tail-call chains (clj-ebpf ``create-tail-call-chain``): a ``PROG_ARRAY`` filled with
programs, and the call that jumps to the next one.

::

    with TailCallChain([first, second, third]) as chain:   # slots 0, 1, 2
        chain.map                                          # the PROG_ARRAY
    tail_calls.jump(R6, chain.map, 1)   # in a program: go to slot 1 (falls through if empty)

The kernel allows 33 tail calls in a row (``MAX_TAIL_CALL_CNT``).
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any

from .. import asm
from ..errors import BPFError
from . import helpers
from ._call import Arg

__all__ = ["MAX_TAIL_CALLS", "TailCallChain", "jump"]

MAX_TAIL_CALLS = 33


def jump(ctx: Arg, prog_array: Arg, index: Arg) -> list[asm.Instruction]:
    """``bpf_tail_call(ctx, prog_array, index)``; the code after it runs only when the slot
    is empty or the chain is too long."""
    return helpers.tail_call(ctx, prog_array, index)


class TailCallChain:
    """A ``PROG_ARRAY`` holding ``programs`` at slots 0.. (``slots`` more left free).

    The map is owned (closed with the chain); the programs are not."""

    def __init__(self, programs: Sequence[Any], *, slots: int = 0, name: str = "tail_calls"
                 ) -> None:
        from .._maps import Map
        from .._types import MapType

        if not programs and not slots:
            raise BPFError("TailCallChain: no programs and no slots")
        self.map = Map.create(MapType.PROG_ARRAY, key_size=4, value_size=4,
                              max_entries=len(programs) + slots, name=name)
        try:
            for i, p in enumerate(programs):
                self.set(i, p)
        except BaseException:
            self.map.close()
            raise

    def set(self, index: int, program: Any) -> None:
        """Put ``program`` at ``index`` (replacing what is there)."""
        self.map[index] = program.fileno()

    def clear(self, index: int) -> None:
        """Empty slot ``index``: tail calls to it fall through."""
        del self.map[index]

    def close(self) -> None:
        self.map.close()

    def __enter__(self) -> TailCallChain:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
