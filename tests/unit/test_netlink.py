"""Unit tests of the rtnetlink codec and client against a scripted fake kernel (no privileges)."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ebpf import errors
from ebpf._sys import _nlattr as nl
from ebpf._sys import netlink

# --- a scripted kernel ------------------------------------------------------------------------

Handler = Callable[[nl.Message], list[bytes]]


class FakeKernel:
    """A :class:`netlink.Transport` that answers each request through ``handler``."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.sent: list[nl.Message] = []
        self.raw: list[bytes] = []
        self.queue: list[bytes] = []
        self.closed = 0

    def send(self, data: bytes) -> None:
        self.raw.append(data)
        for msg in nl.decode_messages(data):
            self.sent.append(msg)
            self.queue.extend(self.handler(msg))

    def recv(self) -> bytes:
        return self.queue.pop(0)

    def close(self) -> None:
        self.closed += 1


def nlmsgerr(
    req: nl.Message, error: int = 0, text: str = "", *, offset: int | None = None
) -> bytes:
    """An NLMSG_ERROR reply as the kernel sends it with NETLINK_CAP_ACK + NETLINK_EXT_ACK."""
    orig = nl.NlMsgHdr(
        nlmsg_len=nl.NLMSG_HDRLEN + len(req.payload),
        nlmsg_type=req.type,
        nlmsg_flags=req.flags,
        nlmsg_seq=req.seq,
        nlmsg_pid=req.pid,
    )
    tlvs = b""
    if text:
        tlvs += nl.attr_str(nl.NLMSGERR_ATTR_MSG, text)
    if offset is not None:
        tlvs += nl.attr_u32(nl.NLMSGERR_ATTR_OFFS, offset)
    flags = nl.NLM_F_CAPPED | (nl.NLM_F_ACK_TLVS if tlvs else 0)
    body = (-error).to_bytes(4, sys.byteorder, signed=True) + bytes(orig) + tlvs
    return nl.encode_message(nl.NLMSG_ERROR, flags, req.seq, body)


def reply(req: nl.Message, msg_type: int, body: bytes, flags: int = 0) -> bytes:
    return nl.encode_message(msg_type, flags, req.seq, body)


def done(req: nl.Message, error: int = 0) -> bytes:
    body = (-error).to_bytes(4, sys.byteorder, signed=True)
    return nl.encode_message(nl.NLMSG_DONE, nl.NLM_F_MULTI, req.seq, body)


def link_msg(index: int, name: str, *, xdp: bytes = b"", kind: str = "veth") -> bytes:
    body = bytes(nl.IfInfoMsg(ifi_index=index, ifi_flags=nl.IFF_UP))
    body += nl.attr_str(nl.IFLA_IFNAME, name)
    body += nl.attr_u32(nl.IFLA_MTU, 1500)
    body += nl.attr(nl.IFLA_ADDRESS, bytes([2, 0, 0, 0, 0, index]))
    body += nl.attr_nested(nl.IFLA_LINKINFO, nl.attr_str(nl.IFLA_INFO_KIND, kind))
    if xdp:
        body += nl.attr_nested(nl.IFLA_XDP, xdp)
    return body


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Handler], FakeKernel]]:
    """Route every module-level netlink call to a FakeKernel built from a handler."""
    made: list[FakeKernel] = []

    def install(handler: Handler) -> FakeKernel:
        kernel = FakeKernel(handler)
        made.append(kernel)
        monkeypatch.setattr(netlink, "_connect", lambda netns: netlink.Netlink(transport=kernel))
        return kernel

    yield install


def ack_all(req: nl.Message) -> list[bytes]:
    return [nlmsgerr(req)]


def body_attrs(msg: nl.Message, header: type[ctypes.Structure]) -> nl.Attrs:
    return nl.Attrs(msg.payload[nl.align(ctypes.sizeof(header)) :])


# --- layout and constants ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(nl.EXPECTED_SIZES))
def test_header_sizes(name: str) -> None:
    assert ctypes.sizeof(getattr(nl, name)) == nl.EXPECTED_SIZES[name]


def test_tcmsg_offsets() -> None:
    assert nl.TcMsg.tcm_ifindex.offset == 4
    assert nl.TcMsg.tcm_handle.offset == 8
    assert nl.TcMsg.tcm_parent.offset == 12
    assert nl.TcMsg.tcm_info.offset == 16
    assert nl.IfInfoMsg.ifi_index.offset == 4
    assert nl.IfAddrMsg.ifa_index.offset == 4


