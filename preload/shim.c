//go:build linux

// C half of the preload library: the libc entry points a libbpf tool goes
// through, interposed. Everything not addressed to bpfmap is forwarded to
// the next definition (libc) unchanged; see doc.go for the routing rules.
//
// Invariants:
//   - Nothing here calls into Go unless a bpfmap object may be involved:
//     close(), open() and friends check the C-side fd bitmap (or the path's
//     shape) first, so an ordinary close never enters the Go runtime. bpf(2)
//     enters Go for MAP_CREATE, OBJ_GET, MAP_GET_FD_BY_ID and
//     MAP_GET_NEXT_ID (Go reads their attr, where a bad pointer is EFAULT),
//     for a command on a marked fd, and when the kernel refuses a command
//     on an unmarked fd that is a regular file (the error path of a map fd
//     the library did not hand out).
//   - The Go runtime issues its own system calls without libc, except that
//     the cgo runtime's mmap (x_cgo_mmap) calls mmap(): it always maps
//     anonymous memory, for which mmap() returns before anything else.
//   - close() of a marked fd, and dup2/dup3 over one, enter Go: they are not
//     async-signal-safe, as close(2) normally is (see doc.go).

#undef _FORTIFY_SOURCE
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <mntent.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "_cgo_export.h"
#include "shim.h"

// ---- bpf(2) command numbers and attr offsets (uapi, Linux 6.18) ----

enum {
	CMD_MAP_CREATE = 0,
	CMD_MAP_LOOKUP_ELEM = 1,
	CMD_MAP_UPDATE_ELEM = 2,
	CMD_MAP_DELETE_ELEM = 3,
	CMD_MAP_GET_NEXT_KEY = 4,
	CMD_PROG_LOAD = 5,
	CMD_OBJ_PIN = 6,
	CMD_OBJ_GET = 7,
	CMD_MAP_GET_NEXT_ID = 12,
	CMD_MAP_GET_FD_BY_ID = 14,
	CMD_OBJ_GET_INFO_BY_FD = 15,
	CMD_MAP_LOOKUP_AND_DELETE_ELEM = 21,
	CMD_MAP_FREEZE = 22,
	CMD_MAP_LOOKUP_BATCH = 24,
	CMD_MAP_LOOKUP_AND_DELETE_BATCH = 25,
	CMD_MAP_UPDATE_BATCH = 26,
	CMD_MAP_DELETE_BATCH = 27,
};

#define BATCH_MAP_FD_OFF 36 // attr.batch.map_fd
#define PIN_BPF_FD_OFF 8    // attr.bpf_fd of OBJ_PIN / OBJ_GET
#define BPF_FS_MAGIC_VALUE 0xcafe4a11

// ---- the real functions ----

