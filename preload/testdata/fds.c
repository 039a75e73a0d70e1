// Map file descriptors the library did not hand out, dup2/dup3 over map
// fds, and invalid attr pointers, for the preload tests. Run against the
// kernel (as root) and under libbpfmap.so, its output must be the same:
// it prints results and errnos, never fd numbers or ids.
//
// usage: fds faults | dup | exec | scm | btf   (child FD: exec's child)

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/btf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *ename(int e)
{
	switch (e) {
	case 0: return "OK";
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case EBADF: return "EBADF";
	case EINVAL: return "EINVAL";
	case EFAULT: return "EFAULT";
	case EBADFD: return "EBADFD";
	case EACCES: return "EACCES";
	case E2BIG: return "E2BIG";
	}
	static char buf[32];
	snprintf(buf, sizeof(buf), "errno %d", e);
	return buf;
}

// show prints what a call returned: OK (for a non-negative result) or its
// errno.
static void show(const char *what, long r)
{
	printf("%s: %s\n", what, r < 0 ? ename(errno) : "OK");
}

static long sys_bpf(int cmd, void *attr, unsigned size)
{
	return syscall(__NR_bpf, cmd, attr, size);
}

static int mk(void)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.map_type = BPF_MAP_TYPE_HASH;
	a.key_size = 4;
	a.value_size = 8;
	a.max_entries = 16;
	strcpy(a.map_name, "fds");
	int fd = (int)sys_bpf(BPF_MAP_CREATE, &a, sizeof(a));
	if (fd < 0) {
		perror("map create");
		exit(1);
	}
	return fd;
}

static long upd(int fd, uint32_t k, uint64_t v)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.map_fd = fd;
	a.key = (uintptr_t)&k;
	a.value = (uintptr_t)&v;
	return sys_bpf(BPF_MAP_UPDATE_ELEM, &a, sizeof(a));
}

// get prints the value of key k in the map of fd.
static void get(const char *what, int fd, uint32_t k)
{
	union bpf_attr a;
	uint64_t v = 0;
	memset(&a, 0, sizeof(a));
	a.map_fd = fd;
	a.key = (uintptr_t)&k;
	a.value = (uintptr_t)&v;
	long r = sys_bpf(BPF_MAP_LOOKUP_ELEM, &a, sizeof(a));
	if (r < 0)
		printf("%s: %s\n", what, ename(errno));
	else
		printf("%s: %llu\n", what, (unsigned long long)v);
}

// info returns the map's id (0 with errno on failure) and prints its shape.
static uint32_t info(const char *what, int fd)
{
	struct bpf_map_info i;
	union bpf_attr a;
	memset(&i, 0, sizeof(i));
	memset(&a, 0, sizeof(a));
	a.info.bpf_fd = fd;
	a.info.info_len = sizeof(i);
	a.info.info = (uintptr_t)&i;
	if (sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &a, sizeof(a)) < 0) {
		printf("%s: %s\n", what, ename(errno));
		return 0;
	}
	printf("%s: type %u key %u value %u entries %u name %s\n", what, i.type,
	       i.key_size, i.value_size, i.max_entries, i.name);
	return i.id;
}

// by_id reports whether map id still exists (MAP_GET_FD_BY_ID). Under the
// preload library (BPFMAP_ROOT set) a map that is gone must have no object
// file left either: a kernel map is freed with its last fd.
static void by_id(const char *what, uint32_t id)
{
	const char *root = getenv("BPFMAP_ROOT");
	char path[4096];
	struct stat st;
	int left = 0;
	if (root) {
		snprintf(path, sizeof(path), "%s/.bpfmap/maps/%u", root, id);
		left = stat(path, &st) == 0;
	}
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.map_id = id;
	int fd = (int)sys_bpf(BPF_MAP_GET_FD_BY_ID, &a, sizeof(a));
	if (fd < 0 && errno == ENOENT && left)
		printf("%s: ENOENT, but its object file is left\n", what);
	else
		show(what, fd);
	if (fd >= 0)
		close(fd);
}

// listed reports whether MAP_GET_NEXT_ID lists map id.
static void listed(const char *what, uint32_t id)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	int found = 0;
	while (sys_bpf(BPF_MAP_GET_NEXT_ID, &a, sizeof(a)) == 0) {
		if (a.next_id == id)
			found = 1;
		a.start_id = a.next_id;
	}
	printf("%s: %s\n", what, found ? "listed" : "not listed");
}

