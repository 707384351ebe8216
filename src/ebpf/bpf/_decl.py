"""What user modules declare: maps, constants, program kinds and their context types.

These objects are inert in Python: a program's body is compiled, never run, so the methods
below exist for readers and type checkers and raise if actually called.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Generic, TypeVar

from .._types import AttachType, MapType, ProgramType
from ..errors import BPFError
from .types import IntType, Struct, u32

__all__ = [
    "XDP",
    "Array",
    "CgroupStorage",
    "Const",
    "FuncDecl",
    "Hash",
    "InodeStorage",
    "LPMTrie",
    "LRUHash",
    "LRUPerCPUHash",
    "LocalStorage",
    "MapDecl",
    "PerCPUArray",
    "PerCPUHash",
    "PerfEventArray",
    "ProgArray",
    "ProgramDecl",
    "Queue",
    "RingBuf",
    "SkStorage",
    "SocketFilter",
    "Stack",
    "TaskStorage",
    "TracepointContext",
    "Var",
    "array",
    "cgroup_skb",
    "const",
    "func",
    "raw_tracepoint",
    "socket_filter",
    "tc",
    "tracepoint",
    "var",
    "xdp",
]

T = TypeVar("T")
ValueType = Any  # type[IntType] | type[Struct]


def _only_compiled(what: str) -> BPFError:
    return BPFError(f"{what} exists only inside a compiled program (ebpf.bpf)")


def _check_value_type(t: object, what: str) -> None:
    if isinstance(t, type) and issubclass(t, (IntType, Struct)) and t not in (IntType, Struct):
        return
    raise BPFError(f"{what}: {t!r} is not an integer type (u8..i64) or a bpf.Struct")


class MapDecl:
    """A map declared at module level; the collection creates it at :func:`ebpf.bpf.load`."""

    map_type: MapType = MapType.UNSPEC
    #: BPF_MAP_CREATE ``map_flags`` this kind needs
    map_flags: int = 0

    def __init__(self, key: ValueType | None, value: ValueType | None, max_entries: int) -> None:
        if key is not None:
            _check_value_type(key, type(self).__name__)
        if value is not None:
            _check_value_type(value, type(self).__name__)
        if not isinstance(max_entries, int) or max_entries <= 0:
            raise BPFError(f"{type(self).__name__}: max_entries must be a positive int")
        self.key = key
        self.value = value
        self.max_entries = max_entries

    @property
    def key_size(self) -> int:
        return 0 if self.key is None else int(self.key.size)

    @property
    def value_size(self) -> int:
        return 0 if self.value is None else int(self.value.size)

    def __getitem__(self, key: Any) -> Any:
        raise _only_compiled("map element access")

    def __setitem__(self, key: Any, value: Any) -> None:
        raise _only_compiled("map element access")

    def __delitem__(self, key: Any) -> None:
        raise _only_compiled("map element access")

    def lookup(self, key: Any) -> Any:
        """Pointer to the value of ``key`` or None (in programs)."""
        raise _only_compiled("map lookup")

    def lookup_percpu(self, key: Any, cpu: int) -> Any:
        """Pointer to CPU ``cpu``'s value of ``key`` in a per-CPU map, or None (in programs;
        ``bpf_map_lookup_percpu_elem``, Linux 5.19)."""
        raise _only_compiled("map lookup_percpu")

    def update(self, key: Any, value: Any, flags: int = 0) -> int:
        """``bpf_map_update_elem(m, &key, &value, flags)`` (in programs): 0 or -errno;
        ``flags`` 1 (``BPF_NOEXIST``) only inserts, 2 (``BPF_EXIST``) only replaces."""
        raise _only_compiled("map update")

    def __repr__(self) -> str:
        return (f"<bpf.{type(self).__name__} key={getattr(self.key, '__name__', None)} "
                f"value={getattr(self.value, '__name__', None)} max_entries={self.max_entries}>")


class Array(MapDecl):
    """``BPF_MAP_TYPE_ARRAY`` with ``u32`` indexes: every element exists, zeroed."""

    map_type = MapType.ARRAY

    def __init__(self, value: ValueType, max_entries: int) -> None:
        super().__init__(u32, value, max_entries)


class PerCPUArray(MapDecl):
    """``BPF_MAP_TYPE_PERCPU_ARRAY``: one value per CPU; Python reads all of them."""

    map_type = MapType.PERCPU_ARRAY

    def __init__(self, value: ValueType, max_entries: int) -> None:
        super().__init__(u32, value, max_entries)


class Hash(MapDecl):
    """``BPF_MAP_TYPE_HASH``: an absent key reads as 0; ``+=`` inserts it."""

    map_type = MapType.HASH

    def __init__(self, key: ValueType, value: ValueType, max_entries: int) -> None:
        super().__init__(key, value, max_entries)


class LRUHash(Hash):
    """``BPF_MAP_TYPE_LRU_HASH`` (Linux 4.10): a :class:`Hash` that, when full, evicts the
    least recently used elements to make room for an insert instead of failing it."""

    map_type = MapType.LRU_HASH


class PerCPUHash(Hash):
    """``BPF_MAP_TYPE_PERCPU_HASH`` (Linux 4.6): a :class:`Hash` with one value per CPU.

    In programs every access (``m[k]``, ``+=``, ``lookup``) is to the running CPU's value, so
    counters need no atomic contention; an insert from a program sets this CPU's value and
    zeroes the others. In Python a key reads as an :class:`ebpf.PerCPUValues` of typed values.
    """

    map_type = MapType.PERCPU_HASH


class LRUPerCPUHash(PerCPUHash):
    """``BPF_MAP_TYPE_LRU_PERCPU_HASH`` (Linux 4.10): a :class:`PerCPUHash` that evicts the
    least recently used keys when full instead of failing an insert."""

    map_type = MapType.LRU_PERCPU_HASH


class LPMTrie(MapDecl):
    """``BPF_MAP_TYPE_LPM_TRIE`` (Linux 4.11): longest-prefix match. The key is a
    ``bpf.Struct`` whose first field is ``prefixlen: u32`` (the number of leading bits of the
    rest that count), followed by the data, big-endian as on the wire (``addr: be32``,
    ``bpf.bytes_[16]``)::

        class Prefix(bpf.Struct):
            prefixlen: u32
            addr: be32

        routes = bpf.LPMTrie(Prefix, u32, max_entries=1024)

    In programs ``routes.lookup(k)`` / ``routes[k]`` (0 when no prefix matches) find the
    longest stored prefix of ``k`` (give ``prefixlen`` 32 for a full address), ``routes[k] =
    v`` and ``del routes[k]`` store and remove the exact prefix, and ``routes[k] += v`` adds
    to the matched prefix's value (no insert on a miss). Created with ``BPF_F_NO_PREALLOC``,
    as the kernel requires. In Python keys read as ``Prefix`` instances."""

    map_type = MapType.LPM_TRIE
    map_flags = 1   # BPF_F_NO_PREALLOC

    def __init__(self, key: ValueType, value: ValueType, max_entries: int) -> None:
        fields = getattr(key, "fields", None) if isinstance(key, type) and \
            issubclass(key, Struct) else None
        if not fields or fields[0].name != "prefixlen" or fields[0].type is not u32 or \
                len(fields) < 2:
            raise BPFError("LPMTrie: the key is a bpf.Struct whose first field is "
                           "'prefixlen: u32', followed by the data")
        super().__init__(key, value, max_entries)
        self.max_prefixlen = (int(key.size) - 4) * 8


class Queue(MapDecl):
    """``BPF_MAP_TYPE_QUEUE`` (Linux 5.0): a FIFO of ``max_entries`` values, no keys.

    In programs ``q.push(v)`` adds a value (0, or ``-E2BIG`` when full; ``overwrite=True``
    drops the oldest instead, ``BPF_EXIST``), ``p = q.pop()`` takes the oldest into the
    program's stack and ``p = q.peek()`` reads it without taking it: ``None`` when empty,
    else a pointer to the value (``p.value`` for an integer, the fields of a struct). In
    Python the map is an :class:`ebpf.QueueMap` (``push``, ``pop``, ``peek``)."""

    map_type = MapType.QUEUE

    def __init__(self, value: ValueType, max_entries: int) -> None:
        super().__init__(None, value, max_entries)

    def push(self, value: Any, overwrite: bool = False) -> int:
        raise _only_compiled("queue push")

    def pop(self) -> Any:
        raise _only_compiled("queue pop")

    def peek(self) -> Any:
        raise _only_compiled("queue peek")


class Stack(Queue):
    """``BPF_MAP_TYPE_STACK`` (Linux 5.0): a :class:`Queue` that pops the newest value
    first (LIFO)."""

    map_type = MapType.STACK


class LocalStorage(MapDecl):
    """A local-storage map: one value per kernel object (task, socket, cgroup, inode), made
    when a program asks for it and freed with the object. Subclasses name the owner.

    In programs ``s = store.get(owner)`` is the owner's value or None, ``store.get(owner,
    create=True)`` makes a zeroed one if there is none (``BPF_LOCAL_STORAGE_GET_F_CREATE``;
    None only when the kernel cannot), and ``store.delete(owner)`` removes it (0 or
    ``-ENOENT``). The owner is a kernel pointer of the kind's type. From Python the map is
    keyed by an fd of the owner (a pidfd, a socket's fd, a cgroup directory's fd)."""

    #: the BPF_FUNC_*_storage_get / _delete helpers and the owner's kernel struct names
    get_helper: ClassVar[int] = 0
    delete_helper: ClassVar[int] = 0
    owners: ClassVar[tuple[str, ...]] = ()
    map_flags = 1   # BPF_F_NO_PREALLOC, which the kernel requires

    def __init__(self, value: ValueType) -> None:
        from .types import i32

        super().__init__(i32, value, 1)
        self.max_entries = 0   # the kernel insists on 0: storage grows with the owners

    def get(self, owner: Any, create: bool = False) -> Any:
        """The owner's value or None; ``create=True`` makes a zeroed one (in programs)."""
        raise _only_compiled("local storage get")

    def delete(self, owner: Any) -> int:
        """Remove the owner's value: 0 or ``-ENOENT`` (in programs)."""
        raise _only_compiled("local storage delete")


