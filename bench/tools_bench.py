"""Tool overhead: how many events per second each tool sustains under a load generator, and
what it costs the load, side by side with bcc's tool of the same name when Debian's
bpfcc-tools is installed (``/usr/sbin/NAME-bpfcc``).

    python bench/tools_bench.py [--seconds 3]

For each tool: the generator alone (ops/s), then with our tool running (ops/s, events the tool
printed per second), then with bcc's (same columns, or the reason it could not run).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

GENERATORS = {
    # tool: (python code looping until the deadline, printing its op count; our options)
    "syscount": ("while time.monotonic() < end:\n    os.getppid(); n += 1", []),
    "opensnoop": ("while time.monotonic() < end:\n    os.close(os.open('/dev/null', 0)); n += 1",
                  []),
    "execsnoop": ("while time.monotonic() < end:\n    subprocess.run(['/bin/true']); n += 1",
                  []),
    "bindsnoop": ("while time.monotonic() < end:\n"
                  "    s = socket.socket(); s.bind(('127.0.0.1', 0)); s.close(); n += 1", []),
}


def generator(code: str, seconds: float) -> subprocess.Popen[str]:
    prog = (f"import os, socket, subprocess, time\nn = 0\nend = time.monotonic() + {seconds}\n"
            f"{code}\nprint(n)")
    return subprocess.Popen([sys.executable, "-c", prog], stdout=subprocess.PIPE, text=True)


def measure(tool_cmd: list[str] | None, code: str, seconds: float) -> dict[str, Any]:
    lines = [0]
    tool = None
    if tool_cmd is not None:
        tool = subprocess.Popen(tool_cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")})
        time.sleep(4.0)        # let it load and attach (bcc compiles C first)
        if tool.poll() is not None:
            return {"error": (tool.stderr.read() if tool.stderr else "")[-200:].strip()}

        def drain() -> None:
            assert tool is not None and tool.stdout is not None
            for _ in tool.stdout:
                lines[0] += 1
        t = threading.Thread(target=drain, daemon=True)
        t.start()
    start_lines = lines[0]
    g = generator(code, seconds)
    out, _ = g.communicate()
    got = lines[0] - start_lines
    if tool is not None:
        tool.terminate()
        try:
            tool.wait(10)
        except subprocess.TimeoutExpired:
            tool.kill()
            tool.wait()
    return {"ops_per_s": int(out) / seconds, "events_per_s": got / seconds}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    pid_note = "(-p of the generator is unknown up front: tools trace system-wide)"
    print(f"{'tool':<10} {'alone ops/s':>12} {'ebpf ops/s':>11} {'ebpf ev/s':>10} "
          f"{'bcc ops/s':>10} {'bcc ev/s':>9}  {pid_note}")
    for name, (code, opts) in GENERATORS.items():
        alone = measure(None, code, args.seconds)
        ours_cmd = [sys.executable, "-m", "ebpf", "tool", name, *opts]
        if name == "syscount":
            ours_cmd += ["-i", "1"]
        ours = measure(ours_cmd, code, args.seconds)
        bcc_path = shutil.which(f"{name}-bpfcc") or f"/usr/sbin/{name}-bpfcc"
        bcc = (measure([bcc_path, *(["-i", "1"] if name == "syscount" else [])], code,
                       args.seconds) if os.path.exists(bcc_path)
               else {"error": "bpfcc-tools not installed"})

        def cell(r: dict[str, Any], key: str, width: int) -> str:
            return f"{r[key]:>{width}.0f}" if key in r else f"{'-':>{width}}"

        print(f"{name:<10} {alone['ops_per_s']:>12.0f} {cell(ours, 'ops_per_s', 11)} "
              f"{cell(ours, 'events_per_s', 10)} {cell(bcc, 'ops_per_s', 10)} "
              f"{cell(bcc, 'events_per_s', 9)}  {bcc.get('error', '')[:80]}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
