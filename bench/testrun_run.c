// C floor for bench/testrun_bench.py: BPF_PROG_TEST_RUN with repeat=1 on a 64-byte packet,
// for an XDP program (r0 = XDP_PASS; exit) and a SOCKET_FILTER program (r0 = 0; exit).
//   testrun_run N REPEATS  ->  "<type>_libbpf <ns/op>" lines (bpf_prog_test_run_opts, opts
//   built once), "<type>_syscall <ns/op>" (syscall(__NR_bpf) with a pre-built attr)
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

static int load(enum bpf_prog_type type, int ret) {
    struct bpf_insn insns[] = {
        {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = ret},
        {.code = BPF_JMP | BPF_EXIT},
    };
    int fd = bpf_prog_load(type, NULL, "GPL", insns, 2, NULL);
    if (fd < 0) {
        perror("bpf_prog_load");
        exit(1);
    }
    return fd;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 100000;
    int repeats = argc > 2 ? atoi(argv[2]) : 5;
    struct { const char *name; int fd; } progs[] = {
        {"xdp", load(BPF_PROG_TYPE_XDP, 2 /* XDP_PASS */)},
        {"socket_filter", load(BPF_PROG_TYPE_SOCKET_FILTER, 0)},
    };
    unsigned char in[64] = {0}, out[64 + 256];
    for (int r = 0; r < repeats; r++) {
        for (int p = 0; p < 2; p++) {
            LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in, .data_size_in = sizeof(in),
                        .data_out = out, .data_size_out = sizeof(out), .repeat = 1);
            double t0 = now_ns();
            for (long i = 0; i < n; i++) {
                opts.data_size_out = sizeof(out);
                if (bpf_prog_test_run_opts(progs[p].fd, &opts) < 0) {
                    perror("bpf_prog_test_run_opts");
                    return 1;
                }
            }
            double t1 = now_ns();
            union bpf_attr attr;
            memset(&attr, 0, sizeof(attr));
            attr.test.prog_fd = progs[p].fd;
            attr.test.data_in = (uint64_t)(uintptr_t)in;
            attr.test.data_size_in = sizeof(in);
            attr.test.data_out = (uint64_t)(uintptr_t)out;
            attr.test.data_size_out = sizeof(out);
            attr.test.repeat = 1;
            unsigned int size = offsetof(union bpf_attr, test.batch_size) +
                                sizeof(attr.test.batch_size);
            double t2 = now_ns();
            for (long i = 0; i < n; i++) {
                if (syscall(__NR_bpf, BPF_PROG_TEST_RUN, &attr, size) < 0) {
                    perror("BPF_PROG_TEST_RUN");
                    return 1;
                }
            }
            double t3 = now_ns();
            printf("%s_libbpf %.2f\n%s_syscall %.2f\n", progs[p].name, (t1 - t0) / n,
                   progs[p].name, (t3 - t2) / n);
        }
    }
    return 0;
}