class TaskStorage(LocalStorage):
    """``BPF_MAP_TYPE_TASK_STORAGE`` (Linux 5.11): a value per task; the owner is a BTF
    ``struct task_struct *`` (``bpf.get_current_task_btf()``, ``ctx.task``, tracing
    arguments); from Python the key is a pidfd (``os.pidfd_open(pid)``)."""

    map_type = MapType.TASK_STORAGE
    get_helper = 156     # BPF_FUNC_task_storage_get
    delete_helper = 157
    owners = ("task_struct",)


class SkStorage(LocalStorage):
    """``BPF_MAP_TYPE_SK_STORAGE`` (Linux 5.2): a value per socket; the owner is a socket
    pointer (``ctx.sk`` of the cgroup socket kinds, or a BTF ``struct sock *``); from Python
    the key is the socket's fd."""

    map_type = MapType.SK_STORAGE
    get_helper = 107     # BPF_FUNC_sk_storage_get
    delete_helper = 108
    owners = ("sock", "sock_common", "socket")


class CgroupStorage(LocalStorage):
    """``BPF_MAP_TYPE_CGRP_STORAGE`` (Linux 6.2): a value per cgroup; the owner is a BTF
    ``struct cgroup *``; from Python the key is an fd of the cgroup's directory."""

    map_type = MapType.CGRP_STORAGE
    get_helper = 210     # BPF_FUNC_cgrp_storage_get
    delete_helper = 211
    owners = ("cgroup",)


