"""ebpf.features on the real kernel, cross-checked with bpftool and kernel BTF."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator

import pytest

import ebpf
from ebpf import btf, errors, features
from ebpf.asm import Helper


@pytest.fixture(scope="module")
def bpftool_probe() -> dict[str, object]:
    tool = shutil.which("bpftool")
    if tool is None:
        pytest.skip("bpftool not installed (apt-get install bpftool)")
    out = subprocess.run([tool, "feature", "probe", "kernel", "-j"], capture_output=True,
                         text=True, check=True).stdout
    return dict(json.loads(out))


def _kernel_enum(name: str, prefix: str) -> set[str]:
    spec = btf.load_kernel()
    values = spec.find(name, kind=btf.Enum).values
    # Sentinels: __MAX_BPF_ATTACH_TYPE, and MAX_BPF_LINK_TYPE before 6.7 (renamed since).
    return {v.name.removeprefix(prefix) for v in values
            if not v.name.startswith(("__", "MAX_")) and not v.name.endswith("_DEPRECATED")}


def _older_than(min_kernel: str) -> bool:
    return bool(min_kernel) and ebpf.platform.kernel_version() < min_kernel


def test_every_kernel_map_type_has_an_answer() -> None:
    kernel = _kernel_enum("bpf_map_type", "BPF_MAP_TYPE_") - {"UNSPEC"}
    public = {m.name for m in ebpf.MapType}
    assert kernel <= public, f"MapType lacks {kernel - public}"
    for name in sorted(kernel):
        _assert_answer(features.have_map_type, ebpf.MapType[name])
        assert name in features.MAP_TYPE_MIN_KERNEL


def _assert_answer(probe: Callable[..., None], *args: object) -> None:
    """A probe answers yes/no, or says by which errno it could not decide (never anything else)."""
    try:
        assert isinstance(features.supports(probe, *args), bool)
    except errors.ProbeError as e:
        assert e.errno is not None and e.errno > 0, e
        assert str(e).startswith("cannot tell whether ") and errors.errno_name(e.errno) in str(e)


def test_every_kernel_program_type_has_an_answer() -> None:
    kernel = _kernel_enum("bpf_prog_type", "BPF_PROG_TYPE_") - {"UNSPEC"}
    public = {p.name for p in ebpf.ProgramType}
    assert kernel <= public, f"ProgramType lacks {kernel - public}"
    for name in sorted(kernel):
        _assert_answer(features.have_program_type, ebpf.ProgramType[name])
        assert name in features.PROGRAM_TYPE_MIN_KERNEL


def test_public_enums_cover_kernel_attach_and_link_types() -> None:
    attach = _kernel_enum("bpf_attach_type", "BPF_")
    assert attach <= {a.name for a in ebpf.AttachType}
    links = _kernel_enum("bpf_link_type", "BPF_LINK_TYPE_") - {"UNSPEC"}
    assert links <= {lt.name for lt in ebpf.LinkType}
    assert links <= set(features.LINK_TYPE_MIN_KERNEL)


def test_map_types_agree_with_bpftool(bpftool_probe: dict[str, dict[str, bool]]) -> None:
    theirs = {k.removeprefix("have_").removesuffix("_map_type").upper(): v
              for k, v in bpftool_probe["map_types"].items()}
    compared = 0
    for name, available in theirs.items():
        if name not in ebpf.MapType.__members__:
            continue
        ours = features.supports(features.have_map_type, ebpf.MapType[name])
        assert ours == available, f"{name}: ours {ours}, bpftool {available}"
        compared += 1
    assert compared >= 25


def test_program_types_agree_with_bpftool(bpftool_probe: dict[str, dict[str, bool]]) -> None:
    theirs = {k.removeprefix("have_").removesuffix("_prog_type").upper(): v
              for k, v in bpftool_probe["program_types"].items()}
    compared = 0
    for name, available in theirs.items():
        if name not in ebpf.ProgramType.__members__:
            continue
        ours = features.supports(features.have_program_type, ebpf.ProgramType[name])
        assert ours == available, f"{name}: ours {ours}, bpftool {available}"
        compared += 1
    assert compared >= 25


def test_helper_probe_tells_allowed_from_forbidden() -> None:
    # Note: bpftool 7.1 (libbpf 1.1) reports every helper for every type on kernels whose
    # verifier says "program of this type cannot use helper"; ours reads that message.
    xdp = ebpf.ProgramType.XDP
    features.have_helper(xdp, Helper.MAP_LOOKUP_ELEM)
    features.have_helper(xdp, Helper.XDP_ADJUST_HEAD)
    with pytest.raises(errors.NotSupportedError, match="SKB_VLAN_PUSH"):
        features.have_helper(xdp, Helper.SKB_VLAN_PUSH)
    with pytest.raises(errors.NotSupportedError):
        features.have_helper(ebpf.ProgramType.SOCKET_FILTER, Helper.XDP_ADJUST_HEAD)
    features.have_helper(ebpf.ProgramType.SCHED_CLS, Helper.SKB_VLAN_PUSH)


@pytest.mark.parametrize("version", [1, 2, 3, 4])
def test_isa_versions(version: int) -> None:
    if _older_than(features.ISA_MIN_KERNEL[version]):
        with pytest.raises(errors.NotSupportedError) as ei:
            features.have_isa(version)
        assert ei.value.min_kernel == features.ISA_MIN_KERNEL[version]
    else:
        features.have_isa(version)


def test_link_types_on_this_kernel() -> None:
    for lt in ("XDP", "TCX", "CGROUP", "NETNS", "PERF_EVENT", "NETFILTER", "UPROBE_MULTI",
               "SOCKMAP"):
        if _older_than(features.LINK_TYPE_MIN_KERNEL[lt]):
            with pytest.raises(errors.NotSupportedError):
                features.have_link_type(ebpf.LinkType[lt])
        else:
            features.have_link_type(ebpf.LinkType[lt])
    features.have_bpf_link()


@pytest.mark.parametrize("table,probe,enum", [
    ("MAP_TYPE_MIN_KERNEL", "have_map_type", ebpf.MapType),
    ("PROGRAM_TYPE_MIN_KERNEL", "have_program_type", ebpf.ProgramType),
    ("LINK_TYPE_MIN_KERNEL", "have_link_type", ebpf.LinkType),
], ids=["maps", "programs", "links"])
def test_documented_minimum_kernels_hold_here(table: str, probe: str, enum: type) -> None:
    """The one table of minimum kernels (features.*_MIN_KERNEL) against this kernel: a type
    newer than the running kernel must be refused as a version question (NotSupportedError
    naming that version); an older one is there, or refused as a build question (min_kernel
    empty: the kernel is new enough but was built without it). Run on 6.1 in the VM and on
    the host, this is the table's check."""
    mins: dict[str, str] = getattr(features, table)
    fn = getattr(features, probe)
    undecided = []
    for name, min_kernel in sorted(mins.items()):
        if name not in enum.__members__:
            continue
        try:
            fn(enum[name])
            have = True
        except errors.NotSupportedError as e:
            have = False
            if _older_than(min_kernel):
                assert e.min_kernel == min_kernel, name
            else:
                assert e.min_kernel == "", f"{name}: refused as a version question: {e}"
        except errors.ProbeError as e:
            undecided.append(f"{name}: {e.reason}")
            continue
        assert not (have and _older_than(min_kernel)), \
            f"{name} works on {ebpf.platform.kernel_version()}: the table says {min_kernel}"
    assert len(undecided) <= 3, undecided


