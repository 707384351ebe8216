"""Disassembler: bytes or instructions to text in LLVM's BPF assembly syntax.

The syntax is the one ``llvm-objdump -d`` prints (``r0 = 0x2``, ``if r1 > 0x5 goto +0x3``,
``lock *(u64 *)(r1 + 0x0) += r2``), with labels for jump targets. Where LLVM's text loses
information, this module extends it so that :func:`ebpf.asm.assemble` reads every line back
to the same bytes:

* ld_imm64 pseudo sources: ``r1 = map[counts]`` / ``map[fd:5]``, ``map_value[counts] + 8``,
  ``map_idx[3]``, ``map_idx_value[3] + 8``, ``btf_id[1234]`` (``btf_id[1234, btf_fd:7]``),
  ``func[label]``;
* calls: ``call bpf_map_lookup_elem`` for helpers (by id when the id is unknown),
  ``call label`` / ``call pc+3`` for bpf-to-bpf calls, ``call kfunc[1234]`` (``kfunc[name]``,
  ``kfunc[1234, btf:2]``) for kfuncs;
* ``r0 = *(u8 *)skb[r1 + 0x4]`` for legacy indirect loads with a nonzero immediate;
* ``w0 = load_acquire((u8 *)(r1 + 0x0))``, ``store_release((u8 *)(r1 + 0x0), w2)`` as LLVM 21;
* ``.8byte 0x...`` for a slot that is not a valid instruction, or one the assembler refuses
  to build (a write to R10, a shift out of range, a division by a zero immediate), and
  ``.8byte first, second`` for both slots of such an ld_imm64.

``style="llvm"`` prints exactly what ``llvm-objdump-19 -d`` prints instead, quirks included
(lossy; ``alu32=True`` for ``--mcpu=v3`` and later).
"""

from __future__ import annotations

import bisect
import struct
import sys
from collections.abc import Iterable, Mapping
from typing import Final

from ..errors import ParseError
from .helpers import helper_name
from .instruction import Instruction
from .program import Instructions

__all__ = ["disassemble", "format_instruction", "objdump"]

_SLOT: Final = struct.Struct("<BBhi")
_U64: Final = struct.Struct("<Q")

_ALU_OPS: Final = {
    0x00: "+=", 0x10: "-=", 0x20: "*=", 0x30: "/=", 0x40: "|=", 0x50: "&=", 0x60: "<<=",
    0x70: ">>=", 0x90: "%=", 0xA0: "^=", 0xB0: "=", 0xC0: "s>>=",
}
_JMP_OPS: Final = {
    0x10: "==", 0x20: ">", 0x30: ">=", 0x40: "&", 0x50: "!=", 0x60: "s>", 0x70: "s>=",
    0xA0: "<", 0xB0: "<=", 0xC0: "s<", 0xD0: "s<=",
}
_SIZE_NAME: Final = {0x00: "u32", 0x08: "u16", 0x10: "u8", 0x18: "u64"}
_SSIZE_NAME: Final = {0x00: "s32", 0x08: "s16", 0x10: "s8"}
_ATOMIC_RMW: Final = {0x00: "+=", 0x40: "|=", 0x50: "&=", 0xA0: "^="}
_ATOMIC_FETCH: Final = {0x01: "add", 0x41: "or", 0x51: "and", 0xA1: "xor"}


def _h(v: int) -> str:
    return hex(v)


def _mem(reg: int, off: int) -> str:
    return f"(r{reg} + {hex(off)})" if off >= 0 else f"(r{reg} - {hex(-off)})"


def _rel(off: int) -> str:
    return f"+{hex(off)}" if off >= 0 else f"-{hex(-off)}"




