"""``ctx.sk`` of the cgroup socket kinds: the read-only ``struct bpf_sock`` of the socket a
``@bpf.cgroup_sock_addr`` or ``@bpf.cgroup_sockopt`` program runs for.

Compiled from Python, attached to a fresh child cgroup and fired for real by a child
process in it: connect4 of a TCP socket bound to a known port (family, type, protocol and
``src_port`` in host order), and setsockopt of a connected UDP socket (family, protocol,
``dst_port`` and ``dst_ip4`` read in host order).
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

import ebpf
from ebpf import bpf
from ebpf.bpf import u64
from ebpf.link.cgroup import attach_cgroup
from ebpf.testing.modules import import_file

got = bpf.Array(u64, max_entries=8)


_in_cgroup = import_file(Path(__file__).with_name("_trace_link_factories.py")).run_in_cgroup


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.capabilities(ebpf.platform.Capability.SYS_ADMIN)
def test_connect4_reads_the_socket(cgroup: str) -> None:
    @bpf.cgroup_sock_addr("connect4")
    def on_connect(ctx: Any) -> int:
        sk = ctx.sk
        got[0] += 1
        got[1] = sk.family
        got[2] = sk.type
        got[3] = sk.protocol
        got[4] = sk.src_port
        got[5] = ctx.sk.src_ip4
        return 1

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = int(listener.getsockname()[1])
        src = _free_port()
        with bpf.load(on_connect) as coll, attach_cgroup(coll.on_connect, cgroup):
            out = _in_cgroup(cgroup, f"""
                import socket
                with socket.socket() as s:
                    s.bind(("127.0.0.1", {src}))
                    s.connect(("127.0.0.1", {port}))
                    print(s.getsockname()[1])
            """)
            assert out.strip() == str(src)
            vals = [coll.got[i] for i in range(6)]
    assert vals == [1, socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, src,
                    0x7F000001], vals


@pytest.mark.capabilities(ebpf.platform.Capability.SYS_ADMIN)
def test_setsockopt_reads_the_socket(cgroup: str) -> None:
    @bpf.cgroup_sockopt("setsockopt")
    def on_set(ctx: Any) -> int:
        if ctx.level == 1 and ctx.optname == 6:  # SOL_SOCKET, SO_BROADCAST
            got[0] += 1
            got[1] = ctx.sk.family
            got[2] = ctx.sk.protocol
            got[3] = ctx.sk.dst_port
            got[4] = ctx.sk.dst_ip4
        return 1

    dport = _free_port(socket.SOCK_DGRAM)
    with bpf.load(on_set) as coll, attach_cgroup(coll.on_set, cgroup):
        out = _in_cgroup(cgroup, f"""
            import socket
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.connect(("127.0.0.1", {dport}))
                s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
                print(s.getsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST))
        """)
        assert out.strip() == "1"
        vals = [coll.got[i] for i in range(5)]
    assert vals == [1, socket.AF_INET, socket.IPPROTO_UDP, dport, 0x7F000001], vals


def test_ctx_sk_is_read_only() -> None:
    @bpf.cgroup_sock_addr("connect4")
    def bad(ctx: Any) -> int:
        ctx.sk = 0
        return 1

    with pytest.raises(bpf.CompileError, match=r"ctx\.sk is read-only"):
        bpf.build_spec((bad,))
