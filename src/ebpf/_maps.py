"""Maps: create, open, read, write, iterate, batch, per-CPU, pin, freeze, mmap.

:class:`Map` is dict-like over a kernel map: ``m[k]``, ``m[k] = v``, ``del m[k]``, ``k in m``,
``get``, ``keys``/``values``/``items``, ``update``, ``pop``, ``setdefault``, ``clear``. Keys and
values are encoded by a codec (:mod:`ebpf._codec`) chosen from the ``key=``/``value=`` types,
and checked against the map's sizes before any syscall. Per-CPU maps read and write one value
per *possible* CPU, each slot ``round_up(value_size, 8)`` bytes, as the kernel does.

Concurrency: a :class:`Map` may be used from several threads. Each element operation takes a
pre-built syscall attribute block and its key/value buffers from a small pool (``list.pop`` /
``list.append``, atomic in CPython) and returns it afterwards; a thread that finds the pool
empty builds a fresh block, which then joins the pool. The hot path therefore takes no lock
and allocates nothing.

Queue and stack maps are :class:`QueueMap` (push/pop/peek, blocking ``pop_wait``), bloom
filters :class:`BloomFilter` (add / ``in``). :meth:`Map.create` and the ``from_*``
constructors return the right class for the map's type.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno as _errno
import mmap as _mmap
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from . import errors
from . import platform as _platform
from ._codec import (
    Codec,
    FdCodec,
    LPMKeyCodec,
    PerCPUCodec,
    PerCPUValues,
    RawCodec,
    StructCodec,
    make_codec,
    round_up,
)
from ._sys import attrs as _attrs
from ._sys import commands
from ._sys import syscall as _sc
from ._sys.fd import FD, KernelObject, adopt
from ._types import MapFlags, MapType, UpdateFlags
from ._uapi import _generated_types as _t

__all__ = [
    "BloomFilter",
    "Map",
    "MapEntry",
    "MapInfo",
    "PerCPUValues",
    "QueueMap",
    "ctype_from_btf",
]

_C = _t.bpf_cmd
_LOOKUP = int(_C.BPF_MAP_LOOKUP_ELEM)
_UPDATE = int(_C.BPF_MAP_UPDATE_ELEM)
_DELETE = int(_C.BPF_MAP_DELETE_ELEM)
_NEXT_KEY = int(_C.BPF_MAP_GET_NEXT_KEY)
_LOOKUP_AND_DELETE = int(_C.BPF_MAP_LOOKUP_AND_DELETE_ELEM)
_FREEZE = int(_C.BPF_MAP_FREEZE)
_LOOKUP_BATCH = int(_C.BPF_MAP_LOOKUP_BATCH)
_LOOKUP_AND_DELETE_BATCH = int(_C.BPF_MAP_LOOKUP_AND_DELETE_BATCH)
_UPDATE_BATCH = int(_C.BPF_MAP_UPDATE_BATCH)
_DELETE_BATCH = int(_C.BPF_MAP_DELETE_BATCH)

# Element operations use the syscall layer's GIL-holding fast path (``fast_syscall``: no
# argtypes, errno read right after a failure while the GIL is still held); failures go to its
# slow path (EINTR retry, errno -> exception).
_raw_syscall = _sc.fast_syscall
_get_errno = _sc.fast_errno
_NR_BPF = _sc._NR_BPF
_fail = _sc._fail


_ELEM_SIZE = ctypes.sizeof(_t.MapElemAttr)
_BATCH_SIZE = ctypes.sizeof(_t.MapBatchAttr)
_ENOENT = _errno.ENOENT

M = TypeVar("M", bound="Map")

_PERCPU = frozenset({MapType.PERCPU_HASH, MapType.PERCPU_ARRAY, MapType.LRU_PERCPU_HASH,
                     MapType.PERCPU_CGROUP_STORAGE})
_ARRAYS = frozenset({MapType.ARRAY, MapType.PERCPU_ARRAY})
_HASHES = frozenset({MapType.HASH, MapType.PERCPU_HASH, MapType.LRU_HASH,
                     MapType.LRU_PERCPU_HASH})
#: Types whose kernel implementation has the batch commands (5.6+).
_BATCHABLE = _HASHES | _ARRAYS
#: Values written as fds and read back as ids (or cookies).
_FD_VALUES = frozenset({MapType.PROG_ARRAY, MapType.PERF_EVENT_ARRAY, MapType.CGROUP_ARRAY,
                        MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS, MapType.SOCKMAP,
                        MapType.SOCKHASH, MapType.XSKMAP, MapType.REUSEPORT_SOCKARRAY})
#: Maps whose keys are fds of the object the storage hangs off.
_STORAGE = frozenset({MapType.SK_STORAGE, MapType.INODE_STORAGE, MapType.TASK_STORAGE,
                      MapType.CGRP_STORAGE})
_KEYLESS = frozenset({MapType.QUEUE, MapType.STACK, MapType.BLOOM_FILTER, MapType.RINGBUF,
                      MapType.USER_RINGBUF, MapType.ARENA})
_INDEXED = frozenset({MapType.ARRAY, MapType.PERCPU_ARRAY, MapType.PROG_ARRAY,
                      MapType.PERF_EVENT_ARRAY, MapType.CGROUP_ARRAY, MapType.ARRAY_OF_MAPS,
                      MapType.DEVMAP, MapType.CPUMAP, MapType.XSKMAP, MapType.SOCKMAP,
                      MapType.REUSEPORT_SOCKARRAY, MapType.STACK_TRACE})


def _as_map_type(t: MapType | int) -> MapType | int:
    try:
        return MapType(t)
    except ValueError:
        return int(t)


@dataclass(frozen=True, slots=True)
class MapInfo:
    """What the kernel reports about a map (``BPF_OBJ_GET_INFO_BY_FD``, ``bpf_map_info``)."""

    type: MapType | int
    id: int
    key_size: int
    value_size: int
    max_entries: int
    flags: int
    name: str
    ifindex: int = 0
    btf_id: int = 0
    btf_key_type_id: int = 0
    btf_value_type_id: int = 0
    btf_vmlinux_value_type_id: int = 0
    map_extra: int = 0

    @classmethod
    def from_fd(cls, fd: int) -> MapInfo:
        info = commands.obj_info(fd, _t.BpfMapInfo())
        return cls(
            type=_as_map_type(info.type),
            id=info.id,
            key_size=info.key_size,
            value_size=info.value_size,
            max_entries=info.max_entries,
            flags=info.map_flags,
            name=bytes(info.name).split(b"\0", 1)[0].decode("utf-8", "replace"),
            ifindex=info.ifindex,
            btf_id=info.btf_id,
            btf_key_type_id=info.btf_key_type_id,
            btf_value_type_id=info.btf_value_type_id,
            btf_vmlinux_value_type_id=info.btf_vmlinux_value_type_id,
            map_extra=info.map_extra,
        )


# --- BTF-typed keys and values of opened maps ----------------------------------------------

def _load_map_btf(btf_id: int) -> Any:
    """The :class:`ebpf.btf.Spec` of the BTF object ``btf_id`` (what a map was created with)."""
    from . import btf as _btf

    with commands.fd_by_id(commands.ObjKind.BTF, btf_id, "BTF") as fd:
        info = commands.obj_info(fd.fileno(), _t.BpfBtfInfo())
        size = info.btf_size
        if info.kernel_btf:
            return _btf.load_kernel()
        buf = ctypes.create_string_buffer(size)
        info2 = _t.BpfBtfInfo()
        info2.btf = ctypes.addressof(buf)
        info2.btf_size = size
        commands.obj_info(fd.fileno(), info2)
        return _btf.Spec.from_bytes(buf.raw[: info2.btf_size])


_CT_INTS = {(1, False): ctypes.c_uint8, (2, False): ctypes.c_uint16, (4, False): ctypes.c_uint32,
            (8, False): ctypes.c_uint64, (1, True): ctypes.c_int8, (2, True): ctypes.c_int16,
            (4, True): ctypes.c_int32, (8, True): ctypes.c_int64}


def ctype_from_btf(spec: Any, type_id: int, _depth: int = 0) -> Any:
    """A ctypes type with the layout of BTF type ``type_id`` (structs keep their member
    names and offsets; char arrays become ``c_char`` arrays, read as ``bytes``), or None when
    the type cannot be expressed (bitfields, unknown kinds)."""
    from . import btf as _btf

    if _depth > 32:
        return None
    t = spec.resolve(type_id)
    if isinstance(t, _btf.Int):
        if t.is_bool and t.size == 1:
            return ctypes.c_bool
        if t.size == 1 and (t.is_char or t.name == "char"):
            return ctypes.c_char  # char arrays read as (NUL-trimmed) bytes: comm, names
        return _CT_INTS.get((t.size, t.signed))
    if isinstance(t, _btf.Enum | _btf.Enum64):
        return _CT_INTS.get((t.size, bool(getattr(t, "signed", False))))
    if isinstance(t, _btf.Pointer):
        return ctypes.c_uint64
    if isinstance(t, _btf.Float):
        return {4: ctypes.c_float, 8: ctypes.c_double}.get(t.size)
    if isinstance(t, _btf.Array):
        elem = ctype_from_btf(spec, t.elem_type_id, _depth + 1)
        return None if elem is None else elem * t.nelems
    if isinstance(t, _btf.Struct | _btf.Union):
        fields: list[tuple[str, Any]] = []
        pos = 0
        union = isinstance(t, _btf.Union)
        for i, m in enumerate(t.members):
            if m.bitfield_size or m.offset % 8:
                return None
            mt = ctype_from_btf(spec, m.type_id, _depth + 1)
            if mt is None:
                return None
            off = m.offset // 8
            if not union:
                if off < pos:
                    return None
                if off > pos:
                    fields.append((f"_pad{i}", ctypes.c_uint8 * (off - pos)))
                pos = off + ctypes.sizeof(mt)
            fields.append((m.name or f"_anon{i}", mt))
        if union:
            pos = max((ctypes.sizeof(f[1]) for f in fields), default=0)
        if pos < t.size:
            fields.append(("_pad_end" if not union else "_size", ctypes.c_uint8 * (t.size - pos)))
        base: Any = ctypes.Union if union else ctypes.Structure
        cls: Any = type(t.name or f"anon_{t.id}", (base,), {"_pack_": 1, "_fields_": fields})
        return cls if ctypes.sizeof(cls) == t.size else None
    return None


def _btf_types(info: MapInfo) -> tuple[Any, Any]:
    """Struct/union key and value types from the map's BTF (None where it has none, where
    the type is a scalar - the default codecs handle those - or where it cannot be read)."""
    if not info.btf_id or not (info.btf_key_type_id or info.btf_value_type_id):
        return None, None
    from . import btf as _btf

    try:
        spec = _load_map_btf(info.btf_id)
        out: list[Any] = []
        for tid in (info.btf_key_type_id, info.btf_value_type_id):
            ct = None
            if tid and isinstance(spec.resolve(tid), _btf.Struct | _btf.Union):
                ct = ctype_from_btf(spec, tid)
            out.append(ct)
        return out[0], out[1]
    except (errors.BPFError, OSError, ValueError, KeyError):
        return None, None


# --- BTF for the maps that need it ----------------------------------------------------------

def _load_btf(blob: bytes) -> FD:
    buf = ctypes.create_string_buffer(blob, len(blob))
    log = ctypes.create_string_buffer(4096)
    attr = _t.BtfLoadAttr()
    attr.btf = ctypes.addressof(buf)
    attr.btf_size = len(blob)
    try:
        return _sc.bpf_fd(_C.BPF_BTF_LOAD, attr, keep=buf, what="BTF")
    except errors.SyscallError:
        attr.btf_log_buf = ctypes.addressof(log)
        attr.btf_log_size = len(log)
        attr.btf_log_level = 1
        try:
            return _sc.bpf_fd(_C.BPF_BTF_LOAD, attr, keep=(buf, log), what="BTF")
        except errors.SyscallError as e:
            raise errors.VerifierError("BPF_BTF_LOAD", e.errno or 0, log.raw) from None


def value_btf(value_size: int, *, spin_lock: bool = False) -> tuple[FD, int, int]:
    """Load BTF describing ``int`` keys and a ``value_size``-byte struct value.

    With ``spin_lock`` the value starts with a ``struct bpf_spin_lock`` (what ``BPF_F_LOCK``
    needs). Returns (BTF fd, key type id, value type id).
    """
    from .btf.writer import BTFWriter  # only these maps need BTF: map creation stays light

    if spin_lock and value_size < 4:
        raise ValueError("a value with a spin lock needs at least 4 bytes")
    w = BTFWriter()
    int_id = w.int_("int", 4, signed=True)
    members: list[tuple[str, int, int]] = []
    start = 0
    if spin_lock:
        members.append(("lock", w.struct("bpf_spin_lock", [("val", int_id, 0)], size=4), 0))
        start = 4
    if value_size > start:
        data = w.array(w.int_("unsigned char", 1), value_size - start,
                       index_type=int_id)
        members.append(("data", data, start * 8))
    value_id = w.struct("value", members, size=value_size)
    return _load_btf(w.encode()), int_id, value_id


# --- per-thread syscall blocks -----------------------------------------------------------------

class _Slot:
    """One pre-built ``MapElemAttr`` with its key and value buffers."""

    __slots__ = ("attr", "kbuf", "kmv", "look", "ref", "upd", "vaddr", "vbuf", "vmv")

    def __init__(self, fd: int, ksize: int, vsize: int, kfmt: str | None,
                 vfmt: str | None) -> None:
        self.kbuf = bytearray(max(ksize, 1))
        self.vbuf = bytearray(max(vsize, 1))
        kc = (ctypes.c_char * len(self.kbuf)).from_buffer(self.kbuf)
        vc = (ctypes.c_char * len(self.vbuf)).from_buffer(self.vbuf)
        attr = _t.MapElemAttr()
        attr.map_fd = fd
        attr.key = ctypes.addressof(kc) if ksize else 0
        attr.value = self.vaddr = ctypes.addressof(vc)
        self.attr = attr
        self.ref = ctypes.byref(attr)
        # fast_syscall's arguments for the two hot commands, as tuples ctypes takes as they
        # are (``_raw_syscall(*s.look)``): no argument tuple packed per call.
        self.look = (_NR_BPF, _LOOKUP, self.ref, _ELEM_SIZE)
        self.upd = (_NR_BPF, _UPDATE, self.ref, _ELEM_SIZE)
        kraw: Any = memoryview(self.kbuf)
        vraw: Any = memoryview(self.vbuf)
        self.kmv: Any = kraw.cast(kfmt) if kfmt else None
        self.vmv: Any = vraw.cast(vfmt) if vfmt else None


class _ClosedPool:
    """Stands in for the slot pool once the map is closed: every operation fails cleanly."""

    def pop(self) -> _Slot:
        raise ValueError("operation on a closed map")

    def append(self, s: _Slot) -> None:
        pass


_CLOSED_POOL: Any = _ClosedPool()
#: "No key" / "no value" for :meth:`Map._op` (None is a value callers may pass by mistake).
_NONE: Any = object()


def _poll_sleep(deadline: float | None, delay: float) -> float:
    """Sleep for the polling loops (the kernel has no wakeup for map changes); returns the next
    delay, or -1 when the deadline has passed."""
    now = time.monotonic()
    if deadline is not None:
        if now >= deadline:
            return -1.0
        delay = min(delay, deadline - now)
    time.sleep(delay)
    return min(delay * 2, 0.05)


def _fileno(obj: Any) -> int:
    if isinstance(obj, int):
        return obj
    return int(obj.fileno())


class Map(KernelObject):
    """A BPF map: a kernel object holding keys and values, shared with BPF programs.

    Create one with :meth:`create`, or open an existing one with :meth:`from_pin`,
    :meth:`from_id` or :meth:`from_fd`. Every map is a context manager and has ``fileno()``,
    so it can be referenced from instructions (``asm.load_map(R1, m)``).
    """

    __slots__ = (
        "__weakref__",
        "_batch_ok",
        "_fd",
        "_kc",
        "_kfast",
        "_mmap",
        "_pin_path",
        "_pool",
        "_vc",
        "_vfast",
        "flags",
        "key_size",
        "max_entries",
        "name",
        "type",
        "value_size",
    )

    def __init__(self, fd: FD, info: MapInfo, key: Any = None, value: Any = None) -> None:
        self._fd = fd
        self.type: MapType | int = info.type
        self.key_size = info.key_size
        self.value_size = info.value_size
        self.max_entries = info.max_entries
        self.flags = info.flags
        self.name = info.name
        self._pin_path: str | None = None
        self._mmap: _mmap.mmap | None = None
        self._batch_ok = self.type in _BATCHABLE
        self._kc = self._key_codec(key)
        self._vc = self._value_codec(value)
        self._kfast = self._kc.fmt is not None
        self._vfast = self._vc.fmt is not None
        self._pool: Any = [self._new_slot()]
        if type(self) is Map and self._kfast and self._vfast:
            self.__class__ = _ScalarMap  # same object, branch-free element operations

    # --- codecs ---------------------------------------------------------------------------
    def _key_codec(self, spec: Any) -> Codec:
        ks = self.key_size
        if spec is None:
            if self.type in _STORAGE:
                return FdCodec(ks, "key") if ks in (4, 8) else RawCodec(ks, "key")
            if self.type == MapType.LPM_TRIE and ks >= 5:
                return LPMKeyCodec(ks)
            if self.type in (MapType.CGROUP_STORAGE, MapType.PERCPU_CGROUP_STORAGE) and (
                    ks == 16):
                return StructCodec("=QI4x", "key")  # struct bpf_cgroup_storage_key
        return make_codec(spec, ks, "key")

    def _value_codec(self, spec: Any) -> Codec:
        vs = self.value_size
        if spec is None and self.type in _FD_VALUES and vs in (4, 8):
            inner: Codec = FdCodec(vs)
        elif spec is None and self.type in (MapType.DEVMAP, MapType.DEVMAP_HASH,
                                            MapType.CPUMAP) and vs == 8:
            inner = StructCodec("=Ii")
        elif spec is None and self.type == MapType.STACK_TRACE and vs % 8 == 0:
            inner = make_codec(ctypes.c_uint64 * (vs // 8), vs)
        else:
            inner = make_codec(spec, vs, "value")
        if self.type in _PERCPU:
            return PerCPUCodec(inner, _platform.possible_cpus())
        return inner

    @property
    def key_codec(self) -> Codec:
        """How keys are encoded and decoded."""
        return self._kc

    @property
    def value_codec(self) -> Codec:
        """How values are encoded and decoded (a :class:`PerCPUCodec` for per-CPU maps)."""
        return self._vc

    def _new_slot(self) -> _Slot:
        if self._fd.closed:
            raise ValueError("operation on a closed map")
        ksize = 0 if self.type in _KEYLESS else self.key_size
        slot = _Slot(self._fd.fileno(), ksize, self._vc.size, self._kc.fmt, self._vc.fmt)
        # Element operations hold the GIL through the syscall: a close() sets the slot's
        # map_fd to -1 before the fd number can be reused (never a write into another map).
        self._fd.bind(slot.attr, "map_fd")
        return slot

    def _call(self, cmd: int, attr: Any, keep: object = None) -> int:
        """``bpf(cmd, attr)`` with ``attr.map_fd`` set to this map's fd, held open for the
        call (the GIL is released: a concurrent close() must not free the number)."""
        fd = self._fd.acquire()
        try:
            attr.map_fd = fd
            return _sc.bpf(cmd, attr, keep=keep)
        finally:
            self._fd.release()

    # --- construction -----------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        map_type: MapType | int,
        *,
        key_size: int | None = None,
        value_size: int | None = None,
        max_entries: int | None = None,
        flags: MapFlags | int = 0,
        name: str = "",
        key: Any = None,
        value: Any = None,
        inner_map: Map | None = None,
        map_extra: int = 0,
        numa_node: int | None = None,
        ifindex: int = 0,
        btf: Any = None,
        btf_key_type_id: int = 0,
        btf_value_type_id: int = 0,
        btf_vmlinux_value_type_id: int = 0,
        spin_lock: bool = False,
    ) -> Map:
        """Create a map (``BPF_MAP_CREATE``); returns :class:`Map`, :class:`QueueMap` or
        :class:`BloomFilter` depending on the type.

        Sizes may come from ``key=``/``value=`` types instead of ``key_size``/``value_size``;
        given both, they must agree. Defaults fill in what a type fixes: 4-byte indexes for
        arrays, fd-sized values for prog/map/perf-event/socket arrays, the page-multiple size
        of ring buffers, ``BPF_F_NO_PREALLOC`` for LPM tries and storage maps, one slot per
        possible CPU for ``PERF_EVENT_ARRAY``. Storage maps (sk/task/inode/cgrp) get the BTF
        they need generated and loaded here; ``spin_lock=True`` does the same for a value
        that begins with a ``struct bpf_spin_lock`` (for ``UpdateFlags.LOCK``).

        ``inner_map`` is the template for ``ARRAY_OF_MAPS``/``HASH_OF_MAPS``. ``btf`` (an fd
        or an object with ``fileno()``) with the type ids describes keys and values to the
        kernel.
        """
        mt = _as_map_type(map_type)
        kcodec = make_codec(key, key_size, "key") if key is not None else None
        vcodec = make_codec(value, value_size, "value") if value is not None else None
        ks = kcodec.size if kcodec is not None else key_size
        vs = vcodec.size if vcodec is not None else value_size
        ks, vs, me, flags = _defaults(mt, ks, vs, max_entries, int(flags))
        if me is None:
            raise TypeError(f"max_entries is required for {_type_name(mt)} maps")
        keep: list[Any] = []
        attr = _t.MapCreateAttr()
        _attrs.check(attr, "map_type", mt)
        _attrs.fill(attr, key_size=ks, value_size=vs, max_entries=me, map_flags=flags,
                    map_extra=map_extra, map_ifindex=ifindex,
                    btf_key_type_id=btf_key_type_id, btf_value_type_id=btf_value_type_id,
                    btf_vmlinux_value_type_id=btf_vmlinux_value_type_id)
        if numa_node is not None:
            _attrs.check(attr, "numa_node", numa_node)
            attr.map_flags |= _t.BPF_F_NUMA_NODE
        raw_name = _attrs.object_name(name)
        ctypes.memmove(ctypes.addressof(attr) + _t.MapCreateAttr.map_name.offset, raw_name,
                       len(raw_name))
        if mt in (MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS):
            if inner_map is None:
                raise TypeError(f"{_type_name(mt)} needs inner_map=<a map of the inner type>")
            attr.inner_map_fd = inner_map.fileno()
        elif inner_map is not None:
            raise TypeError("inner_map is only for ARRAY_OF_MAPS and HASH_OF_MAPS")
        btf_fd: FD | None = None
        try:
            if btf is not None:
                attr.btf_fd = _fileno(btf)
                attr.btf_key_type_id = btf_key_type_id
                attr.btf_value_type_id = btf_value_type_id
            elif mt in _STORAGE or spin_lock:
                btf_fd, kid, vid = value_btf(vs, spin_lock=spin_lock)
                attr.btf_fd = btf_fd.fileno()
                attr.btf_key_type_id = kid
                attr.btf_value_type_id = vid
            elif btf_vmlinux_value_type_id:
                # The kernel wants *some* program BTF next to a vmlinux value type.
                btf_fd, _, _ = value_btf(4)
                attr.btf_fd = btf_fd.fileno()
            attr.btf_vmlinux_value_type_id = btf_vmlinux_value_type_id
            fd = _sc.bpf_fd(_C.BPF_MAP_CREATE, attr, keep=keep, what="map")
        finally:
            if btf_fd is not None:
                btf_fd.close()
        info = MapInfo(type=mt, id=0, key_size=ks, value_size=vs, max_entries=me,
                       flags=attr.map_flags, name=raw_name.decode())
        try:
            return _class_for(mt)(fd, info, kcodec if kcodec is not None else None,
                                  vcodec if vcodec is not None else None)
        except BaseException:
            fd.close()
            raise

    @classmethod
    def from_fd(cls, fd: int | FD, *, key: Any = None, value: Any = None) -> Map:
        """Adopt a map fd (an int is duplicated, an :class:`FD` is taken over); type and sizes
        are read from the kernel. ``key``/``value`` types are checked against them; when not
        given and the map carries BTF describing a struct or union, keys/values decode to
        ctypes structures built from it (:func:`ctype_from_btf`)."""
        owned = adopt(fd, "map")
        try:
            commands.expect_kind(owned.fileno(), "map", f"fd {owned.fileno()}")
            info = MapInfo.from_fd(owned.fileno())
            if (key is None or value is None) and info.type not in _STORAGE | _PERCPU:
                bkey, bvalue = _btf_types(info)
                key = bkey if key is None else key
                value = bvalue if value is None else value
            return _class_for(info.type)(owned, info, key, value)
        except BaseException:
            owned.close()
            raise

    @classmethod
    def from_pin(cls, path: str | os.PathLike[str], *, readonly: bool = False,
                 key: Any = None, value: Any = None) -> Map:
        """Open a map pinned on a bpffs (``BPF_OBJ_GET``)."""
        flags = _t.BPF_F_RDONLY if readonly else 0
        m = cls.from_fd(commands.obj_get(path, flags, what="map"), key=key, value=value)
        m._pin_path = os.fspath(path)
        return m

    @classmethod
    def from_id(cls, map_id: int, *, key: Any = None, value: Any = None) -> Map:
        """Open a map by its kernel id (``BPF_MAP_GET_FD_BY_ID``)."""
        return cls.from_fd(commands.fd_by_id(commands.ObjKind.MAP, map_id, "map"),
                           key=key, value=value)

    # --- object protocol (fd, fileno, closed, context manager: KernelObject) -----------------
    def close(self) -> None:
        """Release the map's fd (the kernel frees the map once nothing else holds it)."""
        self._pool = _CLOSED_POOL
        if self._mmap is not None:
            with contextlib.suppress(BufferError):  # views still exported: it lives on
                self._mmap.close()
            self._mmap = None
        self._fd.close()

    def __repr__(self) -> str:
        t = self.type.name if isinstance(self.type, MapType) else self.type
        state = "closed" if self.closed else f"fd={self._fd.fileno()}"
        cls = "Map" if isinstance(self, _ScalarMap) else type(self).__name__
        return (f"<{cls} {t} {self.name!r} key_size={self.key_size} "
                f"value_size={self.value_size} max_entries={self.max_entries} {state}>")

    def __bool__(self) -> bool:
        return True  # never count the entries just to test truth

    def info(self) -> MapInfo:
        """Fresh metadata from the kernel."""
        return MapInfo.from_fd(self._fd.fileno())

    @property
    def id(self) -> int:
        """The map's kernel id."""
        return self.info().id

    # --- single elements (the hot path) -----------------------------------------------------
    def __getitem__(self, key: Any) -> Any:
        pool = self._pool
        try:
            s = pool.pop()
        except IndexError:
            s = self._new_slot()
        try:
            if self._kfast:
                try:
                    s.kmv[0] = key
                except (TypeError, ValueError):
                    self._kc.encode_into(key, s.kbuf)
            else:
                self._kc.encode_into(key, s.kbuf)
            if _raw_syscall(*s.look) < 0:
                _fail(_LOOKUP, s.attr, _ELEM_SIZE, _get_errno())
            if self._vfast:
                return s.vmv[0]
            return self._vc.decode(s.vbuf)
        finally:
            pool.append(s)

    def __setitem__(self, key: Any, value: Any) -> None:
        pool = self._pool
        try:
            s = pool.pop()
        except IndexError:
            s = self._new_slot()
        try:
            if self._kfast:
                try:
                    s.kmv[0] = key
                except (TypeError, ValueError):
                    self._kc.encode_into(key, s.kbuf)
            else:
                self._kc.encode_into(key, s.kbuf)
            if self._vfast:
                try:
                    s.vmv[0] = value
                except (TypeError, ValueError):
                    self._vc.encode_into(value, s.vbuf)
            else:
                self._vc.encode_into(value, s.vbuf)
            if _raw_syscall(*s.upd) < 0:
                _fail(_UPDATE, s.attr, _ELEM_SIZE, _get_errno())
        finally:
            pool.append(s)

    def __delitem__(self, key: Any) -> None:
        self.delete(key)

    def _op(self, cmd: int, key: Any, value: Any = _NONE, flags: int = 0,
            missing_ok: bool = False) -> Any:
        """Run one element command with the slot's buffers; returns the slot (still out of the
        pool: the caller must give it back) or None when ``missing_ok`` and ENOENT."""
        pool = self._pool
        try:
            s = pool.pop()
        except IndexError:
            s = self._new_slot()
        try:
            if key is not _NONE:
                self._kc.encode_into(key, s.kbuf)
            if value is not _NONE:
                self._vc.encode_into(value, s.vbuf)
            s.attr.flags = flags
            if cmd == _DELETE:  # the kernel wants every attr byte after `key` zero
                s.attr.value = 0
            try:
                if _raw_syscall(_NR_BPF, cmd, s.ref, _ELEM_SIZE) < 0:
                    err = _get_errno()
                    if missing_ok and err == _ENOENT:
                        pool.append(s)
                        return None
                    if err == _ENOENT and cmd == _UPDATE:  # BPF_EXIST on a missing key
                        raise errors.KeyNotFoundError("BPF_MAP_UPDATE_ELEM", err)
                    _fail(cmd, s.attr, _ELEM_SIZE, err)
            finally:
                s.attr.flags = 0
                s.attr.value = s.vaddr
        except BaseException:
            pool.append(s)
            raise
        return s

    def _done(self, s: _Slot, decode: bool = True) -> Any:
        try:
            return self._vc.decode(s.vbuf) if decode else None
        finally:
            self._pool.append(s)

    def lookup(self, key: Any, *, flags: UpdateFlags | int = 0) -> Any:
        """The value at ``key``; raises :class:`KeyError` when absent. ``flags`` may be
        ``UpdateFlags.LOCK`` to read under the value's spin lock."""
        if not flags:
            return self[key]
        s = self._op(_LOOKUP, key, flags=int(flags))
        assert s is not None
        return self._done(s)

    def get(self, key: Any, default: Any = None) -> Any:
        """The value at ``key``, or ``default`` (no exception is built on a miss)."""
        pool = self._pool
        try:
            s = pool.pop()
        except IndexError:
            s = self._new_slot()
        try:
            if self._kfast:
                try:
                    s.kmv[0] = key
                except (TypeError, ValueError):
                    self._kc.encode_into(key, s.kbuf)
            else:
                self._kc.encode_into(key, s.kbuf)
            if _raw_syscall(*s.look) < 0:
                err = _get_errno()
                if err == _ENOENT:
                    return default
                _fail(_LOOKUP, s.attr, _ELEM_SIZE, err)
            if self._vfast:
                return s.vmv[0]
            return self._vc.decode(s.vbuf)
        finally:
            pool.append(s)

    def __contains__(self, key: Any) -> bool:
        s = self._op(_LOOKUP, key, missing_ok=True)
        if s is None:
            return False
        self._pool.append(s)
        return True

    def put(self, key: Any, value: Any, flags: UpdateFlags | int = 0) -> None:
        """Write one element with explicit ``flags``: ``UpdateFlags.NOEXIST`` (raises
        :class:`~ebpf.errors.KeyExistsError` if present), ``EXIST`` (raises
        :class:`KeyError` if absent), ``LOCK`` (under the value's spin lock)."""
        s = self._op(_UPDATE, key, value, int(flags))
        assert s is not None
        self._pool.append(s)

    def update(self, *args: Any, flags: UpdateFlags | int = 0, **kwargs: Any) -> None:
        """``update(key, value)`` writes one element (like ``m[key] = value`` with ``flags``);
        ``update(mapping_or_pairs)`` writes many, in batches where the kernel supports it
        (``BPF_MAP_UPDATE_BATCH``), one by one otherwise."""
        if len(args) == 2 and not kwargs:
            self.put(args[0], args[1], flags)
            return
        if len(args) > 1:
            raise TypeError(f"update expected (key, value) or one mapping, got {len(args)} "
                            "arguments")
        pairs: list[tuple[Any, Any]] = []
        if args:
            src = args[0]
            if isinstance(src, Mapping):
                pairs.extend(src.items())
            elif hasattr(src, "keys"):
                pairs.extend((k, src[k]) for k in src.keys())  # noqa: SIM118
            else:
                pairs.extend(src)
        if kwargs:
            raise TypeError("map keys are not strings; pass a mapping")
        if not pairs:
            return
        if self._batch_ok and not int(flags) & ~_t.BPF_F_LOCK:  # batches take LOCK only
            keys = self._kc.encode_many([k for k, _ in pairs])
            values = self._vc.encode_many([v for _, v in pairs])
            try:
                self.update_batch(keys, values, flags=flags)
                return
            except _BatchUnsupported:
                pass
        for k, v in pairs:
            self.put(k, v, flags)

    def delete(self, key: Any) -> None:
        """Remove ``key``; raises :class:`KeyError` when absent."""
        s = self._op(_DELETE, key)
        assert s is not None
        self._pool.append(s)

    def pop(self, key: Any, *default: Any) -> Any:
        """Remove ``key`` and return its value (atomically with
        ``BPF_MAP_LOOKUP_AND_DELETE_ELEM`` on hash maps, kernel >= 5.14)."""
        if len(default) > 1:
            raise TypeError("pop expected at most 2 arguments")
        if self.type in _HASHES:
            try:
                s = self._op(_LOOKUP_AND_DELETE, key, missing_ok=True)
            except errors.SyscallError as e:
                if e.errno not in (_errno.EINVAL, _errno.EOPNOTSUPP, errors.ENOTSUPP):
                    raise
            else:
                if s is None:
                    if default:
                        return default[0]
                    raise errors.KeyNotFoundError("BPF_MAP_LOOKUP_AND_DELETE_ELEM", _ENOENT)
                return self._done(s)
        s = self._op(_LOOKUP, key, missing_ok=True)
        if s is None:
            if default:
                return default[0]
            raise errors.KeyNotFoundError("BPF_MAP_LOOKUP_ELEM", _ENOENT)
        value = self._done(s)
        try:
            self.delete(key)
        except KeyError:
            if default:
                return default[0]
            raise
        return value

    def popitem(self) -> tuple[Any, Any]:
        """Remove and return some (key, value) pair; :class:`KeyError` when empty."""
        for k in self.keys():
            try:
                return k, self.pop(k)
            except KeyError:
                continue
        raise errors.KeyNotFoundError("BPF_MAP_GET_NEXT_KEY", _ENOENT)

    def setdefault(self, key: Any, default: Any) -> Any:
        """Insert ``default`` unless ``key`` exists (``BPF_NOEXIST``); return the value."""
        try:
            self.put(key, default, UpdateFlags.NOEXIST)
        except errors.KeyExistsError:
            return self[key]
        return default

    def entry(self, key: Any) -> MapEntry:
        """A handle on one key: ``get``/``set``/``update(fn)``/``delete``/``wait_*``."""
        return MapEntry(self, key)

    # --- iteration ------------------------------------------------------------------------
    def keys(self) -> Iterator[Any]:
        """Iterate over the keys (``BPF_MAP_GET_NEXT_KEY``; hash maps restart at the first key
        if the current one is deleted meanwhile, as the kernel defines)."""
        if self.type in _KEYLESS:
            raise TypeError(f"{self.type!r} maps have no keys")
        ks = self.key_size
        cur = bytearray(ks)
        nxt = bytearray(ks)
        cur_c = (ctypes.c_char * ks).from_buffer(cur)
        nxt_c = (ctypes.c_char * ks).from_buffer(nxt)
        attr = _t.MapElemAttr()
        self.fileno()  # closed: fail now, not at the first next()
        attr.key = 0
        attr.next_key = ctypes.addressof(nxt_c)
        decode = self._kc.decode
        while True:
            try:
                self._call(_NEXT_KEY, attr, (cur_c, nxt_c))
            except KeyError:
                return
            yield decode(nxt)
            cur[:] = nxt
            attr.key = ctypes.addressof(cur_c)

    def __iter__(self) -> Iterator[Any]:
        return self.keys()

    def next_key(self, key: Any = None) -> Any:
        """The key after ``key`` (the first key for None), None after the last one
        (``BPF_MAP_GET_NEXT_KEY``, one call)."""
        for k in self._keys_after(key):
            return k
        return None

    def _keys_after(self, key: Any) -> Iterator[Any]:
        if self.type in _KEYLESS:
            raise TypeError(f"{self.type!r} maps have no keys")
        ks = self.key_size
        cur = bytearray(self._kc.encode(key)) if key is not None else bytearray(ks)
        nxt = bytearray(ks)
        cur_c = (ctypes.c_char * ks).from_buffer(cur)
        nxt_c = (ctypes.c_char * ks).from_buffer(nxt)
        attr = _t.MapElemAttr()
        attr.key = ctypes.addressof(cur_c) if key is not None else 0
        attr.next_key = ctypes.addressof(nxt_c)
        try:
            self._call(_NEXT_KEY, attr, (cur_c, nxt_c))
        except KeyError:
            return
        yield self._kc.decode(nxt)

    def __len__(self) -> int:
        """Number of entries (counted: O(n) except for arrays, which always hold
        ``max_entries``)."""
        if self.type in _ARRAYS:
            return self.max_entries
        if self._batch_ok:
            try:
                return sum(n for _, _, n in self._lookup_chunks(delete=False, chunk=None))
            except _BatchUnsupported:
                pass
        return sum(1 for _ in self.keys())

    def items(self) -> Iterator[tuple[Any, Any]]:
        """Iterate over (key, value) pairs, fetched in batches where the kernel allows
        (``BPF_MAP_LOOKUP_BATCH``), else key by key."""
        if self._batch_ok:
            try:
                chunks = self._lookup_chunks(delete=False, chunk=None)
                first = next(chunks, None)
            except _BatchUnsupported:
                pass
            else:
                if first is None:
                    return iter(())
                return self._items_from_chunks(first, chunks)
        return self._items_slow()

    def _items_from_chunks(self, first: tuple[bytearray, bytearray, int],
                           rest: Iterator[tuple[bytearray, bytearray, int]]
                           ) -> Iterator[tuple[Any, Any]]:
        kd, vd = self._kc.decode_many, self._vc.decode_many
        kb, vb, n = first
        yield from zip(kd(kb, n), vd(vb, n), strict=True)
        for kb, vb, n in rest:
            yield from zip(kd(kb, n), vd(vb, n), strict=True)

    def _items_slow(self) -> Iterator[tuple[Any, Any]]:
        for k in self.keys():
            try:
                yield k, self[k]
            except KeyError:  # deleted meanwhile
                continue

    def values(self) -> Iterator[Any]:
        """Iterate over the values (batched like :meth:`items`)."""
        for _, v in self.items():
            yield v

    def clear(self) -> None:
        """Remove every entry. Arrays cannot delete: their values are zeroed instead."""
        if self.type in _ARRAYS:
            zero = bytes(self._vc.size)
            if self._batch_ok:
                n = self.max_entries
                try:
                    self.update_batch(
                        self._kc.encode_many(range(n)), zero * n)
                    return
                except _BatchUnsupported:
                    pass
            for i in range(self.max_entries):
                self[i] = zero
            return
        if self._batch_ok:
            try:
                for _ in self._lookup_chunks(delete=True, chunk=None):
                    pass
                return
            except _BatchUnsupported:
                pass
        while True:
            try:
                k = next(self.keys())
            except StopIteration:
                return
            try:
                self.delete(k)
            except KeyError:
                continue

    # --- batch operations -----------------------------------------------------------------
    def _batch_attr(self) -> _t.MapBatchAttr:
        attr = _t.MapBatchAttr()
        attr.map_fd = self.fileno()
        return attr

    def _chunk(self, chunk: int | None) -> int:
        if chunk is not None:
            if chunk < 1:
                raise ValueError("chunk must be >= 1")
            return chunk
        return max(1, min(self.max_entries, 8192))

    def _lookup_chunks(self, *, delete: bool, chunk: int | None
                       ) -> Iterator[tuple[bytearray, bytearray, int]]:
        """Cursor-based ``BPF_MAP_LOOKUP(_AND_DELETE)_BATCH``: yields (keys, values, count).

        The kernel reports the last chunk as ENOENT with ``count`` set; that chunk is
        consumed, then iteration stops. ENOSPC (a hash bucket larger than the chunk) grows the
        chunk and retries. Raises :class:`_BatchUnsupported` before yielding anything if the
        kernel lacks the command for this map.
        """
        cmd = _LOOKUP_AND_DELETE_BATCH if delete else _LOOKUP_BATCH
        n = self._chunk(chunk)
        ks, vs = self.key_size, self._vc.size
        tok_size = max(ks, 8)
        tok_in = ctypes.create_string_buffer(tok_size)
        tok_out = ctypes.create_string_buffer(tok_size)
        attr = self._batch_attr()
        attr.out_batch = ctypes.addressof(tok_out)
        first = True
        while True:
            kbuf = bytearray(n * ks)
            vbuf = bytearray(n * vs)
            kc = (ctypes.c_char * len(kbuf)).from_buffer(kbuf)
            vc = (ctypes.c_char * len(vbuf)).from_buffer(vbuf)
            attr.keys = ctypes.addressof(kc)
            attr.values = ctypes.addressof(vc)
            attr.count = n
            attr.in_batch = 0 if first else ctypes.addressof(tok_in)
            done = False
            try:
                self._call(cmd, attr, (kc, vc, tok_in, tok_out))
            except errors.SyscallError as e:
                if e.errno == _ENOENT:
                    done = True
                elif e.errno == _errno.ENOSPC and attr.count == 0:
                    n *= 2
                    continue
                elif first and e.errno in (_errno.EINVAL, _errno.EOPNOTSUPP, errors.ENOTSUPP,
                                           _errno.EOPNOTSUPP):
                    self._batch_ok = False
                    raise _BatchUnsupported from e
                else:
                    raise
            got = attr.count
            del kc, vc
            first = False
            if got:
                yield kbuf, vbuf, got
            if done:
                return
            ctypes.memmove(tok_in, tok_out, tok_size)

    def lookup_batch(self, *, chunk: int | None = None, delete: bool = False,
                     raw: bool = False) -> tuple[Any, Any]:
        """Every entry, read with the batch commands (cursor-based, ``chunk`` entries per
        syscall; ``delete=True`` uses ``BPF_MAP_LOOKUP_AND_DELETE_BATCH``).

        Returns (keys, values) as lists of decoded objects, or with ``raw=True`` as two
        ``bytearray`` of packed keys/values (``np.frombuffer`` turns them into arrays with no
        copy). Raises :class:`~ebpf.errors.NotSupportedError` if the kernel has no batch
        commands for this map type.
        """
        parts: list[tuple[bytearray, bytearray, int]] = []
        try:
            parts.extend(self._lookup_chunks(delete=delete, chunk=chunk))
        except _BatchUnsupported as e:
            raise errors.NotSupportedError(
                "BPF_MAP_LOOKUP_BATCH" + (" (with delete)" if delete else "")
                + f" for {self.type!r}", "5.6") from e.__cause__
        ks, vs = self.key_size, self._vc.size
        if len(parts) == 1:
            kb, vb, n = parts[0]
            keys, values = kb[: n * ks], vb[: n * vs]
        else:
            keys = bytearray().join(kb[: n * ks] for kb, _, n in parts)
            values = bytearray().join(vb[: n * vs] for _, vb, n in parts)
        if raw:
            return keys, values
        count = len(keys) // ks if ks else 0
        return self._kc.decode_many(keys, count), self._vc.decode_many(values, count)

    def _packed(self, items: Any, codec: Codec, what: str) -> tuple[Any, int]:
        """A contiguous buffer of encoded ``items`` and its element count."""
        size = codec.size
        if isinstance(items, (bytes, bytearray, memoryview)):
            mv = memoryview(items).cast("B")
            if size == 0 or mv.nbytes % size:
                raise ValueError(f"packed {what}s must be a multiple of {size} bytes, "
                                 f"got {mv.nbytes}")
            return items, mv.nbytes // size
        if type(items).__module__ == "numpy" and hasattr(items, "nbytes"):
            arr = items
            if arr.ndim >= 1 and len(arr) and arr.nbytes == len(arr) * size and (
                arr.flags["C_CONTIGUOUS"]
            ):
                return arr, len(arr)
        buf = codec.encode_many(list(items))
        return buf, len(buf) // size if size else 0

    def update_batch(self, keys: Any, values: Any, *, flags: UpdateFlags | int = 0) -> int:
        """Write many elements with ``BPF_MAP_UPDATE_BATCH``; returns how many were written.

        ``keys``/``values`` are sequences of Python values, or packed buffers (``bytes``,
        ``bytearray``, contiguous numpy arrays whose rows are key/value sized), passed to the
        kernel without copying.
        """
        if int(flags) & ~_t.BPF_F_LOCK:
            raise ValueError("batch updates accept only UpdateFlags.LOCK (the kernel refuses "
                             "NOEXIST/EXIST for batches); use put() per element")
        kbuf, n = self._packed(keys, self._kc, "key")
        vbuf, nv = self._packed(values, self._vc, "value")
        if n != nv:
            raise ValueError(f"{n} keys but {nv} values")
        if n == 0:
            return 0
        kc = _address_of(kbuf)
        vc = _address_of(vbuf)
        attr = self._batch_attr()
        attr.keys = kc[0]
        attr.values = vc[0]
        attr.count = n
        attr.elem_flags = int(flags)
        try:
            self._call(_UPDATE_BATCH, attr, (kc, vc, kbuf, vbuf))
        except errors.SyscallError as e:
            if attr.count == 0 and e.errno in (_errno.EINVAL, _errno.EOPNOTSUPP,
                                               errors.ENOTSUPP, _errno.EOPNOTSUPP) and (
                    self.type not in _BATCHABLE):
                self._batch_ok = False
                raise _BatchUnsupported from e
            raise
        return int(attr.count)

    def delete_batch(self, keys: Any) -> int:
        """Delete many keys with ``BPF_MAP_DELETE_BATCH``; returns how many were deleted.
        A key that is absent stops the batch with :class:`KeyError` (as the kernel does)."""
        kbuf, n = self._packed(keys, self._kc, "key")
        if n == 0:
            return 0
        kc = _address_of(kbuf)
        attr = self._batch_attr()
        attr.keys = kc[0]
        attr.count = n
        self._call(_DELETE_BATCH, attr, (kc, kbuf))
        return int(attr.count)

    # --- map-level operations -------------------------------------------------------------
    def freeze(self) -> None:
        """Make the map read-only for syscalls (``BPF_MAP_FREEZE``, kernel >= 5.2); BPF
        programs may still write it unless it was created with ``BPF_F_RDONLY_PROG``."""
        self._call(_FREEZE, _t.MapElemAttr())

    def pin(self, path: str | os.PathLike[str]) -> None:
        """Pin the map at ``path`` on a bpffs (it outlives this process until unpinned)."""
        commands.obj_pin(self.fileno(), path)
        self._pin_path = os.fspath(path)

    def unpin(self) -> None:
        """Remove the pin this object made or was opened from (no-op if none)."""
        if self._pin_path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._pin_path)
            self._pin_path = None

    @property
    def pinned_path(self) -> str | None:
        return self._pin_path

    def mmap(self, *, writable: bool = True) -> _mmap.mmap:
        """Map the values of a ``BPF_F_MMAPABLE`` array (or an arena) into this process.

        Element ``i`` of an array starts at ``i * round_up(value_size, 8)``. The mapping is
        shared with the kernel: writes are seen by BPF programs and lookups, and the reverse.
        """
        if self._mmap is not None:
            return self._mmap
        if self.type == MapType.ARENA:
            length = self.max_entries * _platform.page_size()
        else:
            length = round_up(self.max_entries * round_up(self.value_size, 8),
                              _platform.page_size())
        prot = _mmap.PROT_READ | (_mmap.PROT_WRITE if writable else 0)
        self._mmap = _mmap.mmap(self.fileno(), length, _mmap.MAP_SHARED, prot)
        return self._mmap

    def memoryview(self, *, writable: bool = True) -> memoryview:
        """The mmapable array's values as a writable :class:`memoryview` of bytes."""
        mm = self.mmap(writable=writable)
        n = self.max_entries * round_up(self.value_size, 8)
        return memoryview(mm)[:n]

    def ndarray(self, dtype: Any = None, *, writable: bool = True) -> Any:
        """The mmapable array's values as a numpy array of ``max_entries`` elements sharing
        memory with the map. ``dtype`` defaults to the value codec's (or unsigned ints of
        ``value_size``)."""
        import importlib

        np = importlib.import_module("numpy")
        if dtype is None:
            dtype = getattr(self._vc, "dtype", None)
            if dtype is None:
                dtype = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}.get(
                    self.value_size, np.dtype((np.void, self.value_size)))
        dt = np.dtype(dtype)
        if dt.itemsize != self.value_size:
            raise ValueError(f"dtype {dt} is {dt.itemsize} bytes but values are "
                             f"{self.value_size}")
        stride = round_up(self.value_size, 8)
        buf = self.memoryview(writable=writable)
        return np.ndarray((self.max_entries,), dtype=dt, buffer=buf, strides=(stride,))

    def open_map(self, key: Any) -> Map:
        """Open the inner map stored at ``key`` of a map-of-maps (returns an owned
        :class:`Map`; close it)."""
        return Map.from_id(int(self[key]))


