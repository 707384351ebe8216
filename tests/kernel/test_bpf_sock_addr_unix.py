"""ebpf.bpf unix-socket sock_addr hooks (``cgroup/connect_unix``, Linux 6.7), on the kernel.

A program on ``connect_unix`` in a child cgroup copies the path of every connect into a
record (``r.path = ctx.sun_path``, its length from ``ctx.uaddrlen``), denies one path
(``EPERM``) and rewrites another to a listening socket (``ctx.set_sun_path``). A child
process in the cgroup sees that; one outside (and after the link closes) connects as
without the program. Kernels before 6.7 have no such hooks (the 6.1 VM skips, naming that).
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from ebpf import AttachType, platform
from ebpf.link import attach_cgroup
from ebpf.testing.modules import import_file, import_source

H = import_file(Path(__file__).with_name("_trace_link_factories.py"))

SOURCE = '''
from ebpf import bpf
from ebpf.bpf import u32, u64

class Seen(bpf.Struct):
    len: u32
    path: bpf.bytes_[100]

hits = bpf.Array(u64, max_entries=1)
seen = bpf.Array(Seen, max_entries=8)

@bpf.cgroup_sock_addr("connect_unix")
def guard(ctx) -> int:
    if ctx.family != 1:                       # AF_UNIX
        return 1
    r = Seen()
    r.len = ctx.uaddrlen
    r.path = ctx.sun_path
    n = hits[0]
    seen[n & 7] = r
    hits[0] += 1
    if bpf.helper.strncmp(r.path, 100, "{deny}") == 0:
        return 0
    if bpf.helper.strncmp(r.path, 100, "{moved}") == 0:
        if ctx.set_sun_path(b"{target}") != 0:
            return 0
    return 1
'''

CONNECT = """
import errno, socket
for path in {paths!r}:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(path)
            print("ok", s.getpeername())
        except OSError as e:
            print(errno.errorcode[e.errno])
"""


def _unix_hooks_or_skip() -> None:
    from ebpf import btf

    try:
        btf.load_kernel().find("bpf_sock_addr_set_sun_path", kind=btf.Func)
    except KeyError:
        pytest.skip(f"Linux {os.uname().release}: no unix-socket sock_addr hooks (6.7+: the "
                    "BTF has no bpf_sock_addr_set_sun_path)")


@pytest.fixture
def paths() -> Iterator[dict[str, str]]:
    with tempfile.TemporaryDirectory(prefix="ebpf-unix-") as d:
        yield {"target": f"{d}/target", "deny": f"{d}/deny", "moved": f"{d}/moved"}


@pytest.fixture
def mod(tmp_path: Path, paths: dict[str, str]) -> Iterator[ModuleType]:
    m = import_source(tmp_path, "bpf_sock_addr_unix_mod", SOURCE.format(**paths))
    yield m
    sys.modules.pop(m.__name__, None)


@pytest.mark.capabilities(platform.Capability.SYS_ADMIN)
def test_connect_unix_denies_and_rewrites(cgroup: str, mod: ModuleType,
                                          paths: dict[str, str]) -> None:
    from ebpf import bpf

    _unix_hooks_or_skip()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as srv:
        srv.bind(paths["target"])
        srv.listen(8)
        with bpf.load(mod.guard) as coll:
            assert coll.guard.expected_attach_type == AttachType.CGROUP_UNIX_CONNECT
            order = [paths["target"], paths["deny"], paths["moved"]]
            with attach_cgroup(coll.guard, cgroup):
                out = H.run_in_cgroup(cgroup, CONNECT.format(paths=order)).splitlines()
                outside = H.run_in_cgroup(os.path.dirname(cgroup),
                                          CONNECT.format(paths=order[1:])).splitlines()
            after = H.run_in_cgroup(cgroup, CONNECT.format(paths=order[1:])).splitlines()
            assert coll.hits[0] == 3                                 # the cgroup's only
            got = [coll.seen[i] for i in range(3)]
        t = paths["target"]
        assert out == [f"ok {t}", "EPERM", f"ok {t}"]     # denied; rewritten to the target
        assert outside == after == ["ENOENT", "ENOENT"]   # nothing listens on those paths
    for rec, p in zip(got, order, strict=True):
        assert rec.path == p.encode()
        # offsetof(sun_path) + the path, with its NUL as CPython passes it (or without)
        assert rec.len in (2 + len(p.encode()) + 1, 2 + len(p.encode()))


def test_unix_ctx_errors(paths: dict[str, str], tmp_path: Path) -> None:
    from ebpf import bpf

    _unix_hooks_or_skip()
    for body, message in [
        ("    x = ctx.sun_path\n    return 1\n", "copy it into a bytes_ field"),
        ("    return ctx.user_port\n", "no readable field|not"),
        ("    ctx.set_sun_path(ctx.family)\n    return 1\n", "one literal path"),
        ("    ctx.set_sun_path(b'" + "x" * 109 + "')\n    return 1\n", "1 to 108 bytes"),
    ]:
        src = ("from ebpf import bpf\n@bpf.cgroup_sock_addr('connect_unix')\n"
               "def bad(ctx) -> int:\n" + body)
        m = import_source(tmp_path, "bpf_sock_addr_unix_bad", src)
        try:
            with pytest.raises(bpf.CompileError, match=message):
                m.bad.compile()
        finally:
            sys.modules.pop(m.__name__, None)