class InodeStorage(LocalStorage):
    """``BPF_MAP_TYPE_INODE_STORAGE`` (Linux 5.10, LSM programs): a value per inode; the
    owner is a BTF ``struct inode *``; from Python the key is an fd of the file."""

    map_type = MapType.INODE_STORAGE
    get_helper = 145     # BPF_FUNC_inode_storage_get
    delete_helper = 146
    owners = ("inode",)


class RingBuf(MapDecl):
    """``BPF_MAP_TYPE_RINGBUF`` of ``size`` bytes (a power of two, at least a page; Linux 5.8).

    In programs: ``e = events.reserve(Event)`` (None when full), ``events.submit(e)``,
    ``events.discard(e)``. In Python: ``coll.events.read(Event)``.
    """

    map_type = MapType.RINGBUF

    def __init__(self, size: int) -> None:
        import mmap

        if not isinstance(size, int) or size < mmap.PAGESIZE or size & (size - 1):
            raise BPFError(f"RingBuf: size must be a power of two >= {mmap.PAGESIZE}, "
                           f"not {size!r}")
        super().__init__(None, None, size)

    def reserve(self, t: type[T]) -> T | None:
        raise _only_compiled("RingBuf.reserve")

    def submit(self, record: Any) -> None:
        raise _only_compiled("RingBuf.submit")

    def discard(self, record: Any) -> None:
        raise _only_compiled("RingBuf.discard")

    def output(self, record: Any) -> None:
        raise _only_compiled("RingBuf.output")


