"""The README's kernel table: each attach family or map/program group x kernel.

Tests are put in groups by their node id (first matching rule of :data:`GROUPS`); a cell says
how many passed and, for skips and failures, why (the distinct reasons, shortened). The table
sits in the README between ``<!-- kernel-table -->`` and ``<!-- /kernel-table -->``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from .suite import Outcome

#: (group label, regex on the test's node id). First match wins; unmatched tests are not shown.
GROUPS: tuple[tuple[str, str], ...] = (
    ("kprobe_multi", r"test_link_trace_kprobe\.py::.*kprobe_multi"),
    ("kprobe / kretprobe", r"test_link_trace_kprobe\.py|::test_kprobe_|kprobe"),
    ("fentry / fexit", r"test_link_trace_btf\.py::test_f(entry|exit)|fentry|fexit"),
    ("fmod_ret", r"fmod_ret"),
    ("freplace", r"freplace"),
    ("LSM_CGROUP", r"lsm_cgroup|LSM_CGROUP"),
    ("LSM", r"lsm|LSM"),
    ("uprobe_multi", r"test_link_uprobe\.py::.*multi"),
    ("uprobe / USDT", r"test_link_uprobe\.py"),
    ("tracepoint / raw_tp / tp_btf", r"test_link_trace\.py|raw_tracepoint|tracepoint"),
    ("perf_event", r"test_link_perf\.py|test_perf\.py"),
    ("XDP", r"test_link_xdp\.py|xdp"),
    ("TC / TCX / netkit", r"test_link_tc\.py|test_netlink_kernel\.py|tcx|netkit"),
    ("cgroup", r"test_link_cgroup\.py"),
    ("socket / sockmap / sk_lookup", r"test_link_socket\.py|sockmap|sk_lookup"),
    ("netns / flow dissector", r"test_link_netns\.py|test_netns"),
    ("netfilter", r"test_link_netfilter\.py"),
    ("struct_ops", r"test_link_struct_ops\.py|struct_ops"),
    ("iterators", r"test_link_iter\.py"),
    ("maps", r"test_maps"),
    ("ring buffer / perf buffer", r"test_ringbuf|test_consumer\.py"),
    ("programs / test_run",
     r"test_programs\.py|test_asm_semantics\.py|test_syscall\.py|test_testrun|test_variables\.py"),
    ("ELF / CO-RE / corpus", r"test_elf_load\.py|test_corpus\.py"),
    ("Python front end", r"test_bpf_"),
    ("BTF", r"test_btf"),
    ("hardening", r"test_hardening_"),
    ("features", r"test_features\.py"),
    ("tools / exporter", r"test_tools|test_exporter\.py|test_histogram\.py"),
    ("in-program libraries", r"test_lib_"),
    ("CLI / examples / docs", r"test_cli\.py|test_examples\.py|test_docs\.py"),
    ("script / catalog / conformance",
     r"test_script\.py|test_catalog\.py|test_link_conformance\.py|test_link_trace_btf\.py"),
)

BEGIN, END = "<!-- kernel-table -->", "<!-- /kernel-table -->"


def group_of(nodeid: str) -> str | None:
    if not nodeid.startswith("tests/kernel/"):
        return None
    for label, rx in GROUPS:
        if re.search(rx, nodeid):
            return label
    return None


def _short(reason: str, n: int = 70) -> str:
    reason = " ".join(reason.split()).replace("|", "/")
    return reason if len(reason) <= n else reason[: n - 1] + "…"


def cell(outcomes: Sequence[Outcome]) -> str:
    if not outcomes:
        return "—"
    by: dict[str, list[Outcome]] = {}
    for o in outcomes:
        by.setdefault(o.result, []).append(o)
    parts = []
    if by.get("passed"):
        parts.append(f"{len(by['passed'])} passed")
    for kind in ("failed", "error"):
        if by.get(kind):
            parts.append(f"**{len(by[kind])} {kind}**")
    skips = by.get("skipped", [])
    if skips:
        reasons = sorted({_short(o.reason) for o in skips})
        shown = "; ".join(reasons[:2]) + ("; …" if len(reasons) > 2 else "")
        parts.append(f"{len(skips)} skipped ({shown})")
    return ", ".join(parts)


def render(runs: Sequence[tuple[str, Sequence[Outcome]]]) -> str:
    """A markdown table: one row per group, one column per (kernel, outcomes) run."""
    grouped: list[dict[str, list[Outcome]]] = []
    for _, outcomes in runs:
        g: dict[str, list[Outcome]] = {}
        for o in outcomes:
            label = group_of(o.nodeid)
            if label is not None:
                g.setdefault(label, []).append(o)
        grouped.append(g)
    head = "| family | " + " | ".join(f"Linux {k}" for k, _ in runs) + " |"
    rule = "|---|" + "---|" * len(runs)
    rows = [head, rule]
    for label, _ in GROUPS:
        if not any(label in g for g in grouped):
            continue
        rows.append(f"| {label} | " + " | ".join(cell(g.get(label, [])) for g in grouped) + " |")
    return "\n".join(rows)


def update_readme(readme: Path, table: str) -> None:
    text = readme.read_text()
    block = f"{BEGIN}\n{table}\n{END}"
    if BEGIN in text and END in text:
        pre, rest = text.split(BEGIN, 1)
        _, post = rest.split(END, 1)
        text = pre + block + post
    else:
        text = text.rstrip("\n") + "\n\n## Kernel matrix\n\n" + block + "\n"
    readme.write_text(text)

