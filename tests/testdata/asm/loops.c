#include "common.h"

struct {
	__uint(type, 2); /* BPF_MAP_TYPE_ARRAY */
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 16);
} arr SEC(".maps");

SEC("tc")
int loops(void *ctx)
{
	__u64 sum = 0;
	for (__u32 i = 0; i < 16; i++) {
		__u32 k = i;
		__u64 *v = bpf_map_lookup_elem(&arr, &k);
		if (!v)
			continue;
		if (*v > 1000)
			break;
		if ((__s64)*v < -5)
			sum -= *v;
		else
			sum += *v << (i & 7);
	}
	__u32 s32 = (__u32)sum;
	if (s32 >= 100 && s32 <= 200)
		return 7;
	if ((__s32)s32 < -3)
		return 8;
	return s32 & 0xffff;
}