class PerfEventArray(MapDecl):
    """``BPF_MAP_TYPE_PERF_EVENT_ARRAY``, one slot per possible CPU. In programs:
    ``events.output(ctx, record)`` sends a struct (a stack struct or a map value) to the
    current CPU's ring (``bpf_perf_event_output``). In Python: ``coll.events.read(T)``."""

    map_type = MapType.PERF_EVENT_ARRAY

    def __init__(self) -> None:
        from ..platform import possible_cpus

        super().__init__(u32, u32, possible_cpus())

    def output(self, ctx: Any, record: Any) -> int:
        raise _only_compiled("PerfEventArray.output")


class ProgArray(MapDecl):
    """``BPF_MAP_TYPE_PROG_ARRAY`` for tail calls. In programs: ``progs.tail_call(ctx, i)``
    jumps to the program in slot ``i`` and does not come back; it falls through (to the next
    statement) when the slot is empty. Fill slots at module level with
    ``progs.set(i, program)``; :func:`ebpf.bpf.load` loads those programs too and fills the
    map after loading them."""

    map_type = MapType.PROG_ARRAY

    def __init__(self, max_entries: int) -> None:
        super().__init__(u32, u32, max_entries)
        self.slots: dict[int, ProgramDecl] = {}

    def set(self, index: int, program: ProgramDecl) -> None:
        """Put ``program`` in slot ``index`` at load (module level, not in programs)."""
        if not isinstance(program, ProgramDecl):
            raise BPFError(f"ProgArray.set: {program!r} is not a @bpf program")
        if not 0 <= index < self.max_entries:
            raise BPFError(f"ProgArray.set: slot {index} is out of range 0..{self.max_entries - 1}")
        self.slots[index] = program

    def tail_call(self, ctx: Any, index: int) -> None:
        raise _only_compiled("ProgArray.tail_call")


class Const(Generic[T]):
    """A ``const volatile`` global in ``.rodata``: read-only to programs, set before load."""

    writable: ClassVar[bool] = False

    def __init__(self, type_: type[IntType], value: int) -> None:
        _check_value_type(type_, "const")
        if not issubclass(type_, IntType):
            raise BPFError("const: only integer constants are supported")
        if not type_.min() <= value <= type_.max():
            raise BPFError(f"const: {value} does not fit in {type_.__name__}")
        self.type = type_
        self.value = int(value)

    def __repr__(self) -> str:
        return f"<bpf.const {self.type.__name__} = {self.value}>"


class Var(Const[T]):
    """A global variable: ``.data`` when its initial value is not 0, else ``.bss``. Programs
    read and write it (``global x; x = ...``, ``x += 1`` is atomic); Python reads and writes
    it through ``coll.variables["x"]`` (mmapped, Linux 5.5)."""

    writable: ClassVar[bool] = True

    def __repr__(self) -> str:
        return f"<bpf.var {self.type.__name__} = {self.value}>"


