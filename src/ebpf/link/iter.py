"""BPF iterators: programs that walk kernel objects and write text or records to a file.

An iterator program (``BPF_PROG_TYPE_TRACING``, ``expected_attach_type=TRACE_ITER``,
``attach_to="task"`` for ``bpf_iter_task``) is attached with :func:`attach_iter`; each
:meth:`IterLink.open` (``BPF_ITER_CREATE``) starts a new walk whose output is read like a
file. ``bpf_seq_printf``/``bpf_seq_write`` in the program produce that output::

    prog = ebpf.Program.load(ebpf.ProgramType.TRACING, insns,
                             expected_attach_type=ebpf.AttachType.TRACE_ITER, attach_to="task")
    with attach_iter(prog) as it:
        text = it.read().decode()

A pinned iterator link can also be read with ``cat <pin>``. Kernel: >= 5.8 (task, map...);
the ``task``, ``pid`` and ``pid_fd`` restrictions need >= 6.1, ``cgroup`` iterators >= 6.1.
"""

from __future__ import annotations

import ctypes
import enum
import os
from typing import BinaryIO, final

from .._programs import Program
from .._sys import commands
from .._sys.fd import FD
from .._sys.syscall import bpf_fd
from .._types import AttachType, LinkType, ProgramType
from .._uapi import _generated_types as _t
from ..asm.instruction import HasFileno
from .base import Link, link_create
from .perf_event import check_attach_type, check_program

__all__ = ["CgroupIterOrder", "IterLink", "attach_iter"]


class CgroupIterOrder(enum.IntEnum):
    """Walk order of a cgroup iterator (``enum bpf_cgroup_iter_order``)."""

    UNSPEC = _t.BPF_CGROUP_ITER_ORDER_UNSPEC  #: ``BPF_CGROUP_ITER_ORDER_UNSPEC``
    #: ``BPF_CGROUP_ITER_SELF_ONLY``: only the given cgroup
    SELF_ONLY = _t.BPF_CGROUP_ITER_SELF_ONLY
    DESCENDANTS_PRE = _t.BPF_CGROUP_ITER_DESCENDANTS_PRE  #: ``BPF_CGROUP_ITER_DESCENDANTS_PRE``
    DESCENDANTS_POST = _t.BPF_CGROUP_ITER_DESCENDANTS_POST  #: ``BPF_CGROUP_ITER_DESCENDANTS_POST``
    ANCESTORS_UP = _t.BPF_CGROUP_ITER_ANCESTORS_UP  #: ``BPF_CGROUP_ITER_ANCESTORS_UP``


#: ``union bpf_iter_link_info``, generated from kernel BTF.
IterLinkInfoUnion = _t.BpfIterLinkInfo


@final
class IterLink(Link):
    """An iterator program attached (``BPF_LINK_TYPE_ITER``, kernel >= 5.8).

    :meth:`open` starts a walk and returns a binary file; :meth:`read` reads a whole walk.
    :meth:`update` replaces the program (the next walk uses it).
    """

    link_type = LinkType.ITER

    def open(self) -> BinaryIO:
        """Start a new walk (``BPF_ITER_CREATE``): a file to read the program's output from.

        Each open is independent; close the file when done (it is a context manager).
        """
        attr = _t.IterCreateAttr()
        attr.link_fd = self.fileno()
        fd = bpf_fd(_t.bpf_cmd.BPF_ITER_CREATE, attr, what="iterator")
        raw = fd.detach()
        return open(raw, "rb", buffering=0, closefd=True)

    def read(self) -> bytes:
        """Run one whole walk and return everything the program wrote."""
        chunks = []
        with self.open() as f:
            while True:
                chunk = f.read(1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
        return b"".join(chunks)

    def target_name(self) -> str:
        """The iterator target (``"task"``, ``"bpf_map_elem"``...), as the kernel reports it."""
        buf = ctypes.create_string_buffer(64)
        info = _t.BpfLinkInfo()
        info.iter.target_name = ctypes.addressof(buf)
        info.iter.target_name_len = len(buf)
        commands.obj_info(self.fileno(), info)
        return buf.value.decode("utf-8", "replace")

    def __enter__(self) -> IterLink:
        return self


def attach_iter(
    program: Program,
    *,
    map: HasFileno | int | None = None,
    cgroup: int | str | os.PathLike[str] | None = None,
    cgroup_id: int = 0,
    order: CgroupIterOrder = CgroupIterOrder.UNSPEC,
    tid: int = 0,
    pid: int = 0,
    pid_fd: int = 0,
) -> IterLink:
    """Attach an iterator program; read its output with :meth:`IterLink.read`.

    Restrict the walk with at most one of: ``map`` (an ``ebpf.Map`` or fd, for
    ``bpf_map_elem``/``bpf_sk_storage_map`` iterators), ``cgroup`` (an fd or a path) or
    ``cgroup_id`` with ``order``, or one of ``tid``/``pid``/``pid_fd`` for task iterators.

    Raises :class:`ValueError` unless ``program`` is a ``TRACING`` program loaded with
    ``expected_attach_type=TRACE_ITER``.
    """
    check_program(program, ProgramType.TRACING, what="attach_iter")
    check_attach_type(program, (AttachType.TRACE_ITER,), what="attach_iter")
    task = [v for v in (tid, pid, pid_fd) if v]
    groups = sum((map is not None, cgroup is not None or bool(cgroup_id), bool(task)))
    if groups > 1 or len(task) > 1:
        raise ValueError("attach_iter: give at most one of map, cgroup/cgroup_id, tid, pid or "
                         "pid_fd")
    if cgroup is not None and cgroup_id:
        raise ValueError("attach_iter: give cgroup or cgroup_id, not both")
    if any(v < 0 for v in (tid, pid, pid_fd, cgroup_id)):
        raise ValueError("attach_iter: ids must be positive")
    info = IterLinkInfoUnion()
    used = False
    opened: FD | None = None
    try:
        if map is not None:
            info.map.map_fd = map if isinstance(map, int) else map.fileno()
            used = True
        elif cgroup is not None or cgroup_id:
            if isinstance(cgroup, int):
                info.cgroup.cgroup_fd = cgroup
            elif cgroup is not None:
                opened = FD(os.open(cgroup, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC),
                            "cgroup")
                info.cgroup.cgroup_fd = opened.fileno()
            info.cgroup.cgroup_id = cgroup_id
            info.cgroup.order = int(order)
            used = True
        elif task:
            info.task.tid, info.task.pid, info.task.pid_fd = tid, pid, pid_fd
            used = True
        elif order != CgroupIterOrder.UNSPEC:
            raise ValueError("attach_iter: order needs cgroup or cgroup_id")
        extra = {}
        if used:
            extra = {"iter_info": info, "iter_info_len": ctypes.sizeof(info)}
        return IterLink(_link_create_iter(program, extra), program)
    finally:
        if opened is not None:
            opened.close()


def _link_create_iter(program: Program, extra: dict[str, object]) -> FD:
    if not extra:
        return link_create(program, 0, AttachType.TRACE_ITER)
    info = extra["iter_info"]
    assert isinstance(info, IterLinkInfoUnion)
    buf = (ctypes.c_uint8 * ctypes.sizeof(info)).from_buffer_copy(bytes(info))
    return link_create(program, 0, AttachType.TRACE_ITER, iter_info=buf,
                       iter_info_len=ctypes.sizeof(info))
