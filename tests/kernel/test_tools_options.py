"""bcc's options of the tools (issue 12): each option is checked on the kernel by running the
tool as a process, triggering what it watches and reading the output."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.kernel.test_tools import rows, run_tool

pytestmark = pytest.mark.usefixtures("tracefs")

#: Timing bounds stretch in tools.vmtest's TCG guest (about ten times slower).
SLOWDOWN = 10.0 if os.environ.get("EBPF_VMTEST_GUEST") else 1.0


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


@contextlib.contextmanager
def _listener(family: int = socket.AF_INET) -> Iterator[tuple[str, int]]:
    host = "127.0.0.1" if family == socket.AF_INET else "::1"
    with socket.socket(family) as s:
        try:
            s.bind((host, 0))
        except OSError as e:
            name = errno.errorcode.get(e.errno or 0, str(e.errno))
            pytest.skip(f"{name} binding {host}: {os.uname().release}")
        s.listen()
        yield host, s.getsockname()[1]


def _connect(host: str, port: int) -> None:
    with socket.create_connection((host, port)):
        pass


def test_tcpconnect_port_list_and_family() -> None:
    """-P a,b keeps the listed ports only; -4 drops the IPv6 connect, -6 the IPv4 one."""
    with _listener() as (h4, p4), _listener() as (_, other), \
            _listener(socket.AF_INET6) as (h6, p6):
        def trigger() -> None:
            _connect(h4, p4)
            _connect(h4, other)
            _connect(h6, p6)

        me = str(os.getpid())
        out, _ = run_tool("tcpconnect", "-p", me, "-P", f"{p4},{p6}", trigger=trigger)
        assert sorted(r["dport"] for r in rows(out)) == sorted([p4, p6]), out
        out, _ = run_tool("tcpconnect", "-p", me, "-4", trigger=trigger)
        assert {r["ip"] for r in rows(out)} == {4} and len(rows(out)) == 2, out
        out, _ = run_tool("tcpconnect", "-p", me, "-6", trigger=trigger)
        got = rows(out)
        assert [(r["ip"], r["daddr"], r["dport"]) for r in got] == [(6, "::1", p6)], out


def test_tcpconnect_uid_and_columns() -> None:
    with _listener() as (host, port):
        def trigger() -> None:
            _connect(host, port)

        out, _ = run_tool("tcpconnect", "-t", "-U", "-u", str(os.getuid()),
                          json_lines=False, trigger=trigger)
        assert out.startswith("Tracing connect ... Hit Ctrl-C to end\n"), out
        lines = out.splitlines()[1:]
        assert lines[0].split() == ["TIME(s)", "UID", "PID", "COMM", "IP", "SADDR", "DADDR",
                                    "DPORT"], out
        mine = [ln.split() for ln in lines[1:] if ln.split()[-1] == str(port)]
        assert mine and float(mine[0][0]) >= 0 and mine[0][1] == str(os.getuid()), out
        out, _ = run_tool("tcpconnect", "-u", "4242", trigger=trigger)
        assert rows(out) == [], out


def test_tcpconnect_comm_column_is_bccs_12() -> None:
    """The COMM column is bcc's ``%-12.12s``; JSON keeps the whole thread name."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)

    def named_connect(host: str, port: int) -> None:
        libc.prctl(15, b"tcpconnect-long", 0, 0, 0)       # PR_SET_NAME, this thread only
        _connect(host, port)

    with _listener() as (host, port):
        def trigger() -> None:
            t = threading.Thread(target=named_connect, args=(host, port))
            t.start()
            t.join()

        me = str(os.getpid())
        out, _ = run_tool("tcpconnect", "-p", me, json_lines=False, trigger=trigger)
        mine = [ln.split() for ln in out.splitlines()[2:] if ln.split()[-1] == str(port)]
        assert [m[1] for m in mine] == ["tcpconnect-l"], out
        got = rows(run_tool("tcpconnect", "-p", me, trigger=trigger)[0])
        assert [r["comm"] for r in got if r["dport"] == port] == ["tcpconnect-long"], got


def _connect_from(host: str, port: int, ports: list[int]) -> None:
    """Connect and note the local port the kernel chose."""
    with socket.create_connection((host, port)) as s:
        ports.append(s.getsockname()[1])


