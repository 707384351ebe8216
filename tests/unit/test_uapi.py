"""The generated kernel ABI agrees with BTF: the pinned copy always, the running kernel's too."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ebpf import btf
from ebpf._uapi import _generated_types as _t

ROOT = Path(__file__).resolve().parents[2]
RUNNING = "/sys/kernel/btf/vmlinux"


def _field_layout(cls: type) -> dict[str, tuple[int, int]]:
    """name -> (offset, size) of every ctypes field, anonymous members flattened."""
    out: dict[str, tuple[int, int]] = {}

    def walk(c: type, base: int) -> None:
        anon = set(getattr(c, "_anonymous_", ()))
        for name, ctype in c._fields_:
            off = getattr(c, name).offset + base
            if name in anon:
                walk(ctype, off)
            elif not name.startswith(("_pad_", "_bf_", "_size")):
                out.setdefault(name, (off, ctypes.sizeof(ctype)))

    walk(cls, 0)
    return out


@pytest.mark.parametrize("cls_name", sorted(_t.EXPECTED_LAYOUT))
def test_ctypes_layout_matches_btf_layout(cls_name: str) -> None:
    cls = getattr(_t, cls_name)
    expected = dict(_t.EXPECTED_LAYOUT[cls_name])
    assert ctypes.sizeof(cls) == expected.pop("__size__")[1]
    got = _field_layout(cls)
    for name, (off, size) in expected.items():
        assert got.get(name) == (off, size), f"{cls_name}.{name}"


def test_generated_file_is_fresh() -> None:
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "gen_types.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]


@pytest.fixture(scope="module")
def running() -> btf.Spec:
    if not os.access(RUNNING, os.R_OK):
        pytest.skip(f"{RUNNING} not readable")
    return btf.Spec.from_file(RUNNING)


def _btf_struct(spec: btf.Spec, origin: tuple[str, str]) -> btf.Struct | btf.Union | None:
    kind, name = origin
    if kind == "bpf_attr":
        attr = spec.find("bpf_attr", kind=btf.Union)
        for m in attr.members:
            t = spec.resolve(m.type)
            key = m.name
            probe = t
            while not key and isinstance(probe, (btf.Struct, btf.Union)) and probe.members:
                key = probe.members[0].name
                probe = spec.resolve(probe.members[0].type)
            if key == name:
                assert isinstance(t, (btf.Struct, btf.Union))
                return t
        return None
    try:
        return spec.find(name, kind=btf.Struct if kind == "struct" else btf.Union)
    except KeyError:
        return None


@pytest.mark.parametrize("cls_name", sorted(_t.ORIGIN))
def test_layout_agrees_with_running_kernel(running: btf.Spec, cls_name: str) -> None:
    """Where both define a member, name and offset agree with the running kernel; sizes too
    on the kernel the layouts were generated from. On another kernel a member's size may
    differ for ABI-compatible reasons: a struct member grew at its tail (6.1's
    ``link_info.raw_tracepoint`` lacks the later cookie) or a newer kernel narrowed an integer
    into a union (6.18's ``pt_regs.cs`` is a u16 beside FRED bits, 6.1's an unsigned long)."""
    st = _btf_struct(running, _t.ORIGIN[cls_name])
    if st is None:
        pytest.skip(f"{_t.ORIGIN[cls_name]} not in the running kernel's BTF")
    got = _field_layout(getattr(_t, cls_name))
    head = Path(_t.__file__).read_text().splitlines()[0]
    release = os.uname().release.split("-")[0]  # builds of one version share the uapi
    same_kernel = f"(Linux {release}-" in head or f"(Linux {release})" in head

    def walk(s: btf.Struct | btf.Union, base: int) -> None:
        for m in s.members:
            mt = running.resolve(m.type)
            if not m.name:
                if isinstance(mt, (btf.Struct, btf.Union)):
                    walk(mt, base + m.offset)
                continue
            if m.bitfield_size or m.name not in got:
                continue
            want = ((base + m.offset) // 8, running.sizeof(mt))
            if same_kernel:
                assert got[m.name] == want, m.name
            else:
                assert got[m.name][0] == want[0], m.name

    walk(st, 0)


ENUM_CLASSES = [n for n in dir(_t) if isinstance(getattr(_t, n), type)
                and issubclass(getattr(_t, n), int) and hasattr(getattr(_t, n), "__members__")]


@pytest.mark.parametrize("enum_name", ENUM_CLASSES)
def test_enums_agree_with_running_kernel(running: btf.Spec, enum_name: str) -> None:
    try:
        e = running.find(enum_name, kind=btf.Enum)
    except KeyError:
        pytest.skip(f"enum {enum_name} not in the running kernel's BTF")
    ours = {m.name: m.value for m in getattr(_t, enum_name)}
    theirs = {v.name: v.value for v in e.values}
    for name, value in ours.items():
        if name in theirs:
            assert theirs[name] == value, name