def array(type_: type[IntType], n: int) -> list[Any]:
    """A zeroed stack array of ``n`` ``type_`` values, as a local: ``a = bpf.array(u32, 8)``.
    In Python it is a list; in programs, ``a[i]`` with an index out of ``0..n-1`` reads 0 and
    ``a[i] = v`` there does nothing (the check the verifier needs, made defined)."""
    _check_value_type(type_, "array")
    if not issubclass(type_, IntType):
        raise BPFError("array: only integer elements are supported")
    if not isinstance(n, int) or not 0 < n <= 512 // type_.size:
        raise BPFError(f"array: {n!r} elements of {type_.__name__} do not fit the stack")
    return [type_(0)] * n


def var(type_: type[IntType], value: int = 0) -> Any:
    """Declare a global variable of ``type_`` (initially ``value``; ``bpf.load(...,
    constants={"name": v})`` overrides it). Assigning it in a program needs ``global name``,
    as in Python."""
    return Var(type_, value)


def const(type_: type[IntType], value: int = 0) -> Any:
    """Declare a read-only global of ``type_`` with a default ``value``; override it at load
    with ``bpf.load(..., constants={"name": v})``. In programs it reads as a ``type_`` value."""
    return Const(type_, value)


# -- contexts (annotations for ``ctx``; fields are compiled) ---------------------------------
class XDP:
    """The ``ctx`` of an XDP program (``struct xdp_md``): ``ingress_ifindex``,
    ``rx_queue_index``, ``egress_ifindex``, and ``ctx.load(T, offset=0)``."""

    ingress_ifindex: int
    rx_queue_index: int
    egress_ifindex: int

    def load(self, t: type[T], offset: int = 0) -> T | None:
        raise _only_compiled("ctx.load")


class SocketFilter:
    """The ``ctx`` of a socket filter (``struct __sk_buff``): ``len``, ``protocol``... and
    ``ctx.load(T, offset=0)`` (a copy into the stack with ``bpf_skb_load_bytes``)."""

    len: int
    protocol: int
    pkt_type: int
    ifindex: int

    def load(self, t: type[T], offset: int = 0) -> T | None:
        raise _only_compiled("ctx.load")


class TracepointContext:
    """The ``ctx`` of a tracepoint program: one attribute per field of the event's format."""

    def __getattr__(self, name: str) -> int:
        raise _only_compiled("tracepoint ctx fields")


class ProgramDecl:
    """A function marked as a BPF program. ``compile()`` gives the instructions, ``asm()`` a
    listing with the Python source interleaved; :func:`ebpf.bpf.load` loads it."""

    def __init__(self, fn: Callable[..., Any], program_type: ProgramType, section: str,
                 ctx_kind: str, tracepoint: tuple[str, str] | None = None, *,
                 attach_type: AttachType | None = None, attach_to: str | None = None,
                 ctx_layout: Callable[[], dict[str, tuple[int, type[IntType]]]] | None = None
                 ) -> None:
        self.fn = fn
        self.name = fn.__name__
        self.program_type = program_type
        self.section = section
        self.ctx_kind = ctx_kind
        self.tracepoint = tracepoint
        #: ``expected_attach_type`` at load (tracing and LSM kinds)
        self.attach_type = attach_type
        #: the kernel function, tracepoint or LSM hook the program is for; its vmlinux BTF
        #: id becomes ``attach_btf_id`` for the BTF-typed kinds
        self.attach_to = attach_to
        #: name -> (offset, type) of the ctx fields, computed at compile time (None: the
        #: compiler's own table for ``ctx_kind``)
        self.ctx_layout = ctx_layout
        #: reads (and writes) ctx fields itself when set (``_kinds.CtxAccess``: uprobe/USDT,
        #: perf_event, iterators, cgroup sock_addr/sockopt)
        self.ctx_access: Any = None
        #: (binary, symbol) of a uprobe, (binary, provider, name) of a USDT probe
        self.probe_target: tuple[str, ...] | None = None
        #: BPF_PROG_LOAD ``prog_flags`` (``BPF_F_SLEEPABLE`` for the ``.s`` kinds)
        self.prog_flags = 0
        #: maps the program needs although its body may not name them (an iterator's map=)
        self.uses_maps: tuple[MapDecl, ...] = ()
        self._compiled: Any = None
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def compile(self) -> Any:
        """Compile (once) and return the :class:`ebpf.bpf.CompiledProgram`."""
        if self._compiled is None:
            from ._compiler import compile_program

            self._compiled = compile_program(self)
        return self._compiled

    def asm(self) -> str:
        """The generated instructions, each Python statement's source line before its code."""
        return str(self.compile().listing())

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise BPFError(f"{self.name} is a BPF program: load it with ebpf.bpf.load, "
                       "it does not run in Python")

    def __repr__(self) -> str:
        return f"<bpf program {self.name} ({self.section})>"


