"""The BTF type graph: one immutable class per ``BTF_KIND_*``.

Types are created by a :class:`~ebpf.btf.Spec` and belong to it: a field that refers to another
type stores the id (``type_id``, ``target_id``, ...) and the matching property (``type``,
``target``, ...) resolves it through the spec, lazily. Two types are equal when they are the
same id of the same spec.

Every type is an immutable record. For speed (a kernel has ~150k types) the records are
built on :class:`tuple` with read-only field descriptors, like :func:`collections.namedtuple`,
but they are not sequences: ``len()``, iteration and indexing raise :class:`TypeError`.
"""

from __future__ import annotations

import enum
from collections import namedtuple
from collections.abc import Iterator

from ..errors import ParseError

TYPE_CHECKING = False  # the type checkers' constant, without importing typing (import time)
if TYPE_CHECKING:
    from typing import Any, ClassVar, NamedTuple, NoReturn, TypeVar

    from .spec import Spec

__all__ = [
    "Array",
    "Composite",
    "Const",
    "DataSec",
    "DeclTag",
    "Enum",
    "Enum64",
    "EnumValue",
    "Float",
    "Func",
    "FuncProto",
    "Fwd",
    "Int",
    "IntEncoding",
    "Kind",
    "Linkage",
    "Member",
    "Param",
    "Pointer",
    "Qualifier",
    "Restrict",
    "Struct",
    "Type",
    "TypeTag",
    "Typedef",
    "Union",
    "Var",
    "VarSecinfo",
    "Void",
    "Volatile",
]

if TYPE_CHECKING:
    _T = TypeVar("_T", bound="_Record")

try:  # the C descriptor behind collections.namedtuple fields: fast and read-only
    from collections import _tuplegetter as _field  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - other Pythons

    def _field(index: int, doc: str | None) -> Any:
        return property(lambda self: tuple.__getitem__(self, index), doc=doc)


class Kind(enum.IntEnum):
    """Kind of a BTF type. Values are the kernel's ``BTF_KIND_*``."""

    VOID = 0  #: ``BTF_KIND_UNKN``; only type id 0
    INT = 1  #: ``BTF_KIND_INT``
    PTR = 2  #: ``BTF_KIND_PTR``
    ARRAY = 3  #: ``BTF_KIND_ARRAY``
    STRUCT = 4  #: ``BTF_KIND_STRUCT``
    UNION = 5  #: ``BTF_KIND_UNION``
    ENUM = 6  #: ``BTF_KIND_ENUM``
    FWD = 7  #: ``BTF_KIND_FWD``
    TYPEDEF = 8  #: ``BTF_KIND_TYPEDEF``
    VOLATILE = 9  #: ``BTF_KIND_VOLATILE``
    CONST = 10  #: ``BTF_KIND_CONST``
    RESTRICT = 11  #: ``BTF_KIND_RESTRICT``
    FUNC = 12  #: ``BTF_KIND_FUNC``; Linux 5.0
    FUNC_PROTO = 13  #: ``BTF_KIND_FUNC_PROTO``; Linux 5.0
    VAR = 14  #: ``BTF_KIND_VAR``; Linux 5.2
    DATASEC = 15  #: ``BTF_KIND_DATASEC``; Linux 5.2
    FLOAT = 16  #: ``BTF_KIND_FLOAT``; Linux 5.13
    DECL_TAG = 17  #: ``BTF_KIND_DECL_TAG``; Linux 5.16
    TYPE_TAG = 18  #: ``BTF_KIND_TYPE_TAG``; Linux 5.17
    ENUM64 = 19  #: ``BTF_KIND_ENUM64``; Linux 6.0


class Linkage(enum.IntEnum):
    """Linkage of a :class:`Func` (``BTF_FUNC_*``) or :class:`Var` (``BTF_VAR_*``)."""

    STATIC = 0  #: ``BTF_FUNC_STATIC`` / ``BTF_VAR_STATIC``
    GLOBAL = 1  #: ``BTF_FUNC_GLOBAL`` / ``BTF_VAR_GLOBAL_ALLOCATED``
    EXTERN = 2  #: ``BTF_FUNC_EXTERN`` / ``BTF_VAR_GLOBAL_EXTERN``


