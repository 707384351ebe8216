"""BTF (BPF Type Format): parse type information from bytes, files or the running kernel.

::

    from ebpf import btf

    spec = btf.load_kernel()                         # /sys/kernel/btf/vmlinux, cached
    task = spec.find("task_struct", kind=btf.Struct)
    task.member("pid").byte_offset
    spec.sizeof(spec.find("u32"))                    # 4

Everything here except :func:`load_kernel` / :func:`load_kernel_module` is pure: a
:class:`Spec` is built from bytes and never enters the kernel.
"""

from __future__ import annotations

from .kernel import load_kernel as load_kernel
from .kernel import load_kernel_module as load_kernel_module
from .spec import Spec as Spec
from .spec import TypeNotFoundError as TypeNotFoundError
from .types import Array as Array
from .types import Composite as Composite
from .types import Const as Const
from .types import DataSec as DataSec
from .types import DeclTag as DeclTag
from .types import Enum as Enum
from .types import Enum64 as Enum64
from .types import EnumValue as EnumValue
from .types import Float as Float
from .types import Func as Func
from .types import FuncProto as FuncProto
from .types import Fwd as Fwd
from .types import Int as Int
from .types import IntEncoding as IntEncoding
from .types import Kind as Kind
from .types import Linkage as Linkage
from .types import Member as Member
from .types import Param as Param
from .types import Pointer as Pointer
from .types import Qualifier as Qualifier
from .types import Restrict as Restrict
from .types import Struct as Struct
from .types import Type as Type
from .types import Typedef as Typedef
from .types import TypeTag as TypeTag
from .types import Union as Union
from .types import Var as Var
from .types import VarSecinfo as VarSecinfo
from .types import Void as Void
from .types import Volatile as Volatile
from .wire import Header as Header

TYPE_CHECKING = False  # the type checkers' constant, without importing typing
if TYPE_CHECKING:
    from .writer import BTFWriter as BTFWriter

__all__ = [
    "Array",
    "BTFWriter",
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
    "Header",
    "Int",
    "IntEncoding",
    "Kind",
    "Linkage",
    "Member",
    "Param",
    "Pointer",
    "Qualifier",
    "Restrict",
    "Spec",
    "Struct",
    "Type",
    "TypeNotFoundError",
    "TypeTag",
    "Typedef",
    "Union",
    "Var",
    "VarSecinfo",
    "Void",
    "Volatile",
    "load_kernel",
    "load_kernel_module",
]


def __getattr__(name: str) -> object:
    # The writer (and the typing module it needs) loads on first use: reading BTF never pays
    # for it.
    if name == "BTFWriter":
        from .writer import BTFWriter

        return BTFWriter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
