"""``@bpf.usdt`` on a probe whose sites place its argument differently.

A small C program built here with gcc (its ``.note.stapsdt`` entries written by inline asm,
as ``<sys/sdt.h>`` would, so systemtap-sdt-dev is not needed) has one USDT probe,
``ebpf_lay:val``, at three sites: a constant (``-4@$4242``), a register (the loop index
times 3) and a stack slot (``-8@-N(%rbp)``-like, a ``volatile long long``). The program,
compiled from Python, carries the fetch of each layout and picks it by the attach cookie
that ``attach_usdt`` gives each site (its layout number); all three values arrive.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ebpf import bpf, errors
from ebpf.bpf import i64, u32, u64
from ebpf.link.uprobe import attach_usdt, usdt_layouts, usdt_probes
from ebpf.testing.modules import import_file

H = import_file(Path(__file__).with_name("_trace_link_factories.py"))

SOURCE = r"""
#include <stdio.h>
#include <string.h>
#define EBPF_USDT1(provider, name, con, arg)                                              \
    __asm__ __volatile__(                                                                 \
        "990: nop\n"                                                                      \
        ".pushsection .note.stapsdt,\"?\",\"note\"\n"                                     \
        ".balign 4\n"                                                                     \
        ".4byte 992f-991f, 994f-993f, 3\n"                                                \
        "991: .asciz \"stapsdt\"\n"                                                       \
        "992: .balign 4\n"                                                                \
        "993: .8byte 990b\n"                                                              \
        ".8byte _.stapsdt.base\n"                                                         \
        ".8byte 0\n"                                                                      \
        ".asciz \"" #provider "\"\n"                                                      \
        ".asciz \"" #name "\"\n"                                                          \
        ".asciz \"%n[size]@%[val]\"\n"                                                    \
        "994: .balign 4\n"                                                                \
        ".popsection\n"                                                                   \
        ".ifndef _.stapsdt.base\n"                                                        \
        ".pushsection .stapsdt.base,\"aG\",\"progbits\",.stapsdt.base,comdat\n"           \
        ".weak _.stapsdt.base\n"                                                          \
        ".hidden _.stapsdt.base\n"                                                        \
        "_.stapsdt.base: .space 1\n"                                                      \
        ".size _.stapsdt.base, 1\n"                                                       \
        ".popsection\n"                                                                   \
        ".endif\n"                                                                        \
        :                                                                                 \
        : [size] "n"((int)sizeof(arg)), [val] con(arg))

__attribute__((noinline)) static void fire(int n)
{
    for (int i = 0; i < n; i++) {
        volatile long long slot = -1000LL * (i + 1);
        EBPF_USDT1(ebpf_lay, val, "i", (int)4242);
        EBPF_USDT1(ebpf_lay, val, "r", i * 3);
        EBPF_USDT1(ebpf_lay, val, "m", slot);
    }
}

int main(void)
{
    char line[64];
    int n;
    setvbuf(stdout, NULL, _IOLBF, 0);
    while (fgets(line, sizeof line, stdin)) {
        if (strncmp(line, "ping", 4) == 0)
            puts("pong");
        else if (sscanf(line, "fire %d", &n) == 1) {
            fire(n);
            printf("%d\n", n);
        } else if (strncmp(line, "quit", 4) == 0)
            return 0;
        else
            puts("?");
    }
    return 0;
}
"""

seen = bpf.Hash(i64, u64, max_entries=32)
seen_pid = bpf.var(u32, 0)
N = 3


@pytest.fixture(scope="module")
def layouts_bin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The three-site test binary (x86-64 only: the note uses 8-byte addresses and AT&T
    operands), removed after the module."""
    import platform

    if platform.machine() != "x86_64":
        pytest.skip("the hand-written USDT note of this test is x86-64 assembly")
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.skip("a C compiler (gcc) to build the USDT test binary")
    d = tmp_path_factory.mktemp("usdt-layouts")
    src, out = d / "layouts.c", d / "ebpf_usdt_layouts"
    src.write_text(SOURCE)
    subprocess.run([cc, "-O2", "-g0", "-o", str(out), str(src)], check=True,
                   capture_output=True)
    yield str(out)
    shutil.rmtree(d, ignore_errors=True)


def test_the_probe_has_three_layouts(layouts_bin: str) -> None:
    sites = [p for p in usdt_probes(layouts_bin) if (p.provider, p.name) == ("ebpf_lay", "val")]
    assert len(sites) == 3
    layouts, index = usdt_layouts(sites)
    assert sorted(lay[0].kind for lay in layouts) == ["const", "deref", "reg"]
    assert sorted(index) == [0, 1, 2]


def test_usdt_sites_with_different_layouts_all_arrive(layouts_bin: str) -> None:
    @bpf.usdt(layouts_bin, "ebpf_lay", "val")
    def on_val(ctx: Any) -> int:
        if bpf.get_current_pid_tgid() >> 32 == seen_pid:
            seen[ctx.arg0] += 1
        return 0

    with H.Target(layouts_bin) as t, bpf.load(on_val, constants={"seen_pid": t.pid}) as coll:
        try:
            links = attach_usdt(coll.on_val, layouts_bin, "ebpf_lay", "val", pid=t.pid)
        except errors.NotSupportedError as e:  # bpf_cookie on perf events: 5.15
            pytest.skip(str(e))
        with links:
            assert t.ask(f"fire {N}") == str(N)
        got = dict(coll.seen.items())
        want = {4242: N} | {3 * i: 1 for i in range(N)} | {-1000 * (i + 1): 1
                                                            for i in range(N)}
        assert got == want, got
        assert t.ask("fire 1") == "1"  # detached
        assert coll.seen[4242] == N


def test_usdt_argument_type_widens_when_layouts_disagree(layouts_bin: str) -> None:
    from ebpf.bpf._kinds import _USDTAccess

    acc = _USDTAccess(layouts_bin, "ebpf_lay", "val")
    assert acc.fields["arg0"].type is i64  # an int at two sites, a long long at one
