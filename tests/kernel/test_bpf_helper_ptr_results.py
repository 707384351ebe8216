"""ebpf.bpf helpers that return struct pointers, on the kernel.

``bpf.helper.skc_to_tcp_sock(ctx.sk)`` gives a nullable BTF ``struct tcp_sock *`` (None for
a UDP socket) whose fields read as kernel struct fields. A ``connect4`` program in a child
cgroup records it for a TCP and a UDP connect of a child process. Helpers returning the
uapi views (``struct bpf_tcp_sock *``) are compile errors.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from ebpf import platform
from ebpf.link import attach_cgroup
from ebpf.testing.modules import import_file

H = import_file(Path(__file__).with_name("_trace_link_factories.py"))

from ebpf import bpf  # noqa: E402
from ebpf.bpf import u64  # noqa: E402

seen = bpf.Array(u64, max_entries=8)


@bpf.cgroup_sock_addr("connect4")
def probe(ctx) -> int:  # type: ignore[no-untyped-def]
    k = 0 if ctx.type == 1 else 4           # SOCK_STREAM first, then SOCK_DGRAM
    t = bpf.helper.skc_to_tcp_sock(ctx.sk)
    if t is not None:
        seen[k] = 1
        seen[k + 1] = t.snd_cwnd            # a BTF struct tcp_sock field
        seen[k + 2] = t.inet_conn.icsk_inet.sk.sk_protocol
    return 1


CONNECT = """
import socket
with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.settimeout(2)
    try:
        s.connect(("127.0.0.1", {port}))
    except OSError:
        pass
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
    u.connect(("127.0.0.1", {port}))
"""


@pytest.mark.capabilities(platform.Capability.SYS_ADMIN)
def test_struct_pointer_results(cgroup: str) -> None:
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(4)
        port = srv.getsockname()[1]
        with bpf.load(probe) as coll:
            with attach_cgroup(coll.probe, cgroup):
                H.run_in_cgroup(cgroup, CONNECT.format(port=port))
            got = [coll.seen[i] for i in range(8)]
    assert got[0] == 1 and got[1] > 0                       # a tcp_sock, with its cwnd
    assert got[2] == socket.IPPROTO_TCP
    assert got[4:7] == [0, 0, 0]                            # UDP: skc_to_tcp_sock is None


def test_unsupported_results_are_compile_errors() -> None:
    @bpf.cgroup_skb("egress")
    def bad(ctx: bpf.SocketFilter) -> int:
        bpf.helper.tcp_sock(None)                           # struct bpf_tcp_sock *: no view
        return 1

    with pytest.raises(bpf.CompileError, match="uapi view struct bpf_tcp_sock"):
        bad.compile()