def test_constants_agree_with_socket_module() -> None:
    assert nl.NETLINK_ROUTE == socket.NETLINK_ROUTE
    if hasattr(socket, "ETH_P_ALL"):  # Python >= 3.12
        assert nl.ETH_P_ALL == socket.ETH_P_ALL
    assert nl.TC_H_CLSACT == nl.TC_H_INGRESS == 0xFFFFFFF1
    assert netlink.INGRESS == 0xFFFFFFF2
    assert netlink.EGRESS == 0xFFFFFFF3


_HEADERS = (
    "netlink",
    "rtnetlink",
    "if_link",
    "veth",
    "if",
    "if_addr",
    "pkt_sched",
    "pkt_cls",
    "if_ether",
    "sched",
)


@pytest.mark.skipif(
    shutil.which("cc") is None or not Path("/usr/include/linux/rtnetlink.h").exists(),
    reason="needs a C compiler and the Linux uapi headers (/usr/include/linux)",
)
def test_constants_agree_with_uapi_headers(tmp_path: Path) -> None:
    """Compile a C program printing every constant of _nlattr and compare."""
    skip = {"NLA_TYPE_MASK", "NLMSG_HDRLEN", "NLA_HDRLEN"}
    names = [
        n
        for n in dir(nl)
        if n.isupper() and n not in skip and isinstance(getattr(nl, n), int) and n[0] != "_"
    ]
    src = "#include <sys/socket.h>\n"
    src += "".join(f"#include <linux/{h}.h>\n" for h in _HEADERS)
    src += "#include <stdio.h>\nint main(void) {\n"
    src += "".join(f'printf("%s %lld\\n", "{n}", (long long)({n}));\n' for n in names)
    src += "return 0;\n}\n"
    (tmp_path / "c.c").write_text(src)
    subprocess.run(["cc", "-o", str(tmp_path / "c"), str(tmp_path / "c.c")], check=True)
    out = subprocess.run([str(tmp_path / "c")], check=True, capture_output=True, text=True)
    got = dict(line.split() for line in out.stdout.splitlines())
    assert {n: int(v) for n, v in got.items()} == {n: getattr(nl, n) for n in names}


# --- attributes and messages -----------------------------------------------------------------


def test_attr_alignment_and_padding() -> None:
    data = nl.attr(7, b"abc")
    assert len(data) == 8
    assert int.from_bytes(data[:2], sys.byteorder) == 7  # nla_len excludes padding
    assert int.from_bytes(data[2:4], sys.byteorder) == 7
    assert data[4:] == b"abc\0"
    assert len(nl.attr(1)) == 4
    assert len(nl.attr(1, b"12345")) == 12


def test_attr_scalar_encodings() -> None:
    assert nl.attr_u32(3, 0x01020304)[4:] == (0x01020304).to_bytes(4, sys.byteorder)
    assert nl.attr_s32(1, -1)[4:] == b"\xff\xff\xff\xff"
    assert nl.attr_u8(2, 5) == nl.attr(2, b"\x05")
    assert nl.attr_u16(2, 5)[4:6] == (5).to_bytes(2, sys.byteorder)
    assert nl.attr_str(7, "cls")[4:8] == b"cls\0"
    with pytest.raises(ValueError, match="NUL"):
        nl.attr_str(7, "a\0b")
    with pytest.raises(ValueError, match="too long"):
        nl.attr(1, b"x" * 70000)


def test_nested_flag_set_and_masked_on_decode() -> None:
    data = nl.attr_nested(nl.IFLA_XDP, nl.attr_s32(nl.IFLA_XDP_FD, 9), nl.attr_u32(3, 2))
    raw_type = int.from_bytes(data[2:4], sys.byteorder)
    assert raw_type == nl.IFLA_XDP | nl.NLA_F_NESTED
    attrs = nl.Attrs(data)
    assert nl.IFLA_XDP in attrs
    inner = attrs.nested(nl.IFLA_XDP)
    assert inner.s32(nl.IFLA_XDP_FD) == 9
    assert inner.u32(nl.IFLA_XDP_FLAGS) == 2
    assert inner.u32(99) is None
    assert attrs.nested(12345).keys() == []