static void faults(void)
{
	static const int cmds[] = {BPF_MAP_LOOKUP_ELEM, BPF_MAP_UPDATE_ELEM, BPF_OBJ_PIN,
				   BPF_OBJ_GET, BPF_MAP_GET_NEXT_ID, BPF_MAP_GET_FD_BY_ID,
				   BPF_OBJ_GET_INFO_BY_FD, BPF_MAP_FREEZE, BPF_MAP_LOOKUP_BATCH};
	char what[64];
	// No map fd is open: nothing may read the bad attr but the kernel.
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		snprintf(what, sizeof(what), "no map: bpf(%d, 1, 24)", cmds[i]);
		show(what, sys_bpf(cmds[i], (void *)1, 24));
	}
	show("no map: bpf(OBJ_GET, NULL, 24)", sys_bpf(BPF_OBJ_GET, NULL, 24));
	show("no map: bpf(MAP_CREATE, 1, 24)", sys_bpf(BPF_MAP_CREATE, (void *)1, 24));
	show("no map: bpf(MAP_CREATE, NULL, 24)", sys_bpf(BPF_MAP_CREATE, NULL, 24));
	show("no map: bpf(OBJ_GET, 1, 8192)", sys_bpf(BPF_OBJ_GET, (void *)1, 8192));
	// With a map open, the commands that do not name a map fd still
	// answer EFAULT.
	int fd = mk();
	static const int nofd[] = {BPF_MAP_CREATE, BPF_OBJ_GET, BPF_MAP_GET_NEXT_ID,
				   BPF_MAP_GET_FD_BY_ID};
	for (size_t i = 0; i < sizeof(nofd) / sizeof(nofd[0]); i++) {
		snprintf(what, sizeof(what), "map open: bpf(%d, 1, 24)", nofd[i]);
		show(what, sys_bpf(nofd[i], (void *)1, 24));
		snprintf(what, sizeof(what), "map open: bpf(%d, NULL, 24)", nofd[i]);
		show(what, sys_bpf(nofd[i], NULL, 24));
	}
	// A pathname that is not mapped.
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.pathname = 16;
	show("map open: OBJ_GET of pathname 16", sys_bpf(BPF_OBJ_GET, &a, sizeof(a)));
	close(fd);
}

// dup2 and dup3, as libc calls and as syscall() numbers.
enum { DUP2, DUP3, SYS_DUP2, SYS_DUP3 };
static const char *const dup_name[] = {"dup2", "dup3", "syscall(SYS_dup2)", "syscall(SYS_dup3)"};

static int do_dup(int how, int oldfd, int newfd)
{
	switch (how) {
	case DUP2: return dup2(oldfd, newfd);
	case DUP3: return dup3(oldfd, newfd, 0);
	case SYS_DUP3: return (int)syscall(SYS_dup3, oldfd, newfd, 0);
	}
#ifdef SYS_dup2
	return (int)syscall(SYS_dup2, oldfd, newfd);
#else
	return (int)syscall(SYS_dup3, oldfd, newfd, 0);
#endif
}

static void dups(void)
{
	char what[96];
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	for (int how = DUP2; how <= SYS_DUP3; how++) {
		const char *n = dup_name[how];
		// A failed dup over a map fd leaves it alone.
		int fd = mk();
		show("update", upd(fd, 1, 1));
		snprintf(what, sizeof(what), "%s(bad fd, map fd)", n);
		show(what, do_dup(how, 9999, fd));
		snprintf(what, sizeof(what), "update after a failed %s", n);
		show(what, upd(fd, 2, 2));
		get("lookup", fd, 2);

		// A dup over the map's last fd frees the map at once.
		uint32_t id = info("info", fd);
		snprintf(what, sizeof(what), "%s(/dev/null, last map fd)", n);
		show(what, do_dup(how, null, fd));
		by_id("map by id after it", id);
		listed("map ids after it", id);
		show("update through the replaced fd", upd(fd, 3, 3));
		close(fd);

		// Over a map fd with another fd left: the map stays.
		fd = mk();
		int other = dup(fd);
		id = info("info", fd);
		snprintf(what, sizeof(what), "%s(/dev/null, map fd with a dup)", n);
		show(what, do_dup(how, null, fd));
		by_id("map by id after it", id);
		show("update through the dup", upd(other, 4, 4));
		close(fd);
		close(other);
		by_id("map by id after closing both", id);

		// A map fd over another map's last fd: the new fd is the
		// first map's, the second map is gone.
		int a = mk(), b = mk();
		uint32_t ida = info("info a", a), idb = info("info b", b);
		snprintf(what, sizeof(what), "%s(map a, map b)", n);
		show(what, do_dup(how, a, b));
		show("update a through b", upd(b, 5, 5));
		get("lookup in a", a, 5);
		by_id("map b by id", idb);
		close(a);
		by_id("map a by id with b open", ida);
		close(b);
		by_id("map a by id after closing both", ida);

		// A duplicate made with syscall() is a map fd.
		fd = mk();
		id = info("info", fd);
		int d = do_dup(how, fd, 100 + how);
		snprintf(what, sizeof(what), "update through a %s duplicate", n);
		show(what, upd(d, 6, 6));
		get("lookup", fd, 6);
		info("info of the duplicate", d);
		close(fd);
		close(d);
		by_id("map by id after closing both", id);
	}

	int fd = mk();
	uint32_t id = info("info", fd);
	int d = (int)syscall(SYS_dup, fd);
	show("update through a syscall(SYS_dup) duplicate", upd(d, 7, 7));
	close(d);
	d = (int)syscall(SYS_fcntl, fd, F_DUPFD, 50);
	show("update through a syscall(SYS_fcntl, F_DUPFD) duplicate", upd(d, 8, 8));
	close(d);
	d = (int)syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, 50);
	show("update through a syscall(SYS_fcntl, F_DUPFD_CLOEXEC) duplicate", upd(d, 9, 9));
	info("info of the duplicate", d);
	close(d);
	get("lookup", fd, 9);
	close(fd);
	by_id("map by id after closing all", id);
	close(null);
}

