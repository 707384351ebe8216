"""Label decoders: turn the bytes of one map-key field into a Prometheus label value.

A label is a ``size``-byte slice of the key, passed through a chain of decoders (as in
cloudflare/ebpf_exporter): ``uint`` (host byte order; ``uint_be`` network order), ``hex``,
``string`` (NUL-terminated), ``inet_ip`` (4 or 16 bytes), ``ksym`` (a kernel address to its
symbol from ``/proc/kallsyms``), ``syscall`` (a number to its name), ``cgroup`` (a cgroup v2
id to its path under the cgroup mount), ``static_map`` (a value -> name table, ``mapping:``
in the config) and ``regexp`` (drop the sample unless the value matches ``regexps:``).
"""

from __future__ import annotations

import bisect
import ipaddress
import os
import re
import sys
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from ..errors import BPFError

__all__ = ["DECODERS", "Skip", "decode"]


class Skip(Exception):
    """Raised by a decoder to drop the sample (``regexp`` without a match)."""


def _bytes(v: bytes | str) -> bytes:
    return v if isinstance(v, bytes) else v.encode()


def _uint(v: bytes | str, _: Mapping[str, Any]) -> str:
    return str(int.from_bytes(_bytes(v), sys.byteorder))


def _uint_be(v: bytes | str, _: Mapping[str, Any]) -> str:
    return str(int.from_bytes(_bytes(v), "big"))


def _hex(v: bytes | str, _: Mapping[str, Any]) -> str:
    return _bytes(v).hex()


def _string(v: bytes | str, _: Mapping[str, Any]) -> str:
    return _bytes(v).split(b"\0", 1)[0].decode(errors="replace")


def _inet_ip(v: bytes | str, _: Mapping[str, Any]) -> str:
    b = _bytes(v)
    if len(b) == 4:
        return str(ipaddress.IPv4Address(b))
    if len(b) == 16:
        return str(ipaddress.IPv6Address(b))
    raise BPFError(f"inet_ip decoder: {len(b)} bytes is neither IPv4 nor IPv6")


@cache
def _kallsyms() -> tuple[list[int], list[str]]:
    addrs: list[tuple[int, str]] = []
    with open("/proc/kallsyms") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[1] in "tTwW":
                addrs.append((int(parts[0], 16), parts[2]))
    addrs.sort()
    return [a for a, _ in addrs], [n for _, n in addrs]


def ksym(addr: int) -> str:
    """The kernel text symbol containing ``addr`` (``0x...`` if none, or kallsyms hides)."""
    addrs, names = _kallsyms()
    i = bisect.bisect_right(addrs, addr) - 1
    return names[i] if i >= 0 and addrs[i] else f"0x{addr:x}"


def _ksym(v: bytes | str, _: Mapping[str, Any]) -> str:
    return ksym(int(v) if isinstance(v, str) else int.from_bytes(v, sys.byteorder))


def _syscall(v: bytes | str, _: Mapping[str, Any]) -> str:
    from ..tools.syscount import syscall_names

    n = int(v) if isinstance(v, str) else int.from_bytes(v, sys.byteorder)
    return syscall_names().get(n, str(n))


def cgroup_path(cgid: int, root: str = "/sys/fs/cgroup") -> str:
    """The path of cgroup v2 id ``cgid`` (its directory's inode number) below ``root``."""
    try:
        if os.stat(root).st_ino == cgid:
            return "/"
    except OSError:
        return str(cgid)
    for dirpath, _, _ in os.walk(root):
        try:
            if os.stat(dirpath).st_ino == cgid:
                return dirpath[len(root):] or "/"
        except OSError:
            continue
    return str(cgid)


def _cgroup(v: bytes | str, _: Mapping[str, Any]) -> str:
    return cgroup_path(int(v) if isinstance(v, str) else int.from_bytes(v, sys.byteorder))


def _static_map(v: bytes | str, conf: Mapping[str, Any]) -> str:
    key = v if isinstance(v, str) else _uint(v, conf)
    mapping = {str(k): str(val) for k, val in (conf.get("mapping") or {}).items()}
    return mapping.get(key, str(conf.get("default", key)))


def _regexp(v: bytes | str, conf: Mapping[str, Any]) -> str:
    s = v if isinstance(v, str) else _string(v, conf)
    if not any(re.search(p, s) for p in conf.get("regexps") or []):
        raise Skip
    return s


DECODERS: dict[str, Callable[[bytes | str, Mapping[str, Any]], str]] = {
    "cgroup": _cgroup, "hex": _hex, "inet_ip": _inet_ip, "ksym": _ksym, "regexp": _regexp,
    "static_map": _static_map, "string": _string, "syscall": _syscall, "uint": _uint,
    "uint_be": _uint_be,
}


def decode(raw: bytes, chain: list[Mapping[str, Any]]) -> str:
    """Run ``raw`` through the decoder chain (the first gets bytes, the rest strings)."""
    value: bytes | str = raw
    for conf in chain:
        name = conf.get("name")
        if name not in DECODERS:
            raise BPFError(f"unknown decoder {name!r} (have: {', '.join(sorted(DECODERS))})")
        value = DECODERS[name](value, conf)
    return value if isinstance(value, str) else _hex(value, {})
