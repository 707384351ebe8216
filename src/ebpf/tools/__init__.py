"""bcc-style tools built on the library: ``python -m ebpf tool NAME [options]``.

Each tool is one short module that doubles as an example: it assembles its programs with
:mod:`ebpf.asm` and :mod:`ebpf.lib` (no compiler at run time), attaches them to the hook that
works on the running kernel (tracepoints here, since kprobes and fentry may be missing; ``-v``
says which), and prints live rows with bcc's columns. Common options: ``-p PID``, ``-c COMM``,
``-T`` (time column), ``--json`` (one object per line), ``--duration SECONDS``, ``-v``.

========== ===========================================================================
execsnoop  every exec (``sched:sched_process_exec``)
exitsnoop  every process exit (``sched:sched_process_exit``)
opensnoop  ``openat`` calls with their result (``syscalls:sys_{enter,exit}_openat``)
bindsnoop  ``bind`` calls, address and result (``syscalls:sys_{enter,exit}_bind``)
tcpconnect active TCP connects (``sock:inet_sock_set_state`` to SYN_SENT)
syscount   system calls counted per syscall (``raw_syscalls:sys_enter``)
runqlat    run-queue latency histogram (``sched:sched_wakeup`` / ``sched_switch``)
biolatency block I/O latency histogram (``block:block_rq_issue`` / ``block_rq_complete``)
pktcount   packets and bytes per IP protocol on an interface (XDP)
========== ===========================================================================
"""

from __future__ import annotations

#: the tool names ``ebpf tool NAME`` accepts (modules of this package)
TOOLS = ("execsnoop", "exitsnoop", "opensnoop", "bindsnoop", "tcpconnect", "syscount",
         "runqlat", "biolatency", "pktcount")

__all__ = ["TOOLS"]
