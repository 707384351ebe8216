"""Per-program shortcuts: current task ids, pid/uid filters, printk lines, spin-locked
sections, pointer-chain reads, redirect verdicts, LSM verdicts, fentry arguments by name.

::

    from ebpf.lib import patterns as p
    p.filter_by_pid(os.getpid(), skip="out")         # go on only in our process
    p.current_uid(R6)
    p.trace_println("hit %d", R6, stack=-64)
    p.core_read(R7, R1, [("task_struct", "real_parent"), ("task_struct", "tgid")],
                size=4, stack=-8)
    p.with_spinlock(R6, 0, [asm.add(R1, 1)])

Everything is pure except what reads kernel BTF (``core_read`` with type names,
:func:`fentry_arg`), which loads ``/sys/kernel/btf/vmlinux`` once.
"""

from __future__ import annotations

import errno as _errno
from collections.abc import Sequence

from .. import asm
from ..asm import R0, R1, R10, Helper, Register
from ..errors import AssemblerError
from . import helpers
from ._call import Arg, call, fp

__all__ = [
    "LSM_ALLOW",
    "core_read",
    "current_comm",
    "current_gid",
    "current_pid",
    "current_pid_tgid",
    "current_tgid",
    "current_tid",
    "current_uid",
    "fentry_arg",
    "fentry_arg_index",
    "field_offset",
    "filter_by_pid",
    "filter_by_tgid",
    "filter_by_uid",
    "lsm_allow",
    "lsm_deny",
    "msg_redirect",
    "sk_redirect",
    "trace_println",
    "with_spinlock",
    "xdp_redirect",
    "xdp_redirect_map",
]

LSM_ALLOW = 0  #: what an LSM program returns to allow the operation


def _mv(dst: Register) -> list[asm.Instruction]:
    return [] if dst == R0 else [asm.mov(dst, R0)]


# --- current task ---------------------------------------------------------------------------
def current_pid_tgid(dst: Register = R0) -> list[asm.Instruction]:
    """``dst = tgid << 32 | tid``."""
    return helpers.get_current_pid_tgid(dst=dst)


def current_tgid(dst: Register = R0) -> list[asm.Instruction]:
    """``dst`` = the process id as userspace sees it (``getpid()``, the kernel's tgid)."""
    return [asm.call(Helper.GET_CURRENT_PID_TGID), asm.rsh(R0, 32), *_mv(dst)]


current_pid = current_tgid  #: alias: a userspace PID is the kernel's tgid


def current_tid(dst: Register = R0) -> list[asm.Instruction]:
    """``dst`` = the thread id (``gettid()``, the kernel's pid)."""
    return [asm.call(Helper.GET_CURRENT_PID_TGID), asm.mov32(R0, R0), *_mv(dst)]


def current_uid(dst: Register = R0) -> list[asm.Instruction]:
    """``dst`` = the current uid (``getuid()``)."""
    return [asm.call(Helper.GET_CURRENT_UID_GID), asm.mov32(R0, R0), *_mv(dst)]


def current_gid(dst: Register = R0) -> list[asm.Instruction]:
    """``dst`` = the current gid (``getgid()``)."""
    return [asm.call(Helper.GET_CURRENT_UID_GID), asm.rsh(R0, 32), *_mv(dst)]


def current_comm(stack: int) -> list[asm.Instruction]:
    """The current task's name (16 bytes, NUL padded) at ``r10 + stack``; R0 = 0."""
    fp(stack)
    if stack + 16 > 0:
        raise AssemblerError(f"current_comm: 16 bytes at {stack} leave the frame")
    return helpers.get_current_comm(fp(stack), 16)


def _filter(getter: list[asm.Instruction], value: int, skip: str, what: str
            ) -> list[asm.Instruction]:
    if not 0 <= value <= 0xFFFF_FFFF:
        raise AssemblerError(f"{what}: {value} is not a u32")
    return [*getter, *( [asm.jne(R0, value, skip)] if value <= 0x7FFF_FFFF
                        else [asm.mov32(R1, value), asm.jne(R0, R1, skip)])]


def filter_by_pid(pid: int, skip: str) -> list[asm.Instruction]:
    """Jump to ``skip`` unless the current process (tgid) is ``pid``. Clobbers R0-R5."""
    return _filter(current_tgid(), pid, skip, "filter_by_pid")


