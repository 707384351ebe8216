"""Collection: the maps, programs and global variables of a spec, created in the kernel.

This is the kernel-dependent step after the pure parse (:mod:`ebpf.elf`): BTF is loaded,
maps are created (and pinned or reused), global data written (``.rodata`` frozen),
instructions patched with map fds, kfunc/ksym BTF ids and CO-RE values from the kernel's
BTF, and programs loaded::

    with ebpf.load("prog.bpf.o") as coll:
        coll.programs["count_xdp"].test_run(frame)
        coll.maps["counts"][1]
        coll.variables["packets"].get()
"""

from __future__ import annotations

import contextlib
import errno as _errno
import os
import struct
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, final

from . import errors
from ._maps import Map
from ._programs import Program
from ._spec import CollectionSpec, MapSpec, PinType, ProgramSpec, ReferenceKind, VariableSpec
from ._types import MapType, ProgramType

__all__ = ["Collection", "Variable", "load"]

_PSEUDO_MAP_FD, _PSEUDO_MAP_VALUE, _PSEUDO_BTF_ID = 1, 2, 3
_PSEUDO_KFUNC_CALL = 2
_POISON_KFUNC_CALL = 2002000000  # libbpf's POISON_CALL_KFUNC_BASE
_MAP_IN_MAP = (MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS)


@final
class Variable:
    """A global variable of a loaded collection, read and written through the data map's
    shared memory (``BPF_F_MMAPABLE``) or element lookups.

    ``get()`` returns an ``int`` for integer/enum (and, without BTF, 1/2/4/8-byte) variables,
    else ``bytes``; ``set(value)`` takes what :meth:`VariableSpec.encode` takes.
    ``.rodata`` variables are read-only once loaded.
    """

    __slots__ = ("_map", "readonly", "spec")

    def __init__(self, spec: VariableSpec, map_: Map, readonly: bool) -> None:
        self.spec = spec
        self._map = map_
        self.readonly = readonly

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def size(self) -> int:
        return self.spec.size

    def _mm(self) -> Any:
        if not self._map.flags & 0x400:  # BPF_F_MMAPABLE
            return None
        return self._map.mmap(writable=not self.readonly)

    def raw(self) -> bytes:
        """The variable's bytes."""
        off, size = self.spec.offset, self.spec.size
        mm = self._mm()
        if mm is not None:
            return bytes(mm[off:off + size])
        return self._value()[off:off + size]

    def _value(self) -> bytes:
        """The data map's one value as bytes. The map's codec may decode it into something
        else (an 8-byte value is an ``int``): re-encode through the same codec."""
        return self._map.value_codec.encode(self._map.lookup(0))

    def get(self) -> int | bytes:
        raw = self.raw()
        if self._is_int():
            return int.from_bytes(raw, "little" if _native() == "<" else "big",
                                  signed=self._signed())
        return raw

    def set(self, value: Any) -> None:
        if self.readonly:
            raise PermissionError(f"variable {self.name!r} is in read-only {self.spec.map}")
        raw = self.spec.encode(value, _native())
        off = self.spec.offset
        mm = self._mm()
        if mm is not None:
            mm[off:off + len(raw)] = raw
            return
        cur = bytearray(self._value())
        cur[off:off + len(raw)] = raw
        self._map[0] = self._map.value_codec.decode(bytes(cur))

    def _resolved(self) -> Any:
        t = self.spec.type
        if t is None:
            return None
        from .btf.types import Var

        if isinstance(t, Var):
            t = t.type
        return t.spec.resolve(t)

    def _is_int(self) -> bool:
        from .btf.types import Enum, Enum64, Int

        t = self._resolved()
        if t is None:
            return self.size in (1, 2, 4, 8)
        return isinstance(t, (Int, Enum, Enum64))

    def _signed(self) -> bool:
        t = self._resolved()
        return bool(getattr(t, "signed", False))

    def __repr__(self) -> str:
        return f"<Variable {self.name!r} in {self.spec.map} size={self.size}>"


def _native() -> str:
    import sys

    return "<" if sys.byteorder == "little" else ">"


