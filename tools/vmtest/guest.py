"""What runs inside the guest: the initramfs's ``/init`` and the per-run script.

``/init`` (busybox sh, PID 1) loads the boot modules, mounts the host's root (9p tag
``hostroot``, read-only) under a tmpfs overlay so the guest may write anywhere without
touching the host, puts the kernel's own modules (tag ``modules``) at ``/usr/lib/modules``,
a fresh tmpfs at ``/tmp`` and ``/run``, the writable scratch dir (tag ``scratch``) at the
same path as on the host, mounts proc, sys, dev, bpffs, tracefs, debugfs and cgroup2, and
switches to that root to run ``<scratch>/run.sh``. The run script (written by the host,
see :func:`run_script`) runs the command with its output on the virtio serial port named
``out``, writes the exit status to ``<scratch>/status`` and powers the guest off.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence

INIT = r"""#!/bin/busybox sh
/bin/busybox mkdir -p /usr/bin /usr/sbin /sbin
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
grep -q vmtest.debug /proc/cmdline && { exec 2>/dev/console; set -x; }
fail() { echo "vmtest-init: $*" >/dev/console; sleep 1; poweroff -f; }
for m in $(cat /mod/order); do insmod "$m" || fail "insmod $m"; done
SCRATCH=
for a in $(cat /proc/cmdline); do
  case "$a" in vmtest.scratch=*) SCRATCH="${a#vmtest.scratch=}";; esac
done
[ -n "$SCRATCH" ] || fail "no vmtest.scratch= on the command line"
O=trans=virtio,version=9p2000.L,msize=512000
mount -t 9p -o "$O,ro,cache=loose" hostroot /host || fail "mount hostroot"
mount -t tmpfs -o mode=0755 rw /rw
mkdir -p /rw/upper /rw/work
if ! mount -t overlay -o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work root /newroot
then
  echo "vmtest-init: overlay failed, host root is read-only" >/dev/console
  mount --bind /host /newroot
fi
N=/newroot
mkdir -p $N/usr/lib/modules
mount -t 9p -o "$O,ro,cache=loose" modules $N/usr/lib/modules || fail "mount modules"
mount -t tmpfs -o mode=1777 tmp $N/tmp
mount -t tmpfs -o mode=0755 run $N/run
mkdir -p "$N$SCRATCH"
mount -t 9p -o "$O" scratch "$N$SCRATCH" || fail "mount scratch"
mount --move /proc $N/proc
mount --move /sys $N/sys
mount --move /dev $N/dev
mkdir -p $N/dev/pts $N/dev/shm
mount -t devpts -o mode=0620,ptmxmode=0666 devpts $N/dev/pts
mount -t tmpfs -o mode=1777 shm $N/dev/shm
mount -t bpf bpf $N/sys/fs/bpf
mount -t tracefs tracefs $N/sys/kernel/tracing
mount -t debugfs debugfs $N/sys/kernel/debug
mount -t cgroup2 cgroup2 $N/sys/fs/cgroup
ip link set lo up
echo /usr/sbin/modprobe > $N/proc/sys/kernel/modprobe
[ -x "$N/bin/sh" ] || fail "no /bin/sh on the host root"
exec switch_root $N /bin/sh "$SCRATCH/run.sh"
"""


def run_script(argv: Sequence[str], *, scratch: str, cwd: str,
               env: Mapping[str, str]) -> str:
    """The guest's ``run.sh``: run ``argv`` in ``cwd`` with ``env`` (on top of a minimal
    root environment), output to the ``out`` port, status to ``<scratch>/status``."""
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in sorted(env.items()))
    cmd = " ".join(shlex.quote(a) for a in argv)
    return f"""#!/bin/sh
grep -q vmtest.debug /proc/cmdline && {{ exec 2>/dev/console; set -x; }}
OUT=/dev/console
for p in /sys/class/virtio-ports/*; do
  [ "$(cat "$p/name" 2>/dev/null)" = out ] && OUT="/dev/${{p##*/}}"
done
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TMPDIR=/tmp LANG=C.UTF-8
{exports}cd {shlex.quote(cwd)} || echo "vmtest: no {cwd} in the guest" >"$OUT"
echo "vmtest: guest up after $(cut -d' ' -f1 /proc/uptime) s: $(uname -r)" >"$OUT"
{cmd} >"$OUT" 2>&1 </dev/null
echo $? > {shlex.quote(scratch)}/status.tmp
mv {shlex.quote(scratch)}/status.tmp {shlex.quote(scratch)}/status
sync
echo o > /proc/sysrq-trigger
sleep 10
"""