class IntEncoding(enum.IntFlag):
    """Bits of :attr:`Int.encoding` (``BTF_INT_*``)."""

    SIGNED = 1  #: ``BTF_INT_SIGNED``
    CHAR = 2  #: ``BTF_INT_CHAR``
    BOOL = 4  #: ``BTF_INT_BOOL``


class _Record(tuple):  # type: ignore[type-arg]
    """An immutable record stored as a tuple, with named read-only fields."""

    __slots__ = ()
    #: Number of fields (the tuple's length).
    _nfields: ClassVar[int] = 0

    def __new__(cls: type[_T], *fields: Any) -> _T:
        if len(fields) != cls._nfields:
            raise TypeError(f"{cls.__name__} takes {cls._nfields} fields, got {len(fields)}")
        return tuple.__new__(cls, fields)

    def _not_a_sequence(self, *args: object) -> NoReturn:
        raise TypeError(f"{type(self).__name__} is not a sequence")

    __len__ = _not_a_sequence
    __iter__ = _not_a_sequence
    __getitem__ = _not_a_sequence
    __contains__ = _not_a_sequence

    def __bool__(self) -> bool:
        return True

    def __getnewargs__(self) -> tuple[Any, ...]:
        return tuple(tuple.__iter__(self))

    def __copy__(self: _T) -> _T:
        return self

    def __deepcopy__(self: _T, memo: object) -> _T:
        return self


class Type(_Record):
    """Base of every BTF type. ``id`` is the type id, ``name`` is ``""`` when anonymous.

    Fields that refer to other types are ids (``type_id``, ``target_id``...) with a property
    (``type``, ``target``...) that resolves them through the owning spec. Equal types are
    the same id of the same spec.
    """

    __slots__ = ()
    kind: ClassVar[Kind]
    _nfields = 3
    #: Extra fields shown by ``repr``.
    _repr_fields: ClassVar[tuple[str, ...]] = ()

    if TYPE_CHECKING:
        _spec: Spec
        id: int
        name: str
    else:
        _spec = _field(0, "owning spec")
        id = _field(1, "type id")
        name = _field(2, 'name, "" when anonymous')

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Type):
            return NotImplemented
        return self.id == other.id and self._spec is other._spec

    def __ne__(self, other: object) -> bool:
        if not isinstance(other, Type):
            return NotImplemented
        return self.id != other.id or self._spec is not other._spec

    def __hash__(self) -> int:
        return hash((id(self._spec), self.id))

    def __repr__(self) -> str:
        parts = [f"id={self.id}"]
        if self.name:
            parts.append(f"name={self.name!r}")
        for field in self._repr_fields:
            value = getattr(self, field)
            if isinstance(value, tuple) and not isinstance(value, _Record):
                parts.append(f"{field}=<{len(value)}>")
            else:
                parts.append(f"{field}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    @property
    def spec(self) -> Spec:
        """The spec this type belongs to (ids are relative to it)."""
        return self._spec


class Void(Type):
    """``void``: type id 0, also the target of ``void *``."""

    __slots__ = ()
    kind = Kind.VOID


class Int(Type):
    """An integer (``BTF_KIND_INT``): ``size`` bytes, of which ``bits`` bits starting at
    ``bit_offset`` hold the value. ``encoding`` is a combination of :class:`IntEncoding`.

    Fields: ``Int(spec, id, name, size, bits, bit_offset, encoding)``.
    """

    __slots__ = ()
    kind = Kind.INT
    _nfields = 7
    _repr_fields = ("size", "bits", "encoding")

    if TYPE_CHECKING:
        size: int
        bits: int
        bit_offset: int
        encoding: int
    else:
        size = _field(3, "size in bytes")
        bits = _field(4, "number of value bits")
        bit_offset = _field(5, "offset of the value bits")
        encoding = _field(6, "IntEncoding bits")

    @property
    def signed(self) -> bool:
        return bool(self.encoding & IntEncoding.SIGNED)

    @property
    def is_char(self) -> bool:
        return bool(self.encoding & IntEncoding.CHAR)

    @property
    def is_bool(self) -> bool:
        return bool(self.encoding & IntEncoding.BOOL)


class Pointer(Type):
    """A pointer to ``target`` (``BTF_KIND_PTR``). Fields: ``(spec, id, name, target_id)``."""

    __slots__ = ()
    kind = Kind.PTR
    _nfields = 4
    _repr_fields = ("target_id",)

    if TYPE_CHECKING:
        target_id: int
    else:
        target_id = _field(3, "id of the pointed-to type")

    @property
    def target(self) -> Type:
        return self._spec._ref(self.target_id)


class Array(Type):
    """``elem_type[nelems]`` (``BTF_KIND_ARRAY``); ``index_type`` is the index's int type.

    Fields: ``(spec, id, name, elem_type_id, index_type_id, nelems)``.
    """

    __slots__ = ()
    kind = Kind.ARRAY
    _nfields = 6
    _repr_fields = ("elem_type_id", "nelems")

    if TYPE_CHECKING:
        elem_type_id: int
        index_type_id: int
        nelems: int
    else:
        elem_type_id = _field(3, "id of the element type")
        index_type_id = _field(4, "id of the index type")
        nelems = _field(5, "number of elements")

    @property
    def elem_type(self) -> Type:
        return self._spec._ref(self.elem_type_id)

    @property
    def index_type(self) -> Type:
        return self._spec._ref(self.index_type_id)


class Member(_Record):
    """A member of a :class:`Struct` or :class:`Union`.

    ``offset`` is in bits, from the start of the struct it was looked up from (see
    :meth:`Composite.member`); ``bitfield_size`` is the width in bits of a bitfield, 0 for a
    plain member. Structs without ``kind_flag`` encode bitfields in the member's
    :class:`Int` (``bits``/``bit_offset``) instead, and report 0 here, as libbpf does.

    Fields: ``Member(spec, name, type_id, offset, bitfield_size)``.
    """

    __slots__ = ()
    _nfields = 5

    if TYPE_CHECKING:
        _spec: Spec
        name: str
        type_id: int
        offset: int
        bitfield_size: int
    else:
        _spec = _field(0, "owning spec")
        name = _field(1, 'name, "" for an anonymous struct/union member')
        type_id = _field(2, "id of the member's type")
        offset = _field(3, "offset in bits")
        bitfield_size = _field(4, "bitfield width in bits, 0 if not a bitfield")

    @property
    def type(self) -> Type:
        return self._spec._ref(self.type_id)

    @property
    def byte_offset(self) -> int:
        """``offset // 8``."""
        return self.offset // 8

    def _key(self) -> tuple[str, int, int, int]:
        return (self.name, self.type_id, self.offset, self.bitfield_size)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Member):
            return NotImplemented
        return self._key() == other._key() and self._spec is other._spec

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        bf = f", bitfield_size={self.bitfield_size}" if self.bitfield_size else ""
        return f"Member(name={self.name!r}, type_id={self.type_id}, offset={self.offset}{bf})"


