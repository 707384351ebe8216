"""XDP load + attach + detach, ours against libbpf C, on a veth in a private network namespace.

One sample is the whole life of an attachment, timed end to end:

- link: ``Program.load(XDP, [r0 = XDP_PASS; exit])`` + ``attach_xdp(prog, "veth0",
  mode=GENERIC)`` (a bpf_link) + ``link.close()`` + ``prog.close()``; the C floor
  (bench/xdp_attach.c) does ``bpf_prog_load`` + ``if_nametoindex`` + ``bpf_link_create`` +
  ``close`` x2;
- netlink: the same with ``method="netlink"`` (``IFLA_XDP`` attach, then detach); the C floor
  uses libbpf's ``bpf_xdp_attach``/``bpf_xdp_detach`` (also netlink).

Both sides run in the same namespace, in alternating rounds (C batch, Python batch, ...) so
that drift hits both. Target (issue 5): ours within 1.5x of libbpf C for the link row.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import common

BENCH = "xdp_attach"
IFNAME = "veth0"


def _python_round(repeats: int) -> dict[str, list[float]]:
    import ebpf
    from ebpf import asm
    from ebpf.asm import R0
    from ebpf.link.xdp import attach_xdp

    insns = [asm.mov(R0, int(ebpf.XDPAction.PASS)), asm.exit()]
    load, xdp, generic = ebpf.Program.load, ebpf.ProgramType.XDP, ebpf.XDPMode.GENERIC

    def one_link() -> None:
        prog = load(xdp, insns, name="xdp_bench")
        link = attach_xdp(prog, IFNAME, mode=generic, method="link")
        link.close()
        prog.close()

    def one_netlink() -> None:
        prog = load(xdp, insns, name="xdp_bench")
        att = attach_xdp(prog, IFNAME, mode=generic, method="netlink")
        att.detach()
        prog.close()

    one_link()
    one_netlink()  # warm-up (imports, feature probe, caches)
    out: dict[str, list[float]] = {"link": [], "netlink": []}
    for _ in range(repeats):
        t0 = time.perf_counter()
        one_link()
        t1 = time.perf_counter()
        one_netlink()
        t2 = time.perf_counter()
        out["link"].append((t1 - t0) * 1e6)
        out["netlink"].append((t2 - t1) * 1e6)
    return out


def run(quick: bool = False) -> list[dict[str, Any]]:
    from ebpf._sys import netlink
    from ebpf.testing.netns import NetNS

    rounds, repeats = (2, 50) if quick else (5, 100)
    ours: dict[str, list[float]] = {"link": [], "netlink": []}
    c: dict[str, list[float]] = {"link": [], "netlink": []}
    c_note = ""
    with NetNS() as ns:
        netlink.veth_create(IFNAME, "veth1", netns=ns.fd)
        netlink.link_set_up(IFNAME, netns=ns.fd)
        ns_path = f"/proc/{os.getpid()}/fd/{ns.fd}"
        with ns.enter():
            for _ in range(rounds):
                if not c_note:
                    try:
                        got = common.run_c("xdp_attach", repeats, IFNAME, ns_path)
                        for k in c:
                            c[k] += got.get(k, [])
                    except common.Unavailable as e:
                        c_note = str(e)
                got_py = _python_round(repeats)
                for k in ours:
                    ours[k] += got_py[k]
    rows = []
    for kind, what in (("link", "bpf_link"), ("netlink", "netlink IFLA_XDP")):
        floor: Any = c_note or c[kind]
        tgt: dict[str, Any] = {}
        if kind == "link":
            tgt = {"target": "<= 1.5x C libbpf (issue 5)",
                   "target_spec": {"vs": "C", "max_ratio": 1.5}}
        rows.append(common.row(
            BENCH, f"XDP load + attach + detach ({what}, generic, veth)", "us", ours[kind],
            floors={"C": floor}, peers={"bcc": "n/a: not compared"}, **tgt,
        ))
    return rows


if __name__ == "__main__":
    rows = run(quick="--quick" in sys.argv)
    for r in rows:
        o = r["ours"].get("median")
        f = (r["floors"][0] if r["floors"] else {}).get("median")
        ratio = r["ratio_floor"].get("C")
        print(f"{r['name']}: ours {o:.1f} us, libbpf C {f if f is None else round(f, 1)} us, "
              f"ratio {ratio if ratio is None else round(ratio, 2)}x"
              + (f"  (target {r['target']}: {'met' if r['target_met'] else 'MISSED'})"
                 if r.get("target") else ""))
