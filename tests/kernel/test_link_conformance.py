"""The shared link contract (:func:`ebpf.testing.conformance.check_link`) for every link type,
and the attachment contract for every non-link attachment.

Network links are made in private namespaces, cgroup links in a fresh child cgroup; each case
removes what it made, also when the check fails. The tracing link factories live in
``_trace_link_factories.py`` (loaded by path: tests are imported with importlib mode).
"""

from __future__ import annotations

import contextlib
import importlib.util
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import ebpf
from ebpf import asm
from ebpf._maps import Map
from ebpf._sys import netlink
from ebpf.asm import R0
from ebpf.features import have_link_type
from ebpf.link.base import Attachment, Link, prog_query
from ebpf.link.cgroup import CgroupMode, attach_cgroup, query_cgroup
from ebpf.link.netfilter import attach_netfilter
from ebpf.link.netns import attach_flow_dissector, attach_sk_lookup, query_netns
from ebpf.link.socket import attach_reuseport, attach_socket_filter, attach_sockmap
from ebpf.link.struct_ops import StructOps, attach_struct_ops, load_struct_ops_program
from ebpf.link.tc import attach_tc, query_tcx, tc_filters
from ebpf.link.xdp import attach_xdp
from ebpf.testing.conformance import check_attachment, check_link
from ebpf.testing.netns import NetNS
from ebpf.testing.plugin import child_cgroup

pytestmark = pytest.mark.capabilities(ebpf.platform.Capability.NET_ADMIN,
                                      ebpf.platform.Capability.SYS_ADMIN)

AT, PT, LT = ebpf.AttachType, ebpf.ProgramType, ebpf.LinkType


@dataclass
class Case:
    """A live attachment, what it holds, a replacement, and a probe of the hook's state."""

    link: Any
    program: Any
    other: Any
    attached: Callable[[], bool] | None = None


Factory = Callable[[], contextlib.AbstractContextManager[Case]]


def ret(value: int) -> list[object]:
    return [asm.mov(R0, value), asm.exit()]


@contextlib.contextmanager
def programs(prog_type: ebpf.ProgramType, value: int = 0,
             **kw: Any) -> Iterator[tuple[ebpf.Program, ebpf.Program]]:
    with (
        ebpf.Program.load(prog_type, ret(value), name="conf_a", **kw) as a,
        ebpf.Program.load(prog_type, ret(value), name="conf_b", **kw) as b,
    ):
        yield a, b


@contextlib.contextmanager
def private_netns() -> Iterator[NetNS]:
    with NetNS() as ns, ns.enter():
        yield ns


# --- link factories (network half) --------------------------------------------------------------


@contextlib.contextmanager
def xdp_link() -> Iterator[Case]:
    with private_netns(), programs(PT.XDP, 2) as (a, b):
        link = attach_xdp(a, "lo", mode=ebpf.XDPMode.GENERIC, method="link")
        yield Case(link, a, b, lambda: netlink.xdp_query("lo").prog_id != 0)


@contextlib.contextmanager
def tcx_link() -> Iterator[Case]:
    with private_netns(), programs(PT.SCHED_CLS) as (a, b):
        link = attach_tc(a, "lo", mode="tcx")
        yield Case(link, a, b, lambda: query_tcx("lo").prog_ids != ())


@contextlib.contextmanager
def cgroup_link() -> Iterator[Case]:
    at = AT.CGROUP_INET_EGRESS
    with child_cgroup() as cg, programs(PT.CGROUP_SKB, 1, expected_attach_type=at) as (a, b):
        link = attach_cgroup(a, cg, at, mode=CgroupMode.LINK)
        yield Case(link, a, b, lambda: query_cgroup(cg, at).prog_ids != ())


@contextlib.contextmanager
def sk_lookup_link() -> Iterator[Case]:
    at = AT.SK_LOOKUP
    with private_netns(), programs(PT.SK_LOOKUP, 1, expected_attach_type=at) as (a, b):
        yield Case(attach_sk_lookup(a), a, b, lambda: query_netns(at).prog_ids != ())


@contextlib.contextmanager
def flow_dissector_link() -> Iterator[Case]:
    at = AT.FLOW_DISSECTOR
    with private_netns(), programs(PT.FLOW_DISSECTOR) as (a, b):
        link = attach_flow_dissector(a, method="link")
        yield Case(link, a, b, lambda: query_netns(at).prog_ids != ())


@contextlib.contextmanager
def netfilter_link() -> Iterator[Case]:
    with private_netns(), programs(PT.NETFILTER, 1, expected_attach_type=AT.NETFILTER) as (a, b):
        yield Case(attach_netfilter(a, priority=-7), a, b)  # no query for netfilter hooks


@contextlib.contextmanager
def sockmap_link() -> Iterator[Case]:
    with (
        Map.create(ebpf.MapType.SOCKMAP, key_size=4, value_size=4, max_entries=1) as m,
        programs(PT.SK_MSG, 1) as (a, b),
    ):
        link = attach_sockmap(a, m, method="link")
        yield Case(link, a, b,
                   lambda: prog_query(m.fileno(), AT.SK_MSG_VERDICT).prog_ids != ())


CC = "tcp_congestion_ops"


@contextlib.contextmanager
def _cc_programs() -> Iterator[dict[str, ebpf.Program]]:
    with contextlib.ExitStack() as stack:
        yield {member: stack.enter_context(load_struct_ops_program(CC, member, ret(2)))
               for member in ("ssthresh", "cong_avoid", "undo_cwnd")}


def _available() -> list[str]:
    with open("/proc/sys/net/ipv4/tcp_available_congestion_control") as f:
        return f.read().split()