#define REAL(name) real_##name
#define DEFINE_REAL(ret, name, ...)                                            \
	typedef ret (*name##_fn)(__VA_ARGS__);                                 \
	static name##_fn real_##name##_ptr;                                    \
	static name##_fn real_##name(void)                                     \
	{                                                                      \
		name##_fn f = __atomic_load_n(&real_##name##_ptr, __ATOMIC_ACQUIRE); \
		if (!f) {                                                      \
			f = (name##_fn)dlsym(RTLD_NEXT, #name);                \
			__atomic_store_n(&real_##name##_ptr, f, __ATOMIC_RELEASE); \
		}                                                              \
		return f;                                                      \
	}

DEFINE_REAL(long, syscall, long, ...)
DEFINE_REAL(int, close, int)
DEFINE_REAL(int, open, const char *, int, ...)
DEFINE_REAL(int, open64, const char *, int, ...)
DEFINE_REAL(int, openat, int, const char *, int, ...)
DEFINE_REAL(int, openat64, int, const char *, int, ...)
DEFINE_REAL(int, __open_2, const char *, int)
DEFINE_REAL(int, __open64_2, const char *, int)
DEFINE_REAL(FILE *, fopen, const char *, const char *)
DEFINE_REAL(FILE *, fopen64, const char *, const char *)
DEFINE_REAL(ssize_t, readlink, const char *, char *, size_t)
DEFINE_REAL(ssize_t, readlinkat, int, const char *, char *, size_t)
DEFINE_REAL(int, statfs, const char *, struct statfs *)
DEFINE_REAL(int, statfs64, const char *, struct statfs64 *)
DEFINE_REAL(int, mount, const char *, const char *, const char *, unsigned long, const void *)
DEFINE_REAL(FILE *, setmntent, const char *, const char *)
DEFINE_REAL(struct mntent *, getmntent, FILE *)
DEFINE_REAL(struct mntent *, getmntent_r, FILE *, struct mntent *, char *, int)
DEFINE_REAL(int, endmntent, FILE *)
DEFINE_REAL(int, dup, int)
DEFINE_REAL(int, dup2, int, int)
DEFINE_REAL(int, dup3, int, int, int)
DEFINE_REAL(int, fcntl, int, int, ...)
DEFINE_REAL(int, fcntl64, int, int, ...)
DEFINE_REAL(void *, mmap, void *, size_t, int, int, int, off_t)
DEFINE_REAL(void *, mmap64, void *, size_t, int, int, int, off64_t)

// ---- fork ----

// in_child is set in a child of fork(): the Go runtime's other threads did
// not come along, so calling into Go could hang. The child passes
// everything to libc and the kernel; after exec the library starts afresh.
static int in_child;

static void after_fork_child(void)
{
	in_child = 1;
}

__attribute__((constructor)) static void shim_init(void)
{
	pthread_atfork(NULL, NULL, after_fork_child);
}

// go_ok reports whether this process may call into Go.
static inline int go_ok(void)
{
	return !__atomic_load_n(&in_child, __ATOMIC_RELAXED);
}

static long raw6(long nr, long a, long b, long c, long d, long e, long f)
{
	syscall_fn fn = REAL(syscall)();
	if (!fn) {
		errno = ENOSYS;
		return -1;
	}
	return fn(nr, a, b, c, d, e, f);
}

static long kernel_bpf(int cmd, void *attr, unsigned int size)
{
	return raw6(SYS_bpf, cmd, (long)attr, size, 0, 0, 0);
}

// ---- the bitmap of bpfmap fds ----

// fds below FD_BITS are tracked exactly; larger ones (only possible with a
// raised RLIMIT_NOFILE hard limit) are asked about in Go whenever any was
// handed out.
#define FD_BITS (1 << 20)
static uint64_t fd_bits[FD_BITS / 64];
static long n_marked;   // fds below FD_BITS with their bit set
static long n_big;      // fds at or above FD_BITS ever handed out

static int maybe_marked(int fd)
{
	if (fd < 0 || !go_ok())
		return 0;
	if (fd >= FD_BITS)
		return __atomic_load_n(&n_big, __ATOMIC_ACQUIRE) > 0;
	if (__atomic_load_n(&n_marked, __ATOMIC_ACQUIRE) == 0)
		return 0;
	return (__atomic_load_n(&fd_bits[fd >> 6], __ATOMIC_ACQUIRE) >> (fd & 63)) & 1;
}

static void mark(int fd)
{
	if (fd < 0)
		return;
	if (fd >= FD_BITS) {
		__atomic_add_fetch(&n_big, 1, __ATOMIC_RELEASE);
		return;
	}
	uint64_t bit = 1ull << (fd & 63);
	uint64_t old = __atomic_fetch_or(&fd_bits[fd >> 6], bit, __ATOMIC_ACQ_REL);
	if (!(old & bit))
		__atomic_add_fetch(&n_marked, 1, __ATOMIC_RELEASE);
}

// unmark clears fd's bit and reports whether it was set (for fds at or
// above FD_BITS: whether Go should be asked).
static int unmark(int fd)
{
	if (fd < 0)
		return 0;
	if (fd >= FD_BITS)
		return __atomic_load_n(&n_big, __ATOMIC_ACQUIRE) > 0;
	uint64_t bit = 1ull << (fd & 63);
	if (!(__atomic_load_n(&fd_bits[fd >> 6], __ATOMIC_ACQUIRE) & bit))
		return 0;
	uint64_t old = __atomic_fetch_and(&fd_bits[fd >> 6], ~bit, __ATOMIC_ACQ_REL);
	if (old & bit) {
		__atomic_sub_fetch(&n_marked, 1, __ATOMIC_RELEASE);
		return 1;
	}
	return 0;
}

// any_marked reports whether some fd may be a bpfmap fd.
static int any_marked(void)
{
	return go_ok() && (__atomic_load_n(&n_marked, __ATOMIC_ACQUIRE) > 0 ||
			   __atomic_load_n(&n_big, __ATOMIC_ACQUIRE) > 0);
}

// replaced tells Go that fd no longer names what it named: a successful
// dup2/dup3 has put another file in its place, closing the old one. Go
// drops its handle of the old file, after the kernel dropped the old open
// file description (and with it the description's hold on the map), so
// that a map whose last fd that was is freed at once, as by close().
static void replaced(int fd)
{
	if (unmark(fd) && go_ok()) {
		int saved = errno;
		bpfmapGoForget(fd);
		errno = saved;
	}
}

static int close_map(int fd, int *r);
static int dup_done(int oldfd, int newfd);
static int dup_over(int oldfd, int newfd, int r);

// ---- bpf(2) ----

#define PASS (-2)

// go_bpf runs cmd in bpfmap; *pass is set when Go declines it (the command
// is not for a user-space map) and it must go to the kernel.
static long go_bpf(int cmd, void *attr, unsigned int size, int *pass)
{
	int err = 0;
	if (!go_ok()) {
		*pass = 1;
		return 0;
	}
	long r = bpfmapGoBPF(cmd, attr, size, &err);
	if (r == PASS) {
		*pass = 1;
		return 0;
	}
	if (r < 0) {
		errno = err;
		return -1;
	}
	return r;
}

// attr_u32 reads a u32 at off of the attr as the kernel sees it: bytes past
// size are zero.
static uint32_t attr_u32(void *attr, unsigned int size, unsigned int off)
{
	uint32_t v = 0;
	if (attr && size >= off + 4)
		memcpy(&v, (char *)attr + off, 4);
	return v;
}

// name_probe reports whether a PROG_LOAD attr is libbpf's probe for object
// names (FEAT_PROG_NAME): a two-instruction socket filter named
// "libbpf_nametest", 64 bytes of attr.
static int name_probe(void *attr, unsigned int size)
{
	static const char name[16] = "libbpf_nametest";
	return attr && size >= 64 && attr_u32(attr, size, 0) == 1 /* SOCKET_FILTER */ &&
	       attr_u32(attr, size, 4) == 2 && memcmp((char *)attr + 48, name, 16) == 0;
}

// adopt_bpf runs cmd in bpfmap after the kernel refused it (kr, errno)
// because its fd, which the library did not hand out, is no kernel map: a
// map fd inherited across exec, received over SCM_RIGHTS or made by a
// system call the library does not see. It costs nothing on the success
// path, and reading the fd out of attr is safe here: the kernel has read
// the attr (a bad pointer would have been EFAULT).
static long adopt_bpf(int cmd, void *attr, unsigned int size, int fd, long kr)
{
	int kerr = errno;
	struct stat st;
	if (fd < 0 || !go_ok() || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    !bpfmapGoIsMapFD(fd)) {
		errno = kerr;
		return kr;
	}
	mark(fd);
	int pass = 0;
	long r = go_bpf(cmd, attr, size, &pass);
	if (!pass)
		return r;
	unmark(fd);
	errno = kerr;
	return kr;
}

long bpfmap_bpf(int cmd, void *attr, unsigned int size)
{
	int pass = 0, fd;
	unsigned int off;
	long r;

	switch (cmd) {
	case CMD_PROG_LOAD:
		r = kernel_bpf(cmd, attr, size);
		if (r < 0 && errno == EPERM && name_probe(attr, size) && go_ok() && bpfmapGoNameProbe()) {
			// libbpf asks whether bpf(2) takes object names by loading
			// a program; without privilege the kernel refuses and
			// libbpf would strip the names of the maps it creates.
			// bpfmap's maps take names: answer with a descriptor
			// (of /dev/null) that libbpf closes at once.
			int fd = REAL(open)()("/dev/null", O_RDONLY | O_CLOEXEC);
			if (fd >= 0)
				return fd;
			errno = EPERM;
		}
		return r;

	case CMD_MAP_CREATE:
	case CMD_OBJ_GET:
	case CMD_MAP_GET_FD_BY_ID:
	case CMD_MAP_GET_NEXT_ID:
		// Go reads the attr (a bad pointer is EFAULT there, as from
		// the kernel) and decides: kernel map types and ids, paths
		// outside the namespaces go to the kernel; MAP_GET_NEXT_ID
		// asks the kernel first, then continues with user-space ids.
		r = go_bpf(cmd, attr, size, &pass);
		if (!pass) {
			if (r >= 0 && cmd != CMD_MAP_GET_NEXT_ID)
				mark((int)r);
			return r;
		}
		break;

	case CMD_MAP_LOOKUP_ELEM:
	case CMD_MAP_UPDATE_ELEM:
	case CMD_MAP_DELETE_ELEM:
	case CMD_MAP_GET_NEXT_KEY:
	case CMD_MAP_LOOKUP_AND_DELETE_ELEM:
	case CMD_MAP_FREEZE:
	case CMD_OBJ_GET_INFO_BY_FD:
	case CMD_OBJ_PIN:
	case CMD_MAP_LOOKUP_BATCH:
	case CMD_MAP_LOOKUP_AND_DELETE_BATCH:
	case CMD_MAP_UPDATE_BATCH:
	case CMD_MAP_DELETE_BATCH:
		if (!attr)
			break;
		off = cmd == CMD_OBJ_PIN ? PIN_BPF_FD_OFF
		      : cmd >= CMD_MAP_LOOKUP_BATCH ? BATCH_MAP_FD_OFF
		      : 0;
		// The attr is read here only while some bpfmap fd is open;
		// with none, a bad attr pointer reaches the kernel (EFAULT).
		if (any_marked()) {
			fd = (int)attr_u32(attr, size, off);
			if (maybe_marked(fd)) {
				r = go_bpf(cmd, attr, size, &pass);
				if (!pass)
					return r;
				unmark(fd); // a stale bit: the fd is no longer bpfmap's
			}
		}
		r = kernel_bpf(cmd, attr, size);
		// The kernel's answer for an fd open on something that is no
		// BPF object (for OBJ_GET_INFO_BY_FD too).
		if (r < 0 && errno == EINVAL)
			return adopt_bpf(cmd, attr, size, (int)attr_u32(attr, size, off), r);
		return r;
	}
	return kernel_bpf(cmd, attr, size);
}

long syscall(long nr, ...)
{
	va_list ap;
	long a, b, c, d, e, f;

	va_start(ap, nr);
	a = va_arg(ap, long);
	b = va_arg(ap, long);
	c = va_arg(ap, long);
	d = va_arg(ap, long);
	e = va_arg(ap, long);
	f = va_arg(ap, long);
	va_end(ap);
	if (nr == SYS_bpf)
		return bpfmap_bpf((int)a, (void *)b, (unsigned int)c);
	if (nr == SYS_close) {
		int r;
		if (close_map((int)a, &r))
			return r;
	}
	long r = raw6(nr, a, b, c, d, e, f);
	// The fd bookkeeping of close, dup, dup2, dup3 and fcntl(F_DUPFD*)
	// for callers that issue them as system calls.
	if (r < 0)
		return r;
	if (nr == SYS_dup) {
		dup_done((int)a, (int)r);
	} else if (nr == SYS_dup3) {
		dup_over((int)a, (int)b, (int)r);
	}
#ifdef SYS_dup2
	else if (nr == SYS_dup2) {
		dup_over((int)a, (int)b, (int)r);
	}
#endif
	else if (nr == SYS_fcntl && (b == F_DUPFD || b == F_DUPFD_CLOEXEC)) {
		dup_done((int)a, (int)r);
	}
#ifdef SYS_fcntl64
	else if (nr == SYS_fcntl64 && (b == F_DUPFD || b == F_DUPFD_CLOEXEC)) {
		dup_done((int)a, (int)r);
	}
#endif
	return r;
}

// ---- close and dup ----

// close_map closes a bpfmap fd through sys, which releases the map after
// the descriptor (so that an unpinned map dies with its last fd, as a
// kernel map does). It returns 1 when it closed fd (*r is close's result).
static int close_map(int fd, int *r)
{
	if (!unmark(fd) || !go_ok())
		return 0;
	int err = 0;
	*r = bpfmapGoClose(fd, &err);
	if (*r < 0)
		errno = err;
	return 1;
}

int close(int fd)
{
	int r;
	if (close_map(fd, &r))
		return r;
	close_fn fn = REAL(close)();
	if (!fn) {
		errno = ENOSYS;
		return -1;
	}
	return fn(fd);
}

// dup_done registers newfd, a duplicate of a bpfmap fd oldfd, with Go.
static int dup_done(int oldfd, int newfd)
{
	if (newfd >= 0 && maybe_marked(oldfd)) {
		int saved = errno;
		if (bpfmapGoDup(oldfd, newfd))
			mark(newfd);
		errno = saved;
	}
	return newfd;
}

// dup_over is the bookkeeping after dup2/dup3(oldfd, newfd) returned r:
// only a call that succeeded replaced newfd (a failed one leaves it
// alone), and newfd == oldfd changes nothing.
static int dup_over(int oldfd, int newfd, int r)
{
	if (r < 0 || oldfd == newfd)
		return r;
	replaced(newfd);
	return dup_done(oldfd, r);
}

int dup(int oldfd)
{
	return dup_done(oldfd, REAL(dup)()(oldfd));
}

int dup2(int oldfd, int newfd)
{
	return dup_over(oldfd, newfd, REAL(dup2)()(oldfd, newfd));
}

int dup3(int oldfd, int newfd, int flags)
{
	return dup_over(oldfd, newfd, REAL(dup3)()(oldfd, newfd, flags));
}

static int do_fcntl(fcntl_fn fn, int fd, int cmd, va_list ap)
{
	// Every fcntl command takes at most one argument, an int or a
	// pointer; reading it as a pointer-sized integer covers both.
	long arg = va_arg(ap, long);
	int r = fn(fd, cmd, arg);
	if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)
		dup_done(fd, r);
	return r;
}

int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	int r = do_fcntl(REAL(fcntl)(), fd, cmd, ap);
	va_end(ap);
	return r;
}

int fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	fcntl_fn fn = (fcntl_fn)REAL(fcntl64)();
	if (!fn)
		fn = REAL(fcntl)();
	int r = do_fcntl(fn, fd, cmd, ap);
	va_end(ap);
	return r;
}

