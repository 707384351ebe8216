// XDP and socket filter programs with a BTF-defined hash map and global data.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} legacy_like SEC(".maps");

__u64 packets = 0;              /* .bss */
__u64 bytes_seen = 0;           /* .bss */
__u32 generation = 7;           /* .data */
const volatile __u32 verdict = 2;   /* .rodata, XDP_PASS unless set before load */
const volatile __u32 key_base = 100;

SEC("xdp")
int count_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 len = data_end - data;
	__u32 key = key_base + len;
	__u64 one = 1, *val;

	val = bpf_map_lookup_elem(&counts, &key);
	if (val)
		__sync_fetch_and_add(val, 1);
	else
		bpf_map_update_elem(&counts, &key, &one, BPF_ANY);
	__sync_fetch_and_add(&packets, 1);
	bytes_seen += len;
	generation++;
	return verdict;
}

SEC("xdp")
int drop_all(struct xdp_md *ctx)
{
	return XDP_DROP;
}

SEC("socket")
int sock_len(struct __sk_buff *skb)
{
	__u32 k = 1, *v = bpf_map_lookup_elem(&legacy_like, &k);
	if (v)
		*v = skb->len;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