def test_attr_round_trip_many() -> None:
    stream = b"".join(nl.attr(t, bytes(range(t))) for t in range(1, 12))
    assert list(nl.iter_attrs(stream)) == [(t, bytes(range(t))) for t in range(1, 12)]


def test_attr_decode_rejects_bad_length() -> None:
    bad = bytes(nl.NlAttr(nla_len=40, nla_type=1)) + b"abcd"
    with pytest.raises(nl.NetlinkDecodeError):
        list(nl.iter_attrs(bad))
    with pytest.raises(nl.NetlinkDecodeError):
        list(nl.iter_attrs(bytes(nl.NlAttr(nla_len=2, nla_type=1))))
    with pytest.raises(nl.NetlinkDecodeError, match="expected 4"):
        nl.Attrs(nl.attr(1, b"\1")).u32(1)


def test_message_round_trip_and_framing() -> None:
    one = nl.encode_message(nl.RTM_GETLINK, nl.NLM_F_REQUEST, 7, b"abcde")
    assert len(one) == 24  # header 16 + body padded to 8
    hdr = nl.NlMsgHdr.from_buffer_copy(one[:16])
    assert (hdr.nlmsg_len, hdr.nlmsg_type, hdr.nlmsg_seq) == (24, nl.RTM_GETLINK, 7)
    two = nl.encode_message(nl.NLMSG_DONE, nl.NLM_F_MULTI, 8, b"\0\0\0\0")
    msgs = nl.decode_messages(one + two)
    assert [m.seq for m in msgs] == [7, 8]
    assert msgs[0].payload == b"abcde\0\0\0"
    with pytest.raises(nl.NetlinkDecodeError):
        nl.decode_messages(one[:20])
    with pytest.raises(nl.NetlinkDecodeError, match="trailing"):
        nl.decode_messages(one + b"\1\2\3")


def test_ext_ack_parsing_capped_and_uncapped() -> None:
    req = nl.Message(nl.RTM_NEWQDISC, nl.NLM_F_REQUEST, 5, 0, b"x" * 24)
    ack = nl.decode_error(nl.decode_messages(nlmsgerr(req, errno.EEXIST, "Exclusivity flag on"))[0])
    assert ack == nl.Ack(errno.EEXIST, "Exclusivity flag on", None, None)

    # Uncapped: the whole request is echoed before the TLVs.
    orig = nl.encode_message(req.type, req.flags, req.seq, req.payload)
    tlvs = nl.attr_str(nl.NLMSGERR_ATTR_MSG, "bad thing\n") + nl.attr_u32(nl.NLMSGERR_ATTR_OFFS, 36)
    tlvs += nl.attr_u32(nl.NLMSGERR_ATTR_MISS_TYPE, 6)
    body = (-errno.EINVAL).to_bytes(4, sys.byteorder, signed=True) + orig + tlvs
    msg = nl.decode_messages(nl.encode_message(nl.NLMSG_ERROR, nl.NLM_F_ACK_TLVS, 5, body))[0]
    assert nl.decode_error(msg) == nl.Ack(errno.EINVAL, "bad thing", 36, 6)

    # No TLVs at all.
    plain = (-errno.ENOENT).to_bytes(4, sys.byteorder, signed=True) + orig
    msg = nl.decode_messages(nl.encode_message(nl.NLMSG_ERROR, 0, 5, plain))[0]
    assert nl.decode_error(msg) == nl.Ack(errno.ENOENT)
    with pytest.raises(nl.NetlinkDecodeError):
        nl.decode_error(nl.Message(nl.NLMSG_ERROR, 0, 5, 0, b"\0\0"))


def test_done_status() -> None:
    req = nl.Message(nl.RTM_GETLINK, 0, 3, 0, b"")
    assert nl.decode_done(nl.decode_messages(done(req))[0]).error == 0
    assert nl.decode_done(nl.decode_messages(done(req, errno.EMSGSIZE))[0]).error == errno.EMSGSIZE
    assert nl.decode_done(nl.Message(nl.NLMSG_DONE, 0, 3, 0, b"")).error == 0


def test_tc_handle_helpers() -> None:
    assert nl.tc_h_make(0xFFFF0000, 0xFFF2) == 0xFFFFFFF2
    assert nl.htons(nl.ETH_P_ALL) == int.from_bytes(b"\x00\x03", sys.byteorder)
    assert netlink.tc_parent("ingress") == netlink.INGRESS
    assert netlink.tc_parent("egress") == netlink.EGRESS
    assert netlink.tc_parent(0x10001) == 0x10001
    with pytest.raises(ValueError):
        netlink.tc_parent("sideways")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        netlink.tc_parent(True)


