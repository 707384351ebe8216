"""The whole public exception tree of :mod:`ebpf`.

One root, :class:`BPFError`. Errors that come from a syscall are :class:`SyscallError`, which is
also an :class:`OSError` carrying ``errno``, so ``except OSError`` and ``e.errno == ENOENT`` keep
working. Where a builtin exception is the natural expectation, the error is that builtin too:
a missed lookup is a :class:`KeyError`, a refused privilege a :class:`PermissionError`, a parse
failure a :class:`ValueError`.

:func:`from_errno` is the single place where an errno becomes an exception; only the syscall
layer calls it.
"""

from __future__ import annotations

import errno as _errno
import os
from collections.abc import Sequence

__all__ = [
    "ENOTSUPP",
    "AssemblerError",
    "BPFError",
    "BPFPermissionError",
    "BusyError",
    "InvalidArgumentError",
    "KeyExistsError",
    "KeyNotFoundError",
    "LinkError",
    "NotSupportedError",
    "ObjectKindError",
    "ParseError",
    "ProbeError",
    "SymbolNotFoundError",
    "SyscallError",
    "TypeNotFoundError",
    "VerifierError",
    "from_errno",
]

#: Kernel-internal "operation not supported" (524). It leaks to userspace from bpf(2), and
#: Python's :mod:`errno` does not know it.
ENOTSUPP = 524

_EXTRA_NAMES = {ENOTSUPP: "ENOTSUPP"}
_EXTRA_STRINGS = {ENOTSUPP: "Operation not supported (kernel ENOTSUPP)"}


def errno_name(code: int) -> str:
    """Symbolic name of an errno value, including the kernel-internal ones."""
    return _errno.errorcode.get(code) or _EXTRA_NAMES.get(code) or f"errno {code}"


def errno_string(code: int) -> str:
    """Human text of an errno value, including the kernel-internal ones."""
    if code in _EXTRA_STRINGS:
        return _EXTRA_STRINGS[code]
    return os.strerror(code)


class BPFError(Exception):
    """Root of every error raised by :mod:`ebpf`."""


class SyscallError(BPFError, OSError):
    """A syscall failed. ``str(e)`` reads ``"BPF_MAP_UPDATE_ELEM: File exists"``.

    Attributes: ``errno`` (int), ``strerror`` (str), ``cmd`` (the command name, e.g.
    ``"BPF_PROG_LOAD"``), ``hint`` (an explanation when the cause is likely known, else ``""``).
    """

    cmd: str
    hint: str

    def __init__(self, cmd: str, code: int, hint: str = "", detail: str = "") -> None:
        OSError.__init__(self, code, errno_string(code))
        self.cmd = cmd
        self.hint = hint
        self.detail = detail

    def __str__(self) -> str:
        text = f"{self.cmd}: {self.strerror}"
        if self.detail:
            text += f": {self.detail}"
        if self.hint:
            text += f" ({self.hint})"
        return text

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.cmd, self.errno, self.hint, self.detail))


class KeyNotFoundError(SyscallError, KeyError):
    """The key is not in the map (ENOENT from a lookup or delete). Also a :class:`KeyError`."""

    def __str__(self) -> str:
        return SyscallError.__str__(self)


class KeyExistsError(SyscallError):
    """The key already exists and ``NOEXIST`` was asked for (EEXIST)."""


class BusyError(SyscallError):
    """The object is busy (EBUSY), e.g. an XDP link already holds the interface."""


class BPFPermissionError(SyscallError, PermissionError):
    """EPERM or EACCES. ``hint`` names the likely cause (capabilities, lockdown, sysctl)."""


class LinkError(BPFError):
    """Attaching or detaching failed for a reason that is not a plain errno (e.g. netlink)."""


class NotSupportedError(BPFError):
    """The running kernel lacks a feature.

    ``str(e)`` reads ``"BPF_MAP_TYPE_RINGBUF not supported (requires >= 5.8)"``.
    """

    def __init__(self, feature: str, min_kernel: str = "", detail: str = "") -> None:
        super().__init__(feature, min_kernel, detail)
        self.feature = feature
        self.min_kernel = min_kernel
        self.detail = detail

    def __str__(self) -> str:
        text = f"{self.feature} not supported"
        if self.min_kernel:
            text += f" (requires >= {self.min_kernel})"
        if self.detail:
            text += f": {self.detail}"
        return text


