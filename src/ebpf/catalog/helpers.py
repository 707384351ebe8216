"""Helper metadata: category, minimum kernel, prototype, search; a registry for custom
helpers (out-of-tree kernels, helpers newer than the generated table).

::

    info("ringbuf_output")           # HelperInfo(id=130, category='events', min_kernel=(5, 8))
    search("cgroup"), by_category("time"), available((5, 4))
    register("my_helper", 300, category="custom", min_kernel=(6, 9))

Minimum kernels are the mainline release that added each helper (``enum bpf_func_id`` is
append-only, so a table of the first id of each release covers them, with the few
helpers merged out of order listed apart). Distribution kernels may backport helpers:
probe with :func:`ebpf.features.have_helper` to be sure.
"""

from __future__ import annotations

import bisect
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from ..asm import Helper
from ..errors import BPFError

__all__ = ["CATEGORIES", "HelperInfo", "all_helpers", "available", "by_category", "info",
           "min_kernel", "register", "search", "unregister"]

# first helper id of each release
_RELEASES: list[tuple[int, tuple[int, int]]] = [
    (1, (3, 19)), (4, (4, 1)), (12, (4, 2)), (17, (4, 3)), (23, (4, 4)), (26, (4, 5)),
    (27, (4, 6)), (31, (4, 8)), (37, (4, 9)), (42, (4, 10)), (45, (4, 11)), (46, (4, 12)),
    (48, (4, 13)), (51, (4, 14)), (54, (4, 15)), (58, (4, 16)), (60, (4, 17)), (65, (4, 18)),
    (81, (4, 19)), (84, (4, 20)), (91, (5, 0)), (93, (5, 1)), (99, (5, 2)), (109, (5, 3)),
    (111, (5, 5)), (119, (5, 6)), (120, (5, 7)), (128, (5, 8)), (136, (5, 9)),
    (142, (5, 10)), (156, (5, 11)), (163, (5, 12)), (164, (5, 13)), (166, (5, 14)),
    (169, (5, 15)), (176, (5, 16)), (180, (5, 17)), (186, (5, 18)), (194, (5, 19)),
    (204, (6, 0)), (208, (6, 1)), (210, (6, 2)),
]
# merged in another order than their ids
_OUT_OF_ORDER: dict[str, tuple[int, int]] = {
    "xdp_output": (5, 6), "ktime_get_boot_ns": (5, 8), "seq_printf": (5, 7),
    "seq_write": (5, 7),
}
_STARTS = [i for i, _ in _RELEASES]

_RULES: list[tuple[str, str]] = [
    (r"^(map_|for_each_map_elem)", "map"),
    (r"^(ringbuf_|user_ringbuf_|perf_event_output|skb_output|xdp_output)", "events"),
    (r"^(perf_event_read|perf_prog_read_value|read_branch_records|get_branch_snapshot)",
     "perf"),
    (r"^(probe_read|probe_write_user|copy_from_user|d_path|strncmp|strtou?l|kptr_xchg"
     r"|dynptr_|per_cpu_ptr|this_cpu_ptr|kallsyms_lookup_name)", "memory"),
    (r"^(ktime_|jiffies64)", "time"),
    (r"^(get_stack|get_stackid|get_task_stack)", "stack"),
    (r"^(trace_|snprintf|seq_)", "output"),
    (r"^(spin_|timer_|loop$|tail_call|sys_bpf|sys_close|btf_find_by_name_kind)", "control"),
    (r"(cgroup|cgrp_)", "cgroup"),
    (r"^(get_current_|get_ns_current_|send_signal|task_|find_vma|get_func_|get_attach_cookie"
     r"|override_return|get_retval|set_retval|bprm_opts_set|ima_|inode_storage|"
     r"sock_from_file)", "process"),
    (r"^(get_prandom_u32|get_smp_processor_id|get_numa_node_id)", "cpu"),
    (r"^(sk_|skc_|sock_|tcp_|msg_|setsockopt|getsockopt|bind$|get_socket_|get_netns_cookie"
     r"|get_listener_sock|load_hdr_opt|store_hdr_opt|reserve_hdr_opt|sysctl_)", "socket"),
    (r"^(skb_|l3_|l4_|csum_|xdp_|redirect|clone_redirect|fib_lookup|set_hash|get_hash_recalc"
     r"|get_route_realm|lwt_|rc_|check_mtu)", "network"),
]
CATEGORIES = ("map", "events", "perf", "memory", "time", "stack", "output", "control",
              "cgroup", "process", "cpu", "socket", "network", "other")