def _fmt(
    op: int,
    dst: int,
    src: int,
    off: int,
    imm: int,
    imm2: int,
    target: str | None,
    ref: object,
    alu32: bool,
    llvm: bool,
) -> str | None:
    """Text of one instruction, or None if it is not a valid instruction.

    Except for ``llvm``, None also for what :func:`ebpf.asm.assemble` refuses to build, so
    that the slot is printed as ``.8byte`` data and reads back to the same bytes: a write to
    R10 (ALU, load, ld_imm64, load-acquire destination), a shift by the register width or
    more, a division or modulo by a zero immediate.
    """
    if dst > 10 or src > 10:
        return None
    cls = op & 7
    if dst == 10 and not llvm and (cls in {7, 4, 1, 0} or (cls == 3 and imm == 0x100)):
        return None  # R10 is read-only; stores and jumps may name it
    if cls in {7, 4}:
        r = "r" if cls == 7 else "w"
        code = op & 0xF0
        if not llvm and not op & 8:
            if code in (0x60, 0x70, 0xC0) and not 0 <= imm < (64 if cls == 7 else 32):
                return None  # shift out of range
            if code in (0x30, 0x90) and imm == 0:
                return None  # division by a zero immediate
        if op & 8:
            if code == 0xB0:
                if off == 1 and cls == 7:
                    das, sas = hex(imm >> 16 & 0xFFFF), hex(imm & 0xFFFF)
                    return f"r{dst} = addr_space_cast(r{src}, {das}, {sas})"
                if imm:
                    return None
                if off == 0:
                    return f"{r}{dst} = {r}{src}"
                if off in (8, 16) or (off == 32 and cls == 7):
                    return f"{r}{dst} = (s{off}){r}{src}"
                return None
            if code == 0xD0:
                if cls == 7 or src or off or imm not in (16, 32, 64):
                    return None
                return f"r{dst} = be{imm} r{dst}"
            if imm or code in (0x80,):
                return None
            opname = _ALU_OPS.get(code)
            if opname is None:
                return None
            if off:
                if off != 1 or code not in (0x30, 0x90):
                    return None
                opname = "s" + opname
            return f"{r}{dst} {opname} {r}{src}"
        if src:
            return None
        if code == 0x80:
            return f"{r}{dst} = -{r}{dst}" if not off and not imm else None
        if code == 0xD0:
            if off or imm not in (16, 32, 64):
                return None
            return f"r{dst} = {'bswap' if cls == 7 else 'le'}{imm} r{dst}"
        opname = _ALU_OPS.get(code)
        if opname is None:
            return None
        if off:
            if off != 1 or code not in (0x30, 0x90):
                return None
            opname = "s" + opname
        return f"{r}{dst} {opname} {hex(imm)}"
    if cls in {5, 6}:
        code = op & 0xF0
        if code == 0x00:
            if op & 8 or dst or src:
                return None
            if cls == 5:
                if imm:
                    return None
                return f"goto {target if target and not llvm else _rel(off)}"
            if off:
                return None
            return f"gotol {target if target and not llvm else _rel(imm)}"
        if code == 0x80:
            if cls == 6:
                return None
            if op & 8:
                return f"callx r{dst}" if not src and not off and not imm else None
            if dst:
                return None
            if llvm:
                return f"call {hex(imm)}" if src <= 2 else None
            if src == 0:
                if off:
                    return None
                name = helper_name(imm)
                return f"call {name}" if name else f"call {hex(imm)}"
            if src == 1:
                if off:
                    return None
                return f"call {target}" if target else f"call pc{_rel(imm)}"
            if src == 2:
                what = ref if isinstance(ref, str) else str(imm)
                return f"call kfunc[{what}, btf:{off}]" if off else f"call kfunc[{what}]"
            return None
        if code == 0x90:
            return "exit" if cls == 5 and not (op & 8 or dst or src or off or imm) else None
        if code == 0xE0:
            if cls == 6 or op & 8 or dst or src or imm:
                return None
            return f"may_goto {target if target and not llvm else _rel(off)}"
        cond = _JMP_OPS.get(code)
        if cond is None:
            return None
        r = "r" if cls == 5 else "w"
        where = target if target and not llvm else _rel(off)
        if op & 8:
            if imm:
                return None
            return f"if {r}{dst} {cond} {r}{src} goto {where}"
        if src:
            return None
        return f"if {r}{dst} {cond} {hex(imm)} goto {where}"
    mode = op & 0xE0
    size = op & 0x18
    if cls == 1:
        if imm:
            return None
        if mode == 0x60:
            r = "w" if alu32 and size != 0x18 else "r"
            return f"{r}{dst} = *({_SIZE_NAME[size]} *){_mem(src, off)}"
        if mode == 0x80 and size != 0x18:
            return f"r{dst} = *({_SSIZE_NAME[size]} *){_mem(src, off)}"
        return None
    if cls == 3:
        if mode == 0x60:
            if imm:
                return None
            r = "w" if alu32 and size != 0x18 else "r"
            return f"*({_SIZE_NAME[size]} *){_mem(dst, off)} = {r}{src}"
        if mode != 0xC0:
            return None
        sname = _SIZE_NAME[size]
        if llvm and (imm in (0x100, 0x110) or (size == 0x00 and not alu32)):
            # LLVM 19 has no load-acquire/store-release; without alu32 its only 32-bit atomic
            # is the old XADDW, which it prints for any imm with the low bits clear.
            if imm in (0x00, 0x01) and size == 0x00:
                return f"lock *({sname} *){_mem(dst, off)} += r{src}"
            return None
        if imm == 0x100:
            r = "r" if size == 0x18 else "w"
            return f"{r}{dst} = load_acquire(({sname} *){_mem(src, off)})"
        if imm == 0x110:
            r = "r" if size == 0x18 else "w"
            return f"store_release(({sname} *){_mem(dst, off)}, {r}{src})"
        if size == 0x18:
            r = "r"
            sfx = "_64"
        elif size == 0x00:
            r = "w" if alu32 else "r"
            sfx = "32_32"
        else:
            return None
        rmw = _ATOMIC_RMW.get(imm)
        if rmw is not None:
            return f"lock *({sname} *){_mem(dst, off)} {rmw} {r}{src}"
        fetch = _ATOMIC_FETCH.get(imm)
        if fetch is not None:
            return f"{r}{src} = atomic_fetch_{fetch}(({sname} *){_mem(dst, off)}, {r}{src})"
        m = _mem(dst, off)[1:-1]
        if imm == 0xE1:
            return f"{r}{src} = xchg{sfx}({m}, {r}{src})"
        if imm == 0xF1:
            return f"{r}0 = cmpxchg{sfx}({m}, {r}0, {r}{src})"
        return None
    if cls == 2:
        if mode != 0x60 or src:
            return None
        return f"*({_SIZE_NAME[size]} *){_mem(dst, off)} = {hex(imm)}"
    # cls == 0: LD
    if mode == 0x00:
        if size != 0x18 or off:
            return None
        if src == 0 or llvm:
            if llvm and src:
                v = ((imm2 & 0xFFFF_FFFF) << 32) | (imm & 0xFFFF_FFFF)
                return f"ld_pseudo\tr{dst}, {hex(src)}, {hex(imm & 0xFFFF_FFFF)}" if v else None
            v = ((imm2 & 0xFFFF_FFFF) << 32) | (imm & 0xFFFF_FFFF)
            if v >= 1 << 63:
                v -= 1 << 64
            return f"r{dst} = {hex(v)} ll"
        if src in {1, 2}:
            if ref is not None:
                what = ref if isinstance(ref, str) else getattr(ref, "name", None) or "?"
                if not isinstance(what, str) or not _is_name(what):
                    what = f"fd:{imm}"
            else:
                what = f"fd:{imm}"
            if src == 1:
                return f"r{dst} = map[{what}]" if not imm2 else None
            return f"r{dst} = map_value[{what}]" + (f" + {hex(imm2)}" if imm2 else "")
        if src == 5:
            return f"r{dst} = map_idx[{imm}]" if not imm2 else None
        if src == 6:
            return f"r{dst} = map_idx_value[{imm}]" + (f" + {hex(imm2)}" if imm2 else "")
        if src == 3:
            return f"r{dst} = btf_id[{imm}, btf_fd:{imm2}]" if imm2 else f"r{dst} = btf_id[{imm}]"
        if src == 4:
            if imm2:
                return None
            return f"r{dst} = func[{target}]" if target else f"r{dst} = func[pc{_rel(imm)}]"
        return None
    if mode in (0x20, 0x40):
        if size == 0x18 or dst or off:
            return None
        sname = _SIZE_NAME[size]
        if mode == 0x20:
            return None if src else f"r0 = *({sname} *)skb[{hex(imm)}]"
        if imm and not llvm:
            return f"r0 = *({sname} *)skb[r{src} + {hex(imm)}]" if imm > 0 else (
                f"r0 = *({sname} *)skb[r{src} - {hex(-imm)}]"
            )
        return f"r0 = *({sname} *)skb[r{src}]"
    return None


