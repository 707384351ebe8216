"""The only code that enters the kernel through ``bpf(2)`` and ``perf_event_open(2)``.

Every call goes through :func:`bpf` (or its fd-returning twin :func:`bpf_fd`): the attr is a
per-command ``ctypes.Structure`` from the generated ABI layer, zero-initialised by ctypes and
passed with ``sizeof`` of that command's struct, not of the whole union. Buffers that the attr
points to are passed in ``keep`` so that they are visibly alive for the whole call. Errno is
turned into an exception in one place (:func:`ebpf.errors.from_errno`). ``EINTR`` is retried
for every command; ``EAGAIN`` for ``BPF_PROG_LOAD`` (the verifier was interrupted) a few times.
"""

from __future__ import annotations

import ctypes
import errno as _errno
from _ctypes import FUNCFLAG_CDECL as _FUNCFLAG_CDECL
from _ctypes import FUNCFLAG_PYTHONAPI as _FUNCFLAG_PYTHONAPI
from _ctypes import FUNCFLAG_USE_ERRNO as _FUNCFLAG_USE_ERRNO
from _ctypes import CFuncPtr as _CFuncPtr
from collections.abc import Callable
from typing import Any

from .. import errors
from .._uapi import _arch
from .._uapi import _generated_types as _t
from .fd import FD

__all__ = [
    "bpf",
    "bpf_fd",
    "cmd_name",
    "fast_errno",
    "fast_syscall",
    "ioctl",
    "libc",
    "perf_event_open",
]

libc = ctypes.CDLL(None, use_errno=True)


class _ErrnoFunc(_CFuncPtr):
    """A foreign function of ``libc`` (GIL released, errno kept for ``ctypes.get_errno``) whose
    class has no ``_restype_``: ctypes then returns the C ``int`` result as a Python int
    directly, where a ``restype`` (even ``c_long``) costs a format-table scan per call.
    ``bpf(2)`` returns an int (0, an fd, a count, or -1)."""

    _flags_ = _FUNCFLAG_CDECL | _FUNCFLAG_USE_ERRNO


class _GILHoldingFunc(_CFuncPtr):
    """As :class:`_ErrnoFunc`, called with the GIL held (as ``ctypes.pythonapi``'s)."""

    _flags_ = _FUNCFLAG_CDECL | _FUNCFLAG_PYTHONAPI


# No argtypes: converting arguments through argtypes costs more than the syscall's own entry
# here. Numbers go as C ints (syscall numbers, commands and sizes are small and non-negative,
# and libffi widens them to the register), pointers as byref()/c_void_p.
_syscall = _ErrnoFunc(("syscall", libc))


#: ``syscall`` called with the GIL held: about half the per-call cost of a GIL-releasing
#: call. Only for commands that return at once (map element operations, single test runs);
#: never for ``BPF_PROG_LOAD`` or anything that may block. Its result is the C ``int``
#: (``bpf(2)`` returns an int: 0, an fd, or -1). Pair it with :func:`fast_errno`, read right
#: after the call. Hot paths call it as ``fast_syscall(*args)`` with a tuple built once:
#: ctypes takes the tuple as it is, where separate arguments are packed into a new one.
fast_syscall = _GILHoldingFunc(("syscall", ctypes.pythonapi))
_errno_location = ctypes.pythonapi["__errno_location"]
_errno_location.restype = ctypes.POINTER(ctypes.c_int)


def fast_errno() -> int:
    """errno after a :data:`fast_syscall` call (the GIL was held, so nothing ran in between)."""
    return int(_errno_location()[0])


_syscall5 = ctypes.CFUNCTYPE(  # perf_event_open(attr, pid, cpu, group_fd, flags)
    ctypes.c_long,
    ctypes.c_long, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_ulong,
    use_errno=True,
)(("syscall", libc))

_ioctl = libc.ioctl
_ioctl.restype = ctypes.c_int
_ioctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p)

_get_errno = ctypes.get_errno
_byref = ctypes.byref
_sizeof = ctypes.sizeof
_NR_BPF = _arch.NR_BPF

