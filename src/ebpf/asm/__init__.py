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

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .disasm import disassemble as disassemble
    from .disasm import format_instruction as format_instruction
    from .disasm import objdump as objdump
    from .text import assemble as assemble

from .dsl import DW as DW
from .dsl import B as B
from .dsl import H as H
from .dsl import W as W
from .dsl import add as add
from .dsl import add32 as add32
from .dsl import addr_space_cast as addr_space_cast
from .dsl import and32 as and32
from .dsl import and_ as and_
from .dsl import arsh as arsh
from .dsl import arsh32 as arsh32
from .dsl import atomic_add as atomic_add
from .dsl import atomic_and as atomic_and
from .dsl import atomic_cmpxchg as atomic_cmpxchg
from .dsl import atomic_or as atomic_or
from .dsl import atomic_xchg as atomic_xchg
from .dsl import atomic_xor as atomic_xor
from .dsl import bswap as bswap
from .dsl import call as call
from .dsl import call_label as call_label
from .dsl import call_pc as call_pc
from .dsl import callx as callx
from .dsl import div as div
from .dsl import div32 as div32
from .dsl import exit as exit
from .dsl import gotol as gotol
from .dsl import ja as ja
from .dsl import jeq as jeq
from .dsl import jeq32 as jeq32
from .dsl import jge as jge
from .dsl import jge32 as jge32
from .dsl import jgt as jgt
from .dsl import jgt32 as jgt32
from .dsl import jle as jle
from .dsl import jle32 as jle32
from .dsl import jlt as jlt
from .dsl import jlt32 as jlt32
from .dsl import jne as jne
from .dsl import jne32 as jne32
from .dsl import jset as jset
from .dsl import jset32 as jset32
from .dsl import jsge as jsge
from .dsl import jsge32 as jsge32
from .dsl import jsgt as jsgt
from .dsl import jsgt32 as jsgt32
from .dsl import jsle as jsle
from .dsl import jsle32 as jsle32
from .dsl import jslt as jslt
from .dsl import jslt32 as jslt32
from .dsl import kfunc_call as kfunc_call
from .dsl import ld_abs as ld_abs
from .dsl import ld_ind as ld_ind
from .dsl import load as load
from .dsl import load_acquire as load_acquire
from .dsl import load_btf_id as load_btf_id
from .dsl import load_func as load_func
from .dsl import load_imm64 as load_imm64
from .dsl import load_map as load_map
from .dsl import load_map_idx as load_map_idx
from .dsl import load_map_idx_value as load_map_idx_value
from .dsl import load_map_value as load_map_value
from .dsl import loadsx as loadsx
from .dsl import lsh as lsh
from .dsl import lsh32 as lsh32
from .dsl import may_goto as may_goto
from .dsl import mod as mod
from .dsl import mod32 as mod32
from .dsl import mov as mov
from .dsl import mov32 as mov32
from .dsl import movsx as movsx
from .dsl import movsx32 as movsx32
from .dsl import mul as mul
from .dsl import mul32 as mul32
from .dsl import neg as neg
from .dsl import neg32 as neg32
from .dsl import or32 as or32
from .dsl import or_ as or_
from .dsl import rsh as rsh
from .dsl import rsh32 as rsh32
from .dsl import sdiv as sdiv
from .dsl import sdiv32 as sdiv32
from .dsl import smod as smod
from .dsl import smod32 as smod32
from .dsl import store as store
from .dsl import store_imm as store_imm
from .dsl import store_release as store_release
from .dsl import sub as sub
from .dsl import sub32 as sub32
from .dsl import to_be as to_be
from .dsl import to_le as to_le
from .dsl import xor as xor
from .dsl import xor32 as xor32
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

__all__ = [
    "DW",
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
    "B",
    "Class",
    "Fragment",
    "H",
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
    "W",
    "add",
    "add32",
    "addr_space_cast",
    "and32",
    "and_",
    "arsh",
    "arsh32",
    "assemble",
    "atomic_add",
    "atomic_and",
    "atomic_cmpxchg",
    "atomic_or",
    "atomic_xchg",
    "atomic_xor",
    "bswap",
    "call",
    "call_label",
    "call_pc",
    "callx",
    "decode",
    "disassemble",
    "div",
    "div32",
    "exit",
    "format_instruction",
    "gotol",
    "helpers_for",
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
    "label",
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
    "objdump",
    "or32",
    "or_",
    "program_tag",
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

#: The disassembler and the text assembler are imported on first use: a program built with
#: the DSL and loaded never needs them, and they are a third of this package's import time.
_LAZY = {"disassemble": "disasm", "format_instruction": "disasm", "objdump": "disasm",
         "assemble": "text"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})