def test_tcpconnect_lport_and_sport() -> None:
    """-L: the LPORT column is the port the kernel chose for the connect (known only after
    SYN_SENT, so the row is sent when the socket leaves it), v4 and v6; -s: a SPORT column
    after DADDR (libbpf-tools' layout) with the same port."""
    with _listener() as (h4, p4), _listener(socket.AF_INET6) as (h6, p6):
        local: list[int] = []

        def trigger() -> None:
            _connect_from(h4, p4, local)
            _connect_from(h6, p6, local)

        me = str(os.getpid())
        got = rows(run_tool("tcpconnect", "-L", "-p", me, trigger=trigger)[0])
        assert sorted((r["ip"], r["lport"], r["dport"]) for r in got) == \
            sorted([(4, local[0], p4), (6, local[1], p6)]), (got, local)
        assert {r["comm"] for r in got} == {Path("/proc/self/comm").read_text().strip()}, got
        local.clear()
        out, _ = run_tool("tcpconnect", "-L", "-p", me, json_lines=False, trigger=trigger)
        lines = out.splitlines()[1:]
        assert lines[0].split() == ["PID", "COMM", "IP", "SADDR", "LPORT", "DADDR", "DPORT"], out
        assert sorted(ln.split()[4] for ln in lines[1:]) == sorted(map(str, local)), out
        local.clear()
        out, _ = run_tool("tcpconnect", "-s", "-4", "-p", me, json_lines=False,
                          trigger=trigger)
        lines = out.splitlines()[1:]
        assert lines[0].split() == ["PID", "COMM", "IP", "SADDR", "DADDR", "SPORT", "DPORT"], out
        assert [ln.split()[-2:] for ln in lines[1:]] == [[str(local[0]), str(p4)]], out