def _is_name(s: str) -> bool:
    return bool(s) and all(c.isalnum() or c in "_.$" for c in s) and not s[0].isdigit()


def _raw_text(op: int, dst: int, src: int, off: int, imm: int, imm2: int = 0) -> str:
    """``.8byte`` data for a slot that is no valid instruction; both slots of an ld_imm64
    (``.8byte first, second``), which :func:`ebpf.asm.assemble` reads back as one."""
    raw = _SLOT.pack(op, (src << 4) | dst, off, imm)
    if op == 0x18:
        return f".8byte {hex(_U64.unpack(raw)[0])}, {hex((imm2 & 0xFFFF_FFFF) << 32)}"
    return f".8byte {hex(_U64.unpack(raw)[0])}"


def format_instruction(insn: Instruction, *, alu32: bool = True, style: str = "default") -> str:
    """One instruction as text (jump targets as labels when it has one)."""
    text = _fmt(
        insn._op, insn._dst, insn._src, insn._off, insn._imm, insn._imm2, insn._target,
        insn._ref, alu32, style == "llvm",
    )
    if text is None:
        if style == "llvm":
            return "<unknown>"
        return _raw_text(insn._op, insn._dst, insn._src, insn._off, insn._imm, insn._imm2)
    return text


# Per opcode: 0 plain; 1 jump by off; 2 gotol (imm); 3 call (imm when src == 1); 4 ld_imm64.
_KIND: Final = tuple(
    4 if op == 0x18
    else 3 if op == 0x85
    else 2 if op == 0x06
    else 1 if (op & 7) in (5, 6) and op not in (0x95, 0x8D)
    else 0
    for op in range(256)
)

