"""bcc's options of the tools (issue 12): each option is checked on the kernel by running the
tool as a process, triggering what it watches and reading the output."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from tests.kernel.test_tools import rows, run_tool

pytestmark = pytest.mark.usefixtures("tracefs")


def _opens(tmp_path: Path) -> tuple[Path, Path]:
    path = tmp_path / "watched"
    path.write_text("x")
    return path, tmp_path / "missing"


def test_opensnoop_failed_only_with_errno(tmp_path: Path) -> None:
    path, missing = _opens(tmp_path)

    def trigger() -> None:
        with open(path):
            pass
        with pytest.raises(FileNotFoundError):
            open(missing)

    out, _ = run_tool("opensnoop", "-x", "-p", str(os.getpid()), trigger=trigger)
    got = rows(out)
    assert any(r["path"] == str(missing) and r["err"] == 2 and r["fd"] == -1 for r in got), out
    assert all(r["err"] != 0 for r in got) and str(path) not in {r["path"] for r in got}, out


def test_opensnoop_tid_filter(tmp_path: Path) -> None:
    """-t TID: only the opens of that thread (a second thread's open is not shown)."""
    path, _ = _opens(tmp_path)
    other = tmp_path / "other"
    other.write_text("y")

    def trigger() -> None:
        with open(path):
            pass
        t = threading.Thread(target=lambda: open(other).close())
        t.start()
        t.join()

    out, _ = run_tool("opensnoop", "-t", str(threading.get_native_id()), trigger=trigger)
    got = rows(out)
    assert str(path) in {r["path"] for r in got}, out
    assert str(other) not in {r["path"] for r in got}, out
    assert {r["tid"] for r in got} == {threading.get_native_id()}, out


def test_opensnoop_uid_filter(tmp_path: Path) -> None:
    path, _ = _opens(tmp_path)

    def trigger() -> None:
        with open(path):
            pass

    out, _ = run_tool("opensnoop", "-u", str(os.getuid()), "-p", str(os.getpid()),
                      trigger=trigger)
    assert any(r["path"] == str(path) and r["uid"] == os.getuid() for r in rows(out)), out
    out, _ = run_tool("opensnoop", "-u", "4242", "-p", str(os.getpid()), trigger=trigger)
    assert rows(out) == [], out


def test_opensnoop_flag_filter_and_extended(tmp_path: Path) -> None:
    """-f O_WRONLY keeps only the write-only open; -e prints its flags in octal."""
    path, _ = _opens(tmp_path)

    def trigger() -> None:
        os.close(os.open(path, os.O_RDONLY))
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND))

    out, _ = run_tool("opensnoop", "-f", "O_WRONLY", "-e", "-p", str(os.getpid()),
                      json_lines=False, trigger=trigger)
    lines = out.splitlines()
    assert lines[0].split() == ["PID", "COMM", "FD", "ERR", "FLAGS", "PATH"], out
    mine = [line.split() for line in lines[1:] if line.endswith(str(path))]
    assert len(mine) == 1, out
    assert int(mine[0][4], 8) & (os.O_WRONLY | os.O_APPEND) == os.O_WRONLY | os.O_APPEND, out


def test_opensnoop_name_timestamp_uid_columns_and_d(tmp_path: Path) -> None:
    """-n regex on the command, -T TIME(s), -U UID, -t's TID header, -d as the duration."""
    path, _ = _opens(tmp_path)

    def trigger() -> None:
        with open(path):
            pass

    out, _ = run_tool("opensnoop", "-T", "-U", "-n", "^pyth", "-p", str(os.getpid()),
                      json_lines=False, trigger=trigger)
    lines = out.splitlines()
    assert lines[0].split() == ["TIME(s)", "UID", "PID", "COMM", "FD", "ERR", "PATH"], out
    mine = [line.split() for line in lines[1:] if line.endswith(str(path))]
    assert mine and float(mine[0][0]) >= 0 and mine[0][1] == str(os.getuid()), out
    out, _ = run_tool("opensnoop", "-n", "^nomatch$", "-p", str(os.getpid()), trigger=trigger)
    assert rows(out) == [], out
    out, _ = run_tool("opensnoop", "-d", "1", "-t", str(threading.get_native_id()),
                      json_lines=False, trigger=trigger)
    assert out.splitlines()[0].split()[0] == "TID", out