@contextlib.contextmanager
def struct_ops_link() -> Iterator[Case]:
    name = "pyebpf_" + uuid.uuid4().hex[:8]
    with (
        _cc_programs() as progs,
        StructOps.create(CC, progs, fields={"name": name}) as a,
        StructOps.create(CC, progs, fields={"name": name}) as b,
    ):
        yield Case(attach_struct_ops(a), a, b, lambda: name in _available())


NET_LINK_FACTORIES: list[tuple[Factory, ebpf.LinkType]] = [
    (xdp_link, LT.XDP),
    (tcx_link, LT.TCX),
    (cgroup_link, LT.CGROUP),
    (sk_lookup_link, LT.NETNS),
    (flow_dissector_link, LT.NETNS),
    (netfilter_link, LT.NETFILTER),
    (sockmap_link, LT.SOCKMAP),
    (struct_ops_link, LT.STRUCT_OPS),
]


# --- link factories (tracing half) -------------------------------------------------------------


def _trace_factories() -> list[Any]:
    path = Path(__file__).with_name("_trace_link_factories.py")
    if not path.exists():
        return []
    spec = importlib.util.spec_from_file_location("_trace_link_factories", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.TRACE_LINK_FACTORIES)


def _wrap_trace(make: Callable[[], tuple[Link, ebpf.Program, ebpf.Program]]) -> Factory:
    @contextlib.contextmanager
    def factory() -> Iterator[Case]:
        link, a, b = make()
        with a, b:
            try:
                yield Case(link, a, b)
            finally:
                link.close()

    factory.__name__ = make.__name__
    return factory


TRACE_LINK_FACTORIES: list[Factory] = [_wrap_trace(f) for f in _trace_factories()]

LINK_CASES = [
    pytest.param(f, marks=pytest.mark.requires(have_link_type, lt), id=f.__name__)
    for f, lt in NET_LINK_FACTORIES
] + [pytest.param(f, id=f.__name__) for f in TRACE_LINK_FACTORIES]


@pytest.mark.parametrize("make", LINK_CASES)
def test_link_contract(make: Factory, bpffs: str) -> None:
    with make() as case:
        check_link(case.link, case.program, case.other, bpffs, attached=case.attached)
        assert isinstance(case.link, Link)


# --- attachments (no bpf_link) -----------------------------------------------------------------


@contextlib.contextmanager
def xdp_netlink() -> Iterator[Case]:
    with private_netns(), programs(PT.XDP, 2) as (a, b):
        att = attach_xdp(a, "lo", mode=ebpf.XDPMode.GENERIC, method="netlink")
        yield Case(att, a, b, lambda: netlink.xdp_query("lo").prog_id != 0)


@contextlib.contextmanager
def tc_clsact() -> Iterator[Case]:
    with private_netns(), programs(PT.SCHED_CLS) as (a, b):
        att = attach_tc(a, "lo", mode="clsact")
        yield Case(att, a, b, lambda: tc_filters("lo") != [])


@contextlib.contextmanager
def cgroup_prog_attach() -> Iterator[Case]:
    at = AT.CGROUP_INET_INGRESS
    with child_cgroup() as cg, programs(PT.CGROUP_SKB, 1, expected_attach_type=at) as (a, b):
        att = attach_cgroup(a, cg, at, mode=CgroupMode.MULTI)
        yield Case(att, a, b, lambda: query_cgroup(cg, at).prog_ids != ())


@contextlib.contextmanager
def flow_dissector_prog_attach() -> Iterator[Case]:
    at = AT.FLOW_DISSECTOR
    with private_netns(), programs(PT.FLOW_DISSECTOR) as (a, b):
        att = attach_flow_dissector(a, method="attach")
        yield Case(att, a, b, lambda: query_netns(at).prog_ids != ())


@contextlib.contextmanager
def sockmap_prog_attach() -> Iterator[Case]:
    with (
        Map.create(ebpf.MapType.SOCKMAP, key_size=4, value_size=4, max_entries=1) as m,
        programs(PT.SK_MSG, 1) as (a, b),
    ):
        att = attach_sockmap(a, m, method="attach")
        yield Case(att, a, b,
                   lambda: prog_query(m.fileno(), AT.SK_MSG_VERDICT).prog_ids != ())


@contextlib.contextmanager
def socket_filter() -> Iterator[Case]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s, \
            programs(PT.SOCKET_FILTER) as (a, b):
        yield Case(attach_socket_filter(a, s), a, b)


@contextlib.contextmanager
def reuseport() -> Iterator[Case]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s, programs(PT.SK_REUSEPORT) as (a, b):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind(("127.0.0.1", 0))
        yield Case(attach_reuseport(a, s), a, b)


@contextlib.contextmanager
def struct_ops_update() -> Iterator[Case]:
    name = "pyebpf_" + uuid.uuid4().hex[:8]
    with _cc_programs() as progs, StructOps.create(CC, progs, fields={"name": name},
                                                    link=False) as a:
        yield Case(attach_struct_ops(a, method="update"), a, None, lambda: name in _available())


ATTACHMENT_CASES = [xdp_netlink, tc_clsact, cgroup_prog_attach, flow_dissector_prog_attach,
                    sockmap_prog_attach, socket_filter, reuseport, struct_ops_update]


@pytest.mark.parametrize("make", ATTACHMENT_CASES, ids=lambda f: f.__name__)
def test_attachment_contract(make: Factory, bpffs: str) -> None:
    with make() as case:
        assert isinstance(case.link, Attachment)
        check_attachment(case.link, attached=case.attached, bpffs=bpffs)
