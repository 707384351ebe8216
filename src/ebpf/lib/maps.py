"""Map access from programs: lookup, update, delete, lookup-or-init, counters.

Keys and values are passed as pointers, usually into the stack (``fp(-8)``). Anything read
after a helper call (a key pointer in a register, the increment) must live in R6-R9 or be
a constant or stack pointer, because calls clobber R0-R5; the functions check this.
Results come back in R0 (a value pointer, or 0/-errno).
"""

from __future__ import annotations

from .. import asm
from ..asm import R0, R1, R10, Helper, Register
from ..errors import AssemblerError
from ._call import Arg, call, check_callee_saved, fp, set_reg
from ._flags import BPF_ANY, BPF_EXIST, BPF_NOEXIST
from .memory import zero_stack

__all__ = [
    "BPF_ANY",
    "BPF_EXIST",
    "BPF_NOEXIST",
    "array_add",
    "delete",
    "increment",
    "lookup",
    "lookup_or_init",
    "percpu_increment",
    "store_timestamp",
    "update",
]

_SIZES = {1: asm.B, 2: asm.H, 4: asm.W, 8: asm.DW}


def lookup(map_: Arg, key: Arg, on_miss: str | None = None) -> list[asm.Instruction]:
    """``r0 = bpf_map_lookup_elem(map, key)``; jump to ``on_miss`` when absent."""
    out = call(Helper.MAP_LOOKUP_ELEM, map_, key)
    if on_miss is not None:
        out.append(asm.jeq(R0, 0, on_miss))
    return out


def update(map_: Arg, key: Arg, value: Arg, flags: Arg = BPF_ANY) -> list[asm.Instruction]:
    """``r0 = bpf_map_update_elem(map, key, value, flags)`` (0 or -errno)."""
    return call(Helper.MAP_UPDATE_ELEM, map_, key, value, flags)


def delete(map_: Arg, key: Arg) -> list[asm.Instruction]:
    """``r0 = bpf_map_delete_elem(map, key)`` (0 or -errno)."""
    return call(Helper.MAP_DELETE_ELEM, map_, key)


def _check_args(what: str, **kw: object) -> None:
    for name, v in kw.items():
        if isinstance(v, Register):
            check_callee_saved(what, **{name: v})


def lookup_or_init(map_: Arg, key: Arg, init: Arg, on_fail: str) -> asm.Fragment:
    """``r0`` = the value for ``key``, inserting ``init`` first if there is none.

    Another CPU may insert between the lookup and the update: the update uses
    ``BPF_NOEXIST`` and the second lookup finds whichever value won. Jumps to ``on_fail``
    if the element still cannot be found (map full...).
    """
    _check_args("maps.lookup_or_init", key=key, init=init, map_=map_)
    return asm.Fragment([
        *lookup(map_, key), asm.jne(R0, 0, "found"),
        *update(map_, key, init, BPF_NOEXIST),
        *lookup(map_, key, on_fail),
        asm.label("found"),
    ], name="lookup_or_init")


def _value_init(stack: int, value_size: int, offset: int, size: asm.Size, by: int | Register
                ) -> list[asm.Instruction]:
    out = zero_stack(stack, value_size)
    if isinstance(by, Register):
        out.append(asm.store(size, R10, stack + offset, by))
    elif size == asm.DW and not -0x8000_0000 <= by <= 0x7FFF_FFFF:
        out += [*set_reg(R1, by), asm.store(size, R10, stack + offset, R1)]
    else:
        out.append(asm.store_imm(size, R10, stack + offset, by))
    return out


