"""Tracepoints: attach ``BPF_PROG_TYPE_TRACEPOINT`` programs, and read their field layout.

A tracepoint program gets a pointer to the event's record, laid out as the event's tracefs
``format`` file says. :func:`tracepoint_format` parses that file, so programs can be built
with offsets taken from the running kernel instead of hard-coded ones::

    fmt = tracepoint_format("syscalls", "sys_enter_openat")
    insns = [fmt["flags"].load(R2), ...]       # r2 = *(u64 *)(r1 + 32) on this kernel
    prog = ebpf.Program.load(ebpf.ProgramType.TRACEPOINT, insns)
    with attach_tracepoint(prog, "syscalls", "sys_enter_openat"):
        ...

The event directories come from tracefs. When it is not mounted and the process is root
(``CAP_SYS_ADMIN``), the library mounts it at ``/sys/kernel/tracing`` (falling back to
debugfs's ``/sys/kernel/debug/tracing``); otherwise the error names the command that fixes
it (``mount -t tracefs tracefs /sys/kernel/tracing``). See
:func:`ebpf.platform.require_tracefs`.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass

from .. import asm, errors
from .._elfsym import SymbolNotFoundError
from .._programs import Program
from .._types import ProgramType
from .perf_event import PerfEventLink, attach_perf_fd, check_program, tracefs_root, tracepoint_event

__all__ = [
    "TracepointField",
    "TracepointFormat",
    "attach_tracepoint",
    "parse_format",
    "tracepoint_format",
    "tracepoint_id",
]

_SIZES = {1: asm.B, 2: asm.H, 4: asm.W, 8: asm.DW}


@dataclass(frozen=True, slots=True)
class TracepointField:
    """One field of a tracepoint record (a ``field:`` line of the ``format`` file).

    ``type`` is the C type as written (``"const char *"``, ``"char"`` for ``char comm[16]``);
    ``array_len`` is the element count of a fixed array (``None`` if not an array, or if the
    kernel printed a symbolic length). ``dynamic`` is true for ``__data_loc``/``__rel_loc``
    fields: the record holds a u32 whose low 16 bits are the data's offset (from the record
    start, or from the end of this field for ``__rel_loc``) and high 16 bits its length.
    """

    name: str
    type: str
    offset: int
    size: int
    signed: bool
    array_len: int | None = None
    is_array: bool = False
    dynamic: str = ""  #: ``""``, ``"__data_loc"`` or ``"__rel_loc"``
    common: bool = False  #: one of the ``common_*`` fields every record starts with

    def load(self, dst: asm.Register, ctx: asm.Register = asm.R1) -> asm.Instruction:
        """``dst = *(uN *)(ctx + offset)``: load this field of the record ``ctx`` points to.

        For a ``__data_loc``/``__rel_loc`` field this loads the u32 locator.

        Only for fields of 1, 2, 4 or 8 bytes; the value is zero-extended (use
        :attr:`signed` to sign-extend it yourself).
        """
        size = _SIZES.get(self.size)
        if size is None or (self.is_array and not self.dynamic):
            raise ValueError(f"field {self.name!r} ({self.type}, {self.size} bytes) is not a "
                             "scalar that one load can read")
        return asm.load(size, dst, ctx, self.offset)


@dataclass(frozen=True, slots=True)
class TracepointFormat:
    """A parsed tracefs ``format`` file: the event's name, id and record layout."""

    name: str
    id: int
    fields: tuple[TracepointField, ...]
    print_fmt: str = ""
    category: str = ""

    def __getitem__(self, name: str) -> TracepointField:
        for f in self.fields:
            if f.name == name:
                return f
        close = difflib.get_close_matches(name, [f.name for f in self.fields], n=3)
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        raise KeyError(f"tracepoint {self.name!r} has no field {name!r}{hint}")

    def __contains__(self, name: object) -> bool:
        return any(f.name == name for f in self.fields)

    @property
    def event_fields(self) -> tuple[TracepointField, ...]:
        """The fields after the ``common_*`` header."""
        return tuple(f for f in self.fields if not f.common)

    @property
    def size(self) -> int:
        """Bytes of the fixed part of the record (up to the end of the last field)."""
        return max((f.offset + f.size for f in self.fields), default=0)


_FIELD_RE = re.compile(
    r"^\s*field:(?P<decl>.*?);\s*offset:(?P<offset>\d+);\s*size:(?P<size>\d+);"
    r"(?:\s*signed:(?P<signed>-?\d+);)?"
)
_ARRAY_RE = re.compile(r"^(?P<head>.*?)\s*\[(?P<len>[^\]]*)\]\s*$")


def _split_decl(decl: str, offset: int) -> tuple[str, str, int | None, bool, str]:
    """(name, type, array length, is array, dynamic kind) of a C field declaration."""
    decl = decl.strip()
    dynamic = ""
    for kw in ("__data_loc", "__rel_loc"):
        if decl.startswith(kw + " "):
            dynamic = kw
            decl = decl[len(kw) :].strip()
    array_len: int | None = None
    is_array = False
    m = _ARRAY_RE.match(decl)
    if m:
        is_array = True
        decl = m.group("head")
        n = m.group("len").strip()
        if n.isdigit():
            array_len = int(n)
    # The name is the trailing identifier; for "__data_loc char[] name" the brackets come
    # before it, so look again after taking the name.
    m2 = re.match(r"^(?P<type>.*?)(?P<name>[A-Za-z_]\w*)\s*$", decl)
    if not m2 or (not m2.group("type").strip() and not dynamic):
        raise errors.ParseError(f"cannot read the field declaration {decl!r}", offset)
    name = m2.group("name")
    ctype = m2.group("type").strip()
    m3 = _ARRAY_RE.match(ctype)
    if m3:  # "char[]" of a __data_loc field
        is_array = True
        ctype = m3.group("head").strip()
        n = m3.group("len").strip()
        if n.isdigit():
            array_len = int(n)
    return name, ctype, array_len, is_array, dynamic