# --- the client against the fake kernel ------------------------------------------------------


def test_request_sets_flags_and_returns_replies() -> None:
    kernel = FakeKernel(lambda req: [reply(req, nl.RTM_NEWLINK, link_msg(3, "v0")), nlmsgerr(req)])
    with netlink.Netlink(transport=kernel) as conn:
        out = conn.request(nl.RTM_GETLINK, netlink._ifinfomsg(3))
        assert [m.type for m in out] == [nl.RTM_NEWLINK]
        assert kernel.sent[0].flags == nl.NLM_F_REQUEST | nl.NLM_F_ACK
        conn.request(nl.RTM_GETLINK, netlink._ifinfomsg(3))
        assert [m.seq for m in kernel.sent] == [1, 2]
    assert kernel.closed == 1
    conn.close()  # idempotent
    assert kernel.closed == 1
    with pytest.raises(ValueError, match="closed"):
        conn.request(nl.RTM_GETLINK, b"")


def test_request_ignores_stale_sequence_numbers() -> None:
    def handler(req: nl.Message) -> list[bytes]:
        stale = nl.Message(req.type, req.flags, req.seq + 100, 0, req.payload)
        return [nlmsgerr(stale, errno.EPERM) + nlmsgerr(req)]

    with netlink.Netlink(transport=FakeKernel(handler)) as conn:
        assert conn.request(nl.RTM_SETLINK, b"") == []


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (errno.EBUSY, errors.BusyError),
        (errno.EPERM, errors.BPFPermissionError),
        (errno.EEXIST, errors.SyscallError),
        (errno.EOPNOTSUPP, errors.SyscallError),
    ],
)
def test_error_mapping_and_detail(
    fake: Callable[[Handler], FakeKernel], code: int, cls: type
) -> None:
    fake(lambda req: [nlmsgerr(req, code, "Can't replace active BPF XDP link")])
    with pytest.raises(cls) as info:
        netlink.xdp_attach(4, 10, nl.XDP_FLAGS_SKB_MODE)
    err = info.value
    assert isinstance(err, errors.SyscallError) and isinstance(err, OSError)
    assert err.errno == code
    assert err.cmd == "RTM_SETLINK"
    assert err.detail == "Can't replace active BPF XDP link"
    assert str(err).startswith("RTM_SETLINK: ")
    assert "Can't replace active BPF XDP link" in str(err)
    if code == errno.EPERM:
        assert "CAP_NET_ADMIN" in err.hint


def test_error_without_message_uses_offset(fake: Callable[[Handler], FakeKernel]) -> None:
    fake(lambda req: [nlmsgerr(req, errno.EINVAL, offset=40)])
    with pytest.raises(errors.SyscallError, match="offset 40") as info:
        netlink.link_set_up(2)
    assert info.value.cmd == "RTM_SETLINK"


def test_xdp_attach_message(fake: Callable[[Handler], FakeKernel]) -> None:
    kernel = fake(ack_all)
    netlink.xdp_attach(4, 10, nl.XDP_FLAGS_DRV_MODE)
    (msg,) = kernel.sent
    assert msg.type == nl.RTM_SETLINK
    assert msg.flags == nl.NLM_F_REQUEST | nl.NLM_F_ACK
    ifi = nl.IfInfoMsg.from_buffer_copy(msg.payload[:16])
    assert ifi.ifi_index == 4
    xdp = body_attrs(msg, nl.IfInfoMsg).nested(nl.IFLA_XDP)
    assert xdp.s32(nl.IFLA_XDP_FD) == 10
    assert xdp.u32(nl.IFLA_XDP_FLAGS) == nl.XDP_FLAGS_DRV_MODE
    assert nl.IFLA_XDP_EXPECTED_FD not in xdp
    # Golden bytes: ifinfomsg, then IFLA_XDP|NESTED { FD=10, FLAGS=4 } (R3 of the research).
    le = sys.byteorder == "little"
    if le:
        assert msg.payload[16:] == bytes.fromhex("14002b8008000100 0a00000008000300 04000000")


