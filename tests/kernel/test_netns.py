"""ebpf.testing.netns against the real kernel: namespaces, veth pairs, traffic helpers, cleanup."""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator

import pytest

from ebpf._sys import netlink
from ebpf.testing import netns as netns_mod
from ebpf.testing.netns import NetNS, icmp_echo, udp_listen, udp_send, veth_pair


def _cap_eff() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return 0


pytestmark = pytest.mark.skipif(
    not all(_cap_eff() >> c & 1 for c in (12, 21)),
    reason="needs CAP_NET_ADMIN and CAP_SYS_ADMIN (unshare/setns, rtnetlink changes)",
)


def current_netns() -> int:
    """Inode of the calling thread's network namespace."""
    return os.stat("/proc/thread-self/ns/net").st_ino


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.fixture
def no_fd_leak() -> Iterator[None]:
    before = open_fds()
    yield
    gc.collect()
    leaked = open_fds() - before
    # Entries may be gone by the time they are read; keep only the ones still there.
    leaked = {fd for fd in leaked if os.path.exists(f"/proc/self/fd/{fd}")}
    assert not leaked, {fd: os.readlink(f"/proc/self/fd/{fd}") for fd in leaked}


def test_netns_enter_switches_and_restores(no_fd_leak: None) -> None:
    home = current_netns()
    with NetNS() as ns:
        inode = os.fstat(ns.fd).st_ino
        assert inode != home
        with ns.enter() as entered:
            assert entered is ns
            assert current_netns() == inode
            assert {link.name for link in netlink.link_list()} == {"lo"}
            assert netlink.link_info("lo").up  # loopback is up by default
        assert current_netns() == home
        with pytest.raises(RuntimeError, match="boom"), ns.enter():
            assert current_netns() == inode
            raise RuntimeError("boom")
        assert current_netns() == home
    assert ns.closed
    ns.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        _ = ns.fd


def test_netns_enter_is_per_thread(no_fd_leak: None) -> None:
    home = current_netns()
    seen: list[int] = []
    go = threading.Event()

    def look() -> None:
        go.wait(10)
        seen.append(current_netns())

    other = threading.Thread(target=look)  # started before the switch: stays home
    other.start()
    with NetNS() as ns, ns.enter():
        inside = current_netns()
        go.set()
        other.join()
        child = threading.Thread(target=lambda: seen.append(current_netns()))
        child.start()  # started inside: inherits the namespace (clone copies it)
        child.join()
    assert seen == [home, inside]
    assert current_netns() == home


def test_netns_run(no_fd_leak: None) -> None:
    with NetNS(lo_up=False) as ns:
        inode = os.fstat(ns.fd).st_ino
        assert ns.run(current_netns) == inode
        assert not ns.run(netlink.link_info, "lo").up
        with pytest.raises(ValueError, match="no network interface"):
            ns.run(netlink.ifindex, "nope0")
        assert current_netns() != inode


def test_named_netns(no_fd_leak: None) -> None:
    name = f"ebpf-test-{os.getpid()}"
    path = f"/run/netns/{name}"
    with NetNS(name) as ns:
        assert ns.name == name and ns.path == path
        assert os.stat(path).st_ino == os.fstat(ns.fd).st_ino
        if shutil.which("ip"):
            out = subprocess.run(
                ["ip", "netns", "list"], capture_output=True, text=True, check=True
            )
            assert name in out.stdout
            out = subprocess.run(
                ["ip", "-n", name, "-o", "link"], capture_output=True, text=True, check=True
            )
            assert "lo:" in out.stdout
        with pytest.raises(FileExistsError):
            NetNS(name)
    assert not os.path.exists(path)
    with pytest.raises(ValueError):
        NetNS("a/b")