@final
class Collection:
    """Loaded maps (``.maps``), programs (``.programs``) and global variables
    (``.variables``) of a :class:`CollectionSpec`. A context manager: closing it closes
    every map and program it holds (the kernel keeps those still referenced elsewhere,
    e.g. attached programs or pins)."""

    __slots__ = ("btf_error", "maps", "programs", "variables")

    def __init__(self, maps: dict[str, Map], programs: dict[str, Program],
                 variables: dict[str, Variable], btf_error: BaseException | None = None
                 ) -> None:
        self.maps = maps
        self.programs = programs
        self.variables = variables
        #: Why the object's BTF could not be loaded (programs then load without func/line
        #: info), or ``None``.
        self.btf_error = btf_error

    @classmethod
    def load(cls, spec: CollectionSpec, *, kernel_btf: Any = None,
             pin_path: str | os.PathLike[str] | None = None, log_level: int = 0,
             programs: Iterable[str] | None = None) -> Collection:
        """Create everything in ``spec``.

        ``kernel_btf`` (an :class:`ebpf.btf.Spec`) is what CO-RE, kfunc and ksym references
        and BTF attach targets resolve against; by default the running kernel's, read only
        when needed. Maps with ``pinning=BY_NAME`` are pinned as ``pin_path/<name>`` and an
        existing pin there is reused (``pin_path`` is then required). ``programs``, when
        given, names the programs to load (names or a mapping's keys); otherwise those
        with ``autoload`` (not ``SEC("?...")`` ones) load. ``.rodata`` and ``.kconfig``
        are filled and frozen before any program loads, so the verifier sees their
        values as constants. Any failure closes what
        was created and re-raises; a rejected program raises
        :class:`~ebpf.errors.VerifierError` with the log.
        """
        if programs is None:
            wanted = {n: p for n, p in spec.programs.items() if p.autoload}
        else:
            unknown = [n for n in programs if n not in spec.programs]
            if unknown:
                raise KeyError(f"no program(s) {unknown} in this spec "
                               f"(programs: {sorted(spec.programs)})")
            wanted = {n: spec.programs[n] for n in programs}
        kbtf = kernel_btf
        if kbtf is None and _needs_kernel_btf(wanted.values()):
            from . import btf as _btf

            kbtf = _btf.load_kernel()
        maps: dict[str, Map] = {}
        progs: dict[str, Program] = {}
        handle: Any = None
        btf_error: BaseException | None = None
        reused: set[str] = set()
        pinned: list[str] = []  # pins this load created, removed again if it fails
        try:
            # Read first (a parsed spec lists its variables and fixes its BTF up at the
            # first read): a ParseError there is cleaned up as any other failure.
            spec_vars = spec.variables
            if spec.btf_blob is not None:
                from .btf.handle import BTFHandle

                try:
                    handle = BTFHandle.load(spec.btf_blob)
                except errors.SyscallError as e:
                    btf_error = e
            for name, ms0 in spec.maps.items():
                ms = ms0
                if name == ".kconfig" and not ms.contents:
                    ms = ms.replace(contents=((0, kconfig_values(spec)),))
                maps[name], created_pin = _create_map(ms, handle, pin_path)
                if created_pin is not None:
                    pinned.append(created_pin)
                elif ms.pinning == PinType.BY_NAME and ms.freeze:
                    reused.add(name)
                if name not in reused:
                    _fill_map(maps[name], ms, maps, None)
                    if ms.freeze:
                        # Frozen before any program loads (as libbpf does): the verifier
                        # then reads .rodata/.kconfig as constants and prunes dead code.
                        maps[name].freeze()
            for name, ps in wanted.items():
                progs[name] = _load_program(spec, ps, maps, handle, kbtf, log_level)
            for name, ms in spec.maps.items():
                if ms.type == MapType.PROG_ARRAY and ms.contents:
                    _fill_map(maps[name], ms, maps, progs)
        except BaseException:
            for p in progs.values():
                p.close()
            for path in pinned:
                with contextlib.suppress(OSError):
                    os.unlink(path)
            for m in maps.values():
                m.close()
            raise
        finally:
            if handle is not None:
                handle.close()
        variables: dict[str, Variable] = {}
        for vname, vs in spec_vars.items():
            if vs.map in maps:
                variables[vname] = Variable(vs, maps[vs.map], spec.maps[vs.map].freeze)
        return cls(maps, progs, variables, btf_error)

    def close(self) -> None:
        """Close every program and map (idempotent)."""
        for p in self.programs.values():
            p.close()
        for m in self.maps.values():
            m.close()

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<Collection maps={sorted(self.maps)} programs={sorted(self.programs)}>")


