// A small libbpf program for the preload tests: it creates maps, works on
// them through libbpf's bpf_* wrappers, pins and reopens one, and prints
// what it sees. Run against the kernel (pin directory in a bpffs) and under
// libbpfmap.so (pin directory in the bpfmap namespace), its output must be
// the same.
//
// usage: libbpfprog PIN_DIR [zero]
//   zero: create the hash map with BPF_F_ZERO_SEED (needs CAP_SYS_ADMIN) and
//         print hash iteration in its own order; otherwise keys are sorted.

#define _GNU_SOURCE
#include <bpf/bpf.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *ename(int e)
{
	switch (e) {
	case 0: return "OK";
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case EBADF: return "EBADF";
	case EINVAL: return "EINVAL";
	case EEXIST: return "EEXIST";
	case E2BIG: return "E2BIG";
	case ENOSPC: return "ENOSPC";
	case EFAULT: return "EFAULT";
	case EBADFD: return "EBADFD";
	case EACCES: return "EACCES";
	case 524: return "ENOTSUPP";
	}
	static char buf[32];
	snprintf(buf, sizeof(buf), "errno %d", e);
	return buf;
}

// res prints a libbpf result: libbpf 1.x returns -errno.
static int res(const char *what, int r)
{
	printf("%s: %s\n", what, r < 0 ? ename(-r) : "OK");
	return r;
}

static int cmp_u32(const void *a, const void *b)
{
	unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
	return x < y ? -1 : x > y;
}

static int cmp_pair(const void *a, const void *b)
{
	return cmp_u32(a, b);
}

static void info(const char *what, int fd)
{
	struct bpf_map_info mi;
	__u32 len = sizeof(mi);
	memset(&mi, 0, sizeof(mi));
	int r = bpf_obj_get_info_by_fd(fd, &mi, &len);
	if (r < 0) {
		res(what, r);
		return;
	}
	printf("%s: type %u key %u value %u max_entries %u flags 0x%x name %s info_len %u\n",
	       what, mi.type, mi.key_size, mi.value_size, mi.max_entries,
	       mi.map_flags, mi.name, len);
}

// fdinfo prints /proc/self/fdinfo/<fd> without the lines that name
// numbers of this run (mnt_id, ino, map_id) and memlock, and the fd's link.
static void fdinfo(const char *what, int fd)
{
	char path[64], line[256], link[256];
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	FILE *f = fopen(path, "r");
	if (!f) {
		printf("%s: fopen: %s\n", what, ename(errno));
		return;
	}
	printf("%s:", what);
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "mnt_id:", 7) || !strncmp(line, "ino:", 4) ||
		    !strncmp(line, "map_id:", 7) || !strncmp(line, "memlock:", 8))
			continue;
		line[strcspn(line, "\n")] = 0;
		printf(" [%s]", line);
	}
	fclose(f);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, link, sizeof(link) - 1);
	link[n < 0 ? 0 : n] = 0;
	printf(" link %s\n", link);
}

