"""More program kinds of the Python front end: ``@bpf.uprobe``/``@bpf.uretprobe``,
``@bpf.usdt``, ``@bpf.perf_event``, ``@bpf.iter``, ``@bpf.cgroup_sock_addr`` and
``@bpf.cgroup_sockopt``.

Each program is compiled from Python, loaded with its program type and expected attach type,
attached through ``ebpf.link`` and fired for real: uprobes and USDT probes on the test binary
of tests/testdata/uprobe/target.c (built with gcc), perf_event on the cpu-clock software
event of this process, a task iterator read back, and the cgroup kinds on sockets of a child
process in a fresh child cgroup.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ebpf
from ebpf import bpf, errors
from ebpf.bpf import i32, i64, u32, u64
from ebpf.link.cgroup import attach_cgroup
from ebpf.link.iter import attach_iter
from ebpf.link.perf_event import SoftwareEvent, attach_perf_event
from ebpf.link.uprobe import attach_uprobe, attach_usdt
from ebpf.testing.modules import import_file

P = ebpf.ProgramType
A = ebpf.AttachType
N = 7


H = import_file(Path(__file__).with_name("_trace_link_factories.py"))


target_bin = H.target_bin  # fixtures of _trace_link_factories
target = H.target


# module-level maps and globals the programs below share
hits = bpf.Array(u64, max_entries=4)
seen_pid = bpf.var(u32, 0)
last = bpf.var(i64, 0)
total = bpf.var(i64, 0)


class TaskRow(bpf.Struct):
    seq: u64
    tgid: u32
    pid: u32
    ppid: u32
    comm: bpf.bytes_[16]


def _body(ctx: Any) -> int:
    return 0


# -- declarations ----------------------------------------------------------------------------
def test_kinds_set_type_attach_type_and_section(target_bin: str) -> None:
    cases = [
        (bpf.uprobe(target_bin, "ebpf_target_add"), P.KPROBE, None,
         f"uprobe/{target_bin}:ebpf_target_add"),
        (bpf.uretprobe("libc", "getpid"), P.KPROBE, None, "uretprobe/libc:getpid"),
        (bpf.usdt(target_bin, "ebpf_test", "tick"), P.KPROBE, None,
         f"usdt/{target_bin}:ebpf_test:tick"),
        (bpf.perf_event, P.PERF_EVENT, None, "perf_event"),
        (bpf.iter("task"), P.TRACING, A.TRACE_ITER, "iter/task"),
        (bpf.cgroup_sock_addr("connect4"), P.CGROUP_SOCK_ADDR, A.CGROUP_INET4_CONNECT,
         "cgroup/connect4"),
        (bpf.cgroup_sock_addr("sendmsg6"), P.CGROUP_SOCK_ADDR, A.CGROUP_UDP6_SENDMSG,
         "cgroup/sendmsg6"),
        (bpf.cgroup_sockopt("getsockopt"), P.CGROUP_SOCKOPT, A.CGROUP_GETSOCKOPT,
         "cgroup/getsockopt"),
        (bpf.cgroup_sockopt("setsockopt"), P.CGROUP_SOCKOPT, A.CGROUP_SETSOCKOPT,
         "cgroup/setsockopt"),
    ]
    for deco, pt, at, section in cases:
        decl = deco(_body)
        spec, _ = bpf.build_spec((decl,))
        ps = spec.programs["_body"]
        assert (ps.type, ps.attach_type, ps.section) == (pt, at, section)
        assert ps.attach_to == ("task" if pt == P.TRACING else None)


@pytest.mark.parametrize("make", [
    lambda: bpf.uprobe("", "f"), lambda: bpf.uprobe("libc", ""),
    lambda: bpf.uretprobe(3, "f"),  # type: ignore[arg-type]
    lambda: bpf.usdt("libc", "", "x"),
    lambda: bpf.usdt("libc", "p", ""), lambda: bpf.iter("no such"),
    lambda: bpf.cgroup_sock_addr("connect5"), lambda: bpf.cgroup_sockopt("sockopt"),
])
def test_bad_arguments_are_refused(make: Any) -> None:
    with pytest.raises(errors.BPFError):
        make()


def test_ctx_errors_are_compile_errors(target_bin: str) -> None:
    @bpf.cgroup_sock_addr("connect4")
    def writes_family(ctx: Any) -> int:
        ctx.family = 2
        return 1

    with pytest.raises(bpf.CompileError, match=r"ctx.family is read-only \(writable: "
                                               r"msg_src_ip4.*user_port\)"):
        writes_family.compile()

    @bpf.iter("task")
    def no_field(ctx: Any) -> int:
        return ctx.tsk  # type: ignore[no-any-return]

    with pytest.raises(bpf.CompileError, match=r"no readable field 'tsk' \(fields: meta, "
                                               r"task\)"):
        no_field.compile()

    @bpf.perf_event
    def not_iter(ctx: Any) -> int:
        r = TaskRow()
        bpf.seq_write(ctx, r)
        return 0

    with pytest.raises(bpf.CompileError, match="seq_write is for iterator programs"):
        not_iter.compile()

    @bpf.usdt(target_bin, "ebpf_test", "tick")
    def second(ctx: Any) -> int:
        return ctx.arg1  # type: ignore[no-any-return]

    with pytest.raises(bpf.CompileError, match=r"no readable field 'arg1' \(fields: arg0\)"):
        second.compile()


# -- uprobes and USDT ------------------------------------------------------------------------
def test_uprobe_and_uretprobe_on_the_test_binary(target: Any, target_bin: str) -> None:
    pid = target.pid

    @bpf.uprobe(target_bin, "ebpf_target_add")
    def on_add(ctx: Any) -> int:
        global last
        if bpf.get_current_pid_tgid() >> 32 == seen_pid:
            hits[0] += 1
            last = i32(ctx.arg0) * 1000 + i32(ctx.arg1)
        return 0

    @bpf.uretprobe(target_bin, "ebpf_target_add")
    def on_add_ret(ctx: Any) -> int:
        global total
        if bpf.get_current_pid_tgid() >> 32 == seen_pid:
            hits[1] += 1
            total += i32(ctx.ret)
        return 0

    with bpf.load(on_add, on_add_ret, constants={"seen_pid": pid}) as coll:
        assert coll.on_add.type == P.KPROBE
        with attach_uprobe(coll.on_add, target_bin, "ebpf_target_add", pid=pid), \
                attach_uprobe(coll.on_add_ret, target_bin, "ebpf_target_add", retprobe=True,
                              pid=pid):
            assert target.ask(f"add -40 2 {N}") == "-38"
        assert coll.hits[0] == N and coll.hits[1] == N
        assert coll.variables["last"].get() == -40 * 1000 + 2
        assert coll.variables["total"].get() == -38 * N
        assert target.ask("add 1 1 3") == "2"  # detached
        assert coll.hits[0] == N


def test_uprobe_on_libc_in_this_process() -> None:
    @bpf.uprobe("libc.so.6", "getppid")
    def on_getppid(ctx: Any) -> int:
        if bpf.get_current_pid_tgid() >> 32 == seen_pid:
            hits[2] += 1
        return 0

    with bpf.load(on_getppid, constants={"seen_pid": os.getpid()}) as coll, \
            attach_uprobe(coll.on_getppid, "libc.so.6", "getppid", pid=os.getpid()):
        for _ in range(N):
            os.getppid()
        assert coll.hits[2] == N


@pytest.mark.parametrize("probe,command,expected", [
    ("tick", f"fire {N}", sum(range(N))),                         # a register argument
    ("mem", f"mem {N}", sum(-1000 * (i + 1) for i in range(N))),  # memory, probe-read
    ("konst", f"mem {N}", -1234 * N),                             # a constant
])
def test_usdt_arguments(target: Any, target_bin: str, probe: str, command: str,
                        expected: int) -> None:
    @bpf.usdt(target_bin, "ebpf_test", probe)
    def on_probe(ctx: Any) -> int:
        global total
        if bpf.get_current_pid_tgid() >> 32 == seen_pid:
            hits[3] += 1
            total += ctx.arg0
        return 0

    with bpf.load(on_probe, constants={"seen_pid": target.pid}) as coll:
        with attach_usdt(coll.on_probe, target_bin, "ebpf_test", probe, pid=target.pid):
            assert target.ask(command) == str(N)
        assert coll.hits[3] == N
        assert coll.variables["total"].get() == expected


# -- perf_event --------------------------------------------------------------------------------
def test_perf_event_counts_cpu_clock_samples() -> None:
    period = 1_000_000  # 1 ms of this task's CPU time

    @bpf.perf_event
    def on_sample(ctx: Any) -> int:
        global last
        if bpf.get_current_pid_tgid() >> 32 == seen_pid:
            hits[0] += 1
            last = i64(ctx.sample_period)
            if ctx.ip != 0:
                hits[1] += 1
        return 0

    with bpf.load(on_sample, constants={"seen_pid": os.getpid()}) as coll:
        assert coll.on_sample.type == P.PERF_EVENT
        with attach_perf_event(coll.on_sample, SoftwareEvent.CPU_CLOCK, sample_period=period,
                               pid=os.getpid()):
            t0 = time.thread_time()
            while time.thread_time() - t0 < 0.1:  # 100 ms on the CPU: about 100 samples
                pass
            used = time.thread_time() - t0
        n = coll.hits[0]
        assert 0.5 * used * 1000 <= n <= 1.5 * used * 1000 + 5, (n, used)
        assert coll.hits[1] == n  # each sample has an instruction pointer
        assert coll.variables["last"].get() == period


# -- iterators ---------------------------------------------------------------------------------
def test_task_iterator_writes_rows_we_decode() -> None:
    @bpf.iter("task")
    def tasks(ctx: Any) -> int:
        t = ctx.task
        if t is None:
            return 0
        row = TaskRow()
        row.seq = ctx.meta.seq_num         # struct bpf_iter_meta *, a BTF pointer too
        row.tgid = t.tgid
        row.pid = t.pid
        row.ppid = t.real_parent.tgid
        row.comm = t.comm
        bpf.seq_write(ctx, row)
        return 0

    with bpf.load(tasks) as coll:
        assert coll.tasks.type == P.TRACING
        with attach_iter(coll.tasks) as it:
            data = it.read()
    assert data and len(data) % TaskRow.size == 0
    rows = [TaskRow.decode(data[i:i + TaskRow.size])
            for i in range(0, len(data), TaskRow.size)]
    mine = [r for r in rows if r.tgid == os.getpid() and r.pid == os.getpid()]
    assert len(mine) == 1
    assert mine[0].ppid == os.getppid()
    assert Path(f"/proc/{os.getpid()}/comm").read_bytes().strip() == \
        mine[0].comm.rstrip(b"\0")
    assert len({r.tgid for r in rows}) > 3  # other processes too
    assert [r.seq for r in rows] == list(range(len(rows)))  # one call per task, in order


# -- cgroup sock_addr and sockopt --------------------------------------------------------------
_in_cgroup = H.run_in_cgroup


CONNECT = """
import errno, socket
for port in {ports}:
    with socket.socket() as s:
        try:
            s.connect(("127.0.0.1", port))
            print(port, "ok", s.getpeername()[1])
        except OSError as e:
            print(port, errno.errorcode[e.errno], 0)