def load(path: str | os.PathLike[str], **kwargs: Any) -> Collection:
    """Parse the BPF object at ``path`` and load it: ``Collection.load(
    CollectionSpec.from_file(path), **kwargs)``."""
    return Collection.load(CollectionSpec.from_file(path), **kwargs)


def _needs_kernel_btf(progs: Any) -> bool:
    for p in progs:
        if p.core_relos or (p.attach_to and _attach_btf(p)):
            return True
        if any(r.kind in (ReferenceKind.KFUNC, ReferenceKind.KSYM) for r in p.references):
            return True
    return False


def _attach_btf(p: ProgramSpec) -> bool:
    from .elf.sections import match_section

    m = match_section(p.section)
    if int(p.type) == ProgramType.STRUCT_OPS and p.attach_type is not None:
        return True  # ebpf.bpf.struct_ops: attach_to is the ops struct, attach_type its member
    return bool(m and m[0].attach_btf)


# --- maps ----------------------------------------------------------------------------------

class PinPathError(errors.BPFError, ValueError):
    """A map is pinned by name (``pinning=BY_NAME``) but no ``pin_path`` was given."""


def _spec_error(ms: MapSpec, what: str, fix: str) -> errors.BPFError:
    return errors.BPFError(f"map {ms.name!r}: {what}; set it before loading: "
                           f"spec = spec.with_map({ms.name!r}, {fix})")


def _create_map(ms: MapSpec, handle: Any, pin_path: str | os.PathLike[str] | None
                ) -> tuple[Map, str | None]:
    """The map, and the path of the pin this call created (``None``: not pinned here)."""
    path: str | None = None
    if ms.pinning == PinType.BY_NAME:
        if pin_path is None:
            raise PinPathError(f"map {ms.name!r} is pinned by name: pass pin_path=")
        path = os.path.join(os.fspath(pin_path), ms.name)
        if os.path.exists(path):
            old = Map.from_pin(path)
            if (int(old.type), old.key_size, old.value_size, old.max_entries) != (
                    int(ms.type), ms.key_size or old.key_size,
                    ms.value_size or old.value_size, ms.max_entries or old.max_entries):
                old.close()
                raise errors.BPFError(f"pinned map {path} does not match {ms.name!r}")
            return old, None
    inner: Map | None = None
    try:
        if ms.type in _MAP_IN_MAP:
            if ms.inner is None:
                raise _spec_error(ms, "a map-in-map needs an inner map definition",
                                  "inner=MapSpec(...)")
            inner, _ = _create_map(ms.inner.replace(pinning=PinType.NONE), handle, None)
        if ms.max_entries is None and ms.type not in _SIZED_BY_DEFAULT:
            raise _spec_error(ms, "max_entries is not set (the object leaves it to "
                              "userspace)", "max_entries=N")
        kw: dict[str, Any] = dict(
            key_size=ms.key_size, value_size=ms.value_size, max_entries=ms.max_entries,
            flags=ms.flags, name=ms.name, inner_map=inner, map_extra=ms.map_extra,
            numa_node=ms.numa_node)
        m: Map
        try:
            if handle is not None and ms.btf_value_type_id:
                try:
                    m = Map.create(ms.type, btf=handle, btf_key_type_id=ms.btf_key_type_id,
                                   btf_value_type_id=ms.btf_value_type_id, **kw)
                except errors.SyscallError as e:
                    if e.errno not in (_errno.EINVAL, _errno.ENOTSUP, errors.ENOTSUPP):
                        raise
                    m = Map.create(ms.type, **kw)  # the kernel refused the BTF: go without
            else:
                m = Map.create(ms.type, **kw)
        except (TypeError, ValueError) as e:
            if isinstance(e, errors.BPFError):
                raise
            raise _spec_error(ms, str(e), "key_size=, value_size=, max_entries=, flags=") \
                from None
    finally:
        if inner is not None:
            inner.close()
    if path is not None:
        try:
            m.pin(path)
        except BaseException:
            m.close()
            raise
    return m, path