_Slot = tuple[int, ...]  # (op, regs, off, imm) or, for ld_imm64, (op, regs, off, imm, imm2)


def _decode_slots(code: bytes) -> list[_Slot]:
    n = len(code)
    if n % 8:
        raise ParseError(f"program length {n} is not a multiple of 8", n - n % 8)
    if b"\x18" not in code:
        return list(_SLOT.iter_unpack(code))
    out: list[_Slot] = []
    append = out.append
    it = _SLOT.iter_unpack(code)
    pos = 0
    for f in it:
        if f[0] == 0x18:
            nxt = next(it, None)
            if nxt is None:
                raise ParseError("ld_imm64 without its second slot", pos)
            if nxt[0] or nxt[1] or nxt[2]:
                raise ParseError("ld_imm64 second slot has nonzero reserved fields", pos + 8)
            append((*f, nxt[3]))
            pos += 16
        else:
            append(f)
            pos += 8
    return out


def _slot_text(f: _Slot, target: str | None, ref: object, alu32: bool, llvm: bool) -> str:
    op, regs, off, imm = f[0], f[1], f[2], f[3]
    imm2 = f[4] if len(f) > 4 else 0
    text = _fmt(op, regs & 15, regs >> 4, off, imm, imm2, target, ref, alu32, llvm)
    if text is None:
        return "<unknown>" if llvm else _raw_text(op, regs & 15, regs >> 4, off, imm, imm2)
    return text


