"""struct_ops: implement a kernel ops table (``tcp_congestion_ops``...) with BPF programs.

Three steps, each checked against the kernel's BTF:

1. load one ``STRUCT_OPS`` program per callback with :func:`load_struct_ops_program`
   (``attach_btf_id`` = the ops struct, ``expected_attach_type`` = the member's index);
2. build the map value with :meth:`StructOps.create`: function pointer members get the
   programs' fds, data members (``name``, ``flags``...) the values given, the rest zeros,
   laid out from ``struct bpf_struct_ops_<type>`` of vmlinux BTF;
3. register it with :func:`attach_struct_ops`: through a bpf_link (:class:`StructOpsLink`,
   ``BPF_F_LINK`` maps, kernel >= 6.4) or, for maps created with ``link=False``, by the map
   update itself (:class:`StructOpsAttachment`, >= 5.6; unregistered by deleting the element).

Example, a TCP congestion control::

    progs = {m: load_struct_ops_program("tcp_congestion_ops", m, insns[m])
             for m in ("ssthresh", "cong_avoid", "undo_cwnd", "init")}
    with StructOps.create("tcp_congestion_ops", progs, fields={"name": "mycc"}) as ops, \\
            attach_struct_ops(ops):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, b"mycc")
"""

from __future__ import annotations

import errno as _errno
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, final, overload

from .. import errors
from .._programs import Program
from .._sys.syscall import bpf
from .._types import AttachType, LinkType, MapFlags, MapType, ProgramType
from .._uapi import _defines as _d
from .._uapi import _generated_types as _t
from .base import Attachment, Link, link_create

__all__ = [
    "StructOps",
    "StructOpsAttachment",
    "StructOpsLink",
    "StructOpsType",
    "attach_struct_ops",
    "load_struct_ops_program",
]


@dataclass(frozen=True, slots=True)
class StructOpsMember:
    """One member of an ops struct: its index (the programs' ``expected_attach_type``), byte
    offset and size in the struct, and whether it is a function pointer."""

    name: str
    index: int
    offset: int
    size: int
    is_function: bool
    is_char_array: bool


@dataclass(frozen=True, slots=True)
class StructOpsType:
    """An ops struct as vmlinux BTF describes it (see :meth:`lookup`).

    ``type_id`` is the struct (``attach_btf_id`` of the programs), ``value_type_id`` the map
    value wrapper ``struct bpf_struct_ops_<name>`` (``btf_vmlinux_value_type_id`` of the
    map), whose member ``data`` at ``data_offset`` holds the struct.
    """

    name: str
    type_id: int
    size: int
    value_type_id: int
    value_size: int
    data_offset: int
    members: tuple[StructOpsMember, ...]

    @classmethod
    def lookup(cls, name: str) -> StructOpsType:
        """Describe ``struct <name>`` from kernel BTF.

        :class:`~ebpf.errors.NotSupportedError` if the kernel has no such struct_ops type.
        """
        from .. import btf

        spec = btf.load_kernel()
        try:
            st = spec.find(name, kind=btf.Struct)
            value = spec.find(f"bpf_struct_ops_{name}", kind=btf.Struct)
        except KeyError:
            raise errors.NotSupportedError(
                f"struct_ops {name!r}",
                detail=f"no struct {name} / bpf_struct_ops_{name} in kernel BTF") from None
        data = value.member("data")
        members = []
        for i, m in enumerate(st.members):
            t = spec.resolve(m.type)
            is_fn = isinstance(t, btf.Pointer) and isinstance(spec.resolve(t.target),
                                                              btf.FuncProto)
            is_chars = isinstance(t, btf.Array) and spec.sizeof(t.elem_type) == 1
            members.append(StructOpsMember(m.name, i, m.byte_offset, spec.sizeof(t), is_fn,
                                           is_chars))
        return cls(name, st.id, st.size, value.id, value.size, data.byte_offset, tuple(members))

    def member(self, name: str) -> StructOpsMember:
        for m in self.members:
            if m.name == name:
                return m
        raise ValueError(f"struct {self.name} has no member {name!r} (members: "
                         f"{', '.join(x.name for x in self.members)})")


def load_struct_ops_program(type_name: str, member: str, insns: Any, *, name: str = "",
                            license: str = "GPL", **kwargs: Any) -> Program:
    """Load a ``STRUCT_OPS`` program implementing ``<type_name>.<member>``.

    The program receives the callback's arguments as an array of u64 in its context (``r1``),
    as tracing programs do. ``kwargs`` go to :meth:`ebpf.Program.load`. Kernel >= 5.6.
    """
    t = StructOpsType.lookup(type_name)
    m = t.member(member)
    if not m.is_function:
        raise ValueError(f"{type_name}.{member} is not a function pointer")
    return Program.load(ProgramType.STRUCT_OPS, insns, license=license,
                        name=name or member, attach_btf_id=t.type_id,
                        expected_attach_type=m.index, **kwargs)