class ProbeError(BPFError):
    """A feature probe could not decide whether the kernel has a feature.

    Raised by the :mod:`ebpf.features` probes instead of a plain syscall error when the probe
    itself was refused (``EPERM`` from a missing capability, lockdown or an LSM; an errno the
    probe does not know how to read). ``feature`` names what was asked, ``errno`` is the errno
    that made the answer inconclusive (``None`` when no syscall failed, e.g. a program type
    whose helpers cannot be probed generically), ``__cause__`` the original error. Such answers
    are never cached. ``str(e)`` reads
    ``"cannot tell whether BPF_MAP_TYPE_ARENA is supported: EPERM: BPF_MAP_CREATE: ..."``.
    """

    def __init__(self, feature: str, errno: int | None, detail: str = "") -> None:
        super().__init__(feature, errno, detail)
        self.feature = feature
        self.errno = errno
        self.detail = detail

    @property
    def reason(self) -> str:
        """Short form for tables: ``"EPERM: <detail>"`` (or just the detail)."""
        if self.errno is None:
            return self.detail
        name = errno_name(self.errno)
        return f"{name}: {self.detail}" if self.detail else name

    def __str__(self) -> str:
        return f"cannot tell whether {self.feature} is supported: {self.reason}"

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.feature, self.errno, self.detail))


class InvalidArgumentError(BPFError, ValueError):
    """An argument the kernel would truncate or refuse, caught before any syscall: a number
    out of the range of its attr field, a name the kernel does not accept, a path with NUL.
    ``field`` names the argument (or attr field)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.field, str(self).split(": ", 1)[1]))


class ObjectKindError(BPFError, TypeError):
    """A pin, fd or id is a BPF object of another kind (a program opened as a map...) or no
    BPF object at all. ``expected``/``actual`` are kinds such as ``"map"``, ``"program"``."""

    def __init__(self, what: str, expected: str, actual: str) -> None:
        msg = f"{what} is {actual}"
        if not actual.startswith("not "):
            msg += f", not a BPF {expected}"
        super().__init__(msg)
        self.what, self.expected, self.actual = what, expected, actual

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.what, self.expected, self.actual))


class ParseError(BPFError, ValueError):
    """Malformed binary input (BTF, ELF, instructions). ``offset`` is where it went wrong."""

    def __init__(self, what: str, offset: int | None = None) -> None:
        super().__init__(what, offset)
        self.what = what
        self.offset = offset

    def __str__(self) -> str:
        if self.offset is None:
            return self.what
        return f"{self.what} (at offset {self.offset:#x})"


class TypeNotFoundError(BPFError, KeyError):
    """No BTF type has the requested name (and kind). Also a :class:`KeyError`."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "type not found"


class SymbolNotFoundError(BPFError, LookupError):
    """A probe target does not exist: an ELF symbol, a kernel symbol or a tracepoint.

    ``str(e)`` reads ``"symbol 'mallok' not found in /lib/.../libc.so.6 (did you mean
    'malloc'?)"``; ``kind`` is what was looked for (``"symbol"``, ``"kernel symbol"``,
    ``"tracepoint"``...), ``path`` where, ``suggestions`` the close matches.
    """

    def __init__(self, name: str, path: str = "", suggestions: Sequence[str] = (),
                 reason: str = "not found", kind: str = "symbol") -> None:
        super().__init__(name, path)
        self.name = name
        self.path = path
        self.suggestions = tuple(suggestions)
        self.reason = reason
        self.kind = kind

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.name, self.path, self.suggestions, self.reason, self.kind))

    def __str__(self) -> str:
        where = f" in {self.path}" if self.path else ""
        text = f"{self.kind} {self.name!r} {self.reason}{where}"
        if self.suggestions:
            text += f" (did you mean {', '.join(map(repr, self.suggestions))}?)"
        return text


class AssemblerError(BPFError, ValueError):
    """An instruction or program cannot be encoded (bad register, range, label...)."""


def _is_noise(line: str) -> bool:
    return (
        line.startswith("processed ")
        or line.startswith("verification time ")
        or line.startswith("stack depth ")
        or not line.strip()
    )