class FuncDecl:
    """A function compiled as a BPF subprogram (a bpf-to-bpf ``call``): up to 5 integer
    parameters and an integer result, all annotated. It stays an ordinary Python function
    too: calling it from Python runs the Python code (with Python's unbounded ints)."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.name = fn.__name__
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<bpf func {self.name}>"


def func(fn: Callable[..., Any]) -> FuncDecl:
    """Mark ``fn`` as a BPF subprogram that programs (and other subprograms) can call."""
    return FuncDecl(fn)


def xdp(fn: Callable[..., Any]) -> ProgramDecl:
    """An XDP program (``SEC("xdp")``): returns an ``XDP_*`` action."""
    return ProgramDecl(fn, ProgramType.XDP, "xdp", "xdp")


def tc(fn: Callable[..., Any]) -> ProgramDecl:
    """A TC classifier (``SEC("tc")``, ``BPF_PROG_TYPE_SCHED_CLS``): ``ctx`` is the
    ``__sk_buff`` (``ctx.len``, ...), ``ctx.load(T)`` is direct packet access; returns a
    ``TC_ACT_*`` verdict."""
    return ProgramDecl(fn, ProgramType.SCHED_CLS, "tc", "tc")


def cgroup_skb(direction: str) -> Callable[[Callable[..., Any]], ProgramDecl]:
    """A cgroup skb program for ``"ingress"`` or ``"egress"`` (``SEC("cgroup_skb/...")``):
    returns 1 to let the packet through, 0 to drop it; ``ctx.load(T)`` reads the packet
    directly (from the network header: cgroup skb packets start at IP)."""
    if direction not in ("ingress", "egress"):
        raise BPFError(f"cgroup_skb: direction is 'ingress' or 'egress', not {direction!r}")

    def deco(fn: Callable[..., Any]) -> ProgramDecl:
        return ProgramDecl(fn, ProgramType.CGROUP_SKB, f"cgroup_skb/{direction}", "cgskb")

    return deco


def raw_tracepoint(name: str) -> Callable[[Callable[..., Any]], ProgramDecl]:
    """A raw tracepoint program for ``name`` (``SEC("raw_tp/name")``, Linux 4.17): ``ctx.arg0``
    .. ``ctx.arg11`` are the tracepoint's raw ``u64`` arguments. Attach with
    ``ebpf.link.raw_tracepoint.attach_raw_tracepoint(coll.prog, name)``."""
    if not name or "/" in name:
        raise BPFError(f"raw_tracepoint: expected an event name like 'sys_enter', not {name!r}")

    def deco(fn: Callable[..., Any]) -> ProgramDecl:
        return ProgramDecl(fn, ProgramType.RAW_TRACEPOINT, f"raw_tp/{name}", "rawtp")

    return deco


def socket_filter(fn: Callable[..., Any]) -> ProgramDecl:
    """A socket filter (``SEC("socket")``): returns how many bytes of the packet to keep."""
    return ProgramDecl(fn, ProgramType.SOCKET_FILTER, "socket", "skb")


def tracepoint(name: str) -> Callable[[Callable[..., Any]], ProgramDecl]:
    """A tracepoint program for ``"category/event"`` (``SEC("tracepoint/...")``); ``ctx``
    fields come from the running kernel's tracefs format of the event, read at compile time."""
    cat, sep, event = name.partition("/")
    if not sep or not cat or not event or "/" in event:
        raise BPFError(f"tracepoint: expected 'category/event', not {name!r}")

    def deco(fn: Callable[..., Any]) -> ProgramDecl:
        return ProgramDecl(fn, ProgramType.TRACEPOINT, f"tracepoint/{cat}/{event}", "tp",
                           (cat, event))

    return deco
