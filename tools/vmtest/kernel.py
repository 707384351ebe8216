"""Fetch a Debian kernel package and build the initramfs that boots it on the host's files.

Everything is cached under :func:`cache_root` (``$EBPF_VMTEST_CACHE``, else
``$XDG_CACHE_HOME/ebpf-vmtest``, else ``~/.cache/ebpf-vmtest``), one directory per package
version: the ``.deb`` is fetched with ``apt-get download`` (no install), unpacked with
``dpkg-deb -x``, ``depmod`` is run on its module tree, and a small initramfs is written:
a static busybox, the modules the guest needs before it can see the host's files (virtio-pci,
9p, overlay, virtio-console) and the ``/init`` script of :mod:`tools.vmtest.guest`.
A finished directory is never rebuilt; a half-made one (no ``ready`` stamp) is made again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from . import guest

#: Debian's kernel image packages of the 6.1 LTS series (bookworm).
DEFAULT_KERNEL = "6.1"

#: Modules loaded by the initramfs, in this order (with their dependencies first).
BOOT_MODULES = ("virtio_pci", "9pnet_virtio", "9p", "overlay", "virtio_console")

#: Where the static busybox of Debian's busybox-static lives.
BUSYBOX = ("/bin/busybox", "/usr/bin/busybox")


class VMTestError(RuntimeError):
    """The VM could not be prepared, booted, or did not report back."""


@dataclasses.dataclass(frozen=True)
class Kernel:
    """A prepared kernel: its image, module tree and initramfs, all in one cache dir."""

    package: str  # e.g. linux-image-6.1.0-57-amd64
    version: str  # the package version, e.g. 6.1.192-3
    release: str  # uname -r, e.g. 6.1.0-57-amd64
    dir: Path

    @property
    def vmlinuz(self) -> Path:
        return self.dir / "root" / "boot" / f"vmlinuz-{self.release}"

    @property
    def modules(self) -> Path:
        """The directory shared with the guest as its ``/usr/lib/modules``."""
        return self.dir / "root" / "lib" / "modules"

    @property
    def initramfs(self) -> Path:
        return self.dir / "initramfs.cpio.gz"

    @property
    def config(self) -> Path:
        return self.dir / "root" / "boot" / f"config-{self.release}"


def cache_root() -> Path:
    env = os.environ.get("EBPF_VMTEST_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "ebpf-vmtest"


def _run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    try:
        res: subprocess.CompletedProcess[str] = subprocess.run(
            cmd, check=True, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
        return res
    except FileNotFoundError as e:
        raise VMTestError(f"{cmd[0]} is not installed ({e}); on Debian: "
                          "apt-get install qemu-system-x86 busybox-static kmod cpio") from e
    except subprocess.CalledProcessError as e:
        raise VMTestError(f"{' '.join(cmd)} failed ({e.returncode}): "
                          f"{(e.stderr or e.stdout or '').strip()[-2000:]}") from e


def resolve_package(series: str = DEFAULT_KERNEL) -> str:
    """The newest kernel image package of ``series`` apt knows: Debian names the 6.1 series'
    ``linux-image-6.1.0-N-amd64`` (ABI number N) and the newer ones bookworm carries
    ``linux-image-6.12.N+deb12-amd64`` (patch level N). ``series`` may also be a full
    package name."""
    if series.startswith("linux-image-"):
        return series
    out = _run(["apt-cache", "search", "--names-only",
                f"^linux-image-{re.escape(series)}\\.[0-9]"]).stdout
    forms = (rf"linux-image-{re.escape(series)}\.0-(\d+)-amd64",
             rf"linux-image-{re.escape(series)}\.(\d+)\+deb\d+-amd64")
    best: tuple[int, str] | None = None
    for line in out.splitlines():
        name = line.split(" ", 1)[0]
        for form in forms:
            m = re.fullmatch(form, name)
            if m and (best is None or int(m.group(1)) > best[0]):
                best = (int(m.group(1)), name)
    if best is None:
        raise VMTestError(f"apt knows no linux-image-{series}.0-N-amd64 or "
                          f"linux-image-{series}.N+debNN-amd64 package "
                          "(is bookworm in the apt sources, and apt-get update done?)")
    return best[1]


def _candidate_version(package: str) -> str:
    out = _run(["apt-cache", "policy", package]).stdout
    m = re.search(r"Candidate:\s*(\S+)", out)
    if not m or m.group(1) == "(none)":
        raise VMTestError(f"apt has no candidate version of {package}")
    return m.group(1)


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def prepare(series: str = DEFAULT_KERNEL, *, log: bool = True) -> Kernel:
    """Fetch, unpack and index the kernel package, and build its initramfs (cached)."""
    package = resolve_package(series)
    release = package.removeprefix("linux-image-")
    cached = sorted(cache_root().glob(f"{package}_*/ready"))
    if cached:  # offline-safe: a ready cache dir is used without asking apt
        d = cached[-1].parent
        k = Kernel(package, d.name.split("_", 1)[1], release, d)
        with _lock(cache_root() / ".lock"):
            _refresh_initramfs(k)
        return k
    version = _candidate_version(package)
    d = cache_root() / f"{package}_{version}"
    with _lock(cache_root() / ".lock"):
        if (d / "ready").exists():
            return Kernel(package, version, release, d)
        if d.exists():
            shutil.rmtree(d)
        tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=cache_root()))
        try:
            if log:
                print(f"vmtest: fetching {package} {version} into {d}", flush=True)
            for attempt in range(3):  # the mirror may be busy: retry before giving up
                try:
                    _run(["apt-get", "download", "-q", f"{package}={version}"], cwd=tmp)
                    break
                except VMTestError:
                    if attempt == 2:
                        raise
                    time.sleep(5 * (attempt + 1))
            debs = list(tmp.glob("*.deb"))
            if len(debs) != 1:
                raise VMTestError(f"apt-get download left {debs} in {tmp}")
            _run(["dpkg-deb", "-x", str(debs[0]), str(tmp / "root")])
            debs[0].unlink()
            k = Kernel(package, version, release, tmp)
            if not k.vmlinuz.exists():
                raise VMTestError(f"{package} has no {k.vmlinuz.name}")
            _run(["depmod", "-b", str(tmp / "root"), release])
            build_initramfs(k)
            (tmp / "ready").write_text(f"{package} {version}\n")
            tmp.rename(d)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)
    return Kernel(package, version, release, d)


def _initramfs_stamp() -> str:
    """What the initramfs is made of (its /init and module list): a change rebuilds it."""
    import hashlib

    return hashlib.sha256(f"{guest.INIT}\n{BOOT_MODULES}".encode()).hexdigest()


def _refresh_initramfs(k: Kernel) -> None:
    stamp = k.dir / "initramfs.stamp"
    want = _initramfs_stamp()
    if k.initramfs.exists() and stamp.exists() and stamp.read_text() == want:
        return
    build_initramfs(k)


def _module_paths(k: Kernel) -> list[Path]:
    """The .ko files of BOOT_MODULES with dependencies, in load order, no duplicates."""
    root = k.dir / "root"
    seen: list[Path] = []
    for name in BOOT_MODULES:
        out = _run(["modprobe", "-d", str(root), "-S", k.release, "--show-depends",
                    name]).stdout
        for line in out.splitlines():
            parts = line.split()
            if parts[:1] == ["insmod"]:
                p = Path(parts[1])
                if p not in seen:
                    seen.append(p)
            elif parts[:1] != ["builtin"]:
                raise VMTestError(f"modprobe --show-depends {name}: unexpected {line!r}")
    return seen


def build_initramfs(k: Kernel) -> None:
    """Write ``k.initramfs``: busybox, the boot modules (decompressed) and ``/init``."""
    busybox = next((b for b in BUSYBOX if os.path.exists(b)), None)
    if busybox is None:
        raise VMTestError("no static busybox (apt-get install busybox-static)")
    with tempfile.TemporaryDirectory(prefix="ebpf-vmtest-initramfs-") as tmp:
        t = Path(tmp)
        for sub in ("bin", "dev", "proc", "sys", "mod", "newroot", "host", "rw", "scratch"):
            (t / sub).mkdir()
        shutil.copy2(busybox, t / "bin" / "busybox")
        order = []
        for i, ko in enumerate(_module_paths(k)):
            data = ko.read_bytes()
            if ko.name.endswith(".xz"):
                import lzma
                data = lzma.decompress(data)
            elif ko.name.endswith(".zst"):
                raise VMTestError(f"{ko}: zstd-compressed modules are not supported")
            name = f"{i:02d}-{ko.name.split('.ko')[0]}.ko"
            (t / "mod" / name).write_bytes(data)
            order.append(f"/mod/{name}")
        (t / "mod" / "order").write_text("\n".join(order) + "\n")
        init = t / "init"
        init.write_text(guest.INIT)
        init.chmod(0o755)
        files = sorted(str(p.relative_to(t)) for p in t.rglob("*"))
        cpio = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet", "-R", "0:0"], cwd=t,
                              input="\n".join(files).encode(), capture_output=True)
        if cpio.returncode:
            raise VMTestError(f"cpio failed: {cpio.stderr.decode(errors='replace')}")
        part = k.initramfs.with_name(k.initramfs.name + ".part")
        with gzip.open(part, "wb", compresslevel=1) as f:
            f.write(cpio.stdout)
        part.rename(k.initramfs)
        (k.dir / "initramfs.stamp").write_text(_initramfs_stamp())


def kernel_config(k: Kernel) -> dict[str, str]:
    """The kernel's ``CONFIG_*`` settings (``y``/``m``/values), from its config file."""
    out: dict[str, str] = {}
    for line in k.config.read_text().splitlines():
        if line.startswith("CONFIG_") and "=" in line:
            key, val = line.split("=", 1)
            out[key] = val
    return out