def test_anonymous_netns_path_works_with_nsenter(no_fd_leak: None) -> None:
    if shutil.which("nsenter") is None or shutil.which("ip") is None:
        pytest.skip("nsenter/ip (util-linux, iproute2) not installed")
    with NetNS() as ns:
        netlink.veth_create("nsA", "nsB", netns=ns.fd)
        out = subprocess.run(
            ["nsenter", f"--net={ns.path}", "ip", "-o", "link"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert "nsA" in out.stdout and "nsB" in out.stdout


def test_unclosed_netns_warns() -> None:
    ns = NetNS()
    fd, inode = ns.fd, os.fstat(ns.fd).st_ino
    with pytest.warns(ResourceWarning, match="unclosed NetNS"):
        del ns
        gc.collect()
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except FileNotFoundError:
        target = ""
    assert target != f"net:[{inode}]"  # the finalizer closed it


def test_close_deletes_veths_across_namespaces(no_fd_leak: None) -> None:
    with NetNS() as a, NetNS() as b:
        netlink.veth_create("xA", "xB", peer_netns=b.fd, netns=a.fd)
        assert {link.name for link in netlink.link_list(netns=b.fd)} == {"lo", "xB"}
        a.close()
        # Deleting a's end removed the peer in b at once, not when a's namespace is reaped.
        assert {link.name for link in netlink.link_list(netns=b.fd)} == {"lo"}


def test_veth_pair_traffic(no_fd_leak: None) -> None:
    with veth_pair() as pair:
        a, b = pair.a, pair.b
        assert a.ipv4.network == b.ipv4.network and a.ip != b.ip
        assert a.ip.startswith("10.77.") and a.ip.endswith(".1") and b.ip.endswith(".2")
        assert a.ns.run(netlink.ifindex, a.ifname) == a.ifindex
        assert netlink.link_info(b.ifname, netns=b.ns.fd).mac.hex(":") == b.mac
        # ICMP both ways, IPv4 and IPv6.
        assert a.run(icmp_echo, b.ip, count=3) == 3
        assert b.run(icmp_echo, a.ip, count=3) == 3
        assert a.run(icmp_echo, b.ip6, count=2) == 2
        assert b.run(icmp_echo, a.ip6, count=2) == 2
        # An address in the subnet that nobody has: no replies.
        absent = str(a.ipv4.network[7])
        assert a.run(icmp_echo, absent, count=1, timeout=0.3) == 0
        # UDP both ways, listener opened inside the other namespace.
        with b.enter():
            rx = udp_listen(0)
        with rx:
            port = rx.getsockname()[1]
            a.run(udp_send, b.ip, port, b"a->b", src_port=40000)
            data, src = rx.recvfrom(100)
            assert data == b"a->b" and src == (a.ip, 40000)
        with a.enter():
            rx6 = udp_listen(0, addr="::")
        with rx6:
            port = rx6.getsockname()[1]
            b.run(udp_send, a.ip6, port, b"b->a")
            data, src6 = rx6.recvfrom(100)
            assert data == b"b->a" and src6[0] == b.ip6
    assert pair.a.ns.closed and pair.b.ns.closed


def test_veth_pair_subnets_and_names(no_fd_leak: None) -> None:
    with veth_pair(
        ("left0", "right0"), subnet=42, ns_names=(f"ebpf-l-{os.getpid()}", f"ebpf-r-{os.getpid()}")
    ) as pair:
        assert pair.a.ifname == "left0" and pair.b.ifname == "right0"
        assert str(pair.a.ipv4) == "10.77.42.1/24" and str(pair.b.ipv6) == "fd00:77:2a::2/64"
        assert pair.a.ns.name == f"ebpf-l-{os.getpid()}"
        assert os.path.exists(pair.b.ns.path)
        assert "VethPair(left0=10.77.42.1/24" in repr(pair)
    assert not os.path.exists(f"/run/netns/ebpf-l-{os.getpid()}")
    with pytest.raises(ValueError):
        veth_pair(subnet=256)
    with pytest.raises(ValueError):
        veth_pair(("ok", "this-name-is-too-long"))


def test_veth_pair_cleans_up_when_creation_fails(
    monkeypatch: pytest.MonkeyPatch, no_fd_leak: None
) -> None:
    calls = []
    real = netlink.addr_add

    def flaky(*args: object, **kwargs: object) -> None:
        calls.append(args)
        if len(calls) == 3:  # after a is addressed, while b is being set up
            raise OSError(99, "injected failure")
        real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(netlink, "addr_add", flaky)
    names = (f"ebpf-fa-{os.getpid()}", f"ebpf-fb-{os.getpid()}")
    with pytest.raises(OSError, match="injected failure"):
        veth_pair(ns_names=names)
    assert len(calls) == 3
    for name in names:
        assert not os.path.exists(f"/run/netns/{name}")


def test_netns_creation_failure_releases_fd(
    monkeypatch: pytest.MonkeyPatch, no_fd_leak: None
) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise OSError(5, "injected")

    monkeypatch.setattr(netns_mod.netlink, "link_set_up", fail)
    name = f"ebpf-ff-{os.getpid()}"
    with pytest.raises(OSError, match="injected"):
        NetNS(name)
    assert not os.path.exists(f"/run/netns/{name}")
