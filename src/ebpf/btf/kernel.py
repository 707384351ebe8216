"""The running kernel's BTF, read from ``/sys/kernel/btf`` (file IO only, no bpf(2)).

``/sys/kernel/btf/vmlinux`` is mapped read-only when the kernel allows it (Linux 6.16+), so only
the pages that are used are touched; older kernels serve it 4 KiB per ``read``, which costs a
few milliseconds more.
"""

from __future__ import annotations

import functools
import mmap
import os

from .spec import Spec

__all__ = ["KERNEL_BTF_DIR", "load_kernel", "load_kernel_module"]

KERNEL_BTF_DIR = "/sys/kernel/btf"


def _read_sysfs(path: str) -> bytes | mmap.mmap:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            return mmap.mmap(fd, 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
        except (OSError, ValueError):
            pass
        size = os.fstat(fd).st_size
        chunks = []
        while True:
            chunk = os.read(fd, max(size, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


@functools.cache
def load_kernel() -> Spec:
    """The BTF of the running kernel (``/sys/kernel/btf/vmlinux``), parsed once per process.

    Kernel: ``CONFIG_DEBUG_INFO_BTF``, Linux >= 5.4. Raises :class:`FileNotFoundError` when
    the kernel exposes no BTF, :class:`~ebpf.errors.ParseError` when it is malformed.
    """
    return Spec.from_bytes(_read_sysfs(os.path.join(KERNEL_BTF_DIR, "vmlinux")))


@functools.cache
def load_kernel_module(name: str) -> Spec:
    """The split BTF of kernel module ``name`` (``/sys/kernel/btf/<name>``), on top of
    :func:`load_kernel`. Kernel: ``CONFIG_DEBUG_INFO_BTF_MODULES``, Linux >= 5.11."""
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"bad module name {name!r}")
    if name == "vmlinux":
        return load_kernel()
    data = _read_sysfs(os.path.join(KERNEL_BTF_DIR, name))
    return Spec.from_bytes(data, base=load_kernel())
