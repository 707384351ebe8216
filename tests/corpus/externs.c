/* Kernel symbols and iterators: typed and untyped __ksym, a __weak ksym the kernel lacks,
 * an open-coded numbers iterator (bpf_iter_num_*, what bpf_for expands to), a version
 * section. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

extern const struct rq runqueues __ksym;                 /* typed: a per-CPU variable */
extern const void bpf_prog_put __ksym;                   /* untyped: an address (kallsyms) */
extern const void ebpf_library_no_such_symbol __ksym __weak;

extern int bpf_iter_num_new(struct bpf_iter_num *it, int start, int end) __ksym;
extern int *bpf_iter_num_next(struct bpf_iter_num *it) __ksym;
extern void bpf_iter_num_destroy(struct bpf_iter_num *it) __ksym;
extern void ebpf_library_no_such_kfunc(void) __ksym __weak;

__u64 rq_cpu = ~0ULL, active_addr, missing_addr = 1, iter_sum, kfunc_missing = 1;

SEC("socket")
int typed_ksym(struct __sk_buff *skb)   /* needs CONFIG_KALLSYMS_ALL: ENOENT without */
{
	struct rq *rq = bpf_this_cpu_ptr(&runqueues);

	rq_cpu = rq->cpu;
	return 0;
}

SEC("socket")
int ksyms(struct __sk_buff *skb)
{
	active_addr = (__u64)&bpf_prog_put;
	missing_addr = (__u64)&ebpf_library_no_such_symbol;
	return 0;
}

SEC("socket")
int numbers(struct __sk_buff *skb)
{
	struct bpf_iter_num it;
	int *v;
	__u64 sum = 0;

	bpf_iter_num_new(&it, 0, 10);
	while ((v = bpf_iter_num_next(&it)))
		sum += *v;
	bpf_iter_num_destroy(&it);
	iter_sum = sum;
	if (&ebpf_library_no_such_kfunc != 0)   /* bpf_ksym_exists() */
		ebpf_library_no_such_kfunc();   /* poisoned, pruned as dead code */
	else
		kfunc_missing = 0;
	return 0;
}

__u32 _version SEC("version") = 0x060100;
char LICENSE[] SEC("license") = "GPL";
