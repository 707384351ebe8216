#!/usr/bin/env bash
# Pin the running kernel's BTF as the generators' input, then regenerate everything from it.
set -euo pipefail
cd "$(dirname "$0")/.."
gzip -9 -n -c /sys/kernel/btf/vmlinux > tests/testdata/vmlinux.btf.gz
uname -r > tests/testdata/vmlinux.btf.version
python tools/gen_types.py
if [ -f tools/gen_helpers.py ]; then python tools/gen_helpers.py; fi