class VerifierError(SyscallError):
    """The verifier (or BTF loader) rejected the object.

    ``str(e)`` is a one-line summary: the command, the errno text and the log's last meaningful
    line. ``log`` holds every line of the log; :meth:`format` prints head or tail of it.
    ``insn`` is the index of the instruction the verifier stopped at when it can be told, and
    ``source`` is the caller's label or instruction description for it.
    """

    def __init__(
        self,
        cmd: str,
        code: int,
        log: str | bytes | Sequence[str] = (),
        *,
        truncated: bool = False,
        hint: str = "",
    ) -> None:
        if isinstance(log, bytes):
            log = log.split(b"\0", 1)[0].decode("utf-8", "replace")
        lines = log.splitlines() if isinstance(log, str) else list(log)
        self.log: tuple[str, ...] = tuple(line.rstrip() for line in lines)
        self.truncated = truncated
        self.insn: int | None = _failing_insn(self.log)
        self.source: str = ""
        super().__init__(cmd, code, hint=hint, detail=self.summary())

    def summary(self) -> str:
        """The last meaningful log line, and the one before it when that is context."""
        useful = [line for line in self.log if not _is_noise(line)]
        if not useful:
            return "(no verifier log)"
        last = useful[-1].strip()
        text = last
        omitted = len(useful) - 1
        # Name the instruction the verifier stopped at: the nearest "N: (op) ..." line above.
        for back in range(len(useful) - 2, max(-1, len(useful) - 5), -1):
            prev = useful[back]
            head, sep, _ = prev.partition(": (")
            if sep and head.strip().isdigit():
                text = f"{prev.strip()}: {last}"
                omitted -= 1
                break
        if omitted > 0:
            text += f" ({omitted} line(s) omitted)"
        if self.truncated:
            text += " [log truncated]"
        return text

    def format(self, *, head: int | None = None, tail: int | None = None) -> str:
        """The log as text; ``head``/``tail`` limit it to the first/last lines."""
        lines = self.log
        if head is not None:
            lines = lines[:head]
        if tail is not None:
            lines = lines[-tail:] if tail else ()
        return "\n".join(lines)

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.cmd, self.errno, self.log))


def _failing_insn(log: Sequence[str]) -> int | None:
    """Instruction index of the last ``N: (op) ...`` line of a verifier log."""
    for line in reversed(log):
        head, sep, _ = line.partition(": (")
        if sep and head.strip().isdigit():
            return int(head.strip())
    return None


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def eperm_hint() -> str:
    """Explain an EPERM from bpf(2) with what this process and kernel actually have.

    Looks at the effective capabilities (CAP_BPF 39, CAP_PERFMON 38, CAP_NET_ADMIN 12,
    CAP_SYS_ADMIN 21), ``kernel.unprivileged_bpf_disabled`` and the lockdown mode.
    """
    cap_eff = 0
    for line in _read("/proc/self/status").splitlines():
        if line.startswith("CapEff:"):
            cap_eff = int(line.split()[1], 16)
    reasons = []
    admin = bool(cap_eff & (1 << 21))
    if not admin and not cap_eff & (1 << 39):
        missing = [name for bit, name in ((39, "CAP_BPF"), (38, "CAP_PERFMON"),
                                          (12, "CAP_NET_ADMIN")) if not cap_eff & (1 << bit)]
        reasons.append(f"this process lacks {', '.join(missing)} and CAP_SYS_ADMIN "
                       f"(CapEff={cap_eff:#x})")
        unpriv = _read("/proc/sys/kernel/unprivileged_bpf_disabled")
        if unpriv in ("1", "2"):
            reasons.append(f"kernel.unprivileged_bpf_disabled={unpriv}")
    lockdown = _read("/sys/kernel/security/lockdown")
    if "[integrity]" in lockdown or "[confidentiality]" in lockdown:
        mode = lockdown.split("[", 1)[1].split("]", 1)[0]
        reasons.append(f"kernel lockdown is '{mode}' (some helpers and program types are "
                       "refused)")
    if not reasons:
        return ("the kernel refused it although CAP_BPF/CAP_SYS_ADMIN are present: an LSM "
                "policy, lockdown, or a program type this kernel does not allow")
    return "; ".join(reasons)


def from_errno(cmd: str, code: int, *, hint: str = "") -> SyscallError:
    """Build the exception for a failed syscall; the one place errno becomes an exception."""
    cls: type[SyscallError]
    if code == _errno.ENOENT and cmd in (
        "BPF_MAP_LOOKUP_ELEM",
        "BPF_MAP_UPDATE_ELEM",  # with BPF_EXIST: the key is not there
        "BPF_MAP_DELETE_ELEM",
        "BPF_MAP_LOOKUP_AND_DELETE_ELEM",
        "BPF_MAP_GET_NEXT_KEY",
    ):
        cls = KeyNotFoundError
    elif code == _errno.EEXIST and cmd == "BPF_MAP_UPDATE_ELEM":
        cls = KeyExistsError
    elif code in (_errno.EPERM, _errno.EACCES):
        cls = BPFPermissionError
        hint = hint or eperm_hint()
    elif code == _errno.EBUSY:
        cls = BusyError
    else:
        cls = SyscallError
    return cls(cmd, code, hint)
