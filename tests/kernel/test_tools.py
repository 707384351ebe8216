"""The bcc-style tools (``python -m ebpf tool NAME``) on the kernel: each runs as a separate
process, the test triggers what it watches once the tool says it is running, and checks the
tool's output for it."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.usefixtures("tracefs")


def run_tool(name: str, *opts: str, trigger: Callable[[], object], duration: float = 2.5,
             json_lines: bool = True, prefix: tuple[str, ...] = (),
             pass_fds: tuple[int, ...] = ()) -> tuple[str, str]:
    """Start the tool, wait for its 'running' line (-v, stderr), trigger, collect output."""
    cmd = [*prefix, sys.executable, "-m", "ebpf", "tool", name, "-v", "--duration",
           str(duration), *(["--json"] if json_lines else []), *opts]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            pass_fds=pass_fds)
    try:
        assert proc.stderr is not None
        seen = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            seen.append(line)
            if "running" in line:
                break
        assert seen and "running" in seen[-1], "".join(seen)
        trigger()
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, "".join(seen) + err
    return out, "".join(seen) + err


def rows(out: str) -> list[Any]:
    return [json.loads(line) for line in out.splitlines() if line.startswith(("{", "["))]


def test_execsnoop() -> None:
    out, err = run_tool("execsnoop", trigger=lambda: subprocess.run(["/bin/true"]))
    assert "tracepoint sched:sched_process_exec" in err
    assert any(r["filename"] == "/bin/true" and r["comm"] == "true" for r in rows(out)), out


def test_execsnoop_columns() -> None:
    out, _ = run_tool("execsnoop", "-T", json_lines=False,
                      trigger=lambda: subprocess.run(["/bin/true"]))
    lines = out.splitlines()
    assert lines[0].split() == ["TIME", "PCOMM", "PID", "PPID", "RET", "FILENAME"]
    assert any(line.endswith("/bin/true") for line in lines[1:]), out


def test_execsnoop_fails_shows_failed_execs() -> None:
    """-x traces execve's exit, so an exec of a missing file shows with its errno (-ENOENT)."""
    def trigger() -> None:
        with contextlib.suppress(FileNotFoundError):
            subprocess.run(["/nonexistent/ebpf-test-prog"])
        subprocess.run(["/bin/true"])

    out, err = run_tool("execsnoop", "-x", trigger=trigger)
    assert "syscalls:sys_enter_execve" in err
    got = rows(out)
    assert any(r["filename"] == "/nonexistent/ebpf-test-prog" and r["ret"] == -errno.ENOENT
               for r in got), out
    assert any(r["filename"] == "/bin/true" and r["ret"] == 0 and r["comm"] == "true"
               for r in got), out


def test_execsnoop_filters_by_parent_name_and_uid() -> None:
    """-P keeps only our children (checked against the ppid column), -n a regex on the
    command, -u a UID (ours matches; uid 4242 matches nothing we run)."""
    me = str(os.getpid())

    def trigger() -> None:
        subprocess.run(["/bin/true"])
        subprocess.run(["/bin/echo", "x"], stdout=subprocess.DEVNULL)

    out, _ = run_tool("execsnoop", "-P", me, "-n", "^tru", "-u", str(os.getuid()),
                      trigger=trigger)
    got = rows(out)
    assert got and all(r["ppid"] == os.getpid() and r["comm"].startswith("tru")
                       for r in got), out
    out, _ = run_tool("execsnoop", "-u", "4242", trigger=trigger)
    assert rows(out) == [], out


def test_execsnoop_seconds_column() -> None:
    out, _ = run_tool("execsnoop", "-t", "-U", json_lines=False,
                      trigger=lambda: subprocess.run(["/bin/true"]))
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["TIME(s)", "UID", "PCOMM"], out
    first = [line for line in lines[1:] if line.endswith("/bin/true")]
    assert first and float(first[0].split()[0]) >= 0.0, out


def test_exitsnoop() -> None:
    def trigger() -> None:
        subprocess.run(["/bin/sh", "-c", "exit 7"])

    out, _ = run_tool("exitsnoop", "-c", "sh", trigger=trigger)
    got = rows(out)
    assert any(r["exit_code"] == "7" and r["comm"] == "sh" for r in got), out
    assert all(r["ppid"] > 0 for r in got)


def test_opensnoop(tmp_path: Path) -> None:
    path = tmp_path / "watched"
    path.write_text("x")
    missing = tmp_path / "missing"

    def trigger() -> None:
        with open(path):
            pass
        with pytest.raises(FileNotFoundError):
            open(missing)

    out, err = run_tool("opensnoop", "-p", str(os.getpid()), trigger=trigger)
    assert "sys_exit_openat" in err
    got = {r["path"]: r for r in rows(out)}
    assert got[str(path)]["fd"] >= 0 and got[str(path)]["err"] == 0
    assert got[str(missing)]["fd"] == -1 and got[str(missing)]["err"] == 2
    assert {r["pid"] for r in got.values()} == {os.getpid()}


def test_bindsnoop() -> None:
    def trigger() -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))

    out, _ = run_tool("bindsnoop", "-p", str(os.getpid()), trigger=trigger)
    assert any(r["addr"] == "127.0.0.1" and r["ret"] == 0 and r["proto"] == "IPv4"
               for r in rows(out)), out