def test_xdp_replace_and_detach(fake: Callable[[Handler], FakeKernel]) -> None:
    kernel = fake(ack_all)
    netlink.xdp_attach(4, 11, nl.XDP_FLAGS_SKB_MODE, expected_fd=10)
    netlink.xdp_detach(4, nl.XDP_FLAGS_SKB_MODE)
    netlink.xdp_detach(4)
    first, second, third = (body_attrs(m, nl.IfInfoMsg).nested(nl.IFLA_XDP) for m in kernel.sent)
    assert first.u32(nl.IFLA_XDP_FLAGS) == nl.XDP_FLAGS_SKB_MODE | nl.XDP_FLAGS_REPLACE
    assert first.s32(nl.IFLA_XDP_EXPECTED_FD) == 10
    assert second.s32(nl.IFLA_XDP_FD) == -1
    assert second.u32(nl.IFLA_XDP_FLAGS) == nl.XDP_FLAGS_SKB_MODE
    assert third.s32(nl.IFLA_XDP_FD) == -1
    assert nl.IFLA_XDP_FLAGS not in third


def test_xdp_argument_checks_happen_before_any_syscall(
    fake: Callable[[Handler], FakeKernel],
) -> None:
    kernel = fake(ack_all)
    with pytest.raises(ValueError, match="at most one"):
        netlink.xdp_attach(4, 10, nl.XDP_FLAGS_SKB_MODE | nl.XDP_FLAGS_DRV_MODE)
    with pytest.raises(ValueError, match="unknown XDP flags"):
        netlink.xdp_attach(4, 10, 0x100)
    with pytest.raises(ValueError, match="program fd"):
        netlink.xdp_attach(4, -1)
    with pytest.raises(ValueError, match="interface index"):
        netlink.xdp_attach(0, 10)
    with pytest.raises(ValueError, match="invalid interface name"):
        netlink.xdp_attach("way-too-long-name0", 10)
    with pytest.raises(TypeError):
        netlink.xdp_attach(True, 10)
    assert kernel.sent == []


def test_xdp_query_decodes_ids(fake: Callable[[Handler], FakeKernel]) -> None:
    xdp = (
        nl.attr_u8(nl.IFLA_XDP_ATTACHED, nl.XDP_ATTACHED_SKB)
        + nl.attr_u32(nl.IFLA_XDP_SKB_PROG_ID, 77)
        + nl.attr_u32(nl.IFLA_XDP_PROG_ID, 77)
    )
    fake(lambda req: [reply(req, nl.RTM_NEWLINK, link_msg(4, "v0", xdp=xdp)), nlmsgerr(req)])
    info = netlink.xdp_query(4)
    assert info == netlink.XDPInfo(netlink.XDPAttached.SKB, 77, 0, 77, 0)


def test_link_info_decodes(fake: Callable[[Handler], FakeKernel]) -> None:
    fake(lambda req: [reply(req, nl.RTM_NEWLINK, link_msg(4, "v0")), nlmsgerr(req)])
    info = netlink.link_info(4)
    assert (info.index, info.name, info.mtu, info.kind) == (4, "v0", 1500, "veth")
    assert info.address == "02:00:00:00:00:04"
    assert info.mac == bytes([2, 0, 0, 0, 0, 4])
    assert info.up
    assert info.xdp.attached is netlink.XDPAttached.NONE


def test_ifindex_by_name(fake: Callable[[Handler], FakeKernel]) -> None:
    def handler(req: nl.Message) -> list[bytes]:
        name = body_attrs(req, nl.IfInfoMsg).str(nl.IFLA_IFNAME)
        if name == "v0":
            return [reply(req, nl.RTM_NEWLINK, link_msg(9, "v0")), nlmsgerr(req)]
        return [nlmsgerr(req, errno.ENODEV, "")]

    kernel = fake(handler)
    assert netlink.ifindex("v0") == 9
    with pytest.raises(ValueError, match="no network interface named 'v1'"):
        netlink.ifindex("v1")
    sent = len(kernel.sent)
    assert netlink.ifindex(5) == 5
    for bad in ("", "a/b", "a b", "x" * 16, ".."):
        with pytest.raises(ValueError):
            netlink.ifindex(bad)
    with pytest.raises(ValueError):
        netlink.ifindex(-3)
    assert len(kernel.sent) == sent  # none of those asked the kernel