@final
class StructOps:
    """A ``BPF_MAP_TYPE_STRUCT_OPS`` map holding one ops table (see :meth:`create`).

    The map keeps the programs alive (the kernel holds references once the value is
    written). Close it when done; a registered table stays until its link or attachment goes.
    """

    __slots__ = ("_value", "link_mode", "map", "programs", "type")

    def __init__(self, type_: StructOpsType, map_: Any, value: bytes,
                 programs: dict[str, Program], link_mode: bool) -> None:
        self.type = type_
        self.map = map_
        self._value = value
        self.programs = programs
        self.link_mode = link_mode

    @classmethod
    def create(cls, type_name: str, programs: Mapping[str, Program], *,
               fields: Mapping[str, int | str | bytes] | None = None,
               link: bool | None = None, map_name: str = "") -> StructOps:
        """Build and (for ``link=True``) write the value of a ``struct <type_name>`` table.

        ``programs`` maps function-pointer members to ``STRUCT_OPS`` programs loaded for them
        (:func:`load_struct_ops_program`). ``fields`` sets data members: ints (by the
        member's size, native byte order) or ``str``/``bytes`` for char arrays such as
        ``name`` (NUL-terminated, must fit). Every other member is zero. Which members are
        required, and which data members may be set, is the kernel's to say (``EINVAL``);
        ``tcp_congestion_ops`` needs ``ssthresh``, ``undo_cwnd``, ``cong_avoid`` or
        ``cong_control``, and a unique ``name``.

        ``link=True`` (``BPF_F_LINK``, >= 6.4) creates a map registered by
        :func:`attach_struct_ops` through a link; ``link=False`` one that the same call
        registers by writing the value. ``link=None`` (the default) takes a link where the
        kernel has struct_ops links and falls back to ``link=False`` where the map create
        refuses ``BPF_F_LINK`` with ``EINVAL`` (5.6 to 6.3).
        """
        from .._maps import Map, value_btf

        t = StructOpsType.lookup(type_name)
        data = bytearray(t.size)
        progs: dict[str, Program] = {}
        for member, prog in programs.items():
            m = t.member(member)
            if not m.is_function:
                raise ValueError(f"{type_name}.{member} is a data member: put it in fields=")
            if not isinstance(prog, Program):
                raise TypeError(f"programs[{member!r}] must be an ebpf.Program")
            if prog.type != ProgramType.STRUCT_OPS:
                raise ValueError(f"programs[{member!r}]: invalid program type "
                                 f"{getattr(prog.type, 'name', prog.type)}, expected STRUCT_OPS")
            eat = prog.expected_attach_type
            if eat is not None and int(eat) != m.index:
                raise ValueError(f"programs[{member!r}] was loaded for member index {int(eat)}, "
                                 f"not {m.index} ({member})")
            struct.pack_into("=Q", data, m.offset, prog.fileno())
            progs[member] = prog
        for member, value in (fields or {}).items():
            m = t.member(member)
            if m.is_function:
                raise ValueError(f"{type_name}.{member} is a function pointer: pass a program")
            if isinstance(value, (str, bytes)):
                raw = value.encode() if isinstance(value, str) else value
                if not m.is_char_array:
                    raise TypeError(f"{type_name}.{member} is not a char array")
                if len(raw) >= m.size:
                    raise ValueError(f"{type_name}.{member} holds at most {m.size - 1} bytes")
                data[m.offset:m.offset + len(raw)] = raw
            elif isinstance(value, int) and not isinstance(value, bool):
                if m.size not in (1, 2, 4, 8):
                    raise TypeError(f"{type_name}.{member} ({m.size} bytes) is not an integer")
                fmt = {1: "B", 2: "H", 4: "I", 8: "Q"}[m.size]
                struct.pack_into("=" + fmt, data, m.offset, value & ((1 << 8 * m.size) - 1))
            else:
                raise TypeError(f"fields[{member!r}] must be an int, str or bytes")
        value = bytes(t.data_offset) + bytes(data)
        value += bytes(t.value_size - len(value))
        # The kernel wants a BTF object with the map, although the value type comes from
        # vmlinux (btf_vmlinux_value_type_id): any valid BTF does.
        btf_fd, _, _ = value_btf(4)
        with btf_fd:
            def create(flags: MapFlags) -> Map:
                return Map.create(MapType.STRUCT_OPS, key_size=4, value_size=t.value_size,
                                  max_entries=1, flags=flags, name=map_name or type_name,
                                  btf=btf_fd, btf_vmlinux_value_type_id=t.value_type_id)

            if link is None:
                try:
                    m_, link = create(MapFlags.LINK), True
                except errors.SyscallError as e:
                    if e.errno != _errno.EINVAL:
                        raise
                    m_, link = create(MapFlags.NONE), False
            else:
                m_ = create(MapFlags.LINK if link else MapFlags.NONE)
        try:
            if link:
                m_[0] = value  # state "ready": registered by the link
        except BaseException:
            m_.close()
            raise
        return cls(t, m_, value, progs, link)

    def fileno(self) -> int:
        return int(self.map.fileno())

    @property
    def id(self) -> int:
        """The map's kernel id."""
        return int(self.map.id)

    def close(self) -> None:
        self.map.close()

    @property
    def closed(self) -> bool:
        return bool(self.map.closed)

    def __enter__(self) -> StructOps:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<StructOps {self.type.name} {'link' if self.link_mode else 'legacy'} {self.map!r}>"