#: Map types whose max_entries has a default (``Map.create``) or is 0 by design.
_SIZED_BY_DEFAULT = frozenset({
    MapType.PERF_EVENT_ARRAY, MapType.SK_STORAGE, MapType.INODE_STORAGE,
    MapType.TASK_STORAGE, MapType.CGRP_STORAGE, MapType.CGROUP_STORAGE,
    MapType.PERCPU_CGROUP_STORAGE})


def _fill_map(m: Map, ms: MapSpec, maps: Mapping[str, Map],
              progs: Mapping[str, Program] | None) -> None:
    is_prog_array = ms.type == MapType.PROG_ARRAY
    if is_prog_array != (progs is not None):
        return
    for key, value in ms.contents:
        if isinstance(value, str):
            target = progs.get(value) if progs is not None else maps.get(value)
            if target is None:
                if progs is not None:
                    continue  # program not loaded (a subset was asked for)
                raise errors.BPFError(f"map {ms.name!r} refers to unknown map {value!r}")
            m[key] = target.fileno()
        elif isinstance(value, bytes) and len(value) < m.value_size:
            m[key] = value + bytes(m.value_size - len(value))
        else:
            m[key] = value


# --- __kconfig -----------------------------------------------------------------------------

_TRISTATE = {"y": 1, "m": 2, "n": 0}


def _kconfig_known(name: str) -> int | None:
    """Values libbpf computes itself rather than reading from the config file."""
    from . import platform

    if name == "LINUX_KERNEL_VERSION":
        v = platform.kernel_version()
        return (v.major << 16) | (v.minor << 8) | min(v.patch, 255)
    if name == "LINUX_HAS_BPF_COOKIE":
        from . import features
        from ._uapi import _generated_types as _t

        try:
            return int(features.have_helper(ProgramType.TRACEPOINT,
                                            int(_t.bpf_func_id.BPF_FUNC_get_attach_cookie))
                       is None)
        except errors.BPFError:
            return 0
    if name == "LINUX_HAS_SYSCALL_WRAPPER":
        return int(_has_syscall_wrapper())
    return None


def _has_syscall_wrapper() -> bool:
    """Whether syscalls enter through ``__<arch>_sys_*`` wrappers (pt_regs arguments)."""
    from . import platform

    prefix = {"x86_64": "__x64_", "i386": "__ia32_", "aarch64": "__arm64_",
              "s390x": "__s390x_", "riscv64": "__riscv_", "loongarch64": "__loongarch64_",
              "ppc64le": "__powerpc64_", "arm": "__arm_"}.get(platform.ARCH, "")
    if not prefix:
        return False
    want = f" {prefix}sys_bpf"
    try:
        with open("/proc/kallsyms") as f:
            return any(line.rstrip().endswith(want) for line in f)
    except OSError:
        return False


def _kconfig_type(vs: VariableSpec) -> tuple[str, int]:
    """('bool'|'tristate'|'char'|'int'|'uint'|'chars', size) of a kconfig extern."""
    from .btf.types import Array, Enum, Int, Var

    t = vs.type
    if t is None:
        return ("uint", vs.size)
    if isinstance(t, Var):
        t = t.type
    t = t.spec.resolve(t)
    if isinstance(t, Enum) and t.name == "libbpf_tristate":
        return ("tristate", vs.size)
    if isinstance(t, Int):
        if t.is_bool:
            return ("bool", 1)
        if t.is_char and t.size == 1:
            return ("char", 1)
        return ("int" if t.signed else "uint", t.size)
    if isinstance(t, Array):
        elem = t.spec.resolve(t.elem_type)
        if isinstance(elem, Int) and elem.size == 1:
            return ("chars", t.nelems)
    raise errors.BPFError(f"__kconfig extern {vs.name!r} has a type libbpf does not support "
                          f"({type(t).__name__}): use bool, tristate, char, an integer or "
                          "a char array")


