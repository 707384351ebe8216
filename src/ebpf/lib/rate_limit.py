"""A token bucket per key, in a map, checked by a program on every event.

State per key (:data:`BUCKET`, 16 bytes): ``tokens`` in nano-tokens (10**9 per token, so
refills of a fraction of a token accumulate) and ``last_ns``, the ``bpf_ktime_get_ns()`` of
the last refill. On each event the bucket gains ``elapsed_ns * rate`` nano-tokens, capped at
the burst, and the event passes if it can pay its cost. A key seen for the first time starts
with a full bucket (and pays for its first event).

Integer math only, without overflow: the elapsed time is clamped at the time a bucket takes
to fill from empty (``max_elapsed_ns``), so the product stays below the capacity plus one
second's worth; :class:`Config` checks the limits. The limits come either from constants
(``config=Config(...)``) or from an ``ARRAY`` map entry (``config_map=``, encoded with
:meth:`Config.encode`; no entry or rate 0 lets everything pass), which userspace can change
while the program runs.

The update is not atomic: two CPUs hitting the same bucket at once may both pass (at most
one extra event per concurrent CPU).
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import asm
from ..asm import R0, R1, R2, R3, R4, R10, Helper, Register
from ..errors import AssemblerError
from ._call import Arg, call, check_callee_saved, fp, set_reg
from ._flags import BPF_NOEXIST
from .structs import Struct

__all__ = ["BUCKET", "CONFIG", "NANO", "STACK_SIZE", "Config", "bucket", "check", "tokens"]

NANO = 1_000_000_000  #: nano-tokens per token
#: Bytes of stack :func:`check` needs at ``stack``
STACK_SIZE = 56
BUCKET = Struct("rate_limit_bucket", [("tokens", "u64"), ("last_ns", "u64")])
CONFIG = Struct("rate_limit_config",
                [("rate", "u64"), ("capacity", "u64"), ("max_elapsed_ns", "u64")])
_LIMIT = 1 << 62


@dataclass(frozen=True)
class Config:
    """``rate`` tokens per second, up to ``burst`` tokens saved up."""

    rate: int
    burst: int

    def __post_init__(self) -> None:
        if self.rate < 0 or self.burst < 1:
            raise ValueError(f"rate_limit.Config: rate {self.rate} must be >= 0 and burst "
                             f"{self.burst} >= 1")
        if self.burst * NANO > _LIMIT or self.rate > _LIMIT // NANO:
            raise ValueError("rate_limit.Config: rate or burst too large for 64-bit math")

    @property
    def capacity(self) -> int:
        """The bucket size in nano-tokens."""
        return self.burst * NANO

    @property
    def max_elapsed_ns(self) -> int:
        """Time to fill an empty bucket (longer gaps refill it fully)."""
        return -(-self.capacity // self.rate) if self.rate else 0

    def encode(self) -> bytes:
        """The :data:`CONFIG` record for a config map entry."""
        return CONFIG.encode(rate=self.rate, capacity=self.capacity,
                             max_elapsed_ns=self.max_elapsed_ns)


def bucket(tokens: float, last_ns: int) -> bytes:
    """A :data:`BUCKET` value holding ``tokens`` (whole or fractional) refilled at
    ``last_ns`` (``time.monotonic_ns()`` is the program's clock): set it from Python to
    simulate time passing."""
    return BUCKET.encode(tokens=round(tokens * NANO), last_ns=last_ns)


def tokens(value: bytes) -> float:
    """The tokens held in a :data:`BUCKET` value read from the map."""
    return float(BUCKET.decode(value).tokens / NANO)


def _const(dst: Register, value: int) -> list[asm.Instruction]:
    return set_reg(dst, value)


def check(buckets: Arg, key: Arg, *, on_drop: str, stack: int, config: Config | None = None,
          config_map: Arg = None, config_index: int = 0, cost: int | Register = 1
          ) -> asm.Fragment:
    """Take ``cost`` tokens from ``key``'s bucket, or jump to ``on_drop``; falls through
    when the event passes.

    ``buckets`` is a ``HASH``/``LRU_HASH`` map with 16-byte values (:data:`BUCKET`) keyed
    as the caller likes; ``key`` points at the key (``fp(-8)``, or a register in R6-R9).
    Give ``config`` or ``config_map`` (an ``ARRAY`` of :data:`CONFIG` values, entry
    ``config_index``). ``stack`` is the fp offset of :data:`STACK_SIZE` free, 8-aligned
    bytes. ``cost`` (tokens) may be a register in R6-R9, e.g. a packet length for a byte
    rate. Clobbers R0-R5.
    """
    if (config is None) == (config_map is None):
        raise AssemblerError("rate_limit.check: give config or config_map (one of them)")
    if stack % 8 or not -512 <= stack <= -STACK_SIZE:
        raise AssemblerError(f"rate_limit.check: stack {stack} must be 8-aligned with "
                             f"{STACK_SIZE} bytes in the frame")
    for name, v in (("key", key), ("buckets", buckets), ("cost", cost)):
        if isinstance(v, Register):
            check_callee_saved("rate_limit.check", **{name: v})
    if isinstance(cost, int) and not 0 <= cost * NANO < _LIMIT:
        raise AssemblerError(f"rate_limit.check: cost {cost} out of range")
    now, init, cfg_key, cfg = stack, stack + 8, stack + 24, stack + 32

    def cost_units(dst: Register) -> list[asm.Instruction]:
        if isinstance(cost, Register):
            return [asm.mov(dst, cost), *_const(R4 if dst != R4 else R3, NANO),
                    asm.mul(dst, R4 if dst != R4 else R3)]
        return _const(dst, cost * NANO)

    def rate(dst: Register) -> list[asm.Instruction]:
        return ([asm.load(asm.DW, dst, R10, cfg)] if config is None
                else _const(dst, config.rate))

    def capacity(dst: Register) -> list[asm.Instruction]:
        return ([asm.load(asm.DW, dst, R10, cfg + 8)] if config is None
                else _const(dst, config.capacity))

    def max_elapsed(dst: Register) -> list[asm.Instruction]:
        return ([asm.load(asm.DW, dst, R10, cfg + 16)] if config is None
                else _const(dst, config.max_elapsed_ns))

    insns: list[asm.Item] = [asm.call(Helper.KTIME_GET_NS), asm.store(asm.DW, R10, now, R0)]
    if config is None:
        insns += [
            asm.store_imm(asm.W, R10, cfg_key, config_index),
            *call(Helper.MAP_LOOKUP_ELEM, config_map, fp(cfg_key)), asm.jeq(R0, 0, "pass"),
            asm.load(asm.DW, R1, R0, 0), asm.jeq(R1, 0, "pass"),
            asm.store(asm.DW, R10, cfg, R1),
            asm.load(asm.DW, R1, R0, 8), asm.store(asm.DW, R10, cfg + 8, R1),
            asm.load(asm.DW, R1, R0, 16), asm.store(asm.DW, R10, cfg + 16, R1),
        ]
    elif config.rate == 0:
        return asm.Fragment([], name="rate_limit")
    insns += [
        *call(Helper.MAP_LOOKUP_ELEM, buckets, key), asm.jne(R0, 0, "have"),
        # first event of this key: a full bucket, minus this event's cost
        *capacity(R1), *cost_units(R2), asm.jlt(R1, R2, on_drop), asm.sub(R1, R2),
        asm.store(asm.DW, R10, init, R1),
        asm.load(asm.DW, R1, R10, now), asm.store(asm.DW, R10, init + 8, R1),
        *call(Helper.MAP_UPDATE_ELEM, buckets, key, fp(init), BPF_NOEXIST),
        asm.ja("pass"),
        asm.label("have"),
        asm.load(asm.DW, R1, R10, now), asm.load(asm.DW, R2, R0, 8),
        asm.sub(R1, R2), asm.jsge(R1, 0, "forward"), asm.mov(R1, 0),  # clock went back
        asm.label("forward"),
        *max_elapsed(R3), asm.jle(R1, R3, "clamped"), asm.mov(R1, R3),
        asm.label("clamped"),
        *rate(R3), asm.mul(R1, R3),
        asm.load(asm.DW, R2, R0, 0), asm.add(R2, R1),
        *capacity(R3), asm.jle(R2, R3, "capped"), asm.mov(R2, R3),
        asm.label("capped"),
        asm.load(asm.DW, R1, R10, now), asm.store(asm.DW, R0, 8, R1),
        *cost_units(R1), asm.jlt(R2, R1, "empty"),
        asm.sub(R2, R1), asm.store(asm.DW, R0, 0, R2), asm.ja("pass"),
        asm.label("empty"),
        asm.store(asm.DW, R0, 0, R2), asm.ja(on_drop),
        asm.label("pass"),
    ]
    return asm.Fragment(insns, name="rate_limit")
