"""Programs: label scopes, label resolution, reference resolution, the kernel's program tag.

Items of a program are :class:`Instruction` values, :class:`Label` markers, and nested
sequences of items. A nested ``list``/``tuple`` is spliced in place and shares the label
scope around it. A :class:`Fragment` opens a new scope: labels defined inside it are private
to that occurrence, so one fragment (or one function returning a ``Fragment``) can be used
any number of times in a program. A jump inside a fragment looks for its label in the
fragment first, then outwards, so fragments can jump to labels of the code around them
(``on_short="out"``)::

    def bounds_check(n: int) -> asm.Fragment:
        return asm.Fragment([
            asm.mov(R4, R2), asm.add(R4, n),
            asm.jle(R4, R3, "ok"),        # "ok" is private to this occurrence
            asm.ja("drop"),               # "drop" is found in the enclosing program
            asm.label("ok"),
        ], name="bounds_check")
"""

from __future__ import annotations

import bisect
import struct
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Final, Union

from ..errors import AssemblerError
from .instruction import HasFileno, Instruction, Reference, _make, _make2, decode

__all__ = ["Fragment", "Instructions", "Item", "Label", "label", "program_tag"]

_OFF: Final = struct.Struct("<h")  # the off field of a slot, at byte 2
_IMM: Final = struct.Struct("<i")  # the imm field, at byte 4
_OFF_IMM: Final = struct.Struct("<hi")  # both: kfunc calls
_LABEL_FLAG: Final = 16


class Label:
    """A position in a program that jumps and calls can name: ``asm.label("out")``."""

    __slots__ = ("name",)
    name: str
    _flags: Final = _LABEL_FLAG  # lets Instructions tell labels apart in bulk
    _raw: Final = b""  # labels stay in the flat list and encode to nothing
    _enc: Final = None  # never part of a plain run (see Instruction._enc)

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise AssemblerError(f"label name must be a non-empty str, not {name!r}")
        object.__setattr__(self, "name", name)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Label is frozen")

    def __eq__(self, other: object) -> bool:
        return type(other) is Label and other.name == self.name

    def __hash__(self) -> int:
        return hash(("Label", self.name))

    def __repr__(self) -> str:
        return f"label({self.name!r})"


def label(name: str) -> Label:
    """Mark the position of the next instruction as ``name``."""
    return Label(name)


class Fragment:
    """A reusable sequence of items with its own label scope (see the module docs)."""

    __slots__ = ("items", "name")
    items: tuple[Item, ...]
    name: str | None

    def __init__(self, items: Iterable[Item], name: str | None = None) -> None:
        object.__setattr__(self, "items", tuple(items))
        object.__setattr__(self, "name", name)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Fragment is frozen")

    def __iter__(self) -> Iterator[Item]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __repr__(self) -> str:
        return f"Fragment({len(self.items)} items, name={self.name!r})"


Item = Union[Instruction, Label, Fragment, "Instructions", Sequence["Item"]]


class _Scope:
    """The labels of one scope: the program, or one occurrence of a fragment."""

    __slots__ = ("index", "labels", "name", "parent")

    def __init__(self, parent: _Scope | None, name: str) -> None:
        self.parent = parent
        self.name = name
        self.labels: dict[str, int] = {}  # name -> slot
        self.index: dict[str, int] = {}  # name -> position in Instructions._insns

    def qualify(self, label_name: str) -> str:
        return f"{self.name}/{label_name}" if self.name else label_name

    def find(self, label_name: str) -> _Scope | None:
        """This scope or the nearest enclosing one that defines ``label_name``."""
        s: _Scope | None = self
        while s is not None:
            if label_name in s.labels:
                return s
            s = s.parent
        return None


# Opcodes whose label offset goes to the 16-bit ``off`` field: the jumps of the JMP and JMP32
# classes, but call (0x85) and gotol (0x06), which take it in ``imm``.
_OFF_JUMPS: Final = frozenset(
    op for op in range(256) if op & 7 in (5, 6) and op not in (0x85, 0x06)
)
# Opcodes after which execution does not fall through to the next instruction.
_NO_FALLTHROUGH: Final = frozenset((0x95, 0x05, 0x06))