class Composite(Type):
    """Common base of :class:`Struct` and :class:`Union`.

    Fields: ``(spec, id, name, size, members)``; a spec passes ``members=None`` and the
    members are decoded from the blob when first asked for.
    """

    __slots__ = ()
    _nfields = 5
    _repr_fields = ("size", "members")

    if TYPE_CHECKING:
        size: int
        _members: tuple[Member, ...] | None
    else:
        size = _field(3, "size in bytes")
        _members = _field(4, "tuple of Member, or None: decoded on demand")

    @property
    def members(self) -> tuple[Member, ...]:
        """The members, in declaration order."""
        members = self._members
        if members is None:  # decoded on demand: the spec's cache first (one call less)
            spec = self._spec
            members = spec._member_cache.get(self.id)
            if members is None:
                members = spec._members_of(self.id)
        return members

    def member(self, name: str) -> Member:
        """The member called ``name``, also looked up through anonymous struct/union members.

        The returned member's ``offset`` counts from the start of this type. Raises
        :class:`KeyError` when there is no such member, :class:`~ebpf.errors.ParseError` on a
        (malformed) cycle of anonymous members.
        """
        for m in self.members:
            if m.name == name:
                return m
        found = self._find_nested(name)
        if found is None:
            raise KeyError(f"{self.name or '(anonymous)'} has no member {name!r}")
        return found

    def _find_nested(self, name: str) -> Member | None:
        # Depth-first through anonymous members, in layout order, without recursion so that
        # a deep or cyclic (malformed) nesting cannot exhaust the stack.
        spec = self._spec
        on_path = {self.id}
        stack: list[tuple[Iterator[Member], int, int]] = [(iter(self.members), 0, self.id)]
        while stack:
            members, base, owner = stack[-1]
            for m in members:
                if m.name:
                    if m.name == name:
                        if base == 0:
                            return m
                        return Member(spec, m.name, m.type_id, base + m.offset, m.bitfield_size)
                    continue
                t = spec.resolve(m.type)
                if isinstance(t, Composite):
                    if t.id in on_path:
                        raise ParseError(f"anonymous member cycle through type {t.id}")
                    on_path.add(t.id)
                    stack.append((iter(t.members), base + m.offset, t.id))
                    break
            else:
                stack.pop()
                on_path.discard(owner)
        return None