# Per opcode, for bytes: 1 if the slot names a jump target by ``off``, 2 by ``imm``, 3 by
# ``imm`` when src == 1 (bpf-to-bpf call); ld_imm64 (0x18) is handled on its own.
_REL: Final = tuple(k if k in (1, 2, 3) else 0 for k in _KIND)
_SENTINEL: Final = "\x00target\x00"
_LITTLE: Final = sys.byteorder == "little"


def _fast_tables(alu32: bool) -> dict[int, tuple[int, tuple[str, ...]]]:
    """Per opcode, for the common shapes :func:`_fmt` prints by a fixed pattern: (shape,
    text before the operand per dst (or per src for stores)). Shapes: 1 ALU imm, 2 ALU reg,
    3 conditional jump imm, 4 conditional jump reg, 5 load, 6 store reg, 7 store imm."""
    out: dict[int, tuple[int, tuple[str, ...]]] = {}
    regs = range(11)
    for cls, r in ((7, "r"), (4, "w")):
        for code, name in _ALU_OPS.items():
            if code not in (0x30, 0x60, 0x70, 0x90, 0xC0):  # immediates _fmt checks
                out[code | cls] = (1, tuple(f"{r}{d} {name} " for d in regs))
            out[code | 8 | cls] = (2, tuple(f"{r}{d} {name} {r}" for d in regs))
    for cls, r in ((5, "r"), (6, "w")):
        for code, cond in _JMP_OPS.items():
            out[code | cls] = (3, tuple(f"if {r}{d} {cond} " for d in regs))
            out[code | 8 | cls] = (4, tuple(f"if {r}{d} {cond} {r}" for d in regs))
    for size, sname in _SIZE_NAME.items():
        r = "w" if alu32 and size != 0x18 else "r"
        out[0x61 | size] = (5, tuple(f"{r}{d} = *({sname} *)" for d in regs))
        out[0x63 | size] = (6, tuple(f" = {r}{s}" for s in regs))
        out[0x62 | size] = (7, (f"*({sname} *)",))
    return out


_FAST: Final = (_fast_tables(False), _fast_tables(True))


def _words(code: bytes) -> list[int]:
    """The program's 8-byte slots as little-endian u64 values."""
    n = len(code)
    if n % 8:
        raise ParseError(f"program length {n} is not a multiple of 8", n - n % 8)
    if _LITTLE:
        return memoryview(code).cast("Q").tolist()
    return [w for (w,) in _U64.iter_unpack(code)]  # pragma: no cover - big-endian hosts


def _word_fields(w: int) -> tuple[int, int, int, int, int]:
    """(op, dst, src, off, imm) of one slot."""
    off = w >> 16 & 0xFFFF
    imm = w >> 32
    return (w & 0xFF, w >> 8 & 15, w >> 12 & 15, off - 0x10000 if off & 0x8000 else off,
            imm - 0x1_0000_0000 if imm & 0x8000_0000 else imm)


