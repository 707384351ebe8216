/* libbpf conventions tools use: vmlinux.h, BPF_CORE_READ chains, bitfields, CO-RE
 * existence/enum checks, .data/.bss shared with userspace, bpf_loop callbacks, static and
 * global subprograms, map-in-map with an inner definition, a prog array initialised in
 * .maps, SEC("?...") and a license section. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

const volatile __u32 targ_tgid = 0;     /* 0: any process */
__u32 seen_tgid, seen_ppid, reset_on_fork, has_pid, has_task, hash_type;
__u64 calls = 0;                        /* .bss, read from Python */
__u64 step = 1;                         /* .data, written from Python while it runs */
__u64 loop_sum;

struct inner_map {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} inner0 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct inner_map);
} outer SEC(".maps") = { .values = { [0] = &inner0 } };

int tail_target(struct __sk_buff *skb);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, int (void *));
} jumps SEC(".maps") = { .values = { [1] = (void *)&tail_target } };

SEC("tp/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
	struct task_struct *t = (void *)bpf_get_current_task();
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (targ_tgid && tgid != targ_tgid)
		return 0;
	seen_tgid = BPF_CORE_READ(t, tgid);
	seen_ppid = BPF_CORE_READ(t, real_parent, tgid);
	reset_on_fork = BPF_CORE_READ_BITFIELD_PROBED(t, sched_reset_on_fork);
	has_pid = bpf_core_field_exists(t->pid);
	has_task = bpf_core_type_exists(struct task_struct);
	hash_type = bpf_core_enum_value(enum bpf_map_type, BPF_MAP_TYPE_HASH);
	__sync_fetch_and_add(&calls, step);
	return 0;
}

static int add_index(__u32 i, void *ctx)
{
	*(__u64 *)ctx += i;
	return 0;
}

static __noinline __u64 twice(__u64 v)     /* static subprogram */
{
	return v * 2;
}

__noinline int global_len(struct __sk_buff *skb)  /* global subprogram */
{
	return skb ? skb->len : 0;
}

SEC("socket")
int loops(struct __sk_buff *skb)
{
	__u64 sum = 0;
	__u32 key = 0;
	void *inner;
	__u64 *v;

	bpf_loop(10, add_index, &sum, 0);
	loop_sum = twice(sum);
	inner = bpf_map_lookup_elem(&outer, &key);
	if (inner) {
		v = bpf_map_lookup_elem(inner, &key);
		if (v)
			*v += 1;
	}
	return global_len(skb);
}

SEC("socket")
int tail_target(struct __sk_buff *skb)
{
	return 42;
}

SEC("socket")
int jumper(struct __sk_buff *skb)
{
	bpf_tail_call(skb, &jumps, 1);
	return 7;
}

SEC("?socket")
int optional_one(struct __sk_buff *skb)
{
	return 3;
}

SEC("fentry/do_nanosleep")
int BPF_PROG(on_nanosleep)   /* the host refuses fentry: skipped with EPERM */
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
