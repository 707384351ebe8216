"""The LSM hooks a ``BPF_PROG_TYPE_LSM`` program can attach to, from the running kernel's
BTF (every ``bpf_lsm_<hook>`` function; LSM programs need 5.7 and ``lsm=...,bpf``).

::

    hooks()                 # ['bpf', 'bpf_map', ..., 'file_open', ...]
    by_category()["file"]   # file_* hooks
    exists("file_open")
"""

from __future__ import annotations

from functools import cache

__all__ = ["CATEGORIES", "by_category", "category", "exists", "hooks", "params"]

CATEGORIES: dict[str, tuple[str, ...]] = {
    "file": ("file_", "mmap_", "kernel_read_file", "kernel_load_data", "kernel_post_",
             "backing_file_"),
    "inode": ("inode_", "dentry_", "path_", "d_instantiate", "kernfs_", "bdev_"),
    "mount": ("sb_", "move_mount", "fs_context_", "quota"),
    "process": ("task_", "bprm_", "cred_", "capable", "capget", "capset", "ptrace_",
                "syslog", "settime", "vm_enough_memory", "userns_", "uring_", "kernel_act_as",
                "kernel_create_files_as", "kernel_module_request", "perf_event_"),
    "network": ("socket_", "sk_", "inet_", "tun_", "sctp_", "mptcp_", "xfrm_", "secmark_",
                "req_", "unix_", "netlink_", "ib_"),
    "ipc": ("ipc_", "msg_", "shm_", "sem_", "mq_"),
    "keys": ("key_",),
    "bpf": ("bpf",),
    "audit": ("audit_",),
}


# bpf_lsm_* functions of the BPF LSM itself, not hooks
_NOT_HOOKS = frozenset({"find_cgroup_shim", "func_proto", "get_retval_range",
                        "hook_returns_errno", "init", "is_sleepable_hook", "is_trusted",
                        "verify_prog"})


@cache
def _hooks() -> dict[str, int]:
    from .. import btf

    spec = btf.load_kernel()
    out: dict[str, int] = {}
    for fn in spec.types(btf.Func):
        name = fn.name[len("bpf_lsm_"):]
        if fn.name.startswith("bpf_lsm_") and name not in _NOT_HOOKS:
            out[name] = fn.id
    return dict(sorted(out.items()))


def hooks() -> list[str]:
    """Names of the LSM hooks of this kernel, sorted."""
    return list(_hooks())


def exists(hook: str) -> bool:
    return hook.removeprefix("bpf_lsm_") in _hooks()


def category(hook: str) -> str:
    """``file``, ``inode``, ``mount``, ``process``, ``network``, ``ipc``, ``keys``, ``bpf``,
    ``audit`` or ``other``."""
    h = hook.removeprefix("bpf_lsm_")
    for cat, prefixes in CATEGORIES.items():
        if h.startswith(prefixes):
            return cat
    return "other"


def by_category() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for h in _hooks():
        out.setdefault(category(h), []).append(h)
    return out


def params(hook: str) -> list[str]:
    """Parameter names of ``hook``, in order (for :func:`ebpf.lib.patterns.fentry_arg`)."""
    from .. import btf
    from ..errors import BPFError

    name = hook.removeprefix("bpf_lsm_")
    if name not in _hooks():
        raise BPFError(f"no LSM hook {hook!r} in kernel BTF")
    fn = btf.load_kernel().find("bpf_lsm_" + name, kind=btf.Func)
    return [p.name for p in getattr(fn.type, "params", ())]