filter_by_tgid = filter_by_pid


def filter_by_uid(uid: int, skip: str) -> list[asm.Instruction]:
    """Jump to ``skip`` unless the current uid is ``uid``. Clobbers R0-R5."""
    return _filter(current_uid(), uid, skip, "filter_by_uid")


# --- trace_printk ---------------------------------------------------------------------------
def trace_println(fmt: str, *args: Arg, stack: int) -> list[asm.Instruction]:
    """``bpf_trace_printk(fmt, ...)`` with ``fmt`` written to the stack at ``r10 + stack``
    first (up to 3 values; ``%d %u %x %s %p`` and friends). A newline is added when
    missing (the kernel prints one line per call). R0 = bytes written or -errno."""
    text = fmt.encode() + (b"" if fmt.endswith("\n") else b"\n") + b"\0"
    if len(args) > 3:
        raise AssemblerError(f"trace_println takes at most 3 values, not {len(args)}")
    room = (len(text) + 7) // 8 * 8
    if stack < -512 or stack + room > 0:
        raise AssemblerError(f"trace_println: {room} bytes at {stack} leave the frame")
    for a in args:
        if isinstance(a, fp) and stack <= a.off < stack + room:
            raise AssemblerError("trace_println: an argument points into the format")
    padded = text.ljust(room, b"\0")
    out = [asm.store_imm(asm.W, R10, stack + i, int.from_bytes(padded[i:i + 4], "little",
                                                                signed=True))
           for i in range(0, room, 4)]
    return [*out, *call(Helper.TRACE_PRINTK, fp(stack), len(text), *args)]


# --- spin locks -----------------------------------------------------------------------------
def with_spinlock(value: Register, lock_off: int, body: Sequence[asm.Item]) -> asm.Fragment:
    """``bpf_spin_lock(value + lock_off); body; bpf_spin_unlock(...)``.

    ``value`` (a map value pointer) must be in R6-R9 to survive the calls; ``body`` may not
    call helpers or leave the section (the verifier insists; 5.1).
    """
    if not Register.R6 <= value <= Register.R9:
        raise AssemblerError("with_spinlock: value must be in R6-R9 (the calls clobber R0-R5)")
    lock = [asm.mov(R1, value), asm.add(R1, lock_off)] if lock_off else [asm.mov(R1, value)]
    return asm.Fragment([*lock, asm.call(Helper.SPIN_LOCK), *body,
                         *lock, asm.call(Helper.SPIN_UNLOCK)], name="with_spinlock")


# --- pointer chains -------------------------------------------------------------------------
def field_offset(type_name: str, member: str) -> int:
    """Byte offset of ``member`` in the kernel's ``struct type_name`` (vmlinux BTF)."""
    from .. import btf

    spec = btf.load_kernel()
    try:
        st = spec.find(type_name, kind=btf.Struct)
    except btf.TypeNotFoundError:
        raise AssemblerError(f"no struct {type_name!r} in kernel BTF") from None
    try:
        m = st.member(member)
    except (KeyError, LookupError):
        raise AssemblerError(f"struct {type_name} has no member {member!r}") from None
    off = m.byte_offset
    if off is None:
        raise AssemblerError(f"{type_name}.{member} is a bitfield")
    return int(off)


def core_read(dst: Register, base: Register, path: Sequence[int | tuple[str, str]], *,
              size: int = 8, stack: int) -> list[asm.Instruction]:
    """Follow a pointer chain with ``bpf_probe_read_kernel`` (clj-ebpf ``core-read``).

    ``path`` lists offsets, or ``(struct, member)`` pairs resolved in kernel BTF when the
    program is built: every step but the last reads a pointer at ``ptr + offset``, the last
    reads ``size`` bytes (1, 2, 4, 8) into ``dst``. ``stack`` is 8 free bytes. A failed
    read leaves 0. Clobbers R0-R5; ``dst`` must not be R1-R5 if it is read later.
    """
    if not path:
        raise AssemblerError("core_read: empty path")
    if size not in (1, 2, 4, 8):
        raise AssemblerError(f"core_read: size {size} is not 1, 2, 4 or 8")
    fp(stack)
    if stack + 8 > 0:
        raise AssemblerError("core_read: 8 bytes at stack leave the frame")
    offs = [p if isinstance(p, int) else field_offset(*p) for p in path]
    out: list[asm.Instruction] = [] if base == R0 else [asm.mov(R0, base)]
    for i, off in enumerate(offs):
        last = i == len(offs) - 1
        n = size if last else 8
        out += [asm.store_imm(asm.DW, R10, stack, 0),
                asm.mov(asm.R3, R0), asm.add(asm.R3, off),
                asm.mov(R1, R10), asm.add(R1, stack), asm.mov(asm.R2, n),
                asm.call(Helper.PROBE_READ_KERNEL),
                asm.load({1: asm.B, 2: asm.H, 4: asm.W, 8: asm.DW}[n], R0, R10, stack)]
    if dst != R0:
        out.append(asm.mov(dst, R0))
    return out


