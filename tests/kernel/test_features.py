"""ebpf.features on the real kernel, cross-checked with bpftool and kernel BTF."""

from __future__ import annotations

import json
import shutil
import subprocess

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
    return {v.name.removeprefix(prefix) for v in values
            if not v.name.startswith("__") and not v.name.endswith("_DEPRECATED")}


def test_every_kernel_map_type_has_an_answer() -> None:
    kernel = _kernel_enum("bpf_map_type", "BPF_MAP_TYPE_") - {"UNSPEC"}
    public = {m.name for m in ebpf.MapType}
    assert kernel <= public, f"MapType lacks {kernel - public}"
    for name in sorted(kernel):
        assert isinstance(features.supports(features.have_map_type, ebpf.MapType[name]), bool)
        assert name in features.MAP_TYPE_MIN_KERNEL


def test_every_kernel_program_type_has_an_answer() -> None:
    kernel = _kernel_enum("bpf_prog_type", "BPF_PROG_TYPE_") - {"UNSPEC"}
    public = {p.name for p in ebpf.ProgramType}
    assert kernel <= public, f"ProgramType lacks {kernel - public}"
    for name in sorted(kernel):
        features.supports(features.have_program_type, ebpf.ProgramType[name])
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
    features.have_isa(version)


def test_link_types_on_this_kernel() -> None:
    for lt in ("XDP", "TCX", "CGROUP", "NETNS", "PERF_EVENT", "NETFILTER", "UPROBE_MULTI",
               "SOCKMAP"):
        features.have_link_type(ebpf.LinkType[lt])
    features.have_bpf_link()


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
    from ebpf.asm._generated_helpers import PROGRAM_TYPES

    assert PROGRAM_TYPES is not None
    for helper in Helper:
        if helper.value == 0:
            continue
        recorded = int(pt) in PROGRAM_TYPES.get(int(helper), frozenset())
        assert features.supports(features.have_helper, pt, helper) == recorded, helper.name
