// Map-in-map with initial values, a program array with a tail call, a map pinned by name.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
};

struct inner inner_a SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct inner);
} outer SEC(".maps") = {
	.values = { [1] = &inner_a },
};

int tail_target(struct xdp_md *ctx);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, int (void *));
} jumps SEC(".maps") = {
	.values = { [2] = (void *)&tail_target },
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pinned_counts SEC(".maps");

SEC("xdp")
int tail_target(struct xdp_md *ctx)
{
	return XDP_TX;
}

SEC("xdp")
int entry(struct xdp_md *ctx)
{
	__u32 k1 = 1, k0 = 0, *v;
	void *in = bpf_map_lookup_elem(&outer, &k1);

	if (in) {
		v = bpf_map_lookup_elem(in, &k0);
		if (v)
			*v = 42;
	}
	__u64 one = 1;
	bpf_map_update_elem(&pinned_counts, &k0, &one, BPF_ANY);
	bpf_tail_call(ctx, &jumps, 2);
	return XDP_ABORTED;
}

char LICENSE[] SEC("license") = "GPL";
