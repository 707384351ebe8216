"""BTF ``func_info`` for programs with callbacks, built from the instructions alone.

A program that passes a subprogram's address to a helper (``asm.load_func``: ``bpf_loop``,
``bpf_for_each_map_elem``, timers, ``bpf_user_ringbuf_drain``, ``bpf_find_vma``) is
rejected without BTF ``func_info`` ("missing btf func_info"). The kernel only needs one
``FUNC`` per subprogram, at the subprogram's first instruction. :func:`build` finds the
subprograms (instruction 0, every ``BPF_PSEUDO_CALL`` target and every ``BPF_PSEUDO_FUNC``
target) and describes each as a static function of ``long`` arguments returning ``long``;
:meth:`ebpf.Program.load` calls :func:`for_program` when no BTF is given.

::

    blob, func_info = funcinfo.build(code)           # pure: bytes in, bytes out
    funcinfo.subprograms(code)                       # [0, 12, 30]

Everything but :func:`for_program` is pure.
"""

from __future__ import annotations

import re
import struct
import sys
from collections.abc import Mapping
from typing import Any

from ..errors import AssemblerError

__all__ = ["REC_SIZE", "FuncInfoBTF", "build", "for_program", "has_callbacks", "subprograms"]

REC_SIZE = 8  #: size of one ``struct bpf_func_info`` (insn_off, type_id)

_BTF_MAGIC = 0xEB9F
_KIND_INT, _KIND_FUNC, _KIND_FUNC_PROTO = 1, 12, 13
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MAX_PARAMS = 5


def _slots(code: bytes) -> list[tuple[int, int, int, int]]:
    if len(code) % 8:
        raise AssemblerError(f"program of {len(code)} bytes is not a multiple of 8")
    order = "<" if sys.byteorder == "little" else ">"
    fmt = struct.Struct(order + "BBhi")
    out = []
    for i in range(len(code) // 8):
        op, regs, off, imm = fmt.unpack_from(code, i * 8)
        src = (regs >> 4) if sys.byteorder == "little" else (regs & 0xF)
        out.append((op, src, off, imm))
    return out


def _targets(code: bytes) -> tuple[set[int], bool]:
    """Subprogram starts other than 0, and whether any is a callback (``PSEUDO_FUNC``)."""
    slots = _slots(code)
    starts: set[int] = set()
    callback = False
    n = len(slots)
    for i, (op, src, _off, imm) in enumerate(slots):
        target = None
        if op == 0x85 and src == 1:  # BPF_PSEUDO_CALL
            target = i + imm + 1
        elif op == 0x18 and src == 4:  # ld_imm64 BPF_PSEUDO_FUNC
            target = i + imm + 1
            callback = True
        if target is not None:
            if not 0 < target < n:
                raise AssemblerError(f"insn {i}: subprogram target {target} is outside the "
                                     f"program (0..{n - 1})")
            starts.add(target)
    return starts, callback


def subprograms(code: bytes) -> list[int]:
    """First instruction of every subprogram, in order (always starts with 0)."""
    starts, _ = _targets(code)
    return [0, *sorted(starts)]


def has_callbacks(code: bytes) -> bool:
    """True when the program takes a subprogram's address (``BPF_PSEUDO_FUNC``), which the
    kernel only accepts together with BTF func_info."""
    return _targets(code)[1]


class _Writer:
    def __init__(self) -> None:
        self.types: list[bytes] = []
        self.strings = bytearray(b"\0")
        self.names: dict[str, int] = {}

    def name(self, s: str) -> int:
        if s not in self.names:
            self.names[s] = len(self.strings)
            self.strings += s.encode() + b"\0"
        return self.names[s]

    def add(self, raw: bytes) -> int:
        self.types.append(raw)
        return len(self.types)

    def encode(self) -> bytes:
        types = b"".join(self.types)
        hdr = struct.pack("=HBBIIIII", _BTF_MAGIC, 1, 0, 24, 0, len(types), len(types),
                          len(self.strings))
        return hdr + types + bytes(self.strings)


def build(code: bytes, names: Mapping[int, str] | None = None, *,
          params: int = _MAX_PARAMS) -> tuple[bytes, bytes]:
    """BTF blob and ``func_info`` records (``REC_SIZE`` bytes each) for ``code``.

    ``names`` may name subprograms by first instruction (labels); names that are no C
    identifier, or repeat, become ``sub_<insn>`` (``main`` for instruction 0). Every
    function is static (``BTF_FUNC_STATIC``) with ``params`` ``long`` arguments: the
    verifier checks callback arguments from the helper's contract, not from these types.
    """
    if not 0 <= params <= _MAX_PARAMS:
        raise AssemblerError(f"funcinfo.build: params={params} is not in 0..5")
    starts = subprograms(code)
    w = _Writer()
    long_id = w.add(struct.pack("=III", w.name("long"), _KIND_INT << 24, 8)
                    + struct.pack("=I", (1 << 24) | 64))
    proto = struct.pack("=III", 0, (_KIND_FUNC_PROTO << 24) | params, long_id)
    proto += b"".join(struct.pack("=II", w.name(f"a{i}"), long_id) for i in range(params))
    proto_id = w.add(proto)
    used: set[str] = set()
    info = bytearray()
    for pc in starts:
        want = (names or {}).get(pc, "")
        if not _NAME.match(want) or want in used:
            want = "main" if pc == 0 and "main" not in used else f"sub_{pc}"
        used.add(want)
        fid = w.add(struct.pack("=III", w.name(want), _KIND_FUNC << 24, proto_id))
        info += struct.pack("=II", pc, fid)
    return w.encode(), bytes(info)


class FuncInfoBTF:
    """The loaded BTF and func_info of one program load; closes the BTF when dropped or
    closed (the program keeps its own reference once loaded)."""

    __slots__ = ("func_info", "handle", "rec_size")

    def __init__(self, handle: Any, func_info: bytes) -> None:
        self.handle = handle
        self.func_info = func_info
        self.rec_size = REC_SIZE

    @property
    def fd(self) -> int:
        return int(self.handle.fileno())

    def close(self) -> None:
        self.handle.close()

    def __del__(self) -> None:
        h = getattr(self, "handle", None)
        if h is not None:
            h.close()


def _label_names(source: Any) -> dict[int, str]:
    labels = getattr(source, "labels", None)
    if not isinstance(labels, Mapping):
        return {}
    by_pc: dict[int, str] = {}
    for name, pc in labels.items():
        by_pc.setdefault(int(pc), str(name))
    return by_pc


def for_program(code: bytes, source: Any = None) -> FuncInfoBTF | None:
    """Load the BTF a callback-using program needs, or None if it uses no callback.

    ``source`` (an :class:`ebpf.asm.Instructions`) lends its labels as function names.
    """
    if not has_callbacks(code):
        return None
    from .handle import BTFHandle

    blob, info = build(code, _label_names(source))
    return FuncInfoBTF(BTFHandle.load(blob), info)