def _counter(map_: Arg, key: Arg, by: int | Register, offset: int, size: int,
             value_size: int, stack: int, on_fail: str | None, atomic: bool, name: str
             ) -> asm.Fragment:
    _check_args(f"maps.{name}", key=key, by=by, map_=map_)
    if size not in _SIZES or (atomic and size not in (4, 8)):
        raise AssemblerError(f"maps.{name}: counter size {size} not supported")
    if not 0 <= offset <= value_size - size:
        raise AssemblerError(f"maps.{name}: counter at {offset} is outside the value")
    sz = _SIZES[size]
    fail = on_fail or "out"

    def bump() -> list[asm.Instruction]:
        out = ([asm.mov(R1, by)] if isinstance(by, Register) else set_reg(R1, by))
        if atomic:
            return [*out, asm.atomic_add(sz, R0, R1, offset)]
        return [*out, asm.load(sz, asm.R2, R0, offset), asm.add(asm.R2, R1),
                asm.store(sz, R0, offset, asm.R2)]

    return asm.Fragment([
        *lookup(map_, key), asm.jeq(R0, 0, "miss"),
        *bump(), asm.ja("out"),
        asm.label("miss"),
        *_value_init(stack, value_size, offset, sz, by),
        *update(map_, key, fp(stack), BPF_NOEXIST), asm.jeq(R0, 0, "out"),
        # lost a race with another CPU inserting the key: add to its value
        *lookup(map_, key, fail), *bump(),
        asm.label("out"),
    ], name=name)


def increment(map_: Arg, key: Arg, by: int | Register = 1, *, offset: int = 0, size: int = 8,
              value_size: int = 8, stack: int, on_fail: str | None = None) -> asm.Fragment:
    """Atomically add ``by`` to the counter at ``offset`` of ``key``'s value, creating the
    value (zeroed, then ``by``) when absent: the per-key counter of a hash map.

    ``stack`` is the fp offset of ``value_size`` free bytes for the initial value.
    ``on_fail`` (map full) defaults to skipping the count. Clobbers R0-R5.
    """
    return _counter(map_, key, by, offset, size, value_size, stack, on_fail, True,
                    "increment")


def percpu_increment(map_: Arg, key: Arg, by: int | Register = 1, *, offset: int = 0,
                     size: int = 8, value_size: int = 8, stack: int,
                     on_fail: str | None = None) -> asm.Fragment:
    """:func:`increment` for per-CPU maps (``PERCPU_HASH``/``LRU_PERCPU_HASH``): each CPU
    has its own copy, so a plain load-add-store is enough."""
    return _counter(map_, key, by, offset, size, value_size, stack, on_fail, False,
                    "percpu_increment")


def array_add(map_: Arg, index: int | Register, by: int | Register = 1, *, offset: int = 0,
              size: int = 8, key_stack: int, percpu: bool = False) -> asm.Fragment:
    """Add ``by`` to a counter in an ``ARRAY``/``PERCPU_ARRAY`` element (which always
    exists; an index out of range is skipped). ``key_stack`` is 4 free bytes for the key."""
    _check_args("maps.array_add", by=by, map_=map_)
    if size not in (4, 8):
        raise AssemblerError(f"maps.array_add: counter size {size} not supported")
    sz = _SIZES[size]
    key = ([asm.store(asm.W, R10, key_stack, index)] if isinstance(index, Register)
           else [asm.store_imm(asm.W, R10, key_stack, index)])
    val = [asm.mov(R1, by)] if isinstance(by, Register) else set_reg(R1, by)
    add = ([asm.load(sz, asm.R2, R0, offset), asm.add(asm.R2, R1),
            asm.store(sz, R0, offset, asm.R2)] if percpu
           else [asm.atomic_add(sz, R0, R1, offset)])
    return asm.Fragment([*key, *lookup(map_, fp(key_stack), "out"), *val, *add,
                         asm.label("out")], name="array_add")


def store_timestamp(map_: Arg, key: Arg, *, stack: int, flags: Arg = BPF_ANY,
                    clock: Helper = Helper.KTIME_GET_NS) -> list[asm.Instruction]:
    """``map[key] = now`` (a u64 from ``clock``, ``CLOCK_MONOTONIC`` by default): the
    last-seen time of a key. ``flags=BPF_EXIST`` only refreshes keys already there,
    ``BPF_NOEXIST`` keeps the first time. ``stack`` is 8 free bytes. R0 = 0 or -errno."""
    _check_args("maps.store_timestamp", key=key, map_=map_)
    fp(stack)
    return [asm.call(clock), asm.store(asm.DW, R10, stack, R0),
            *update(map_, key, fp(stack), flags)]
