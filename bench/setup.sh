#!/usr/bin/env bash
# Install what the benchmarks need on a fresh Debian (bookworm or later) machine, as root.
#
#   bash bench/setup.sh          # then: python3 bench/run.py
#
# - gcc + libbpf-dev: the C floors (bench/*.c built with gcc -O2 -lbpf into bench/build/)
# - python3-bpfcc: the bcc peer (Debian's build, for /usr/bin/python3), bpftool, clang-19
# - kernel headers: bcc compiles its programs against /lib/modules/$(uname -r)/build. When
#   Debian has no headers package for the running kernel (custom or cloud kernels), the
#   newest Debian linux-headers-*-amd64 are installed and linked there; bcc's programs in
#   bench/ only use stable UAPI, so a near version is enough.
# - matplotlib + numpy for the plots and batch reads (apt for Debian's python3, else pip).
# Idempotent: run it again at any time.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh: run as root (apt-get and /lib/modules need it)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
    gcc libc6-dev libbpf-dev pkg-config python3-bpfcc bpftool clang-19 >/dev/null

KREL="$(uname -r)"
BUILD="/lib/modules/${KREL}/build"
if [ ! -e "${BUILD}/include" ] || [ ! -e "/lib/modules/${KREL}/source" ]; then
    if apt-get install -y -qq --no-install-recommends "linux-headers-${KREL}" >/dev/null 2>&1; then
        echo "setup.sh: installed linux-headers-${KREL}"
    else
        arch="$(dpkg --print-architecture)"
        apt-get install -y -qq --no-install-recommends "linux-headers-${arch}" >/dev/null
        # the newest Debian headers: /lib/modules/<deb>/{build,source} (build holds the
        # generated headers and .config, source the common tree; bcc reads both)
        deb="$(ls -d /lib/modules/*-"${arch}" 2>/dev/null | sort -V | tail -1)"
        if [ -z "${deb}" ] || [ ! -e "${deb}/build" ]; then
            echo "setup.sh: no linux-headers found after install; bcc will be unavailable" >&2
        else
            mkdir -p "/lib/modules/${KREL}"
            for part in build source; do
                if [ -e "${deb}/${part}" ]; then
                    ln -sfn "$(readlink -f "${deb}/${part}")" "/lib/modules/${KREL}/${part}"
                fi
            done
            echo "setup.sh: no headers for ${KREL}; linked /lib/modules/${KREL}/{build,source} to ${deb}"
        fi
    fi
fi

# matplotlib + numpy for the interpreter that runs bench/run.py: Debian's own python3 gets
# Debian's packages (pip refuses to touch it, PEP 668); any other (pyenv, venv) gets pip's.
PY="$(command -v "${PYTHON:-python3}")"
if ! "${PY}" -c "import matplotlib, numpy" 2>/dev/null; then
    if [ "$(readlink -f "${PY}")" = "$(readlink -f /usr/bin/python3)" ]; then
        apt-get install -y -qq --no-install-recommends python3-matplotlib python3-numpy >/dev/null
    else
        "${PY}" -m pip install -q matplotlib numpy
    fi
fi

echo "setup.sh: done ($(gcc --version | head -1); libbpf $(pkg-config --modversion libbpf 2>/dev/null || echo '?'))"
/usr/bin/python3 -c "import bcc; print('setup.sh: bcc', getattr(bcc, '__version__', '?'))" \
    || echo "setup.sh: bcc import failed" >&2
