"""The pure helpers of bench/common.py: statistics, ratios, targets, row normalisation, tables.

No timing is asserted anywhere: the benchmarks are not part of the test suite.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_common", BENCH / "common.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_common"] = mod
    spec.loader.exec_module(mod)
    return mod


common = _load()


def test_median_odd_even_and_empty() -> None:
    assert common.median([3, 1, 2]) == 2.0
    assert common.median([4, 1, 3, 2]) == 2.5
    with pytest.raises(ValueError):
        common.median([])


def test_summarize() -> None:
    assert common.summarize([5, 1, 3]) == {"median": 3.0, "min": 1.0, "max": 5.0, "n": 3}


@pytest.mark.parametrize(
    ("unit", "hib"),
    [("ns/op", False), ("ms", False), ("M records/s", True), ("insns/s", True), ("MB/s", True)],
)
def test_higher_is_better_from_unit(unit: str, hib: bool) -> None:
    assert common.higher_is_better(unit) is hib


def test_ratio_is_a_cost_ratio_for_times_and_rates() -> None:
    assert common.ratio(110, 100) == pytest.approx(1.1)  # time: 10 % slower
    assert common.ratio(50, 100, higher_better=True) == pytest.approx(2.0)  # half the rate
    assert common.ratio(200, 100, higher_better=True) == pytest.approx(0.5)
    assert common.ratio(None, 100) is None
    assert common.ratio(100, 0) is None
    assert common.ratio(float("nan"), 1) is None


def test_row_from_samples_computes_ratios_and_target() -> None:
    r = common.row(
        "syscall", "lookup", "ns/op", [110, 100, 120],
        floors={"ctypes": [100, 100, 100], "C": "C unavailable: no gcc"},
        peers={"bcc": [220]},
        target="<= 1.15x ctypes", target_spec={"vs": "ctypes", "max_ratio": 1.15},
    )
    assert r["ours"]["median"] == 110.0
    assert r["ratio_floor"] == {"ctypes": pytest.approx(1.1)}
    assert r["ratio_peer"] == {"bcc": pytest.approx(0.5)}
    assert r["target_met"] is True
    assert r["floors"][1] == {"note": "C unavailable: no gcc", "label": "C"}
    json.dumps(r)  # rows are plain JSON


def test_target_missed_min_max_and_unjudged() -> None:
    missed = common.row("x", "a", "ns/op", [130], floors={"ctypes": [100]},
                        target="t", target_spec={"vs": "ctypes", "max_ratio": 1.15})
    assert missed["target_met"] is False
    assert common.row("x", "b", "M/s", [31], target="t", target_spec={"min": 30})["target_met"]
    assert not common.row("x", "c", "ms", [41], target="t", target_spec={"max": 40})["target_met"]
    no_floor = common.row("x", "d", "ns/op", [1], floors={"ctypes": "missing"},
                          target="t", target_spec={"vs": "ctypes", "max_ratio": 1.1})
    assert no_floor["target_met"] is None


def test_normalise_flat_foreign_row() -> None:
    raw = {"name": "btf parse", "ours": 120.0, "ours_min": 110.0, "ours_max": 150.0,
           "floor": 8.0, "floor_label": "C libbpf", "peer": None, "unit": "ms",
           "target": "<= 200 ms", "met": True, "ratio_floor": 15.0, "extra_field": 1}
    r = common.normalise(raw, "btf")
    assert r["bench"] == "btf"
    assert r["ours"] == {"median": 120.0, "min": 110.0, "max": 150.0}
    assert r["floors"][0]["label"] == "C libbpf"
    assert r["ratio_floor"] == {"C libbpf": pytest.approx(15.0)}
    assert r["target_met"] is True
    assert r["extra"] == {"extra_field": 1}


def test_normalise_seconds_suffixed_row_with_numeric_target() -> None:
    raw = {"name": "find", "median_s": 0.08, "min_s": 0.07, "max_s": 0.09, "floor_s": 0.016,
           "ratio": 5.0, "wall_median_s": 0.15, "target_s": 0.04}
    r = common.normalise(raw, "btf")
    assert r["unit"] == "ms"
    assert r["ours"]["median"] == pytest.approx(80.0)
    assert r["ours"]["min"] == pytest.approx(70.0)
    assert r["floors"][0]["median"] == pytest.approx(16.0)
    assert r["ratio_floor"] == {"floor": pytest.approx(5.0)}
    assert r["target"] == "<= 40.0 ms" and r["target_met"] is False
    assert r["extra"] == {"wall_median_s": 0.15}
    no_target = common.normalise({"name": "x", "median_s": 1.0, "target_s": None}, "btf")
    assert no_target["target"] == "" and no_target["target_met"] is None


def test_normalise_rate_row_and_peer_note() -> None:
    raw = {"name": "drain", "ours": [2.0, 3.0], "unit": "M/s", "c": 10.0,
           "peer_note": "peer unavailable: no headers"}
    r = common.normalise(raw, "ringbuf")
    assert r["higher_is_better"] is True
    assert r["ratio_floor"] == {"c": pytest.approx(4.0)}
    assert r["peers"] == [{"note": "peer unavailable: no headers", "label": "peer"}]


def test_normalise_passes_own_rows_through() -> None:
    r = common.row("a", "b", "ms", [2], floors={"C": [1]})
    again = common.normalise(json.loads(json.dumps(r)), "other")
    assert again["bench"] == "a" and again["ratio_floor"] == {"C": 2.0}


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "-"), (0, "0"), (0.012345, "0.0123"), (1.2345, "1.23"), (123.4, "123"),
     (12345.0, "12,300"), (2_500_000.0, "2,500,000")],
)
def test_fmt_num(value: float | None, text: str) -> None:
    assert common.fmt_num(value) == text


def test_fmt_ratio_and_stat() -> None:
    assert common.fmt_ratio(1.0712) == "1.07x"
    assert common.fmt_ratio(12.34) == "12.3x"
    assert common.fmt_ratio(0.0078) == "0.0078x"
    assert common.fmt_ratio(None) == "-"
    assert common.fmt_stat({"median": 2.0, "min": 1.0, "max": 3.0}) == "2.00 (1.00-3.00)"
    assert common.fmt_stat({"median": 2.0, "min": 2.0, "max": 2.0}) == "2.00"
    assert common.fmt_stat({"note": "peer unavailable: x"}) == "peer unavailable: x"


def test_markdown_table_shape_and_escaping() -> None:
    rows = [
        common.row("syscall", "a|b", "ns/op", [110], floors={"ctypes": [100], "C": [50]},
                   target="<= 1.15x", target_spec={"vs": "ctypes", "max_ratio": 1.15}),
        common.skipped("maps", "maps_bench", "bench/maps_bench.py does not exist yet"),
    ]
    md = common.markdown_table(rows)
    lines = md.strip().splitlines()
    assert lines[0].startswith("| bench | workload |")
    assert len(lines) == 4
    ncols = len(common.COLUMNS)
    for line in lines[2:]:
        assert line.replace("\\|", "").count("|") == ncols + 1
    assert "a\\|b" in lines[2]
    assert "ctypes: 100<br>C: 50" in lines[2]
    assert "ctypes: 1.10x<br>C: 2.20x" in lines[2]
    assert lines[2].endswith("| met |")
    assert "skipped: bench/maps_bench.py does not exist yet" in lines[3]


def test_render_and_write_results(tmp_path: Path) -> None:
    rows = [common.row("x", "w", "ms", [1, 2, 3], floors={"C": [1]}, target="t",
                       target_spec={"max": 1})]
    meta = {"date": "2025-01-01 00:00 UTC", "cpu": "cpu", "cores": 2, "kernel": "6.18",
            "command": "python bench/run.py"}
    md, js = common.write_results(tmp_path, rows, meta, notes=["n1"], plots=["/x/plot.png"])
    text = md.read_text()
    assert "2025-01-01" in text and "Targets: 0 met, 1 missed" in text
    assert "- n1" in text and "![plot](plot.png)" in text
    assert "\n\n| bench |" in text  # a table needs a blank line before it
    data = json.loads(js.read_text())
    assert data["rows"][0]["target_met"] is False and data["plots"] == ["plot.png"]


def test_parse_c_output_and_result_marker() -> None:
    out = common.parse_c_output("syscall 1.5\nlibbpf 2\nsyscall 1.7\ngarbage line here\nx y\n")
    assert out == {"syscall": [1.5, 1.7], "libbpf": [2.0]}
    stdout = f"noise\n{common.RESULT_MARKER}" + json.dumps([{"a": 1}]) + "\nmore noise\n"
    assert common.parse_result(stdout) == [{"a": 1}]
    with pytest.raises(ValueError):
        common.parse_result("nothing")


def test_text_table_aligns() -> None:
    rows = [common.row("x", "w", "ms", [1.0], floors={"C": [2.0]})]
    lines = common.text_table(rows).splitlines()
    assert lines[0].split()[:3] == ["bench", "workload", "unit"]
    assert set(lines[1].replace(" ", "")) == {"-"}


def test_missed_targets_are_listed_with_their_reason() -> None:
    spec = {"vs": "ctypes", "max_ratio": 1.1}
    rows = [
        common.row("testrun", "test_run repeat=1, XDP, 64 B", "ns/op", [130],
                   floors={"ctypes": [100]}, target="<= 1.1x", target_spec=spec),
        common.row("x", "unexplained", "ns/op", [130], floors={"ctypes": [100]},
                   target="<= 1.1x", target_spec=spec),
        common.row("elf", "open globals.o", "ms", [1], floors={"ctypes": [1]},
                   target="<= 1.1x", target_spec=spec),          # met: not listed
    ]
    md = common.render_markdown(rows, {})
    tail = md.split("## Missed targets, and why", 1)[1]
    assert "testrun: test_run repeat=1, XDP, 64 B (<= 1.1x): the one-shot call" in tail
    assert "x: unexplained (<= 1.1x): no analysis recorded yet" in tail
    assert "globals.o" not in tail
    assert "## Missed targets" not in common.render_markdown(rows[2:], {})
