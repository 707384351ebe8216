// SPDX-License-Identifier: GPL-2.0
// The C twin of examples/py_opensnoop.py, for bench/compile_bench.py: the same maps, record
// and steps (sys_enter_openat copies the user path into a zeroed record kept by thread id;
// sys_exit_openat adds the result, outputs the record to the ring buffer and drops it).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

// The tracepoints' records, as in their tracefs format files.
struct openat_enter {
	__u64 common;
	__s32 syscall_nr;
	__u32 pad;
	__u64 dfd;
	const char *filename;
	__u64 flags;
	__u64 mode;
};

struct openat_exit {
	__u64 common;
	__s32 syscall_nr;
	__u32 pad;
	__s64 ret;
};

struct open {
	__u32 pid;
	__u32 len;
	__s64 ret;
	char path[128];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, struct open);
} pending SEC(".maps");

const volatile __u32 target = 0;

SEC("tracepoint/syscalls/sys_enter_openat")
int enter(struct openat_enter *ctx)
{
	__u64 tid = bpf_get_current_pid_tgid();
	struct open rec = {};

	if (tid >> 32 != target)
		return 0;
	rec.pid = tid >> 32;
	rec.len = bpf_probe_read_user_str(rec.path, sizeof(rec.path), ctx->filename);
	bpf_map_update_elem(&pending, &tid, &rec, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat")
int leave(struct openat_exit *ctx)
{
	__u64 tid = bpf_get_current_pid_tgid();
	struct open *rec = bpf_map_lookup_elem(&pending, &tid);

	if (!rec)
		return 0;
	rec->ret = ctx->ret;
	bpf_ringbuf_output(&events, rec, sizeof(*rec), 0);
	bpf_map_delete_elem(&pending, &tid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
