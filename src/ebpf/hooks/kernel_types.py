"""Kernel struct members resolved from BTF when the program is built.

BTF-typed pointers (``fentry``/``LSM``/iterator arguments, ``bpf_get_current_task_btf()``)
can be dereferenced with plain loads; the offsets come from the running kernel's BTF (or a
given :class:`ebpf.btf.Spec`), which is what CO-RE would resolve at load time::

    kernel_types.load(R2, R1, "task_struct", "tgid")      # r2 = task->tgid
"""

from __future__ import annotations

from typing import Any

from .. import asm
from ..asm import Register
from ..errors import AssemblerError

__all__ = ["load", "member"]

_SIZES = {1: asm.B, 2: asm.H, 4: asm.W, 8: asm.DW}


def member(struct: str, path: str, spec: Any = None) -> tuple[int, int]:
    """``(byte offset, size)`` of ``struct.path`` (``"a.b"`` walks embedded structs and
    anonymous members, not pointers)."""
    from .. import btf

    s = spec if spec is not None else btf.load_kernel()
    t: Any = s.find(struct, kind=btf.Composite)
    off = 0
    size = 0
    for name in path.split("."):
        if not isinstance(t, btf.Composite):
            raise AssemblerError(f"{struct}.{path}: {name!r} is not inside a struct/union")
        try:
            m = t.member(name)
        except KeyError as e:
            raise AssemblerError(f"{struct}.{path}: {e.args[0]}") from None
        if m.bitfield_size or m.offset % 8:
            raise AssemblerError(f"{struct}.{path}: bitfields cannot be loaded directly")
        off += m.byte_offset
        t = s.resolve(m.type)
        size = s.sizeof(t)
    return off, size


def load(dst: Register, ptr: Register, struct: str, path: str, spec: Any = None
         ) -> asm.Instruction:
    """``dst = ((struct <struct> *)ptr)-><path>`` with the kernel's offset and size."""
    off, size = member(struct, path, spec)
    if size not in _SIZES:
        raise AssemblerError(f"{struct}.{path} is {size} bytes: not loadable into a register")
    return asm.load(_SIZES[size], dst, ptr, off)
