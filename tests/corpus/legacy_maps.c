/* A legacy map definition: struct bpf_map_def in SEC("maps") (pre-BTF libbpf). libbpf 1.0
 * dropped it (bpf_object__open fails); we still read it, as cilium/ebpf does. */
#include <linux/bpf.h>
#define SEC(n) __attribute__((section(n), used))

struct bpf_map_def {            /* the layout old libbpf read: five u32s */
	unsigned int type, key_size, value_size, max_entries, map_flags;
};

struct bpf_map_def SEC("maps") legacy_counts = {
	.type = BPF_MAP_TYPE_ARRAY, .key_size = 4, .value_size = 8, .max_entries = 2,
};

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;

SEC("xdp")
int count_legacy(struct xdp_md *ctx)
{
	__u32 k = 1;
	__u64 *v = bpf_map_lookup_elem(&legacy_counts, &k);
	if (v)
		__sync_fetch_and_add(v, 1);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