def _kconfig_value(vs: VariableSpec, raw: str | None, bo: str) -> bytes:
    kind, size = _kconfig_type(vs)
    order: Any = "little" if bo == "<" else "big"
    name = vs.name
    if raw is None:
        if vs.weak:
            return bytes(vs.size)
        raise errors.BPFError(f"__kconfig extern {name!r} has no value on this kernel and is "
                              "not __weak (declare it 'extern ... __kconfig __weak' to get 0)")
    if kind in ("bool", "tristate", "char"):
        if raw not in _TRISTATE:
            if kind == "char" and raw.startswith('"'):
                raise errors.BPFError(f"__kconfig {name!r} is a string ({raw}): declare it "
                                      "as a char array")
            raise errors.BPFError(f"__kconfig {name!r}={raw} is not y/n/m")
        if kind == "bool" and raw == "m":
            raise errors.BPFError(f"__kconfig {name!r}=m does not fit a bool: declare it "
                                  "enum libbpf_tristate")
        v = ord(raw) if kind == "char" else _TRISTATE[raw]
        return v.to_bytes(size, order).ljust(vs.size, b"\0")
    if kind == "chars":
        if len(raw) < 2 or raw[0] != '"' or raw[-1] != '"':
            raise errors.BPFError(f"__kconfig {name!r}={raw} is not a string")
        text = raw[1:-1].encode()
        if len(text) + 1 > size:
            raise errors.BPFError(f"__kconfig {name!r} is {len(text) + 1} bytes with its NUL, "
                                  f"its array {size}: make the array larger")
        return text.ljust(vs.size, b"\0")
    if raw in _TRISTATE:
        raise errors.BPFError(f"__kconfig {name!r}={raw} is y/n/m, not an integer: "
                              "declare it bool or enum libbpf_tristate")
    try:
        v = int(raw, 0)
    except ValueError:
        raise errors.BPFError(f"__kconfig {name!r}={raw} is not an integer") from None
    try:
        return v.to_bytes(size, order, signed=kind == "int").ljust(vs.size, b"\0")
    except OverflowError:
        raise errors.BPFError(f"__kconfig {name!r}={raw} does not fit its {size}-byte "
                              "type") from None


def kconfig_values(spec: CollectionSpec, config: Mapping[str, str] | None = None) -> bytes:
    """Contents of ``spec``'s ``.kconfig`` map for the running kernel, as libbpf fills it:
    ``LINUX_KERNEL_VERSION``, ``LINUX_HAS_BPF_COOKIE``, ``LINUX_HAS_SYSCALL_WRAPPER`` and
    ``CONFIG_*`` options (from ``config``, else :func:`ebpf.platform.kernel_config`);
    unknown ``__weak`` externs are 0, unknown strong ones a :class:`~ebpf.errors.BPFError`.
    """
    ms = spec.maps[".kconfig"]
    buf = bytearray(ms.value_size or 0)
    cfg = config
    for vs in spec.variables.values():
        if vs.map != ".kconfig":
            continue
        raw: str | None = None
        if vs.name.startswith("CONFIG_"):
            if cfg is None:
                from . import platform

                cfg = platform.kernel_config()
                if cfg is None and not vs.weak:
                    raise errors.BPFError(
                        f"__kconfig extern {vs.name!r}: no kernel config to read it from "
                        f"(/proc/config.gz or /boot/config-{os.uname().release}); "
                        "declare it __weak to get 0")
                cfg = cfg or {}
            raw = cfg.get(vs.name)
            if raw is None and not vs.weak:
                raw = "n" if _kconfig_type(vs)[0] in ("bool", "tristate") else None
        else:
            known = _kconfig_known(vs.name)
            if known is None and not vs.weak:
                raise errors.BPFError(f"__kconfig extern {vs.name!r} is not a value libbpf "
                                      "knows (LINUX_KERNEL_VERSION, LINUX_HAS_BPF_COOKIE, "
                                      "LINUX_HAS_SYSCALL_WRAPPER, CONFIG_*)")
            if known is not None:
                raw = str(known)
                if _kconfig_type(vs)[0] in ("bool", "tristate"):
                    raw = "y" if known else "n"
        buf[vs.offset:vs.offset + vs.size] = _kconfig_value(vs, raw, spec.byteorder)
    return bytes(buf)