"""


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield s


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


deny_port = bpf.const(u32, 0)
redirect_from = bpf.const(u32, 0)
redirect_to = bpf.const(u32, 0)


@pytest.mark.capabilities(ebpf.platform.Capability.SYS_ADMIN)
def test_connect4_denies_and_redirects_in_a_child_cgroup(cgroup: str,
                                                         listener: socket.socket) -> None:
    @bpf.cgroup_sock_addr("connect4")
    def guard(ctx: Any) -> int:
        if ctx.user_ip4 != 0x7F000001:
            return 1
        hits[0] += 1
        if ctx.user_port == deny_port:
            return 0
        if ctx.user_port == redirect_from:
            ctx.user_port = redirect_to
        return 1

    port = int(listener.getsockname()[1])
    deny, moved = _free_port(), _free_port()
    ports = [port, deny, moved]
    with bpf.load(guard, constants={"deny_port": deny, "redirect_from": moved,
                                    "redirect_to": port}) as coll:
        assert coll.guard.type == P.CGROUP_SOCK_ADDR
        with attach_cgroup(coll.guard, cgroup):
            out = _in_cgroup(cgroup, CONNECT.format(ports=ports)).split("\n")
        assert coll.hits[0] == 3
    assert out[0] == f"{port} ok {port}"
    assert out[1] == f"{deny} EPERM 0"           # denied by the program
    assert out[2] == f"{moved} ok {port}"        # rewritten to the listener's port
    # outside the cgroup (and after detaching) nothing is changed
    after = _in_cgroup(os.path.dirname(cgroup), CONNECT.format(ports=[deny])).split("\n")
    assert after[0] == f"{deny} ECONNREFUSED 0"


def test_a_ctx_write_the_hook_refuses_is_a_verifier_error_at_the_line() -> None:
    @bpf.cgroup_sock_addr("connect6")
    def v4_in_connect6(ctx: Any) -> int:
        ctx.user_ip4 = 0x7F000001
        return 1

    with pytest.raises(errors.VerifierError) as ei:
        bpf.load(v4_in_connect6)
    assert "ctx.user_ip4 = 0x7F000001" in ei.value.source, ei.value.source
    assert "invalid bpf_context access" in str(ei.value)


SETSOCKOPT = """
import errno, socket
with socket.socket() as s:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_PRIORITY, 3)
        print("allowed")
    except OSError as e:
        print(errno.errorcode[e.errno])
    print(s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE))
