// C floor for bench/drain_sweep.py: drain a BPF ring buffer with libbpf ring_buffer__consume().
//   drain_ringbuf SIZE FILL RING_BYTES REPEATS  ->  "rate <records/s>", "count <n>" per repeat
// An XDP program reserves SIZE bytes, writes the first 8 and submits (BPF_RB_NO_WAKEUP); it
// runs under BPF_PROG_TEST_RUN with repeat=FILL to fill the ring, then only the drain
// (ring_buffer__consume with a callback that counts records) is timed.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
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

static int on_record(void *ctx, void *data, size_t size) {
    (void)data;
    (void)size;
    (*(long *)ctx)++;
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s SIZE FILL RING_BYTES REPEATS\n", argv[0]);
        return 2;
    }
    int size = atoi(argv[1]);
    long fill = atol(argv[2]);
    int ring_bytes = atoi(argv[3]);
    int repeats = atoi(argv[4]);
    int map_fd = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "bench_drain", 0, 0, ring_bytes, NULL);
    if (map_fd < 0) {
        perror("bpf_map_create");
        return 1;
    }
    struct bpf_insn insns[] = {
        {.code = BPF_LD | BPF_DW | BPF_IMM, .dst_reg = 1, .src_reg = BPF_PSEUDO_MAP_FD,
         .imm = map_fd},
        {0},
        {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 2, .imm = size},
        {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 3, .imm = 0},
        {.code = BPF_JMP | BPF_CALL, .imm = BPF_FUNC_ringbuf_reserve},
        {.code = BPF_JMP | BPF_JEQ | BPF_K, .dst_reg = 0, .off = 4, .imm = 0},
        {.code = BPF_ST | BPF_MEM | BPF_DW, .dst_reg = 0, .off = 0, .imm = 1},
        {.code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = 1, .src_reg = 0},
        {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 2, .imm = BPF_RB_NO_WAKEUP},
        {.code = BPF_JMP | BPF_CALL, .imm = BPF_FUNC_ringbuf_submit},
        {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 2 /* XDP_PASS */},
        {.code = BPF_JMP | BPF_EXIT},
    };
    int prog_fd = bpf_prog_load(BPF_PROG_TYPE_XDP, NULL, "GPL", insns,
                                sizeof(insns) / sizeof(insns[0]), NULL);
    if (prog_fd < 0) {
        perror("bpf_prog_load");
        return 1;
    }
    long count = 0;
    struct ring_buffer *rb = ring_buffer__new(map_fd, on_record, &count, NULL);
    if (!rb) {
        perror("ring_buffer__new");
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
        int got = ring_buffer__consume(rb);
        double t1 = now_s();
        if (got < 0) {
            fprintf(stderr, "ring_buffer__consume: %d\n", got);
            return 1;
        }
        printf("rate %.1f\ncount %ld\n", count / (t1 - t0), count);
    }
    ring_buffer__free(rb);
    return 0;
}
