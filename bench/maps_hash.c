/* Floors for bench/maps_bench.py: HASH u32 -> u64 in C through libbpf.
 *
 *   maps_hash N REPEATS [CHUNK]
 *
 * per_op  ns per operation of N updates then N lookups (bpf_map_update_elem/lookup_elem);
 * batch   ns per entry of one bpf_map_update_batch of N entries, then reading them all back
 *         with bpf_map_lookup_batch in chunks of CHUNK (default N), cursor-based until ENOENT.
 * One "label value" line per repeat.
 */
#include <bpf/bpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    unsigned n = argc > 1 ? (unsigned)atoi(argv[1]) : 100000;
    int reps = argc > 2 ? atoi(argv[2]) : 5;
    unsigned chunk = argc > 3 ? (unsigned)atoi(argv[3]) : n;
    int fd = bpf_map_create(BPF_MAP_TYPE_HASH, "floor", 4, 8, n, NULL);
    if (fd < 0) { perror("bpf_map_create"); return 1; }
    unsigned *keys = malloc(sizeof(*keys) * n), *okeys = malloc(sizeof(*okeys) * n);
    unsigned long long *vals = malloc(sizeof(*vals) * n), *ovals = malloc(sizeof(*ovals) * n);
    for (unsigned i = 0; i < n; i++) { keys[i] = i; vals[i] = (unsigned long long)i * 3; }
    for (int r = 0; r < reps; r++) {
        double t = now();
        for (unsigned i = 0; i < n; i++) {
            unsigned long long v = i;
            if (bpf_map_update_elem(fd, &i, &v, 0)) { perror("update"); return 1; }
        }
        for (unsigned i = 0; i < n; i++) {
            unsigned long long v;
            if (bpf_map_lookup_elem(fd, &i, &v)) { perror("lookup"); return 1; }
        }
        printf("per_op %.1f\n", (now() - t) / (2.0 * n) * 1e9);
    }
    for (int r = 0; r < reps; r++) {
        double t = now();
        __u32 count = n;
        if (bpf_map_update_batch(fd, keys, vals, &count, NULL)) { perror("update_batch"); return 1; }
        unsigned got = 0;
        __u32 in = 0, out = 0;
        void *inp = NULL;
        for (;;) {
            __u32 c = chunk;
            if (got + c > n) c = n - got;
            if (c == 0) break;
            int err = bpf_map_lookup_batch(fd, inp, &out, okeys + got, ovals + got, &c, NULL);
            got += c;
            if (err) {
                if (errno == ENOENT) break;  /* the last chunk: count is still valid */
                perror("lookup_batch");
                return 1;
            }
            in = out;
            inp = &in;
        }
        double d = now() - t;
        if (got != n) { fprintf(stderr, "read %u of %u\n", got, n); return 1; }
        printf("batch %.2f\n", d / n * 1e9);
    }
    return 0;
}
