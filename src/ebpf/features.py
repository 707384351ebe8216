"""What the running kernel supports, probed the way ``bpftool feature probe`` does.

Each ``have_*`` function returns ``None`` when the feature is there and raises
:class:`~ebpf.errors.NotSupportedError` (naming the feature and the first kernel that has it)
when it is not. When the probe itself is refused or gets an errno it cannot read (``EPERM``
from a missing capability, lockdown or an LSM; a kernel build that refuses one map type to
root), it raises :class:`~ebpf.errors.ProbeError` instead, carrying that errno: these are the
only two errors a probe raises for a valid question. Only conclusive answers are cached, so an
inconclusive one is asked again next time. :func:`supports` turns an answer into a bool (and
lets ``ProbeError`` through); :func:`probe_all` never raises for a refused probe and reports
such entries as ``"unknown (EPERM: ...)"``.

Minimum kernel versions are the upstream releases that introduced each type.
"""

from __future__ import annotations

import ctypes
import errno as _errno
import functools
from collections.abc import Callable
from typing import Any

from . import errors
from ._sys.fd import FD
from ._sys.syscall import bpf, bpf_fd
from ._types import AttachType, LinkType, MapType, ProgramType
from ._uapi import _defines as _d
from ._uapi import _generated_types as _t
from .platform import kernel_version, page_size

__all__ = [
    "LINK_TYPE_MIN_KERNEL",
    "MAP_TYPE_MIN_KERNEL",
    "PROGRAM_TYPE_MIN_KERNEL",
    "answer",
    "have_bpf_link",
    "have_helper",
    "have_isa",
    "have_link_type",
    "have_map_type",
    "have_program_type",
    "probe_all",
    "supports",
]

C = _t.bpf_cmd

MAP_TYPE_MIN_KERNEL: dict[str, str] = {
    "HASH": "3.19", "ARRAY": "3.19", "PROG_ARRAY": "4.2", "PERF_EVENT_ARRAY": "4.3",
    "PERCPU_HASH": "4.6", "PERCPU_ARRAY": "4.6", "STACK_TRACE": "4.6", "CGROUP_ARRAY": "4.8",
    "LRU_HASH": "4.10", "LRU_PERCPU_HASH": "4.10", "LPM_TRIE": "4.11", "ARRAY_OF_MAPS": "4.12",
    "HASH_OF_MAPS": "4.12", "DEVMAP": "4.14", "SOCKMAP": "4.14", "CPUMAP": "4.15",
    "XSKMAP": "4.18", "SOCKHASH": "4.18", "CGROUP_STORAGE": "4.19",
    "REUSEPORT_SOCKARRAY": "4.19", "PERCPU_CGROUP_STORAGE": "4.20", "QUEUE": "4.20",
    "STACK": "4.20", "SK_STORAGE": "5.2", "DEVMAP_HASH": "5.4", "STRUCT_OPS": "5.6",
    "RINGBUF": "5.8", "INODE_STORAGE": "5.10", "TASK_STORAGE": "5.11", "BLOOM_FILTER": "5.16",
    "USER_RINGBUF": "6.1", "CGRP_STORAGE": "6.2", "ARENA": "6.9", "INSN_ARRAY": "6.19",
}

PROGRAM_TYPE_MIN_KERNEL: dict[str, str] = {
    "SOCKET_FILTER": "3.19", "KPROBE": "4.1", "SCHED_CLS": "4.1", "SCHED_ACT": "4.1",
    "TRACEPOINT": "4.7", "XDP": "4.8", "PERF_EVENT": "4.9", "CGROUP_SKB": "4.10",
    "CGROUP_SOCK": "4.10", "LWT_IN": "4.10", "LWT_OUT": "4.10", "LWT_XMIT": "4.10",
    "SOCK_OPS": "4.13", "SK_SKB": "4.14", "CGROUP_DEVICE": "4.15", "SK_MSG": "4.17",
    "RAW_TRACEPOINT": "4.17", "CGROUP_SOCK_ADDR": "4.17", "LWT_SEG6LOCAL": "4.18",
    "LIRC_MODE2": "4.18", "SK_REUSEPORT": "4.19", "FLOW_DISSECTOR": "4.20",
    "CGROUP_SYSCTL": "5.2", "RAW_TRACEPOINT_WRITABLE": "5.2", "CGROUP_SOCKOPT": "5.3",
    "TRACING": "5.5", "STRUCT_OPS": "5.6", "EXT": "5.6", "LSM": "5.7", "SK_LOOKUP": "5.9",
    "SYSCALL": "5.14", "NETFILTER": "6.4",
}

