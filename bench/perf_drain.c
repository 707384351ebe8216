// C floor for bench/perf_bench.py: drain a perf buffer with libbpf perf_buffer__consume().
//   perf_drain FILL PAGES REPEATS  ->  "rate <records/s>", "count <n>", "lost <n>" per repeat
// An XDP program sends a 64-byte sample with bpf_perf_event_output(BPF_F_CURRENT_CPU); it
// runs under BPF_PROG_TEST_RUN with repeat=FILL, pinned to CPU 0, to fill that CPU's buffer;
// then only the drain (perf_buffer__consume with a callback counting samples) is timed.
#define _GNU_SOURCE
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long count, lost;
static void on_sample(void *ctx, int cpu, void *data, __u32 size) {
    (void)ctx; (void)cpu; (void)data; (void)size;
    count++;
}
static void on_lost(void *ctx, int cpu, __u64 n) {
    (void)ctx; (void)cpu;
    lost += n;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s FILL PAGES REPEATS\n", argv[0]);
        return 2;
    }
    long fill = atol(argv[1]);
    int pages = atoi(argv[2]);
    int repeats = atoi(argv[3]);
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(0, &set);
    sched_setaffinity(0, sizeof(set), &set);
    int ncpu = libbpf_num_possible_cpus();
    int map_fd = bpf_map_create(BPF_MAP_TYPE_PERF_EVENT_ARRAY, "bench_perf", 4, 4, ncpu, NULL);
    if (map_fd < 0) {
        perror("bpf_map_create");
        return 1;
    }
    struct bpf_insn insns[] = {
        {.code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = 6, .src_reg = 1},
        {.code = BPF_ST | BPF_MEM | BPF_DW, .dst_reg = 10, .off = -64, .imm = 1},
        {.code = BPF_ST | BPF_MEM | BPF_DW, .dst_reg = 10, .off = -56, .imm = 2},
        {.code = BPF_ST | BPF_MEM | BPF_DW, .dst_reg = 10, .off = -48, .imm = 3},
        {.code = BPF_ST | BPF_MEM | BPF_DW, .dst_reg = 10, .off = -40, .imm = 4},
        {.code = BPF_ST | BPF_MEM | BPF_DW, .dst_reg = 10, .off = -32, .imm = 5},
        {.code = BPF_ST | BPF_MEM | BPF_DW, .dst_reg = 10, .off = -24, .imm = 6},
        {.code = BPF_ST | BPF_MEM | BPF_DW, .dst_reg = 10, .off = -16, .imm = 7},
        {.code = BPF_ST | BPF_MEM | BPF_DW, .dst_reg = 10, .off = -8, .imm = 8},
        {.code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = 1, .src_reg = 6},
        {.code = BPF_LD | BPF_DW | BPF_IMM, .dst_reg = 2, .src_reg = BPF_PSEUDO_MAP_FD,
         .imm = map_fd},
        {0},
        {.code = BPF_LD | BPF_DW | BPF_IMM, .dst_reg = 3, .imm = (int)0xffffffff},
        {.imm = 0},
        {.code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = 4, .src_reg = 10},
        {.code = BPF_ALU64 | BPF_ADD | BPF_K, .dst_reg = 4, .imm = -64},
        {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 5, .imm = 64},
        {.code = BPF_JMP | BPF_CALL, .imm = BPF_FUNC_perf_event_output},
        {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 2 /* XDP_PASS */},
        {.code = BPF_JMP | BPF_EXIT},
    };
    int prog_fd = bpf_prog_load(BPF_PROG_TYPE_XDP, NULL, "GPL", insns,
                                sizeof(insns) / sizeof(insns[0]), NULL);
    if (prog_fd < 0) {
        perror("bpf_prog_load");
        return 1;
    }
    struct perf_buffer *pb = perf_buffer__new(map_fd, pages, on_sample, on_lost, NULL, NULL);
    if (!pb) {
        perror("perf_buffer__new");
        return 1;
    }
    unsigned char pkt[64] = {0};
    for (int r = 0; r < repeats; r++) {
        LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = sizeof(pkt),
                    .repeat = fill);
        if (bpf_prog_test_run_opts(prog_fd, &opts) < 0) {
            perror("bpf_prog_test_run_opts");
            return 1;
        }
        count = 0;
        double t0 = now_s();
        perf_buffer__consume(pb);
        double t1 = now_s();
        printf("rate %.1f\ncount %ld\nlost %ld\n", count / (t1 - t0), count, lost);
    }
    perf_buffer__free(pb);
    return 0;
}