// ---- /proc/<self>/fdinfo/<fd> and /proc/<self>/fd/<fd> ----

// proc_fd parses /proc/{self,thread-self,<own pid>}/<dir>/<n> and returns
// n, or -1 when path is anything else.
static int proc_fd(const char *path, const char *dir)
{
	if (!path || strncmp(path, "/proc/", 6) != 0)
		return -1;
	const char *p = path + 6;
	if (strncmp(p, "self/", 5) == 0) {
		p += 5;
	} else if (strncmp(p, "thread-self/", 12) == 0) {
		p += 12;
	} else {
		char *end;
		long pid = strtol(p, &end, 10);
		if (end == p || *end != '/' || pid != (long)getpid())
			return -1;
		p = end + 1;
	}
	size_t n = strlen(dir);
	if (strncmp(p, dir, n) != 0 || p[n] != '/')
		return -1;
	p += n + 1;
	if (*p < '0' || *p > '9')
		return -1;
	char *end;
	long fd = strtol(p, &end, 10);
	if (*end != '\0' || fd > 0x7fffffff)
		return -1;
	return (int)fd;
}

// fdinfo_open returns a read-only descriptor of the synthetic fdinfo of a
// bpfmap fd named by path, -2 when path names something else, or -1 with
// errno when the synthetic file cannot be made.
static int fdinfo_open(const char *path, int flags)
{
	int fd = proc_fd(path, "fdinfo");
	if (fd < 0 || !maybe_marked(fd))
		return -2;
	char buf[4096];
	int saved = errno;
	int n = bpfmapGoFDInfo(fd, buf, sizeof(buf));
	errno = saved;
	if (n < 0)
		return -2;
	int mfd = memfd_create("bpfmap-fdinfo", (flags & O_CLOEXEC) ? MFD_CLOEXEC : 0);
	if (mfd < 0)
		return -1;
	if (write(mfd, buf, n) != n || lseek(mfd, 0, SEEK_SET) != 0) {
		int e = errno;
		REAL(close)()(mfd);
		errno = e ? e : EIO;
		return -1;
	}
	return mfd;
}