LINK_TYPE_MIN_KERNEL: dict[str, str] = {
    "RAW_TRACEPOINT": "5.8", "TRACING": "5.8", "CGROUP": "5.7", "ITER": "5.8", "NETNS": "5.8",
    "XDP": "5.9", "PERF_EVENT": "5.15", "KPROBE_MULTI": "5.18", "STRUCT_OPS": "6.4",
    "NETFILTER": "6.4", "TCX": "6.6", "UPROBE_MULTI": "6.6", "NETKIT": "6.7", "SOCKMAP": "6.10",
}

ISA_MIN_KERNEL = {1: "3.18", 2: "4.14", 3: "5.1", 4: "6.6"}

# r0 = 0; exit
_RET0 = bytes.fromhex("b700000000000000" "9500000000000000")


def _describe(name: str, args: tuple[Any, ...]) -> str:
    """The feature a probe call asks about, for a :class:`~ebpf.errors.ProbeError`."""
    try:
        if name == "have_map_type":
            return f"BPF_MAP_TYPE_{MapType(args[0]).name}"
        if name == "have_program_type":
            return f"BPF_PROG_TYPE_{ProgramType(args[0]).name}"
        if name == "have_link_type":
            return f"BPF_LINK_TYPE_{LinkType(args[0]).name}"
        if name == "have_helper":
            helper = getattr(args[1], "name", None) or _helper_name(int(args[1]))
            return f"helper {helper} for BPF_PROG_TYPE_{ProgramType(args[0]).name}"
        if name == "have_isa":
            return f"BPF ISA v{args[0]}"
    except (ValueError, IndexError, TypeError):
        pass
    if name == "have_bpf_link":
        return "BPF_LINK_CREATE"
    return f"{name}{args!r}"


def _probe(feature: Callable[..., str | None]) -> Callable[..., None]:
    """Cache conclusive answers of a probe returning ``None`` (present) or a reason (absent).

    A syscall error escaping the probe means it could not decide: it becomes a
    :class:`~ebpf.errors.ProbeError` with the errno, and nothing is cached.
    """
    cache: dict[tuple[Any, ...], str | None] = {}

    @functools.wraps(feature)
    def wrapper(*args: Any) -> None:
        key = tuple(int(a) if isinstance(a, int) else a for a in args)
        if key not in cache:
            try:
                answer = feature(*args)
            except errors.NotSupportedError:
                raise  # a conclusive "no" from a probe this one depends on
            except errors.ProbeError as e:
                what = _describe(feature.__name__, args)
                if e.feature == what:
                    raise
                raise errors.ProbeError(what, e.errno, f"{e.feature}: {e.reason}") from e
            except OSError as e:  # SyscallError, or unshare(2) refused for a netns probe
                raise errors.ProbeError(_describe(feature.__name__, args), e.errno,
                                        str(e)) from e
            cache[key] = answer
        reason = cache[key]
        if reason is not None:
            name, _, rest = reason.partition("@")
            version, _, detail = rest.partition("@")
            if version and not detail and kernel_version() >= version:
                # New enough, so the kernel was built without it (or a policy forbids it).
                detail = f"not enabled in this kernel ({kernel_version()}, needs >= {version})"
                version = ""
            raise errors.NotSupportedError(name, version, detail)

    wrapper.cache_clear = cache.clear  # type: ignore[attr-defined]
    return wrapper


