/* const volatile config in .rodata gating code the verifier must prune (issue 10, gap 1). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

const volatile int unsafe_read = 0;   /* set before load; 1 makes the program invalid */
const volatile __u32 verdict = XDP_PASS;

SEC("xdp")
int gate(struct xdp_md *ctx)
{
	if (unsafe_read) {
		void *data = (void *)(long)ctx->data;
		return *(__u32 *)data;  /* no bounds check: rejected when reachable */
	}
	return verdict;
}

char LICENSE[] SEC("license") = "GPL";