def _filter_body(
    index: int, handle: int, prio: int, proto: int, *, prog_id: int, name: str
) -> bytes:
    tcm = nl.TcMsg(
        tcm_ifindex=index,
        tcm_handle=handle,
        tcm_parent=netlink.INGRESS,
        tcm_info=(prio << 16) | nl.htons(proto),
    )
    opts = (
        nl.attr_u32(nl.TCA_BPF_ID, prog_id)
        + nl.attr_str(nl.TCA_BPF_NAME, name)
        + nl.attr_u32(nl.TCA_BPF_FLAGS, nl.TCA_BPF_FLAG_ACT_DIRECT)
        + nl.attr(nl.TCA_BPF_TAG, b"\x01" * 8)
    )
    body = bytes(tcm) + nl.attr_str(nl.TCA_KIND, "bpf")
    if handle:
        body += nl.attr_nested(nl.TCA_OPTIONS, opts)
    return body


def test_filter_add_message_and_echo(fake: Callable[[Handler], FakeKernel]) -> None:
    def handler(req: nl.Message) -> list[bytes]:
        echo = _filter_body(4, 1, 0xC000, nl.ETH_P_IP, prog_id=42, name="cls")
        return [reply(req, nl.RTM_NEWTFILTER, echo) + nlmsgerr(req)]

    kernel = fake(handler)
    info = netlink.filter_add(4, "ingress", 10, name="cls", protocol=nl.ETH_P_IP)
    assert info == netlink.FilterInfo(
        ifindex=4,
        parent=netlink.INGRESS,
        handle=1,
        priority=0xC000,
        protocol=nl.ETH_P_IP,
        kind="bpf",
        prog_id=42,
        name="cls",
        direct_action=True,
        tag=b"\x01" * 8,
    )
    (msg,) = kernel.sent
    assert msg.type == nl.RTM_NEWTFILTER
    assert msg.flags & nl.NLM_F_CREATE and msg.flags & nl.NLM_F_EXCL and msg.flags & nl.NLM_F_ECHO
    tcm = nl.TcMsg.from_buffer_copy(msg.payload[:20])
    assert (tcm.tcm_ifindex, tcm.tcm_parent, tcm.tcm_handle) == (4, 0xFFFFFFF2, 0)
    # Protocol goes out in network byte order in the low 16 bits of tcm_info.
    assert tcm.tcm_info.to_bytes(4, sys.byteorder)[:2] == b"\x08\x00" or sys.byteorder == "big"
    attrs = body_attrs(msg, nl.TcMsg)
    assert attrs.str(nl.TCA_KIND) == "bpf"
    opts = attrs.nested(nl.TCA_OPTIONS)
    assert opts.u32(nl.TCA_BPF_FD) == 10
    assert opts.str(nl.TCA_BPF_NAME) == "cls"
    assert opts.u32(nl.TCA_BPF_FLAGS) == nl.TCA_BPF_FLAG_ACT_DIRECT


def test_filter_add_replace_flag_and_checks(fake: Callable[[Handler], FakeKernel]) -> None:
    def handler(req: nl.Message) -> list[bytes]:
        return [
            reply(req, nl.RTM_NEWTFILTER, _filter_body(4, 5, 3, 3, prog_id=1, name="")),
            nlmsgerr(req),
        ]

    kernel = fake(handler)
    netlink.filter_add(4, "egress", 10, priority=3, handle=5, replace=True, direct_action=False)
    msg = kernel.sent[0]
    assert msg.flags & nl.NLM_F_REPLACE and not msg.flags & nl.NLM_F_EXCL
    opts = body_attrs(msg, nl.TcMsg).nested(nl.TCA_OPTIONS)
    assert nl.TCA_BPF_FLAGS not in opts and nl.TCA_BPF_NAME not in opts
    for kwargs in ({"priority": 70000}, {"protocol": 0x10000}, {"handle": -1}):
        with pytest.raises(ValueError):
            netlink.filter_add(4, "egress", 10, **kwargs)  # type: ignore[arg-type]
    assert len(kernel.sent) == 1