class Instructions(Sequence[Instruction]):
    """An assembled program: items flattened, labels resolved and checked.

    ``Instructions(items)`` resolves every label (raising :class:`AssemblerError` for an
    undefined or duplicate label, or a jump whose distance does not fit its field).
    :meth:`encode` checks the control flow, resolves map and kfunc references and returns the
    bytes for ``BPF_PROG_LOAD``. The sequence holds the :class:`Instruction` values with label
    offsets filled in; indexes of the sequence are instructions, while kernel positions
    (``insn_index`` in :attr:`references`, :meth:`source`) count 8-byte slots, as the
    verifier does.
    """

    # What needs resolving is kept in parallel lists of ints (an index into _insns, a slot),
    # not in a tuple per instruction: ints are no objects the garbage collector tracks, so
    # assembling a large program sets off no collections over the caller's instructions.
    __slots__ = (
        "_base",
        "_calls",
        "_checked",
        "_chunks",
        "_code",
        "_fix_idx",
        "_fix_pc",
        "_fix_rel",
        "_fix_scope",
        "_insns",
        "_label_names",
        "_label_pcs",
        "_len",
        "_num_idx",
        "_num_pc",
        "_pcs",
        "_ref_idx",
        "_ref_pc",
        "_resolved",
        "_scope_n",
    )

    def __init__(self, items: Iterable[Item] = ()) -> None:
        # Instructions, and labels left in place by the bulk path (they encode to b"").
        self._insns: list[Instruction | Label] = []
        # While flattening: the encodings of _insns, in order, a run or an instruction each.
        self._chunks: list[bytes] = []
        # Label references: position in _insns, slot, scope; the offset once resolved.
        self._fix_idx: list[int] = []
        self._fix_pc: list[int] = []
        self._fix_scope: list[_Scope] = []
        self._fix_rel: list[int] = []
        # Map and kfunc references, and numeric jumps and calls: position in _insns, slot.
        self._ref_idx: list[int] = []
        self._ref_pc: list[int] = []
        self._num_idx: list[int] = []
        self._num_pc: list[int] = []
        # Every label in program order: slot and qualified name.
        self._label_pcs: list[int] = []
        self._label_names: list[str] = []
        # subprogram entries reached through labels: (flat index, slot, slot of the call site)
        self._calls: list[tuple[int, int, int]] = []
        self._scope_n = 0
        self._pcs: list[int] | None = None
        self._resolved: list[Instruction] | None = None
        self._checked = False
        self._code: bytes | None = None  # the encoding, once known (if there are no references)
        self._len = self._flatten(items, _Scope(None, ""), 0, True)
        # The encoding with label offsets patched in; references are patched into a copy.
        self._base: bytes | bytearray
        if self._code is not None:  # one straight run: nothing to resolve
            self._base = self._code
        else:
            self._base = bytearray(b"".join(self._chunks))
            if self._fix_idx:
                self._resolve(self._base)
        self._chunks = []

    # -- building ----------------------------------------------------------------------------
    def _flatten(self, items: Iterable[Item], scope: _Scope, pc: int, top: bool = False) -> int:
        if type(items) is list or type(items) is tuple:
            try:
                # One attribute read per item: the bytes of a plain instruction, else None.
                raws: list[bytes | None] = [it._enc for it in items]
            except AttributeError:
                pass  # nested sequences or fragments: item by item below
            else:
                if top:
                    # The whole program: if it is one straight run, the join is its encoding;
                    # else the join stops with TypeError at the first None.
                    try:
                        self._code = b"".join(raws)  # type: ignore[arg-type]
                    except TypeError:
                        end = self._flatten_flat(items, raws, scope, pc)
                    else:
                        self._insns.extend(items)
                        return pc + len(raws)
                elif all(raws):  # a straight run: nothing to resolve or count
                    self._insns.extend(items)
                    end = pc + len(raws)
                else:  # fills in every None of raws
                    end = self._flatten_flat(items, raws, scope, pc)
                self._chunks.append(b"".join(raws))  # type: ignore[arg-type]  # no None left
                return end
        insns = self._insns
        append = insns.append
        chunk = self._chunks.append
        labels = scope.labels
        for it in items:
            if type(it) is Instruction:
                chunk(it._raw)
                f = it._flags
                if f:
                    idx = len(insns)
                    if f & 1:
                        self._fix_idx.append(idx)
                        self._fix_pc.append(pc)
                        self._fix_scope.append(scope)
                    if f & 2:
                        self._ref_idx.append(idx)
                        self._ref_pc.append(pc)
                    if f & 8:
                        self._num_idx.append(idx)
                        self._num_pc.append(pc)
                    if f & 4:
                        pc += 1
                append(it)
                pc += 1
            elif type(it) is Label:
                name = it.name
                if name in labels:
                    raise AssemblerError(f"duplicate label {scope.qualify(name)!r}")
                labels[name] = pc
                scope.index[name] = len(insns)
                self._label_pcs.append(pc)
                self._label_names.append(scope.qualify(name))
            elif type(it) is list or type(it) is tuple:
                pc = self._flatten(it, scope, pc)
            elif isinstance(it, Fragment):
                self._scope_n += 1
                sname = f"{it.name or 'fragment'}#{self._scope_n}"
                pc = self._flatten(it.items, _Scope(scope, scope.qualify(sname)), pc)
            elif isinstance(it, Instructions):
                self._scope_n += 1
                sub = _Scope(scope, scope.qualify(f"#{self._scope_n}"))
                pc = self._flatten(it._original(), sub, pc)
            elif isinstance(it, Instruction):
                pc = self._flatten([Instruction.replace(it)], scope, pc)
            elif isinstance(it, Iterable) and not isinstance(it, (str, bytes)):
                pc = self._flatten(it, scope, pc)
            else:
                raise AssemblerError(f"not an instruction, label or sequence: {it!r}")
        return pc

    def _flatten_flat(
        self, items: Sequence[Instruction | Label], raws: list[bytes | None], scope: _Scope,
        pc: int,
    ) -> int:
        """Bulk path for a flat sequence of instructions and labels.

        ``raws`` holds the items' ``_enc``: None exactly at the items that need attention
        (labels, and instructions with nonzero ``_flags``); this fills in their ``_raw``.
        Only those items are visited, in a loop that builds no objects.
        """
        insns = self._insns
        base = len(insns)
        specials = [i for i, r in enumerate(raws) if r is None]
        insns.extend(items)
        labels = scope.labels
        index = scope.index
        qual = scope.name
        label_pc = self._label_pcs.append
        label_name = self._label_names.append
        fix_idx = self._fix_idx.append
        fix_pc = self._fix_pc.append
        fix_scope = self._fix_scope.append
        ref_idx = self._ref_idx.append
        ref_pc = self._ref_pc.append
        num_idx = self._num_idx.append
        num_pc = self._num_pc.append
        label_flag = _LABEL_FLAG
        delta = pc  # slot of item i is i + delta: pc, minus labels, plus ld_imm64 seen so far
        for i in specials:
            it = items[i]
            raws[i] = it._raw
            f = it._flags
            if f == label_flag:
                name = it.name  # type: ignore[union-attr]
                if name in labels:
                    raise AssemblerError(f"duplicate label {scope.qualify(name)!r}")
                labels[name] = i + delta
                index[name] = base + i
                label_pc(i + delta)
                label_name(f"{qual}/{name}" if qual else name)
                delta -= 1
                continue
            if f & 1:
                fix_idx(base + i)
                fix_pc(i + delta)
                fix_scope(scope)
            if f & 2:
                ref_idx(base + i)
                ref_pc(i + delta)
            if f & 8:
                num_idx(base + i)
                num_pc(i + delta)
            if f & 4:
                delta += 1
        return len(items) + delta

    def _original(self) -> list[Item]:
        """Items that rebuild this program (labels and targets kept symbolic)."""
        out: list[Item] = []
        at: dict[int, list[str]] = {}
        for pc, name in zip(self._label_pcs, self._label_names, strict=True):
            at.setdefault(pc, []).append(name)
        pc = 0
        for insn in self._insns:
            if type(insn) is Label:
                continue
            for name in at.pop(pc, ()):
                out.append(Label(name))
            out.append(insn)
            pc += insn.size  # type: ignore[union-attr]
        return out

    def _resolve(self, buf: bytearray) -> None:
        """Patch the offset of every label reference into ``buf``; note the offsets in
        ``_fix_rel`` and the bpf-to-bpf calls in ``_calls``."""
        insns: list[Instruction] = self._insns  # type: ignore[assignment]  # labels are never indexed here
        total = self._len
        rel_append = self._fix_rel.append
        pack_off = _OFF.pack_into
        pack_imm = _IMM.pack_into
        off_jumps = _OFF_JUMPS
        for idx, pc, scope in zip(self._fix_idx, self._fix_pc, self._fix_scope, strict=True):
            insn = insns[idx]
            name: str = insn._target  # type: ignore[assignment]  # set: that made it a fixup
            tpc = scope.labels.get(name)
            if tpc is None:
                owner = scope.find(name)
                if owner is None:
                    raise AssemblerError(f"undefined label {scope.qualify(name)!r} (insn {pc})")
                tpc = owner.labels[name]
            if tpc >= total:
                raise AssemblerError(
                    f"label {name!r} is at the end of the program, insn {pc} cannot jump there"
                )
            rel = tpc - pc - 1
            op = insn._op
            if op in off_jumps:
                if not -0x8000 <= rel <= 0x7FFF:
                    raise AssemblerError(
                        f"jump out of range: insn {pc} to label {name!r} is {rel} insns away"
                        " (16-bit offset; use gotol for long unconditional jumps)"
                    )
                pack_off(buf, pc * 8 + 2, rel)
            elif op in {0x85, 0x06, 0x18}:
                if not -0x8000_0000 <= rel <= 0x7FFF_FFFF:
                    raise AssemblerError(f"label {name!r} is too far from insn {pc}")
                pack_imm(buf, pc * 8 + 4, rel)
                if op == 0x85 or (op == 0x18 and insn._src == 4):
                    owner = scope.find(name)
                    assert owner is not None
                    self._calls.append((owner.index[name], tpc, pc))
            else:
                raise AssemblerError(
                    f"insn {pc} (opcode {op:#04x}) refers to label {name!r}, but only jumps,"
                    " calls and ld_imm64 take a label"
                )
            rel_append(rel)

    def _resolved_insns(self) -> list[Instruction]:
        res = self._resolved
        if res is None:
            flat = list(self._insns)
            for idx, rel in zip(self._fix_idx, self._fix_rel, strict=True):
                insn = flat[idx]
                assert type(insn) is Instruction
                if insn._op == 0x18:
                    flat[idx] = _make2(0x18, insn._dst, insn._src, 0, rel, insn._imm2,
                                      insn._target, insn._ref)
                elif insn._op in (0x06, 0x85):
                    flat[idx] = _make(insn._op, insn._dst, insn._src, insn._off, rel,
                                     insn._target, insn._ref)
                else:
                    flat[idx] = _make(insn._op, insn._dst, insn._src, rel, insn._imm,
                                     insn._target, insn._ref)
            res = [i for i in flat if type(i) is Instruction]
            self._resolved = res
        return res

    # -- checks ------------------------------------------------------------------------------
    def check(self) -> None:
        """Check the control flow: every jump lands on an instruction of the program, and no
        path can fall off the end of the program or into a subprogram."""
        if self._checked:
            return
        insns = self._insns
        total = self._len
        if not total:
            raise AssemblerError("empty program")
        last = self._before(len(insns))
        if last._op not in _NO_FALLTHROUGH:
            raise AssemblerError(
                f"program can fall off its end: last insn {total - last.size} ({last}) is not"
                " exit or goto"
            )
        for tidx, tpc, call_pc in self._calls:
            if tpc > 0 and self._before(tidx)._op not in _NO_FALLTHROUGH:
                raise AssemblerError(
                    f"the insn before {tpc} falls through into the subprogram there (called"
                    f" from insn {call_pc})"
                )
        if self._num_idx:
            self._check_numeric()
        self._checked = True

    def _before(self, flat_index: int) -> Instruction:
        """The last instruction before position ``flat_index`` of the flat list."""
        insns = self._insns
        i = flat_index - 1
        while type(insns[i]) is Label:
            i -= 1
        return insns[i]  # type: ignore[return-value]

    def _check_numeric(self) -> None:
        insns = self._insns
        total = self._len
        plain = self._resolved_insns()
        pcs = self._slot_pcs()
        second = {pcs[i] + 1 for i, insn in enumerate(plain) if insn._op == 0x18}
        for idx, pc in zip(self._num_idx, self._num_pc, strict=True):
            insn = insns[idx]
            assert type(insn) is Instruction
            op = insn._op
            rel = insn._off if op not in (0x06, 0x85, 0x18) else insn._imm
            tgt = pc + 1 + rel
            what = "calls" if op in (0x85, 0x18) else "jumps to"
            if not 0 <= tgt < total:
                raise AssemblerError(
                    f"insn {pc} {what} {tgt}, outside the program (0..{total - 1})"
                )
            if tgt in second:
                raise AssemblerError(
                    f"insn {pc} {what} the middle of an ld_imm64 at insn {tgt - 1}"
                )
            if op in (0x85, 0x18) and tgt > 0:
                j = bisect.bisect_left(pcs, tgt)
                if plain[j - 1]._op not in _NO_FALLTHROUGH:
                    raise AssemblerError(
                        f"insn {pcs[j - 1]} falls through into the subprogram at insn {tgt}"
                    )

    def _slot_pcs(self) -> list[int]:
        """Slot of each instruction of :meth:`_resolved_insns`."""
        pcs = self._pcs
        if pcs is None:
            pcs = []
            pc = 0
            for insn in self._resolved_insns():
                pcs.append(pc)
                pc += 2 if insn._op == 0x18 else 1
            self._pcs = pcs
        return pcs

    # -- encoding ----------------------------------------------------------------------------
    def encode(
        self,
        maps: Mapping[object, int | HasFileno] | None = None,
        *,
        kfuncs: Mapping[str, int | tuple[int, int]] | None = None,
        byteorder: str = sys.byteorder,
        check: bool = True,
    ) -> bytes:
        """The program's bytes, with every reference resolved.

        ``maps`` maps reference keys (map names, or the map objects themselves) to an fd or an
        object with ``fileno()``; a map object not in ``maps`` gives its own ``fileno()``.
        ``kfuncs`` maps kfunc names to a BTF id or ``(btf_id, fd_array_index)``. An unresolved
        reference raises :class:`AssemblerError` naming it. With ``check`` (the default) the
        control flow is checked first (:meth:`check`).
        """
        if check and not self._checked:
            self.check()
        if byteorder != "little":
            if byteorder != "big":
                raise ValueError(f"byteorder must be 'little' or 'big', not {byteorder!r}")
            little = self.encode(maps, kfuncs=kfuncs, check=False)
            return b"".join(
                i.replace(target=None, reference=None).encode("big") for i in decode(little)
            )
        code = self._code
        if code is None:
            if self._ref_idx:
                buf = bytearray(self._base)
                self._patch_refs(buf, maps, kfuncs, False)
                return bytes(buf)
            code = self._code = bytes(self._base)
        return code

    def _patch_refs(
        self,
        buf: bytearray,
        maps: Mapping[object, int | HasFileno] | None,
        kfuncs: Mapping[str, int | tuple[int, int]] | None,
        placeholder: bool,
    ) -> None:
        """Patch map fds and kfunc BTF ids (zeros, with ``placeholder``) into ``buf``."""
        insns: list[Instruction] = self._insns  # type: ignore[assignment]  # labels are never indexed here
        cache: dict[int, int] = {}
        get = cache.get
        pack_imm = _IMM.pack_into
        for idx, pc in zip(self._ref_idx, self._ref_pc, strict=True):
            insn = insns[idx]
            ref = insn._ref
            assert ref is not None
            if insn._op == 0x85:
                btf_id, module = (0, insn._off) if placeholder else _resolve_kfunc(ref, kfuncs, pc)
                _OFF_IMM.pack_into(buf, pc * 8 + 2, module, btf_id)
            elif placeholder:
                pack_imm(buf, pc * 8 + 4, 0)
            else:
                key = id(ref)
                fd = get(key, -1)
                if fd < 0:
                    fd = cache[key] = _resolve_map(ref, maps, pc)
                pack_imm(buf, pc * 8 + 4, fd)

    @property
    def references(self) -> list[tuple[int, Reference]]:
        """Map references still symbolic: ``(insn_index, map object or name)``, in order."""
        out: list[tuple[int, Reference]] = []
        for idx, pc in zip(self._ref_idx, self._ref_pc, strict=True):
            insn = self._insns[idx]
            assert type(insn) is Instruction
            if insn._op == 0x18 and insn._ref is not None:
                out.append((pc, insn._ref))
        return out

    def kfunc_references(self) -> list[tuple[int, str]]:
        """Kfunc calls by name: ``(insn_index, kfunc name)``; the loader resolves the names
        to BTF ids and passes them to :meth:`encode` as ``kfuncs``."""
        out: list[tuple[int, str]] = []
        for idx, pc in zip(self._ref_idx, self._ref_pc, strict=True):
            insn = self._insns[idx]
            assert type(insn) is Instruction
            if insn._op == 0x85 and isinstance(insn._ref, str):
                out.append((pc, insn._ref))
        return out

    @property
    def labels(self) -> dict[str, int]:
        """Every label (fragment labels qualified as ``name#n/label``) and its insn index."""
        return dict(zip(self._label_names, self._label_pcs, strict=True))

    def tag(self, code: bytes | None = None, algorithm: str = "sha256") -> bytes:
        """The 8-byte tag the kernel reports for this program (see :func:`program_tag`).

        Without ``code``, map fds are irrelevant to the tag, so references need no resolving.
        """
        if code is None:
            buf = bytearray(self._base)
            self._patch_refs(buf, None, None, True)
            code = bytes(buf)
        return program_tag(code, algorithm)

    # -- mapping back to the source ------------------------------------------------------------
    def source(self, insn_index: int) -> str:
        """Describe slot ``insn_index`` for error messages, e.g. ``"insn 7: r0 = 0x2 (label
        'miss' + 1)"``."""
        pcs = self._slot_pcs()
        i = bisect.bisect_right(pcs, insn_index) - 1
        if i < 0 or insn_index >= self._len:
            return f"insn {insn_index} (outside the program)"
        insn = self._resolved_insns()[i]
        text = f"insn {insn_index}"
        if pcs[i] != insn_index:
            text += f" (second slot of the ld_imm64 at insn {pcs[i]})"
        from .disasm import format_instruction

        text += f": {format_instruction(insn)}"
        j = bisect.bisect_right(self._label_pcs, pcs[i]) - 1
        if j >= 0:
            lpc, lname = self._label_pcs[j], self._label_names[j]
            delta = pcs[i] - lpc
            text += f" (label {lname!r})" if delta == 0 else f" (label {lname!r} + {delta})"
        return text

    # -- sequence protocol -------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._resolved_insns())

    def __getitem__(self, index: int) -> Instruction:  # type: ignore[override]
        return self._resolved_insns()[index]

    def __iter__(self) -> Iterator[Instruction]:
        return iter(self._resolved_insns())

    @property
    def slots(self) -> int:
        """Length in 8-byte slots (what the kernel calls ``insn_cnt``)."""
        return self._len

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Instructions):
            return (
                self._resolved_insns() == other._resolved_insns()
                and self._label_pcs == other._label_pcs
                and self._label_names == other._label_names
            )
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<Instructions: {len(self)} instructions, {self._len} slots>"

    def __str__(self) -> str:
        from .disasm import disassemble

        return disassemble(self)

    def __format__(self, spec: str) -> str:
        return str(self) if not spec else format(str(self), spec)

    @classmethod
    def decode(cls, code: bytes, byteorder: str = sys.byteorder) -> Instructions:
        """Instructions from program bytes (jump offsets stay numeric)."""
        return cls(decode(code, byteorder))


