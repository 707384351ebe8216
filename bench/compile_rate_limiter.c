// SPDX-License-Identifier: GPL-2.0
// The C twin of examples/py_rate_limiter.py, for bench/compile_bench.py.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

const volatile __u64 rate = 10;
const volatile __u64 burst = 5;
__u64 tokens = 0;
__u64 last_ns = 0;
__u64 dropped = 0;

SEC("xdp")
int limiter(struct xdp_md *ctx)
{
	__u64 now = bpf_ktime_get_ns();
	__u64 t = tokens;

	if (last_ns == 0) {
		t = burst;
	} else {
		t = t + (now - last_ns) * rate / 1000000000;
		if (t > burst)
			t = burst;
	}
	last_ns = now;
	if (t == 0) {
		tokens = 0;
		__sync_fetch_and_add(&dropped, 1);
		return XDP_DROP;
	}
	tokens = t - 1;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