static int want_mode(int flags)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE;
}

#define OPEN_BODY(realcall)                                                    \
	do {                                                                   \
		int fd = fdinfo_open(path, flags);                             \
		if (fd != -2)                                                  \
			return fd;                                             \
		return realcall;                                               \
	} while (0)

int open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	if (want_mode(flags)) {
		va_list ap;
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	OPEN_BODY(REAL(open)()(path, flags, mode));
}

int open64(const char *path, int flags, ...)
{
	mode_t mode = 0;
	if (want_mode(flags)) {
		va_list ap;
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	OPEN_BODY(REAL(open64)()(path, flags, mode));
}

int __open_2(const char *path, int flags)
{
	OPEN_BODY(REAL(__open_2)()(path, flags));
}

int __open64_2(const char *path, int flags)
{
	OPEN_BODY(REAL(__open64_2)()(path, flags));
}

int openat(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;
	if (want_mode(flags)) {
		va_list ap;
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	OPEN_BODY(REAL(openat)()(dirfd, path, flags, mode));
}

int openat64(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;
	if (want_mode(flags)) {
		va_list ap;
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	OPEN_BODY(REAL(openat64)()(dirfd, path, flags, mode));
}

static FILE *fdinfo_fopen(const char *path, const char *mode, int *handled)
{
	int flags = (mode && strchr(mode, 'e')) ? O_CLOEXEC : 0;
	int fd = fdinfo_open(path, flags);
	if (fd == -2) {
		*handled = 0;
		return NULL;
	}
	*handled = 1;
	if (fd < 0)
		return NULL;
	if (mode && (strchr(mode, 'w') || strchr(mode, 'a') || strchr(mode, '+'))) {
		REAL(close)()(fd);
		errno = EACCES;
		return NULL;
	}
	FILE *f = fdopen(fd, "r");
	if (!f) {
		int e = errno;
		REAL(close)()(fd);
		errno = e;
	}
	return f;
}

FILE *fopen(const char *path, const char *mode)
{
	int handled;
	FILE *f = fdinfo_fopen(path, mode, &handled);
	if (handled)
		return f;
	return REAL(fopen)()(path, mode);
}

FILE *fopen64(const char *path, const char *mode)
{
	int handled;
	FILE *f = fdinfo_fopen(path, mode, &handled);
	if (handled)
		return f;
	return REAL(fopen64)()(path, mode);
}

// The link /proc/self/fd/<n> of a kernel map reads anon_inode:bpf-map;
// tools (bpftool) read it to tell maps from programs and links.
static const char map_link[] = "anon_inode:bpf-map";

static ssize_t fd_link(const char *path, char *buf, size_t bufsiz)
{
	int fd = proc_fd(path, "fd");
	if (fd < 0 || !maybe_marked(fd))
		return -2;
	int saved = errno;
	int ok = bpfmapGoIsMapFD(fd);
	errno = saved;
	if (!ok)
		return -2;
	size_t n = sizeof(map_link) - 1;
	if (n > bufsiz)
		n = bufsiz;
	memcpy(buf, map_link, n);
	return (ssize_t)n;
}

ssize_t readlink(const char *path, char *buf, size_t bufsiz)
{
	ssize_t r = fd_link(path, buf, bufsiz);
	if (r != -2)
		return r;
	return REAL(readlink)()(path, buf, bufsiz);
}

ssize_t readlinkat(int dirfd, const char *path, char *buf, size_t bufsiz)
{
	ssize_t r = fd_link(path, buf, bufsiz); // absolute /proc paths only
	if (r != -2)
		return r;
	return REAL(readlinkat)()(dirfd, path, buf, bufsiz);
}

// ---- the pin namespace looks like a bpffs ----

static int in_namespace(const char *path)
{
	if (!path || !go_ok())
		return 0;
	int saved = errno;
	int r = bpfmapGoInNamespace((char *)path);
	errno = saved;
	return r;
}

int statfs(const char *path, struct statfs *buf)
{
	int r = REAL(statfs)()(path, buf);
	if (r == 0 && in_namespace(path))
		buf->f_type = BPF_FS_MAGIC_VALUE;
	return r;
}

int statfs64(const char *path, struct statfs64 *buf)
{
	statfs64_fn fn = REAL(statfs64)();
	int r = fn ? fn(path, buf) : REAL(statfs)()(path, (struct statfs *)buf);
	if (r == 0 && in_namespace(path))
		buf->f_type = BPF_FS_MAGIC_VALUE;
	return r;
}

int mount(const char *source, const char *target, const char *type,
	  unsigned long flags, const void *data)
{
	// A bpffs mount over a directory of the namespace (bpftool mounts one
	// where a pin's directory is not a bpffs) is already in place.
	if (type && strcmp(type, "bpf") == 0 && in_namespace(target))
		return 0;
	return REAL(mount)()(source, target, type, flags, data);
}

// The mount table read through setmntent/getmntent gains one bpf entry,
// the namespace root, after the real ones: bpftool -f walks the bpf
// mounts to name the pins of each map.
#define MNT_STREAMS 8
static struct {
	FILE *f;
	int done;
} mnt_streams[MNT_STREAMS];
static char mnt_root[4096];
static char mnt_type[] = "bpf";
static char mnt_opts[] = "rw,relatime";

FILE *setmntent(const char *file, const char *type)
{
	FILE *f = REAL(setmntent)()(file, type);
	if (!f || !file || (strcmp(file, "/proc/mounts") != 0 &&
			    strcmp(file, "/proc/self/mounts") != 0 &&
			    strcmp(file, "/etc/mtab") != 0))
		return f;
	for (int i = 0; i < MNT_STREAMS; i++) {
		FILE *none = NULL;
		if (__atomic_compare_exchange_n(&mnt_streams[i].f, &none, f, 0,
						__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
			mnt_streams[i].done = 0;
			break;
		}
	}
	return f;
}

static int mnt_slot(FILE *f)
{
	for (int i = 0; i < MNT_STREAMS; i++)
		if (f && __atomic_load_n(&mnt_streams[i].f, __ATOMIC_ACQUIRE) == f)
			return i;
	return -1;
}

// mnt_extra fills e with the namespace's entry once per stream.
static struct mntent *mnt_extra(FILE *f, struct mntent *e, char *root, size_t rootlen)
{
	int i = mnt_slot(f);
	if (i < 0 || mnt_streams[i].done || !go_ok())
		return NULL;
	mnt_streams[i].done = 1;
	int saved = errno;
	int n = bpfmapGoMountRoot(root, (int)rootlen);
	errno = saved;
	if (n <= 0)
		return NULL;
	e->mnt_fsname = mnt_type;
	e->mnt_dir = root;
	e->mnt_type = mnt_type;
	e->mnt_opts = mnt_opts;
	e->mnt_freq = 0;
	e->mnt_passno = 0;
	return e;
}

struct mntent *getmntent(FILE *f)
{
	static struct mntent e;
	struct mntent *r = REAL(getmntent)()(f);
	if (r)
		return r;
	return mnt_extra(f, &e, mnt_root, sizeof(mnt_root));
}

struct mntent *getmntent_r(FILE *f, struct mntent *e, char *buf, int len)
{
	struct mntent *r = REAL(getmntent_r)()(f, e, buf, len);
	if (r || len <= 0)
		return r;
	return mnt_extra(f, e, buf, (size_t)len);
}

int endmntent(FILE *f)
{
	int i = mnt_slot(f);
	if (i >= 0)
		__atomic_store_n(&mnt_streams[i].f, NULL, __ATOMIC_RELEASE);
	return REAL(endmntent)()(f);
}

// ---- mmap ----

// A user-space map fd is its object file: mapping it would show the map's
// region, not what mmap of a kernel map fd shows. It fails instead, with
// the errno bpfmapGoMmapErrno picks.
static int map_mmap_errno(int fd, int prot, int flags)
{
	if ((flags & MAP_ANONYMOUS) || !maybe_marked(fd))
		return 0;
	int saved = errno;
	int e = bpfmapGoMmapErrno(fd, (prot & PROT_WRITE) && (flags & MAP_SHARED));
	errno = saved;
	return e;
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	int e = map_mmap_errno(fd, prot, flags);
	if (e) {
		errno = e;
		return MAP_FAILED;
	}
	return REAL(mmap)()(addr, len, prot, flags, fd, off);
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off64_t off)
{
	int e = map_mmap_errno(fd, prot, flags);
	if (e) {
		errno = e;
		return MAP_FAILED;
	}
	mmap64_fn fn = REAL(mmap64)();
	if (!fn)
		return REAL(mmap)()(addr, len, prot, flags, fd, (off_t)off);
	return fn(addr, len, prot, flags, fd, off);
}