_CMD_NAMES: dict[int, str] = {int(c): c.name for c in _t.bpf_cmd}
_PROG_LOAD = int(_t.bpf_cmd.BPF_PROG_LOAD)
_EAGAIN_RETRIES = 5


def cmd_name(cmd: int) -> str:
    """``BPF_MAP_CREATE`` for 0 and so on; ``BPF_CMD_<n>`` for numbers this build does not know."""
    return _CMD_NAMES.get(cmd, f"BPF_CMD_{cmd}")


def _check_arch() -> None:
    if _NR_BPF < 0:
        raise _arch.UnsupportedArchitectureError(f"no bpf(2) syscall number for {_arch.ARCH}")


def _fail(cmd: int, attr: Any, size: int, err: int) -> int:
    """Slow path after a failed call: retry where the kernel asks for it, else raise."""
    _check_arch()
    retries = 0
    while True:
        if err == _errno.EINTR or (
            err == _errno.EAGAIN and cmd == _PROG_LOAD and retries < _EAGAIN_RETRIES
        ):
            retries += 1
            r: int = _syscall(_NR_BPF, cmd, _byref(attr), size)
            if r >= 0:
                return r
            err = _get_errno()
            continue
        raise errors.from_errno(cmd_name(cmd), err)


def bpf(cmd: int, attr: Any, size: int = 0, keep: object = None) -> int:
    """Call ``bpf(cmd, &attr, size)`` and return its non-negative result.

    ``size`` defaults to ``sizeof(attr)``. ``keep`` holds the buffers ``attr`` points into; it is
    only referenced, so that they cannot be freed before the call returns.
    """
    size = size or _sizeof(attr)
    r: int = _syscall(_NR_BPF, cmd, _byref(attr), size)
    if r >= 0:
        return r
    return _fail(cmd, attr, size, _get_errno())


def bpf_fd(cmd: int, attr: Any, size: int = 0, keep: object = None, what: str = "") -> FD:
    """Like :func:`bpf` for commands that return a new file descriptor; returns it owned."""
    return FD(bpf(cmd, attr, size), what or cmd_name(cmd))


def raw_caller(cmd: int, attr: Any) -> Callable[[], int]:
    """A zero-argument fast path for one command and one pre-built attr, for hot loops.

    The attr's address and size are bound once and the call keeps the GIL (see
    :data:`fast_syscall`), so use it for commands that return at once. Errors still go through
    :func:`errors.from_errno`.
    """
    size = _sizeof(attr)
    args = (_NR_BPF, cmd, _byref(attr), size)
    call = fast_syscall
    get_errno = fast_errno

    def run() -> int:
        r: int = call(*args)
        if r >= 0:
            return r
        return _fail(cmd, attr, size, get_errno())

    run.attr = attr  # type: ignore[attr-defined]  # keeps the struct alive with the closure
    return run


def perf_event_open(attr: Any, pid: int, cpu: int, group_fd: int = -1, flags: int = 0) -> FD:
    """``perf_event_open(2)`` with ``PERF_FLAG_FD_CLOEXEC`` added; returns an owned fd."""
    if _arch.NR_PERF_EVENT_OPEN < 0:
        raise _arch.UnsupportedArchitectureError(f"no perf_event_open for {_arch.ARCH}")
    flags |= 8  # PERF_FLAG_FD_CLOEXEC (include/uapi/linux/perf_event.h)
    while True:
        r = _syscall5(_arch.NR_PERF_EVENT_OPEN, _byref(attr), pid, cpu, group_fd, flags)
        if r >= 0:
            return FD(r, "perf event")
        err = _get_errno()
        if err != _errno.EINTR:
            raise errors.from_errno("perf_event_open", err)


def ioctl(fd: int, request: int, arg: int | Any = 0, name: str = "ioctl") -> int:
    """``ioctl(fd, request, arg)``; ``arg`` is an int or a ctypes object passed by reference."""
    ptr = arg if isinstance(arg, int) else ctypes.addressof(arg)
    while True:
        r: int = _ioctl(fd, request, ptr)
        if r >= 0:
            return r
        err = _get_errno()
        if err != _errno.EINTR:
            raise errors.from_errno(name, err)