def _create_map(attr: _t.MapCreateAttr) -> FD:
    return bpf_fd(C.BPF_MAP_CREATE, attr, what="probe map")


def _map_attr(mt: MapType) -> tuple[_t.MapCreateAttr, list[Any]]:
    """Minimal valid attributes for creating a map of type ``mt`` (as libbpf's probes use)."""
    attr = _t.MapCreateAttr()
    attr.map_type = int(mt)
    attr.key_size, attr.value_size, attr.max_entries = 4, 4, 1
    keep: list[Any] = []
    name = mt.name
    if name == "LPM_TRIE":
        attr.key_size, attr.value_size = 8, 8
        attr.map_flags = _t.BPF_F_NO_PREALLOC
        attr.max_entries = 1
    elif name in ("QUEUE", "STACK", "BLOOM_FILTER"):
        attr.key_size = 0
    elif name in ("RINGBUF", "USER_RINGBUF"):
        attr.key_size, attr.value_size, attr.max_entries = 0, 0, page_size()
    elif name in ("CGROUP_STORAGE", "PERCPU_CGROUP_STORAGE"):
        attr.key_size, attr.value_size, attr.max_entries = 16, 8, 0
    elif name == "STACK_TRACE":
        attr.value_size = 8
    elif name in ("ARRAY_OF_MAPS", "HASH_OF_MAPS"):
        inner = _t.MapCreateAttr()
        inner.map_type, inner.key_size, inner.value_size, inner.max_entries = (
            int(MapType.ARRAY), 4, 4, 1)
        inner_fd = _create_map(inner)
        keep.append(inner_fd)
        attr.inner_map_fd = inner_fd.fileno()
    elif name in ("SK_STORAGE", "INODE_STORAGE", "TASK_STORAGE", "CGRP_STORAGE"):
        # These need BTF; an invalid BTF fd gets EBADF only once the type itself is accepted.
        attr.map_flags = _t.BPF_F_NO_PREALLOC
        attr.max_entries = 0
        attr.btf_fd = 0xFFFFFFFF
        attr.btf_key_type_id = 1
        attr.btf_value_type_id = 1
    elif name == "STRUCT_OPS":
        attr.btf_vmlinux_value_type_id = 1
    elif name == "ARENA":
        attr.key_size, attr.value_size, attr.max_entries = 0, 0, 1
        attr.map_flags = _t.BPF_F_MMAPABLE
    elif name in ("SOCKMAP", "SOCKHASH", "DEVMAP", "DEVMAP_HASH", "XSKMAP", "CPUMAP",
                  "REUSEPORT_SOCKARRAY"):
        attr.value_size = 4
    elif name == "INSN_ARRAY":
        attr.value_size = 8
    return attr, keep


@_probe
def have_map_type(mt: MapType | int) -> str | None:
    """Can a map of type ``mt`` be created? Raises NotSupportedError if not."""
    mt = MapType(mt)
    feature = f"BPF_MAP_TYPE_{mt.name}@{MAP_TYPE_MIN_KERNEL.get(mt.name, '')}"
    attr, keep = _map_attr(mt)
    try:
        fd = _create_map(attr)
    except errors.SyscallError as e:
        if mt.name in ("SK_STORAGE", "INODE_STORAGE", "TASK_STORAGE", "CGRP_STORAGE") and (
            e.errno == _errno.EBADF
        ):
            return None
        if mt.name == "STRUCT_OPS" and e.errno == errors.ENOTSUPP:
            return None  # type known; the bogus value type id is what was refused
        if e.errno in (_errno.EINVAL, _errno.E2BIG, errors.ENOTSUPP, _errno.EOPNOTSUPP):
            return feature
        raise
    finally:
        for k in keep:
            k.close()
    fd.close()
    return None