def test_tcpconnect_count() -> None:
    """-c counts connects per (source, destination, port) in the kernel and prints bcc's
    table at the end, most first; -P still selects ports; -c -s counts per source port."""
    with _listener() as (h4, p4), _listener() as (_, other), \
            _listener(socket.AF_INET6) as (h6, p6):
        local: list[int] = []

        def trigger() -> None:
            for _ in range(3):
                _connect_from(h4, p4, local)
            _connect_from(h4, other, local)
            _connect_from(h6, p6, local)

        me = str(os.getpid())
        got = rows(run_tool("tcpconnect", "-c", "-p", me, trigger=trigger)[0])[-1]
        assert sorted((r["raddr"], r["rport"], r["connects"]) for r in got) == \
            sorted([("127.0.0.1", p4, 3), ("127.0.0.1", other, 1), ("::1", p6, 1)]), got
        assert got[0]["rport"] == p4 and all(r["laddr"] in ("127.0.0.1", "::1") for r in got)
        out, _ = run_tool("tcpconnect", "-c", "-p", me, "-P", str(other), json_lines=False,
                          trigger=trigger)
        lines = [ln for ln in out.splitlines() if ln]
        assert lines[0].startswith("Tracing connect"), out
        assert lines[1].split() == ["LADDR", "RADDR", "RPORT", "CONNECTS"], out
        assert [ln.split() for ln in lines[2:]] == [["127.0.0.1", "127.0.0.1", str(other),
                                                     "1"]], out
        local.clear()
        got = rows(run_tool("tcpconnect", "-c", "-s", "-p", me, trigger=trigger)[0])[-1]
        assert sorted(r["lport"] for r in got) == sorted(local), (got, local)
        assert all(r["connects"] == 1 for r in got), got
    r = subprocess.run([sys.executable, "-m", "ebpf", "tool", "tcpconnect", "-c", "-L"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "-c prints counts" in r.stderr, r.stderr


def _dns_response(name: str, rtype: int, rdata: bytes) -> bytes:
    """A DNS response: one question, one answer (its name a pointer to the question's)."""
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    question = labels + b"\0" + struct.pack("!HH", rtype, 1)
    answer = struct.pack("!HHHIH", 0xC00C, rtype, 1, 60, len(rdata)) + rdata
    return struct.pack("!HHHHHH", 0x1234, 0x8180, 1, 1, 0, 0) + question + answer


@contextlib.contextmanager
def _udp(family: int, addr: tuple[str, int]) -> Iterator[socket.socket]:
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        try:
            s.bind(addr)
        except OSError as e:
            pytest.skip(f"{errno.errorcode.get(e.errno or 0, str(e.errno))} binding UDP {addr}")
        yield s


def test_tcpconnect_dns() -> None:
    """-d (bcc's --dns): a DNS answer received over loopback (A over IPv4, AAAA over IPv6,
    from port 53) names the connect's destination in the QUERY column, with the time since
    the answer when over 100 ms; 127.0.0.1 without an answer is 'localhost', another
    address 'No DNS Query'."""
    with _udp(socket.AF_INET, ("127.0.0.3", 53)) as dns4, \
            _udp(socket.AF_INET6, ("::1", 53)) as dns6, \
            _udp(socket.AF_INET, ("127.0.0.1", 0)) as client4, \
            _udp(socket.AF_INET6, ("::1", 0)) as client6, \
            _listener() as (h4, p4):
        named = socket.socket()
        unnamed = socket.socket()
        with named, unnamed, _listener(socket.AF_INET6) as (h6, p6):
            for s, host in ((named, "127.0.0.2"), (unnamed, "127.0.0.4")):
                s.bind((host, 0))
                s.listen()

            def trigger() -> None:
                dns4.sendto(_dns_response("a.ebpf-test.example", 1,
                                          socket.inet_aton("127.0.0.2")),
                            client4.getsockname())
                dns6.sendto(_dns_response("v6.ebpf-test.example", 28,
                                          socket.inet_pton(socket.AF_INET6, "::1")),
                            client6.getsockname())
                client4.recv(600)
                client6.recv(600)
                _connect(*named.getsockname())
                _connect(h6, p6)
                _connect(h4, p4)
                _connect(*unnamed.getsockname())
                time.sleep(0.15)
                _connect(*named.getsockname())

            me = str(os.getpid())
            out, err = run_tool("tcpconnect", "-d", "-p", me, trigger=trigger)
            assert "net:netif_receive_skb" in err, err
            got = [(r["daddr"], r["query"]) for r in rows(out)]
            # a slow machine (the TCG guest) may take over 100 ms to the first connects
            assert [(a, re.sub(r" \(\d+\.\d{3}ms\)$", "", q)) for a, q in got[:4]] == [
                ("127.0.0.2", "a.ebpf-test.example"),
                ("::1", "v6.ebpf-test.example"), ("127.0.0.1", "localhost"),
                ("127.0.0.4", "No DNS Query")], out
            assert re.fullmatch(r"a\.ebpf-test\.example \(\d+\.\d{3}ms\)", got[4][1]), out
            out, _ = run_tool("tcpconnect", "-d", "-p", me, json_lines=False,
                              trigger=trigger)
            lines = out.splitlines()
            assert lines[1].split() == ["PID", "COMM", "IP", "SADDR", "DADDR", "DPORT",
                                        "QUERY"], out
            assert lines[2].split()[6] == "a.ebpf-test.example", out
    r = subprocess.run([sys.executable, "-m", "ebpf", "tool", "tcpconnect", "-c", "-d"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "-d/--dns with -c/--count" in r.stderr, r.stderr


def test_tcpconnect_dns_decoder() -> None:
    """The -d decoder takes A/AAAA answers only, and refuses queries, truncated messages
    and pointer loops without raising."""
    from ebpf.tools import _dns

    def record(msg: bytes) -> bytes:
        udp = struct.pack("!HHHH", 53, 4242, 8 + len(msg), 0) + msg
        return _dns.HEAD.pack(7, len(udp)) + udp.ljust(_dns.COPY, b"\0")

    ok = _dns_response("x.example", 1, socket.inet_aton("10.1.2.3"))
    assert _dns.answers(record(ok)) == (7, "x.example", ["10.1.2.3"])
    cname = bytearray(_dns_response("x.example", 5, b"\xc0\x0c"))
    cname[7] = 2                                             # two answers: CNAME, then A
    cname += struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton("10.9.9.9")
    assert _dns.answers(record(bytes(cname))) == (7, "x.example", ["10.9.9.9"])
    query = bytearray(ok)
    query[2] &= 0x7F                                         # QR = 0
    loop = bytearray(ok[:12]) + b"\xc0\x0c"                  # the question points at itself
    for bad in (bytes(query), ok[:20], bytes(loop), b""):
        assert _dns.answers(record(bad)) is None, bad
    cache = _dns.Cache()
    cache.add(record(ok))
    assert cache.query("10.1.2.3", 7 + 50_000_000) == "x.example"
    assert cache.query("10.1.2.3", 7 + 250_000_000) == "x.example (250.000ms)"
    assert cache.query("10.1.2.3", 7 + 2 * _dns.TTL_NS) == "No DNS Query"


def _failing_syscalls() -> None:
    for _ in range(200):
        os.getppid()                                 # never fails
        with contextlib.suppress(FileNotFoundError):
            os.stat("/nonexistent/ebpf-syscount")    # ENOENT
        with contextlib.suppress(OSError):
            os.close(987654)                         # EBADF


def _counts(out: str) -> dict[str, int]:
    return {r["syscall"]: r["count"] for r in rows(out)[-1]}


def test_syscount_failures_and_errno() -> None:
    """-x counts only failed calls (no getppid, the ENOENTs and EBADFs); -e ENOENT only
    those that failed with ENOENT."""
    me = str(os.getpid())
    got = _counts(run_tool("syscount", "-p", me, "-x", "-d", "2", trigger=_failing_syscalls)[0])
    assert "getppid" not in got and got.get("close", 0) >= 200, got
    assert sum(v for k, v in got.items() if k in ("newfstatat", "stat", "statx")) >= 200, got
    got = _counts(run_tool("syscount", "-p", me, "-e", "ENOENT", trigger=_failing_syscalls)[0])
    assert "getppid" not in got and "close" not in got, got
    assert sum(v for k, v in got.items() if k in ("newfstatat", "stat", "statx")) >= 200, got


def test_syscount_top_and_list() -> None:
    out, _ = run_tool("syscount", "-p", str(os.getpid()), "-T", "2", trigger=_failing_syscalls)
    assert len(rows(out)[-1]) <= 2, out
    r = subprocess.run([sys.executable, "-m", "ebpf", "tool", "syscount", "-l"],
                       capture_output=True, text=True, check=True)
    names = {line.split()[1] for line in r.stdout.splitlines()}
    assert {"getppid", "openat", "close"} <= names, r.stdout[:200]


def test_syscount_latency() -> None:
    """-L: nanosleep's total time is at least the 20 x 5 ms slept (us, or ms with -m)."""
    def trigger() -> None:
        for _ in range(20):
            time.sleep(0.005)

    me = str(os.getpid())
    got = {r["syscall"]: r for r in rows(run_tool("syscount", "-p", me, "-L",
                                                  trigger=trigger)[0])[-1]}
    sleep = got.get("clock_nanosleep") or got["nanosleep"]
    assert sleep["count"] >= 20 and sleep["time_us"] >= 100_000, got
    out, _ = run_tool("syscount", "-p", me, "-L", "-m", json_lines=False, trigger=trigger)
    assert "TIME (ms)" in out.splitlines()[1], out
    line = [ln.split() for ln in out.splitlines() if "nanosleep" in ln]
    assert line and float(line[0][2]) >= 100, out


def test_runqlat_interval_count_and_timestamp() -> None:
    """``-T 0.5 2``: two reports half a second apart, each under an HH:MM:SS line, then the
    tool ends by itself (before --duration)."""
    def trigger() -> None:
        for _ in range(100):
            time.sleep(0.001)

    t0 = time.monotonic()
    out, _ = run_tool("runqlat", "-T", "0.5", "2", duration=30 * SLOWDOWN, json_lines=False,
                      trigger=trigger)
    assert time.monotonic() - t0 < 15 * SLOWDOWN, out      # well before --duration
    lines = out.splitlines()
    stamps = [ln for ln in lines if len(ln) == 8 and ln.count(":") == 2]
    assert len(stamps) == 2 and sum("distribution" in ln for ln in lines) == 2, out


def _sleepy_thread() -> threading.Thread:
    def sleeps() -> None:
        for _ in range(50):
            time.sleep(0.001)

    return threading.Thread(target=sleeps)


def test_runqlat_per_tid() -> None:
    """-L: one histogram per thread; -p is the process (tgid, as bcc's), so both of our
    sleeping threads have one, and no thread of another process does."""
    helper = _sleepy_thread()
    tids: dict[str, int] = {}

    def trigger() -> None:
        helper.start()
        tids["helper"] = helper.native_id or 0
        for _ in range(50):
            time.sleep(0.001)
        helper.join()

    out, _ = run_tool("runqlat", "-L", "-p", str(os.getpid()), duration=1.5 * SLOWDOWN,
                      trigger=trigger)
    got = rows(out)[-1]["tids"]
    mine = {str(threading.get_native_id()), str(tids["helper"])}
    assert mine <= set(got), out
    assert all(Path(f"/proc/self/task/{t}").exists() or t == str(tids["helper"])
               for t in got), out
    assert all(sum(got[t]) > 0 for t in mine), out


def test_runqlat_per_process() -> None:
    """-P: one histogram per process (tgid): ours (two sleeping threads counted under our
    pid, the helper thread's id is no key) and a sleeping child's."""
    helper = _sleepy_thread()
    seen: dict[str, int] = {}

    def trigger() -> None:
        child = subprocess.Popen([sys.executable, "-c",
                                  "import time\nfor _ in range(50): time.sleep(0.002)"])
        helper.start()
        seen["helper"], seen["child"] = helper.native_id or 0, child.pid
        helper.join()
        child.wait()

    out, _ = run_tool("runqlat", "-P", duration=2 * SLOWDOWN, trigger=trigger)
    got = rows(out)[-1]["pids"]
    assert str(os.getpid()) in got and str(seen["child"]) in got, sorted(got)
    assert str(seen["helper"]) not in got, sorted(got)
    assert sum(got[str(seen["child"])]) >= 10, got[str(seen["child"])]
    out, _ = run_tool("runqlat", "-P", "-m", duration=1 * SLOWDOWN, json_lines=False,
                      trigger=lambda: time.sleep(0.1))
    heads = [ln for ln in out.splitlines() if ln.startswith("pid = ")]
    assert heads and heads == sorted(heads, key=lambda h: int(h.split()[-1])), out
    assert "msecs" in out, out


def test_runqlat_pid_filter_is_the_process() -> None:
    """-p PID without -L/-P: a process whose only sleeping thread is not its main thread
    still has its wake-ups counted (bcc filters on the tgid)."""
    code = ("import threading, time\n"
            "def f():\n    for _ in range(100): time.sleep(0.002)\n"
            "t = threading.Thread(target=f); t.start(); t.join()\n")
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()\n" + code],
                             stdin=subprocess.PIPE)
    try:
        def trigger() -> None:
            assert child.stdin is not None
            child.stdin.close()
            child.wait()

        out, _ = run_tool("runqlat", "-p", str(child.pid), duration=2 * SLOWDOWN,
                          trigger=trigger)
        assert sum(rows(out)[-1]["counts"]) >= 50, out
        out, _ = run_tool("runqlat", "-p", "999999999", duration=1 * SLOWDOWN,
                          trigger=lambda: time.sleep(0.1))
        assert sum(rows(out)[-1]["counts"]) == 0, out
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()


def _pidns_inum(link: str) -> str:
    return link.removeprefix("pid:[").removesuffix("]")


def test_runqlat_per_pid_namespace() -> None:
    """--pidnss: a histogram per PID namespace, keyed by its inode number; a child in a new
    PID namespace (unshare -p -f) that sleeps has one, apart from ours."""
    inner: dict[str, str] = {}
    script = ("readlink /proc/self/ns/pid; exec " + sys.executable +
              " -c 'import time\nfor _ in range(100): time.sleep(0.002)'")

    def trigger() -> None:
        r = subprocess.run(["unshare", "--pid", "--fork", "sh", "-c", script],
                           capture_output=True, text=True)
        inner["out"], inner["err"] = r.stdout.strip(), r.stderr

    out, _ = run_tool("runqlat", "--pidnss", duration=2 * SLOWDOWN, trigger=trigger)
    assert inner["out"].startswith("pid:["), inner
    got = rows(out)[-1]["pidnss"]
    ours, theirs = _pidns_inum(os.readlink("/proc/self/ns/pid")), _pidns_inum(inner["out"])
    assert ours != theirs and {ours, theirs} <= set(got), (sorted(got), ours, theirs)
    assert sum(got[theirs]) >= 50, got[theirs]


_ON_CUE = """\
import os, socket, sys
print(os.readlink("/proc/self/ns/mnt"), flush=True)
sys.stdin.readline()
what, arg = sys.argv[1], sys.argv[2]
if what == "connect":
    socket.create_connection(("127.0.0.1", int(arg))).close()
elif what == "open":
    open(arg).close()
elif what == "bind":
    with socket.socket() as s:
        s.bind(("127.0.0.1", int(arg)))
else:
    os.execv(arg, [arg])
"""


def _act(what: str, arg: str) -> None:
    """What the cued child does, done by the test process (in its own cgroup and mount
    namespace, so the tool must leave it out)."""
    if what == "connect":
        _connect("127.0.0.1", int(arg))
    elif what == "open":
        open(arg).close()
    elif what == "bind":
        with socket.socket() as s:
            s.bind(("127.0.0.1", int(arg)))
    else:
        subprocess.run([arg], check=True)


@contextlib.contextmanager
def _cued_child(what: str, arg: str, prefix: tuple[str, ...] = ()
                ) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A child that prints its mount namespace, then does ``what`` once told to (a line)."""
    child = subprocess.Popen([*prefix, sys.executable, "-c", _ON_CUE, what, arg],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        yield child, child.stdout.readline().strip()
    finally:
        if child.poll() is None:
            child.kill()
        child.communicate()


def _pinned_set(path: str, key: int) -> Any:
    from ebpf import Map, MapType

    m = Map.create(MapType.HASH, key_size=8, value_size=8, max_entries=16)
    m[key.to_bytes(8, sys.byteorder)] = (1).to_bytes(8, sys.byteorder)
    m.pin(path)
    return m


#: test id: (the tool's extra options, what the child does); the tool is the first word
_CONTAINER_TOOLS: dict[str, tuple[tuple[str, ...], str]] = {
    "tcpconnect": ((), "connect"),
    "opensnoop": ((), "open"),
    "bindsnoop": ((), "bind"),
    "execsnoop": ((), "exec"),
    "execsnoop -x": (("-x",), "exec"),
}


@contextlib.contextmanager
def _action(what: str, tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """The argument of ``what`` and a predicate on the tool's rows that picks it out."""
    if what == "connect":
        with _listener() as (_, port):
            yield str(port), lambda r: r.get("dport") == port
    elif what == "open":
        path = tmp_path / "watched"
        path.write_text("x")
        yield str(path), lambda r: r.get("path") == str(path)
    elif what == "bind":
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        yield str(port), lambda r: r.get("port") == port
    else:
        yield "/bin/true", lambda r: r.get("filename") == "/bin/true"


def _seen(tool: str, opts: tuple[str, ...], child: subprocess.Popen[str], what: str,
          arg: str, mine: Any) -> list[int]:
    def trigger() -> None:
        _act(what, arg)                               # ours: filtered out
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
        child.wait(10)

    out, _ = run_tool(tool.partition(" ")[0], *_CONTAINER_TOOLS[tool][0], *opts, trigger=trigger)
    return [r["pid"] for r in rows(out) if mine(r)]


@pytest.mark.parametrize("tool", sorted(_CONTAINER_TOOLS))
def test_cgroupmap(tool: str, bpffs: str, cgroup: str, tmp_path: Path) -> None:
    """--cgroupmap (bcc's): only tasks of the cgroups whose id is a key of the pinned map
    (a child moved into a fresh cgroup is shown, the test process is not)."""
    what = _CONTAINER_TOOLS[tool][1]
    with _action(what, tmp_path) as (arg, mine), _cued_child(what, arg) as (child, _):
        Path(cgroup, "cgroup.procs").write_text(str(child.pid))
        with _pinned_set(f"{bpffs}/cgroupset", os.stat(cgroup).st_ino):
            assert _seen(tool, ("--cgroupmap", f"{bpffs}/cgroupset"), child, what, arg,
                         mine) == [child.pid]


@pytest.mark.parametrize("tool", sorted(_CONTAINER_TOOLS))
def test_mntnsmap(tool: str, bpffs: str, tmp_path: Path) -> None:
    """--mntnsmap (bcc's): only tasks of the mount namespaces in the pinned map (a child in
    its own mount namespace, from unshare -m, is shown, the test process is not)."""
    what = _CONTAINER_TOOLS[tool][1]
    with _action(what, tmp_path) as (arg, mine), \
            _cued_child(what, arg, ("unshare", "-m")) as (child, link):
        assert link != os.readlink("/proc/self/ns/mnt"), link
        inum = int(link.removeprefix("mnt:[").removesuffix("]"))
        with _pinned_set(f"{bpffs}/mntns", inum):
            assert _seen(tool, ("--mntnsmap", f"{bpffs}/mntns"), child, what, arg,
                         mine) == [child.pid]


def test_container_maps_refused(bpffs: str) -> None:
    """A pinned map whose keys are not u64, or no pin at all, is a usage error."""
    from ebpf import Map, MapType

    with Map.create(MapType.HASH, key_size=4, value_size=4, max_entries=4) as m:
        m.pin(f"{bpffs}/small")
        r = subprocess.run([sys.executable, "-m", "ebpf", "tool", "opensnoop", "--mntnsmap",
                            f"{bpffs}/small"], capture_output=True, text=True)
    assert r.returncode == 2 and "keys are 4 bytes" in r.stderr, r.stderr
    r = subprocess.run([sys.executable, "-m", "ebpf", "tool", "tcpconnect", "--cgroupmap",
                        f"{bpffs}/missing"], capture_output=True, text=True)
    assert r.returncode == 2 and "No such file or directory" in r.stderr, r.stderr