def test_not_supported_error_names_feature_and_version() -> None:
    if features.supports(features.have_program_type, ebpf.ProgramType.LIRC_MODE2):
        pytest.skip("this kernel has CONFIG_BPF_LIRC_MODE2")
    with pytest.raises(errors.NotSupportedError) as exc:
        features.have_program_type(ebpf.ProgramType.LIRC_MODE2)
    assert exc.value.feature == "BPF_PROG_TYPE_LIRC_MODE2"
    # 6.18 is newer than 4.18: the kernel was built without it, which is no version question.
    assert exc.value.min_kernel == ""
    assert "not enabled in this kernel" in str(exc.value) and "4.18" in str(exc.value)


def test_answers_are_cached() -> None:
    features.have_map_type(ebpf.MapType.HASH)
    features.have_map_type(ebpf.MapType.HASH)  # second call answered from the cache


def test_requires_mark_skips_or_runs(require: object) -> None:
    require(features.have_map_type, ebpf.MapType.RINGBUF)  # type: ignore[operator]


@pytest.mark.parametrize("pt", [ebpf.ProgramType.XDP, ebpf.ProgramType.SCHED_CLS,
                                ebpf.ProgramType.TRACEPOINT], ids=lambda p: p.name)
def test_recorded_helper_table_agrees_with_this_kernel(pt: ebpf.ProgramType) -> None:
    """The generated per-helper program types match a fresh probe of the running kernel."""
    from ebpf.asm._generated_helpers import PROGRAM_TYPES, PROGRAM_TYPES_SOURCE

    assert PROGRAM_TYPES is not None
    # The table is recorded from the pinned kernel (see the generated file's header).
    if not ebpf.platform.kernel_version() >= (6, 18):
        # Not a subset either: 6.1 lets tracepoints call probe_write_user, 6.18 does not.
        pytest.skip(f"the table is recorded from 6.18, this is {ebpf.platform.kernel_version()}")
    differ = []
    for helper in Helper:
        if helper.value == 0:
            continue
        recorded = int(pt) in PROGRAM_TYPES.get(int(helper), frozenset())
        if features.supports(features.have_helper, pt, helper) != recorded:
            differ.append(f"{helper.name} (recorded {recorded})")
    release = os.uname().release
    if differ and f"Linux {release}" != PROGRAM_TYPES_SOURCE.removeprefix("probed on "):
        # Builds of one version differ (6.18.44-fc-v1300 refuses bpf_xdp_adjust_meta in XDP).
        pytest.skip(f"{PROGRAM_TYPES_SOURCE}, this is a different build ({release}): "
                    f"{', '.join(differ)}")
    assert not differ


