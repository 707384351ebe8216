// C floor for bench/syscall_bench.py: one BPF_MAP_LOOKUP_ELEM on a 1-entry ARRAY map, in a loop.
//   syscall_lookup N REPEATS  ->  "syscall <ns/op>" and "libbpf <ns/op>" lines, one per repeat
// "syscall" is syscall(__NR_bpf) with an attr built once (the same work as the ctypes floor);
// "libbpf" is bpf_map_lookup_elem(), which builds its attr on every call.
#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    int repeats = argc > 2 ? atoi(argv[2]) : 5;
    int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "bench_lookup", 4, 8, 1, NULL);
    if (fd < 0) {
        perror("bpf_map_create");
        return 1;
    }
    uint32_t key = 0;
    uint64_t value = 0;
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.map_fd = fd;
    attr.key = (uint64_t)(uintptr_t)&key;
    attr.value = (uint64_t)(uintptr_t)&value;
    // the size of the map_elem arm (32 bytes), as ebpf and the ctypes floor pass
    unsigned int size = offsetof(union bpf_attr, flags) + sizeof(attr.flags);
    for (int r = 0; r < repeats; r++) {
        double t0 = now_ns();
        for (long i = 0; i < n; i++) {
            if (syscall(__NR_bpf, BPF_MAP_LOOKUP_ELEM, &attr, size) < 0) {
                perror("lookup");
                return 1;
            }
        }
        double t1 = now_ns();
        for (long i = 0; i < n; i++) {
            if (bpf_map_lookup_elem(fd, &key, &value) < 0) {
                perror("bpf_map_lookup_elem");
                return 1;
            }
        }
        double t2 = now_ns();
        printf("syscall %.2f\nlibbpf %.2f\n", (t1 - t0) / n, (t2 - t1) / n);
    }
    close(fd);
    return 0;
}
