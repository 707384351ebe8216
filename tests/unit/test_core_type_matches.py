"""TYPE_MATCHES (``bpf_core_type_matches``) follows libbpf's ``__bpf_core_types_match``:
local flavours (``name___x``) compiled by clang-19 against a target object's BTF, types
that match and types that do not, one rule each."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ebpf import btf
from ebpf.btf.core import CoreError, _types_match
from ebpf.elf import load_collection_spec

CLANG = shutil.which("clang-19")
pytestmark = pytest.mark.skipif(CLANG is None, reason="clang-19 not installed")

TARGET = r"""
struct other;
union un { int i; long l; };
enum color { RED, GREEN, BLUE };
typedef unsigned int u32_t;
struct target {
    int a;
    u32_t b;
    long arr[4];
    struct other *opaque;
    union un *uptr;
    enum color c;
    int (*fn)(int, char *);
    struct { int x; } anon;
};
struct target t_target; union un t_un; enum color t_color;
struct other { int z; } t_other;
"""

LOCAL = r"""
struct other___fwd;
struct other___def { int z; };
union un___ok { long l; };
enum color___ok { GREEN___1, RED___1 };
enum color___more { RED___2, GREEN___2, BLUE___2, PURPLE };
enum color___big { RED___3 = 1ULL << 40 };
struct target___sub { long arr[4]; int a; };
struct target___sign { unsigned int a; };
struct target___size { long a; };
struct target___typedef_ok { unsigned int b; };
struct target___arrlen { long arr[3]; };
struct target___missing { int nope; };
struct target___fwdptr { struct other___fwd *opaque; };
struct target___defptr { struct other *opaque; };
struct target___unionptr_as_struct { struct un *uptr; };
struct target___fn_ok { int (*fn)(int, char *); };
struct target___fn_argc { int (*fn)(int); };
struct target___fn_ret { long (*fn)(int, char *); };
struct target___enum_ok { enum color___ok c; };
struct target___kind { union { int a; } u; };
union target___union { int a; };
struct target___sub v1; struct target___sign v2; struct target___size v3;
struct target___typedef_ok v4; struct target___arrlen v5; struct target___missing v6;
struct target___fwdptr v7; struct target___defptr v8; struct target___unionptr_as_struct v9;
struct target___fn_ok v10; struct target___fn_argc v11; struct target___fn_ret v12;
struct target___enum_ok v13; union target___union v14;
union un___ok v15; enum color___ok v16; enum color___more v17; enum color___big v18;
struct other___def v19;
"""


def _btf(tmp: Path, name: str, src: str) -> btf.Spec:
    c = tmp / f"{name}.c"
    c.write_text(src)
    o = tmp / f"{name}.o"
    assert CLANG is not None
    subprocess.run([CLANG, "-g", "-O2", "-target", "bpf", "-c", str(c), "-o", str(o)],
                   check=True)
    spec = load_collection_spec(o.read_bytes()).btf
    assert spec is not None
    return spec


@pytest.fixture(scope="module")
def specs(tmp_path_factory: pytest.TempPathFactory) -> tuple[btf.Spec, btf.Spec]:
    tmp = tmp_path_factory.mktemp("match")
    return _btf(tmp, "local", LOCAL), _btf(tmp, "target", TARGET)


def _find(spec: btf.Spec, name: str) -> btf.Type:
    for kind in (btf.Struct, btf.Union, btf.Enum, btf.Enum64, btf.Fwd):
        try:
            return spec.find(name, kind)
        except KeyError:
            continue
    raise KeyError(name)


@pytest.mark.parametrize(("local", "target", "expected"), [
    ("target___sub", "target", True),            # subset of members, any order
    ("target___typedef_ok", "target", True),     # typedefs skipped: u32_t == unsigned int
    ("target___fwdptr", "target", True),         # behind a pointer a fwd matches the struct
    ("target___defptr", "target", True),         # behind a pointer no member check
    ("target___fn_ok", "target", True),          # func proto: params and return type
    ("target___enum_ok", "target", True),
    ("un___ok", "un", True),
    ("color___ok", "color", True),               # enumerator names, not values
    ("other___def", "other", True),
    ("target___sign", "target", False),          # int signedness
    ("target___size", "target", False),          # int size
    ("target___arrlen", "target", False),        # array element count
    ("target___missing", "target", False),       # member not in target
    ("target___unionptr_as_struct", "target", False),  # pointee kind (fwd struct vs union)
    ("target___fn_argc", "target", False),       # parameter count
    ("target___fn_ret", "target", False),        # return type
    ("target___union", "target", False),         # union vs struct
    ("color___more", "color", False),            # local has more enumerators
    ("color___big", "color", False),             # enum size 8 vs 4
])
def test_types_match(specs: tuple[btf.Spec, btf.Spec], local: str, target: str,
                     expected: bool) -> None:
    ls, ts = specs
    assert _types_match(ls, _find(ls, local), ts, _find(ts, target)) is expected


def test_anonymous_member_names_must_both_be_anonymous(specs: tuple[btf.Spec, btf.Spec]
                                                       ) -> None:
    ls, ts = specs
    t = _find(ts, "target")
    assert isinstance(t, btf.Struct)
    anon = t.member("anon").type
    # an anonymous target type matches only an anonymous local type
    assert _types_match(ts, anon, ts, anon)
    assert not _types_match(ls, _find(ls, "target___sub"), ts, anon)


def test_self_referential_types_terminate(specs: tuple[btf.Spec, btf.Spec]) -> None:
    _ls, ts = specs
    t = _find(ts, "target")
    assert _types_match(ts, t, ts, t)
    assert issubclass(CoreError, ValueError)


def test_field_of_void_type_is_a_core_error(specs: tuple[btf.Spec, btf.Spec]) -> None:
    """CO-RE on a field without a size was ``ValueError: Void 0 has no size`` (issue 14)."""
    from ebpf.btf.core import K, _Field, _field_values

    _ls, ts = specs
    with pytest.raises(CoreError, match="without a size"):
        _field_values(ts, _Field(ts[0], 0, 0, False), K.FIELD_BYTE_OFFSET, "<")
