"""Retrying kernel operations, and predicates over the library's errors (clj-ebpf
``with-retry``/``retrying`` and the errno classification).

::

    prog = retry(lambda: Program.load(...), attempts=5, when=is_transient)

``is_transient``: worth retrying (EAGAIN, EBUSY, EINTR, ENOMEM from a momentarily full
memlock/locked pool, ENOSPC of a shared resource). ``is_permission``: EPERM/EACCES (no
retry helps). ``is_not_supported``: the kernel lacks the feature (EINVAL on unknown
types, EOPNOTSUPP, ENOTSUPP 524, E2BIG on unknown attr tails, and the library's
:class:`~ebpf.errors.NotSupportedError`).
"""

from __future__ import annotations

import errno as _errno
import time
from collections.abc import Callable
from typing import TypeVar

from .. import errors

__all__ = ["errno_of", "is_not_found", "is_not_supported", "is_permission", "is_transient",
           "retry"]

T = TypeVar("T")
ENOTSUPP = 524  # kernel-internal, seen by BPF users

_TRANSIENT = frozenset({_errno.EAGAIN, _errno.EBUSY, _errno.EINTR, _errno.ENOMEM})
_PERMISSION = frozenset({_errno.EPERM, _errno.EACCES})
_UNSUPPORTED = frozenset({_errno.EOPNOTSUPP, ENOTSUPP, _errno.E2BIG, _errno.ENOSYS})


def errno_of(e: BaseException) -> int | None:
    """The errno an error carries, or None."""
    n = getattr(e, "errno", None)
    return n if isinstance(n, int) else None


def is_transient(e: BaseException) -> bool:
    return not isinstance(e, errors.VerifierError) and errno_of(e) in _TRANSIENT


def is_permission(e: BaseException) -> bool:
    return isinstance(e, PermissionError) or errno_of(e) in _PERMISSION


def is_not_supported(e: BaseException) -> bool:
    return isinstance(e, errors.NotSupportedError) or errno_of(e) in _UNSUPPORTED


def is_not_found(e: BaseException) -> bool:
    return isinstance(e, (KeyError, LookupError, FileNotFoundError)) or \
        errno_of(e) == _errno.ENOENT


def retry(fn: Callable[[], T], *, attempts: int = 3, delay: float = 0.01,
          backoff: float = 2.0, max_delay: float = 1.0,
          when: Callable[[BaseException], bool] = is_transient,
          sleep: Callable[[float], None] = time.sleep) -> T:
    """Call ``fn`` until it returns, at most ``attempts`` times, sleeping ``delay``
    (times ``backoff`` after each failure, capped at ``max_delay``) between tries while
    ``when(error)`` says the error is worth retrying; the last error is raised."""
    if attempts < 1:
        raise errors.BPFError(f"retry: attempts={attempts} must be >= 1")
    wait = delay
    for i in range(attempts):
        try:
            return fn()
        except Exception as e:
            if i == attempts - 1 or not when(e):
                raise
            sleep(wait)
            wait = min(wait * backoff, max_delay)
    raise AssertionError("unreachable")  # pragma: no cover
