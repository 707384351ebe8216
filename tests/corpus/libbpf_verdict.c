/* libbpf's verdict on an object: `libbpf_verdict obj.o [prog...]` loads the named programs
 * (all autoloaded ones when none are named) and prints 0 or -errno. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <bpf/libbpf.h>

static int quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	(void)level; (void)fmt; (void)ap;
	return 0;
}

int main(int argc, char **argv)
{
	struct bpf_object *obj;
	struct bpf_program *p;
	int i, want, err;

	if (argc < 2)
		return 2;
	libbpf_set_print(quiet);
	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj) {
		printf("%d\n", -errno);
		return 0;
	}
	if (argc > 2) {
		bpf_object__for_each_program(p, obj) {
			want = 0;
			for (i = 2; i < argc; i++)
				want |= strcmp(bpf_program__name(p), argv[i]) == 0;
			bpf_program__set_autoload(p, want);
		}
	}
	err = bpf_object__load(obj);
	printf("%d\n", err);
	bpf_object__close(obj);
	return 0;
}
