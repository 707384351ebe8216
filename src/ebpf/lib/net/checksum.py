"""Internet checksums (RFC 1071): incremental updates in pure instructions, and the TC helpers.

All values here are in **wire order** (what a plain ``asm.load`` of the field gives; see
:mod:`ebpf.lib.net.byteorder`): the ones' complement sum does not depend on byte order as
long as every term uses the same one, which is how the kernel's ``csum_replace4`` works too.

* :func:`replace` updates a checksum in place after one 16- or 32-bit field changed from
  ``old`` to ``new`` (RFC 1624, eqn. 3: ``HC' = ~(~HC + ~m + m')``). It needs no helper, so
  it works in XDP, where ``bpf_l3_csum_replace``/``bpf_l4_csum_replace`` are not allowed.
  For TCP and UDP the pseudo-header covers the IP addresses: after rewriting an address,
  call it on the L4 checksum too.
* :func:`l3_replace`, :func:`l4_replace` call the skb helpers (TC, LWT...). They invalidate
  every packet pointer (reload ``data``/``data_end`` afterwards) and clobber R0-R5.
* :func:`ipv4_header` recomputes a 20-byte IPv4 header checksum from scratch.
"""

from __future__ import annotations

from ... import asm
from ...asm import Helper, Register
from ...errors import AssemblerError
from .._call import Arg, call, set_reg
from .._flags import BPF_F_MARK_MANGLED_0, BPF_F_PSEUDO_HDR

__all__ = ["diff", "fold", "ipv4_header", "l3_replace", "l4_replace", "replace"]


def fold(acc: Register, tmp: Register, *, folds: int = 2) -> list[asm.Instruction]:
    """Fold a sum of 16-bit words in ``acc`` to 16 bits with end-around carry.

    Each fold turns a value below ``2**(16+k)`` into one below ``2**16 + 2**k``: two folds
    suffice below ``2**32`` when a carry cannot recur, three below ``2**48``, four always.
    """
    if acc == tmp:
        raise AssemblerError("checksum.fold: acc and tmp must differ")
    out: list[asm.Instruction] = []
    for _ in range(folds):
        out += [asm.mov(tmp, acc), asm.rsh(tmp, 16), asm.and_(acc, 0xFFFF), asm.add(acc, tmp)]
    return out


def _add_value(acc: Register, value: Register | int, tmp: Register, mask: int,
               invert: bool) -> list[asm.Instruction]:
    """acc += value (or ~value within ``mask``); ``value`` zero-extended to ``mask``."""
    if isinstance(value, Register):
        if value in (acc, tmp):
            raise AssemblerError("checksum.replace: old/new must not be acc or tmp")
        if not invert:
            return [asm.add(acc, value)]
        flip = asm.xor32(tmp, -1) if mask == 0xFFFF_FFFF else asm.xor(tmp, mask)
        return [asm.mov(tmp, value), flip, asm.add(acc, tmp)]
    v = (~value if invert else value) & mask
    if v <= 0x7FFF_FFFF:
        return [asm.add(acc, v)]
    return [*set_reg(tmp, v), asm.add(acc, tmp)]


