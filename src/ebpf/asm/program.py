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
_SLOT: Final = struct.Struct("<BBhi")
_LABEL_FLAG: Final = 16
#: How many first items of a list tell whether to try it as a straight run (see _flatten).
_HEAD: Final = 16


class Label:
    """A position in a program that jumps and calls can name: ``asm.label("out")``."""

    __slots__ = ("name",)
    name: str
    _flags: Final = _LABEL_FLAG  # lets Instructions tell labels apart in bulk
    _raw: Final = b""  # labels stay in the flat list and encode to nothing

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

    __slots__ = ("labels", "name", "parent")

    def __init__(self, parent: _Scope | None, name: str) -> None:
        self.parent = parent
        self.name = name
        self.labels: dict[str, int] = {}  # name -> slot

    def qualify(self, label_name: str) -> str:
        return f"{self.name}/{label_name}" if self.name else label_name

    def lookup(self, label_name: str, pc: int) -> int:
        """Slot of ``label_name`` in this scope or the nearest enclosing one that has it."""
        s: _Scope | None = self
        while s is not None:
            slot = s.labels.get(label_name)
            if slot is not None:
                return slot
            s = s.parent
        raise AssemblerError(f"undefined label {self.qualify(label_name)!r} (insn {pc})")


# Opcodes whose label offset goes to the 16-bit ``off`` field: the jumps of the JMP and JMP32
# classes, but call (0x85) and gotol (0x06), which take it in ``imm``.
_OFF_JUMPS: Final = frozenset(
    op for op in range(256) if op & 7 in (5, 6) and op not in (0x85, 0x06)
)
# Opcodes whose label offset goes to the 32-bit ``imm`` field: gotol, call, ld_imm64.
_IMM_TARGETS: Final = frozenset((0x06, 0x85, 0x18))
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

    # The work of assembling is done on the bytes: one bytearray of the whole program, into
    # which label offsets (and, in a copy, map fds) are packed at their slot. What needs
    # resolving is noted as slots in lists of ints, not as a tuple per instruction: ints are
    # no objects the garbage collector tracks, so assembling a large program sets off no
    # collections over the caller's many instructions.
    __slots__ = (
        "_base",
        "_calls",
        "_checked",
        "_chunks",
        "_code",
        "_fix_name",
        "_fix_pc",
        "_fix_runs",
        "_insns",
        "_label_names",
        "_label_pcs",
        "_len",
        "_num_pc",
        "_pcs",
        "_ref_obj",
        "_ref_pc",
        "_resolved",
        "_scope_n",
    )

    def __init__(self, items: Iterable[Item] = ()) -> None:
        # Instructions, and labels left in place by the bulk path (they encode to b"").
        self._insns: list[Instruction | Label] = []
        # While flattening: the encodings of _insns, in order, a run or an instruction each.
        self._chunks: list[bytes] = []
        # Label references: slot and label name; (first of them, scope) where the scope changes.
        self._fix_pc: list[int] = []
        self._fix_name: list[str] = []
        self._fix_runs: list[tuple[int, _Scope]] = []
        # Map and kfunc references: slot and the map (object or name) or kfunc name.
        self._ref_pc: list[int] = []
        self._ref_obj: list[Reference] = []
        # Slots of numeric jumps and calls (checked by check()).
        self._num_pc: list[int] = []
        # Every label in program order: slot and qualified name.
        self._label_pcs: list[int] = []
        self._label_names: list[str] = []
        # Calls through labels: (slot of the subprogram entry, slot of the call site).
        self._calls: list[tuple[int, int]] = []
        self._scope_n = 0
        self._pcs: list[int] | None = None
        self._resolved: list[Instruction] | None = None
        self._checked = False
        self._code: bytes | None = None  # the encoding, once known (if there are no references)
        self._len = self._flatten(items, _Scope(None, ""), 0, True)
        # The encoding with label offsets in; references are patched into a copy by encode.
        self._base: bytes | bytearray
        if self._code is not None:  # one straight run: nothing to resolve
            self._base = self._code
        else:
            self._base = bytearray().join(self._chunks)
            if self._fix_pc:
                self._resolve(self._base)
        self._chunks = []

    # -- building ----------------------------------------------------------------------------
    def _flatten(self, items: Iterable[Item], scope: _Scope, pc: int, top: bool = False) -> int:
        if type(items) is list or type(items) is tuple:
            try:
                # The items that need attention: labels, and instructions with something to
                # resolve, check or count (nonzero _flags). Code with none among its first
                # items (most code has a label, jump or reference there) is tried as a
                # straight run first: one pass that takes the encodings of the others only,
                # so that it is one if they are all of them.
                if not any([it._flags for it in items[:_HEAD]]):
                    raws: list[bytes] = [it._raw for it in items if not it._flags]
                    if len(raws) == len(items):  # a straight run: nothing to resolve or count
                        self._insns.extend(items)
                        end = pc + len(items)
                        if top:  # the whole program: this is its encoding
                            self._code = b"".join(raws)
                            return end
                        self._chunks.append(b"".join(raws))
                        return end
                specials = [i for i, it in enumerate(items) if it._flags]
            except AttributeError:
                pass  # nested sequences or fragments: item by item below
            else:
                raws = [it._raw for it in items]  # a label's is b""
                self._insns.extend(items)
                end = self._flatten_flat(items, specials, scope, pc)
                self._chunks.append(b"".join(raws))
                return end
        # Item by item, but runs of instructions and labels still go in bulk.
        run: list[Instruction | Label] = []
        for it in items:
            if type(it) is Instruction or type(it) is Label:
                run.append(it)
                continue
            if run:
                pc = self._flatten(run, scope, pc)
                run = []
            if type(it) is list or type(it) is tuple:
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
        if run:
            pc = self._flatten(run, scope, pc)
        return pc

    def _enter(self, scope: _Scope) -> None:
        """Label references noted from now on are looked up in ``scope``."""
        runs = self._fix_runs
        if not runs or runs[-1][1] is not scope:
            runs.append((len(self._fix_pc), scope))

    def _flatten_flat(
        self, items: Sequence[Instruction | Label], specials: list[int], scope: _Scope, pc: int
    ) -> int:
        """Bulk path for a flat sequence of instructions and labels: only the items at
        ``specials`` (nonzero ``_flags``) are visited, in a loop that builds no objects."""
        self._enter(scope)
        lpcs: list[int] = []  # the labels met, taken into the scope in bulk at the end
        lnames: list[str] = []
        label_pc = lpcs.append
        label_name = lnames.append
        fix_pc = self._fix_pc.append
        fix_name = self._fix_name.append
        ref_pc = self._ref_pc.append
        ref_obj = self._ref_obj.append
        num_pc = self._num_pc.append
        label_flag = _LABEL_FLAG
        delta = pc  # slot of item i is i + delta: pc, minus labels, plus ld_imm64 seen so far
        for i in specials:
            it = items[i]
            f = it._flags
            if f == 1:  # the most common: a jump to a label
                fix_pc(i + delta)
                fix_name(it._target)  # type: ignore[union-attr,arg-type]
            elif f == label_flag:
                label_pc(i + delta)
                label_name(it.name)  # type: ignore[union-attr]
                delta -= 1
            else:
                if f & 1:
                    fix_pc(i + delta)
                    fix_name(it._target)  # type: ignore[union-attr,arg-type]
                if f & 2:
                    ref_pc(i + delta)
                    ref_obj(it._ref)  # type: ignore[union-attr,arg-type]
                if f & 8:
                    num_pc(i + delta)
                if f & 4:
                    delta += 1
        if lnames:
            self._add_labels(scope, lnames, lpcs)
        return len(items) + delta

    def _add_labels(self, scope: _Scope, names: list[str], pcs: list[int]) -> None:
        """Define labels ``names`` at slots ``pcs`` in ``scope``, in bulk."""
        labels = scope.labels
        new = dict(zip(names, pcs, strict=True))
        if len(new) < len(names) or not labels.keys().isdisjoint(new):
            seen = set(labels)
            for name in names:
                if name in seen:
                    raise AssemblerError(f"duplicate label {scope.qualify(name)!r}")
                seen.add(name)
        labels.update(new)
        self._label_pcs += pcs
        qual = scope.name
        self._label_names += [f"{qual}/{n}" for n in names] if qual else names

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
        """Pack the offset of every label reference into ``buf``; note calls in ``_calls``."""
        total = self._len
        pcs = self._fix_pc
        names = self._fix_name
        runs = self._fix_runs
        pack_off = _OFF.pack_into
        pack_imm = _IMM.pack_into
        off_jumps = _OFF_JUMPS
        for r, (start, scope) in enumerate(runs):
            stop = runs[r + 1][0] if r + 1 < len(runs) else len(pcs)
            get = scope.labels.get
            for pc, name in zip(pcs[start:stop], names[start:stop], strict=True):
                tpc = get(name)
                if tpc is None:
                    tpc = scope.lookup(name, pc)
                if tpc >= total:
                    raise AssemblerError(
                        f"label {name!r} is at the end of the program, insn {pc} cannot jump"
                        " there"
                    )
                rel = tpc - pc - 1
                at = pc * 8
                op = buf[at]
                if op in off_jumps:
                    if not -0x8000 <= rel <= 0x7FFF:
                        raise AssemblerError(
                            f"jump out of range: insn {pc} to label {name!r} is {rel} insns"
                            " away (16-bit offset; use gotol for long unconditional jumps)"
                        )
                    pack_off(buf, at + 2, rel)
                elif op in _IMM_TARGETS:
                    if not -0x8000_0000 <= rel <= 0x7FFF_FFFF:
                        raise AssemblerError(f"label {name!r} is too far from insn {pc}")
                    pack_imm(buf, at + 4, rel)
                    if op == 0x85 or (op == 0x18 and buf[at + 1] >> 4 == 4):
                        self._calls.append((tpc, pc))
                else:
                    raise AssemblerError(
                        f"insn {pc} (opcode {op:#04x}) refers to label {name!r}, but only"
                        " jumps, calls and ld_imm64 take a label"
                    )

    def _resolved_insns(self) -> list[Instruction]:
        """The instructions, label offsets filled in (from the resolved bytes)."""
        res = self._resolved
        if res is None:
            base = self._base
            res = []
            append = res.append
            pc = 0
            for item in self._insns:
                if type(item) is Label:
                    continue
                insn: Instruction = item  # type: ignore[assignment]
                op = insn._op
                if insn._target is not None:
                    if op in _OFF_JUMPS:
                        (off,) = _OFF.unpack_from(base, pc * 8 + 2)
                        insn = _make(op, insn._dst, insn._src, off, insn._imm, insn._target,
                                     insn._ref)
                    else:
                        (imm,) = _IMM.unpack_from(base, pc * 8 + 4)
                        if op == 0x18:
                            insn = _make2(op, insn._dst, insn._src, insn._off, imm, insn._imm2,
                                          insn._target, insn._ref)
                        else:
                            insn = _make(op, insn._dst, insn._src, insn._off, imm,
                                         insn._target, insn._ref)
                append(insn)
                pc += 2 if op == 0x18 else 1
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
        base = self._base
        for tpc, call_pc in self._calls:
            # The slot before the entry: exit or goto, else a path falls through (the second
            # slot of an ld_imm64 has opcode 0, and an ld_imm64 falls through).
            if tpc > 0 and base[(tpc - 1) * 8] not in _NO_FALLTHROUGH:
                raise AssemblerError(
                    f"the insn before {tpc} falls through into the subprogram there (called"
                    f" from insn {call_pc})"
                )
        if self._num_pc:
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
        """Check the numeric jumps and calls (as in decoded code), on the bytes."""
        base = self._base
        total = self._len
        ops = base[::8]  # the opcode of each slot: a second ld_imm64 slot has opcode 0
        second: set[int] = set()
        p = ops.find(0x18)
        while p >= 0:
            second.add(p + 1)
            p = ops.find(0x18, p + 1)
        for pc in self._num_pc:
            op, _, off, imm = _SLOT.unpack_from(base, pc * 8)
            rel = off if op not in (0x06, 0x85, 0x18) else imm
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
            if op in (0x85, 0x18) and tgt > 0 and ops[tgt - 1] not in _NO_FALLTHROUGH:
                before = tgt - 2 if tgt - 1 in second else tgt - 1
                raise AssemblerError(
                    f"insn {before} falls through into the subprogram at insn {tgt}"
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
            if self._ref_pc:
                buf = bytearray(self._base)
                self._patch_refs(buf, maps, kfuncs)
                return bytes(buf)
            code = self._code = bytes(self._base)
        return code

    def _patch_refs(
        self,
        buf: bytearray,
        maps: Mapping[object, int | HasFileno] | None,
        kfuncs: Mapping[str, int | tuple[int, int]] | None,
    ) -> None:
        """Pack map fds and kfunc BTF ids into ``buf``."""
        cache: dict[int, int] = {}
        get = cache.get
        pack_imm = _IMM.pack_into
        for pc, ref in zip(self._ref_pc, self._ref_obj, strict=True):
            at = pc * 8
            if buf[at] == 0x85:
                btf_id, module = _resolve_kfunc(ref, kfuncs, pc)
                _OFF_IMM.pack_into(buf, at + 2, module, btf_id)
            else:
                key = id(ref)
                fd = get(key, -1)
                if fd < 0:
                    fd = cache[key] = _resolve_map(ref, maps, pc)
                pack_imm(buf, at + 4, fd)

    @property
    def references(self) -> list[tuple[int, Reference]]:
        """Map references still symbolic: ``(insn_index, map object or name)``, in order."""
        base = self._base
        return [
            (pc, ref)
            for pc, ref in zip(self._ref_pc, self._ref_obj, strict=True)
            if base[pc * 8] == 0x18
        ]

    def kfunc_references(self) -> list[tuple[int, str]]:
        """Kfunc calls by name: ``(insn_index, kfunc name)``; the loader resolves the names
        to BTF ids and passes them to :meth:`encode` as ``kfuncs``."""
        base = self._base
        return [
            (pc, ref)
            for pc, ref in zip(self._ref_pc, self._ref_obj, strict=True)
            if base[pc * 8] == 0x85 and isinstance(ref, str)
        ]

    @property
    def labels(self) -> dict[str, int]:
        """Every label (fragment labels qualified as ``name#n/label``) and its insn index."""
        return dict(zip(self._label_names, self._label_pcs, strict=True))

    def tag(self, code: bytes | None = None, algorithm: str = "sha256") -> bytes:
        """The 8-byte tag the kernel reports for this program (see :func:`program_tag`).

        Without ``code``, map fds are irrelevant to the tag, so references need no resolving:
        their immediates are zero (kfunc calls keep their ``off``, as the kernel's tag does).
        """
        if code is None:
            buf = bytearray(self._base)
            pack_imm = _IMM.pack_into
            for pc in self._ref_pc:
                pack_imm(buf, pc * 8 + 4, 0)
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
    pair = value if isinstance(value, tuple) else (value, 0)
    if not (
        len(pair) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in pair)
        and 0 <= pair[0] <= 0x7FFF_FFFF
        and 0 <= pair[1] <= 0x7FFF
    ):
        raise AssemblerError(
            f"kfunc {ref!r} (insn {pc}) resolved to {value!r}; want a BTF id (0..2**31-1) or"
            " (btf_id, fd_array index 0..32767)"
        )
    return pair[0], pair[1]


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
