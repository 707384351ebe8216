"""ebpf.btf against real kernel BTF: the pinned copy, the running kernel and bpftool."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ebpf import btf
from ebpf.errors import ParseError

PINNED = Path(__file__).parent.parent / "testdata" / "vmlinux.btf.gz"
KERNEL = Path("/sys/kernel/btf/vmlinux")


@pytest.fixture(scope="module")
def spec() -> btf.Spec:
    return btf.Spec.from_file(PINNED)


def test_header(spec: btf.Spec) -> None:
    assert spec.byte_order == "<"
    assert spec.header.magic == 0xEB9F
    assert spec.header.version == 1
    assert len(spec) > 10_000
    assert isinstance(spec[0], btf.Void)
    assert spec.raw[:2] == b"\x9f\xeb"


def test_task_struct(spec: btf.Spec) -> None:
    task = spec.find("task_struct", kind=btf.Struct)
    assert isinstance(task, btf.Struct)
    assert task.name == "task_struct"
    assert task.kind is btf.Kind.STRUCT
    assert task.size > 1000
    pid = task.member("pid")
    assert pid.name == "pid"
    assert pid.offset % 8 == 0 and pid.byte_offset == pid.offset // 8
    assert pid.bitfield_size == 0
    assert isinstance(pid.type, btf.Typedef) and pid.type.name == "pid_t"
    resolved = spec.resolve(pid.type)
    assert isinstance(resolved, btf.Int)
    assert resolved.name == "int" and resolved.size == 4 and resolved.signed
    assert spec.sizeof(pid.type) == 4
    # every member's type resolves
    for m in task.members:
        assert isinstance(m.type, btf.Type)
    with pytest.raises(KeyError):
        task.member("no_such_member")


def test_find_errors(spec: btf.Spec) -> None:
    with pytest.raises(btf.TypeNotFoundError):
        spec.find("no_such_type_in_vmlinux")
    with pytest.raises(KeyError):
        spec.find("task_struct", kind=btf.Union)
    assert spec.find_all("no_such_type_in_vmlinux") == []
    assert spec.find("task_struct") == spec.find("task_struct", btf.Struct)


def test_bpf_attr_and_enums(spec: btf.Spec) -> None:
    attr = spec.find("bpf_attr", kind=btf.Union)
    assert attr.size >= 120
    assert attr.member("map_type").offset == 0
    map_type = spec.find("bpf_map_type", kind=btf.Enum)
    assert map_type.value("BPF_MAP_TYPE_HASH") == 1
    assert map_type.as_dict()["BPF_MAP_TYPE_ARRAY"] == 2
    assert map_type.values[0] == btf.EnumValue("BPF_MAP_TYPE_UNSPEC", 0)
    assert map_type.size == 4
    with pytest.raises(KeyError):
        map_type.value("BPF_MAP_TYPE_NOPE")
    cmd = spec.find("bpf_cmd", kind=btf.Enum)
    assert cmd.value("BPF_MAP_CREATE") == 0
    assert cmd.value("BPF_PROG_LOAD") == 5


def test_bitfields(spec: btf.Spec) -> None:
    skb = spec.find("sk_buff", kind=btf.Struct)
    bitfields = [m for m in skb.members if m.bitfield_size]
    if not bitfields:  # the bitfields may sit in an anonymous member
        bitfields = [
            skb.member(name) for name in ("cloned", "nohdr", "pkt_type") if _has(skb, name)
        ]
    assert bitfields
    cloned = skb.member("cloned")
    assert cloned.bitfield_size == 1
    tcp = spec.find("tcp_sock", kind=btf.Struct)
    assert any(m.bitfield_size for m in tcp.members)


def _has(s: btf.Composite, name: str) -> bool:
    try:
        s.member(name)
    except KeyError:
        return False
    return True


def _path_offset(spec: btf.Spec, s: btf.Composite, name: str) -> int | None:
    """Offset of ``name`` found by walking anonymous members by hand (the reference)."""
    for m in s.members:
        if m.name == name:
            return m.offset
    for m in s.members:
        inner = spec.resolve(m.type)
        if not m.name and isinstance(inner, btf.Composite):
            off = _path_offset(spec, inner, name)
            if off is not None:
                return m.offset + off
    return None


def test_anonymous_members(spec: btf.Spec) -> None:
    skb = spec.find("sk_buff", kind=btf.Struct)
    length = skb.member("len")  # direct or nested depending on the kernel
    assert length.name == "len"
    assert spec.sizeof(length.type) == 4
    direct = {m.name for m in skb.members}
    nested = [n for n in ("next", "dev", "sk", "tstamp", "protocol", "mark") if n not in direct]
    assert nested, "sk_buff has no members in anonymous unions?"
    for name in nested:
        m = skb.member(name)
        assert m.name == name
        assert m.offset == _path_offset(spec, skb, name), name
        assert m.byte_offset == m.offset // 8
    assert skb.member("next").offset == 0
    assert isinstance(spec.resolve(skb.member("next").type), btf.Pointer)
    # nested twice: struct_group() puts "protocol" in an anonymous struct in an anonymous union
    assert skb.member("protocol").offset == _path_offset(spec, skb, "protocol")
    assert spec.sizeof(skb.member("protocol").type) == 2


def test_typedef_resolution(spec: btf.Spec) -> None:
    u32 = spec.find("u32", kind=btf.Typedef)
    target = spec.resolve(u32)
    assert isinstance(target, btf.Int)
    assert target.size == 4 and not target.signed
    assert spec.sizeof(u32) == 4
    assert spec.sizeof(spec.find("u64")) == 8
    assert spec.pointer_size == 8
    assert isinstance(spec.find("bool", btf.Typedef), btf.Typedef)
    b = spec.resolve(spec.find("bool", btf.Typedef))
    assert isinstance(b, btf.Int) and b.is_bool
    c = spec.find("char", btf.Int)
    assert c.is_char or c.size == 1


def test_enum64(spec: btf.Spec) -> None:
    enums = list(spec.types(btf.Enum64))
    if not enums:
        pytest.skip("no ENUM64 in this BTF")
    for e in enums:
        assert e.kind is btf.Kind.ENUM64
        assert e.size == 8
        for v in e.values:
            assert -(1 << 63) <= v.value < (1 << 64)


def test_datasec_and_var(spec: btf.Spec) -> None:
    secs = list(spec.types(btf.DataSec))
    assert secs
    percpu = next(s for s in secs if s.name == ".data..percpu")
    assert percpu.vars
    for info in percpu.vars:
        var = info.type
        assert isinstance(var, btf.Var)
        assert isinstance(var.linkage, btf.Linkage)
        assert info.size == spec.sizeof(var)
    variables = list(spec.types(btf.Var))
    assert len(variables) >= len(percpu.vars)


def test_func_and_proto(spec: btf.Spec) -> None:
    func = spec.find("bpf_map_lookup_elem", kind=btf.Func)
    assert isinstance(func.linkage, btf.Linkage)
    proto = func.proto
    assert isinstance(proto, btf.FuncProto)
    assert proto.params
    assert all(isinstance(p.type, btf.Type) for p in proto.params)
    assert func.type == proto and func.type_id == func.proto_id
    vfs_read = spec.find_all("vfs_read", btf.Func)
    if vfs_read:
        params = vfs_read[0].proto.params
        assert [p.name for p in params][:1] == ["file"]
        assert isinstance(spec.resolve(params[0].type), btf.Pointer)
    assert any(p.variadic for p in spec.types(btf.FuncProto))


def test_all_kinds_decode(spec: btf.Spec) -> None:
    kinds: set[btf.Kind] = set()
    n = 0
    for t in spec.types():
        n += 1
        kinds.add(t.kind)
        assert type(t).kind is t.kind
        assert isinstance(t.name, str)
        if isinstance(t, btf.Composite):
            for m in t.members:
                assert m.type.id == m.type_id
    assert n == len(spec)
    assert {btf.Kind.INT, btf.Kind.STRUCT, btf.Kind.FUNC, btf.Kind.FUNC_PROTO} <= kinds
    assert [t.id for t in spec.types(btf.Int)] == sorted(t.id for t in spec.types(btf.Int))


def _shape(t: btf.Type) -> tuple[object, ...]:
    """Everything decoded about ``t``, comparable across specs."""
    extra: tuple[object, ...] = ()
    if isinstance(t, btf.Composite):
        extra = tuple((m.name, m.type_id, m.offset, m.bitfield_size) for m in t.members)
    elif isinstance(t, btf.FuncProto):
        extra = tuple((p.name, p.type_id) for p in t.params)
    elif isinstance(t, (btf.Enum, btf.Enum64)):
        extra = t.values
    elif isinstance(t, btf.DataSec):
        extra = tuple((v.type_id, v.offset, v.size) for v in t.vars)
    return (repr(t), extra)


def test_bulk_decoding_matches_record_by_record(spec: btf.Spec) -> None:
    bulk = btf.Spec.from_bytes(spec.raw)
    every = list(bulk.types())
    for t in every:  # past the threshold: the rest of the members/params come in bulk
        if isinstance(t, btf.Composite):
            t.members  # noqa: B018
        elif isinstance(t, btf.FuncProto):
            t.params  # noqa: B018
    one_by_one = btf.Spec.from_bytes(spec.raw)
    for tid in range(0, len(every), 7):
        assert _shape(every[tid]) == _shape(one_by_one[tid]), tid


def test_types_filter_by_base_class(spec: btf.Spec) -> None:
    composite = list(spec.types(btf.Composite))
    assert composite
    assert all(isinstance(t, (btf.Struct, btf.Union)) for t in composite)
    assert len(composite) == len(list(spec.types(btf.Struct))) + len(list(spec.types(btf.Union)))


def test_many_finds_use_the_index(spec: btf.Spec) -> None:
    fresh = btf.Spec.from_bytes(spec.raw)
    names = [t.name for t in fresh.types(btf.Struct)][:200]
    for name in names:
        found = fresh.find(name, btf.Struct)
        assert found.name == name
        assert found.id == spec.find(name, btf.Struct).id
    # lookups that go through the index agree with a cold spec
    for name in ("int", "pid_t", "list_head", "sk_buff", "len"):
        cold = btf.Spec.from_bytes(spec.raw)
        assert [t.id for t in fresh.find_all(name)] == [t.id for t in cold.find_all(name)]


def test_threads_share_a_spec(spec: btf.Spec) -> None:
    import threading

    shared = btf.Spec.from_bytes(spec.raw)
    names = ["task_struct", "sk_buff", "bpf_attr", "list_head", "u32", "file", "inode"]
    results: list[object] = []
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            found = [shared.find(n).id for n in names[k % 3 :]]
            results.append((len(shared), found[-1], sum(1 for _ in shared.types(btf.Enum))))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(set(results)) == 1
    assert results[0] == (len(spec), spec.find("inode").id, len(list(spec.types(btf.Enum))))


def test_identity_and_equality(spec: btf.Spec) -> None:
    a = spec.find("task_struct", btf.Struct)
    assert spec[a.id] is a
    assert a == spec[a.id] and hash(a) == hash(spec[a.id])
    other = btf.Spec.from_bytes(spec.raw)
    assert other.find("task_struct") != a
    with pytest.raises(AttributeError):
        a.size = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        len(a)
    with pytest.raises(KeyError):
        spec[len(spec)]
    with pytest.raises(KeyError):
        spec[-1]
    assert "task_struct" in repr(a)


# --- the running kernel ---------------------------------------------------------------------


needs_kernel_btf = pytest.mark.skipif(
    not os.access(KERNEL, os.R_OK), reason="/sys/kernel/btf/vmlinux not readable"
)


@needs_kernel_btf
def test_running_kernel() -> None:
    kernel = btf.load_kernel()
    assert btf.load_kernel() is kernel
    from_file = btf.Spec.from_bytes(KERNEL.read_bytes())
    assert len(kernel) == len(from_file)
    for name, kind in (
        ("task_struct", btf.Struct),
        ("bpf_attr", btf.Union),
        ("bpf_map_type", btf.Enum),
    ):
        a = kernel.find(name, kind)
        b = from_file.find(name, kind)
        assert a.id == b.id and a.size == b.size
    assert kernel.find("bpf_map_type", btf.Enum).value("BPF_MAP_TYPE_HASH") == 1


@needs_kernel_btf
def test_kernel_module_split_btf() -> None:
    mods = sorted(p.name for p in KERNEL.parent.iterdir() if p.name != "vmlinux")
    if not mods:
        pytest.skip("no module BTF")
    mod = btf.load_kernel_module(mods[0])
    assert mod.base is btf.load_kernel()
    assert len(mod) >= len(mod.base)
    for t in mod.types():
        if t.id >= mod.first_id and isinstance(t, btf.Composite):
            for m in t.members:
                m.type  # noqa: B018
    with pytest.raises(ValueError):
        btf.load_kernel_module("../etc")


# --- bpftool cross-check --------------------------------------------------------------------

_RAW_LINE = re.compile(r"^\[(\d+)\] (\w+) '([^']*)'(.*)$")
_MEMBER_LINE = re.compile(r"^\s+'([^']*)' type_id=(\d+) bits_offset=(\d+)(?: bitfield_size=(\d+))?")


@pytest.mark.skipif(shutil.which("bpftool") is None, reason="bpftool not installed")
def test_bpftool_raw_dump(tmp_path: Path) -> None:
    import gzip

    path = tmp_path / "vmlinux.btf"
    path.write_bytes(gzip.decompress(PINNED.read_bytes()))
    out = subprocess.run(
        ["bpftool", "btf", "dump", "file", str(path), "format", "raw"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    spec = btf.Spec.from_file(path)
    records: dict[int, tuple[str, str, str, list[str]]] = {}
    current: list[str] = []
    for line in out.splitlines():
        m = _RAW_LINE.match(line)
        if m:
            current = []
            records[int(m.group(1))] = (m.group(2), m.group(3), m.group(4), current)
        else:
            current.append(line)
    assert max(records) == len(spec) - 1
    sample = sorted(records)[:: max(1, len(records) // 3000)]
    sample += [spec.find(n).id for n in ("task_struct", "sk_buff", "bpf_attr", "tcp_sock")]
    checked_members = 0
    for tid in sample:
        kind, name, rest, extra = records[tid]
        t = spec[tid]
        assert t.kind.name == kind, (tid, kind, t)
        assert t.name == ("" if name == "(anon)" else name)
        fields = dict(re.findall(r"(\w+)=([^\s,]+)", rest))
        if "size" in fields:
            assert getattr(t, "size") == int(fields["size"]), (tid, t)  # noqa: B009
        if "type_id" in fields and isinstance(t, (btf.Qualifier, btf.Pointer, btf.Var)):
            ref = t.target_id if isinstance(t, btf.Pointer) else t.type_id
            assert ref == int(fields["type_id"])
        if "vlen" in fields and isinstance(t, btf.Composite):
            assert len(t.members) == int(fields["vlen"])
            for m, line in zip(t.members, extra, strict=False):
                mm = _MEMBER_LINE.match(line)
                assert mm, line
                assert m.name == ("" if mm.group(1) == "(anon)" else mm.group(1))
                assert m.type_id == int(mm.group(2))
                assert m.offset == int(mm.group(3))
                assert m.bitfield_size == int(mm.group(4) or 0)
                checked_members += 1
        if isinstance(t, btf.Int):
            assert t.bits == int(fields["nr_bits"])
            assert t.bit_offset == int(fields["bits_offset"])
        if isinstance(t, btf.Array):
            assert t.elem_type_id == int(fields["type_id"])
            assert t.index_type_id == int(fields["index_type_id"])
            assert t.nelems == int(fields["nr_elems"])
    assert checked_members > 100


def test_parse_error_is_value_error() -> None:
    with pytest.raises(ValueError):
        btf.Spec.from_bytes(b"\x9f\xeb\x01\x00")
    with pytest.raises(ParseError):
        btf.Spec.from_bytes(b"")
