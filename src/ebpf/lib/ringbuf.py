"""Ring buffer output from programs (``BPF_MAP_TYPE_RINGBUF``, Linux 5.8).

* :func:`output` copies a record from the stack or a map value (one call).
* :func:`reserve` / :func:`submit` / :func:`discard` write in place: the verifier insists
  that every reserved record is submitted or discarded on every path.
* :func:`emit` reserves a :class:`~ebpf.lib.structs.Struct` record, zeroes it, stores the
  fields given and submits it; Python decodes it with the same ``Struct``.
"""

from __future__ import annotations

from collections.abc import Mapping

from .. import asm
from ..asm import R0, Helper, Register
from ..errors import AssemblerError
from ._call import Arg, call
from ._flags import BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP
from .structs import Struct

__all__ = [
    "AVAIL_DATA",
    "CONS_POS",
    "FORCE_WAKEUP",
    "NO_WAKEUP",
    "PROD_POS",
    "RING_SIZE",
    "discard",
    "emit",
    "output",
    "query",
    "reserve",
    "submit",
]

NO_WAKEUP = BPF_RB_NO_WAKEUP
FORCE_WAKEUP = BPF_RB_FORCE_WAKEUP
AVAIL_DATA = 0  #: ``BPF_RB_AVAIL_DATA`` for :func:`query`
RING_SIZE = 1
CONS_POS = 2
PROD_POS = 3


def output(ring: Arg, data: Arg, size: Arg, flags: Arg = 0) -> list[asm.Instruction]:
    """``r0 = bpf_ringbuf_output(ring, data, size, flags)`` (0 or -errno)."""
    return call(Helper.RINGBUF_OUTPUT, ring, data, size, flags)


def reserve(ring: Arg, size: int, on_fail: str) -> list[asm.Instruction]:
    """``r0 = bpf_ringbuf_reserve(ring, size, 0)``; jump to ``on_fail`` if full.

    ``size`` must be a constant (the verifier checks accesses against it).
    """
    return [*call(Helper.RINGBUF_RESERVE, ring, size, 0), asm.jeq(R0, 0, on_fail)]


def submit(record: Register, flags: int = 0) -> list[asm.Instruction]:
    """``bpf_ringbuf_submit(record, flags)``."""
    return call(Helper.RINGBUF_SUBMIT, record, flags)


def discard(record: Register, flags: int = 0) -> list[asm.Instruction]:
    """``bpf_ringbuf_discard(record, flags)``."""
    return call(Helper.RINGBUF_DISCARD, record, flags)


def query(ring: Arg, what: int = AVAIL_DATA) -> list[asm.Instruction]:
    """``r0 = bpf_ringbuf_query(ring, what)``."""
    return call(Helper.RINGBUF_QUERY, ring, what)


def emit(ring: Arg, layout: Struct, values: Mapping[str, Register | int], *, on_fail: str,
         flags: int = 0, record: Register = R0) -> asm.Fragment:
    """Reserve a ``layout`` record, zero it, store ``values`` (field -> register or
    constant, see :meth:`Struct.store`) and submit it with ``flags`` (``NO_WAKEUP``...).

    Register values must not be R0-R5 (the reserve call clobbers them): keep them in R6-R9
    or on the stack. ``record`` (default R0) holds the record pointer while fields are
    stored. A full ring jumps to ``on_fail``. Clobbers R0-R5 and ``record``.
    """
    for name, v in values.items():
        layout.field(name)
        if isinstance(v, Register) and not Register.R6 <= v <= Register.R9:
            raise AssemblerError(f"ringbuf.emit: {name}={v!r} would be clobbered by the "
                                 "reserve call; keep it in R6-R9")
        if isinstance(v, Register) and v == record:
            raise AssemblerError(f"ringbuf.emit: {name} uses the record register {v!r}")
    insns: list[asm.Item] = [*reserve(ring, layout.size, on_fail)]
    if record != R0:
        insns.append(asm.mov(record, R0))
    insns += layout.zero(record)
    insns += [layout.store(record, name, v) for name, v in values.items()]
    insns += submit(record, flags)

    return asm.Fragment(insns, name=f"ringbuf_emit_{layout.name}")