class Struct(Composite):
    """``struct`` (``BTF_KIND_STRUCT``)."""

    __slots__ = ()
    kind = Kind.STRUCT


class Union(Composite):
    """``union`` (``BTF_KIND_UNION``)."""

    __slots__ = ()
    kind = Kind.UNION


if TYPE_CHECKING:

    class _EnumValueFields(NamedTuple):
        name: str
        value: int
else:  # the same fields; collections.namedtuple does not need the typing module
    _EnumValueFields = namedtuple("_EnumValueFields", "name value")


class EnumValue(_EnumValueFields):
    """One enumerator: ``name`` = ``value``."""

    __slots__ = ()


class _Enumeration(Type):
    __slots__ = ()
    _nfields = 6
    _repr_fields = ("size", "signed", "values")

    if TYPE_CHECKING:
        size: int
        signed: bool
        _values: tuple[EnumValue, ...] | None
    else:
        size = _field(3, "size in bytes")
        signed = _field(4, "values are signed (kind_flag)")
        _values = _field(5, "tuple of EnumValue, or None: decoded on demand")

    @property
    def values(self) -> tuple[EnumValue, ...]:
        """The enumerators, in declaration order."""
        values = self._values
        if values is None:  # decoded on demand: the spec's cache first (one call less)
            spec = self._spec
            values = spec._value_cache.get(self.id)
            if values is None:
                values = spec._values_of(self.id)
        return values

    def value(self, name: str) -> int:
        """The value of enumerator ``name``; :class:`KeyError` if there is none."""
        for v in self.values:
            if v.name == name:
                return v.value
        raise KeyError(f"enum {self.name or '(anonymous)'} has no value {name!r}")

    def as_dict(self) -> dict[str, int]:
        """``{name: value}`` in declaration order."""
        return dict(self.values)


class Enum(_Enumeration):
    """``enum`` with 32-bit values (``BTF_KIND_ENUM``); ``signed`` comes from ``kind_flag``.

    Fields: ``(spec, id, name, size, signed, values)``; ``values=None`` is decoded on
    demand, as for :class:`Composite`.
    """

    __slots__ = ()
    kind = Kind.ENUM


class Enum64(_Enumeration):
    """``enum`` with 64-bit values (``BTF_KIND_ENUM64``, Linux 6.0). Fields as :class:`Enum`."""

    __slots__ = ()
    kind = Kind.ENUM64


class Fwd(Type):
    """A forward declaration (``BTF_KIND_FWD``) of a struct, or of a union if ``is_union``.

    Fields: ``(spec, id, name, is_union)``.
    """

    __slots__ = ()
    kind = Kind.FWD
    _nfields = 4
    _repr_fields = ("is_union",)

    if TYPE_CHECKING:
        is_union: bool
    else:
        is_union = _field(3, "declares a union (kind_flag)")


class Qualifier(Type):
    """A type that only names or qualifies another: typedef, const, volatile, restrict,
    type tag. :meth:`Spec.resolve` skips chains of them.

    Fields: ``(spec, id, name, type_id)``.
    """

    __slots__ = ()
    _nfields = 4
    _repr_fields = ("type_id",)

    if TYPE_CHECKING:
        type_id: int
    else:
        type_id = _field(3, "id of the qualified type")

    @property
    def type(self) -> Type:
        return self._spec._ref(self.type_id)


class Typedef(Qualifier):
    """``typedef type name`` (``BTF_KIND_TYPEDEF``)."""

    __slots__ = ()
    kind = Kind.TYPEDEF


class Volatile(Qualifier):
    """``volatile type`` (``BTF_KIND_VOLATILE``)."""

    __slots__ = ()
    kind = Kind.VOLATILE