def _load(prog_type: int, insns: bytes, *, eat: int = 0, btf_id: int = 0, flags: int = 0,
          log: bool = False) -> tuple[FD | None, int, str]:
    """Load a probe program; returns (fd or None, errno, log text)."""
    code = ctypes.create_string_buffer(insns, len(insns))
    lic = ctypes.create_string_buffer(b"GPL\0")
    logbuf = ctypes.create_string_buffer(4096 if log else 1)
    attr = _t.ProgLoadAttr()
    attr.prog_type = prog_type
    attr.insn_cnt = len(insns) // 8
    attr.insns = ctypes.addressof(code)
    attr.license = ctypes.addressof(lic)
    attr.expected_attach_type = eat
    attr.attach_btf_id = btf_id
    attr.prog_flags = flags
    if log:
        attr.log_level = 1
        attr.log_size = 4096
        attr.log_buf = ctypes.addressof(logbuf)
    try:
        return bpf_fd(C.BPF_PROG_LOAD, attr, keep=(code, lic, logbuf), what="probe"), 0, ""
    except errors.SyscallError as e:
        return None, e.errno or 0, logbuf.value.decode("utf-8", "replace")


def _prog_load_settings(pt: ProgramType) -> dict[str, Any]:
    """expected_attach_type/btf id/flags the kernel insists on for some program types."""
    n = pt.name
    if n == "CGROUP_SOCK_ADDR":
        return {"eat": int(AttachType.CGROUP_INET4_CONNECT)}
    if n == "CGROUP_SOCKOPT":
        return {"eat": int(AttachType.CGROUP_GETSOCKOPT)}
    if n == "SK_LOOKUP":
        return {"eat": int(AttachType.SK_LOOKUP)}
    if n == "NETFILTER":
        return {"eat": int(AttachType.NETFILTER)}
    if n == "SYSCALL":
        return {"flags": _d.BPF_F_SLEEPABLE}
    if n == "TRACING":
        return {"eat": int(AttachType.TRACE_FENTRY), "btf_id": 1, "log": True,
                "expect": "attach_btf_id 1 is not a function"}
    if n == "LSM":
        return {"eat": int(AttachType.LSM_MAC), "btf_id": 1, "log": True,
                "expect": "attach_btf_id 1 is not a function"}
    if n == "EXT":
        return {"btf_id": 1, "log": True, "expect": "Cannot replace kernel functions"}
    if n == "STRUCT_OPS":
        return {"btf_id": 1, "log": True, "expect": "attach_btf_id 1 is not a function",
                "expect_errno": errors.ENOTSUPP}
    return {}


@_probe
def have_program_type(pt: ProgramType | int) -> str | None:
    """Can a program of type ``pt`` be loaded? Raises NotSupportedError if not."""
    pt = ProgramType(pt)
    feature = f"BPF_PROG_TYPE_{pt.name}@{PROGRAM_TYPE_MIN_KERNEL.get(pt.name, '')}"
    s = _prog_load_settings(pt)
    expect = s.pop("expect", None)
    expect_errno = s.pop("expect_errno", None)
    fd, err, log = _load(int(pt), _RET0, **s)
    if fd is not None:
        fd.close()
        return None
    if expect is not None and (expect in log or (expect_errno and err == expect_errno)):
        return None
    if err in (_errno.EINVAL, _errno.E2BIG, errors.ENOTSUPP, _errno.EOPNOTSUPP):
        return feature
    if err == _errno.EPERM and expect is not None and not log:
        # The type exists but this kernel refuses to load it at all (lockdown or an LSM
        # policy; seen for tracing/LSM/ext programs). Not a version question.
        return f"BPF_PROG_TYPE_{pt.name}@@loading refused by the kernel (EPERM)"
    raise errors.from_errno("BPF_PROG_LOAD", err)


def _helper_call(helper_id: int) -> bytes:
    # call helper; r0 = 0; exit
    return (bytes([0x85, 0, 0, 0]) + helper_id.to_bytes(4, "little", signed=True)) + _RET0