# --- programs ------------------------------------------------------------------------------

def _set(insns: bytearray, i: int, bo: str, *, src: int | None = None, imm: int | None = None,
         off: int | None = None) -> None:
    if i * 8 + 8 > len(insns):
        raise errors.BPFError(f"reference to instruction {i} past the end of the program")
    if src is not None:
        regs = insns[i * 8 + 1]
        insns[i * 8 + 1] = ((regs & 0x0F) | (src << 4)) if bo == "<" else (
            (regs & 0xF0) | src)
    if off is not None:
        struct.pack_into(bo + "h", insns, i * 8 + 2, off)
    if imm is not None:
        struct.pack_into(bo + "I", insns, i * 8 + 4, imm & 0xFFFFFFFF)


def _kernel_id(kbtf: Any, name: str, kind: Any, what: str) -> int:
    try:
        return int(kbtf.find(name, kind).id)
    except KeyError:
        raise errors.NotSupportedError(f"{what} {name!r}", detail="not in kernel BTF") from None


def kallsyms_address(name: str) -> int | None:
    """Address of kernel symbol ``name`` in ``/proc/kallsyms`` (``None``: not there or
    hidden by ``kernel.kptr_restrict``)."""
    want = f" {name}"
    try:
        with open("/proc/kallsyms") as f:
            for raw in f:
                line = raw.split("\t", 1)[0].rstrip("\n")  # drop a module's "\t[mod]"
                if line.endswith(want):
                    return int(line.split(" ", 1)[0], 16) or None
    except (OSError, ValueError):
        return None
    return None


def relocate(spec: CollectionSpec, ps: ProgramSpec, maps: Mapping[str, Any],
             kernel_btf: Any) -> bytes:
    """``ps``'s instructions with every reference resolved: map fds (objects with
    ``fileno()``), kfunc and ksym BTF ids and CO-RE values from ``kernel_btf``."""
    bo = ps.byteorder
    insns = bytearray(ps.instructions)
    for r in ps.references:
        i = r.index
        if r.kind is ReferenceKind.MAP or r.kind is ReferenceKind.MAP_VALUE:
            m = maps.get(r.name)
            if m is None:
                raise errors.BPFError(f"program {ps.name!r} uses map {r.name!r}, which "
                                      "the collection does not have")
            if r.kind is ReferenceKind.MAP:
                _set(insns, i, bo, src=_PSEUDO_MAP_FD, imm=m.fileno())
                _set(insns, i + 1, bo, imm=0)
            else:
                _set(insns, i, bo, src=_PSEUDO_MAP_VALUE, imm=m.fileno())
                _set(insns, i + 1, bo, imm=r.offset)
        elif r.kind is ReferenceKind.KFUNC:
            from .btf.types import Func

            is_ld = insns[i * 8] == 0x18 if i * 8 < len(insns) else False
            try:
                func_id = _kernel_id(kernel_btf, r.name, Func, "kfunc")
            except errors.NotSupportedError:
                if not r.weak:
                    raise
                if is_ld:  # bpf_ksym_exists(kfunc) of a missing __weak kfunc: 0
                    _set(insns, i, bo, src=0, imm=0)
                    _set(insns, i + 1, bo, imm=0)
                else:  # an invalid helper call the verifier refuses only if reachable
                    _set(insns, i, bo, src=0, off=0, imm=_POISON_KFUNC_CALL)
                continue
            if is_ld:  # the kfunc's address (bpf_ksym_exists)
                _set(insns, i, bo, src=_PSEUDO_BTF_ID, imm=func_id)
                _set(insns, i + 1, bo, imm=0)
            else:
                _set(insns, i, bo, src=_PSEUDO_KFUNC_CALL, off=0, imm=func_id)
        elif r.kind is ReferenceKind.KSYM:
            from .btf.types import Var

            try:
                var_id = _kernel_id(kernel_btf, r.name, Var, "kernel variable")
            except errors.NotSupportedError:
                if not r.weak:
                    raise
                _set(insns, i, bo, src=0, imm=0)  # missing __weak ksym: NULL
                _set(insns, i + 1, bo, imm=0)
                continue
            _set(insns, i, bo, src=_PSEUDO_BTF_ID, imm=var_id)
            _set(insns, i + 1, bo, imm=0)
        elif r.kind is ReferenceKind.KSYM_ADDR:
            addr = kallsyms_address(r.name)
            if addr is None and not r.weak:
                raise errors.NotSupportedError(
                    f"kernel symbol {r.name!r}",
                    detail="not in /proc/kallsyms (an untyped __ksym needs its address; "
                    "data symbols need CONFIG_KALLSYMS_ALL)")
            addr = addr or 0
            _set(insns, i, bo, src=0, imm=addr & 0xFFFFFFFF)
            _set(insns, i + 1, bo, imm=addr >> 32)
        else:
            raise errors.NotSupportedError(f"__kconfig extern {r.name!r}",
                                           detail="not supported by this loader")
    if ps.core_relos:
        from .btf.core import apply_relocations

        if spec.btf is None:
            raise errors.BPFError(f"program {ps.name!r} has CO-RE relocations but no BTF")
        apply_relocations(insns, ps.core_relos, spec.btf, kernel_btf, byteorder=bo)
    return bytes(insns)


