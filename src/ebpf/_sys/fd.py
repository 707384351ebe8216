"""Owned file descriptors.

Every kernel object the library creates is held by an :class:`FD`. ``close()`` is idempotent;
an FD that is garbage-collected while still open is closed by a finalizer that also emits a
:class:`ResourceWarning` (an error under ``pytest -W error``), so leaks surface in tests
instead of exhausting the fd table in production.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import warnings
import weakref
from types import TracebackType
from typing import TypeVar

__all__ = ["FD", "KernelObject", "open_count"]

_open = 0


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


class FD:
    """An owned file descriptor: closed exactly once, by :meth:`close` or by the finalizer."""

    __slots__ = ("__weakref__", "_fd", "_finalizer")

    def __init__(self, fd: int, what: str = "BPF object") -> None:
        global _open
        if fd < 0:
            raise ValueError(f"invalid file descriptor {fd}")
        self._fd = fd
        self._finalizer = weakref.finalize(self, _finalize, fd, what)
        _open += 1

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

    def detach(self) -> int:
        """Give up ownership and return the raw descriptor (the caller must close it)."""
        global _open
        fd = self.fileno()
        self._finalizer.detach()
        self._fd = -1
        _open -= 1
        return fd

    def dup(self) -> FD:
        """A new owned descriptor for the same kernel object (``F_DUPFD_CLOEXEC``)."""
        return FD(fcntl.fcntl(self.fileno(), fcntl.F_DUPFD_CLOEXEC, 0))

    def close(self) -> None:
        """Close the descriptor; calling it again does nothing."""
        global _open
        if self._fd < 0:
            return
        fd, self._fd = self._fd, -1
        self._finalizer.detach()
        _open -= 1
        os.close(fd)

    def __enter__(self) -> FD:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FD({self._fd})" if self._fd >= 0 else "FD(closed)"


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
