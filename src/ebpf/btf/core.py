"""CO-RE (Compile Once, Run Everywhere): relocate instructions against a target's BTF.

clang records, in ``.BTF.ext``, each instruction whose constant depends on a type layout
(a field offset, size, existence, a type id or size, an enumerator value). This module
computes the value for the *target* (normally the running kernel's BTF) and patches the
instruction, following libbpf's ``relo_core.c``:

* candidates are the target types with the same "essential" name (the local name up to
  ``___``, so ``struct task_struct___old`` matches ``task_struct``) and the same kind;
* a field access path (``"0:1:2"``) is replayed on each candidate by member *name*, through
  anonymous structs and unions, with compatible member types;
* every matching candidate must agree on the value; none matching gives 0 for the
  ``*_EXISTS``/``TYPE_MATCHES`` kinds and poisons the instruction (a call to the invalid
  helper ``0xbad2310``, which the verifier rejects only if it is reachable) for the others.

Pure: the target spec is passed in (see :func:`ebpf.btf.load_kernel`).
``TYPE_MATCHES`` follows libbpf's ``__bpf_core_types_match`` exactly (see
:func:`_types_match`).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..errors import BPFError
from .ext import CoreRelo, CoreReloKind
from .spec import Spec
from .types import (
    Array,
    Composite,
    Enum,
    Enum64,
    Float,
    FuncProto,
    Fwd,
    Int,
    Pointer,
    Struct,
    Type,
    Union,
    Void,
)

__all__ = ["POISON_IMM", "CoreError", "CoreResult", "apply_relocations", "resolve"]

#: ``call 0xbad2310``: the instruction libbpf writes where a relocation cannot be satisfied.
POISON_IMM = 0xBAD2310

K = CoreReloKind
_FIELD_KINDS = {K.FIELD_BYTE_OFFSET, K.FIELD_BYTE_SIZE, K.FIELD_EXISTS, K.FIELD_SIGNED,
                K.FIELD_LSHIFT_U64, K.FIELD_RSHIFT_U64}
_TYPE_KINDS = {K.TYPE_ID_LOCAL, K.TYPE_ID_TARGET, K.TYPE_EXISTS, K.TYPE_SIZE, K.TYPE_MATCHES}
_ENUM_KINDS = {K.ENUMVAL_EXISTS, K.ENUMVAL_VALUE}
_SOFT_KINDS = {K.FIELD_EXISTS, K.TYPE_EXISTS, K.TYPE_MATCHES, K.ENUMVAL_EXISTS}


class CoreError(BPFError, ValueError):
    """A CO-RE relocation is malformed, ambiguous or does not fit its instruction."""


@dataclass(frozen=True, slots=True)
class CoreResult:
    """What one relocation resolves to. ``poison`` means "no target": the instruction is
    made invalid. ``new_size``/``orig_size`` are the field sizes (for load-size fixes)."""

    value: int
    poison: bool = False
    orig_size: int = 0
    new_size: int = 0


def essential_name(name: str) -> str:
    """``task_struct___v2`` -> ``task_struct`` (libbpf's flavour suffix convention)."""
    i = name.find("___")
    return name if i < 0 else name[:i]


def _skip(spec: Spec, t: Type) -> Type:
    """Skip modifiers and typedefs."""
    return spec.resolve(t)


def _is_enum(t: Type) -> bool:
    return isinstance(t, (Enum, Enum64))


# --- local access specs -----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Access:
    name: str          # member name; "" for an array index
    index: int         # member index (local) or array index
    type_id: int       # type of the accessed member/element (local ids)


@dataclass(frozen=True, slots=True)
class _Field:
    """A resolved field: its type, bit offset from the root, bitfield size (0: none)."""

    type: Type
    bit_offset: int
    bitfield_size: int
    is_array_elem: bool


def _int_bits(t: Type) -> tuple[int, int] | None:
    """(bits, bit_offset) of an int encoding a bitfield the old way (no kind_flag)."""
    if isinstance(t, Int) and (t.bit_offset or t.bits != t.size * 8):
        return t.bits, t.bit_offset
    return None


def _parse_local(spec: Spec, root_id: int, access: str) -> tuple[int, list[_Access], _Field]:
    """Walk ``access`` on the local type: (root array index, named accesses, local field)."""
    try:
        idx = [int(x) for x in access.split(":")]
    except ValueError:
        raise CoreError(f"bad CO-RE access string {access!r}") from None
    if not idx or any(i < 0 for i in idx):
        raise CoreError(f"bad CO-RE access string {access!r}")
    root = spec[root_id]
    t = _skip(spec, root)
    bit = idx[0] * spec.sizeof(t) * 8 if idx[0] else 0
    path: list[_Access] = []
    cur: Type = t
    member_bits = 0
    is_elem = False
    for i in idx[1:]:
        cur = _skip(spec, cur)
        if isinstance(cur, Composite):
            if i >= len(cur.members):
                raise CoreError(f"access {access!r}: member {i} of {cur.name or cur.id} "
                                "does not exist")
            m = cur.members[i]
            bit += m.offset
            member_bits = m.bitfield_size
            if m.name:
                path.append(_Access(m.name, i, m.type_id))
            cur = m.type
            is_elem = False
        elif isinstance(cur, Array):
            elem = cur.elem_type
            bit += i * spec.sizeof(elem) * 8
            path.append(_Access("", i, cur.elem_type_id))
            cur = elem
            member_bits = 0
            is_elem = True
        else:
            raise CoreError(f"access {access!r} goes through {type(cur).__name__}")
    return idx[0], path, _Field(cur, bit, member_bits, is_elem)


# --- compatibility -----------------------------------------------------------------------

def _fields_compat(ls: Spec, lt: Type, ts: Spec, tt: Type, depth: int = 0) -> bool:
    if depth > 32:
        return False
    lt, tt = _skip(ls, lt), _skip(ts, tt)
    if isinstance(lt, Composite) and isinstance(tt, Composite):
        return True
    if _is_enum(lt) and _is_enum(tt):
        return essential_name(lt.name) == essential_name(tt.name)
    if type(lt) is not type(tt):
        return False
    if isinstance(lt, (Pointer, Float)):
        return True
    if isinstance(lt, Fwd):
        return essential_name(lt.name) == essential_name(tt.name)
    if isinstance(lt, Int) and isinstance(tt, Int):
        return lt.bit_offset == 0 and tt.bit_offset == 0
    if isinstance(lt, Array) and isinstance(tt, Array):
        return _fields_compat(ls, lt.elem_type, ts, tt.elem_type, depth + 1)
    return False


def _types_compat(ls: Spec, lt: Type, ts: Spec, tt: Type, depth: int = 0) -> bool:
    if depth > 32:
        return False
    lt, tt = _skip(ls, lt), _skip(ts, tt)
    if _is_enum(lt) and _is_enum(tt):
        return True
    if type(lt) is not type(tt):
        return False
    if isinstance(lt, (Composite, Fwd, Float)) or lt.id == 0:
        return True
    if isinstance(lt, Int) and isinstance(tt, Int):
        return lt.bit_offset == 0 and tt.bit_offset == 0
    if isinstance(lt, Pointer) and isinstance(tt, Pointer):
        return _types_compat(ls, lt.target, ts, tt.target, depth + 1)
    if isinstance(lt, Array) and isinstance(tt, Array):
        return _types_compat(ls, lt.elem_type, ts, tt.elem_type, depth + 1)
    if isinstance(lt, FuncProto) and isinstance(tt, FuncProto):
        if len(lt.params) != len(tt.params):
            return False
        return all(_types_compat(ls, a.type, ts, b.type, depth + 1)
                   for a, b in zip(lt.params, tt.params, strict=True)) and _types_compat(
            ls, lt.return_type, ts, tt.return_type, depth + 1)
    return False


def _names_match(local: str, target: str) -> bool:
    """libbpf ``bpf_core_names_match``: an anonymous target matches only an anonymous local;
    otherwise the essential names (flavour suffix ``___x`` dropped) are equal."""
    if not target:
        return not local
    return essential_name(local) == essential_name(target)


_MATCH_DEPTH = 32


def _types_match(ls: Spec, lt: Type, ts: Spec, tt: Type, behind_ptr: bool = False,
                 level: int = _MATCH_DEPTH) -> bool:
    """``TYPE_MATCHES`` (``bpf_core_type_matches()``, libbpf 1.0 / Linux 6.1 in the kernel's
    copy), libbpf's ``__bpf_core_types_match`` rule for rule:

    * modifiers and typedefs are skipped, then the names must match (:func:`_names_match`);
    * ints: same kind, same size and signedness;
    * pointers and arrays (same element count): the pointee/element types match, a
      pointee counting as "behind a pointer";
    * structs/unions: same kind (behind a pointer: same kind or a forward declaration of
      it, no member check); every local member has a same-named target member whose type
      matches;
    * forward declarations: same kind and struct/union flag (behind a pointer, a struct or
      union of the flagged kind matches too);
    * enums (enum and enum64 interchangeably): same size, every local enumerator name is in
      the target;
    * function prototypes: same number of parameters, each and the return type match;
    * void matches only void; any other kind does not match.
    """
    for _ in range(_MATCH_DEPTH):
        if level <= 0:
            raise CoreError("TYPE_MATCHES: types nest too deeply")
        lt, tt = _skip(ls, lt), _skip(ts, tt)
        if not _names_match(lt.name, tt.name):
            return False
        if isinstance(lt, Void):
            return isinstance(tt, Void)
        if isinstance(lt, Fwd):
            if behind_ptr:
                if isinstance(tt, Fwd):
                    return lt.is_union == tt.is_union
                return isinstance(tt, Union) if lt.is_union else isinstance(tt, Struct)
            return isinstance(tt, Fwd) and lt.is_union == tt.is_union
        if isinstance(lt, (Enum, Enum64)):
            if not isinstance(tt, (Enum, Enum64)) or lt.size != tt.size:
                return False
            if len(lt.values) > len(tt.values):
                return False
            return all(any(_names_match(v.name, w.name) for w in tt.values)
                       for v in lt.values)
        if isinstance(lt, Composite):
            if behind_ptr:
                if type(lt) is type(tt):
                    return True
                return isinstance(tt, Fwd) and tt.is_union == isinstance(lt, Union)
            if type(lt) is not type(tt):
                return False
            assert isinstance(tt, Composite)
            lmembers, tmembers = lt.members, tt.members
            if len(lmembers) > len(tmembers):
                return False
            for m in lmembers:
                if not any(_names_match(m.name, n.name)
                           and _types_match(ls, m.type, ts, n.type, behind_ptr, level - 1)
                           for n in tmembers):
                    return False
            return True
        if isinstance(lt, Int):
            return (isinstance(tt, Int) and lt.size == tt.size
                    and lt.signed == tt.signed)
        if isinstance(lt, Pointer):
            if not isinstance(tt, Pointer):
                return False
            behind_ptr = True
            lt, tt = lt.target, tt.target
            continue
        if isinstance(lt, Array):
            if not isinstance(tt, Array) or lt.nelems != tt.nelems:
                return False
            lt, tt = lt.elem_type, tt.elem_type
            continue
        if isinstance(lt, FuncProto):
            if not isinstance(tt, FuncProto) or len(lt.params) != len(tt.params):
                return False
            for a, b in zip(lt.params, tt.params, strict=True):
                if not _types_match(ls, a.type, ts, b.type, behind_ptr, level - 1):
                    return False
            lt, tt = lt.return_type, tt.return_type
            continue
        return False
    raise CoreError("TYPE_MATCHES: types nest too deeply")


# --- candidates --------------------------------------------------------------------------

def _candidates(local: Type, target: Spec) -> list[Type]:
    name = essential_name(local.name)
    if not name:
        raise CoreError(f"CO-RE relocation against anonymous type {local.id}")
    kinds: tuple[type[Type], ...] = (Enum, Enum64) if _is_enum(local) else (type(local),)
    out: list[Type] = []
    for kind in kinds:
        out.extend(target.find_all(name, kind))
    return out


# --- field relocation values -------------------------------------------------------------

def _field_values(spec: Spec, f: _Field, kind: int, byteorder: str) -> tuple[int, int]:
    """(value, field byte size) of a field relocation (libbpf bpf_core_calc_field_relo).
    A field without a size (``void``, a function) is a :class:`CoreError`."""
    try:
        return _field_values_sized(spec, f, kind, byteorder)
    except CoreError:
        raise
    except (ValueError, KeyError) as e:
        raise CoreError(f"CO-RE field relocation on a field without a size "
                        f"({type(_skip(spec, f.type)).__name__}): {e}") from None


def _field_values_sized(spec: Spec, f: _Field, kind: int, byteorder: str
                        ) -> tuple[int, int]:
    t = _skip(spec, f.type)
    bit_off = f.bit_offset
    bitfield = f.bitfield_size
    old = _int_bits(t)
    if not bitfield and old is not None:
        bitfield, bit_off = old[0], bit_off + old[1]
    if not bitfield:
        byte_sz = spec.sizeof(t)
        byte_off = bit_off // 8
        bit_sz = byte_sz * 8
    else:
        bit_sz = bitfield
        byte_sz = spec.sizeof(t)
        byte_off = bit_off // 8 // byte_sz * byte_sz
        while bit_off + bit_sz - byte_off * 8 > byte_sz * 8:
            if byte_sz >= 8:
                raise CoreError("bitfield does not fit in 8 bytes")
            byte_sz *= 2
            byte_off = bit_off // 8 // byte_sz * byte_sz
    if kind == K.FIELD_BYTE_OFFSET:
        return byte_off, byte_sz
    if kind == K.FIELD_BYTE_SIZE:
        return byte_sz, byte_sz
    if kind == K.FIELD_EXISTS:
        return 1, byte_sz
    if kind == K.FIELD_SIGNED:
        signed = (isinstance(t, (Enum, Enum64)) and t.signed) or (
            isinstance(t, Int) and t.signed)
        return int(signed), byte_sz
    if kind == K.FIELD_LSHIFT_U64:
        if byteorder == "<":
            return 64 - (bit_off + bit_sz - byte_off * 8), byte_sz
        return (8 - byte_sz) * 8 + (bit_off - byte_off * 8), byte_sz
    if kind == K.FIELD_RSHIFT_U64:
        return 64 - bit_sz, byte_sz
    raise CoreError(f"not a field relocation kind: {kind}")


def _match_field(ls: Spec, root_idx: int, path: Sequence[_Access], ts: Spec,
                 cand: Type) -> _Field | None:
    t = _skip(ts, cand)
    try:
        bit = root_idx * ts.sizeof(t) * 8 if root_idx else 0
    except ValueError:
        return None
    cur: Type = t
    bitfield = 0
    is_elem = False
    for n, acc in enumerate(path):
        cur = _skip(ts, cur)
        if acc.name:
            if not isinstance(cur, Composite):
                return None
            try:
                m = cur.member(acc.name)
            except KeyError:
                return None
            if not _fields_compat(ls, ls[acc.type_id], ts, m.type):
                return None
            bit += m.offset
            bitfield = m.bitfield_size
            cur = m.type
            is_elem = False
        else:
            if not isinstance(cur, Array):
                return None
            flex = cur.nelems == 0 and n == len(path) - 1
            if acc.index >= cur.nelems and not flex:
                return None
            elem = cur.elem_type
            try:
                bit += acc.index * ts.sizeof(elem) * 8
            except ValueError:
                return None
            cur = elem
            bitfield = 0
            is_elem = True
    return _Field(cur, bit, bitfield, is_elem)


def resolve(relo: CoreRelo, local: Spec, target: Spec | None, *,
            byteorder: str = "<") -> CoreResult:
    """The value relocation ``relo`` takes for ``target`` (``None``: no target BTF, every
    relocation fails as when nothing matches)."""
    kind = relo.kind
    try:
        local_t = local[relo.type_id]
    except KeyError:
        raise CoreError(f"CO-RE relocation refers to missing local type {relo.type_id}") from None
    if kind == K.TYPE_ID_LOCAL:
        return CoreResult(relo.type_id)
    cands = _candidates(local_t, target) if target is not None else []
    values: set[tuple[int, int]] = set()
    orig_size = 0
    if kind in _FIELD_KINDS:
        root_idx, path, lfield = _parse_local(local, relo.type_id, relo.access)
        _, orig_size = _field_values(local, lfield, K.FIELD_BYTE_OFFSET, byteorder)
        if target is not None:
            for c in cands:
                f = _match_field(local, root_idx, path, target, c)
                if f is not None:
                    values.add(_field_values(target, f, kind, byteorder))
    elif kind in _TYPE_KINDS:
        if relo.access != "0":
            raise CoreError(f"type relocation with access {relo.access!r}")
        for c in cands:
            assert target is not None
            ok = (_types_match(local, local_t, target, c) if kind == K.TYPE_MATCHES
                  else _types_compat(local, local_t, target, c))
            if not ok:
                continue
            if kind == K.TYPE_ID_TARGET:
                values.add((c.id, 0))
            elif kind == K.TYPE_SIZE:
                try:
                    values.add((target.sizeof(c), 0))
                except (ValueError, KeyError) as e:
                    raise CoreError(f"TYPE_SIZE of {c.name!r}, which has no size: {e}"
                                    ) from None
            else:
                values.add((1, 0))
    elif kind in _ENUM_KINDS:
        lt = _skip(local, local_t)
        if not isinstance(lt, (Enum, Enum64)):
            raise CoreError(f"enum relocation against {type(lt).__name__} {lt.id}")
        try:
            i = int(relo.access)
            ename = essential_name(lt.values[i].name)
        except (ValueError, IndexError):
            raise CoreError(f"bad enum access {relo.access!r}") from None
        for c in cands:
            tc = _skip(target, c) if target is not None else c
            if not isinstance(tc, (Enum, Enum64)):
                continue
            for v in tc.values:
                if essential_name(v.name) == ename:
                    values.add((1 if kind == K.ENUMVAL_EXISTS else v.value, 0))
                    break
    else:
        raise CoreError(f"unknown CO-RE relocation kind {kind}")
    if not values:
        if kind in _SOFT_KINDS:
            return CoreResult(0)
        return CoreResult(0, poison=True)
    if len({v for v, _ in values}) > 1:
        raise CoreError(f"CO-RE relocation of {local_t.name!r} ({relo.access}, "
                        f"{CoreReloKind(kind).name}) is ambiguous: candidates give "
                        f"{sorted(v for v, _ in values)}")
    value, new_size = values.pop()
    return CoreResult(value, orig_size=orig_size, new_size=new_size)


# --- patching ------------------------------------------------------------------------------

_CLS_LD, _CLS_LDX, _CLS_ST, _CLS_STX, _CLS_ALU, _CLS_ALU64 = 0, 1, 2, 3, 4, 7
_SIZE_CODE = {4: 0x00, 2: 0x08, 1: 0x10, 8: 0x18}


def _poison(insns: bytearray, at: int, bo: str) -> None:
    struct.pack_into(bo + "BBhi", insns, at, 0x85, 0, 0, POISON_IMM)


def patch(insns: bytearray, index: int, relo: CoreRelo, res: CoreResult, *,
          byteorder: str = "<") -> None:
    """Write ``res`` into instruction ``index`` of ``insns`` (8-byte slots)."""
    bo = byteorder
    at = index * 8
    if at + 8 > len(insns):
        raise CoreError(f"CO-RE relocation at instruction {index} is past the end")
    code = insns[at]
    cls = code & 7
    wide = code == 0x18
    if res.poison:
        if wide and at + 16 <= len(insns):
            _poison(insns, at + 8, bo)
        _poison(insns, at, bo)
        return
    value = res.value
    if cls in (_CLS_ALU, _CLS_ALU64) and not wide:
        if code & 0x08:
            raise CoreError(f"CO-RE relocation on register-source ALU instruction {index}")
        if not -(1 << 31) <= value < (1 << 32):
            raise CoreError(f"CO-RE value {value} does not fit the immediate of {index}")
        struct.pack_into(bo + "I", insns, at + 4, value & 0xFFFFFFFF)
    elif cls in (_CLS_LDX, _CLS_ST, _CLS_STX):
        if relo.kind != K.FIELD_BYTE_OFFSET:
            raise CoreError(f"{CoreReloKind(relo.kind).name} relocation on memory "
                            f"instruction {index}")
        if not -(1 << 15) <= value < (1 << 15):
            raise CoreError(f"field offset {value} does not fit instruction {index}")
        struct.pack_into(bo + "h", insns, at + 2, value)
        size = {0x00: 4, 0x08: 2, 0x10: 1, 0x18: 8}[code & 0x18]
        if (res.new_size != res.orig_size and size == res.orig_size
                and res.new_size in _SIZE_CODE and cls == _CLS_LDX):
            insns[at] = (code & ~0x18 & 0xFF) | _SIZE_CODE[res.new_size]
    elif wide:
        if at + 16 > len(insns):
            raise CoreError(f"truncated ld_imm64 at instruction {index}")
        struct.pack_into(bo + "I", insns, at + 4, value & 0xFFFFFFFF)
        struct.pack_into(bo + "I", insns, at + 12, (value >> 32) & 0xFFFFFFFF)
    else:
        raise CoreError(f"CO-RE relocation on unsupported instruction {index} "
                        f"(opcode {code:#04x})")


def apply_relocations(insns: bytearray, relos: Iterable[tuple[int, CoreRelo]], local: Spec,
                      target: Spec | None, *, byteorder: str = "<") -> list[CoreResult]:
    """Resolve and patch each ``(instruction index, relocation)``; returns the results."""
    out: list[CoreResult] = []
    cache: dict[tuple[int, str, int], CoreResult] = {}
    for index, relo in relos:
        key = (relo.type_id, relo.access, relo.kind)
        res = cache.get(key)
        if res is None:
            res = cache[key] = resolve(relo, local, target, byteorder=byteorder)
        patch(insns, index, relo, res, byteorder=byteorder)
        out.append(res)
    return out

