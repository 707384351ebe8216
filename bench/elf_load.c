// C floor for bench/elf_bench.py: libbpf bpf_object__open_file() and open + load of a
// clang-compiled object, timed around the calls.
//   elf_load REPEATS OBJ  ->  "open <ms>" and "open_load <ms>" lines, one per repeat
#include <bpf/libbpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int quiet(enum libbpf_print_level level, const char *fmt, va_list args) {
    return level == LIBBPF_WARN ? vfprintf(stderr, fmt, args) : 0;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s REPEATS OBJ\n", argv[0]);
        return 2;
    }
    libbpf_set_print(quiet);
    int repeats = atoi(argv[1]);
    for (int r = 0; r < repeats; r++) {
        double t0 = now_ms();
        struct bpf_object *obj = bpf_object__open_file(argv[2], NULL);
        double t1 = now_ms();
        if (!obj) {
            perror("bpf_object__open_file");
            return 1;
        }
        bpf_object__close(obj);
        double t2 = now_ms();
        obj = bpf_object__open_file(argv[2], NULL);
        int err = obj ? bpf_object__load(obj) : -1;
        double t3 = now_ms();
        if (err) {
            fprintf(stderr, "bpf_object__load: %d\n", err);
            return 1;
        }
        bpf_object__close(obj);
        printf("open %.4f\nopen_load %.4f\n", t1 - t0, t3 - t2);
    }
    return 0;
}
