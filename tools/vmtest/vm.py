"""Boot a prepared kernel under qemu and run one command in it as root.

The guest sees the host's root filesystem read-only through virtio-9p (with a tmpfs overlay
on top, so writes stay in the guest), its own kernel modules, and one writable scratch dir
(a fresh temporary directory, at the same path as on the host). The command's output comes
back on a virtio serial port (streamed to the host as it arrives), the exit status through
``<scratch>/status``. The kernel console (ttyS0) goes to a log kept for error messages.

Acceleration: ``kvm`` when it works, else ``tcg``. Nested KVM on some machines hangs right
after SeaBIOS, so ``auto`` starts with KVM and falls back to TCG (once per process) when
the kernel prints nothing on its console within :data:`KVM_PROBE_SECONDS`, or when qemu
exits under KVM before the kernel printed anything (another kind of nested host aborts with
"failed to set MSR").
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO

from . import guest
from .kernel import Kernel, VMTestError

KVM_PROBE_SECONDS = 15.0
CMDLINE = ("console=ttyS0,115200 lsm=lockdown,yama,bpf panic=-1 loglevel=7 "
           "mitigations=off nokaslr i8042.noaux i8042.nokbd i8042.nopnp no_timer_check "
           "8250.nr_uarts=1 rootfstype=ramfs")

_kvm_broken = False


@dataclasses.dataclass
class Result:
    """What one guest run gave back."""

    status: int  # the command's exit status
    output: str  # its stdout and stderr
    console: str  # the kernel console (ttyS0)
    accel: str  # kvm or tcg
    boot_seconds: float  # qemu start -> the run script's first line
    wall_seconds: float  # qemu start -> qemu exit


def _kvm_usable() -> bool:
    return not _kvm_broken and os.access("/dev/kvm", os.R_OK | os.W_OK)


def run(kernel: Kernel, argv: Sequence[str], *, accel: str = "auto", cpus: int = 2,
        memory: str = "3G", timeout: float = 1800.0, cwd: str | None = None,
        env: Mapping[str, str] | None = None, stream: IO[str] | None = None,
        scratch: str | None = None) -> Result:
    """Boot ``kernel``, run ``argv`` as root in the guest, return its :class:`Result`.

    ``scratch``: a host directory to share writable (created and removed here if ``None``).
    ``stream``: where the guest's output is copied as it arrives (e.g. ``sys.stdout``).
    Raises :class:`VMTestError` when qemu fails, the guest does not report a status, or
    ``timeout`` seconds pass (qemu is killed in every case).
    """
    global _kvm_broken
    if accel not in ("auto", "kvm", "tcg"):
        raise VMTestError(f"accel must be auto, kvm or tcg, not {accel!r}")
    if shutil.which("qemu-system-x86_64") is None:
        raise VMTestError("qemu-system-x86_64 not found (apt-get install qemu-system-x86)")
    chosen = accel
    if accel == "auto":
        chosen = "kvm" if _kvm_usable() else "tcg"
    while True:
        res = _run_once(kernel, argv, accel=chosen, cpus=cpus, memory=memory, timeout=timeout,
                        cwd=cwd or os.getcwd(), env=env or {}, stream=stream,
                        scratch=scratch, probe=accel == "auto" and chosen == "kvm")
        if res is not None:
            return res
        _kvm_broken = True  # KVM hung or qemu died before any kernel output: use TCG
        if stream is not None:
            print(f"vmtest: no kernel output under KVM (hang within {KVM_PROBE_SECONDS:.0f} s "
                  "or qemu failed); using TCG", file=stream, flush=True)
        chosen = "tcg"


def _qemu_argv(kernel: Kernel, scratch: str, accel: str, cpus: int, memory: str,
               console_log: str, out_log: str) -> list[str]:
    def share(tag: str, path: str, ro: bool) -> list[str]:
        opts = f"local,id={tag},path={path},security_model=none,multidevs=remap"
        if ro:
            opts += ",readonly=on"
        return ["-fsdev", opts, "-device", f"virtio-9p-pci,fsdev={tag},mount_tag={tag}"]

    cpu = ["-cpu", "host"] if accel == "kvm" else ["-cpu", "max"]
    # EBPF_VMTEST_DEBUG=1: the guest's init and run scripts trace every command on ttyS0.
    debug = " vmtest.debug" if os.environ.get("EBPF_VMTEST_DEBUG") else ""
    accel_opt = "kvm" if accel == "kvm" else "tcg,thread=multi,tb-size=512"
    return [
        "qemu-system-x86_64", "-nodefaults", "-no-user-config", "-no-reboot",
        "-machine", "q35", "-accel", accel_opt, *cpu, "-smp", str(cpus), "-m", memory,
        "-display", "none", "-vga", "none", "-monitor", "none",
        "-kernel", str(kernel.vmlinuz), "-initrd", str(kernel.initramfs),
        "-append", f"{CMDLINE} vmtest.scratch={scratch}{debug}",
        "-serial", f"file:{console_log}",
        *share("hostroot", "/", True),
        *share("modules", str(kernel.modules), True),
        *share("scratch", scratch, False),
        "-device", "virtio-serial-pci,id=vser",
        "-chardev", f"file,id=out,path={out_log}",
        "-device", "virtserialport,bus=vser.0,chardev=out,name=out",
        "-device", "virtio-rng-pci",
    ]


def _run_once(kernel: Kernel, argv: Sequence[str], *, accel: str, cpus: int, memory: str,
              timeout: float, cwd: str, env: Mapping[str, str], stream: IO[str] | None,
              scratch: str | None, probe: bool) -> Result | None:
    own_scratch = scratch is None
    sdir = tempfile.mkdtemp(prefix="ebpf-vmtest-") if scratch is None else scratch
    os.makedirs(sdir, exist_ok=True)
    status_file = Path(sdir, "status")
    with contextlib.suppress(FileNotFoundError):
        status_file.unlink()
    logdir = tempfile.mkdtemp(prefix="ebpf-vmtest-log-")
    console_log = os.path.join(logdir, "console")
    out_log = os.path.join(logdir, "out")
    Path(out_log).touch()
    Path(sdir, "run.sh").write_text(guest.run_script(argv, scratch=sdir, cwd=cwd, env=env))
    cmd = _qemu_argv(kernel, sdir, accel, cpus, memory, console_log, out_log)
    chunks: list[str] = []
    first_line = threading.Event()
    boot = [0.0]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    assert proc.stderr is not None
    done = threading.Event()

    def lines() -> Iterator[str]:
        # Follow the output file qemu writes (like tail -f) until qemu has exited and
        # everything it wrote has been read.
        with open(out_log, "rb") as f:
            pending = b""
            while True:
                data = f.read(65536)
                if data:
                    pending += data
                    *complete, pending = pending.split(b"\n")
                    for raw in complete:
                        yield raw.decode(errors="replace") + "\n"
                elif done.is_set():
                    if pending:
                        yield pending.decode(errors="replace")
                    return
                else:
                    time.sleep(0.05)

    def pump() -> None:
        for line in lines():
            if not first_line.is_set():
                boot[0] = time.monotonic() - start
                first_line.set()
            chunks.append(line)
            if stream is not None:
                stream.write(line)
                stream.flush()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        deadline = start + timeout
        while proc.poll() is None:
            now = time.monotonic()
            if now > deadline:
                raise VMTestError(f"the guest did not finish within {timeout:.0f} s "
                                  f"({accel}); qemu killed. Console tail:\n"
                                  f"{_tail(console_log)}")
            if probe and not first_line.is_set() and now - start > KVM_PROBE_SECONDS:
                if os.path.getsize(console_log) == 0:
                    return None  # nested KVM hang: caller retries with TCG
                probe = False
            time.sleep(0.2)
        done.set()
        reader.join(timeout=5)
        wall = time.monotonic() - start
        err = proc.stderr.read().decode(errors="replace")
        console = Path(console_log).read_text(errors="replace")
        if not status_file.exists() and probe and not console.strip():
            # qemu died under KVM before the kernel printed anything (seen: "failed to set
            # MSR 0x10a" on some nested hosts): the caller retries with TCG.
            if stream is not None:
                print(f"vmtest: qemu failed under KVM: {err.strip()[-300:]}", file=stream)
            return None
        if not status_file.exists():
            raise VMTestError(f"the guest reported no exit status (qemu exit "
                              f"{proc.returncode}). qemu: {err.strip()[-1500:]}\n"
                              f"Console tail:\n{_tail(console_log)}")
        status = int(status_file.read_text().strip() or "255")
        return Result(status, "".join(chunks), console, accel, boot[0], wall)
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        done.set()
        reader.join(timeout=5)
        proc.stderr.close()
        shutil.rmtree(logdir, ignore_errors=True)
        if own_scratch:
            shutil.rmtree(sdir, ignore_errors=True)


def _tail(path: str, n: int = 40) -> str:
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return "(no console log)"
    return "\n".join(lines[-n:]) or "(empty)"

