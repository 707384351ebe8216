// C floor for bench/coldstart_bench.py: a fresh process loads a 2-instruction SOCKET_FILTER
// program with libbpf bpf_prog_load() and runs it once with bpf_prog_test_run_opts().
// The parent times the whole process (exec to exit).
#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <unistd.h>

int main(void) {
    struct bpf_insn insns[] = {
        {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 0},
        {.code = BPF_JMP | BPF_EXIT},
    };
    int fd = bpf_prog_load(BPF_PROG_TYPE_SOCKET_FILTER, NULL, "GPL", insns, 2, NULL);
    if (fd < 0) {
        perror("bpf_prog_load");
        return 1;
    }
    unsigned char pkt[64] = {0};
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = sizeof(pkt),
                .repeat = 1);
    if (bpf_prog_test_run_opts(fd, &opts) < 0) {
        perror("bpf_prog_test_run_opts");
        return 1;
    }
    close(fd);
    return (int)opts.retval;
}