"""

opts = bpf.Hash(u64, u64, max_entries=16)


@pytest.mark.capabilities(ebpf.platform.Capability.SYS_ADMIN)
def test_sockopt_observes_setsockopt_and_denies_one(cgroup: str) -> None:
    @bpf.cgroup_sockopt("setsockopt")
    def on_set(ctx: Any) -> int:
        opts[u64(ctx.level) << 32 | u64(u32(ctx.optname))] += 1
        hits[1] = u64(u32(ctx.optlen))
        if ctx.level == 1 and ctx.optname == 12:  # SOL_SOCKET, SO_PRIORITY
            return 0
        return 1

    @bpf.cgroup_sockopt("getsockopt")
    def on_get(ctx: Any) -> int:
        if ctx.level == 1 and ctx.optname == 9:  # SO_KEEPALIVE
            hits[2] = u64(i64(ctx.retval) + 100)
        return 1

    with bpf.load(on_set, on_get) as coll:
        assert coll.on_set.type == P.CGROUP_SOCKOPT
        with attach_cgroup(coll.on_set, cgroup), attach_cgroup(coll.on_get, cgroup):
            out = _in_cgroup(cgroup, SETSOCKOPT).split("\n")
        seen = {(k >> 32, k & 0xFFFFFFFF): v for k, v in coll.opts.items()}
        assert out[:2] == ["EPERM", "1"]
        assert seen[(socket.SOL_SOCKET, socket.SO_KEEPALIVE)] == 1
        assert seen[(socket.IPPROTO_TCP, socket.TCP_NODELAY)] == 1
        assert seen[(socket.SOL_SOCKET, socket.SO_PRIORITY)] == 1
        assert coll.hits[1] == 4          # sizeof(int)
        assert coll.hits[2] == 100        # the kernel's getsockopt returned 0

