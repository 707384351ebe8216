"""Tool overhead: how many events per second each tool sustains under a load generator, and
what it costs the load, side by side with bcc's tool of the same name when Debian's
bpfcc-tools is installed (``/usr/sbin/NAME-bpfcc``).

    python bench/tools_bench.py [--seconds 3] [--tools execsnoop,syscount,...]

For each tool: the generator alone (ops/s), then with our tool running (ops/s, events the tool
reported per second), then with bcc's (same columns, or why it could not run: the bcc tools
that need kprobes fail on a kernel without them). Events are output rows for the snoop tools
and the sum of the histogram (or of the counts) for the summarising ones; each tool is stopped
with SIGINT, as Ctrl-C, so that it prints its last report. Tools trace system-wide (the
generator's pid is not known up front), so a few background events are included.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

FORK = ("while time.monotonic() < end:\n"
        "    pid = os.fork()\n    if pid == 0:\n        os._exit(0)\n"
        "    os.waitpid(pid, 0); n += 1")
PINGPONG = ("r1, w1 = os.pipe(); r2, w2 = os.pipe()\npid = os.fork()\nif pid == 0:\n"
            "    while os.read(r1, 1) == b'x':\n        os.write(w2, b'x')\n    os._exit(0)\n"
            "while time.monotonic() < end:\n    os.write(w1, b'x'); os.read(r2, 1); n += 1\n"
            "os.write(w1, b'q'); os.waitpid(pid, 0)")
CONNECT = ("l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(128)\n"
           "a = l.getsockname()\n"
           "while time.monotonic() < end:\n"
           "    c = socket.create_connection(a)\n"
           "    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))\n"
           "    s, _ = l.accept(); c.close(); s.close(); n += 1")
DIRECT_IO = ("import mmap\nbuf = mmap.mmap(-1, 4096)\n"
             "fd = os.open(DEV, os.O_RDONLY | os.O_DIRECT)\n"
             "while time.monotonic() < end:\n"
             "    os.preadv(fd, [buf], (n % 4096) * 4096); n += 1")

#: tool: (generator code, our extra options, bcc's options, how events are counted)
TOOLS: dict[str, tuple[str, list[str], list[str], str]] = {
    "execsnoop": ("while time.monotonic() < end:\n    subprocess.run(['/bin/true']); n += 1",
                  [], [], "rows"),
    "exitsnoop": (FORK, [], [], "rows"),
    "opensnoop": ("while time.monotonic() < end:\n    os.close(os.open('/dev/null', 0)); n += 1",
                  [], [], "rows"),
    "bindsnoop": ("while time.monotonic() < end:\n"
                  "    s = socket.socket(); s.bind(('127.0.0.1', 0)); s.close(); n += 1",
                  [], [], "rows"),
    "tcpconnect": (CONNECT, [], [], "rows"),
    "syscount": ("while time.monotonic() < end:\n    os.getppid(); n += 1", ["--json"], [],
                 "counts"),
    "runqlat": (PINGPONG, [], [], "hist"),
    "biolatency": (DIRECT_IO, [], [], "hist"),
}


@contextlib.contextmanager
def loop_device() -> Iterator[str]:
    """A 16 MiB loop device over a file in /var/tmp (for biolatency's O_DIRECT reads)."""
    backing = f"/var/tmp/tools_bench.{os.getpid()}.img"
    with open(backing, "wb") as f:
        f.truncate(16 << 20)
    try:
        dev = subprocess.run(["losetup", "--find", "--show", backing], check=True,
                             capture_output=True, text=True).stdout.strip()
        try:
            yield dev
        finally:
            subprocess.run(["losetup", "-d", dev], check=False)
    finally:
        os.unlink(backing)


def generator(code: str, seconds: float, dev: str) -> subprocess.Popen[str]:
    prog = (f"import os, socket, struct, subprocess, time\nDEV = {dev!r}\nn = 0\n"
            f"end = time.monotonic() + {seconds}\n{code}\nprint(n)")
    return subprocess.Popen([sys.executable, "-c", prog], stdout=subprocess.PIPE, text=True)


def count_events(lines: list[str], how: str) -> int:
    """Events in a tool's output: rows (not headers), histogram counts, or syscount counts."""
    if how == "hist":
        return sum(int(m[1]) for line in lines
                   if (m := re.match(r"\s*\d+ -> \d+\s*: (\d+)", line)))
    if how == "counts":
        for line in reversed(lines):
            if line.startswith("["):
                with contextlib.suppress(ValueError):
                    return sum(r["count"] for r in json.loads(line))
        # bcc's syscount: "SYSCALL  COUNT" rows
        return sum(int(m[1]) for line in lines if (m := re.match(r"\S+\s+(\d+)$", line)))
    header = re.compile(r"^(TIME|PCOMM|PID|Tracing|\[ebpf\])|^\s*$")
    return sum(1 for line in lines if not header.match(line))


def measure(tool_cmd: list[str] | None, code: str, how: str, seconds: float, dev: str
            ) -> dict[str, Any]:
    lines: list[str] = []
    tool = None
    drain: threading.Thread | None = None
    if tool_cmd is not None:
        tool = subprocess.Popen(tool_cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")},
                                # a background shell ignores SIGINT: the tool must not
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # noqa: PLW1509
        time.sleep(4.0)        # let it load and attach (bcc compiles C first)
        if tool.poll() is not None:
            err = (tool.stderr.read() if tool.stderr else "").strip().splitlines()
            return {"error": (err[-1] if err else f"exited {tool.returncode}")[:100]}
        drain = threading.Thread(target=lambda: lines.extend(tool.stdout or ()), daemon=True)
        drain.start()
    start_lines = len(lines)
    g = generator(code, seconds, dev)
    out, _ = g.communicate()
    if tool is not None and drain is not None:
        tool.send_signal(signal.SIGINT)   # Ctrl-C: the last report is printed
        try:
            tool.wait(15)
        except subprocess.TimeoutExpired:
            tool.kill()
            tool.wait()
        drain.join(5)
    got = count_events(lines if how != "rows" else lines[start_lines:], how)
    return {"ops_per_s": int(out) / seconds, "events_per_s": got / seconds}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--tools", default=",".join(TOOLS), help="comma-separated tool names")
    args = ap.parse_args()
    print(f"{'tool':<11} {'alone ops/s':>11} {'ebpf ops/s':>10} {'ebpf ev/s':>10} "
          f"{'bcc ops/s':>10} {'bcc ev/s':>9}  note")
    with loop_device() as dev:
        for name in args.tools.split(","):
            code, ours_opts, bcc_opts, how = TOOLS[name]
            if name == "biolatency":
                ours_opts = [*ours_opts, "-d", os.path.basename(dev)]
                bcc_opts = [*bcc_opts, "-d", os.path.basename(dev)]
            alone = measure(None, code, how, args.seconds, dev)
            ours = measure([sys.executable, "-m", "ebpf", "tool", name, *ours_opts], code, how,
                           args.seconds, dev)
            bcc_path = shutil.which(f"{name}-bpfcc") or f"/usr/sbin/{name}-bpfcc"
            bcc = (measure([bcc_path, *bcc_opts], code, how, args.seconds, dev)
                   if os.path.exists(bcc_path) else {"error": "not in bpfcc-tools"})

            def cell(r: dict[str, Any], key: str, width: int) -> str:
                return f"{r[key]:>{width}.0f}" if key in r else f"{'-':>{width}}"

            note = "; ".join(f"{who}: {r['error']}" for who, r in (("ebpf", ours), ("bcc", bcc))
                             if "error" in r)
            print(f"{name:<11} {alone['ops_per_s']:>11.0f} {cell(ours, 'ops_per_s', 10)} "
                  f"{cell(ours, 'events_per_s', 10)} {cell(bcc, 'ops_per_s', 10)} "
                  f"{cell(bcc, 'events_per_s', 9)}  {note}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
