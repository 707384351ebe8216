"""Text assembler for LLVM's BPF syntax (the syntax :func:`ebpf.asm.disassemble` prints).

One statement per line, or several separated by ``;``. Comments start with ``#`` or ``//``.
A label is ``name:`` (on its own line or before a statement); a leading ``12:`` instruction
number, as in a numbered listing, is ignored. Immediates are decimal or ``0x`` hex, signed.

Examples::

    r0 = 1
    if r1 > 5 goto +3          # numeric offsets, or a label: goto out
    lock *(u64 *)(r1 + 0) += r2
    r1 = map[counts]           # map reference by name, resolved by Instructions.encode(maps=)
    call bpf_map_lookup_elem   # helper by name, or by id: call 1
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from ..errors import AssemblerError, BPFError
from . import dsl
from .helpers import Helper
from .instruction import Instruction, _make, _make2
from .opcode import Size
from .program import Label
from .register import Register

__all__ = ["assemble"]

_INT = r"[-+]?(?:0[xX][0-9a-fA-F]+|\d+)"
_REG = r"([rw])(\d+)"
_NAME = r"[A-Za-z_.$][\w.$#/]*"
_MEM = rf"\(\s*r(\d+)\s*(?:([-+])\s*({_INT}))?\s*\)"
_SIZES: Final = {"u8": Size.B, "u16": Size.H, "u32": Size.W, "u64": Size.DW}
_SSIZES: Final = {"s8": Size.B, "s16": Size.H, "s32": Size.W}

_ALU = {
    "+=": ("add", "add32"),
    "-=": ("sub", "sub32"),
    "*=": ("mul", "mul32"),
    "/=": ("div", "div32"),
    "s/=": ("sdiv", "sdiv32"),
    "%=": ("mod", "mod32"),
    "s%=": ("smod", "smod32"),
    "|=": ("or_", "or32"),
    "&=": ("and_", "and32"),
    "<<=": ("lsh", "lsh32"),
    ">>=": ("rsh", "rsh32"),
    "s>>=": ("arsh", "arsh32"),
    "^=": ("xor", "xor32"),
    "=": ("mov", "mov32"),
}
_JMP = {
    "==": "jeq", "!=": "jne", ">": "jgt", ">=": "jge", "<": "jlt", "<=": "jle",
    "s>": "jsgt", "s>=": "jsge", "s<": "jslt", "s<=": "jsle", "&": "jset",
}
_RMW = {"+=": "atomic_add", "|=": "atomic_or", "&=": "atomic_and", "^=": "atomic_xor"}


#: Digits (after leading zeros) of the longest number any field can take: 2**64 has 20
#: decimal digits, 16 hex. Longer numbers are refused before ``int()``, which raises a bare
#: ValueError past 4300 digits (and would be slow long before).
_MAX_DIGITS = 24


def _int(s: str) -> int:
    """A number the patterns matched: signs (``pc - -0x4`` gives two), then decimal or
    ``0x`` hex digits."""
    body = s.lstrip("+- ")
    negative = s[: len(s) - len(body)].count("-") % 2 == 1
    hexa = body[:2] in ("0x", "0X")
    digits = (body[2:] if hexa else body).lstrip("0")
    if len(digits) > _MAX_DIGITS:
        raise AssemblerError(f"number {_short(s, 24)} ({len(digits)} digits) is out of range")
    try:
        v = int(digits or "0", 16 if hexa else 10)
    except ValueError:
        raise AssemblerError(f"bad number {_short(s, 24)!r}") from None
    return -v if negative else v


_REG_NUMBERS: Final = {str(i): Register(i) for i in range(11)}


def _reg(kind: str, num: str) -> Register:
    r = _REG_NUMBERS.get(num)
    if r is None:
        digits = num.lstrip("0")
        if len(digits) > 2 or int(num) > 10:
            raise AssemblerError(f"no register {kind}{_short(num, 8)} (r0..r10)")
        r = Register(int(num))
    return r


def _short(s: str, n: int) -> str:
    """``s``, cut to ``n`` characters for an error message."""
    return s if len(s) <= n else f"{s[:n]}...({len(s)} chars)"


def _memoff(sign: str | None, value: str | None) -> int:
    if value is None:
        return 0
    v = _int(value)
    return -v if sign == "-" else v


def _target(t: str) -> str | int:
    t = t.strip()
    if re.fullmatch(_INT, t):
        return _int(t)
    if re.fullmatch(_NAME, t):
        return t
    raise AssemblerError(f"bad jump target {_short(t, 40)!r}")


_Handler = Callable[[re.Match[str]], Instruction]
_RULES: list[tuple[re.Pattern[str], _Handler]] = []


def _rule(pattern: str) -> Callable[[_Handler], _Handler]:
    def deco(fn: _Handler) -> _Handler:
        _RULES.append((re.compile(pattern), fn))
        return fn

    return deco


def _same(kind_a: str, kind_b: str) -> None:
    if kind_a != kind_b:
        raise AssemblerError("mixed r and w registers")


@_rule(r"exit")
def _exit(m: re.Match[str]) -> Instruction:
    return dsl.exit()


@_rule(r"(goto|gotol|may_goto)\s+(\S+)")
def _goto(m: re.Match[str]) -> Instruction:
    fn = {"goto": dsl.ja, "gotol": dsl.gotol, "may_goto": dsl.may_goto}[m[1]]
    return fn(_target(m[2]))


@_rule(r"callx\s+r(\d+)")
def _callx(m: re.Match[str]) -> Instruction:
    return dsl.callx(_reg("r", m[1]))


@_rule(rf"call\s+kfunc\[\s*({_NAME}|{_INT})\s*(?:,\s*btf:\s*({_INT}))?\s*\]")
def _kfunc(m: re.Match[str]) -> Instruction:
    module = _int(m[2]) if m[2] else 0
    what = m[1]
    return dsl.kfunc_call(_int(what) if re.fullmatch(_INT, what) else what, module)


@_rule(rf"call\s+pc\s*([-+]\s*{_INT})")
def _call_pc(m: re.Match[str]) -> Instruction:
    return dsl.call_pc(_int(m[1].replace(" ", "")))


@_rule(rf"call\s+({_INT})")
def _call_id(m: re.Match[str]) -> Instruction:
    return dsl.call(_int(m[1]))


@_rule(rf"call\s+({_NAME})")
def _call_name(m: re.Match[str]) -> Instruction:
    name = m[1]
    if name.startswith("bpf_"):
        try:
            return dsl.call(Helper.by_name(name))
        except KeyError:
            pass
    return dsl.call_label(name)


@_rule(rf"if\s+{_REG}\s*(s?[<>]=?|==|!=|&)\s*(?:{_REG}|({_INT}))\s+goto\s+(\S+)")
def _if(m: re.Match[str]) -> Instruction:
    name = _JMP[m[3]]
    if m[1] == "w":
        name += "32"
    dst = _reg(m[1], m[2])
    src: Register | int
    if m[4]:
        _same(m[1], m[4])
        src = _reg(m[4], m[5])
    else:
        src = _int(m[6])
    fn: Callable[[Register, Register | int, str | int], Instruction] = getattr(dsl, name)
    return fn(dst, src, _target(m[7]))


@_rule(rf"lock\s+\*\(\s*(u32|u64)\s*\*\s*\)\s*{_MEM}\s*(\+=|\|=|&=|\^=)\s*{_REG}")
def _lock(m: re.Match[str]) -> Instruction:
    fn: Callable[..., Instruction] = getattr(dsl, _RMW[m[5]])
    return fn(_SIZES[m[1]], _reg("r", m[2]), _reg(m[6], m[7]), _memoff(m[3], m[4]))


@_rule(
    rf"{_REG}\s*=\s*atomic_fetch_(add|or|and|xor)\s*\(\s*\(\s*(u32|u64)\s*\*\s*\)\s*{_MEM}"
    rf"\s*,\s*{_REG}\s*\)"
)
def _fetch(m: re.Match[str]) -> Instruction:
    if (m[1], m[2]) != (m[8], m[9]):
        raise AssemblerError("atomic_fetch: destination and source must be the same register")
    fn: Callable[..., Instruction] = getattr(dsl, f"atomic_{m[3]}")
    return fn(_SIZES[m[4]], _reg("r", m[5]), _reg(m[8], m[9]), _memoff(m[6], m[7]), fetch=True)


@_rule(rf"{_REG}\s*=\s*xchg(_64|32_32)\s*\(\s*r(\d+)\s*(?:([-+])\s*({_INT}))?\s*,\s*{_REG}\s*\)")
def _xchg(m: re.Match[str]) -> Instruction:
    if (m[1], m[2]) != (m[7], m[8]):
        raise AssemblerError("xchg: destination and source must be the same register")
    size = Size.DW if m[3] == "_64" else Size.W
    return dsl.atomic_xchg(size, _reg("r", m[4]), _reg(m[7], m[8]), _memoff(m[5], m[6]))


@_rule(
    rf"{_REG}\s*=\s*cmpxchg(_64|32_32)\s*\(\s*r(\d+)\s*(?:([-+])\s*({_INT}))?"
    rf"\s*,\s*{_REG}\s*,\s*{_REG}\s*\)"
)
def _cmpxchg(m: re.Match[str]) -> Instruction:
    if m[2] != "0" or m[8] != "0":
        raise AssemblerError("cmpxchg: the comparand and result register is r0")
    size = Size.DW if m[3] == "_64" else Size.W
    return dsl.atomic_cmpxchg(size, _reg("r", m[4]), _reg(m[9], m[10]), _memoff(m[5], m[6]))


@_rule(rf"{_REG}\s*=\s*load_acquire\s*\(\s*\(\s*(u8|u16|u32|u64)\s*\*\s*\)\s*{_MEM}\s*\)")
def _load_acq(m: re.Match[str]) -> Instruction:
    return dsl.load_acquire(_SIZES[m[3]], _reg(m[1], m[2]), _reg("r", m[4]), _memoff(m[5], m[6]))


@_rule(rf"store_release\s*\(\s*\(\s*(u8|u16|u32|u64)\s*\*\s*\)\s*{_MEM}\s*,\s*{_REG}\s*\)")
def _store_rel(m: re.Match[str]) -> Instruction:
    return dsl.store_release(_SIZES[m[1]], _reg("r", m[2]), _memoff(m[3], m[4]), _reg(m[5], m[6]))


@_rule(rf"\*\(\s*(u8|u16|u32|u64)\s*\*\s*\)\s*{_MEM}\s*=\s*(?:{_REG}|({_INT}))")
def _store(m: re.Match[str]) -> Instruction:
    size, dst, off = _SIZES[m[1]], _reg("r", m[2]), _memoff(m[3], m[4])
    if m[5]:
        return dsl.store(size, dst, off, _reg(m[5], m[6]))
    return dsl.store_imm(size, dst, off, _int(m[7]))


@_rule(rf"{_REG}\s*=\s*\*\(\s*(u8|u16|u32|u64|s8|s16|s32)\s*\*\s*\)\s*{_MEM}")
def _load(m: re.Match[str]) -> Instruction:
    dst, src, off = _reg(m[1], m[2]), _reg("r", m[4]), _memoff(m[5], m[6])
    if m[3] in _SSIZES:
        return dsl.loadsx(_SSIZES[m[3]], dst, src, off)
    return dsl.load(_SIZES[m[3]], dst, src, off)


@_rule(
    rf"r0\s*=\s*\*\(\s*(u8|u16|u32)\s*\*\s*\)\s*skb\["
    rf"\s*(?:r(\d+)\s*(?:([-+])\s*({_INT}))?|({_INT}))\s*\]"
)
def _ldpkt(m: re.Match[str]) -> Instruction:
    size = _SIZES[m[1]]
    if m[2]:
        return dsl.ld_ind(size, _reg("r", m[2]), _memoff(m[3], m[4]))
    return dsl.ld_abs(size, _int(m[5]))


@_rule(rf"r(\d+)\s*=\s*({_INT})\s*ll")
def _ld64(m: re.Match[str]) -> Instruction:
    return dsl.load_imm64(_reg("r", m[1]), _int(m[2]))


def _mapref(s: str) -> str | int:
    s = s.strip()
    if s.startswith("fd:"):
        return _int(s[3:].strip())
    if re.fullmatch(_NAME, s):
        return s
    raise AssemblerError(f"bad map reference {_short(s, 40)!r}")


@_rule(
    rf"r(\d+)\s*=\s*(map|map_value|map_idx|map_idx_value"
    rf"|btf_id|func)\[([^\]]*)\](?:\s*([-+])\s*({_INT}))?"
)
def _pseudo(m: re.Match[str]) -> Instruction:
    dst = _reg("r", m[1])
    kind, arg = m[2], m[3].strip()
    extra = _memoff(m[4], m[5])
    if extra and kind not in ("map_value", "map_idx_value"):
        raise AssemblerError(f"{kind}[...] takes no offset")
    if kind == "map":
        return dsl.load_map(dst, _mapref(arg))
    if kind == "map_value":
        return dsl.load_map_value(dst, _mapref(arg), extra)
    if kind == "map_idx":
        return dsl.load_map_idx(dst, _int(arg))
    if kind == "map_idx_value":
        return dsl.load_map_idx_value(dst, _int(arg), extra)
    if kind == "btf_id":
        bm = re.fullmatch(rf"({_INT})\s*(?:,\s*btf_fd:\s*({_INT}))?", arg)
        if bm is None:
            raise AssemblerError(f"bad btf_id[...] {_short(arg, 40)!r}")
        return dsl.load_btf_id(dst, _int(bm[1]), _int(bm[2]) if bm[2] else 0)
    pm = re.fullmatch(rf"pc\s*([-+]\s*{_INT})", arg)
    if pm:
        return dsl.load_func(dst, _int(pm[1].replace(" ", "")))
    return dsl.load_func(dst, _target(arg))


@_rule(rf"{_REG}\s*=\s*-\s*{_REG}")
def _neg(m: re.Match[str]) -> Instruction:
    if (m[1], m[2]) != (m[3], m[4]):
        raise AssemblerError("neg: source and destination must be the same register")
    return (dsl.neg if m[1] == "r" else dsl.neg32)(_reg(m[1], m[2]))


@_rule(r"r(\d+)\s*=\s*(be|le|bswap)(16|32|64)\s+r(\d+)")
def _end(m: re.Match[str]) -> Instruction:
    if m[1] != m[4]:
        raise AssemblerError("byte swap: source and destination must be the same register")
    fn = {"be": dsl.to_be, "le": dsl.to_le, "bswap": dsl.bswap}[m[2]]
    return fn(_reg("r", m[1]), int(m[3]))


@_rule(rf"{_REG}\s*=\s*\(\s*s(8|16|32)\s*\)\s*{_REG}")
def _movsx(m: re.Match[str]) -> Instruction:
    _same(m[1], m[4])
    fn = dsl.movsx if m[1] == "r" else dsl.movsx32
    return fn(_reg(m[1], m[2]), _reg(m[4], m[5]), int(m[3]))


@_rule(rf"r(\d+)\s*=\s*addr_space_cast\s*\(\s*r(\d+)\s*,\s*({_INT})\s*,\s*({_INT})\s*\)")
def _asc(m: re.Match[str]) -> Instruction:
    return dsl.addr_space_cast(_reg("r", m[1]), _reg("r", m[2]), _int(m[3]), _int(m[4]))


@_rule(rf"{_REG}\s*(s?/=|s?%=|\+=|-=|\*=|\|=|&=|<<=|s?>>=|\^=|=)\s*(?:{_REG}|({_INT}))")
def _alu(m: re.Match[str]) -> Instruction:
    names = _ALU[m[3]]
    fn: Callable[[Register, Register | int], Instruction] = getattr(
        dsl, names[0] if m[1] == "r" else names[1]
    )
    if m[4]:
        _same(m[1], m[4])
        return fn(_reg(m[1], m[2]), _reg(m[4], m[5]))
    return fn(_reg(m[1], m[2]), _int(m[6]))


@_rule(rf"\.(?:8byte|quad|dword)\s+({_INT})(?:\s*,\s*({_INT}))?")
def _raw(m: re.Match[str]) -> Instruction:
    """One slot as data (``.8byte 0x...``, little-endian u64); an ld_imm64 takes both of its
    slots (``.8byte first, second``), which is what :func:`disassemble` prints for one it
    cannot show as an instruction."""
    v = _int(m[1]) & 0xFFFF_FFFF_FFFF_FFFF
    raw = v.to_bytes(8, "little")
    op, regs = raw[0], raw[1]
    off = int.from_bytes(raw[2:4], "little", signed=True)
    imm = int.from_bytes(raw[4:8], "little", signed=True)
    if op != 0x18:
        if m[2] is not None:
            raise AssemblerError(".8byte takes two values only for the slots of an ld_imm64")
        return _make(op, regs & 15, regs >> 4, off, imm)
    if m[2] is None:
        raise AssemblerError(".8byte of an ld_imm64 needs both slots: .8byte first, second")
    second = _int(m[2]) & 0xFFFF_FFFF_FFFF_FFFF
    if second & 0xFFFF_FFFF:
        raise AssemblerError("the second slot of an ld_imm64 has nonzero reserved fields")
    imm2 = second >> 32
    return _make2(0x18, regs & 15, regs >> 4, off, imm, imm2 - (imm2 >> 31 << 32))


_LABEL = re.compile(rf"({_NAME})\s*:(?!=)\s*")
_NUMBER = re.compile(r"\d+\s*:\s*")


def _statement(text: str) -> Instruction:
    for pattern, handler in _RULES:
        m = pattern.fullmatch(text)
        if m is not None:
            return handler(m)
    raise AssemblerError("unknown instruction")


def assemble(text: str) -> list[Instruction | Label]:
    """Parse assembly text into a list of instructions and labels.

    Pass the result to :class:`Instructions` (or straight to ``ebpf.Program.load``) to resolve
    labels. Any error in the text raises :class:`AssemblerError` (and nothing else) with the
    line number and the statement (cut to 200 characters). Parsing is linear in the length
    of the text (whitespace runs count as one space; numbers longer than any field are
    refused before conversion).
    """
    out: list[Instruction | Label] = []
    # Programs repeat statements a lot; a statement's Instruction depends on its text alone
    # (and is immutable), so each distinct statement is parsed once.
    parsed: dict[str, Instruction] = {}
    for lineno, raw_line in enumerate(text.splitlines(), 1):
        for raw_stmt in _strip_comment(raw_line).split(";"):
            # Whitespace runs count as one space: the rules' patterns then never have a long
            # run to split between adjacent optional spaces (that was quadratic).
            stmt = raw_stmt.strip()
            if "\t" in stmt or "  " in stmt or not stmt.isascii():
                stmt = " ".join(stmt.split())
            nm = _NUMBER.match(stmt)
            pos = nm.end() if nm is not None else 0
            while pos < len(stmt):
                lm = _LABEL.match(stmt, pos)
                if lm is None:
                    break
                out.append(Label(lm[1]))
                pos = lm.end()
            if pos:
                stmt = stmt[pos:]
            if not stmt:
                continue
            insn = parsed.get(stmt)
            if insn is not None:
                out.append(insn)
                continue
            try:
                out.append(insn := _statement(stmt))
                parsed[stmt] = insn
            except BPFError as e:
                raise AssemblerError(
                    f"line {lineno}: {e}: {_short(stmt, 200)!r}") from None
    return out


def _strip_comment(line: str) -> str:
    # '#' starts a comment except inside a label name like "frag#1/out"
    i = line.find("//")
    if i >= 0:
        line = line[:i]
    j = 0
    while True:
        j = line.find("#", j)
        if j < 0:
            return line
        in_name = j > 0 and (line[j - 1].isalnum() or line[j - 1] in "_.$")
        if in_name and j + 1 < len(line) and line[j + 1].isdigit():
            j += 1
            continue
        return line[:j]