@_probe
def have_helper(pt: ProgramType | int, helper: int) -> str | None:
    """May programs of type ``pt`` call helper ``helper`` (a ``Helper`` or its id)?

    As libbpf decides: the probe program is rejected by the verifier, and the log says whether
    the helper was unknown/forbidden or merely called with bad arguments.
    """
    pt = ProgramType(pt)
    have_program_type(pt)
    if pt.name in ("TRACING", "LSM", "EXT", "STRUCT_OPS"):
        # A probe program of these types never reaches helper checks without a real attach
        # target, so any answer would be a guess.
        raise errors.ProbeError(
            _describe("have_helper", (pt, helper)), None,
            f"helpers of BPF_PROG_TYPE_{pt.name} cannot be probed without an attach target")
    name = getattr(helper, "name", None) or _helper_name(int(helper))
    feature = f"helper {name} for BPF_PROG_TYPE_{pt.name}@"
    s = _prog_load_settings(pt)
    s.pop("expect", None)
    s.pop("expect_errno", None)
    s["log"] = True
    fd, err, log = _load(int(pt), _helper_call(int(helper)), **s)
    if fd is not None:
        fd.close()
        return None
    if err == _errno.EPERM and not log:
        raise errors.from_errno("BPF_PROG_LOAD", err)
    if "invalid func " in log or "unknown func " in log or "cannot call" in log:
        return feature
    if "program of this type cannot use helper" in log:
        return feature
    return None


def _helper_name(helper_id: int) -> str:
    for v in _t.bpf_func_id:
        if v.value == helper_id:
            return v.name.removeprefix("BPF_FUNC_")
    return f"#{helper_id}"


# ISA probes: socket filters using the newest instruction of each version.
_ISA_PROGS = {
    1: _RET0,
    # v2: if r0 < 0 goto +0 (BPF_JLT)
    2: bytes.fromhex("b700000000000000" "a500000000000000" "9500000000000000"),
    # v3: if w0 == 0 goto +0 (BPF_JMP32)
    3: bytes.fromhex("b700000000000000" "1600000000000000" "9500000000000000"),
    # v4: r0 = r0 s/ 1 (sdiv: BPF_DIV with off=1)
    4: bytes.fromhex("b700000000000000" "3700010001000000" "9500000000000000"),
}


@_probe
def have_isa(version: int) -> str | None:
    """Does the verifier accept ISA ``version`` (1-4) instructions?"""
    if version not in _ISA_PROGS:
        raise ValueError(f"unknown ISA version {version}")
    fd, err, _ = _load(int(ProgramType.SOCKET_FILTER), _ISA_PROGS[version])
    if fd is not None:
        fd.close()
        return None
    if err == _errno.EINVAL:
        return f"BPF ISA v{version}@{ISA_MIN_KERNEL[version]}"
    raise errors.from_errno("BPF_PROG_LOAD", err)


@_probe
def have_bpf_link() -> str | None:
    """Is ``BPF_LINK_CREATE`` known (>= 5.7)?"""
    attr = _t.LinkCreateAttr()
    attr.prog_fd = 0xFFFFFFFF
    attr.target_fd = 0xFFFFFFFF
    try:
        bpf(C.BPF_LINK_CREATE, attr)
    except errors.SyscallError as e:
        if e.errno == _errno.EBADF:
            return None
        if e.errno == _errno.EINVAL:
            return "BPF_LINK_CREATE@5.7"
        raise
    return None


