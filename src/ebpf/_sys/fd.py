"""Owned file descriptors.

Every kernel object the library creates is held by an :class:`FD`. ``close()`` is idempotent;
an FD that is garbage-collected while still open is closed by a finalizer that also emits a
:class:`ResourceWarning` (an error under ``pytest -W error``), so leaks surface in tests
instead of exhausting the fd table in production.

Closing never lets a syscall in flight reach a *recycled* fd number (another thread may close
an object while one uses it, and the next ``open`` gets the same number). Two mechanisms:

* calls that release the GIL take the number with :meth:`FD.acquire` and give it back with
  :meth:`FD.release`; a :meth:`FD.close` meanwhile only marks the FD closed and the number is
  closed by the last release;
* pre-built attrs used by GIL-holding fast paths (map element operations) are registered
  with :meth:`FD.bind`; ``close`` overwrites their fd field with -1 (``EBADF``) before the
  number is freed, and since such a call holds the GIL from reading the attr to returning,
  it sees either the live fd or -1, never a reused number.

Both use only list operations that are atomic in CPython, so the hot paths take no lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import warnings
import weakref
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

__all__ = ["FD", "INT_MAX", "KernelObject", "adopt", "check_fd", "open_count"]

#: The largest fd number (``int`` in the kernel, ``c_int`` in our attrs).
INT_MAX = 0x7FFF_FFFF

_open = 0

#: Called with every new :class:`FD`'s number when set (the pytest plugin's leak check records
#: the BPF objects a test session creates; None otherwise, so it costs one global lookup).
on_create: Callable[[int], None] | None = None


def open_count() -> int:
    """Number of :class:`FD` objects currently open in this process (for leak checks)."""
    return _open


def _finalize(fd: int, what: str) -> None:
    global _open
    _open -= 1
    with contextlib.suppress(OSError):
        os.close(fd)
    warnings.warn(f"unclosed {what} (fd {fd}); close it or use a with block", ResourceWarning,
                  stacklevel=1)


def check_fd(value: Any, name: str = "fd") -> int:
    """``value`` as an fd number: an int in ``0..INT_MAX`` (a ``bool`` is not one), else
    :class:`~ebpf.errors.InvalidArgumentError` naming ``name``. ``os.dup(2**40)`` would raise
    a bare ``OverflowError`` and a ``c_int`` array would truncate ``2**32`` to fd 0."""
    from ..errors import InvalidArgumentError
    from .attrs import check_int

    if isinstance(value, bool):
        raise InvalidArgumentError(name, "expected an fd number, got bool")
    return check_int(name, value, 0, INT_MAX)


def adopt(fd: FD | int, what: str = "BPF object") -> FD:
    """An :class:`FD` taken over as it is, or an owned duplicate of a caller's fd number
    (checked with :func:`check_fd` first; a number that is not open raises ``OSError``
    ``EBADF`` from ``dup``)."""
    if isinstance(fd, FD):
        return fd
    return FD(os.dup(check_fd(fd)), what)


class FD:
    """An owned file descriptor: closed exactly once, by :meth:`close` or by the finalizer."""

    __slots__ = ("__weakref__", "_bound", "_fd", "_finalizer", "_pending", "_users")

    def __init__(self, fd: int, what: str = "BPF object") -> None:
        global _open
        if fd < 0:
            raise ValueError(f"invalid file descriptor {fd}")
        self._fd = fd
        self._users: list[None] = []
        self._pending: list[int] = []
        self._bound: list[tuple[Any, str]] | None = None
        self._finalizer = weakref.finalize(self, _finalize, fd, what)
        _open += 1
        if on_create is not None:
            on_create(fd)

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def fileno(self) -> int:
        """The raw descriptor; raises :class:`ValueError` once closed."""
        if self._fd < 0:
            raise ValueError("operation on closed file descriptor")
        return self._fd

    def __int__(self) -> int:
        return self.fileno()

    # --- in-flight uses -------------------------------------------------------------------
    def acquire(self) -> int:
        """The raw descriptor, held open until :meth:`release` (a concurrent :meth:`close`
        waits for it); raises :class:`ValueError` once closed."""
        users = self._users
        users.append(None)
        fd = self._fd
        if fd < 0:
            self.release()
            raise ValueError("operation on closed file descriptor")
        return fd

    def release(self) -> None:
        """End a use begun by :meth:`acquire`; closes the number if a close was deferred."""
        users = self._users
        users.pop()
        if self._pending and not users:
            self._finish()

    def bind(self, obj: Any, field: str) -> None:
        """Register a pre-built attr whose ``field`` holds this fd: :meth:`close` sets it to
        -1 (as the field's unsigned type) before the number can be reused."""
        bound = self._bound
        if bound is None:
            bound = self._bound = []
        bound.append((obj, field))
        if self._fd < 0:  # closed meanwhile: never leave a stale number in it
            _invalidate(obj, field)

    def _finish(self) -> None:
        try:
            fd = self._pending.pop()  # atomic: exactly one caller closes
        except IndexError:
            return
        os.close(fd)

    def detach(self) -> int:
        """Give up ownership and return the raw descriptor (the caller must close it)."""
        global _open
        fd = self.fileno()
        if self._users:
            raise ValueError("cannot detach a file descriptor that is in use")
        self._finalizer.detach()
        self._fd = -1
        _open -= 1
        return fd

    def dup(self) -> FD:
        """A new owned descriptor for the same kernel object (``F_DUPFD_CLOEXEC``)."""
        fd = self.acquire()
        try:
            return FD(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 0))
        finally:
            self.release()

    def close(self) -> None:
        """Close the descriptor; calling it again does nothing. If another thread is inside
        a call on it, the number is closed when that call ends."""
        global _open
        fd = self._fd
        if fd < 0:
            return
        self._fd = -1
        self._finalizer.detach()
        _open -= 1
        if self._bound:
            for obj, field in self._bound:
                _invalidate(obj, field)
            self._bound = None
        self._pending.append(fd)
        if not self._users:
            self._finish()

    def __enter__(self) -> FD:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FD({self._fd})" if self._fd >= 0 else "FD(closed)"


def _invalidate(obj: Any, field: str) -> None:
    """Set an attr's fd field to -1 in its (u32 or s32) type."""
    try:
        setattr(obj, field, -1)
    except (TypeError, ValueError, OverflowError):
        setattr(obj, field, 0xFFFFFFFF)


_Obj = TypeVar("_Obj", bound="KernelObject")


class KernelObject:
    """Base of every object that owns one kernel fd (maps, programs, links, BTF handles).

    Gives the common protocol once: :attr:`fd`, :meth:`fileno`, :attr:`closed`, an idempotent
    :meth:`close` and the context manager. Subclasses store their :class:`FD` in ``_fd`` and
    may extend :meth:`close` (calling ``super().close()``).
    """

    __slots__ = ()
    _fd: FD

    @property
    def fd(self) -> FD:
        """The owned file descriptor."""
        return self._fd

    def fileno(self) -> int:
        """The raw descriptor (what ``asm.load_map`` and attach calls embed)."""
        return self._fd.fileno()

    @property
    def closed(self) -> bool:
        return self._fd.closed

    def close(self) -> None:
        """Release the fd; the kernel frees the object once nothing else holds it. Idempotent."""
        self._fd.close()

    def __enter__(self: _Obj) -> _Obj:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
