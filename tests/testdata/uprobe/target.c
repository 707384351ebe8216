/* A small target for the uprobe and USDT kernel tests.
 *
 * Built at test time with `gcc -O1 -o ebpf_uprobe_target target.c` (no other dependency:
 * the USDT note is written by hand below, as <sys/sdt.h> would, so systemtap-sdt-dev is
 * not needed). It reads commands from stdin, one per line, and answers one line each:
 *
 *   ping        -> pong
 *   add A B N   -> calls ebpf_target_add(A, B) N times, prints the last result
 *   fire N      -> hits USDT probe ebpf_test:tick N times if its semaphore is set
 *                  (as real USDT users do), prints how many times it did
 *   always N    -> hits USDT probe ebpf_test:plain (no semaphore) N times, prints N
 *   mem N       -> hits ebpf_test:mem (a memory argument, -1000 * (i + 1)) and
 *                  ebpf_test:konst (a constant argument, -1234) N times, prints N
 *   lay N       -> hits ebpf_lay:val, one probe at three sites that place its argument
 *                  differently (constant 4242, register 3 * i, stack slot -1000 * (i + 1)),
 *                  N times each, prints N
 *   sem         -> prints the value of the ebpf_test:tick semaphore
 *   quit        -> exits
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The semaphore of ebpf_test:tick: the kernel increments it (ref_ctr_offset) while a
 * uprobe with that reference counter is attached. It lives in section .probes, like
 * the ones <sys/sdt.h> defines. */
__attribute__((used, section(".probes"))) volatile unsigned short ebpf_test_tick_semaphore;

#if defined(__x86_64__) || defined(__aarch64__) || defined(__riscv)
#define EBPF_ADDR ".8byte"
#else
#define EBPF_ADDR ".4byte"
#endif

/* One stapsdt note with one argument (signed size @ operand), as _SDT_PROBE emits it.
 * `con` is the operand's asm constraint: "r" (register), "m" (memory), "i" (constant). */
#define EBPF_USDT1(provider, name, sem, con, arg)                                              \
    __asm__ __volatile__(                                                                 \
        "990: nop\n"                                                                      \
        ".pushsection .note.stapsdt,\"?\",\"note\"\n"                                     \
        ".balign 4\n"                                                                     \
        ".4byte 992f-991f, 994f-993f, 3\n"                                                \
        "991: .asciz \"stapsdt\"\n"                                                       \
        "992: .balign 4\n"                                                                \
        "993: " EBPF_ADDR " 990b\n"                                                       \
        EBPF_ADDR " _.stapsdt.base\n"                                                     \
        EBPF_ADDR " " sem "\n"                                                            \
        ".asciz \"" #provider "\"\n"                                                      \
        ".asciz \"" #name "\"\n"                                                          \
        ".asciz \"%n[size]@%[val]\"\n"                                                    \
        "994: .balign 4\n"                                                                \
        ".popsection\n"                                                                   \
        ".ifndef _.stapsdt.base\n"                                                        \
        ".pushsection .stapsdt.base,\"aG\",\"progbits\",.stapsdt.base,comdat\n"           \
        ".weak _.stapsdt.base\n"                                                          \
        ".hidden _.stapsdt.base\n"                                                        \
        "_.stapsdt.base: .space 1\n"                                                      \
        ".size _.stapsdt.base, 1\n"                                                       \
        ".popsection\n"                                                                   \
        ".endif\n"                                                                        \
        :                                                                                 \
        : [size] "n"((int)sizeof(arg)), [val] con(arg)) /* %n negates: "-4@" = signed */

__attribute__((noinline)) int ebpf_target_add(int a, int b)
{
    __asm__ __volatile__("" ::: "memory"); /* keep the call and the function */
    return a + b;
}

static int fire(int n)
{
    int done = 0;
    for (int i = 0; i < n; i++) {
        if (ebpf_test_tick_semaphore) { /* what STAP_PROBE users guard costly arguments with */
            EBPF_USDT1(ebpf_test, tick, "ebpf_test_tick_semaphore", "r", i);
            done++;
        }
    }
    return done;
}

static void always(int n)
{
    for (int i = 0; i < n; i++)
        EBPF_USDT1(ebpf_test, plain, "0", "r", i);
}

/* Arguments in memory and as constants, for usdt_argument(). */
static void mem(int n)
{
    for (int i = 0; i < n; i++) {
        volatile long long slot = -1000LL * (i + 1);
        EBPF_USDT1(ebpf_test, mem, "0", "m", slot);
        EBPF_USDT1(ebpf_test, konst, "0", "i", (short)-1234);
    }
}

/* One probe whose sites place the argument differently, for @bpf.usdt's per-site layouts. */
static void lay(int n)
{
    for (int i = 0; i < n; i++) {
        volatile long long slot = -1000LL * (i + 1);
        EBPF_USDT1(ebpf_lay, val, "0", "i", (int)4242);
        EBPF_USDT1(ebpf_lay, val, "0", "r", i * 3);
        EBPF_USDT1(ebpf_lay, val, "0", "m", slot);
    }
}

int main(void)
{
    char line[256];
    setvbuf(stdout, NULL, _IOLBF, 0);
    while (fgets(line, sizeof line, stdin)) {
        int a = 0, b = 0, n = 0;
        if (strncmp(line, "ping", 4) == 0) {
            puts("pong");
        } else if (sscanf(line, "add %d %d %d", &a, &b, &n) == 3) {
            int r = 0;
            for (int i = 0; i < n; i++)
                r = ebpf_target_add(a, b);
            printf("%d\n", r);
        } else if (sscanf(line, "fire %d", &n) == 1) {
            printf("%d\n", fire(n));
        } else if (sscanf(line, "always %d", &n) == 1) {
            always(n);
            printf("%d\n", n);
        } else if (sscanf(line, "mem %d", &n) == 1) {
            mem(n);
            printf("%d\n", n);
        } else if (sscanf(line, "lay %d", &n) == 1) {
            lay(n);
            printf("%d\n", n);
        } else if (strncmp(line, "sem", 3) == 0) {
            printf("%u\n", (unsigned)ebpf_test_tick_semaphore);
        } else if (strncmp(line, "quit", 4) == 0) {
            return 0;
        } else {
            puts("?");
        }
    }
    return 0;
}
