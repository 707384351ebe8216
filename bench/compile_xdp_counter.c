// SPDX-License-Identifier: GPL-2.0
// The C twin of examples/py_xdp_counter.py, for bench/compile_bench.py: the same maps, the
// same checks and the same atomic counter updates, written as a C programmer would.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 256);
} by_proto SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u16);
	__type(value, __u64);
	__uint(max_entries, 1024);
} by_port SEC(".maps");

const volatile __u16 blocked_port = 0;

SEC("xdp")
int counter(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	struct iphdr *ip = data + sizeof(*eth);
	if ((void *)(ip + 1) > end)
		return XDP_PASS;
	__u32 proto = ip->protocol;
	__u64 *n = bpf_map_lookup_elem(&by_proto, &proto);
	if (n)
		__sync_fetch_and_add(n, 1);
	if (ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	struct udphdr *udp = data + sizeof(*eth) + ip->ihl * 4;
	if ((void *)(udp + 1) > end)
		return XDP_DROP;
	__u16 dport = bpf_ntohs(udp->dest);
	__u64 *p = bpf_map_lookup_elem(&by_port, &dport);
	if (p) {
		__sync_fetch_and_add(p, 1);
	} else {
		__u64 one = 1;
		bpf_map_update_elem(&by_port, &dport, &one, BPF_NOEXIST);
	}
	return dport == blocked_port ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
