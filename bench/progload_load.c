// C floor for bench/progload_bench.py: BPF_PROG_LOAD of a straight-line SOCKET_FILTER program
// (r0 = 0; (N-2) x r0 += 1; exit) through libbpf's bpf_prog_load().
//   progload_load REPEATS N1 [N2 ...]  ->  "load_<N> <ms>" lines, one per repeat and size
#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static struct bpf_insn *build(int n) {
    struct bpf_insn *insns = calloc(n, sizeof(*insns));
    insns[0] = (struct bpf_insn){.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 0};
    for (int i = 1; i < n - 1; i++)
        insns[i] = (struct bpf_insn){.code = BPF_ALU64 | BPF_ADD | BPF_K, .dst_reg = 0, .imm = 1};
    insns[n - 1] = (struct bpf_insn){.code = BPF_JMP | BPF_EXIT};
    return insns;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s REPEATS N...\n", argv[0]);
        return 2;
    }
    int repeats = atoi(argv[1]);
    for (int r = 0; r < repeats; r++) {
        for (int a = 2; a < argc; a++) {
            int n = atoi(argv[a]);
            struct bpf_insn *insns = build(n);
            double t0 = now_ms();
            int fd = bpf_prog_load(BPF_PROG_TYPE_SOCKET_FILTER, NULL, "GPL", insns, n, NULL);
            double t1 = now_ms();
            if (fd < 0) {
                perror("bpf_prog_load");
                return 1;
            }
            close(fd);
            free(insns);
            printf("load_%d %.4f\n", n, t1 - t0);
        }
    }
    return 0;
}