# --- probes that cannot decide -------------------------------------------------------------

_PROBES = ("have_map_type", "have_program_type", "have_helper", "have_isa", "have_bpf_link",
           "have_link_type")


@pytest.fixture
def fresh_probe_caches() -> Iterator[None]:
    """Forget cached answers before and after, so simulated errnos never leak into other tests."""
    for name in _PROBES:
        getattr(features, name).cache_clear()
    yield
    for name in _PROBES:
        getattr(features, name).cache_clear()


@pytest.mark.parametrize("code", [errno.EPERM, errno.EACCES, errno.EINVAL, errno.ENOMEM,
                                  errno.EFAULT, errors.ENOTSUPP],
                         ids=errors.errno_name)
def test_a_refused_probe_never_escapes(code: int, fresh_probe_caches: None,
                                       monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """Every syscall of every probe fails with ``code``: each answer is yes/no/unknown, the
    CLI prints them and exits 0, and a refused answer is a ProbeError naming the errno."""
    from ebpf import cli

    def refuse(cmd: int, *args: object, **kw: object) -> object:
        raise errors.from_errno(features.C(cmd).name, code)

    monkeypatch.setattr(features, "bpf", refuse)
    monkeypatch.setattr(features, "bpf_fd", refuse)
    result = features.probe_all()
    answers = [v for group in result.values() for v in group.values()]
    assert answers and all(isinstance(v, bool) or v.startswith("unknown (") for v in answers)
    if code in (errno.EPERM, errno.EACCES, errno.ENOMEM, errno.EFAULT):
        unknown = result["map_types"]["ARENA"]
        assert isinstance(unknown, str)
        assert unknown.startswith(f"unknown ({errors.errno_name(code)}: BPF_MAP_CREATE: ")
        with pytest.raises(errors.ProbeError) as exc:
            features.have_map_type(ebpf.MapType.ARENA)
        assert exc.value.errno == code and exc.value.feature == "BPF_MAP_TYPE_ARENA"
        assert isinstance(exc.value.__cause__, errors.SyscallError)
    assert cli.main(["feature", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data == json.loads(json.dumps(result))
    assert cli.main(["feature"]) == 0
    text = capsys.readouterr().out
    assert "ARENA" in text


def test_refused_answers_are_not_cached(fresh_probe_caches: None,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(cmd: int, *args: object, **kw: object) -> object:
        raise errors.from_errno("BPF_MAP_CREATE", errno.EPERM)

    monkeypatch.setattr(features, "bpf_fd", refuse)
    with pytest.raises(errors.ProbeError, match=r"BPF_MAP_TYPE_HASH.*EPERM"):
        features.have_map_type(ebpf.MapType.HASH)
    monkeypatch.undo()
    features.have_map_type(ebpf.MapType.HASH)  # asked again, and now conclusive


def test_a_refused_dependency_names_the_feature_asked(fresh_probe_caches: None,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """have_link_type depends on have_program_type; the error names the link type."""
    real = features.bpf_fd  # type: ignore[attr-defined]

    def refuse_loads(cmd: int, *args: object, **kw: object) -> object:
        if cmd == features.C.BPF_PROG_LOAD:
            raise errors.from_errno("BPF_PROG_LOAD", errno.EPERM)
        return real(cmd, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(features, "bpf_fd", refuse_loads)
    with pytest.raises(errors.ProbeError) as exc:
        features.have_link_type(ebpf.LinkType.TCX)
    assert exc.value.feature == "BPF_LINK_TYPE_TCX" and exc.value.errno == errno.EPERM
    assert "BPF_PROG_TYPE_SCHED_CLS" in str(exc.value)


@pytest.mark.parametrize("pt", ["TRACING", "LSM", "EXT", "STRUCT_OPS"])
def test_helpers_of_attach_target_types_are_inconclusive(pt: str) -> None:
    """Where the type loads at all, its helpers cannot be probed without a target: a
    ProbeError with no errno. (This host refuses TRACING/LSM/EXT loads: a plain "no".)"""
    try:
        features.have_program_type(ebpf.ProgramType[pt])
    except (errors.NotSupportedError, errors.ProbeError) as e:
        with pytest.raises(type(e)):
            features.have_helper(ebpf.ProgramType[pt], Helper.KTIME_GET_NS)
        return
    with pytest.raises(errors.ProbeError, match="without an attach target") as exc:
        features.have_helper(ebpf.ProgramType[pt], Helper.KTIME_GET_NS)
    assert exc.value.errno is None
