// CO-RE field relocations against the kernel's BTF, checked by running the program.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

/* A local, deliberately incomplete and reordered view of the kernel's __sk_buff:
 * CO-RE must move the fields to the kernel's offsets. */
struct __sk_buff___local {
	__u32 protocol;
	__u32 len;
	__u32 does_not_exist;
} __attribute__((preserve_access_index));

__u64 out[8] = {};

SEC("socket")
int core_skb(struct __sk_buff *skb)
{
	struct __sk_buff___local *l = (void *)skb;

	out[0] = bpf_core_field_offset(struct __sk_buff, len);
	out[1] = bpf_core_field_offset(struct __sk_buff___local, protocol);
	out[2] = bpf_core_field_exists(struct __sk_buff___local, does_not_exist);
	out[3] = bpf_core_field_exists(struct __sk_buff___local, len);
	out[4] = bpf_core_field_size(struct __sk_buff, cb);
	out[5] = bpf_core_type_size(struct task_struct);
	out[6] = l->len;
	out[7] = bpf_core_enum_value(enum bpf_map_type, BPF_MAP_TYPE_RINGBUF);
	return 0;
}

__u32 pid_seen = 0;
__u32 tgid_seen = 0;

SEC("raw_tp/sys_enter")
int core_task(void *ctx)
{
	struct task_struct *t = (void *)bpf_get_current_task();

	pid_seen = BPF_CORE_READ(t, pid);
	tgid_seen = BPF_CORE_READ(t, tgid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