def _disassemble_code(code: bytes, labels: bool, numbers: bool, alu32: bool, llvm: bool) -> str:
    """:func:`disassemble` of bytes: the text of each distinct slot is made once, then the
    lines are that text per slot, patched where a jump names a label, an ld_imm64 takes two
    slots, or a label line goes before."""
    words = _words(code)
    total = len(words)
    ops = code[::8]
    # ld_imm64 first slots (a second slot has opcode 0, so every 0x18 starts one).
    lds: list[int] = []
    p = ops.find(b"\x18")
    while p >= 0:
        if p + 1 >= total:
            raise ParseError("ld_imm64 without its second slot", p * 8)
        if words[p + 1] & 0xFFFF_FFFF:
            raise ParseError("ld_imm64 second slot has nonzero reserved fields", p * 8 + 8)
        lds.append(p)
        p = ops.find(b"\x18", p + 1)

    # text of each distinct slot ("" for ld_imm64, patched below); for slots that name a jump
    # target: the relative offset (+1) and the text around a label, if the text shows one
    indent = "" if numbers else "    "
    texts: dict[int, str] = {}
    rels: dict[int, int] = {}
    around: dict[int, tuple[str, str]] = {}
    rel_kind = _REL
    fmt = _fmt
    fast = _FAST[alu32] if not llvm else {}
    for w in set(words):
        op = w & 0xFF
        if op == 0x18:
            texts[w] = ""
            continue
        dst = w >> 8 & 15
        src = w >> 12 & 15
        off = w >> 16 & 0xFFFF
        if off & 0x8000:
            off -= 0x10000
        imm = w >> 32
        if imm & 0x8000_0000:
            imm -= 0x1_0000_0000
        shape = fast.get(op) if dst <= 10 and src <= 10 else None
        if dst == 10 and shape is not None and shape[0] in (1, 2, 5):
            shape = None  # a write to R10: _fmt prints it as data
        if shape is not None:
            # the same text _fmt gives, by the pattern of the opcode (see _fast_tables)
            sh, pres = shape
            if sh <= 2:
                if not off:
                    if sh == 1:
                        if not src:
                            texts[w] = f"{indent}{pres[dst]}{hex(imm)}\n"
                            continue
                    elif not imm:
                        texts[w] = f"{indent}{pres[dst]}{src}\n"
                        continue
            elif sh <= 4:
                if (not src) if sh == 3 else (not imm):
                    cond = f"{indent}{pres[dst]}{hex(imm)} goto " if sh == 3 else (
                        f"{indent}{pres[dst]}{src} goto ")
                    rels[w] = 1 + off
                    if labels:
                        around[w] = (cond, "\n")
                    texts[w] = (f"{cond}+{hex(off)}\n" if off >= 0
                                else f"{cond}-{hex(-off)}\n")
                    continue
            elif sh == 5:
                if not imm:
                    m = f"(r{src} + {hex(off)})" if off >= 0 else f"(r{src} - {hex(-off)})"
                    texts[w] = f"{indent}{pres[dst]}{m}\n"
                    continue
            elif sh == 6:
                if not imm:
                    m = f"(r{dst} + {hex(off)})" if off >= 0 else f"(r{dst} - {hex(-off)})"
                    texts[w] = f"{indent}*({_SIZE_NAME[op & 0x18]} *){m}{pres[src]}\n"
                    continue
            elif not src:
                m = f"(r{dst} + {hex(off)})" if off >= 0 else f"(r{dst} - {hex(-off)})"
                texts[w] = f"{indent}{pres[0]}{m} = {hex(imm)}\n"
                continue
        k = rel_kind[op]
        if k and (k != 3 or src == 1):
            rel = off if k == 1 else imm
            rels[w] = 1 + rel
            if labels:
                marked = fmt(op, dst, src, off, imm, 0, _SENTINEL, None, alu32, llvm)
                if marked is not None and _SENTINEL in marked:
                    pre, post = marked.split(_SENTINEL)
                    pre = f"{indent}{pre}"
                    around[w] = (pre, f"{post}\n")
                    # what _fmt prints without a target: pc+0x3 for calls, +0x3 for jumps
                    if k == 3:
                        pre += "pc"
                    texts[w] = (f"{pre}+{hex(rel)}{post}\n" if rel >= 0
                                else f"{pre}-{hex(-rel)}{post}\n")
                    continue
        text = fmt(op, dst, src, off, imm, 0, None, None, alu32, llvm)
        if text is None:
            text = "<unknown>" if llvm else f".8byte {hex(w)}"
        texts[w] = f"{indent}{text}\n"

    lines = list(map(texts.__getitem__, words))
    if rels:
        rget = rels.get
        jumps = [(p, p + r) for p, w in enumerate(words) if (r := rget(w)) is not None]
    else:
        jumps = []
    second = {p + 1 for p in lds}
    if lds:
        for p in lds:
            if words[p] >> 12 & 15 == 4:
                jumps.append((p, p + 1 + _word_fields(words[p])[4]))

    targets: dict[int, str] = {}
    if labels:
        for _, t in jumps:
            if 0 <= t < total and t not in second and t not in targets:
                targets[t] = f"L{t}"
        if targets and around:
            tget = targets.get
            for p, t in jumps:
                lab = tget(t)
                if lab is not None:
                    a = around.get(words[p])
                    if a is not None:
                        lines[p] = f"{a[0]}{lab}{a[1]}"
    for p in lds:
        w = words[p]
        op, dst, src, off, imm = _word_fields(w)
        imm2 = words[p + 1] >> 32
        if imm2 & 0x8000_0000:
            imm2 -= 0x1_0000_0000
        target = None
        if targets and src == 4:
            target = targets.get(p + 1 + imm)
        text = _fmt(op, dst, src, off, imm, imm2, target, None, alu32, llvm)
        if text is None:
            text = "<unknown>" if llvm else f".8byte {hex(w)}, {hex(words[p + 1])}"
        lines[p] = f"{indent}{text}\n"
        lines[p + 1] = ""
    if numbers:
        lines = [f"{p:>6}: {t}" if t else t for p, t in enumerate(lines)]
    for t, lab in targets.items():
        lines[t] = f"{lab}:\n{lines[t]}"
    return "".join(lines)