class Const(Qualifier):
    """``const type`` (``BTF_KIND_CONST``)."""

    __slots__ = ()
    kind = Kind.CONST


class Restrict(Qualifier):
    """``restrict type`` (``BTF_KIND_RESTRICT``)."""

    __slots__ = ()
    kind = Kind.RESTRICT


class TypeTag(Qualifier):
    """``type __attribute__((btf_type_tag(name)))`` (``BTF_KIND_TYPE_TAG``, Linux 5.17).

    ``name`` is the tag value; ``is_attr`` is the ``kind_flag`` (a plain attribute rather than
    a ``btf_type_tag``). Fields: ``(spec, id, name, type_id, is_attr)``.
    """

    __slots__ = ()
    kind = Kind.TYPE_TAG
    _nfields = 5

    if TYPE_CHECKING:
        is_attr: bool
    else:
        is_attr = _field(4, "kind_flag")


class DeclTag(Type):
    """``btf_decl_tag(name)`` on ``type`` (``BTF_KIND_DECL_TAG``, Linux 5.16).

    ``component_idx`` is -1 when the tag is on the type itself, else the index of the member
    or parameter it is on. Fields: ``(spec, id, name, type_id, component_idx, is_attr)``.
    """

    __slots__ = ()
    kind = Kind.DECL_TAG
    _nfields = 6
    _repr_fields = ("type_id", "component_idx")

    if TYPE_CHECKING:
        type_id: int
        component_idx: int
        is_attr: bool
    else:
        type_id = _field(3, "id of the tagged type")
        component_idx = _field(4, "-1, or the tagged member/parameter index")
        is_attr = _field(5, "kind_flag")

    @property
    def type(self) -> Type:
        return self._spec._ref(self.type_id)


class Param(_Record):
    """A parameter of a :class:`FuncProto`; ``name`` may be ``""``.

    Fields: ``Param(spec, name, type_id)``.
    """

    __slots__ = ()
    _nfields = 3

    if TYPE_CHECKING:
        _spec: Spec
        name: str
        type_id: int
    else:
        _spec = _field(0, "owning spec")
        name = _field(1, "parameter name")
        type_id = _field(2, "id of the parameter type")

    @property
    def type(self) -> Type:
        return self._spec._ref(self.type_id)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Param):
            return NotImplemented
        return (self.name, self.type_id) == (other.name, other.type_id) and (
            self._spec is other._spec
        )

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash((self.name, self.type_id))

    def __repr__(self) -> str:
        return f"Param(name={self.name!r}, type_id={self.type_id})"


class FuncProto(Type):
    """A function signature (``BTF_KIND_FUNC_PROTO``). A trailing ``...`` is not a
    :class:`Param`; it sets ``variadic``.

    Fields: ``(spec, id, name, return_type_id, params, variadic)``; ``params=None`` is
    decoded on demand, as for :class:`Composite`, and so is ``variadic=None`` (read from the
    record when asked for: few callers want it, and a walk over every type need not).
    """

    __slots__ = ()
    kind = Kind.FUNC_PROTO
    _nfields = 6
    _repr_fields = ("return_type_id", "params", "variadic")

    if TYPE_CHECKING:
        return_type_id: int
        _params: tuple[Param, ...] | None
        _variadic: bool | None
    else:
        return_type_id = _field(3, "id of the return type (0: void)")
        _params = _field(4, "tuple of Param, or None: decoded on demand")
        _variadic = _field(5, "ends with ..., or None: read from the record on demand")

    @property
    def variadic(self) -> bool:
        """The last parameter is ``...`` (not one of :attr:`params`)."""
        variadic = self._variadic
        return self._spec._variadic_of(self.id) if variadic is None else variadic

    @property
    def params(self) -> tuple[Param, ...]:
        """The parameters (without the ``...`` of a variadic function)."""
        params = self._params
        if params is None:  # decoded on demand: the spec's cache first (one call less)
            spec = self._spec
            params = spec._param_cache.get(self.id)
            if params is None:
                params = spec._params_of(self.id)
        return params

    @property
    def return_type(self) -> Type:
        return self._spec._ref(self.return_type_id)