class _BatchUnsupported(Exception):
    """The kernel has no batch command for this map (internal: triggers the fallback)."""


def _address_of(buf: Any) -> tuple[int, Any]:
    """(address, keep-alive object) of a contiguous buffer (bytes are copied: read-only)."""
    if isinstance(buf, bytes):
        c = ctypes.create_string_buffer(buf, len(buf))
        return ctypes.addressof(c), c
    if type(buf).__module__ == "numpy":
        return int(buf.ctypes.data), buf
    mv = memoryview(buf).cast("B")
    if mv.readonly:
        c = ctypes.create_string_buffer(mv.tobytes(), mv.nbytes)
        return ctypes.addressof(c), c
    c2 = (ctypes.c_char * mv.nbytes).from_buffer(mv)
    return ctypes.addressof(c2), c2


def _type_name(mt: MapType | int) -> str:
    return mt.name if isinstance(mt, MapType) else f"map type {mt}"


def _defaults(mt: MapType | int, ks: int | None, vs: int | None, me: int | None,
              flags: int) -> tuple[int, int, int | None, int]:
    """Fill in the sizes and flags a map type fixes."""
    if mt in (MapType.RINGBUF, MapType.USER_RINGBUF):
        return ks or 0, vs or 0, me, flags
    if mt in (MapType.QUEUE, MapType.STACK, MapType.BLOOM_FILTER):
        if ks:
            raise ValueError(f"{_type_name(mt)} maps have no keys (key_size must be 0)")
        if vs is None:
            raise TypeError(f"value_size (or value=) is required for {_type_name(mt)} maps")
        return 0, vs, me, flags
    if mt == MapType.ARENA:
        return 0, 0, me, flags | _t.BPF_F_MMAPABLE
    if mt in _INDEXED:
        ks = 4 if ks is None else ks
    if mt in _FD_VALUES and vs is None:
        vs = 4
    if mt in (MapType.DEVMAP, MapType.DEVMAP_HASH, MapType.CPUMAP) and vs is None:
        vs = 4
    if mt == MapType.PERF_EVENT_ARRAY and me is None:
        me = _platform.possible_cpus()
    if mt == MapType.STACK_TRACE and vs is None:
        vs = 8 * 127  # PERF_MAX_STACK_DEPTH frames
    if mt == MapType.LPM_TRIE:
        flags |= _t.BPF_F_NO_PREALLOC
    if mt in _STORAGE:
        ks = 4 if ks is None else ks
        flags |= _t.BPF_F_NO_PREALLOC
        me = 0 if me is None else me
    if mt in (MapType.CGROUP_STORAGE, MapType.PERCPU_CGROUP_STORAGE):
        ks = 16 if ks is None else ks
        me = 0 if me is None else me
    if ks is None:
        raise TypeError("key_size (or key=) is required")
    if vs is None:
        raise TypeError("value_size (or value=) is required")
    return ks, vs, me, flags