# Link type probes: load a program of the right type, then LINK_CREATE against a target that
# cannot exist. The errno tells whether the attach type reached its handler.
_LINK_PROBES: dict[str, tuple[str, str, dict[str, Any], tuple[int, ...]]] = {
    # link type: (program type, attach type, load settings, errnos meaning "supported")
    "XDP": ("XDP", "XDP", {}, (_errno.EBUSY, _errno.EEXIST)),  # attached in a private netns
    "TCX": ("SCHED_CLS", "TCX_INGRESS", {}, (_errno.ENODEV, _errno.EBADF)),
    "NETKIT": ("SCHED_CLS", "NETKIT_PRIMARY", {}, (_errno.ENODEV, _errno.EBADF, _errno.ENXIO)),
    "CGROUP": ("CGROUP_SKB", "CGROUP_INET_INGRESS", {}, (_errno.EBADF,)),
    "NETNS": ("FLOW_DISSECTOR", "FLOW_DISSECTOR", {}, (_errno.EBADF,)),
    "PERF_EVENT": ("PERF_EVENT", "PERF_EVENT", {}, (_errno.EBADF,)),
    "SOCKMAP": ("SK_MSG", "SK_MSG_VERDICT", {}, (_errno.EBADF,)),
    "NETFILTER": ("NETFILTER", "NETFILTER", {"eat": "NETFILTER"},
                  (_errno.EAFNOSUPPORT, _errno.EPROTONOSUPPORT, _errno.ERANGE)),
    # The multi handlers get one well-formed probe that cannot attach, so a kernel that runs
    # them gives a distinctive errno: uprobe_multi on "/" (not a regular file: EBADF),
    # kprobe_multi on a symbol that does not exist (ESRCH; ENOENT on some versions). A kernel
    # without them answers EINVAL (unknown attach type: 6.1 sends it to the kprobe_multi
    # handler, which wants a kprobe_multi program) or EOPNOTSUPP (built without FPROBE).
    "UPROBE_MULTI": ("KPROBE", "TRACE_UPROBE_MULTI", {"eat": "TRACE_UPROBE_MULTI"},
                     (_errno.EBADF,)),
    "KPROBE_MULTI": ("KPROBE", "TRACE_KPROBE_MULTI", {"eat": "TRACE_KPROBE_MULTI"},
                     (_errno.ESRCH, _errno.ENOENT)),
}

_PROBE_PATH = ctypes.create_string_buffer(b"/")
_PROBE_SYM = ctypes.create_string_buffer(b"ebpf_probe_no_such_function")
_PROBE_OFFSETS = (ctypes.c_uint64 * 1)(0)
_PROBE_SYMS = (ctypes.c_uint64 * 1)(ctypes.addressof(_PROBE_SYM))


@_probe
def have_link_type(lt: LinkType | int) -> str | None:
    """Can a bpf_link of type ``lt`` be created? Raises NotSupportedError if not."""
    lt = LinkType(lt)
    feature = f"BPF_LINK_TYPE_{lt.name}@{LINK_TYPE_MIN_KERNEL.get(lt.name, '')}"
    have_bpf_link()
    if lt.name not in _LINK_PROBES:
        # Link types created by other commands (raw_tp, tracing, iter, struct_ops): no
        # attach can be tried without a real target, so answer from the table (the enum
        # value can predate the link: STRUCT_OPS is in 6.1's enum, its links came in 6.4).
        min_kernel = LINK_TYPE_MIN_KERNEL.get(lt.name)
        return None if min_kernel and not kernel_version() < min_kernel else feature
    pt_name, at_name, settings, ok = _LINK_PROBES[lt.name]
    pt = ProgramType[pt_name]
    try:
        have_program_type(pt)
    except errors.NotSupportedError:
        return feature
    s = dict(_prog_load_settings(pt))
    s.pop("expect", None)
    s.pop("expect_errno", None)
    if "eat" in settings:
        s["eat"] = int(AttachType[settings["eat"]])
    fd, err, _ = _load(int(pt), _RET0, **s)
    if fd is None:
        if lt.name in ("UPROBE_MULTI", "KPROBE_MULTI", "NETFILTER") and err == _errno.EINVAL:
            return feature
        raise errors.from_errno("BPF_PROG_LOAD", err)
    try:
        attr = _t.LinkCreateAttr()
        attr.prog_fd = fd.fileno()
        attr.target_fd = 0x7FFFFFF0  # no such fd / ifindex
        attr.attach_type = int(AttachType[at_name])
        if lt.name == "NETFILTER":
            attr.target_fd = 0
            attr.netfilter.pf = 0xFF  # bad protocol family
        if lt.name == "UPROBE_MULTI":
            attr.target_fd = 0
            attr.uprobe_multi.path = ctypes.addressof(_PROBE_PATH)
            attr.uprobe_multi.offsets = ctypes.addressof(_PROBE_OFFSETS)
            attr.uprobe_multi.cnt = 1
        if lt.name == "KPROBE_MULTI":
            attr.target_fd = 0
            attr.kprobe_multi.syms = ctypes.addressof(_PROBE_SYMS)
            attr.kprobe_multi.cnt = 1
        if lt.name == "XDP":
            # A missing device is EINVAL, like an unknown attach type; so attach an
            # XDP_PASS program to the loopback of a throwaway network namespace.
            attr.target_fd = 1
            attr.flags = _d.XDP_FLAGS_SKB_MODE
            return _in_private_netns(lambda: _link_and_close(attr), feature)
        try:
            bpf(C.BPF_LINK_CREATE, attr)
        except errors.SyscallError as e:
            if e.errno in ok:
                return None
            if e.errno in (_errno.EINVAL, _errno.EOPNOTSUPP, errors.ENOTSUPP):
                return feature
            raise
        return None
    finally:
        fd.close()


