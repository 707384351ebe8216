"""Histograms kept in maps: log2 and linear buckets, bumped in the program, read and printed
from Python.

In the program
    :func:`log2_slot` computes bcc's ``bpf_log2l(v)`` bucket (slot ``i >= 1`` holds values
    ``2**(i-1) .. 2**i - 1``; 0 and 1 both land in slot 1), clamped to the histogram's size,
    with six bounded forward jumps and no loop (any kernel with eBPF). :func:`linear_slot`
    computes ``(v - base) // step``, clamped. :func:`log2_increment` and
    :func:`linear_increment` also bump the slot in an ``ARRAY`` (or ``PERCPU_ARRAY``) of
    u64 counters; :func:`keyed_increment` bumps ``{key bytes, u32 slot}`` in a ``HASH`` for
    per-key histograms (one histogram per PID, disk, cgroup...).

In Python
    :func:`read` returns the counters of an array histogram (summed over CPUs for per-CPU
    maps), :func:`read_keyed` one histogram per key; both give numpy ``uint64`` arrays when
    numpy is installed and plain lists otherwise. :func:`format_log2` / :func:`print_log2`
    and :func:`format_linear` / :func:`print_linear` print the same text, byte for byte, as
    bcc's ``print_log2_hist`` and ``print_linear_hist``. :func:`plot` draws a bar chart with
    matplotlib when it is installed.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, Any

from .. import asm
from ..asm import R10, Register
from ..errors import AssemblerError, BPFError
from ._call import Arg, check_callee_saved, fp
from .maps import array_add, increment

__all__ = [
    "LOG2_SLOTS",
    "format_linear",
    "format_log2",
    "keyed_increment",
    "linear_increment",
    "linear_slot",
    "log2_increment",
    "log2_slot",
    "plot",
    "print_linear",
    "print_log2",
    "read",
    "read_keyed",
    "slot_ranges",
]

#: Slots of a histogram that covers every u64 (slot 0 stays empty, as in bcc's tools).
LOG2_SLOTS = 65
#: Width of the star bar, as bcc's ``stars_max``.
STARS = 40


def _distinct(what: str, **regs: Register) -> None:
    if len(set(regs.values())) != len(regs):
        raise AssemblerError(f"histogram.{what}: {', '.join(regs)} must be distinct registers")
    if R10 in regs.values():
        raise AssemblerError(f"histogram.{what}: R10 is the read-only frame pointer")


def log2_slot(dst: Register, value: Register, tmp: Register, *,
              slots: int = LOG2_SLOTS) -> asm.Fragment:
    """``dst = min(bpf_log2l(value), slots - 1)``: the log2 bucket of the u64 in ``value``.

    ``value`` is kept; ``tmp`` is clobbered. The binary search over the bit position uses
    forward jumps only, so the verifier walks at most a dozen short paths.
    """
    _distinct("log2_slot", dst=dst, value=value, tmp=tmp)
    if not 2 <= slots <= LOG2_SLOTS:
        raise AssemblerError(f"histogram.log2_slot: slots={slots} is not in 2..{LOG2_SLOTS}")
    items: list[asm.Item] = [
        asm.mov(tmp, value), asm.mov(dst, value), asm.rsh(dst, 32),
        asm.jeq(dst, 0, "low"),                 # dst = 0 is also the start of the sum
        asm.mov(tmp, dst), asm.mov(dst, 32),
        asm.label("low"),
    ]
    for shift in (16, 8, 4, 2):
        items += [asm.jle(tmp, (1 << shift) - 1, f"s{shift}"),
                  asm.rsh(tmp, shift), asm.or_(dst, shift), asm.label(f"s{shift}")]
    items += [asm.rsh(tmp, 1), asm.or_(dst, tmp), asm.add(dst, 1),
              asm.jle(dst, slots - 1, "done"), asm.mov(dst, slots - 1), asm.label("done")]
    return asm.Fragment(items, name="log2_slot")


def linear_slot(dst: Register, value: Register, *, step: int, slots: int,
                base: int = 0) -> asm.Fragment:
    """``dst = clamp((value - base) // step, 0, slots - 1)`` (``value`` is kept)."""
    _distinct("linear_slot", dst=dst, value=value)
    if not 1 <= step <= 0x7FFF_FFFF or not 1 <= slots <= 0x7FFF_FFFF:
        raise AssemblerError(f"histogram.linear_slot: step={step}, slots={slots} out of range")
    if not -0x8000_0000 <= base <= 0x7FFF_FFFF:
        raise AssemblerError(f"histogram.linear_slot: base={base} does not fit an s32")
    items: list[asm.Item] = [asm.mov(dst, value)]
    if base:
        items += [asm.jsge(dst, base, "above"), asm.mov(dst, 0), asm.ja("done"),
                  asm.label("above"), asm.sub(dst, base)]
    if step & (step - 1) == 0:
        items.append(asm.rsh(dst, step.bit_length() - 1))
    else:
        items.append(asm.div(dst, step))
    items += [asm.jle(dst, slots - 1, "done"), asm.mov(dst, slots - 1), asm.label("done")]
    return asm.Fragment(items, name="linear_slot")


def log2_increment(map_: Arg, value: Register, *, slot: Register, tmp: Register,
                   key_stack: int, slots: int = LOG2_SLOTS, by: int | Register = 1,
                   percpu: bool = False) -> asm.Fragment:
    """Add ``by`` to the log2 bucket of ``value`` in an array histogram of ``slots`` u64s.

    ``slot`` and ``tmp`` are scratch registers; ``key_stack`` is 4 free stack bytes.
    Clobbers R0-R5 (a map lookup); ``by`` and a register map must be in R6-R9.
    """
    return asm.Fragment([log2_slot(slot, value, tmp, slots=slots),
                         array_add(map_, slot, by, key_stack=key_stack, percpu=percpu)],
                        name="log2_increment")


def linear_increment(map_: Arg, value: Register, *, slot: Register, step: int, slots: int,
                     key_stack: int, base: int = 0, by: int | Register = 1,
                     percpu: bool = False) -> asm.Fragment:
    """:func:`log2_increment` with linear buckets of width ``step`` starting at ``base``."""
    return asm.Fragment([linear_slot(slot, value, step=step, slots=slots, base=base),
                         array_add(map_, slot, by, key_stack=key_stack, percpu=percpu)],
                        name="linear_increment")


def keyed_increment(map_: Arg, slot: Register, *, key_stack: int, key_size: int,
                    value_stack: int, by: int | Register = 1) -> asm.Fragment:
    """Bump slot ``slot`` of the histogram of the key at ``fp(key_stack)``.

    The map is a ``HASH`` whose key is the ``key_size`` key bytes (a multiple of 4) followed
    by the u32 slot, and whose value is a u64: the caller writes the key, this stores the slot
    right after it and counts. ``value_stack`` is 8 free stack bytes. Clobbers R0-R5.
    """
    if key_size < 0 or key_size % 4:
        raise AssemblerError(f"histogram.keyed_increment: key_size={key_size} is not a "
                             "multiple of 4")
    if isinstance(by, Register):
        check_callee_saved("histogram.keyed_increment", by=by)
    fp(key_stack)
    if key_stack + key_size + 4 > 0:
        raise AssemblerError("histogram.keyed_increment: key and slot do not fit below fp")
    return asm.Fragment([asm.store(asm.W, R10, key_stack + key_size, slot),
                         increment(map_, fp(key_stack), by, stack=value_stack)],
                        name="keyed_increment")


# --- userspace --------------------------------------------------------------------------

def _as_array(counts: list[int]) -> Any:
    try:
        import numpy as np
    except ImportError:
        return counts
    return np.array(counts, dtype=np.uint64)


def _count(v: Any) -> int:
    return int(v.sum()) if hasattr(v, "sum") else int(v)


def read(map_: Any, *, slots: int | None = None) -> Any:
    """The counters of an array histogram, slot by slot (per-CPU values summed).

    A numpy ``uint64`` array when numpy is installed, else a list of ints.
    """
    n = slots if slots is not None else map_.max_entries
    counts = [0] * n
    for key, v in map_.items():
        i = int(key)
        if 0 <= i < n:
            counts[i] = _count(v)
    return _as_array(counts)


def read_keyed(map_: Any, *, key_size: int, slots: int = LOG2_SLOTS) -> dict[bytes, Any]:
    """Per-key histograms from a :func:`keyed_increment` hash: ``{key bytes: counts}``."""
    out: dict[bytes, list[int]] = {}
    for k, v in map_.items():
        raw = bytes(k) if not isinstance(k, int) else k.to_bytes(map_.key_size, sys.byteorder)
        if len(raw) != key_size + 4:
            raise BPFError(f"histogram.read_keyed: key of {len(raw)} bytes, expected "
                           f"{key_size} + 4")
        slot = int.from_bytes(raw[key_size:], sys.byteorder)
        c = (int.from_bytes(bytes(v), sys.byteorder)
             if isinstance(v, (bytes, bytearray, memoryview)) else _count(v))
        if slot < slots:
            out.setdefault(raw[:key_size], [0] * slots)[slot] += c
    return {k: _as_array(c) for k, c in out.items()}


def slot_ranges(n: int) -> list[tuple[int, int]]:
    """The value range ``(low, high)`` of log2 slots ``0..n-1`` (slot 1 is ``0 .. 1``)."""
    out = [(0, 0)]
    for i in range(1, n):
        low, high = 1 << (i - 1), (1 << i) - 1
        out.append((0 if low == high else low, high))
    return out[:n]


def _bar(count: int, peak: int, width: int) -> str:
    # as many stars as width * count / peak (in floating point, as bcc), at most width
    return "*" * min(width, max(0, int(width * count / peak))) if peak else ""


def _last_nonzero(counts: Sequence[int]) -> int:
    last = -1
    for i, c in enumerate(counts):
        if c > 0:
            last = i
    return last


def format_log2(counts: Iterable[Any], val_type: str = "value", *,
                strip_leading_zero: bool = False) -> str:
    """The text of bcc's ``print_log2_hist`` for these slot counts (with the newlines)."""
    vals = [int(c) for c in counts]
    last = _last_nonzero(vals)
    peak = max(vals, default=0)
    wide = last > 32
    width = STARS // 2 if wide else STARS
    lines: list[str] = []
    if last > 0:
        lines.append(f"{'':15}{val_type:<29} : count     distribution" if wide
                     else f"{'':5}{val_type:<19} : count     distribution")
    skipping = strip_leading_zero
    for i, (low, high) in enumerate(slot_ranges(last + 1)):
        if i == 0:
            continue
        c = vals[i]
        if skipping and not c:
            continue
        skipping = False
        rng = f"{low:20d} -> {high:<20d}" if wide else f"{low:10d} -> {high:<10d}"
        lines.append(f"{rng} : {c:<8d} |{_bar(c, peak, width):<{width}}|")
    return "".join(line + "\n" for line in lines)


def format_linear(counts: Iterable[Any], val_type: str = "value", *,
                  strip_leading_zero: bool = False) -> str:
    """The text of bcc's ``print_linear_hist`` for these slot counts."""
    vals = [int(c) for c in counts]
    last = _last_nonzero(vals)
    peak = max(vals, default=0)
    lines: list[str] = []
    if last >= 0:
        lines.append(f"{'':5}{val_type:<13} : count     distribution")
    skipping = strip_leading_zero
    for i in range(last + 1):
        c = vals[i]
        if skipping and not c:
            continue
        skipping = False
        lines.append(f"{'':8}{i:<10d} : {c:<8d} |{_bar(c, peak, STARS):<{STARS}}|")
    return "".join(line + "\n" for line in lines)


def print_log2(counts: Iterable[Any], val_type: str = "value", *,
               strip_leading_zero: bool = False, file: IO[str] | None = None) -> None:
    """Print :func:`format_log2` (to stdout by default)."""
    (file or sys.stdout).write(format_log2(counts, val_type,
                                           strip_leading_zero=strip_leading_zero))


def print_linear(counts: Iterable[Any], val_type: str = "value", *,
                 strip_leading_zero: bool = False, file: IO[str] | None = None) -> None:
    """Print :func:`format_linear` (to stdout by default)."""
    (file or sys.stdout).write(format_linear(counts, val_type,
                                             strip_leading_zero=strip_leading_zero))


def plot(counts: Iterable[Any] | Mapping[str, Iterable[Any]], *, log2: bool = True,
         title: str = "", path: str | None = None) -> Any:
    """A matplotlib bar chart of one histogram (or one series per key); saved to ``path``
    when given. Returns the figure. Raises :class:`~ebpf.errors.NotSupportedError` without
    matplotlib."""
    try:
        import matplotlib  # type: ignore[import-not-found, unused-ignore]

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]
    except ImportError as e:
        from ..errors import NotSupportedError

        raise NotSupportedError("matplotlib", detail=f"histogram.plot needs it: {e}") from e
    series = dict(counts) if isinstance(counts, Mapping) else {"": counts}
    fig, ax = plt.subplots()
    for name, vals in series.items():
        v = [int(c) for c in vals]
        labels = ([f"{lo}-{hi}" for lo, hi in slot_ranges(len(v))] if log2
                  else [str(i) for i in range(len(v))])
        ax.bar(labels, v, label=name or None, alpha=0.7)
    ax.set_title(title)
    ax.tick_params(axis="x", labelrotation=90)
    if len(series) > 1:
        ax.legend()
    if path is not None:
        fig.savefig(path)
    return fig
