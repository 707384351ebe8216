"""Readable constructors for every eBPF instruction.

Each function returns one frozen :class:`~ebpf.asm.Instruction`. The kind of an operand is
decided by its type: a :class:`~ebpf.asm.Register` is a register operand, an ``int`` an
immediate. Jump targets are a label name (``str``, resolved by :class:`Instructions`) or a
numeric offset relative to the next instruction. Arguments are checked here: a bad register,
an out-of-range immediate or offset, a shift by the register width or more, a division by a
zero immediate, a write to R10 all raise :class:`~ebpf.errors.AssemblerError`.

Naming follows the kernel: ``add`` is ``BPF_ALU64 | BPF_ADD``, ``add32`` is the ``BPF_ALU``
form; ``jeq`` compares 64 bits, ``jeq32`` is ``BPF_JMP32``.
"""

from __future__ import annotations

from typing import Any, Final

from ..errors import AssemblerError
from .helpers import check_helper_allowed
from .instruction import HasFileno, Instruction, Reference, _make, _make2, _num
from .opcode import Size
from .register import Register

__all__ = [
    "DW",
    "B",
    "H",
    "W",
    "add",
    "add32",
    "addr_space_cast",
    "and32",
    "and_",
    "arsh",
    "arsh32",
    "atomic_add",
    "atomic_and",
    "atomic_cmpxchg",
    "atomic_or",
    "atomic_xchg",
    "atomic_xor",
    "bswap",
    "call",
    "call_pc",
    "callx",
    "div",
    "div32",
    "exit",
    "gotol",
    "ja",
    "jeq",
    "jeq32",
    "jge",
    "jge32",
    "jgt",
    "jgt32",
    "jle",
    "jle32",
    "jlt",
    "jlt32",
    "jne",
    "jne32",
    "jset",
    "jset32",
    "jsge",
    "jsge32",
    "jsgt",
    "jsgt32",
    "jsle",
    "jsle32",
    "jslt",
    "jslt32",
    "kfunc_call",
    "ld_abs",
    "ld_ind",
    "load",
    "load_acquire",
    "load_btf_id",
    "load_func",
    "load_imm64",
    "load_map",
    "load_map_idx",
    "load_map_idx_value",
    "load_map_value",
    "loadsx",
    "lsh",
    "lsh32",
    "may_goto",
    "mod",
    "mod32",
    "mov",
    "mov32",
    "movsx",
    "movsx32",
    "mul",
    "mul32",
    "neg",
    "neg32",
    "or32",
    "or_",
    "rsh",
    "rsh32",
    "sdiv",
    "sdiv32",
    "smod",
    "smod32",
    "store",
    "store_imm",
    "store_release",
    "sub",
    "sub32",
    "to_be",
    "to_le",
    "xor",
    "xor32",
]

#: Access sizes, for loads and stores: ``asm.load(asm.W, R0, R1, 0)``.
B: Final = Size.B
H: Final = Size.H
W: Final = Size.W
DW: Final = Size.DW

Target = str | int
_RegOrImm = Register | int

_ALU: Final = 0x04
_ALU64: Final = 0x07
_JMP: Final = 0x05
_JMP32: Final = 0x06


# -- operand checks -------------------------------------------------------------------------
def _reg(r: object, what: str) -> Register:
    if type(r) is Register:
        return r
    raise AssemblerError(f"{what}: {_num(r)} is not a register (expected R0..R10)")


def _wreg(r: object, what: str) -> Register:
    if type(r) is Register and r != 10:
        return r
    if type(r) is Register:
        raise AssemblerError(f"{what}: R10 is the read-only frame pointer")
    raise AssemblerError(f"{what}: {_num(r)} is not a register (expected R0..R9)")


def _imm(v: object, wide: bool, what: str) -> int:
    """A 32-bit immediate; ``wide`` contexts (64-bit ops) sign-extend it, so only s32 fits."""
    if not isinstance(v, int) or isinstance(v, bool):
        raise AssemblerError(f"{what}: expected a register or an int, not {type(v).__name__}")
    v = int(v)
    if -0x8000_0000 <= v <= 0x7FFF_FFFF:
        return v
    if not wide and v <= 0xFFFF_FFFF and v > 0:
        return v - 0x1_0000_0000
    if wide:
        raise AssemblerError(
            f"{what}: immediate {_num(v)} does not fit in a sign-extended 32-bit field"
            " (use load_imm64 for 64-bit constants)"
        )
    raise AssemblerError(f"{what}: immediate {_num(v)} does not fit in 32 bits")


