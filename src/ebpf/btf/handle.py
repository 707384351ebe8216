"""Load a BTF blob into the kernel (``BPF_BTF_LOAD``); the one impure module of :mod:`ebpf.btf`.

::

    with BTFHandle.load(blob) as h:
        Map.create(..., btf=h, btf_key_type_id=1, btf_value_type_id=2)
"""

from __future__ import annotations

import ctypes
from typing import final

from .. import errors
from .._sys.fd import FD, KernelObject
from .._sys.syscall import bpf_fd
from .._uapi import _generated_types as _t

__all__ = ["BTFHandle"]

_LOG_SIZE = 1 << 20


@final
class BTFHandle(KernelObject):
    """BTF loaded in the kernel; holds its fd. Close it when the objects using it are made
    (maps and programs keep their own reference)."""

    __slots__ = ("_fd",)

    def __init__(self, fd: FD) -> None:
        self._fd = fd

    @classmethod
    def load(cls, blob: bytes) -> BTFHandle:
        """``BPF_BTF_LOAD``. A rejection raises :class:`~ebpf.errors.VerifierError` whose
        ``log`` is the kernel's BTF verifier log (the load is retried with a log to get it)."""
        buf = ctypes.create_string_buffer(blob, len(blob))
        attr = _t.BtfLoadAttr()
        attr.btf = ctypes.addressof(buf)
        attr.btf_size = len(blob)
        try:
            return cls(bpf_fd(_t.bpf_cmd.BPF_BTF_LOAD, attr, keep=buf, what="BTF"))
        except errors.SyscallError as first:
            if isinstance(first, errors.BPFPermissionError):
                raise
            log = ctypes.create_string_buffer(_LOG_SIZE)
            attr.btf_log_buf = ctypes.addressof(log)
            attr.btf_log_size = _LOG_SIZE
            attr.btf_log_level = 1
            try:
                return cls(bpf_fd(_t.bpf_cmd.BPF_BTF_LOAD, attr, keep=(buf, log), what="BTF"))
            except errors.SyscallError as e:
                raise errors.VerifierError("BPF_BTF_LOAD", e.errno or 0, log.raw) from None

    def __repr__(self) -> str:
        return f"<BTFHandle {'closed' if self.closed else f'fd={self.fileno()}'}>"
