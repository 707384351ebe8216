"""Typed skeleton end to end: compile a libbpf-style C program with clang-19, generate its
skeleton (``python -m ebpf gen skeleton obj.o --event events=event``) and use it: .rodata
set before load, a map read with its ctypes key/value structs, ring buffer records as ctypes
structs, a .bss counter read after.

Run as root: python examples/skeleton_events.py
"""

import ctypes
import importlib
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

from ebpf.link.tracepoint import attach_tracepoint

here = Path(__file__).resolve().parent
clang = shutil.which("clang-19")
if clang is None:
    print("clang-19 is not installed: nothing to show")
    sys.exit(0)
with tempfile.TemporaryDirectory() as tmp:
    obj = Path(tmp) / "events.o"
    arch = sysconfig.get_config_var("MULTIARCH")
    subprocess.run([clang, "-g", "-O2", "-target", "bpf", f"-I/usr/include/{arch}", "-c",
                    str(here / "skeleton_events.bpf.c"), "-o", str(obj)], check=True)
    code = subprocess.run([sys.executable, "-m", "ebpf", "gen", "skeleton", str(obj),
                           "--event", "events=event"], check=True, capture_output=True,
                          text=True).stdout
    (Path(tmp) / "events_skel.py").write_text(code)
    sys.path.insert(0, tmp)
    events_skel = importlib.import_module("events_skel")
    sys.path.remove(tmp)

with events_skel.Events() as skel:
    skel.rodata.targ_tgid = os.getpid()          # only this process, decided before load
    skel.load()
    with attach_tracepoint(skel.programs.on_getppid, "syscalls", "sys_enter_getppid"):
        for _ in range(3):
            os.getppid()
    records = list(skel.read_events(timeout=1.0))
    key = events_skel.key(tgid=os.getpid(), kind=1)
    raw = skel.maps.counts.lookup(bytes(key))
    stats = events_skel.stats.from_buffer_copy(bytes(memoryview(raw).cast("B"))
                                               if not isinstance(raw, bytes) else raw)
    emitted = skel.bss.emitted
for ev in records:
    print(f"tgid={ev.tgid} call #{ev.ppid_calls} comm={ev.comm.decode()} "
          f"flag={ev.flag} level={ev.level}")
print(f"map: {stats.count} calls, last at {stats.last_ns} ns; .bss emitted={emitted}; "
      f"event is {ctypes.sizeof(events_skel.event)} bytes")
ok = ([e.ppid_calls for e in records] == [1, 2, 3] and stats.count == 3 and emitted == 3
      and all(e.tgid == os.getpid() and e.level == 5 for e in records))
sys.exit(0 if ok else 1)