def test_tcpconnect() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        def trigger() -> None:
            with socket.create_connection(("127.0.0.1", port)):
                pass

        out, err = run_tool("tcpconnect", "-p", str(os.getpid()), trigger=trigger)
    assert "inet_sock_set_state" in err
    assert any(r["daddr"] == "127.0.0.1" and r["dport"] == port and r["pid"] == os.getpid()
               for r in rows(out)), out


def test_syscount() -> None:
    def trigger() -> None:
        for _ in range(500):
            os.getppid()

    out, _ = run_tool("syscount", "-p", str(os.getpid()), trigger=trigger)
    got = {r["syscall"]: r["count"] for r in rows(out)[-1]}
    assert got.get("getppid", got.get("110", 0)) >= 500, got


def test_runqlat() -> None:
    def trigger() -> None:
        for _ in range(50):
            time.sleep(0.001)

    out, err = run_tool("runqlat", trigger=trigger, duration=1.5, json_lines=False)
    assert "sched:sched_switch" in err
    assert "usecs" in out and "distribution" in out
    counts = [int(line.split(":")[1].split("|")[0]) for line in out.splitlines()
              if "->" in line]
    assert sum(counts) > 0, out


def test_pktcount_on_veth(veth_pair: Any) -> None:
    from ebpf.testing.netns import udp_send

    a, b = veth_pair.a, veth_pair.b

    def trigger() -> None:
        for _ in range(20):
            b.run(udp_send, a.ip, 9999, b"y" * 58)
        time.sleep(0.2)

    out, err = run_tool("pktcount", "-i", a.ifname, "--interval", "10", trigger=trigger,
                        prefix=("nsenter", f"--net=/proc/{os.getpid()}/fd/{a.ns.fd}"),
                        pass_fds=(a.ns.fd,))
    assert f"XDP on {a.ifname}" in err
    udp = [r for r in rows(out)[-1]["counts"] if r["proto"] == "udp"]
    assert udp and udp[0]["packets"] >= 20, out
    assert udp[0]["bytes"] >= 20 * (14 + 20 + 8 + 58)


def test_unknown_tool() -> None:
    r = subprocess.run([sys.executable, "-m", "ebpf", "tool", "nosuch"], capture_output=True,
                       text=True)
    assert r.returncode == 2 and "unknown tool" in r.stderr


def test_unsupported_option_is_a_usage_error() -> None:
    r = subprocess.run([sys.executable, "-m", "ebpf", "tool", "pktcount", "-i", "lo", "-p", "1"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "-p is not supported by pktcount" in r.stderr


@pytest.fixture
def loop_device(tmp_path: Any) -> Any:
    """A 16 MiB loop device over a file (detached at the end, even on failure)."""
    backing = tmp_path / "disk.img"
    with open(backing, "wb") as f:
        f.truncate(16 << 20)
    r = subprocess.run(["losetup", "--find", "--show", str(backing)], capture_output=True,
                       text=True)
    if r.returncode != 0:
        pytest.skip(f"no loop device: {r.stderr.strip()}")
    dev = r.stdout.strip()
    try:
        yield dev
    finally:
        subprocess.run(["losetup", "-d", dev], check=False)


def direct_io(dev: str, n: int, write: bool = False) -> None:
    """``n`` 4 KiB O_DIRECT reads (or writes) of distinct blocks of ``dev``: each one is a
    request to the block layer (no page cache)."""
    import mmap

    buf = mmap.mmap(-1, 4096)               # page-aligned, as O_DIRECT needs
    fd = os.open(dev, (os.O_RDWR if write else os.O_RDONLY) | os.O_DIRECT)
    try:
        for i in range(n):
            (os.pwritev if write else os.preadv)(fd, [buf], i * 4096)
    finally:
        os.close(fd)
        buf.close()


def test_biolatency_on_loop_device(loop_device: str) -> None:
    name = os.path.basename(loop_device)

    def trigger() -> None:
        direct_io(loop_device, 200)
        direct_io(loop_device, 50, write=True)

    out, err = run_tool("biolatency", "-d", name, "-D", "-e", trigger=trigger)
    assert "tracepoint block:block_rq_issue" in err and "block:block_rq_complete" in err
    got = rows(out)
    assert [r["disk"] for r in got] == [name], out
    assert got[0]["unit"] == "usecs" and len(got[0]["counts"]) == 65
    # at least 200 of ~256: a merged or in-flight request may be missed
    assert sum(got[0]["counts"]) == got[0]["count"] >= 200, out
    assert got[0]["total"] > 0


def test_biolatency_text_flags_and_queued(loop_device: str) -> None:
    name = os.path.basename(loop_device)

    def trigger() -> None:
        direct_io(loop_device, 100, write=True)
        direct_io(loop_device, 100)

    out, _ = run_tool("biolatency", "-d", name, "-F", "-Q", "-m", trigger=trigger,
                      json_lines=False)
    assert out.startswith("Tracing block device I/O... Hit Ctrl-C to end.\n"), out
    sections = {line.split(" = ")[1] for line in out.splitlines() if line.startswith("flags = ")}
    assert any(f.startswith("R") for f in sections) and any(f.startswith("W") for f in sections)
    assert "msecs" in out and "distribution" in out
    counts = [int(line.split(":")[1].split("|")[0]) for line in out.splitlines() if "->" in line]
    assert sum(counts) >= 200, out
