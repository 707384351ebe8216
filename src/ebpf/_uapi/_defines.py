"""Kernel ABI constants that are ``#define`` in the uapi headers, so absent from BTF.

Everything that BTF carries is generated (``_generated_types.py``); only these are written by
hand, each with the header it comes from. Tests prove them against the kernel's behaviour
where a wrong value would show (e.g. a sleepable program loads only with the right flag).
"""

from __future__ import annotations

# include/uapi/linux/bpf.h: BPF_PROG_LOAD prog_flags
BPF_F_STRICT_ALIGNMENT = 1 << 0
BPF_F_ANY_ALIGNMENT = 1 << 1
BPF_F_TEST_RND_HI32 = 1 << 2
BPF_F_TEST_STATE_FREQ = 1 << 3
BPF_F_SLEEPABLE = 1 << 4
BPF_F_XDP_HAS_FRAGS = 1 << 5
BPF_F_XDP_DEV_BOUND_ONLY = 1 << 6
BPF_F_TEST_REG_INVARIANTS = 1 << 7

# include/uapi/linux/bpf.h: BPF_PROG_ATTACH / BPF_LINK_CREATE attach_flags
BPF_F_ALLOW_OVERRIDE = 1 << 0
BPF_F_ALLOW_MULTI = 1 << 1
BPF_F_REPLACE = 1 << 2
BPF_F_BEFORE = 1 << 3
BPF_F_AFTER = 1 << 4
BPF_F_ID = 1 << 5

# include/uapi/linux/bpf.h: BPF_PROG_QUERY query_flags
BPF_F_QUERY_EFFECTIVE = 1 << 0

# include/uapi/linux/bpf.h: BPF_PROG_TEST_RUN flags
BPF_F_TEST_RUN_ON_CPU = 1 << 0
BPF_F_TEST_XDP_LIVE_FRAMES = 1 << 1
BPF_F_TEST_SKB_CHECKSUM_COMPLETE = 1 << 2

# include/uapi/linux/bpf.h: BPF_LINK_CREATE netfilter flags
BPF_F_NETFILTER_IP_DEFRAG = 1 << 0

# include/uapi/linux/bpf.h: ld_imm64 src_reg pseudo values, call src_reg values
BPF_PSEUDO_MAP_FD = 1
BPF_PSEUDO_MAP_VALUE = 2
BPF_PSEUDO_BTF_ID = 3
BPF_PSEUDO_FUNC = 4
BPF_PSEUDO_MAP_IDX = 5
BPF_PSEUDO_MAP_IDX_VALUE = 6
BPF_PSEUDO_CALL = 1
BPF_PSEUDO_KFUNC_CALL = 2

# include/uapi/linux/if_link.h: XDP flags (IFLA_XDP_FLAGS and BPF_LINK_CREATE flags for XDP)
XDP_FLAGS_UPDATE_IF_NOEXIST = 1 << 0
XDP_FLAGS_SKB_MODE = 1 << 1
XDP_FLAGS_DRV_MODE = 1 << 2
XDP_FLAGS_HW_MODE = 1 << 3
XDP_FLAGS_REPLACE = 1 << 4
XDP_FLAGS_MODES = XDP_FLAGS_SKB_MODE | XDP_FLAGS_DRV_MODE | XDP_FLAGS_HW_MODE

# include/uapi/linux/bpf.h
BPF_OBJ_NAME_LEN = 16
BPF_TAG_SIZE = 8

# include/uapi/linux/perf_event.h: ioctl numbers are built with ebpf._uapi._arch.ioc
PERF_FLAG_FD_CLOEXEC = 1 << 3