@final
class StructOpsLink(Link):
    """A registered struct_ops table held by a bpf_link (``BPF_LINK_TYPE_STRUCT_OPS``, >= 6.4).

    :meth:`update` swaps in another table of the same type (another ``link=True`` map) and
    has ``program`` set to that :class:`StructOps`; ``info().prog_id`` is 0, see
    :attr:`map_id`.
    """

    __slots__ = ()
    link_type = LinkType.STRUCT_OPS

    @property
    def map_id(self) -> int:
        """The id of the struct_ops map registered (0 once detached)."""
        return int(self.info().raw.struct_ops.map_id)

    def update(self, program: StructOps, *,  # type: ignore[override]
               expected: StructOps | None = None) -> None:
        """Register ``program`` (a :class:`StructOps`) in place of the current table."""
        if not isinstance(program, StructOps) or not program.link_mode:
            raise TypeError("a struct_ops link is updated with a StructOps created with link=True")
        attr = _t.LinkUpdateAttr()
        attr.link_fd = self.fileno()
        attr.new_map_fd = program.fileno()
        if expected is not None:
            attr.old_map_fd = expected.fileno()
            attr.flags = _d.BPF_F_REPLACE
        bpf(_t.bpf_cmd.BPF_LINK_UPDATE, attr)
        self.program = program  # type: ignore[assignment]


@final
class StructOpsAttachment(Attachment):
    """A table registered by writing a ``link=False`` struct_ops map; :meth:`detach` deletes
    the element, which unregisters it (``BPF_MAP_DELETE_ELEM``)."""

    __slots__ = ("_ops",)

    def __init__(self, ops: StructOps) -> None:
        super().__init__(None)
        self._ops = ops

    @property
    def ops(self) -> StructOps:
        return self._ops

    def _detach(self) -> None:
        if self._ops.closed:
            return
        try:
            del self._ops.map[0]
        except KeyError:
            pass
        except errors.SyscallError as e:
            if e.errno not in (_errno.ENOENT, _errno.EINVAL):
                raise


@overload
def attach_struct_ops(ops: StructOps, *, method: Literal["link"]) -> StructOpsLink: ...
@overload
def attach_struct_ops(ops: StructOps, *, method: Literal["update"]) -> StructOpsAttachment: ...
@overload
def attach_struct_ops(ops: StructOps, *,
                      method: None = ...) -> StructOpsLink | StructOpsAttachment: ...


def attach_struct_ops(ops: StructOps, *, method: Literal["link", "update"] | None = None,
                      ) -> StructOpsLink | StructOpsAttachment:
    """Register a struct_ops table with the kernel.

    A ``link=True`` table is registered through ``BPF_LINK_CREATE`` (``BPF_STRUCT_OPS``,
    >= 6.4) -> :class:`StructOpsLink`; a ``link=False`` one by writing its value
    (``BPF_MAP_UPDATE_ELEM``, >= 5.6) -> :class:`StructOpsAttachment`. ``method`` only checks
    that the table was created for that mechanism. ``EEXIST`` when a table with the same
    ``name`` is already registered (e.g. a TCP congestion control of that name).
    """
    if not isinstance(ops, StructOps):
        raise TypeError(f"expected a StructOps, not {type(ops).__name__}")
    if ops.closed:
        raise ValueError("the StructOps map is closed")
    if method not in (None, "link", "update"):
        raise ValueError(f"method must be 'link', 'update' or None, not {method!r}")
    if method == "link" and not ops.link_mode:
        raise ValueError("method='link' needs a StructOps created with link=True")
    if method == "update" and ops.link_mode:
        raise ValueError("method='update' needs a StructOps created with link=False")
    if ops.link_mode:
        fd = link_create(ops.fileno(), 0, AttachType.STRUCT_OPS)
        link = StructOpsLink(fd, None)
        link.program = ops  # type: ignore[assignment]
        return link
    ops.map[0] = ops._value
    return StructOpsAttachment(ops)
