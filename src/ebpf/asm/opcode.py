"""Opcode fields of the eBPF instruction set (RFC 9669, kernel ``instruction-set.rst``).

An instruction is 8 bytes (``struct bpf_insn``), little-endian on little-endian hosts::

    byte 0        byte 1            bytes 2-3      bytes 4-7
    +--------+ +-------+-------+ +-------------+ +-----------------+
    | opcode | |src:4  | dst:4 | | off (s16)   | | imm (s32)       |
    +--------+ +-------+-------+ +-------------+ +-----------------+

The opcode byte is split by class (low three bits)::

    ALU/ALU64/JMP/JMP32:   op:4 | source:1 | class:3     source: K (imm) = 0, X (reg) = 8
    LD/LDX/ST/STX:       mode:3 |   size:2 | class:3

``ld_imm64`` (``LD | IMM | DW``) takes two slots; the second slot holds only the upper 32 bits
of the value in its ``imm`` field (``next_imm`` here).
"""

from __future__ import annotations

import enum

__all__ = [
    "FETCH",
    "ALUOp",
    "AtomicOp",
    "Class",
    "JumpOp",
    "Mode",
    "PseudoCall",
    "PseudoSrc",
    "Size",
    "Source",
]


class Class(enum.IntEnum):
    """Instruction class, the low three bits of the opcode (``BPF_LD`` ... ``BPF_ALU64``)."""

    LD = 0x00  #: ``BPF_LD``: ld_imm64 and the legacy packet loads
    LDX = 0x01  #: ``BPF_LDX``: load from memory into a register
    ST = 0x02  #: ``BPF_ST``: store an immediate to memory
    STX = 0x03  #: ``BPF_STX``: store a register to memory, atomics
    ALU = 0x04  #: ``BPF_ALU``: 32-bit arithmetic
    JMP = 0x05  #: ``BPF_JMP``: 64-bit jumps, call, exit
    JMP32 = 0x06  #: ``BPF_JMP32``: 32-bit compare jumps, ``gotol``
    ALU64 = 0x07  #: ``BPF_ALU64``: 64-bit arithmetic


class Source(enum.IntEnum):
    """Operand source bit of ALU and JMP opcodes."""

    K = 0x00  #: ``BPF_K``: use the 32-bit immediate
    X = 0x08  #: ``BPF_X``: use the source register


class ALUOp(enum.IntEnum):
    """Arithmetic operation, the high four bits of an ALU/ALU64 opcode."""

    ADD = 0x00
    SUB = 0x10
    MUL = 0x20
    DIV = 0x30  #: with ``off == 1``: signed division (``SDIV``, ISA v4)
    OR = 0x40
    AND = 0x50
    LSH = 0x60
    RSH = 0x70
    NEG = 0x80
    MOD = 0x90  #: with ``off == 1``: signed modulo (``SMOD``, ISA v4)
    XOR = 0xA0
    MOV = 0xB0  #: with ``off`` 8/16/32: sign-extending move (``MOVSX``, ISA v4)
    ARSH = 0xC0
    END = 0xD0  #: byte swap; ``BPF_TO_LE`` = K, ``BPF_TO_BE`` = X, ALU64|K = ``bswap``


class JumpOp(enum.IntEnum):
    """Jump operation, the high four bits of a JMP/JMP32 opcode."""

    JA = 0x00  #: ``goto``; in JMP32 class: ``gotol`` with a 32-bit offset in ``imm``
    JEQ = 0x10
    JGT = 0x20
    JGE = 0x30
    JSET = 0x40
    JNE = 0x50
    JSGT = 0x60
    JSGE = 0x70
    CALL = 0x80
    EXIT = 0x90
    JLT = 0xA0
    JLE = 0xB0
    JSLT = 0xC0
    JSLE = 0xD0
    JCOND = 0xE0  #: ``may_goto`` (``src == BPF_MAY_GOTO == 0``), Linux 6.9