def _load_program(spec: CollectionSpec, ps: ProgramSpec, maps: Mapping[str, Map],
                  handle: Any, kbtf: Any, log_level: int) -> Program:
    try:
        return _load_program_inner(spec, ps, maps, handle, kbtf, log_level)
    except errors.VerifierError as e:
        where = source_line(spec, ps, e.insn)
        if where:
            e.source = where
            e.detail = f"{e.detail} [at {where}]"
        raise


def source_line(spec: CollectionSpec, ps: ProgramSpec, insn: int | None) -> str:
    """``"file.c:42: <source text>"`` of instruction ``insn`` of ``ps`` from its
    ``.BTF.ext`` line info (the nearest record at or before it), or ``""``."""
    if insn is None or not ps.line_info or spec.btf is None:
        return ""
    best: tuple[int, int, int, int] | None = None
    for rec in ps.line_info:
        if rec[0] <= insn and (best is None or rec[0] >= best[0]):
            best = rec
    if best is None:
        return ""
    _i, file_off, line_off, line_col = best
    try:
        name = os.path.basename(spec.btf.string(file_off))
        text = spec.btf.string(line_off).strip()
    except (KeyError, ValueError, IndexError):
        return ""
    where = f"{name}:{line_col >> 10}"
    return f"{where}: {text}" if text else where


def _load_program_inner(spec: CollectionSpec, ps: ProgramSpec, maps: Mapping[str, Map],
                        handle: Any, kbtf: Any, log_level: int) -> Program:
    if not int(ps.type):
        raise errors.BPFError(
            f"program {ps.name!r} in section {ps.section!r} has no program type (unknown "
            f"SEC name): set one before loading, spec = spec.with_program({ps.name!r}, "
            "type=ebpf.ProgramType....)")
    code = relocate(spec, ps, maps, kbtf)
    kw: dict[str, Any] = {}
    if handle is not None and ps.func_info:
        fsz, lsz = spec.func_info_rec_size, spec.line_info_rec_size
        kw["prog_btf_fd"] = handle.fileno()
        kw["func_info"] = b"".join(struct.pack("=II", i, t).ljust(fsz, b"\0")
                                   for i, t in ps.func_info)
        kw["func_info_rec_size"] = fsz
        if ps.line_info:
            kw["line_info"] = b"".join(struct.pack("=IIII", *li).ljust(lsz, b"\0")
                                       for li in ps.line_info)
            kw["line_info_rec_size"] = lsz
    if ps.attach_to and _attach_btf(ps):
        kw["attach_to"] = ps.attach_to
    pt: ProgramType | int = ps.type
    return Program.load(pt, code, license=ps.license, name=ps.name,
                        expected_attach_type=ps.attach_type, flags=ps.flags,
                        kern_version=ps.kern_version, log_level=log_level, **kw)

