"""Immutable records for the parsers (ELF, ``.BTF.ext``): named read-only fields over a tuple.

A parser makes them in bulk with ``tuple.__new__(cls, fields)`` from ``struct.iter_unpack``
rows; the public constructor (``cls(a, b, c=...)``) checks the fields and fills defaults.
"""

from __future__ import annotations

from typing import Any, ClassVar, NoReturn, TypeVar

__all__ = ["Record"]

try:  # the C descriptor behind collections.namedtuple fields: fast and read-only
    from collections import _tuplegetter as _field  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - other Pythons

    def _field(index: int, doc: str | None) -> Any:
        return property(lambda self: tuple.__getitem__(self, index), doc=doc)


_R = TypeVar("_R", bound="Record")


class Record(tuple):  # type: ignore[type-arg]
    """An immutable record with named fields (``_fields``, then ``_defaults`` for the last
    ones), stored as a tuple so that parsers build thousands of them with ``tuple.__new__``
    (a frozen dataclass sets each field through ``object.__setattr__``, ten times slower).
    Not a sequence: ``len()``, iteration and indexing raise :class:`TypeError`; equal when of
    the same class with equal fields; ``repr`` as a dataclass's."""

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()
    _defaults: ClassVar[tuple[Any, ...]] = ()

    def __new__(cls: type[_R], *args: Any, **kwargs: Any) -> _R:
        fields = cls._fields
        if len(args) > len(fields):
            raise TypeError(f"{cls.__name__} takes {len(fields)} fields, got {len(args)}")
        values = list(args)
        for name in fields[len(args):]:
            if name in kwargs:
                values.append(kwargs.pop(name))
            else:
                i = fields.index(name) - (len(fields) - len(cls._defaults))
                if i < 0:
                    raise TypeError(f"{cls.__name__} missing field {name!r}")
                values.append(cls._defaults[i])
        if kwargs:
            raise TypeError(f"{cls.__name__} got unexpected fields {sorted(kwargs)}")
        return tuple.__new__(cls, values)

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        for i, name in enumerate(cls.__dict__.get("_fields", ())):
            setattr(cls, name, _field(i, name))

    def _not_a_sequence(self, *args: object) -> NoReturn:
        raise TypeError(f"{type(self).__name__} is not a sequence")

    __len__ = _not_a_sequence
    __iter__ = _not_a_sequence
    __getitem__ = _not_a_sequence
    __contains__ = _not_a_sequence

    def __bool__(self) -> bool:
        return True

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return tuple.__ne__(self, other)

    __hash__ = tuple.__hash__

    def __repr__(self) -> str:
        values = ", ".join(f"{n}={v!r}" for n, v in zip(self._fields, tuple.__iter__(self),
                                                         strict=True))
        return f"{type(self).__name__}({values})"

    def __getnewargs__(self) -> tuple[Any, ...]:
        return tuple(tuple.__iter__(self))

    def __copy__(self: _R) -> _R:
        return self

    def __deepcopy__(self: _R, memo: object) -> _R:
        return self
