"""Issue 14 findings reproduced with the issue's own inputs where the older tests use a
smaller stand-in: the 1 MB ``.gz`` given to ``btf.Spec.from_file`` that inflates to more
than a GiB (before the fix the whole file was inflated before the header was read)."""

from __future__ import annotations

import gzip
import time
import tracemalloc
import zlib
from pathlib import Path

import pytest

from ebpf import btf
from ebpf.btf import wire
from ebpf.errors import ParseError


def _header(str_len: int) -> bytes:
    return wire.HEADER["<"].pack(wire.MAGIC, 1, 0, 24, 0, 0, 0, str_len)


def _zeros_member(n: int) -> bytes:
    """One gzip member of ``n`` zero bytes (about n/1000 bytes on disk)."""
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    out = [c.compress(chunk) for _ in range(n >> 20)]
    return b"".join(out) + c.flush()


def _bomb(tmp_path: Path, head: bytes, target: int = 1 << 20) -> Path:
    """``head`` as the first gzip member, then copies of a 64 MiB zeros member up to
    ``target`` bytes on disk: a ~1 MB file that inflates to ~16 GiB."""
    member = _zeros_member(64 << 20)
    p = tmp_path / "bomb.btf.gz"
    with open(p, "wb") as f:
        f.write(gzip.compress(head))
        while f.tell() < target:
            f.write(member)
    return p


@pytest.mark.parametrize(("head", "match"), [
    (_header(0x7FFF_FFFF), "more than"),             # the header claims a 2 GiB string section
    (_header(1) + b"\0", "continues past the end"),  # a good blob, then GiBs of zeros
])
def test_one_megabyte_gzip_bomb(tmp_path: Path, head: bytes, match: str) -> None:
    p = _bomb(tmp_path, head)
    size = p.stat().st_size
    assert 1 << 20 <= size < 2 << 20
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(ParseError, match=match):
            btf.Spec.from_file(p)
        elapsed = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 1.0, f"{elapsed:.2f} s for a {size}-byte file"
    assert peak < 8 << 20, f"{peak} bytes allocated for a {size}-byte file"