static unsigned map_id(int fd)
{
	struct bpf_map_info mi;
	__u32 len = sizeof(mi);
	memset(&mi, 0, sizeof(mi));
	if (bpf_obj_get_info_by_fd(fd, &mi, &len) < 0)
		return 0;
	return mi.id;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s PIN_DIR [zero]\n", argv[0]);
		return 2;
	}
	int zero = argc > 2 && strcmp(argv[2], "zero") == 0;
	char pin[4096];
	snprintf(pin, sizeof(pin), "%s/hash", argv[1]);
	setvbuf(stdout, NULL, _IOLBF, 0);

	// A hash map.
	LIBBPF_OPTS(bpf_map_create_opts, copts, .map_flags = zero ? BPF_F_ZERO_SEED : 0);
	int fd = bpf_map_create(BPF_MAP_TYPE_HASH, "prog_hash", 4, 8, 32, &copts);
	if (res("create hash", fd) < 0)
		return 1;
	info("info hash", fd);
	fdinfo("fdinfo hash", fd);
	for (unsigned k = 1; k <= 20; k++) {
		unsigned long long v = (unsigned long long)k * 1000 + 7;
		if (bpf_map_update_elem(fd, &k, &v, BPF_NOEXIST) < 0) {
			res("update", -errno);
			return 1;
		}
	}
	printf("updated 20 keys\n");
	unsigned k = 5;
	unsigned long long v = 0;
	res("update existing NOEXIST", bpf_map_update_elem(fd, &k, &v, BPF_NOEXIST));
	k = 99;
	res("update missing EXIST", bpf_map_update_elem(fd, &k, &v, BPF_EXIST));
	res("update bad flags", bpf_map_update_elem(fd, &k, &v, 7));
	k = 7;
	res("lookup 7", bpf_map_lookup_elem(fd, &k, &v));
	printf("value of 7: %llu\n", v);
	k = 77;
	res("lookup 77", bpf_map_lookup_elem(fd, &k, &v));
	k = 3;
	res("delete 3", bpf_map_delete_elem(fd, &k));
	res("delete 3 again", bpf_map_delete_elem(fd, &k));

	// Iterate with get_next_key.
	unsigned keys[64], n = 0, cur, next;
	int r = bpf_map_get_next_key(fd, NULL, &next);
	while (r == 0 && n < 64) {
		keys[n++] = next;
		cur = next;
		r = bpf_map_get_next_key(fd, &cur, &next);
	}
	printf("get_next_key end: %s, %u keys\n", ename(-r), n);
	if (!zero)
		qsort(keys, n, sizeof(keys[0]), cmp_u32);
	printf("keys:");
	for (unsigned i = 0; i < n; i++)
		printf(" %u", keys[i]);
	printf("\n");

	// Lookup batch, four at a time.
	struct {
		unsigned k;
		unsigned long long v;
	} pairs[64];
	unsigned bk[4];
	unsigned long long bv[4];
	unsigned in = 0, out = 0, total = 0;
	int first = 1, batches = 0;
	LIBBPF_OPTS(bpf_map_batch_opts, bopts);
	for (;;) {
		__u32 count = 4;
		r = bpf_map_lookup_batch(fd, first ? NULL : &in, &out, bk, bv, &count, &bopts);
		int e = r < 0 ? -r : 0;
		for (unsigned i = 0; i < count && total < 64; i++) {
			pairs[total].k = bk[i];
			pairs[total].v = bv[i];
			total++;
		}
		batches++;
		if (e) {
			// How many calls a hash batch takes depends on the
			// bucket layout, which only a zero seed fixes.
			if (zero)
				printf("lookup_batch end: %s after %d calls\n", ename(e), batches);
			else
				printf("lookup_batch end: %s\n", ename(e));
			break;
		}
		in = out;
		first = 0;
	}
	if (!zero)
		qsort(pairs, total, sizeof(pairs[0]), cmp_pair);
	printf("batch: %u elements:", total);
	for (unsigned i = 0; i < total; i++)
		printf(" %u=%llu", pairs[i].k, pairs[i].v);
	printf("\n");

	// Pin, close, get.
	res("pin", bpf_obj_pin(fd, pin));
	res("pin again", bpf_obj_pin(fd, pin));
	unsigned id = map_id(fd);
	close(fd);
	int fd2 = bpf_obj_get(pin);
	if (res("obj_get", fd2) < 0)
		return 1;
	info("info pinned", fd2);
	printf("same id after get: %s\n", map_id(fd2) == id ? "yes" : "no");
	k = 20;
	res("lookup 20 via pin", bpf_map_lookup_elem(fd2, &k, &v));
	printf("value of 20: %llu\n", v);
	snprintf(pin + strlen(pin), sizeof(pin) - strlen(pin), ".missing");
	res("obj_get missing (dotted name)", bpf_obj_get(pin));
	res("pin dotted name", bpf_obj_pin(fd2, pin));
	char other[4096];
	snprintf(other, sizeof(other), "%s/nothing", argv[1]);
	res("obj_get missing", bpf_obj_get(other));
	res("obj_get directory", bpf_obj_get(argv[1]));

	// The id finds the map both ways.
	unsigned nid = 0, found = 0;
	while (bpf_map_get_next_id(nid, &nid) == 0)
		if (nid == id)
			found = 1;
	printf("get_next_id finds the map: %s\n", found ? "yes" : "no");
	int fd3 = bpf_map_get_fd_by_id(id);
	if (res("get_fd_by_id", fd3) >= 0) {
		printf("same id by id: %s\n", map_id(fd3) == id ? "yes" : "no");
		close(fd3);
	}

	// Duplicates are the same map.
	int d1 = dup(fd2), d2 = fcntl(fd2, F_DUPFD_CLOEXEC, 100);
	printf("dup same id: %s, fcntl dup same id: %s, fcntl dup >= 100: %s\n",
	       map_id(d1) == id ? "yes" : "no", map_id(d2) == id ? "yes" : "no", d2 >= 100 ? "yes" : "no");
	close(fd2);
	k = 20;
	v = 0;
	res("lookup 20 via dup", bpf_map_lookup_elem(d1, &k, &v));
	printf("value of 20: %llu\n", v);
	close(d1);
	fd2 = d2;

	// mmap of a hash map fd.
	void *mem = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd2, 0);
	printf("mmap hash: %s\n", mem == MAP_FAILED ? ename(errno) : "OK");

	// A child of fork() closes its copy of a map fd and exits.
	pid_t pid = fork();
	if (pid == 0) {
		close(fd2);
		_exit(7);
	}
	int status = 0;
	waitpid(pid, &status, 0);
	printf("forked child: exit %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);

	// An array and its errors.
	int afd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "prog_array", 4, 4, 4, NULL);
	if (res("create array", afd) < 0)
		return 1;
	for (k = 0; k < 4; k++) {
		unsigned av = k * k + 1;
		bpf_map_update_elem(afd, &k, &av, BPF_ANY);
	}
	k = 4;
	unsigned av = 0;
	res("array update out of range", bpf_map_update_elem(afd, &k, &av, BPF_ANY));
	k = 1;
	res("array delete", bpf_map_delete_elem(afd, &k));
	k = 3;
	res("array lookup 3", bpf_map_lookup_elem(afd, &k, &av));
	printf("array[3] = %u\n", av);
	mem = mmap(NULL, 4096, PROT_READ, MAP_SHARED, afd, 0);
	printf("mmap array without BPF_F_MMAPABLE: %s\n", mem == MAP_FAILED ? ename(errno) : "OK");
	res("freeze array", bpf_map_freeze(afd));
	res("update frozen array", bpf_map_update_elem(afd, &k, &av, BPF_ANY));
	res("freeze again", bpf_map_freeze(afd));
	info("info array", afd);
	fdinfo("fdinfo frozen array", afd);
	close(afd);

	// A queue.
	LIBBPF_OPTS(bpf_map_create_opts, ro, .map_flags = BPF_F_RDONLY);
	int qfd = bpf_map_create(BPF_MAP_TYPE_QUEUE, "prog_queue", 0, 4, 3, NULL);
	int rofd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "prog_ro", 4, 4, 1, &ro);
	fdinfo("fdinfo read-only array", rofd);
	k = 0;
	res("update read-only fd", bpf_map_update_elem(rofd, &k, &av, BPF_ANY));
	close(rofd);
	if (res("create queue", qfd) < 0)
		return 1;
	for (unsigned i = 10; i < 14; i++)
		printf("push %u: %s\n", i, ename(bpf_map_update_elem(qfd, NULL, &i, BPF_ANY) < 0 ? errno : 0));
	for (int i = 0; i < 4; i++) {
		unsigned qv = 0;
		r = bpf_map_lookup_and_delete_elem(qfd, NULL, &qv);
		printf("pop: %s %u\n", ename(r < 0 ? -r : 0), r < 0 ? 0 : qv);
	}
	close(qfd);

	// A map fd closed behind libc's close() (close_range), its number
	// reused by an ordinary file at once: that fd is no map.
	int sfd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "prog_stale", 4, 4, 1, NULL);
	close_range(sfd, sfd, 0);
	int nfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	printf("number reused: %s\n", nfd == sfd ? "yes" : "no");
	k = 0;
	res("lookup on the reused number", bpf_map_lookup_elem(nfd, &k, &av));
	info("info on the reused number", nfd);
	close(nfd);

	// Errors on descriptors.
	res("lookup on closed fd", bpf_map_lookup_elem(qfd, &k, &av));
	res("lookup on stdin", bpf_map_lookup_elem(0, &k, &av));
	info("info on closed fd", qfd);

	unlink(pin); // the .missing path: no-op
	pin[strlen(pin) - strlen(".missing")] = 0;
	printf("unlink pin: %s\n", unlink(pin) == 0 ? "OK" : ename(errno));
	close(fd2);
	return 0;
}