# --- redirects ------------------------------------------------------------------------------
def xdp_redirect(ifindex: Arg, flags: Arg = 0) -> list[asm.Instruction]:
    """Return ``bpf_redirect(ifindex, flags)`` from an XDP program."""
    return [*helpers.redirect(ifindex, flags), asm.exit()]


def xdp_redirect_map(map_: Arg, key: Arg, fallback: int = 0) -> list[asm.Instruction]:
    """Return ``bpf_redirect_map(map, key, fallback)``: ``XDP_REDIRECT``, or ``fallback``
    (an XDP action 0-3: ``XDP_ABORTED``, ``DROP``, ``PASS``, ``TX``) when ``key`` is absent."""
    if not 0 <= fallback <= 3:
        raise AssemblerError(f"xdp_redirect_map: fallback {fallback} is no XDP action 0-3")
    return [*helpers.redirect_map(map_, key, fallback), asm.exit()]


def sk_redirect(skb: Arg, map_: Arg, key: Arg, flags: Arg = 0, *, hash: bool = False
                ) -> list[asm.Instruction]:
    """Return an ``SK_SKB`` redirect verdict to a sockmap (``key`` index) or sockhash
    (``hash=True``, ``key`` a pointer)."""
    h = helpers.sk_redirect_hash if hash else helpers.sk_redirect_map
    return [*h(skb, map_, key, flags), asm.exit()]


def msg_redirect(msg: Arg, map_: Arg, key: Arg, flags: Arg = 0, *, hash: bool = False
                 ) -> list[asm.Instruction]:
    """Return an ``SK_MSG`` redirect verdict (sockmap index or sockhash key pointer)."""
    h = helpers.msg_redirect_hash if hash else helpers.msg_redirect_map
    return [*h(msg, map_, key, flags), asm.exit()]


# --- LSM ------------------------------------------------------------------------------------
def lsm_allow() -> list[asm.Instruction]:
    """``return 0``: the LSM hook allows the operation."""
    return [asm.mov(R0, LSM_ALLOW), asm.exit()]


def lsm_deny(errno: int = _errno.EPERM) -> list[asm.Instruction]:
    """``return -errno``: the LSM hook denies the operation (EPERM by default)."""
    if not 0 < errno < 4096:
        raise AssemblerError(f"lsm_deny: {errno} is not an errno")
    return [asm.mov(R0, -errno), asm.exit()]


# --- fentry arguments by name ---------------------------------------------------------------
def fentry_arg_index(function: str, name: str) -> int:
    """Index of parameter ``name`` of kernel function ``function`` (vmlinux BTF); for LSM
    hooks give ``bpf_lsm_<hook>``."""
    from .. import btf

    spec = btf.load_kernel()
    try:
        fn = spec.find(function, kind=btf.Func)
    except btf.TypeNotFoundError:
        raise AssemblerError(f"no function {function!r} in kernel BTF") from None
    proto = fn.type
    params = [p.name for p in getattr(proto, "params", ())]
    if name not in params:
        raise AssemblerError(f"{function} has no parameter {name!r} "
                             f"(parameters: {', '.join(params) or 'none'})")
    return params.index(name)


def fentry_arg(dst: Register, function: str, name: str, ctx: Register = R1
               ) -> asm.Instruction:
    """``dst`` = argument ``name`` of the traced ``function`` in an fentry/fexit/LSM
    program (the context is an array of u64 arguments)."""
    from ..hooks import tracing

    return tracing.arg(dst, fentry_arg_index(function, name), ctx)
