"""Tail-call chains (clj-ebpf ``create-tail-call-chain``): a ``PROG_ARRAY`` filled with
programs, closed with the chain. The in-program jump is :func:`ebpf.lib.tail_calls.jump`."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any

from .._maps import Map
from .._types import MapType
from ..errors import BPFError

__all__ = ["TailCallChain"]


class TailCallChain:
    """A ``PROG_ARRAY`` holding ``programs`` at slots 0.. (``slots`` more left free).

    The map is owned (closed with the chain); the programs are not."""

    def __init__(self, programs: Sequence[Any], *, slots: int = 0, name: str = "tail_calls"
                 ) -> None:
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