def test_filter_list_skips_chain_heads(fake: Callable[[Handler], FakeKernel]) -> None:
    def handler(req: nl.Message) -> list[bytes]:
        assert req.flags == nl.NLM_F_REQUEST | nl.NLM_F_DUMP
        head = _filter_body(4, 0, 1, nl.ETH_P_ALL, prog_id=0, name="")
        one = _filter_body(4, 1, 1, nl.ETH_P_ALL, prog_id=42, name="a")
        two = _filter_body(4, 2, 2, nl.ETH_P_IPV6, prog_id=43, name="b")
        multi = nl.NLM_F_MULTI
        return [
            reply(req, nl.RTM_NEWTFILTER, head, multi) + reply(req, nl.RTM_NEWTFILTER, one, multi),
            reply(req, nl.RTM_NEWTFILTER, two, multi) + done(req),
        ]

    fake(handler)
    got = netlink.filter_list(4, "ingress")
    assert [(f.handle, f.priority, f.protocol, f.prog_id, f.name) for f in got] == [
        (1, 1, nl.ETH_P_ALL, 42, "a"),
        (2, 2, nl.ETH_P_IPV6, 43, "b"),
    ]


def test_dump_retries_when_interrupted() -> None:
    calls = []

    def handler(req: nl.Message) -> list[bytes]:
        calls.append(req.seq)
        flags = nl.NLM_F_MULTI | (nl.NLM_F_DUMP_INTR if len(calls) == 1 else 0)
        return [reply(req, nl.RTM_NEWLINK, link_msg(1, "lo"), flags) + done(req)]

    with netlink.Netlink(transport=FakeKernel(handler)) as conn:
        assert len(conn.dump(nl.RTM_GETLINK, netlink._ifinfomsg())) == 1
    assert calls == [1, 2]

    def always(req: nl.Message) -> list[bytes]:
        return [reply(req, nl.RTM_NEWLINK, b"", nl.NLM_F_MULTI | nl.NLM_F_DUMP_INTR) + done(req)]

    with (
        netlink.Netlink(transport=FakeKernel(always)) as conn,
        pytest.raises(errors.SyscallError, match="NLM_F_DUMP_INTR"),
    ):
        conn.dump(nl.RTM_GETLINK, netlink._ifinfomsg())


def test_dump_error_in_done(fake: Callable[[Handler], FakeKernel]) -> None:
    fake(lambda req: [done(req, errno.EMSGSIZE)])
    with pytest.raises(errors.SyscallError) as info:
        netlink.link_list()
    assert info.value.errno == errno.EMSGSIZE
    assert info.value.cmd == "RTM_GETLINK"


def test_filter_del_message(fake: Callable[[Handler], FakeKernel]) -> None:
    kernel = fake(ack_all)
    netlink.filter_del(4, "egress", 7, 3, nl.ETH_P_IP)
    tcm = nl.TcMsg.from_buffer_copy(kernel.sent[0].payload[:20])
    assert kernel.sent[0].type == nl.RTM_DELTFILTER
    assert (tcm.tcm_handle, tcm.tcm_parent) == (3, netlink.EGRESS)
    assert tcm.tcm_info == (7 << 16) | nl.htons(nl.ETH_P_IP)
    with pytest.raises(ValueError, match="priority"):
        netlink.filter_del(4, "egress", 0)


def test_clsact_add_exist_ok(fake: Callable[[Handler], FakeKernel]) -> None:
    existing = [("clsact", nl.TC_H_CLSACT)]

    def handler(req: nl.Message) -> list[bytes]:
        if req.type == nl.RTM_NEWQDISC:
            return [nlmsgerr(req, errno.EEXIST, "Exclusivity flag on, cannot modify")]
        msgs = b""
        for kind, parent in existing:
            tcm = nl.TcMsg(tcm_ifindex=4, tcm_handle=0xFFFF0000, tcm_parent=parent)
            body = bytes(tcm) + nl.attr_str(nl.TCA_KIND, kind)
            msgs += reply(req, nl.RTM_NEWQDISC, body, nl.NLM_F_MULTI)
        return [msgs + done(req)]

    kernel = fake(handler)
    assert netlink.clsact_add(4) is False
    req = kernel.sent[0]
    tcm = nl.TcMsg.from_buffer_copy(req.payload[:20])
    assert (tcm.tcm_handle, tcm.tcm_parent) == (0xFFFF0000, 0xFFFFFFF1)
    assert req.flags & nl.NLM_F_EXCL and req.flags & nl.NLM_F_CREATE
    with pytest.raises(errors.SyscallError, match="Exclusivity") as info:
        netlink.clsact_add(4, exist_ok=False)
    assert info.value.cmd == "RTM_NEWQDISC" and info.value.errno == errno.EEXIST
    existing[:] = [("ingress", nl.TC_H_INGRESS)]  # something else holds the slot
    with pytest.raises(errors.SyscallError, match="Exclusivity"):
        netlink.clsact_add(4)