def replace(base: Register, off: int, old: Register | int, new: Register | int, size: int, *,
            acc: Register, tmp: Register, udp: bool = False) -> asm.Fragment:
    """Update the checksum at ``base + off`` after a ``size``-byte field went ``old`` -> ``new``.

    ``old``/``new`` are wire-order values: registers holding what ``asm.load`` read (zero-
    extended), or constants already converted with ``htons``/``htonl``. ``size`` is 2 or 4.
    With ``udp=True`` a checksum of 0 (none sent) is left alone and a result of 0 is stored
    as 0xFFFF, as RFC 768 requires. Clobbers ``acc`` and ``tmp``.
    """
    if size not in (2, 4):
        raise AssemblerError(f"checksum.replace: size must be 2 or 4, not {size}")
    if len({base, acc, tmp}) != 3:
        raise AssemblerError("checksum.replace: base, acc and tmp must be distinct")
    mask = 0xFFFF if size == 2 else 0xFFFF_FFFF
    insns: list[asm.Item] = [asm.load(asm.H, acc, base, off)]
    if udp:
        insns.append(asm.jeq(acc, 0, "done"))
    insns.append(asm.xor(acc, 0xFFFF))
    insns += _add_value(acc, old, tmp, mask, invert=True)
    insns += _add_value(acc, new, tmp, mask, invert=False)
    insns += fold(acc, tmp, folds=2 if size == 2 else 3)
    insns.append(asm.xor(acc, 0xFFFF))
    if udp:
        insns += [asm.jne(acc, 0, "store"), asm.mov(acc, 0xFFFF), asm.label("store")]
    insns.append(asm.store(asm.H, base, off, acc))
    if udp:
        insns.append(asm.label("done"))
    return asm.Fragment(insns, name=f"csum_replace{size}")


def ipv4_header(l3: Register, *, acc: Register, tmp: Register) -> asm.Fragment:
    """Compute and store the checksum of a 20-byte IPv4 header (no options) at ``l3``.

    The 20 bytes must be bounds-checked. Clobbers ``acc`` and ``tmp``.
    """
    if len({l3, acc, tmp}) != 3:
        raise AssemblerError("checksum.ipv4_header: registers must be distinct")
    insns: list[asm.Instruction] = [asm.load(asm.H, acc, l3, 0)]
    for off in (2, 4, 6, 8, 12, 14, 16, 18):
        insns += [asm.load(asm.H, tmp, l3, off), asm.add(acc, tmp)]
    insns += fold(acc, tmp, folds=2)
    insns += [asm.xor(acc, 0xFFFF), asm.store(asm.H, l3, 10, acc)]
    return asm.Fragment(insns, name="csum_ipv4_header")


def l3_replace(ctx: Arg, offset: Arg, old: Arg, new: Arg, size: int) -> list[asm.Instruction]:
    """``bpf_l3_csum_replace(ctx, offset, old, new, size)``: fix the IP header checksum at
    ``offset`` (from the start of the packet) after a field changed (wire order values).

    Packet pointers are invalid afterwards; R0 is 0 or a negative errno.
    """
    if size not in (2, 4):
        raise AssemblerError(f"checksum.l3_replace: size must be 2 or 4, not {size}")
    return call(Helper.L3_CSUM_REPLACE, ctx, offset, old, new, size)


def l4_replace(ctx: Arg, offset: Arg, old: Arg, new: Arg, size: int, *,
               pseudo_header: bool = False, udp: bool = False) -> list[asm.Instruction]:
    """``bpf_l4_csum_replace``: fix a TCP/UDP checksum at ``offset`` after a field changed.

    ``pseudo_header=True`` for fields in the pseudo-header (the IP addresses);
    ``udp=True`` sets ``BPF_F_MARK_MANGLED_0`` (leave a zero checksum, never produce one).
    Packet pointers are invalid afterwards; R0 is 0 or a negative errno.
    """
    if size not in (2, 4):
        raise AssemblerError(f"checksum.l4_replace: size must be 2 or 4, not {size}")
    flags = size | (BPF_F_PSEUDO_HDR if pseudo_header else 0) | (
        BPF_F_MARK_MANGLED_0 if udp else 0)
    return call(Helper.L4_CSUM_REPLACE, ctx, offset, old, new, flags)


def diff(from_ptr: Arg, from_size: Arg, to_ptr: Arg, to_size: Arg, seed: Arg = 0
         ) -> list[asm.Instruction]:
    """``r0 = bpf_csum_diff(from, from_size, to, to_size, seed)`` (sizes multiples of 4).

    Allowed in XDP; fold R0 with :func:`fold` (``folds=4``) to get a 16-bit sum.
    """
    return call(Helper.CSUM_DIFF, from_ptr, from_size, to_ptr, to_size, seed)
