/* The floor for bench/btf_parse.py: the same work done by libbpf in C.
 *
 *   gcc -O2 bench/btf_parse.c -lbpf -o bench/build/btf_parse
 *   bench/build/btf_parse find|all|parse [path]
 *
 * Prints the seconds spent from the start of main to the end of the work (and a checksum so
 * that nothing is optimised away). "find" parses, finds struct task_struct and touches every
 * member's type; "all" parses and touches every type with its members, params and enumerators;
 * "parse" only parses.
 */
#include <bpf/btf.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static unsigned long touch_name(const struct btf *btf, __u32 off)
{
	const char *s = btf__name_by_offset(btf, off);

	return s ? (unsigned char)s[0] : 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "find";
	const char *path = argc > 2 ? argv[2] : "/sys/kernel/btf/vmlinux";
	double start = now();
	unsigned long sink = 0;
	struct btf *btf = btf__parse(path, NULL);

	if (!btf) {
		fprintf(stderr, "btf__parse(%s): %s\n", path, strerror(errno));
		return 1;
	}
	if (!strcmp(mode, "find")) {
		int id = btf__find_by_name_kind(btf, "task_struct", BTF_KIND_STRUCT);
		const struct btf_type *t;
		const struct btf_member *m;

		if (id < 0) {
			fprintf(stderr, "task_struct not found\n");
			return 1;
		}
		t = btf__type_by_id(btf, id);
		m = btf_members(t);
		for (int i = 0; i < btf_vlen(t); i++) {
			const struct btf_type *mt = btf__type_by_id(btf, m[i].type);

			sink += mt->info + touch_name(btf, m[i].name_off);
		}
	} else if (!strcmp(mode, "all")) {
		__u32 n = btf__type_cnt(btf);

		for (__u32 id = 1; id < n; id++) {
			const struct btf_type *t = btf__type_by_id(btf, id);
			int vlen = btf_vlen(t);

			sink += touch_name(btf, t->name_off) + t->size;
			switch (btf_kind(t)) {
			case BTF_KIND_STRUCT:
			case BTF_KIND_UNION: {
				const struct btf_member *m = btf_members(t);

				for (int i = 0; i < vlen; i++)
					sink += touch_name(btf, m[i].name_off) + m[i].type +
						btf_member_bit_offset(t, i);
				break;
			}
			case BTF_KIND_FUNC_PROTO: {
				const struct btf_param *p = btf_params(t);

				for (int i = 0; i < vlen; i++)
					sink += touch_name(btf, p[i].name_off) + p[i].type;
				break;
			}
			case BTF_KIND_ENUM: {
				const struct btf_enum *e = btf_enum(t);

				for (int i = 0; i < vlen; i++)
					sink += touch_name(btf, e[i].name_off) + e[i].val;
				break;
			}
			case BTF_KIND_ENUM64: {
				const struct btf_enum64 *e = btf_enum64(t);

				for (int i = 0; i < vlen; i++)
					sink += touch_name(btf, e[i].name_off) + btf_enum64_value(e + i);
				break;
			}
			default:
				break;
			}
		}
	} else if (strcmp(mode, "parse")) {
		fprintf(stderr, "usage: %s find|all|parse [path]\n", argv[0]);
		return 2;
	}
	printf("%.9f %lu\n", now() - start, sink);
	btf__free(btf);
	return 0;
}
