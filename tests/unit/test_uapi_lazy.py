"""The generated kernel ABI module builds its enums and structs on first use, once."""

from __future__ import annotations

import ctypes
import subprocess
import sys
import threading

import pytest

from ebpf._uapi import _generated_types as _t


def test_every_lazy_name_builds_and_is_kept() -> None:
    for name in _t._LAZY:  # type: ignore[attr-defined]
        first = getattr(_t, name)
        assert getattr(_t, name) is first
        assert name in dir(_t)
        if isinstance(first, type) and issubclass(first, (ctypes.Structure, ctypes.Union)):
            assert first.__qualname__ == name
            if name in _t.EXPECTED_LAYOUT:  # top-level ones; nested arms are built by them
                assert ctypes.sizeof(first) == _t.EXPECTED_LAYOUT[name]["__size__"][1]


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchAttr"):
        _t.NoSuchAttr  # noqa: B018


def test_racing_threads_get_one_class() -> None:
    """In a fresh interpreter, 8 threads ask for the same never-built struct at once."""
    code = (
        "import threading\n"
        "from ebpf._uapi import _generated_types as t\n"
        "got = []\n"
        "b = threading.Barrier(8)\n"
        "def f():\n"
        "    b.wait(); got.append(t.BpfLinkInfo)\n"
        "ts = [threading.Thread(target=f) for _ in range(8)]\n"
        "[x.start() for x in ts]; [x.join() for x in ts]\n"
        "assert len({id(g) for g in got}) == 1, got\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_import_builds_no_struct() -> None:
    """Importing the library's core leaves most of the ABI unbuilt (the point of laziness)."""
    code = (
        "import ebpf, ebpf._maps\n"
        "from ebpf._uapi import _generated_types as t\n"
        "built = [n for n in t._LAZY if n in vars(t)]\n"
        "print(len(built), len(t._LAZY))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, timeout=60).stdout.split()
    assert int(out[0]) < int(out[1]) // 2, out


def test_threads_in_process_agree() -> None:
    seen: list[type] = []
    ts = [threading.Thread(target=lambda: seen.append(_t.PerfEventAttr)) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert len(set(seen)) == 1
