"""The :class:`Instruction` value: one eBPF instruction, its encoding and decoding."""

from __future__ import annotations

import struct
import sys
from collections.abc import Iterator
from typing import Any, Final, NoReturn, Protocol, runtime_checkable

from ..errors import AssemblerError, ParseError
from .register import Register

__all__ = ["HasFileno", "Instruction", "Reference", "decode", "iter_decode"]

_SLOT: Final = struct.Struct("<BBhi")
_SLOT_BE: Final = struct.Struct(">BBhi")
_DSLOT: Final = struct.Struct("<BBhiBBhi")
_U64: Final = struct.Struct("<Q")
_LITTLE: Final = sys.byteorder == "little"
_pack: Final = _SLOT.pack
_pack2: Final = _DSLOT.pack

LD_IMM64: Final = 0x18
_REGS: Final = tuple(Register) + tuple(range(11, 16))
# One bytes object per distinct one-slot encoding: programs repeat instructions a lot, and
# shared bytes make an instruction smaller and assembling a program touch less memory.
_RAWS: dict[bytes, bytes] = {}
_RAWS_MAX: Final = 1 << 16
_intern: Final = _RAWS.setdefault


@runtime_checkable
class HasFileno(Protocol):
    """Anything with ``fileno()``: a map object, an ``FD``."""

    def fileno(self) -> int: ...


#: A symbolic reference resolved when the program is encoded: a map object (anything with
#: ``fileno()``) or a name (a map name, or a kfunc name for kfunc calls).
Reference = HasFileno | str


def _num(v: object) -> str:
    """``repr(v)`` for error messages, short for a huge int (Python refuses to print one of
    more than 4300 decimal digits, with a bare ValueError)."""
    if isinstance(v, int) and v.bit_length() > 128:
        return f"<{v.bit_length()}-bit integer>"
    return repr(v)


def _s32(value: int, what: str) -> int:
    if -0x8000_0000 <= value <= 0x7FFF_FFFF:
        return value
    if 0x8000_0000 <= value <= 0xFFFF_FFFF:
        return value - 0x1_0000_0000
    raise AssemblerError(f"{what} {_num(value)} does not fit in 32 bits")


