/* Kernel symbols: typed and untyped __ksym, a __weak ksym the kernel lacks, a version
 * section. (Open-coded iterators are in iters.c: libbpf resolves every extern of an
 * object before loading any program, so a kfunc missing from an older kernel would fail
 * every program of the object.) */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

extern const struct rq runqueues __ksym;                 /* typed: a per-CPU variable */
extern const void bpf_prog_put __ksym;                   /* untyped: an address (kallsyms) */
extern const void ebpf_library_no_such_symbol __ksym __weak;

__u64 rq_cpu = ~0ULL, active_addr, missing_addr = 1;

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

__u32 _version SEC("version") = 0x060100;
char LICENSE[] SEC("license") = "GPL";
