"""The eBPF instruction set: instructions, a DSL with labels, text assembler, disassembler.

Everything here is pure: no kernel calls. Build programs from the constructors::

    from ebpf import asm
    from ebpf.asm import R0, R1, Helper

    insns = [asm.mov(R0, 0), asm.jeq(R1, 0, "out"), asm.mov(R0, 1), asm.label("out"), asm.exit()]
    code = asm.Instructions(insns).encode()
    print(asm.disassemble(code))

or from text in LLVM's syntax: ``asm.assemble("r0 = 1\\nexit")``.
"""

from __future__ import annotations

from .disasm import disassemble as disassemble
from .disasm import format_instruction as format_instruction
from .disasm import objdump as objdump
from .dsl import *  # noqa: F403
from .dsl import __all__ as _dsl_all
from .dsl import call_pc as call_pc
from .helpers import Helper as Helper
from .helpers import HelperSignature as HelperSignature
from .helpers import helpers_for as helpers_for
from .instruction import HasFileno as HasFileno
from .instruction import Instruction as Instruction
from .instruction import Reference as Reference
from .instruction import decode as decode
from .opcode import FETCH as FETCH
from .opcode import ALUOp as ALUOp
from .opcode import AtomicOp as AtomicOp
from .opcode import Class as Class
from .opcode import JumpOp as JumpOp
from .opcode import Mode as Mode
from .opcode import PseudoCall as PseudoCall
from .opcode import PseudoSrc as PseudoSrc
from .opcode import Size as Size
from .opcode import Source as Source
from .program import Fragment as Fragment
from .program import Instructions as Instructions
from .program import Item as Item
from .program import Label as Label
from .program import label as label
from .program import program_tag as program_tag
from .register import R0 as R0
from .register import R1 as R1
from .register import R2 as R2
from .register import R3 as R3
from .register import R4 as R4
from .register import R5 as R5
from .register import R6 as R6
from .register import R7 as R7
from .register import R8 as R8
from .register import R9 as R9
from .register import R10 as R10
from .register import RFP as RFP
from .register import Register as Register
from .text import assemble as assemble

__all__ = [  # noqa: PLE0604
    *_dsl_all,
    "FETCH",
    "R0",
    "R1",
    "R2",
    "R3",
    "R4",
    "R5",
    "R6",
    "R7",
    "R8",
    "R9",
    "R10",
    "RFP",
    "ALUOp",
    "AtomicOp",
    "Class",
    "Fragment",
    "HasFileno",
    "Helper",
    "HelperSignature",
    "Instruction",
    "Instructions",
    "Item",
    "JumpOp",
    "Label",
    "Mode",
    "PseudoCall",
    "PseudoSrc",
    "Reference",
    "Register",
    "Size",
    "Source",
    "assemble",
    "call_pc",
    "decode",
    "disassemble",
    "format_instruction",
    "helpers_for",
    "label",
    "objdump",
    "program_tag",
]
