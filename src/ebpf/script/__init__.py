"""A declarative BPF script: create maps, load programs, attach them, and tear everything
down in reverse order when the block ends, also on error (clj-ebpf's ``with-bpf-script``).

::

    from ebpf.script import Script, map_, program, attach

    with Script(
        maps=[map_("counts", MapType.ARRAY, key_size=4, value_size=8, max_entries=1)],
        programs=[program("count", ProgramType.TRACEPOINT, build_insns)],
        attach=[attach("count", attach_tracepoint, "syscalls", "sys_enter_getppid")],
    ) as s:
        os.getppid()
        s.maps["counts"][0]

``insns`` of a program is instructions (map references by name, ``asm.load_map(R1,
"counts")``, resolve against the script's maps) or a callable given the maps dict.
Attachments call ``fn(program, *args, **kwargs)`` and close what it returns. Pins are
removed at teardown. Imperative use (``s.add_map``, ``s.add_program``, ``s.attach``,
``s.pin``) inside the block is torn down the same way.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from .. import errors
from .._maps import Map
from .._programs import Program
from .._types import MapType, ProgramType
from .tail_calls import TailCallChain

__all__ = ["AttachSpec", "MapDecl", "ProgramDecl", "Script", "ScriptError", "TailCallChain",
           "attach", "map_", "program"]


class ScriptError(errors.BPFError):
    """A script step failed; everything made before it has been torn down. The step's
    own error is ``__cause__``."""


@dataclass(frozen=True)
class MapDecl:
    name: str
    type: MapType | int
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    pin: str | None = None


@dataclass(frozen=True)
class ProgramDecl:
    name: str
    type: ProgramType | int
    insns: Any
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    pin: str | None = None


@dataclass(frozen=True)
class AttachSpec:
    program: str
    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)


def map_(name: str, type: MapType | int, *, pin: str | None = None, **kwargs: Any) -> MapDecl:
    """A map to create with ``Map.create(type, **kwargs)`` (``name`` is also its kernel
    name unless ``kwargs`` give one)."""
    return MapDecl(name, type, kwargs, pin)


def program(name: str, type: ProgramType | int, insns: Any, *, pin: str | None = None,
            **kwargs: Any) -> ProgramDecl:
    """A program to load with ``Program.load(type, insns, **kwargs)``."""
    return ProgramDecl(name, type, insns, kwargs, pin)


def attach(program: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> AttachSpec:
    """Attach program ``program`` with ``fn(prog, *args, **kwargs)`` (e.g.
    ``attach_tracepoint``, ``attach_xdp``, ``attach_cgroup``)."""
    return AttachSpec(program, fn, args, kwargs)


def _unlinker(path: str) -> Callable[[], None]:
    def undo() -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    return undo


class Script:
    """Maps, programs, attachments and pins with one lifetime (see the module docs)."""

    def __init__(self, *, maps: Sequence[MapDecl] = (), programs: Sequence[ProgramDecl] = (),
                 attach: Sequence[AttachSpec] = ()) -> None:
        self._decl = (tuple(maps), tuple(programs), tuple(attach))
        self._stack = contextlib.ExitStack()
        self.maps: dict[str, Map] = {}
        self.programs: dict[str, Program] = {}
        self.links: list[Any] = []
        self.pins: list[str] = []
        self._open = False

    # --- imperative steps ---------------------------------------------------------------
    def add_map(self, name: str, type: MapType | int, *, pin: str | None = None,
                **kwargs: Any) -> Map:
        if name in self.maps:
            raise ScriptError(f"script: map {name!r} declared twice")
        kwargs.setdefault("name", name[:15])
        m = self._stack.enter_context(Map.create(type, **kwargs))
        self.maps[name] = m
        if pin is not None:
            self.pin(m, pin)
        return m

    def add_program(self, name: str, type: ProgramType | int, insns: Any, *,
                    pin: str | None = None, **kwargs: Any) -> Program:
        if name in self.programs:
            raise ScriptError(f"script: program {name!r} declared twice")
        if callable(insns):
            insns = insns(self.maps)
        kwargs.setdefault("maps", self.maps)
        kwargs.setdefault("name", name[:15])
        prog = self._stack.enter_context(Program.load(type, insns, **kwargs))
        self.programs[name] = prog
        if pin is not None:
            self.pin(prog, pin)
        return prog

    def attach(self, program: str | Program, fn: Callable[..., Any], *args: Any,
               **kwargs: Any) -> Any:
        prog = self.programs[program] if isinstance(program, str) else program
        link = fn(prog, *args, **kwargs)
        self._stack.callback(link.close)
        self.links.append(link)
        return link

    def pin(self, obj: Map | Program, path: str | os.PathLike[str]) -> None:
        """Pin ``obj`` at ``path``; the pin is removed at teardown."""
        p = os.fspath(path)
        obj.pin(p)
        self._stack.callback(_unlinker(p))
        self.pins.append(p)

    def add(self, closeable: Any) -> Any:
        """Tear down anything with ``close()`` with the script."""
        self._stack.callback(closeable.close)
        return closeable

    # --- lifetime -----------------------------------------------------------------------
    def _step(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BaseException as e:
            self.close()
            if isinstance(e, Exception):
                raise ScriptError(f"script: {what} failed: {e}") from e
            raise

    def _missing(self, name: str) -> None:
        raise KeyError(f"no program {name!r} in the script")

    def __enter__(self) -> Script:
        if self._open:
            raise ScriptError("script: already running")
        self._open = True
        maps, programs, attachments = self._decl
        for m in maps:
            self._step(f"map {m.name!r}", self.add_map, m.name, m.type, pin=m.pin,
                       **dict(m.kwargs))
        for p in programs:
            self._step(f"program {p.name!r}", self.add_program, p.name, p.type, p.insns,
                       pin=p.pin, **dict(p.kwargs))
        for a in attachments:
            if a.program not in self.programs:
                self._step(f"attach {a.program!r}", self._missing, a.program)
            self._step(f"attach {a.program!r}", self.attach, a.program, a.fn, *a.args,
                       **dict(a.kwargs))
        return self

    def close(self) -> None:
        """Detach, unpin, close: everything in reverse order of creation (idempotent)."""
        try:
            self._stack.close()
        finally:
            self.maps.clear()
            self.programs.clear()
            self.links.clear()
            self.pins.clear()
            self._open = False

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
