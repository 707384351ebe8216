"""Count unlinks per process in Python with fentry/fexit on do_unlinkat: fentry counts the
calls and remembers the directory fd argument (by its BTF name, ``ctx.dfd``), fexit counts
the calls that failed (its return value, ``ctx.ret``). Linux 5.5+ with BPF trampolines.

Run as root: python examples/py_fentry_unlinks.py
"""

import contextlib
import os
import sys
import tempfile
from typing import Any

from ebpf import bpf
from ebpf.bpf import i32, u32, u64
from ebpf.link.tracing import attach_tracing

calls = bpf.Hash(u32, u64, max_entries=1024)
failed = bpf.Hash(u32, u64, max_entries=1024)
last_dfd = bpf.var(i32, 0)
target_tgid = bpf.const(u32, 0)


@bpf.fentry("do_unlinkat")
def unlink_enter(ctx: Any) -> int:
    global last_dfd
    tgid = bpf.get_current_pid_tgid() >> 32
    calls[tgid] += 1
    if tgid == target_tgid:
        last_dfd = i32(ctx.dfd)
    return 0


@bpf.fexit("do_unlinkat")
def unlink_exit(ctx: Any) -> int:
    if i32(ctx.ret) != 0:
        failed[bpf.get_current_pid_tgid() >> 32] += 1
    return 0


def count_unlinks(ok: int, missing: int) -> tuple[int, int, int, int]:
    """Unlink ``ok`` files and ``missing`` absent ones through a directory fd while both
    programs are attached: (calls, failures, last dfd seen, the dfd used) for this process."""
    pid = os.getpid()
    with bpf.load(unlink_enter, unlink_exit, constants={"target_tgid": pid}) as coll, \
            tempfile.TemporaryDirectory() as d:
        dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for i in range(ok):
                open(os.path.join(d, f"f{i}"), "w").close()
            with attach_tracing(coll.unlink_enter), attach_tracing(coll.unlink_exit):
                for i in range(ok):
                    os.unlink(f"f{i}", dir_fd=dfd)
                for i in range(missing):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(f"absent{i}", dir_fd=dfd)
        finally:
            os.close(dfd)
        n = dict(coll.calls.items()).get(pid, 0)
        bad = dict(coll.failed.items()).get(pid, 0)
        return n, bad, coll.variables["last_dfd"].get(), dfd


def main() -> int:
    n, bad, seen, dfd = count_unlinks(5, 3)
    print(f"do_unlinkat: {n} calls, {bad} failed, last dfd {seen} (used {dfd})")
    return 0 if (n, bad, seen) == (8, 3, dfd) else 1


if __name__ == "__main__":
    sys.exit(main())
