/* Open-coded iterators (bpf_iter_num_*, what bpf_for expands to, kernel >= 6.4) and a
 * __weak kfunc the kernel lacks (bpf_ksym_exists). On older kernels vmlinux.h has no
 * struct bpf_iter_num: the test build passes -DEBPF_NO_ITER_NUM and the program is
 * refused at load, by libbpf and by us (the kfuncs are not in the kernel's BTF). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#ifdef EBPF_NO_ITER_NUM
struct bpf_iter_num {
	__u64 __opaque[1];
} __attribute__((aligned(8)));
#endif

extern int bpf_iter_num_new(struct bpf_iter_num *it, int start, int end) __ksym;
extern int *bpf_iter_num_next(struct bpf_iter_num *it) __ksym;
extern void bpf_iter_num_destroy(struct bpf_iter_num *it) __ksym;
extern void ebpf_library_no_such_kfunc(void) __ksym __weak;

__u64 iter_sum, kfunc_missing = 1;

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

char LICENSE[] SEC("license") = "GPL";
