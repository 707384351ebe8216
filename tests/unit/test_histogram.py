"""ebpf.lib.histogram: printers byte-identical to bcc's, slot arithmetic, readers."""

from __future__ import annotations

import contextlib
import io
import random
import sys

import pytest

from ebpf.errors import AssemblerError
from ebpf.lib import histogram as h


def _bcc_table():  # bcc's printers, from Debian's python3-bpfcc
    sys.path.append("/usr/lib/python3/dist-packages")
    try:
        from bcc import table
    except (ImportError, OSError) as e:
        pytest.skip(f"bcc.table is not importable (python3-bpfcc/libbcc): {e}")
    finally:
        sys.path.remove("/usr/lib/python3/dist-packages")
    return table


def _bcc(fn, vals, val_type, strip):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        fn(vals, val_type, strip)
    return out.getvalue()


def _cases():
    rng = random.Random(12)
    yield [0] * 65
    yield [0, 1] + [0] * 63
    yield [0, 0, 0, 5, 17, 200, 3, 0, 1] + [0] * 56
    yield [0] * 40 + [7, 1] + [0] * 23            # wide layout (last slot > 32)
    yield [0] * 64 + [3]
    for _ in range(30):
        n = rng.choice([27, 33, 65])
        yield [rng.choice([0, 0, 1, rng.randrange(10**6), rng.randrange(10**12)])
               for _ in range(n)]


@pytest.mark.parametrize("strip", [False, True])
def test_log2_identical_to_bcc(strip: bool) -> None:
    table = _bcc_table()
    for vals in _cases():
        for val_type in ("usecs", "value", "a very long value type name"):
            want = _bcc(table._print_log2_hist, vals, val_type, strip)
            assert h.format_log2(vals, val_type, strip_leading_zero=strip) == want


@pytest.mark.parametrize("strip", [False, True])
def test_linear_identical_to_bcc(strip: bool) -> None:
    table = _bcc_table()
    for vals in _cases():
        want = _bcc(table._print_linear_hist, vals, "msecs", strip)
        assert h.format_linear(vals, "msecs", strip_leading_zero=strip) == want


def test_numpy_counts_print_the_same() -> None:
    np = pytest.importorskip("numpy")
    vals = [0, 3, 9, 0, 1]
    assert h.format_log2(np.array(vals, dtype=np.uint64)) == h.format_log2(vals)


def test_slot_ranges() -> None:
    assert h.slot_ranges(5) == [(0, 0), (0, 1), (2, 3), (4, 7), (8, 15)]


def test_bad_arguments() -> None:
    from ebpf.asm import R1, R2, R3, R10

    with pytest.raises(AssemblerError):
        h.log2_slot(R1, R1, R2)
    with pytest.raises(AssemblerError):
        h.log2_slot(R1, R2, R3, slots=66)
    with pytest.raises(AssemblerError):
        h.linear_slot(R1, R10, step=1, slots=3)
    with pytest.raises(AssemblerError):
        h.linear_slot(R1, R2, step=0, slots=3)
    with pytest.raises(AssemblerError):
        h.keyed_increment(0, R1, key_stack=-16, key_size=6, value_stack=-24)


def test_plot_or_skip(tmp_path) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib is not installed")
    fig = h.plot([0, 1, 5, 2], path=str(tmp_path / "h.png"))
    assert (tmp_path / "h.png").stat().st_size > 0
    import matplotlib.pyplot as plt

    plt.close(fig)