def _off(v: object, what: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise AssemblerError(f"{what}: offset must be an int, not {type(v).__name__}")
    if -0x8000 <= v <= 0x7FFF:
        return int(v)
    raise AssemblerError(f"{what}: offset {_num(v)} does not fit in 16 bits")


_ALL_SIZES: Final = (Size.B, Size.H, Size.W, Size.DW)


def _size(s: object, what: str, allowed: tuple[Size, ...] = _ALL_SIZES) -> Size:
    if type(s) is Size and s in allowed:
        return s
    names = "/".join(a.name for a in allowed)
    raise AssemblerError(f"{what}: size must be one of {names}, not {_num(s)}")


# -- arithmetic -----------------------------------------------------------------------------
def _alu(
    cls: int, op: int, dst: object, src: object, what: str, off: int = 0
) -> Instruction:
    d = _wreg(dst, what)
    if type(src) is Register:
        return _make(cls | op | 0x08, d, src, off, 0)
    imm = _imm(src, cls == _ALU64, what)
    if op in (0x60, 0x70, 0xC0):
        width = 64 if cls == _ALU64 else 32
        if not 0 <= imm < width:
            raise AssemblerError(f"{what}: shift by {_num(imm)} is out of range 0..{width - 1}")
    elif op in (0x30, 0x90) and imm == 0:
        raise AssemblerError(f"{what}: division by zero immediate")
    return _make(cls | op, d, 0, off, imm)


def add(dst: Register, src: _RegOrImm) -> Instruction:
    """``dst += src`` (64-bit)."""
    return _alu(_ALU64, 0x00, dst, src, "add")


def sub(dst: Register, src: _RegOrImm) -> Instruction:
    """``dst -= src`` (64-bit)."""
    return _alu(_ALU64, 0x10, dst, src, "sub")


def mul(dst: Register, src: _RegOrImm) -> Instruction:
    """``dst *= src`` (64-bit)."""
    return _alu(_ALU64, 0x20, dst, src, "mul")


def div(dst: Register, src: _RegOrImm) -> Instruction:
    """``dst /= src`` unsigned (64-bit); division by a zero register gives 0."""
    return _alu(_ALU64, 0x30, dst, src, "div")


def sdiv(dst: Register, src: _RegOrImm) -> Instruction:
    """``dst s/= src`` signed (64-bit, ISA v4, Linux 6.6)."""
    return _alu(_ALU64, 0x30, dst, src, "sdiv", 1)


def or_(dst: Register, src: _RegOrImm) -> Instruction:
    """``dst |= src`` (64-bit)."""
    return _alu(_ALU64, 0x40, dst, src, "or_")


def and_(dst: Register, src: _RegOrImm) -> Instruction:
    """``dst &= src`` (64-bit; an immediate is sign-extended)."""
    return _alu(_ALU64, 0x50, dst, src, "and_")


def lsh(dst: Register, src: _RegOrImm) -> Instruction:
    """``dst <<= src`` (64-bit)."""
    return _alu(_ALU64, 0x60, dst, src, "lsh")


def rsh(dst: Register, src: _RegOrImm) -> Instruction:
    """``dst >>= src`` logical (64-bit)."""
    return _alu(_ALU64, 0x70, dst, src, "rsh")


def mod(dst: Register, src: _RegOrImm) -> Instruction:
    """``dst %= src`` unsigned (64-bit); modulo by a zero register leaves dst unchanged."""
    return _alu(_ALU64, 0x90, dst, src, "mod")


def smod(dst: Register, src: _RegOrImm) -> Instruction:
    """``dst s%= src`` signed (64-bit, ISA v4, Linux 6.6)."""
    return _alu(_ALU64, 0x90, dst, src, "smod", 1)


def xor(dst: Register, src: _RegOrImm) -> Instruction:
    """``dst ^= src`` (64-bit)."""
    return _alu(_ALU64, 0xA0, dst, src, "xor")


def mov(dst: Register, src: _RegOrImm) -> Instruction:
    """``dst = src`` (64-bit; an immediate is sign-extended)."""
    return _alu(_ALU64, 0xB0, dst, src, "mov")


def arsh(dst: Register, src: _RegOrImm) -> Instruction:
    """``dst s>>= src`` arithmetic (64-bit)."""
    return _alu(_ALU64, 0xC0, dst, src, "arsh")


def add32(dst: Register, src: _RegOrImm) -> Instruction:
    """``wdst += src`` (32-bit; the upper half of dst is zeroed)."""
    return _alu(_ALU, 0x00, dst, src, "add32")


def sub32(dst: Register, src: _RegOrImm) -> Instruction:
    """``wdst -= src`` (32-bit)."""
    return _alu(_ALU, 0x10, dst, src, "sub32")


def mul32(dst: Register, src: _RegOrImm) -> Instruction:
    """``wdst *= src`` (32-bit)."""
    return _alu(_ALU, 0x20, dst, src, "mul32")


def div32(dst: Register, src: _RegOrImm) -> Instruction:
    """``wdst /= src`` unsigned (32-bit)."""
    return _alu(_ALU, 0x30, dst, src, "div32")


def sdiv32(dst: Register, src: _RegOrImm) -> Instruction:
    """``wdst s/= src`` signed (32-bit, ISA v4)."""
    return _alu(_ALU, 0x30, dst, src, "sdiv32", 1)


def or32(dst: Register, src: _RegOrImm) -> Instruction:
    """``wdst |= src`` (32-bit)."""
    return _alu(_ALU, 0x40, dst, src, "or32")


def and32(dst: Register, src: _RegOrImm) -> Instruction:
    """``wdst &= src`` (32-bit)."""
    return _alu(_ALU, 0x50, dst, src, "and32")


def lsh32(dst: Register, src: _RegOrImm) -> Instruction:
    """``wdst <<= src`` (32-bit)."""
    return _alu(_ALU, 0x60, dst, src, "lsh32")


def rsh32(dst: Register, src: _RegOrImm) -> Instruction:
    """``wdst >>= src`` logical (32-bit)."""
    return _alu(_ALU, 0x70, dst, src, "rsh32")


def mod32(dst: Register, src: _RegOrImm) -> Instruction:
    """``wdst %= src`` unsigned (32-bit)."""
    return _alu(_ALU, 0x90, dst, src, "mod32")


def smod32(dst: Register, src: _RegOrImm) -> Instruction:
    """``wdst s%= src`` signed (32-bit, ISA v4)."""
    return _alu(_ALU, 0x90, dst, src, "smod32", 1)


def xor32(dst: Register, src: _RegOrImm) -> Instruction:
    """``wdst ^= src`` (32-bit)."""
    return _alu(_ALU, 0xA0, dst, src, "xor32")


def mov32(dst: Register, src: _RegOrImm) -> Instruction:
    """``wdst = src`` (32-bit; the upper half of dst is zeroed)."""
    return _alu(_ALU, 0xB0, dst, src, "mov32")


def arsh32(dst: Register, src: _RegOrImm) -> Instruction:
    """``wdst s>>= src`` arithmetic (32-bit)."""
    return _alu(_ALU, 0xC0, dst, src, "arsh32")


def neg(dst: Register) -> Instruction:
    """``dst = -dst`` (64-bit)."""
    return _make(0x87, _wreg(dst, "neg"), 0, 0, 0)


def neg32(dst: Register) -> Instruction:
    """``wdst = -wdst`` (32-bit)."""
    return _make(0x84, _wreg(dst, "neg32"), 0, 0, 0)


def movsx(dst: Register, src: Register, width: int) -> Instruction:
    """``dst = (s8|s16|s32)src``: sign-extending 64-bit move (ISA v4, Linux 6.6)."""
    if width not in (8, 16, 32):
        raise AssemblerError(f"movsx: width must be 8, 16 or 32, not {_num(width)}")
    return _make(0xBF, _wreg(dst, "movsx"), _reg(src, "movsx"), width, 0)


def movsx32(dst: Register, src: Register, width: int) -> Instruction:
    """``wdst = (s8|s16)wsrc``: sign-extending 32-bit move (ISA v4, Linux 6.6)."""
    if width not in (8, 16):
        raise AssemblerError(f"movsx32: width must be 8 or 16, not {_num(width)}")
    return _make(0xBC, _wreg(dst, "movsx32"), _reg(src, "movsx32"), width, 0)


def addr_space_cast(dst: Register, src: Register, dst_as: int, src_as: int) -> Instruction:
    """``dst = addr_space_cast(src, dst_as, src_as)`` for BPF arenas (Linux 6.9)."""
    if not (0 <= dst_as <= 0xFFFF and 0 <= src_as <= 0xFFFF):
        raise AssemblerError("addr_space_cast: address spaces must fit in 16 bits")
    d, s = _wreg(dst, "addr_space_cast"), _reg(src, "addr_space_cast")
    imm = (dst_as << 16) | src_as
    return _make(0xBF, d, s, 1, imm - 0x1_0000_0000 if imm > 0x7FFF_FFFF else imm)


def _end(op: int, dst: object, width: object, what: str) -> Instruction:
    if width not in (16, 32, 64):
        raise AssemblerError(f"{what}: width must be 16, 32 or 64, not {_num(width)}")
    assert isinstance(width, int)
    return _make(op, _wreg(dst, what), 0, 0, width)


def to_be(dst: Register, width: int) -> Instruction:
    """``dst = htobe<width>(dst)``: to big-endian, i.e. a swap on little-endian hosts.

    ``BPF_ALU | BPF_END | BPF_TO_BE``; the result is zero-extended from ``width`` bits.
    """
    return _end(0xDC, dst, width, "to_be")


def to_le(dst: Register, width: int) -> Instruction:
    """``dst = htole<width>(dst)``: to little-endian (a truncation on little-endian hosts)."""
    return _end(0xD4, dst, width, "to_le")


def bswap(dst: Register, width: int) -> Instruction:
    """``dst = bswap<width>(dst)``: unconditional byte swap (``BPF_ALU64 | BPF_END``, ISA v4)."""
    return _end(0xD7, dst, width, "bswap")


# -- memory ---------------------------------------------------------------------------------
def load(size: Size, dst: Register, src: Register, off: int = 0) -> Instruction:
    """``dst = *(u<size> *)(src + off)``, zero-extended."""
    s = _size(size, "load")
    return _make(0x61 | s, _wreg(dst, "load"), _reg(src, "load"), _off(off, "load"), 0)


def loadsx(size: Size, dst: Register, src: Register, off: int = 0) -> Instruction:
    """``dst = *(s<size> *)(src + off)``, sign-extended (ISA v4, Linux 6.6)."""
    s = _size(size, "loadsx", (Size.B, Size.H, Size.W))
    return _make(0x81 | s, _wreg(dst, "loadsx"), _reg(src, "loadsx"), _off(off, "loadsx"), 0)


def store(size: Size, dst: Register, off: int, src: Register) -> Instruction:
    """``*(u<size> *)(dst + off) = src``."""
    s = _size(size, "store")
    return _make(0x63 | s, _reg(dst, "store"), _reg(src, "store"), _off(off, "store"), 0)


def store_imm(size: Size, dst: Register, off: int, imm: int) -> Instruction:
    """``*(u<size> *)(dst + off) = imm`` (for DW, imm is sign-extended)."""
    s = _size(size, "store_imm")
    return _make(
        0x62 | s,
        _reg(dst, "store_imm"),
        0,
        _off(off, "store_imm"),
        _imm(imm, s == Size.DW, "store_imm"),
    )


def _atomic(
    size: object, dst: object, src: object, off: object, op: int, what: str
) -> Instruction:
    s = _size(size, what, (Size.W, Size.DW))
    return _make(0xC3 | s, _reg(dst, what), _reg(src, what), _off(off, what), op)


def atomic_add(
    size: Size, dst: Register, src: Register, off: int = 0, *, fetch: bool = False
) -> Instruction:
    """``lock *(u<size> *)(dst + off) += src``; with ``fetch``, src receives the old value."""
    return _atomic(size, dst, src, off, 0x01 if fetch else 0x00, "atomic_add")


def atomic_or(
    size: Size, dst: Register, src: Register, off: int = 0, *, fetch: bool = False
) -> Instruction:
    """``lock *(u<size> *)(dst + off) |= src``; with ``fetch``, src receives the old value."""
    return _atomic(size, dst, src, off, 0x41 if fetch else 0x40, "atomic_or")


def atomic_and(
    size: Size, dst: Register, src: Register, off: int = 0, *, fetch: bool = False
) -> Instruction:
    """``lock *(u<size> *)(dst + off) &= src``; with ``fetch``, src receives the old value."""
    return _atomic(size, dst, src, off, 0x51 if fetch else 0x50, "atomic_and")


def atomic_xor(
    size: Size, dst: Register, src: Register, off: int = 0, *, fetch: bool = False
) -> Instruction:
    """``lock *(u<size> *)(dst + off) ^= src``; with ``fetch``, src receives the old value."""
    return _atomic(size, dst, src, off, 0xA1 if fetch else 0xA0, "atomic_xor")


def atomic_xchg(size: Size, dst: Register, src: Register, off: int = 0) -> Instruction:
    """``src = xchg(dst + off, src)`` (``BPF_XCHG``, always fetching)."""
    return _atomic(size, dst, src, off, 0xE1, "atomic_xchg")


def atomic_cmpxchg(size: Size, dst: Register, src: Register, off: int = 0) -> Instruction:
    """``r0 = cmpxchg(dst + off, r0, src)``: store src if the value equals r0; r0 gets the old
    value (``BPF_CMPXCHG``, always fetching)."""
    return _atomic(size, dst, src, off, 0xF1, "atomic_cmpxchg")


def load_acquire(size: Size, dst: Register, src: Register, off: int = 0) -> Instruction:
    """``dst = load_acquire((u<size> *)(src + off))`` (``BPF_LOAD_ACQ``, Linux 6.15)."""
    s = _size(size, "load_acquire")
    return _make(
        0xC3 | s, _wreg(dst, "load_acquire"), _reg(src, "load_acquire"),
        _off(off, "load_acquire"), 0x100,
    )


def store_release(size: Size, dst: Register, off: int, src: Register) -> Instruction:
    """``store_release((u<size> *)(dst + off), src)`` (``BPF_STORE_REL``, Linux 6.15)."""
    s = _size(size, "store_release")
    return _make(
        0xC3 | s, _reg(dst, "store_release"), _reg(src, "store_release"),
        _off(off, "store_release"), 0x110,
    )


def ld_abs(size: Size, imm: int) -> Instruction:
    """Legacy ``r0 = ntoh(*(u<size> *)(skb->data + imm))`` (socket filters, tc)."""
    s = _size(size, "ld_abs", (Size.B, Size.H, Size.W))
    return _make(0x20 | s, 0, 0, 0, _imm(imm, True, "ld_abs"))


def ld_ind(size: Size, src: Register, imm: int = 0) -> Instruction:
    """Legacy ``r0 = ntoh(*(u<size> *)(skb->data + src + imm))``."""
    s = _size(size, "ld_ind", (Size.B, Size.H, Size.W))
    return _make(0x40 | s, 0, _reg(src, "ld_ind"), 0, _imm(imm, True, "ld_ind"))


# -- 64-bit immediates ------------------------------------------------------------------------
def _s32(v: int) -> int:
    v &= 0xFFFF_FFFF
    return v - 0x1_0000_0000 if v & 0x8000_0000 else v


def load_imm64(dst: Register, value: int) -> Instruction:
    """``dst = value ll``: a 64-bit constant (two slots)."""
    d = _wreg(dst, "load_imm64")
    if not isinstance(value, int) or not -(1 << 63) <= value < (1 << 64):
        raise AssemblerError(f"load_imm64: {_num(value)} does not fit in 64 bits")
    return _make2(0x18, d, 0, 0, _s32(value), _s32(value >> 32))


def _mapref(m: object, what: str) -> tuple[int, Reference | None]:
    if isinstance(m, str):
        if not m:
            raise AssemblerError(f"{what}: empty map name")
        return 0, m
    if isinstance(m, int) and not isinstance(m, bool):
        return _imm(m, True, what), None
    if isinstance(m, HasFileno):
        return 0, m
    raise AssemblerError(
        f"{what}: expected a map (object with fileno()), a name or an fd, not {_num(m)}"
    )


def load_map(dst: Register, map_: HasFileno | str | int) -> Instruction:
    """``dst = map[...]``: load a map pointer (``BPF_PSEUDO_MAP_FD``).

    ``map_`` is a map object (its ``fileno()`` is read when the program is encoded), a name
    resolved through ``Instructions.encode(maps=...)``, or a raw fd.
    """
    imm, ref = _mapref(map_, "load_map")
    return _make2(0x18, _wreg(dst, "load_map"), 1, 0, imm, 0, None, ref)


def load_map_value(dst: Register, map_: HasFileno | str | int, offset: int = 0) -> Instruction:
    """``dst = &map_value + offset`` of an array map (``BPF_PSEUDO_MAP_VALUE``)."""
    imm, ref = _mapref(map_, "load_map_value")
    off = _imm(offset, False, "load_map_value")
    return _make2(0x18, _wreg(dst, "load_map_value"), 2, 0, imm, off, None, ref)


def load_map_idx(dst: Register, index: int) -> Instruction:
    """``dst = map by fd_array[index]`` (``BPF_PSEUDO_MAP_IDX``, Linux 5.14)."""
    return _make2(0x18, _wreg(dst, "load_map_idx"), 5, 0, _imm(index, False, "load_map_idx"), 0)


def load_map_idx_value(dst: Register, index: int, offset: int = 0) -> Instruction:
    """``dst = &value of map fd_array[index] + offset`` (``BPF_PSEUDO_MAP_IDX_VALUE``)."""
    return _make2(
        0x18, _wreg(dst, "load_map_idx_value"), 6, 0,
        _imm(index, False, "load_map_idx_value"), _imm(offset, False, "load_map_idx_value"),
    )


def load_btf_id(dst: Register, btf_id: int, btf_fd: int = 0) -> Instruction:
    """``dst = &ksym``: address of the kernel variable with ``btf_id`` (``BPF_PSEUDO_BTF_ID``);
    ``btf_fd`` names the module BTF, 0 for vmlinux."""
    return _make2(
        0x18, _wreg(dst, "load_btf_id"), 3, 0,
        _imm(btf_id, False, "load_btf_id"), _imm(btf_fd, False, "load_btf_id"),
    )


def load_func(dst: Register, target: Target) -> Instruction:
    """``dst = &subprogram`` (``BPF_PSEUDO_FUNC``): for callbacks (``bpf_loop``, timers...)."""
    d = _wreg(dst, "load_func")
    if isinstance(target, str):
        return _make2(0x18, d, 4, 0, 0, 0, target)
    return _make2(0x18, d, 4, 0, _imm(target, True, "load_func"), 0)


# -- jumps ----------------------------------------------------------------------------------
def _jmp(
    cls: int, op: int, dst: object, src: object, target: object, what: str
) -> Instruction:
    d = _reg(dst, what)
    if type(target) is str:
        off, label = 0, target
    else:
        off, label = _off(target, what), None
    if type(src) is Register:
        return _make(cls | op | 0x08, d, src, off, 0, label)
    return _make(cls | op, d, 0, off, _imm(src, cls == _JMP, what), label)


def jeq(dst: Register, src: _RegOrImm, target: Target) -> Instruction:
    """``if dst == src goto target``."""
    return _jmp(_JMP, 0x10, dst, src, target, "jeq")


def jgt(dst: Register, src: _RegOrImm, target: Target) -> Instruction:
    """``if dst > src goto target`` (unsigned)."""
    return _jmp(_JMP, 0x20, dst, src, target, "jgt")


def jge(dst: Register, src: _RegOrImm, target: Target) -> Instruction:
    """``if dst >= src goto target`` (unsigned)."""
    return _jmp(_JMP, 0x30, dst, src, target, "jge")


def jset(dst: Register, src: _RegOrImm, target: Target) -> Instruction:
    """``if dst & src goto target``."""
    return _jmp(_JMP, 0x40, dst, src, target, "jset")


def jne(dst: Register, src: _RegOrImm, target: Target) -> Instruction:
    """``if dst != src goto target``."""
    return _jmp(_JMP, 0x50, dst, src, target, "jne")


def jsgt(dst: Register, src: _RegOrImm, target: Target) -> Instruction:
    """``if dst s> src goto target`` (signed)."""
    return _jmp(_JMP, 0x60, dst, src, target, "jsgt")


def jsge(dst: Register, src: _RegOrImm, target: Target) -> Instruction:
    """``if dst s>= src goto target`` (signed)."""
    return _jmp(_JMP, 0x70, dst, src, target, "jsge")


def jlt(dst: Register, src: _RegOrImm, target: Target) -> Instruction:
    """``if dst < src goto target`` (unsigned)."""
    return _jmp(_JMP, 0xA0, dst, src, target, "jlt")


def jle(dst: Register, src: _RegOrImm, target: Target) -> Instruction:
    """``if dst <= src goto target`` (unsigned)."""
    return _jmp(_JMP, 0xB0, dst, src, target, "jle")


def jslt(dst: Register, src: _RegOrImm, target: Target) -> Instruction:
    """``if dst s< src goto target`` (signed)."""
    return _jmp(_JMP, 0xC0, dst, src, target, "jslt")


def jsle(dst: Register, src: _RegOrImm, target: Target) -> Instruction:
    """``if dst s<= src goto target`` (signed)."""
    return _jmp(_JMP, 0xD0, dst, src, target, "jsle")


def jeq32(dst: Register, src: _RegOrImm, target: Target) -> Instruction:
    """``if wdst == src goto target`` (32-bit compare)."""
    return _jmp(_JMP32, 0x10, dst, src, target, "jeq32")


def jgt32(dst: Register, src: _RegOrImm, target: Target) -> Instruction:
    """``if wdst > src goto target`` (32-bit, unsigned)."""
    return _jmp(_JMP32, 0x20, dst, src, target, "jgt32")


def jge32(dst: Register, src: _RegOrImm, target: Target) -> Instruction:
    """``if wdst >= src goto target`` (32-bit, unsigned)."""
    return _jmp(_JMP32, 0x30, dst, src, target, "jge32")


def jset32(dst: Register, src: _RegOrImm, target: Target) -> Instruction:
    """``if wdst & src goto target`` (32-bit)."""
    return _jmp(_JMP32, 0x40, dst, src, target, "jset32")


def jne32(dst: Register, src: _RegOrImm, target: Target) -> Instruction:
    """``if wdst != src goto target`` (32-bit)."""
    return _jmp(_JMP32, 0x50, dst, src, target, "jne32")


def jsgt32(dst: Register, src: _RegOrImm, target: Target) -> Instruction:
    """``if wdst s> src goto target`` (32-bit, signed)."""
    return _jmp(_JMP32, 0x60, dst, src, target, "jsgt32")


def jsge32(dst: Register, src: _RegOrImm, target: Target) -> Instruction:
    """``if wdst s>= src goto target`` (32-bit, signed)."""
    return _jmp(_JMP32, 0x70, dst, src, target, "jsge32")


def jlt32(dst: Register, src: _RegOrImm, target: Target) -> Instruction:
    """``if wdst < src goto target`` (32-bit, unsigned)."""
    return _jmp(_JMP32, 0xA0, dst, src, target, "jlt32")


def jle32(dst: Register, src: _RegOrImm, target: Target) -> Instruction:
    """``if wdst <= src goto target`` (32-bit, unsigned)."""
    return _jmp(_JMP32, 0xB0, dst, src, target, "jle32")


def jslt32(dst: Register, src: _RegOrImm, target: Target) -> Instruction:
    """``if wdst s< src goto target`` (32-bit, signed)."""
    return _jmp(_JMP32, 0xC0, dst, src, target, "jslt32")


def jsle32(dst: Register, src: _RegOrImm, target: Target) -> Instruction:
    """``if wdst s<= src goto target`` (32-bit, signed)."""
    return _jmp(_JMP32, 0xD0, dst, src, target, "jsle32")


def ja(target: Target) -> Instruction:
    """``goto target`` (16-bit offset)."""
    if type(target) is str:
        return _make(0x05, 0, 0, 0, 0, target)
    return _make(0x05, 0, 0, _off(target, "ja"), 0)


def gotol(target: Target) -> Instruction:
    """``gotol target``: unconditional jump with a 32-bit offset (ISA v4, Linux 6.6)."""
    if type(target) is str:
        return _make(0x06, 0, 0, 0, 0, target)
    return _make(0x06, 0, 0, 0, _imm(target, True, "gotol"))


def may_goto(target: Target) -> Instruction:
    """``may_goto target``: jump when the loop budget is exhausted (Linux 6.9)."""
    if type(target) is str:
        return _make(0xE5, 0, 0, 0, 0, target)
    return _make(0xE5, 0, 0, _off(target, "may_goto"), 0)


def call(function: int | str, *, prog_type: Any = None) -> Instruction:
    """Call a helper (``Helper.MAP_LOOKUP_ELEM``, its id, or its C name
    ``"bpf_map_lookup_elem"``) or a subprogram (its label).

    A bare helper name such as ``"ktime_get_ns"`` is refused: it would silently become a
    call to a label of that name. Say ``Helper.KTIME_GET_NS`` (or ``"bpf_ktime_get_ns"``)
    for the helper and :func:`call_label` for a subprogram that happens to share the name.
    With ``prog_type`` (an ``ebpf.ProgramType`` or its value), a helper the kernel does not
    allow for that program type raises :class:`AssemblerError`, when that is known.
    """
    if isinstance(function, str):
        if not function:
            raise AssemblerError("call: empty label")
        helper = _helper_named(function)
        if helper is not None:
            if function.startswith("bpf_"):
                return call(helper, prog_type=prog_type)
            raise AssemblerError(
                f"call({function!r}): {function!r} is the name of a helper but would be read "
                f"as a subprogram label; write call(Helper.{helper.name}) or "
                f"call({helper.c_name!r}) for the helper, call_label({function!r}) for a "
                "subprogram")
        return _make(0x85, 0, 1, 0, 0, function)
    if isinstance(function, int) and not isinstance(function, bool):
        if prog_type is not None:
            check_helper_allowed(int(function), prog_type)
        return _make(0x85, 0, 0, 0, _imm(function, True, "call"))
    raise AssemblerError(f"call: expected a helper id or a label, not {_num(function)}")


def call_label(label: str) -> Instruction:
    """Call the subprogram at ``label`` (bpf-to-bpf call), whatever the name: also one
    spelled like a helper."""
    if not isinstance(label, str) or not label:
        raise AssemblerError(f"call_label: expected a non-empty label, not {label!r}")
    return _make(0x85, 0, 1, 0, 0, label)


def _helper_named(name: str) -> Any:
    """The helper a call-target string names (``bpf_x`` or a lowercase ``x``), else None."""
    from .helpers import Helper

    key = name[4:] if name.startswith("bpf_") else name
    if not key.isidentifier() or key != key.lower():
        return None
    return Helper.__members__.get(key.upper())


def call_pc(offset: int) -> Instruction:
    """Call the subprogram at a relative offset (``BPF_PSEUDO_CALL``, numeric form)."""
    return _make(0x85, 0, 1, 0, _imm(offset, True, "call_pc"))


def kfunc_call(kfunc: int | str, module: int = 0) -> Instruction:
    """Call a kernel function: by BTF id, or by name (resolved when the program is loaded).

    ``module`` is the ``fd_array`` index of the module BTF holding it (0: vmlinux).
    """
    off = _off(module, "kfunc_call")
    if isinstance(kfunc, str):
        if not kfunc:
            raise AssemblerError("kfunc_call: empty name")
        return _make(0x85, 0, 2, off, 0, None, kfunc)
    return _make(0x85, 0, 2, off, _imm(kfunc, False, "kfunc_call"))


def callx(reg: Register) -> Instruction:
    """``callx reg``: indirect call through a register (LLVM encoding; not accepted by Linux)."""
    return _make(0x8D, _reg(reg, "callx"), 0, 0, 0)


def exit() -> Instruction:
    """``exit``: return r0."""
    return _make(0x95, 0, 0, 0, 0)
