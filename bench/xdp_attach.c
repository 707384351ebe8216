// C floor for bench/xdp_attach_bench.py: load + attach + detach of an XDP program, libbpf.
//
//   xdp_attach REPEATS IFNAME NETNS_PATH
//
// Enters the network namespace at NETNS_PATH (setns), then REPEATS times, each timed whole:
//   link:    bpf_prog_load(XDP, "r0 = XDP_PASS; exit") + if_nametoindex + bpf_link_create(BPF_XDP,
//            XDP_FLAGS_SKB_MODE) + close(link) + close(prog)
//   netlink: bpf_prog_load + if_nametoindex + bpf_xdp_attach(SKB_MODE) + bpf_xdp_detach + close
// and prints "link <us>" / "netlink <us>" lines, one per repeat (interleaved).
#define _GNU_SOURCE
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static const struct bpf_insn prog[] = {
    {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 2}, /* r0 = XDP_PASS */
    {.code = BPF_JMP | BPF_EXIT},
};

static int load(void) {
    int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "xdp_bench", "GPL", prog, 2, NULL);
    if (fd < 0) {
        perror("bpf_prog_load");
        exit(1);
    }
    return fd;
}

static int one_link(const char *ifname) {
    int prog_fd = load();
    int ifindex = if_nametoindex(ifname);
    LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = XDP_FLAGS_SKB_MODE);
    int link = bpf_link_create(prog_fd, ifindex, BPF_XDP, &opts);
    if (link < 0) {
        perror("bpf_link_create");
        return -1;
    }
    close(link);
    close(prog_fd);
    return 0;
}

static int one_netlink(const char *ifname) {
    int prog_fd = load();
    int ifindex = if_nametoindex(ifname);
    if (bpf_xdp_attach(ifindex, prog_fd, XDP_FLAGS_SKB_MODE, NULL) < 0) {
        perror("bpf_xdp_attach");
        return -1;
    }
    if (bpf_xdp_detach(ifindex, XDP_FLAGS_SKB_MODE, NULL) < 0) {
        perror("bpf_xdp_detach");
        return -1;
    }
    close(prog_fd);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s REPEATS IFNAME NETNS_PATH\n", argv[0]);
        return 2;
    }
    int repeats = atoi(argv[1]);
    const char *ifname = argv[2];
    int ns = open(argv[3], O_RDONLY | O_CLOEXEC);
    if (ns < 0 || setns(ns, CLONE_NEWNET) < 0) {
        perror("setns");
        return 1;
    }
    close(ns);
    if (!if_nametoindex(ifname)) {
        perror(ifname);
        return 1;
    }
    if (one_link(ifname) || one_netlink(ifname)) /* warm-up */
        return 1;
    for (int r = 0; r < repeats; r++) {
        double t0 = now_us();
        if (one_link(ifname))
            return 1;
        double t1 = now_us();
        if (one_netlink(ifname))
            return 1;
        double t2 = now_us();
        printf("link %.2f\nnetlink %.2f\n", t1 - t0, t2 - t1);
    }
    return 0;
}