class Instruction:
    """One eBPF instruction, a frozen value.

    Fields are the kernel's ``struct bpf_insn``: ``opcode``, ``dst``, ``src``, ``off`` (signed
    16 bits), ``imm`` (signed 32 bits). An ld_imm64 (``opcode == 0x18``) is one value that
    encodes to two slots; ``next_imm`` is the ``imm`` of its second slot and :attr:`imm64` the
    whole 64-bit constant.

    Symbolic metadata, resolved when a program is assembled (:class:`ebpf.asm.Instructions`):

    * ``target``: a label name for jumps, bpf-to-bpf calls and ``ld_imm64`` function pointers;
      ``off``/``imm`` hold 0 until resolved.
    * ``reference``: a map (object with ``fileno()``, or a name) for map loads, or a kfunc
      name for kfunc calls; the fd or BTF id is filled in by :meth:`Instructions.encode`.

    Build instructions with the constructors in :mod:`ebpf.asm` (``asm.mov(R0, 1)``), or
    directly: ``Instruction(0xB7, dst=0, imm=1)``. Equal instructions compare equal and hash
    alike; ``with_target``/``with_reference`` return modified copies.
    """

    __slots__ = (
        "_dst", "_flags", "_imm", "_imm2", "_off", "_op", "_raw", "_ref", "_src", "_target",
    )

    _op: int
    _dst: int
    _src: int
    _off: int
    _imm: int
    _imm2: int
    _target: str | None
    _ref: Reference | None
    _raw: bytes
    # bit 0: has a target label; 1: has a reference; 2: two slots; 3: numeric jump/call offset.
    # Zero: nothing for a program to resolve, check or count (see Instructions._flatten).
    _flags: int

    def __init__(
        self,
        opcode: int,
        dst: int = 0,
        src: int = 0,
        off: int = 0,
        imm: int = 0,
        next_imm: int = 0,
        *,
        target: str | None = None,
        reference: Reference | None = None,
    ) -> None:
        if not 0 <= opcode <= 0xFF:
            raise AssemblerError(f"opcode {opcode:#x} does not fit in 8 bits")
        if not 0 <= dst <= 15 or not 0 <= src <= 15:
            raise AssemblerError(f"register out of range: dst={dst}, src={src} (0..15)")
        if not -0x8000 <= off <= 0x7FFF:
            raise AssemblerError(f"offset {_num(off)} does not fit in 16 bits")
        imm = _s32(imm, "immediate")
        next_imm = _s32(next_imm, "next immediate")
        if next_imm and opcode != LD_IMM64:
            raise AssemblerError("next_imm is only valid for ld_imm64 (opcode 0x18)")
        if target is not None and not isinstance(target, str):
            raise AssemblerError(f"label must be a str, not {type(target).__name__}")
        self._op = opcode
        self._dst = _REGS[dst]
        self._src = _REGS[src]
        self._off = off
        self._imm = imm
        self._imm2 = next_imm
        self._target = target
        self._ref = reference
        raw = _pack(opcode, (src << 4) | dst, off, imm)
        if opcode == LD_IMM64:
            raw += _pack(0, 0, 0, next_imm)
        else:
            raw = _intern(raw, raw)
            if len(_RAWS) > _RAWS_MAX:
                _RAWS.clear()
        self._raw = raw
        self._flags = _flags(opcode, src, target, reference)

    # -- fields ------------------------------------------------------------------------------
    @property
    def opcode(self) -> int:
        """The opcode byte."""
        return self._op

    @property
    def dst(self) -> int:
        """Destination register number (a :class:`Register` for 0-10)."""
        return self._dst

    @property
    def src(self) -> int:
        """Source register number, or the pseudo kind of calls and ld_imm64."""
        return self._src

    @property
    def off(self) -> int:
        """Signed 16-bit offset."""
        return self._off

    @property
    def imm(self) -> int:
        """Signed 32-bit immediate (for ld_imm64: the low half)."""
        return self._imm

    @property
    def next_imm(self) -> int:
        """For ld_imm64: the ``imm`` of the second slot (high half, or map value offset)."""
        return self._imm2

    @property
    def imm64(self) -> int:
        """For ld_imm64: the unsigned 64-bit constant ``next_imm << 32 | imm``."""
        return ((self._imm2 & 0xFFFF_FFFF) << 32) | (self._imm & 0xFFFF_FFFF)

    @property
    def target(self) -> str | None:
        """Label this instruction jumps to, calls or loads, if symbolic."""
        return self._target

    @property
    def reference(self) -> Reference | None:
        """Map or kfunc this instruction refers to, if symbolic."""
        return self._ref

    @property
    def size(self) -> int:
        """Number of 8-byte slots: 2 for ld_imm64, else 1."""
        return 2 if self._op == LD_IMM64 else 1

    @property
    def is_ld_imm64(self) -> bool:
        """True for the two-slot ``ld_imm64``."""
        return self._op == LD_IMM64

    # -- value behaviour -----------------------------------------------------------------------
    def _key(self) -> tuple[Any, ...]:
        return (self._raw, self._target, self._ref)

    def __eq__(self, other: object) -> bool:
        if type(other) is not Instruction:
            return NotImplemented
        return (
            self._raw == other._raw
            and self._target == other._target
            and (self._ref is other._ref or self._ref == other._ref)
        )

    def __hash__(self) -> int:
        return hash((self._raw, self._target))

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild,
            (self._op, self._dst, self._src, self._off, self._imm, self._imm2, self._target,
             self._ref),
        )

    def __repr__(self) -> str:
        from .disasm import format_instruction

        return f"Instruction({format_instruction(self)!r})"

    def __str__(self) -> str:
        from .disasm import format_instruction

        return format_instruction(self)

    # -- copies ------------------------------------------------------------------------------
    def replace(self, **changes: Any) -> Instruction:
        """A copy with some fields changed (``opcode``, ``dst``, ``src``, ``off``, ``imm``,
        ``next_imm``, ``target``, ``reference``)."""
        fields: dict[str, Any] = {
            "opcode": self._op,
            "dst": self._dst,
            "src": self._src,
            "off": self._off,
            "imm": self._imm,
            "next_imm": self._imm2,
            "target": self._target,
            "reference": self._ref,
        }
        unknown = set(changes) - set(fields)
        if unknown:
            raise TypeError(f"unknown Instruction field(s): {', '.join(sorted(unknown))}")
        fields.update(changes)
        return Instruction(**fields)

    def with_target(self, label: str | None) -> Instruction:
        """A copy that jumps to (or calls, or loads the address of) ``label``."""
        return self.replace(target=label)

    def with_reference(self, reference: Reference | None) -> Instruction:
        """A copy that refers to ``reference`` (a map, or a kfunc name)."""
        return self.replace(reference=reference)

    # -- encoding ----------------------------------------------------------------------------
    def encode(self, byteorder: str = sys.byteorder) -> bytes:
        """The 8 (or 16, for ld_imm64) bytes of this instruction.

        Raises :class:`AssemblerError` if a label or a named reference is still symbolic;
        assemble a program with :class:`Instructions` to resolve those.
        """
        if self._target is not None:
            raise AssemblerError(
                f"instruction refers to label {self._target!r}; encode it within Instructions"
            )
        ref = self._ref
        if ref is not None:
            if isinstance(ref, str):
                raise AssemblerError(
                    f"instruction refers to {ref!r}; encode it within Instructions(maps=...)"
                )
            return self.replace(imm=ref.fileno(), reference=None).encode(byteorder)
        if byteorder == "little":
            return self._raw
        return _encode_be(self._op, self._dst, self._src, self._off, self._imm, self._imm2)

    @classmethod
    def decode(cls, data: bytes, offset: int = 0, byteorder: str = sys.byteorder) -> Instruction:
        """Decode the instruction at ``data[offset:]`` (16 bytes for ld_imm64)."""
        if offset < 0 or offset + 8 > len(data):
            raise ParseError("truncated instruction", offset)
        big = byteorder == "big"
        op, regs, off, imm = (_SLOT_BE if big else _SLOT).unpack_from(data, offset)
        dst, src = (regs >> 4, regs & 15) if big else (regs & 15, regs >> 4)
        imm2 = 0
        if op == LD_IMM64:
            if offset + 16 > len(data):
                raise ParseError("ld_imm64 without its second slot", offset)
            op2, regs2, off2, imm2 = (_SLOT_BE if big else _SLOT).unpack_from(data, offset + 8)
            if op2 or regs2 or off2:
                raise ParseError("ld_imm64 second slot has nonzero reserved fields", offset + 8)
        return _make2(op, dst, src, off, imm, imm2) if op == LD_IMM64 else _make(
            op, dst, src, off, imm
        )


