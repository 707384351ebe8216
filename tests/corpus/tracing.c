/* BTF-typed tracing: fentry, fexit (with the return value), an LSM hook and a BTF raw
 * tracepoint, counting only the test's own process (targ_tgid). The host refuses these
 * program types (EPERM); they load and run in the VM of the kernel matrix. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

const volatile __u32 targ_tgid = 0;
__u64 entries, exits, lsm_calls, tp_calls;
__s64 last_ret = -1;

static __always_inline int mine(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == targ_tgid;
}

SEC("fentry/do_nanosleep")
int BPF_PROG(enter_nanosleep, struct hrtimer_sleeper *t, enum hrtimer_mode mode)
{
	if (mine())
		__sync_fetch_and_add(&entries, 1);
	return 0;
}

SEC("fexit/do_nanosleep")
int BPF_PROG(exit_nanosleep, struct hrtimer_sleeper *t, enum hrtimer_mode mode, int ret)
{
	if (mine()) {
		__sync_fetch_and_add(&exits, 1);
		last_ret = ret;
	}
	return 0;
}

SEC("lsm/file_open")
int BPF_PROG(check_open, struct file *file, int prev)
{
	if (mine())
		__sync_fetch_and_add(&lsm_calls, 1);
	return prev;   /* never denies */
}

SEC("tp_btf/sys_enter")
int BPF_PROG(btf_sys_enter, struct pt_regs *regs, long id)
{
	if (mine())
		__sync_fetch_and_add(&tp_calls, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