def _link_and_close(attr: _t.LinkCreateAttr) -> None:
    bpf_fd(C.BPF_LINK_CREATE, attr, what="probe link").close()


def _in_private_netns(fn: Callable[[], None], feature: str) -> str | None:
    """Run ``fn`` on a thread moved into a new network namespace; ``None`` if it succeeded."""
    import threading

    from ._sys.netlink import unshare

    result: list[BaseException | None] = []

    def run() -> None:
        try:
            unshare()  # CLONE_NEWNET, this thread only
            fn()
            result.append(None)
        except BaseException as e:  # handed to the caller
            result.append(e)

    t = threading.Thread(target=run, name="ebpf-probe-netns")
    t.start()
    t.join()
    err = result[0] if result else None
    if err is None:
        return None
    if isinstance(err, errors.SyscallError) and err.errno in (
            _errno.EINVAL, _errno.EOPNOTSUPP, errors.ENOTSUPP):
        return feature
    raise err


def supports(probe: Callable[..., None], *args: Any) -> bool:
    """``True`` if ``probe(*args)`` finds the feature, ``False`` on NotSupportedError.

    A :class:`~ebpf.errors.ProbeError` (the probe could not decide) propagates.
    """
    try:
        probe(*args)
    except errors.NotSupportedError:
        return False
    return True


def answer(probe: Callable[..., None], *args: Any) -> bool | str:
    """``True``, ``False``, or ``"unknown (<ERRNO>: <why>)"`` when the probe could not decide."""
    try:
        return supports(probe, *args)
    except errors.ProbeError as e:
        return f"unknown ({e.reason})"


def probe_all() -> dict[str, dict[str, bool | str]]:
    """Every map type, program type, link type and ISA version: name -> answer.

    Each answer is ``True``, ``False`` or ``"unknown (EPERM: ...)"`` (see :func:`answer`):
    a refused probe never makes the whole listing fail.
    """
    out: dict[str, dict[str, bool | str]] = {"map_types": {}, "program_types": {},
                                             "link_types": {}, "isa": {}}
    for mt in MapType:
        if mt.name != "UNSPEC":
            out["map_types"][mt.name] = answer(have_map_type, mt)
    for pt in ProgramType:
        if pt.name != "UNSPEC":
            out["program_types"][pt.name] = answer(have_program_type, pt)
    for lt in LinkType:
        if lt.name != "UNSPEC":
            out["link_types"][lt.name] = answer(have_link_type, lt)
    for v in _ISA_PROGS:
        out["isa"][f"v{v}"] = answer(have_isa, v)
    return out
