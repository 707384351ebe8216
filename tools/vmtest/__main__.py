"""``python -m tools.vmtest``: run a command or the test suite on another kernel in a VM.

    python -m tools.vmtest run -- uname -a            # a command, as root, in the guest
    python -m tools.vmtest test                       # suite.CI_TESTS
    python -m tools.vmtest test --from-host host.xml  # CI: those, plus what the host skipped,
                                                      # plus a smoke subset of every module
    python -m tools.vmtest test --all                 # the whole suite
    python -m tools.vmtest test -- tests/kernel/test_maps.py -k hash
    python -m tools.vmtest table --host H.xml --vm V61.xml --vm V612.xml --update-readme

``--kernel`` picks the Debian kernel series or package (default 6.1); ``--accel`` kvm, tcg or
auto (KVM when it boots, else TCG). Exit status: the command's, or pytest's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from . import kernel as kmod
from . import suite, table, vm

#: The kernel series CI boots, in the order of the README table's columns.
MATRIX = ("6.1", "6.12")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kernel", default=os.environ.get("EBPF_VMTEST_KERNEL", kmod.DEFAULT_KERNEL),
                   help="Debian kernel series (6.1) or package name (default: %(default)s)")
    p.add_argument("--accel", choices=("auto", "kvm", "tcg"),
                   default=os.environ.get("EBPF_VMTEST_ACCEL", "auto"))
    p.add_argument("--cpus", type=int, default=2)
    p.add_argument("--memory", default="3G")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds (default: %(default)s)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.vmtest", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p_run = sub.add_parser("run", help="run a command as root in the guest")
    _common(p_run)
    p_run.add_argument("argv", nargs=argparse.REMAINDER)
    p_test = sub.add_parser("test", help="run pytest in the guest")
    _common(p_test)
    p_test.add_argument("--all", action="store_true", help="the whole suite, not the CI subset")
    p_test.add_argument("--from-host", metavar="HOST_XML",
                        help="CI selection from the host run's junit: suite.CI_TESTS, every "
                        "test the host skipped, and a smoke subset of every other module")
    p_test.add_argument("--junit", help="also keep the guest's junit XML here")
    p_test.add_argument("--json", help="write the outcomes as JSON here")
    p_test.add_argument("pytest_args", nargs=argparse.REMAINDER)
    p_tab = sub.add_parser("table", help="the README's kernel table from junit reports")
    p_tab.add_argument("--host", required=True, help="junit XML of the host run")
    p_tab.add_argument("--host-kernel", default=os.uname().release)
    p_tab.add_argument("--vm", required=True, action="append",
                       help="junit XML of a VM run (repeat for each kernel of the matrix)")
    p_tab.add_argument("--vm-kernel", action="append",
                       help="the kernel of each --vm, in order (default: 6.1, then 6.12)")
    p_tab.add_argument("--update-readme", action="store_true")
    p_prep = sub.add_parser("prepare", help="fetch the kernel and build its initramfs")
    p_prep.add_argument("--kernel", default=kmod.DEFAULT_KERNEL)
    a = ap.parse_args(argv)

    try:
        if a.cmd == "prepare":
            k = kmod.prepare(a.kernel)
            print(f"{k.package} {k.version}: {k.dir}")
            return 0
        if a.cmd == "table":
            labels = list(a.vm_kernel or [])
            labels += list(MATRIX[len(labels):len(a.vm)])
            if len(labels) != len(a.vm):
                ap.error("table: give a --vm-kernel for each --vm")
            text = table.render([(a.host_kernel, suite.parse_junit(a.host))] + [
                (k, suite.parse_junit(x)) for k, x in zip(labels, a.vm, strict=True)])
            if a.update_readme:
                table.update_readme(Path(suite.REPO, "README.md"), text)
            else:
                print(text)
            return 0
        k = kmod.prepare(a.kernel)
        if a.cmd == "run":
            args = a.argv[1:] if a.argv[:1] == ["--"] else a.argv
            if not args:
                ap.error("run: no command given")
            res = vm.run(k, args, accel=a.accel, cpus=a.cpus, memory=a.memory,
                         timeout=a.timeout, stream=sys.stdout)
            print(f"vmtest: {k.release} ({res.accel}) up in {res.boot_seconds:.1f} s, "
                  f"done in {res.wall_seconds:.1f} s, status {res.status}", file=sys.stderr)
            return res.status
        extra = a.pytest_args[1:] if a.pytest_args[:1] == ["--"] else a.pytest_args
        paths = [x for x in extra if not x.startswith("-") and (
            os.path.exists(x.split("::")[0]))]
        select: list[str] | None = None
        if paths:
            tests: list[str] = []
        elif a.from_host and not a.all:
            select = suite.ci_selection(suite.parse_junit(a.from_host))
            tests = []
            print(f"vmtest: {len(select)} selected from {a.from_host}", flush=True)
        elif a.all:
            tests = ["tests"]
        else:
            tests = [t for t in suite.CI_TESTS if (suite.REPO / t).exists()]
        sr = suite.run_pytest(k, tests, extra=extra, accel=a.accel, timeout=a.timeout,
                              stream=sys.stdout, cpus=a.cpus, memory=a.memory,
                              junit_out=a.junit, select=select)
        print(sr.summary().replace("vmtest:", f"vmtest: {k.release}", 1))
        if a.json:
            Path(a.json).write_text(json.dumps(
                [o.__dict__ for o in sr.outcomes], indent=1) + "\n")
        return sr.run.status
    except kmod.VMTestError as e:
        print(f"vmtest: {e}", file=sys.stderr)
        return 125


if __name__ == "__main__":
    sys.exit(main())
