// SPDX-License-Identifier: GPL-2.0
// The C twin of examples/py_syscall_latency.py, for bench/compile_bench.py.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u64);
	__type(value, __u64);
	__uint(max_entries, 1024);
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 64);
} hist SEC(".maps");

const volatile __u32 target_tgid = 0;

SEC("raw_tp/sys_enter")
int on_enter(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();

	if ((id >> 32) != target_tgid)
		return 0;
	__u64 ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&start, &id, &ts, BPF_ANY);
	return 0;
}

SEC("raw_tp/sys_exit")
int on_exit(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();

	if ((id >> 32) != target_tgid)
		return 0;
	__u64 *tsp = bpf_map_lookup_elem(&start, &id);
	__u64 t0 = tsp ? *tsp : 0;
	if (t0 == 0)
		return 0;
	bpf_map_delete_elem(&start, &id);
	__u64 delta = bpf_ktime_get_ns() - t0;
	__u32 slot = 0;
	for (__u32 i = 0; i < 63; i++) {
		if ((delta >> (i + 1)) == 0)
			break;
		slot = i + 1;
	}
	__u64 *n = bpf_map_lookup_elem(&hist, &slot);
	if (n)
		__sync_fetch_and_add(n, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