def disassemble(
    x: bytes | bytearray | memoryview | Iterable[object],
    *,
    labels: bool = True,
    numbers: bool = False,
    alu32: bool = True,
    style: str = "default",
) -> str:
    """Text of a program: ``x`` is bytes, an :class:`Instructions` or a list of items.

    ``labels``: name jump targets (``L<insn>:`` lines, or the program's own labels) and print
    jumps to them by name; ``numbers``: prefix each instruction with its slot index;
    ``alu32``: print 32-bit sub-registers of narrow loads/stores (``w0 = *(u8 *)...``), as
    ``llvm-objdump --mcpu=v3`` and later do; ``style="llvm"``: print exactly LLVM's (lossy)
    text. The result ends with a newline; :func:`ebpf.asm.assemble` reads it back to the same
    bytes (a slot that is no instruction the assembler would build prints as ``.8byte``).

    Raises :class:`~ebpf.errors.ParseError` (and nothing else) for bytes that are no program,
    as :func:`ebpf.asm.decode` does; :class:`ValueError` for a bad ``style``.
    """
    if style not in ("default", "llvm"):
        raise ValueError(f"style must be 'default' or 'llvm', not {style!r}")
    llvm = style == "llvm"
    refs: list[object] | None = None
    names: dict[int, list[str]] = {}
    if isinstance(x, (bytes, bytearray, memoryview)):
        return _disassemble_code(bytes(x), labels and not llvm, numbers, alu32, llvm)
    else:
        prog = x if isinstance(x, Instructions) else Instructions(x)  # type: ignore[arg-type]
        insns = list(prog)
        fields = [
            (i._op, (i._src << 4) | i._dst, i._off, i._imm, i._imm2) if i._op == 0x18
            else (i._op, (i._src << 4) | i._dst, i._off, i._imm)
            for i in insns
        ]
        if any(i._ref is not None for i in insns):
            refs = [i._ref for i in insns]
        for name, lpc in prog.labels.items():
            names.setdefault(lpc, []).append(name)

    # pass 1: jump targets
    kind = _KIND
    found: list[int] = []
    second: set[int] = set()
    pc = 0
    for f in fields:
        k = kind[f[0]]
        if k:
            if k == 1:
                found.append(pc + 1 + f[2])
            elif k == 2:
                found.append(pc + 1 + f[3])
            elif k == 3:
                if f[1] >> 4 == 1:
                    found.append(pc + 1 + f[3])
            else:
                second.add(pc + 1)
                if f[1] >> 4 == 4:
                    found.append(pc + 1 + f[3])
                pc += 1
        pc += 1
    total = pc
    targets: dict[int, str] = {}
    if labels and not llvm:
        for lpc, pc_names in names.items():
            targets[lpc] = pc_names[-1]
        for t in found:
            if 0 <= t < total and t not in second and t not in targets:
                targets[t] = f"L{t}"

    # pass 2: text
    lines: list[str] = []
    append = lines.append
    cache: dict[_Slot, str] = {}
    get = cache.get
    pc = 0
    for i, f in enumerate(fields):
        if pc in targets:
            if pc in names:
                for nm in names[pc]:
                    append(f"{nm}:")
            else:
                append(f"{targets[pc]}:")
        k = kind[f[0]]
        ref = refs[i] if refs is not None else None
        if k == 0 and ref is None:
            text = get(f)
            if text is None:
                text = cache[f] = _slot_text(f, None, None, alu32, llvm)
        else:
            target = None
            if targets:
                if k == 1:
                    target = targets.get(pc + 1 + f[2])
                elif k == 2 or (k == 3 and f[1] >> 4 == 1) or (k == 4 and f[1] >> 4 == 4):
                    target = targets.get(pc + 1 + f[3])
            text = _slot_text(f, target, ref, alu32, llvm)
        if numbers:
            append(f"{pc:>6}: {text}")
        else:
            append("    " + text)
        pc += 2 if k == 4 else 1
    append("")
    return "\n".join(lines)