def parse_format(text: str, *, category: str = "") -> TracepointFormat:
    """Parse the contents of ``events/<category>/<name>/format``.

    Fields before the first blank line of the ``format:`` block are the common header
    (``common_type``, ``common_pid``...). Raises :class:`~ebpf.errors.ParseError` (with the
    character offset) on text that is not a format file.
    """
    name = ""
    tp_id: int | None = None
    fields: list[TracepointField] = []
    print_fmt = ""
    in_format = False
    common = True
    pos = 0
    for line in text.splitlines(keepends=True):
        here = pos
        pos += len(line)
        stripped = line.strip()
        if line.startswith("name:"):
            name = line[5:].strip()
        elif line.startswith("ID:"):
            try:
                tp_id = int(line[3:].strip())
            except ValueError:
                raise errors.ParseError(f"bad ID line {stripped!r}", here) from None
        elif line.startswith("format:"):
            in_format = True
        elif line.startswith("print fmt:"):
            print_fmt = line[len("print fmt:") :].strip()
            in_format = False
        elif in_format:
            if not stripped:
                if fields:
                    common = False
                continue
            m = _FIELD_RE.match(line)
            if not m:
                raise errors.ParseError(f"bad field line {stripped!r}", here)
            fname, ctype, alen, is_arr, dyn = _split_decl(m.group("decl"), here)
            signed = m.group("signed")
            fields.append(TracepointField(
                name=fname, type=ctype, offset=int(m.group("offset")),
                size=int(m.group("size")), signed=signed is not None and int(signed) != 0,
                array_len=alen, is_array=is_arr, dynamic=dyn,
                common=common and fname.startswith("common_"),
            ))
        elif stripped and not name and tp_id is None:
            raise errors.ParseError(f"not a tracepoint format file: {stripped[:40]!r}", here)
    if tp_id is None:
        raise errors.ParseError("format file has no ID line", len(text))
    return TracepointFormat(name, tp_id, tuple(fields), print_fmt, category)


def _check_names(category: str, name: str, what: str) -> None:
    for part, label in ((category, "category"), (name, "name")):
        if not isinstance(part, str) or not part:
            raise ValueError(f"{what}: empty tracepoint {label}")
        if "/" in part or part in (".", "..") or "\0" in part:
            raise ValueError(f"{what}: invalid tracepoint {label} {part!r}")


def _event_dir(category: str, name: str, tracefs: str | os.PathLike[str] | None,
               what: str) -> str:
    _check_names(category, name, what)
    root = tracefs_root(tracefs)
    events = os.path.join(root, "events")
    path = os.path.join(events, category, name)
    if not os.path.isdir(path):
        suggestions: list[str] = []
        try:
            if os.path.isdir(os.path.join(events, category)):
                suggestions = [f"{category}/{n}" for n in difflib.get_close_matches(
                    name, os.listdir(os.path.join(events, category)), n=3)]
            else:
                suggestions = difflib.get_close_matches(category, os.listdir(events), n=3)
        except OSError:
            pass
        raise SymbolNotFoundError(f"{category}/{name}", events, suggestions, kind="tracepoint")
    return path


def tracepoint_id(category: str, name: str, *,
                  tracefs: str | os.PathLike[str] | None = None) -> int:
    """The perf id of tracepoint ``category/name`` (``events/<category>/<name>/id``)."""
    path = _event_dir(category, name, tracefs, "tracepoint_id")
    with open(os.path.join(path, "id")) as f:
        return int(f.read().strip())


def tracepoint_format(category: str, name: str, *,
                      tracefs: str | os.PathLike[str] | None = None) -> TracepointFormat:
    """Parse ``events/<category>/<name>/format`` of the running kernel."""
    path = _event_dir(category, name, tracefs, "tracepoint_format")
    with open(os.path.join(path, "format")) as f:
        return parse_format(f.read(), category=category)


def attach_tracepoint(program: Program, category: str, name: str, *, cookie: int = 0,
                      tracefs: str | os.PathLike[str] | None = None) -> PerfEventLink:
    """Run ``program`` (``BPF_PROG_TYPE_TRACEPOINT``) on every hit of ``category/name``.

    The program sees the record laid out as :func:`tracepoint_format` reports. It runs for
    every process on every CPU. ``cookie`` is returned by ``bpf_get_attach_cookie`` (needs
    the perf event link, kernel >= 5.15). Kernel: tracepoint programs >= 4.7; bpf_link
    >= 5.15, with a quiet fallback to ``PERF_EVENT_IOC_SET_BPF`` below that.

    Raises :class:`ValueError` for a program of another type,
    :class:`~ebpf._elfsym.SymbolNotFoundError` (a :class:`LookupError`) when the tracepoint
    does not exist, and :class:`~ebpf.errors.NotSupportedError` when tracefs is not mounted.
    """
    check_program(program, ProgramType.TRACEPOINT, what="attach_tracepoint")
    if cookie < 0:
        raise ValueError("attach_tracepoint: cookie must be a u64")
    tp_id = tracepoint_id(category, name, tracefs=tracefs)
    pfd = tracepoint_event(tp_id)
    return attach_perf_fd(program, pfd, cookie=cookie)
