/* A map whose max_entries userspace sets, and an optional SEC("?...") program (gap 3). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u64);
} sized_later SEC(".maps");

SEC("socket")
int use_map(struct __sk_buff *skb)
{
	__u32 key = 1;
	__u64 one = 1, *v = bpf_map_lookup_elem(&sized_later, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
	else
		bpf_map_update_elem(&sized_later, &key, &one, BPF_ANY);
	return 0;
}

SEC("?socket")
int optional_prog(struct __sk_buff *skb)
{
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
