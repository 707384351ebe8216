#include "common.h"

__u64 g64;
__u32 g32;

static __attribute__((noinline)) __s64 sext(__s8 a, __s16 b, __s32 c)
{
	return (__s64)a * b + c;
}

static __attribute__((noinline)) int cb(__u32 i, void *ctx)
{
	__u64 *acc = ctx;
	*acc += i * i;
	return 0;
}

SEC("socket")
int alu_mix(void *ctx)
{
	volatile __s64 x = (__s64)bpf_ktime_get_ns();
	volatile __s32 y = (__s32)x;
	__s64 r = x / (y | 1) + x % 7 - (y >> 3);
	r ^= sext((__s8)x, (__s16)y, y);
	__u32 u = (__u32)r;
	u = (u << 5) | (u >> 27);
	r += __builtin_bswap64(r) + __builtin_bswap32(u) + __builtin_bswap16((__u16)u);
	__sync_fetch_and_or(&g64, r);
	__sync_fetch_and_xor(&g32, u);
	__u64 old = __sync_lock_test_and_set(&g64, 5);
	__sync_val_compare_and_swap(&g32, 3, u);
	__u32 o2 = __sync_fetch_and_and(&g32, 0xff);
	__u64 acc = 0;
	bpf_loop(10, cb, &acc, 0);
	return (int)(r + old + acc + o2 + (__s8)u + (__s16)(u >> 3));
}