def _encode_be(op: int, dst: int, src: int, off: int, imm: int, imm2: int) -> bytes:
    raw = _SLOT_BE.pack(op, (dst << 4) | src, off, imm)
    if op == LD_IMM64:
        raw += _SLOT_BE.pack(0, 0, 0, imm2)
    return raw


def _rebuild(
    op: int, dst: int, src: int, off: int, imm: int, imm2: int, target: str | None, ref: Any
) -> Instruction:
    return Instruction(op, dst, src, off, imm, imm2, target=target, reference=ref)


_new = object.__new__


def _make(
    op: int,
    dst: int,
    src: int,
    off: int,
    imm: int,
    target: str | None = None,
    ref: Reference | None = None,
) -> Instruction:
    """Build a one-slot instruction from fields already checked (the DSL's fast path)."""
    i: Instruction = _new(Instruction)
    i._op = op
    i._dst = dst
    i._src = src
    i._off = off
    i._imm = imm
    i._imm2 = 0
    i._target = target
    i._ref = ref
    raw = _pack(op, (src << 4) | dst, off, imm)
    i._raw = raw = _intern(raw, raw)
    if len(_RAWS) > _RAWS_MAX:
        _RAWS.clear()
    f = 0 if target is None else 1
    if ref is not None:
        f |= 2
    cls = op & 7
    if cls in {5, 6} and f == 0 and op not in {0x95, 0x8D} and (op != 0x85 or src == 1):
        f = 8
    i._flags = f
    return i


