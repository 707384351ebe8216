"""execsnoop in Python: a tracepoint on sched/sched_process_exec sends one Event per exec
through a ring buffer; the same bpf.Struct decodes it. A global counts execs (bpf.var).

Run as root: python examples/py_execsnoop.py  (runs /bin/true and checks its event)
"""

import subprocess
import sys

from ebpf import bpf
from ebpf.bpf import u32, u64
from ebpf.link.tracepoint import attach_tracepoint


class Event(bpf.Struct):
    pid: u32
    ppid_unused: u32
    ts: u64
    comm: bpf.bytes_[16]  # type: ignore[valid-type]  # a size, not a type, to mypy


events = bpf.RingBuf(size=1 << 16)
execs = bpf.var(u64)


@bpf.tracepoint("sched/sched_process_exec")
def on_exec(ctx: bpf.TracepointContext) -> int:
    global execs
    e = events.reserve(Event)
    if e is None:
        return 0
    e.pid = bpf.get_current_pid_tgid() >> 32
    e.ts = bpf.ktime_get_ns()
    e.comm = bpf.get_current_comm()
    events.submit(e)
    execs += 1
    return 0


def main() -> int:
    with bpf.load(on_exec) as coll:
        with attach_tracepoint(coll.on_exec, "sched", "sched_process_exec"):
            child = subprocess.Popen(["/bin/true"])
            child.wait()
        seen = list(coll.events.read(Event, timeout=1.0))
        for ev in seen:
            print(f"{ev.ts:>16} {ev.pid:>7} {ev.comm.decode(errors='replace')}")
        mine = [ev for ev in seen if ev.pid == child.pid and ev.comm == b"true"]
        count = coll.variables["execs"].get()
    print(f"{count} exec(s) counted; /bin/true pid {child.pid} seen: {bool(mine)}")
    return 0 if mine and count >= len(seen) else 1


if __name__ == "__main__":
    sys.exit(main())