@dataclass(frozen=True)
class HelperInfo:
    """What the catalog knows about one helper."""

    id: int
    name: str  #: without ``bpf_``: ``map_lookup_elem``
    category: str
    min_kernel: tuple[int, int]
    prototype: str = ""
    description: str = ""
    custom: bool = False

    @property
    def c_name(self) -> str:
        return "bpf_" + self.name


def _category(name: str) -> str:
    for pat, cat in _RULES:
        if re.search(pat, name):
            return cat
    return "other"


def _min_kernel(hid: int, name: str) -> tuple[int, int]:
    if name in _OUT_OF_ORDER:
        return _OUT_OF_ORDER[name]
    i = bisect.bisect_right(_STARTS, hid) - 1
    if i < 0:
        raise BPFError(f"helper id {hid} is no helper")
    return _RELEASES[i][1]


def _builtin(h: Helper) -> HelperInfo:
    name = h.name.lower()
    sig = h.signature
    return HelperInfo(int(h), name, _category(name), _min_kernel(int(h), name),
                      str(sig) if sig else "", sig.description if sig else "")


_lock = threading.Lock()
_custom: dict[str, HelperInfo] = {}


def _key(name: str) -> str:
    n = name.strip()
    for prefix in ("BPF_FUNC_", "bpf_"):
        if n.startswith(prefix):
            n = n[len(prefix):]
    return n.lower()


def register(name: str, helper_id: int, *, category: str = "custom",
             min_kernel: tuple[int, int] = (0, 0), prototype: str = "",
             description: str = "", replace: bool = False) -> HelperInfo:
    """Add a helper the generated table lacks; it shadows nothing unless ``replace``."""
    key = _key(name)
    if not key.isidentifier() or not 0 < helper_id < 1 << 31:
        raise BPFError(f"register: bad helper {name!r} / id {helper_id}")
    with _lock:
        clash = [i for i in all_helpers() if (i.name == key or i.id == helper_id)]
        if clash and not replace:
            raise BPFError(f"register: {name!r} (id {helper_id}) clashes with "
                           f"{clash[0].name} (id {clash[0].id}); pass replace=True")
        infos = HelperInfo(helper_id, key, category, min_kernel, prototype, description, True)
        _custom[key] = infos
        return infos


def unregister(name: str) -> None:
    with _lock:
        _custom.pop(_key(name), None)


def all_helpers() -> list[HelperInfo]:
    """Every known helper (generated table, then custom ones), by id."""
    out = {i.id: i for i in (_builtin(h) for h in Helper if int(h) > 0)}
    for c in list(_custom.values()):
        out[c.id] = c
    return sorted(out.values(), key=lambda i: i.id)


def info(helper: str | int) -> HelperInfo:
    """Metadata of a helper by name (``loop``, ``bpf_loop``, ``BPF_FUNC_loop``) or id."""
    if isinstance(helper, str):
        key = _key(helper)
        if key in _custom:
            return _custom[key]
        try:
            return _builtin(Helper.by_name(key))  # type: ignore[arg-type]
        except KeyError:
            raise BPFError(f"no BPF helper named {helper!r}") from None
    for c in _custom.values():
        if c.id == helper:
            return c
    try:
        return _builtin(Helper(helper))
    except ValueError:
        raise BPFError(f"no BPF helper with id {helper}") from None


def min_kernel(helper: str | int) -> tuple[int, int]:
    """Mainline release that added the helper."""
    return info(helper).min_kernel


def by_category(category: str) -> list[HelperInfo]:
    if category not in CATEGORIES and not any(c.category == category
                                              for c in _custom.values()):
        raise BPFError(f"unknown helper category {category!r} (known: {', '.join(CATEGORIES)})")
    return [i for i in all_helpers() if i.category == category]


def search(text: str, *, in_description: bool = True) -> list[HelperInfo]:
    """Helpers whose name (or description) contains ``text`` (case-insensitive)."""
    t = text.lower()
    return [i for i in all_helpers()
            if t in i.name or (in_description and t in i.description.lower())]


def available(kernel: tuple[int, int] | Iterable[int]) -> list[HelperInfo]:
    """Helpers a mainline kernel of this version has."""
    k = tuple(kernel)[:2]
    return [i for i in all_helpers() if i.min_kernel <= k]
