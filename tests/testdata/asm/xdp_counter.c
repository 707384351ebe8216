#include "common.h"

struct {
	__uint(type, 1); /* BPF_MAP_TYPE_HASH */
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1024);
} counts SEC(".maps");

struct ethhdr { __u8 dst[6], src[6]; __u16 proto; };
struct iphdr { __u8 ihl_ver, tos; __u16 len, id, frag; __u8 ttl, proto; __u16 csum; __u32 saddr, daddr; };

SEC("xdp")
int xdp_count(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return 1;
	if (eth->proto != __builtin_bswap16(0x0800))
		return 2;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end)
		return 1;
	__u32 key = __builtin_bswap32(ip->saddr);
	__u64 *v = bpf_map_lookup_elem(&counts, &key);
	if (v) {
		__sync_fetch_and_add(v, 1);
	} else {
		__u64 one = 1;
		bpf_map_update_elem(&counts, &key, &one, 0);
	}
	return ip->ttl > 64 ? 2 : 1;
}