def _resolve_map(ref: Reference, maps: Mapping[object, int | HasFileno] | None, pc: int) -> int:
    value: object = None
    if maps is not None:
        try:
            value = maps.get(ref)
        except TypeError:  # unhashable map object
            value = None
    if value is None:
        if isinstance(ref, str):
            raise AssemblerError(
                f"map {ref!r} (insn {pc}) is not resolved; pass encode(maps={{{ref!r}: fd}})"
            )
        value = ref
    if isinstance(value, int) and not isinstance(value, bool):
        fd = value
    elif isinstance(value, HasFileno):
        fd = value.fileno()
    else:
        raise AssemblerError(f"map {ref!r} (insn {pc}) resolved to {value!r}, not an fd")
    if not 0 <= fd <= 0x7FFF_FFFF:
        raise AssemblerError(f"map {ref!r} (insn {pc}) has invalid fd {fd}")
    return fd


def _resolve_kfunc(
    ref: Reference, kfuncs: Mapping[str, int | tuple[int, int]] | None, pc: int
) -> tuple[int, int]:
    assert isinstance(ref, str)
    value = None if kfuncs is None else kfuncs.get(ref)
    if value is None:
        raise AssemblerError(
            f"kfunc {ref!r} (insn {pc}) is not resolved; pass encode(kfuncs={{{ref!r}: btf_id}})"
        )
    if isinstance(value, tuple):
        return value[0], value[1]
    return value, 0