// scm passes a map fd to itself over a unix socket (SCM_RIGHTS).
static void scm(void)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) < 0) {
		perror("socketpair");
		exit(1);
	}
	int fd = mk();
	show("update", upd(fd, 1, 10));
	char byte = 'x';
	struct iovec iov = {&byte, 1};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	if (sendmsg(sv[0], &m, 0) < 0) {
		perror("sendmsg");
		exit(1);
	}
	memset(&u, 0, sizeof(u));
	m.msg_controllen = sizeof(u.buf);
	if (recvmsg(sv[1], &m, MSG_CMSG_CLOEXEC) < 0 || !(c = CMSG_FIRSTHDR(&m))) {
		perror("recvmsg");
		exit(1);
	}
	int got;
	memcpy(&got, CMSG_DATA(c), sizeof(int));
	get("lookup through the received fd", got, 1);
	show("update through the received fd", upd(got, 2, 20));
	get("lookup through the sent fd", fd, 2);
	uint32_t id = info("info of the received fd", got);
	close(fd);
	by_id("map by id with the received fd open", id);
	close(got);
	by_id("map by id after closing both", id);
}

// btf creates a map described by BTF type ids with btf_fd 0 (the BTF
// object moved to fd 0): only the kernel takes BTF, so the create must
// reach it whichever field names the BTF.
static void btf(void)
{
	struct {
		struct btf_header h;
		uint32_t type[4];
		char str[8];
	} b;
	memset(&b, 0, sizeof(b));
	b.h.magic = BTF_MAGIC;
	b.h.version = BTF_VERSION;
	b.h.hdr_len = sizeof(b.h);
	b.h.type_off = 0;
	b.h.type_len = sizeof(b.type);
	b.h.str_off = sizeof(b.type);
	b.h.str_len = 5;
	b.type[0] = 1;			      // name_off: "int"
	b.type[1] = BTF_KIND_INT << 24;	      // info
	b.type[2] = 4;			      // size
	b.type[3] = BTF_INT_SIGNED << 24 | 32; // encoding, offset 0, 32 bits
	memcpy(b.str, "\0int", 5);
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.btf = (uintptr_t)&b;
	a.btf_size = sizeof(b.h) + sizeof(b.type) + 5;
	int bfd = (int)sys_bpf(BPF_BTF_LOAD, &a, sizeof(a));
	show("btf load", bfd);
	if (bfd < 0)
		return;
	show("btf to fd 0", dup2(bfd, 0));
	close(bfd);
	memset(&a, 0, sizeof(a));
	a.map_type = BPF_MAP_TYPE_HASH;
	a.key_size = 4;
	a.value_size = 4;
	a.max_entries = 4;
	a.btf_fd = 0;
	a.btf_key_type_id = 1;
	a.btf_value_type_id = 1;
	strcpy(a.map_name, "fdsbtf");
	int fd = (int)sys_bpf(BPF_MAP_CREATE, &a, sizeof(a));
	show("map create with btf_fd 0 and BTF type ids", fd);
	if (fd < 0)
		return;
	struct bpf_map_info i;
	memset(&i, 0, sizeof(i));
	memset(&a, 0, sizeof(a));
	a.info.bpf_fd = fd;
	a.info.info_len = sizeof(i);
	a.info.info = (uintptr_t)&i;
	show("info", sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &a, sizeof(a)));
	printf("btf_key_type_id %u btf_value_type_id %u kernel id %s\n", i.btf_key_type_id,
	       i.btf_value_type_id, i.id < (1u << 30) ? "yes" : "no");
	close(fd);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	if (argc < 2)
		return 2;
	if (!strcmp(argv[1], "faults")) {
		faults();
	} else if (!strcmp(argv[1], "dup")) {
		dups();
	} else if (!strcmp(argv[1], "btf")) {
		btf();
	} else if (!strcmp(argv[1], "scm")) {
		scm();
	} else if (!strcmp(argv[1], "exec")) {
		int fd = mk();
		show("update", upd(fd, 1, 11));
		int fl = fcntl(fd, F_GETFD);
		fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC);
		char s[16];
		snprintf(s, sizeof(s), "%d", fd);
		execl("/proc/self/exe", argv[0], "child", s, (char *)NULL);
		perror("exec");
		return 1;
	} else if (!strcmp(argv[1], "child") && argc > 2) {
		int fd = atoi(argv[2]);
		get("child: lookup through the inherited fd", fd, 1);
		show("child: update through the inherited fd", upd(fd, 2, 22));
		get("child: lookup", fd, 2);
		uint32_t id = info("child: info", fd);
		int d = dup(fd);
		show("child: update through a dup", upd(d, 3, 33));
		close(d);
		close(fd);
		by_id("child: map by id after closing it", id);
	} else {
		return 2;
	}
	return 0;
}