class Size(enum.IntEnum):
    """Access size of a load or store (``BPF_W``, ``BPF_H``, ``BPF_B``, ``BPF_DW``)."""

    W = 0x00  #: 4 bytes
    H = 0x08  #: 2 bytes
    B = 0x10  #: 1 byte
    DW = 0x18  #: 8 bytes

    @property
    def nbytes(self) -> int:
        """Width of the access in bytes."""
        return _SIZE_BYTES[self]

    @property
    def bits(self) -> int:
        """Width of the access in bits."""
        return _SIZE_BYTES[self] * 8

    @classmethod
    def from_bytes_width(cls, nbytes: int) -> Size:
        """The size for an access of ``nbytes`` (1, 2, 4 or 8)."""
        try:
            return _SIZE_OF_BYTES[nbytes]
        except KeyError:
            raise ValueError(f"no access size of {nbytes} bytes") from None


_SIZE_BYTES = {Size.W: 4, Size.H: 2, Size.B: 1, Size.DW: 8}
_SIZE_OF_BYTES = {1: Size.B, 2: Size.H, 4: Size.W, 8: Size.DW}


class Mode(enum.IntEnum):
    """Addressing mode of LD/LDX/ST/STX opcodes, the high three bits."""

    IMM = 0x00  #: ld_imm64
    ABS = 0x20  #: legacy packet load at an absolute offset
    IND = 0x40  #: legacy packet load at a register offset
    MEM = 0x60  #: regular load/store
    MEMSX = 0x80  #: sign-extending load (ISA v4)
    ATOMIC = 0xC0  #: atomic operation, kind in ``imm``


#: ``BPF_FETCH``: an atomic operation that also returns the old value.
FETCH = 0x01


class AtomicOp(enum.IntEnum):
    """The ``imm`` field of an atomic instruction."""

    ADD = 0x00
    OR = 0x40
    AND = 0x50
    XOR = 0xA0
    FETCH_ADD = 0x01
    FETCH_OR = 0x41
    FETCH_AND = 0x51
    FETCH_XOR = 0xA1
    XCHG = 0xE1  #: ``BPF_XCHG`` (includes ``BPF_FETCH``)
    CMPXCHG = 0xF1  #: ``BPF_CMPXCHG`` (includes ``BPF_FETCH``)
    LOAD_ACQ = 0x100  #: ``BPF_LOAD_ACQ``, Linux 6.15
    STORE_REL = 0x110  #: ``BPF_STORE_REL``, Linux 6.15


class PseudoSrc(enum.IntEnum):
    """``src`` of an ld_imm64: what the immediate means (``BPF_PSEUDO_*``)."""

    IMM64 = 0  #: a plain 64-bit constant
    MAP_FD = 1  #: ``BPF_PSEUDO_MAP_FD``: imm is a map fd
    MAP_VALUE = 2  #: ``BPF_PSEUDO_MAP_VALUE``: imm is a map fd, next_imm an offset in its value
    BTF_ID = 3  #: ``BPF_PSEUDO_BTF_ID``: imm is a BTF id of a kernel variable
    FUNC = 4  #: ``BPF_PSEUDO_FUNC``: imm is a relative offset to a subprogram
    MAP_IDX = 5  #: ``BPF_PSEUDO_MAP_IDX``: imm is an index into ``fd_array``
    MAP_IDX_VALUE = 6  #: ``BPF_PSEUDO_MAP_IDX_VALUE``: index into ``fd_array`` + value offset


class PseudoCall(enum.IntEnum):
    """``src`` of a call instruction."""

    HELPER = 0  #: imm is a helper id (``enum bpf_func_id``)
    CALL = 1  #: ``BPF_PSEUDO_CALL``: imm is a relative offset to a subprogram
    KFUNC = 2  #: ``BPF_PSEUDO_KFUNC_CALL``: imm is a BTF id, off a ``fd_array`` index of its BTF
