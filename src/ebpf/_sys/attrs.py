"""Range-checked writes into ``bpf_attr`` structs, before any syscall.

ctypes silently truncates an integer stored in a ``c_uint32`` field (``2**32 + 4`` becomes
4), so every caller-supplied number goes through :func:`fill` (or :func:`check`), which
raises :class:`~ebpf.errors.InvalidArgumentError` naming the field when the value is not an
integer or does not fit the field's type. One place for maps, programs, test runs and links.
"""

from __future__ import annotations

import ctypes
from typing import Any

from ..errors import InvalidArgumentError

__all__ = ["check", "check_int", "fd_array", "fill", "object_name"]

_RANGES: dict[Any, tuple[int, int, str]] = {}
_UNSIGNED: tuple[Any, ...] = (ctypes.c_uint8, ctypes.c_uint16, ctypes.c_uint32, ctypes.c_uint64)
_SIGNED: tuple[Any, ...] = (ctypes.c_int8, ctypes.c_int16, ctypes.c_int32, ctypes.c_int64)
for _ct in _UNSIGNED:
    _RANGES[_ct] = (0, (1 << (8 * ctypes.sizeof(_ct))) - 1, f"u{8 * ctypes.sizeof(_ct)}")
for _ct in _SIGNED:
    _bits = 8 * ctypes.sizeof(_ct)
    _RANGES[_ct] = (-(1 << (_bits - 1)), (1 << (_bits - 1)) - 1, f"s{_bits}")

_FIELD_CACHE: dict[tuple[type, str], tuple[int, int, str]] = {}


def _range_of(cls: type, name: str) -> tuple[int, int, str]:
    key = (cls, name)
    r = _FIELD_CACHE.get(key)
    if r is None:
        ftype = _field_type(cls, name)
        if ftype is None or ftype not in _RANGES:
            raise KeyError(f"{cls.__name__} has no integer field {name!r}")
        r = _RANGES[ftype]
        _FIELD_CACHE[key] = r
    return r


def _field_type(cls: Any, name: str) -> Any:
    """The ctypes type of ``name`` in ``cls``, looking through anonymous members."""
    fields = dict(cls._fields_)
    if name in fields:
        return fields[name]
    for anon in getattr(cls, "_anonymous_", ()):
        found = _field_type(fields[anon], name)
        if found is not None:
            return found
    return None


def check_int(name: str, value: Any, lo: int, hi: int, kind: str = "") -> int:
    """``value`` as an int if ``lo <= value <= hi``, else :class:`InvalidArgumentError`."""
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            value = value.__index__()
        except (AttributeError, TypeError):
            raise InvalidArgumentError(
                name, f"expected an integer, got {type(value).__name__}") from None
    if not lo <= value <= hi:
        what = f" of a {kind} field" if kind else ""
        raise InvalidArgumentError(name, f"{value} is out of range{what} ({lo}..{hi})")
    return int(value)


def check(attr: Any, name: str, value: Any, label: str | None = None) -> int:
    """Store ``value`` in ``attr.name`` after checking it fits; ``label`` is the name the
    caller knows the argument by (default: the field name)."""
    lo, hi, kind = _range_of(type(attr), name)
    v = check_int(label or name, value, lo, hi, kind)
    setattr(attr, name, v)
    return v


def fill(attr: Any, **fields: Any) -> None:
    """:func:`check` every ``field=value``."""
    for name, value in fields.items():
        check(attr, name, value)


def fd_array(name: str, fds: Any) -> Any:
    """A ``c_int32`` array of fd numbers, each checked to be in ``0..INT_MAX`` first (ctypes
    would store ``2**32`` as fd 0, i.e. stdin); the error names ``name[i]``."""
    values = list(fds)
    for i, v in enumerate(values):
        values[i] = check_int(f"{name}[{i}]", v, 0, 0x7FFF_FFFF)
    return (ctypes.c_int32 * len(values))(*values)


_NAME_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.")


def object_name(name: str, what: str = "name") -> bytes:
    """A map/program name as the kernel takes it (``bpf_obj_name_cpy``): ASCII letters,
    digits, ``_`` and ``.``; longer than 15 bytes is cut to 15 (as libbpf does). Any other
    character raises :class:`InvalidArgumentError` (the kernel would refuse it with EINVAL)."""
    if not isinstance(name, str):
        raise InvalidArgumentError(what, f"expected a str, got {type(name).__name__}")
    bad = sorted({ch for ch in name if ch not in _NAME_OK})
    if bad:
        raise InvalidArgumentError(
            what, f"{name!r} has characters the kernel does not accept in object names "
            f"({''.join(bad)!r}); use letters, digits, '_' and '.'")
    return name.encode("ascii")[:15]
