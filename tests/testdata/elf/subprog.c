// A .text subprogram, a static subprogram in the program section and a bpf_loop callback.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

__u64 result = 0;
__u32 loops = 10;

__attribute__((noinline)) int add_sq(int a, int b)   /* global: verified on its own */
{
	return a + b * b;
}

static __attribute__((noinline)) int triple(int x)
{
	return x * 3;
}

struct loop_ctx {
	__u64 sum;
};

static long loop_cb(__u64 index, void *data)
{
	struct loop_ctx *c = data;

	c->sum += index;
	return 0;
}

SEC("xdp")
int calls(struct xdp_md *ctx)
{
	struct loop_ctx c = { .sum = 0 };

	bpf_loop(loops, loop_cb, &c, 0);
	result = c.sum * 1000 + triple(add_sq(1, 2));
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