def objdump(
    code: bytes,
    symbols: Mapping[int, str] | None = None,
    *,
    section: str = ".text",
    alu32: bool = True,
) -> str:
    """The body ``llvm-objdump -d`` prints for one section of a BPF object.

    ``symbols`` maps byte offsets to function names (``<name>:`` headers and the
    ``<name+0x..>`` annotations of jumps); without them, LLVM's ``<.text+0x..>`` form is used.
    """
    syms = dict(symbols or {})
    if 0 not in syms:
        syms = {0: section, **syms}
    starts = sorted(syms)
    fields = _decode_slots(code)
    lines: list[str] = []
    pc = 0

    def annotate(addr: int) -> str:
        j = bisect.bisect_right(starts, addr) - 1
        base = starts[max(j, 0)]
        delta = (addr - base) & 0xFFFF_FFFF_FFFF_FFFF
        name = syms[base]
        return f"<{name}>" if delta == 0 else f"<{name}+{hex(delta)}>"

    for f in fields:
        op, regs, off, imm = f[0], f[1], f[2], f[3]
        dst, src, imm2 = regs & 15, regs >> 4, (f[4] if len(f) > 4 else 0)
        if pc * 8 in syms and (pc or syms.get(0) != section or symbols):
            if lines:
                lines.append("")
            lines.append(f"{pc * 8:016x} <{syms[pc * 8]}>:")
        elif pc == 0:
            lines.append(f"{0:016x} <{syms[0]}>:")
        raw = _SLOT.pack(op, (src << 4) | dst, off, imm)
        if op == 0x18:
            raw += _SLOT.pack(0, 0, 0, imm2)
        text = _fmt(op, dst, src, off, imm, imm2, None, None, alu32, True) or "<unknown>"
        cls = op & 7
        if (cls in {5, 6}) and op not in (0x85, 0x95, 0x8D) and text != "<unknown>":
            rel = imm if op == 0x06 else off
            text += f" {annotate((pc + 1 + rel) * 8)}"
        lines.append(f"{pc:>8}:\t{' '.join(f'{b:02x}' for b in raw)}\t{text}")
        pc += 2 if op == 0x18 else 1
    return "\n".join(lines) + "\n"


def _main() -> None:  # pragma: no cover - manual use: python -m ebpf.asm.disasm < prog.bin
    sys.stdout.write(disassemble(sys.stdin.buffer.read()))


if __name__ == "__main__":  # pragma: no cover
    _main()
