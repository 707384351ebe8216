/* A strong __kconfig extern no kernel has: both loaders must refuse it (gap 2). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern int CONFIG_EBPF_LIBRARY_NO_SUCH_OPTION __kconfig;

SEC("socket")
int strong(struct __sk_buff *skb)
{
	return CONFIG_EBPF_LIBRARY_NO_SUCH_OPTION;
}

char LICENSE[] SEC("license") = "GPL";
