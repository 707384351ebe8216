/* Structs as map keys/values and ring buffer events: the C side of skeleton_events.py. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct key { __u32 tgid; __u16 kind; };
struct stats { __u64 count; __u64 last_ns; };
struct event { __u32 tgid; __u32 ppid_calls; char comm[16]; __u8 flag : 1, level : 3; };

const volatile __u32 targ_tgid = 0;
const struct event *unused_event __attribute__((unused));  /* puts struct event in BTF */
__u64 emitted = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct key);
	__type(value, struct stats);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

SEC("tp/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct key k;
	struct stats init = {}, *s;
	struct event *e;

	if (targ_tgid && tgid != targ_tgid)
		return 0;
	__builtin_memset(&k, 0, sizeof(k));  /* the padding is part of the key */
	k.tgid = tgid;
	k.kind = 1;
	s = bpf_map_lookup_elem(&counts, &k);
	if (!s) {
		bpf_map_update_elem(&counts, &k, &init, BPF_NOEXIST);
		s = bpf_map_lookup_elem(&counts, &k);
		if (!s)
			return 0;
	}
	s->count++;
	s->last_ns = bpf_ktime_get_ns();
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->tgid = tgid;
	e->ppid_calls = s->count;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->flag = 1;
	e->level = 5;
	bpf_ringbuf_submit(e, 0);
	emitted++;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