class Func(Type):
    """A function (``BTF_KIND_FUNC``): its ``proto`` and its ``linkage``.

    Fields: ``(spec, id, name, proto_id, linkage)``; a spec may pass ``linkage=None`` once it
    checked the record's linkage: it is then read from the record when asked for.
    """

    __slots__ = ()
    kind = Kind.FUNC
    _nfields = 5
    _repr_fields = ("proto_id", "linkage")

    if TYPE_CHECKING:
        proto_id: int
        _linkage: Linkage | None
    else:
        proto_id = _field(3, "id of the FuncProto")
        _linkage = _field(4, "Linkage, or None: read from the (checked) record on demand")

    @property
    def linkage(self) -> Linkage:
        """:class:`Linkage` of the function (the record's ``vlen`` bits)."""
        linkage = self._linkage
        return self._spec._func_linkage(self.id) if linkage is None else linkage

    @property
    def proto(self) -> FuncProto:
        proto = self._spec._ref(self.proto_id)
        if not isinstance(proto, FuncProto):
            raise ParseError(f"FUNC {self.id} refers to {type(proto).__name__} {proto.id}")
        return proto

    @property
    def type_id(self) -> int:
        """Alias of ``proto_id``."""
        return self.proto_id

    @property
    def type(self) -> Type:
        """The raw reference (normally the :class:`FuncProto`; see :attr:`proto`)."""
        return self._spec._ref(self.proto_id)


class Var(Type):
    """A variable (``BTF_KIND_VAR``) of ``type``, listed in a :class:`DataSec`.

    Fields: ``(spec, id, name, type_id, linkage)``.
    """

    __slots__ = ()
    kind = Kind.VAR
    _nfields = 5
    _repr_fields = ("type_id", "linkage")

    if TYPE_CHECKING:
        type_id: int
        linkage: Linkage
    else:
        type_id = _field(3, "id of the variable's type")
        linkage = _field(4, "Linkage")

    @property
    def type(self) -> Type:
        return self._spec._ref(self.type_id)


class VarSecinfo(_Record):
    """One variable of a :class:`DataSec`: ``type`` (usually a :class:`Var`) at ``offset``
    bytes, ``size`` bytes long. Fields: ``VarSecinfo(spec, type_id, offset, size)``."""

    __slots__ = ()
    _nfields = 4

    if TYPE_CHECKING:
        _spec: Spec
        type_id: int
        offset: int
        size: int
    else:
        _spec = _field(0, "owning spec")
        type_id = _field(1, "id of the Var (or function)")
        offset = _field(2, "offset in bytes in the section")
        size = _field(3, "size in bytes")

    @property
    def type(self) -> Type:
        return self._spec._ref(self.type_id)

    def _key(self) -> tuple[int, int, int]:
        return (self.type_id, self.offset, self.size)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VarSecinfo):
            return NotImplemented
        return self._key() == other._key() and self._spec is other._spec

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"VarSecinfo(type_id={self.type_id}, offset={self.offset}, size={self.size})"


class DataSec(Type):
    """A data section (``BTF_KIND_DATASEC``) such as ``.data`` or ``.bss``.

    Fields: ``(spec, id, name, size, vars)``.
    """

    __slots__ = ()
    kind = Kind.DATASEC
    _nfields = 5
    _repr_fields = ("size", "vars")

    if TYPE_CHECKING:
        size: int
        vars: tuple[VarSecinfo, ...]
    else:
        size = _field(3, "size in bytes")
        vars = _field(4, "tuple of VarSecinfo")


class Float(Type):
    """A floating-point type of ``size`` bytes (``BTF_KIND_FLOAT``, Linux 5.13).

    Fields: ``(spec, id, name, size)``.
    """

    __slots__ = ()
    kind = Kind.FLOAT
    _nfields = 4
    _repr_fields = ("size",)

    if TYPE_CHECKING:
        size: int
    else:
        size = _field(3, "size in bytes")


#: Class of each kind, indexed by ``BTF_KIND_*``.
KIND_CLASSES: tuple[type[Type], ...] = (
    Void,
    Int,
    Pointer,
    Array,
    Struct,
    Union,
    Enum,
    Fwd,
    Typedef,
    Volatile,
    Const,
    Restrict,
    Func,
    FuncProto,
    Var,
    DataSec,
    Float,
    DeclTag,
    TypeTag,
    Enum64,
)