def _make2(
    op: int,
    dst: int,
    src: int,
    off: int,
    imm: int,
    imm2: int,
    target: str | None = None,
    ref: Reference | None = None,
) -> Instruction:
    """Build an ld_imm64 from fields already checked."""
    i: Instruction = _new(Instruction)
    i._op = op
    i._dst = dst
    i._src = src
    i._off = off
    i._imm = imm
    i._imm2 = imm2
    i._target = target
    i._ref = ref
    i._raw = _pack2(op, (src << 4) | dst, off, imm, 0, 0, 0, imm2)
    i._flags = _flags(op, src, target, ref)
    return i


def _flags(op: int, src: int, target: object, ref: object) -> int:
    f = 0 if target is None else 1
    if ref is not None:
        f |= 2
    if op == LD_IMM64:
        f |= 4
        if src == 4 and target is None:
            f |= 8
        return f
    cls = op & 7
    if cls in {5, 6} and target is None and op not in (0x95, 0x8D) and (op != 0x85 or src == 1):
        f |= 8
    return f


def iter_decode(code: bytes, byteorder: str = sys.byteorder) -> Iterator[Instruction]:
    """Decode a whole program, one :class:`Instruction` per instruction (ld_imm64 is one)."""
    n = len(code)
    if n % 8:
        raise ParseError(f"program length {n} is not a multiple of 8", n - n % 8)
    pos = 0
    while pos < n:
        insn = Instruction.decode(code, pos, byteorder)
        yield insn
        pos += 16 if insn._op == LD_IMM64 else 8


def decode(code: bytes, byteorder: str = sys.byteorder) -> list[Instruction]:
    """Decode a whole program into a list of :class:`Instruction`.

    Raises :class:`~ebpf.errors.ParseError` (and nothing else) for bytes that are no
    program: a length that is not a multiple of 8, an ld_imm64 without its second slot or
    with nonzero reserved fields there. Any other slot decodes, valid instruction or not.
    Equal slots decode to the same (immutable) :class:`Instruction` object: programs repeat
    instructions a lot, and each distinct one is built once.
    """
    if byteorder != "little":
        return list(iter_decode(code, byteorder))
    n = len(code)
    if n % 8:
        raise ParseError(f"program length {n} is not a multiple of 8", n - n % 8)
    words: list[int] = (
        memoryview(code).cast("B").cast("Q").tolist() if _LITTLE
        else [w for (w,) in _U64.iter_unpack(code)]
    )
    out: list[Instruction] = []
    append = out.append
    memo: dict[int, Instruction] = {}  # slot (as a u64) -> its Instruction; never an ld_imm64
    get = memo.get
    regs = _REGS
    it = iter(words)
    for w in it:
        insn = get(w)
        if insn is None:
            op = w & 0xFF
            off = w >> 16 & 0xFFFF
            if off & 0x8000:
                off -= 0x1_0000
            imm = w >> 32
            if imm & 0x8000_0000:
                imm -= 0x1_0000_0000
            if op == LD_IMM64:
                w2 = next(it, None)
                if w2 is None or w2 & 0xFFFF_FFFF:
                    _raise_bad_ld_imm64(words)
                imm2 = w2 >> 32
                if imm2 & 0x8000_0000:
                    imm2 -= 0x1_0000_0000
                append(_make2(op, regs[w >> 8 & 15], regs[w >> 12 & 15], off, imm, imm2))
                continue
            insn = memo[w] = _make(op, regs[w >> 8 & 15], regs[w >> 12 & 15], off, imm)
        append(insn)
    return out


def _raise_bad_ld_imm64(words: list[int]) -> NoReturn:
    """Raise the ParseError for the first ld_imm64 of ``words`` without a valid second slot
    (found again from the start: the decoding loop does not count positions)."""
    pos = 0
    while pos < len(words):
        if words[pos] & 0xFF == LD_IMM64:
            if pos + 1 >= len(words):
                raise ParseError("ld_imm64 without its second slot", pos * 8)
            if words[pos + 1] & 0xFFFF_FFFF:
                raise ParseError(
                    "ld_imm64 second slot has nonzero reserved fields", pos * 8 + 8
                )
            pos += 2
        else:
            pos += 1
    raise AssertionError("no bad ld_imm64")  # pragma: no cover