def test_clsact_del_missing_ok(fake: Callable[[Handler], FakeKernel]) -> None:
    fake(lambda req: [nlmsgerr(req, errno.ENOENT, "Cannot find specified qdisc")])
    netlink.clsact_del(4, missing_ok=True)
    with pytest.raises(errors.SyscallError, match="Cannot find") as info:
        netlink.clsact_del(4)
    assert info.value.cmd == "RTM_DELQDISC"


def test_veth_create_message(fake: Callable[[Handler], FakeKernel]) -> None:
    def handler(req: nl.Message) -> list[bytes]:
        if req.type == nl.RTM_GETLINK:
            return [reply(req, nl.RTM_NEWLINK, link_msg(12, "va")), nlmsgerr(req)]
        return [nlmsgerr(req)]

    kernel = fake(handler)
    assert netlink.veth_create("va", "vb", peer_netns=33) == 12
    new = kernel.sent[0]
    assert new.type == nl.RTM_NEWLINK
    assert new.flags & nl.NLM_F_CREATE and new.flags & nl.NLM_F_EXCL
    attrs = body_attrs(new, nl.IfInfoMsg)
    assert attrs.str(nl.IFLA_IFNAME) == "va"
    info = attrs.nested(nl.IFLA_LINKINFO)
    assert info.str(nl.IFLA_INFO_KIND) == "veth"
    peer = info.nested(nl.IFLA_INFO_DATA).raw(nl.VETH_INFO_PEER)
    assert peer is not None
    peer_attrs = nl.Attrs(peer[16:])
    assert peer_attrs.str(nl.IFLA_IFNAME) == "vb"
    assert peer_attrs.u32(nl.IFLA_NET_NS_FD) == 33
    with pytest.raises(ValueError):
        netlink.veth_create("ok", "bad/name")


def test_addr_add_messages(fake: Callable[[Handler], FakeKernel]) -> None:
    kernel = fake(ack_all)
    netlink.addr_add(4, "10.77.3.1/24")
    netlink.addr_add(4, "fd00:77::1/64")
    v4, v6 = kernel.sent
    ifa4 = nl.IfAddrMsg.from_buffer_copy(v4.payload[:8])
    assert (ifa4.ifa_family, ifa4.ifa_prefixlen, ifa4.ifa_index, ifa4.ifa_flags) == (
        socket.AF_INET,
        24,
        4,
        0,
    )
    a4 = body_attrs(v4, nl.IfAddrMsg)
    assert a4.raw(nl.IFA_LOCAL) == a4.raw(nl.IFA_ADDRESS) == bytes([10, 77, 3, 1])
    ifa6 = nl.IfAddrMsg.from_buffer_copy(v6.payload[:8])
    assert (ifa6.ifa_family, ifa6.ifa_prefixlen, ifa6.ifa_flags) == (
        socket.AF_INET6,
        64,
        nl.IFA_F_NODAD,
    )
    with pytest.raises(ValueError):
        netlink.addr_add(4, "10.77.3.300/24")
    assert len(kernel.sent) == 2


# --- fuzz: decoders raise ParseError or succeed -------------------------------------------------


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_fuzz_decode_messages(data: bytes) -> None:
    try:
        msgs = nl.decode_messages(data)
    except errors.ParseError:
        return
    for msg in msgs:
        if msg.type == nl.NLMSG_ERROR:
            with contextlib.suppress(errors.ParseError):
                nl.decode_error(msg)
        else:
            nl.decode_done(msg)


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_fuzz_attrs(data: bytes) -> None:
    try:
        attrs = nl.Attrs(data)
    except errors.ParseError as exc:
        assert exc.offset is not None
        return
    for kind in attrs:
        with contextlib.suppress(errors.ParseError):
            attrs.u32(kind)
        attrs.str(kind)


@settings(max_examples=200)
@given(st.lists(st.tuples(st.integers(1, 0x3FFF), st.binary(max_size=40)), max_size=8))
def test_attr_stream_round_trip_property(items: list[tuple[int, bytes]]) -> None:
    stream = b"".join(nl.attr(kind, payload) for kind, payload in items)
    assert len(stream) % 4 == 0
    assert list(nl.iter_attrs(stream)) == items
