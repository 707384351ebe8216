// A kfunc extern resolved against kernel BTF.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;

__u32 ifindex_seen = 0;

SEC("xdp")
int kern_ctx(struct xdp_md *ctx)
{
	struct xdp_buff *kctx = bpf_cast_to_kern_ctx(ctx);

	ifindex_seen = kctx->rxq->dev->ifindex;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