class QueueMap(Map):
    """A ``QUEUE`` (FIFO) or ``STACK`` (LIFO) map: no keys; push, pop, peek.

    ``pop``/``peek`` on an empty map raise :class:`KeyError`; :meth:`pop_wait` blocks until a
    value arrives (by polling: the kernel offers no wakeup for these maps).
    """

    __slots__ = ()

    def push(self, value: Any, *, overwrite: bool = False) -> None:
        """Add ``value``; when full, ``overwrite=True`` drops the oldest (``BPF_EXIST``)
        instead of failing with E2BIG."""
        s = self._op(_UPDATE, _NONE, value, _t.BPF_EXIST if overwrite else 0)
        assert s is not None
        self._pool.append(s)

    def pop(self, *default: Any) -> Any:
        """Remove and return the next value; ``default`` (if given) when empty, else
        :class:`KeyError`."""
        s = self._op(_LOOKUP_AND_DELETE, _NONE, missing_ok=bool(default))
        if s is None:
            return default[0]
        return self._done(s)

    def peek(self, *default: Any) -> Any:
        """The next value, left in place."""
        s = self._op(_LOOKUP, _NONE, missing_ok=bool(default))
        if s is None:
            return default[0]
        return self._done(s)

    def pop_wait(self, timeout: float | None = None) -> Any:
        """Pop, waiting up to ``timeout`` seconds (None: forever) for a value; raises
        :class:`TimeoutError` when none came."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.0005
        sentinel = object()
        while True:
            v = self.pop(sentinel)
            if v is not sentinel:
                return v
            delay = _poll_sleep(deadline, delay)
            if delay < 0:
                raise TimeoutError(f"no value in {self.name or 'queue'} after {timeout} s")

    def drain(self) -> Iterator[Any]:
        """Pop values until the map is empty."""
        sentinel = object()
        while True:
            v = self.pop(sentinel)
            if v is sentinel:
                return
            yield v

    def __getitem__(self, key: Any) -> Any:
        raise TypeError("queue/stack maps have no keys: use pop()/peek()")

    def __setitem__(self, key: Any, value: Any) -> None:
        raise TypeError("queue/stack maps have no keys: use push()")

    def __contains__(self, key: Any) -> bool:
        raise TypeError("queue/stack maps have no keys")

    def __len__(self) -> int:
        raise TypeError("the kernel does not report a queue's length")

    def keys(self) -> Iterator[Any]:
        raise TypeError("queue/stack maps have no keys: use drain()")

    def items(self) -> Iterator[tuple[Any, Any]]:
        raise TypeError("queue/stack maps have no keys: use drain()")

    def clear(self) -> None:
        for _ in self.drain():
            pass


class BloomFilter(Map):
    """A ``BLOOM_FILTER`` map: :meth:`add` values, test with ``value in bf`` (false positives
    possible, false negatives not). ``map_extra`` at creation is the number of hashes."""

    __slots__ = ()

    def add(self, value: Any) -> None:
        s = self._op(_UPDATE, _NONE, value)
        assert s is not None
        self._pool.append(s)

    def __contains__(self, value: Any) -> bool:
        s = self._op(_LOOKUP, _NONE, value, missing_ok=True)
        if s is None:
            return False
        self._pool.append(s)
        return True

    def __getitem__(self, key: Any) -> Any:
        raise TypeError("bloom filters have no keys: use add() and `in`")

    def __setitem__(self, key: Any, value: Any) -> None:
        raise TypeError("bloom filters have no keys: use add()")

    def keys(self) -> Iterator[Any]:
        raise TypeError("bloom filters cannot be iterated")

    def items(self) -> Iterator[tuple[Any, Any]]:
        raise TypeError("bloom filters cannot be iterated")

    def __len__(self) -> int:
        raise TypeError("bloom filters do not report a length")


class _ScalarMap(Map):
    """A :class:`Map` whose keys and values are plain scalars (ints of 1/2/4/8 bytes, or
    simple ctypes): the element operations skip the codec branches. Chosen automatically.

    Ints go straight into the slot's cast memoryviews. Anything else makes that store raise
    and goes through the codec (raw bytes, or the precise error); the first ``bytes`` key or
    value also switches the map to :class:`_ScalarBytesMap`, which tests for ``bytes`` first,
    so a map used with bytes pays the failed store once rather than per call and a map used
    with ints pays no test at all."""

    __slots__ = ()

    def __getitem__(self, key: Any) -> Any:
        pool = self._pool
        try:
            s = pool.pop()
        except IndexError:
            s = self._new_slot()
        try:
            try:
                s.kmv[0] = key
            except (TypeError, ValueError):
                self._not_int(key, self._kc, s.kbuf)
            if _raw_syscall(*s.look) < 0:
                _fail(_LOOKUP, s.attr, _ELEM_SIZE, _get_errno())
            return s.vmv[0]
        finally:
            pool.append(s)

    def __setitem__(self, key: Any, value: Any) -> None:
        pool = self._pool
        try:
            s = pool.pop()
        except IndexError:
            s = self._new_slot()
        try:
            try:
                s.kmv[0] = key
            except (TypeError, ValueError):
                self._not_int(key, self._kc, s.kbuf)
            try:
                s.vmv[0] = value
            except (TypeError, ValueError):
                self._not_int(value, self._vc, s.vbuf)
            if _raw_syscall(*s.upd) < 0:
                _fail(_UPDATE, s.attr, _ELEM_SIZE, _get_errno())
        finally:
            pool.append(s)

    def _not_int(self, obj: Any, codec: Codec, buf: bytearray) -> None:
        """Encode what the int store refused; on ``bytes``, switch to the bytes-first class."""
        codec.encode_into(obj, buf)  # raw bytes-like, or the precise error
        if type(obj) is bytes and type(self) is _ScalarMap:
            self.__class__ = _ScalarBytesMap

    def get(self, key: Any, default: Any = None) -> Any:
        pool = self._pool
        try:
            s = pool.pop()
        except IndexError:
            s = self._new_slot()
        try:
            try:
                s.kmv[0] = key
            except (TypeError, ValueError):
                self._not_int(key, self._kc, s.kbuf)
            if _raw_syscall(*s.look) < 0:
                err = _get_errno()
                if err == _ENOENT:
                    return default
                _fail(_LOOKUP, s.attr, _ELEM_SIZE, err)
            return s.vmv[0]
        finally:
            pool.append(s)

    def __contains__(self, key: Any) -> bool:
        pool = self._pool
        try:
            s = pool.pop()
        except IndexError:
            s = self._new_slot()
        try:
            try:
                s.kmv[0] = key
            except (TypeError, ValueError):
                self._not_int(key, self._kc, s.kbuf)
            if _raw_syscall(*s.look) < 0:
                err = _get_errno()
                if err == _ENOENT:
                    return False
                _fail(_LOOKUP, s.attr, _ELEM_SIZE, err)
            return True
        finally:
            pool.append(s)


class _ScalarBytesMap(_ScalarMap):
    """A :class:`_ScalarMap` that has seen ``bytes``: keys and values that are ``bytes`` of
    the exact size are copied in without trying the int store first (a failed store raises,
    which costs several times the syscall); ints still take the memoryview store."""

    __slots__ = ()

    def __getitem__(self, key: Any) -> Any:
        pool = self._pool
        try:
            s = pool.pop()
        except IndexError:
            s = self._new_slot()
        try:
            if type(key) is bytes and len(key) == self.key_size:
                s.kbuf[:] = key
            else:
                try:
                    s.kmv[0] = key
                except (TypeError, ValueError):
                    self._kc.encode_into(key, s.kbuf)
            if _raw_syscall(*s.look) < 0:
                _fail(_LOOKUP, s.attr, _ELEM_SIZE, _get_errno())
            return s.vmv[0]
        finally:
            pool.append(s)

    def __setitem__(self, key: Any, value: Any) -> None:
        pool = self._pool
        try:
            s = pool.pop()
        except IndexError:
            s = self._new_slot()
        try:
            if type(key) is bytes and len(key) == self.key_size:
                s.kbuf[:] = key
            else:
                try:
                    s.kmv[0] = key
                except (TypeError, ValueError):
                    self._kc.encode_into(key, s.kbuf)
            if type(value) is bytes and len(value) == self.value_size:
                s.vbuf[:] = value
            else:
                try:
                    s.vmv[0] = value
                except (TypeError, ValueError):
                    self._vc.encode_into(value, s.vbuf)
            if _raw_syscall(*s.upd) < 0:
                _fail(_UPDATE, s.attr, _ELEM_SIZE, _get_errno())
        finally:
            pool.append(s)

    def get(self, key: Any, default: Any = None) -> Any:
        pool = self._pool
        try:
            s = pool.pop()
        except IndexError:
            s = self._new_slot()
        try:
            if type(key) is bytes and len(key) == self.key_size:
                s.kbuf[:] = key
            else:
                try:
                    s.kmv[0] = key
                except (TypeError, ValueError):
                    self._kc.encode_into(key, s.kbuf)
            if _raw_syscall(*s.look) < 0:
                err = _get_errno()
                if err == _ENOENT:
                    return default
                _fail(_LOOKUP, s.attr, _ELEM_SIZE, err)
            return s.vmv[0]
        finally:
            pool.append(s)

    def __contains__(self, key: Any) -> bool:
        pool = self._pool
        try:
            s = pool.pop()
        except IndexError:
            s = self._new_slot()
        try:
            if type(key) is bytes and len(key) == self.key_size:
                s.kbuf[:] = key
            else:
                try:
                    s.kmv[0] = key
                except (TypeError, ValueError):
                    self._kc.encode_into(key, s.kbuf)
            if _raw_syscall(*s.look) < 0:
                err = _get_errno()
                if err == _ENOENT:
                    return False
                _fail(_LOOKUP, s.attr, _ELEM_SIZE, err)
            return True
        finally:
            pool.append(s)


def _class_for(mt: MapType | int) -> type[Map]:
    if mt in (MapType.QUEUE, MapType.STACK):
        return QueueMap
    if mt == MapType.BLOOM_FILTER:
        return BloomFilter
    return Map


class MapEntry:
    """One key of a map, as an object: read, write, read-modify-write, wait for changes.

    ``update(fn)`` reads the value, applies ``fn`` and writes the result. With ``lock=True``
    (maps whose value starts with a ``bpf_spin_lock``) both the read and the write happen
    under the value's lock (``BPF_F_LOCK``), so neither sees a torn value; the pair is still
    two syscalls, so concurrent writers can interleave between them.
    """

    __slots__ = ("key", "map")

    def __init__(self, map_: Map, key: Any) -> None:
        self.map = map_
        self.key = key

    def get(self, default: Any = None, *, lock: bool = False) -> Any:
        if lock:
            try:
                return self.map.lookup(self.key, flags=UpdateFlags.LOCK)
            except KeyError:
                return default
        return self.map.get(self.key, default)

    def set(self, value: Any, *, flags: UpdateFlags | int = 0, lock: bool = False) -> None:
        self.map.put(self.key, value, int(flags) | (_t.BPF_F_LOCK if lock else 0))

    def delete(self) -> None:
        self.map.delete(self.key)

    @property
    def exists(self) -> bool:
        return self.key in self.map

    def update(self, fn: Callable[[Any], Any], default: Any = None, *,
               lock: bool = False) -> Any:
        """``set(fn(get(default)))``; returns the new value."""
        new = fn(self.get(default, lock=lock))
        self.set(new, lock=lock)
        return new

    def compare_and_set(self, expected: Any, new: Any, *, lock: bool = False) -> bool:
        """Write ``new`` if the value is ``expected`` now; False (nothing written) if not or
        if the key is absent. Check-then-act from userspace: a program or another process
        may write between the read and the write (``lock`` makes each of them untorn)."""
        missing = object()
        if self.get(missing, lock=lock) != expected:
            return False
        try:
            self.set(new, flags=UpdateFlags.EXIST, lock=lock)
        except KeyError:
            return False
        return True

    def wait_exists(self, timeout: float | None = None) -> Any:
        """Wait until the key is present; returns its value (``TimeoutError`` otherwise)."""
        return self._wait(lambda v: True, timeout)

    def wait_changed(self, timeout: float | None = None, *, since: Any = None) -> Any:
        """Wait until the value differs from ``since`` (default: the value now, or absence);
        returns the new value (``TimeoutError`` otherwise). Polls with backoff."""
        missing = object()
        old = since if since is not None else self.map.get(self.key, missing)
        return self._wait(lambda v: v != old, timeout)

    def _wait(self, pred: Callable[[Any], bool], timeout: float | None) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        missing = object()
        delay = 0.0005
        while True:
            v = self.map.get(self.key, missing)
            if v is not missing and pred(v):
                return v
            delay = _poll_sleep(deadline, delay)
            if delay < 0:
                raise TimeoutError(f"key {self.key!r} did not change within {timeout} s")

    def __repr__(self) -> str:
        return f"<MapEntry {self.key!r} of {self.map!r}>"

