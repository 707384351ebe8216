/* __kconfig externs: the values libbpf computes, CONFIG_* of every type, __weak (gap 2). */
#include <stdbool.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern unsigned int LINUX_KERNEL_VERSION __kconfig;
extern bool LINUX_HAS_BPF_COOKIE __kconfig;
extern bool LINUX_HAS_SYSCALL_WRAPPER __kconfig;
extern bool CONFIG_BPF_SYSCALL __kconfig;
extern enum libbpf_tristate CONFIG_BPF_JIT __kconfig __weak;
extern int CONFIG_HZ __kconfig __weak;
extern char CONFIG_DEFAULT_HOSTNAME[32] __kconfig __weak;
extern int CONFIG_EBPF_LIBRARY_NO_SUCH_OPTION __kconfig __weak;

__u64 out_version, out_cookie, out_wrapper, out_bpf_syscall, out_jit, out_hz, out_missing;
char out_hostname[32];

SEC("socket")
int read_kconfig(struct __sk_buff *skb)
{
	out_version = LINUX_KERNEL_VERSION;
	out_cookie = LINUX_HAS_BPF_COOKIE;
	out_wrapper = LINUX_HAS_SYSCALL_WRAPPER;
	out_bpf_syscall = CONFIG_BPF_SYSCALL;
	out_jit = CONFIG_BPF_JIT;
	out_hz = CONFIG_HZ;
	out_missing = CONFIG_EBPF_LIBRARY_NO_SUCH_OPTION;
	__builtin_memcpy(out_hostname, CONFIG_DEFAULT_HOSTNAME, sizeof(out_hostname));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
