"""Per-program-type builders: context access generated from the kernel's BTF, prologues,
return codes.

Each module covers one hook: ``xdp.data(R2)`` loads ``xdp_md->data`` with the offset and
size the kernel's ``struct xdp_md`` has, ``skb.field(R3, "mark")`` reads ``__sk_buff.mark``,
``tc.Action.SHOT`` is a verdict. Offsets come from the generated ABI layer (``ebpf._uapi``,
itself generated from vmlinux BTF), or from tracefs for tracepoints; none is hand-typed.
"""

from __future__ import annotations

from . import skb, tc, xdp
from ._context import Context, ContextField

__all__ = ["Context", "ContextField", "skb", "tc", "xdp"]