def program_tag(code: bytes, algorithm: str = "sha256") -> bytes:
    """The 8-byte program tag the kernel computes (``bpf_prog_calc_tag``).

    A digest of the instructions with the fds of map loads (``BPF_PSEUDO_MAP_FD`` and
    ``BPF_PSEUDO_MAP_VALUE``: both immediates of the ld_imm64) zeroed, truncated to 8 bytes.
    Linux 6.18 and later use SHA-256 (the default); earlier kernels SHA-1: pass
    ``algorithm="sha1"``. ``bpftool prog`` prints the tag as hex and
    ``ebpf.Program.info().tag`` returns it.
    """
    if algorithm not in ("sha256", "sha1"):
        raise ValueError(f"algorithm must be 'sha256' or 'sha1', not {algorithm!r}")
    n = len(code)
    if n % 8:
        raise AssemblerError(f"program length {n} is not a multiple of 8")
    buf = bytearray(code)
    # Only ld_imm64 map loads change; find them without decoding every slot.
    pos = buf.find(b"\x18")
    was_ld_map = False
    while pos != -1:
        if pos % 8 == 0:
            break
        pos = buf.find(b"\x18", pos + 1)
    if pos != -1:
        was_ld_map = False
        for off in range(0, n, 8):
            code_b = buf[off]
            regs = buf[off + 1]
            if not was_ld_map and code_b == 0x18 and (regs >> 4) in (1, 2):
                was_ld_map = True
                buf[off + 4 : off + 8] = b"\0\0\0\0"
            elif was_ld_map and code_b == 0 and regs == 0 and buf[off + 2 : off + 4] == b"\0\0":
                was_ld_map = False
                buf[off + 4 : off + 8] = b"\0\0\0\0"
            else:
                was_ld_map = False
    import hashlib  # on first use: its import costs more than a small program's load

    return hashlib.new(algorithm, bytes(buf), usedforsecurity=False).digest()[:8]
