// Threads that create, use and close maps while other descriptors come
// and go, for the preload tests: descriptor numbers of closed bpfmap maps
// are reused by ordinary files at once, and a kernel map (optional, pinned
// at argv[1]) is used next to the user-space ones. Exits 0 when every
// result was the expected one.
//
// usage: stress [KERNEL_MAP_PIN]   (a hash map, key 4, value 4, key 1 present)

#include <bpf/bpf.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define THREADS 4
#define ROUNDS 300

static int kfd = -1;
static int failures;

static void fail(const char *what, int r)
{
	__atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);
	fprintf(stderr, "%s: %d (errno %d)\n", what, r, errno);
}

static void *worker(void *arg)
{
	unsigned t = (unsigned)(long)arg;
	for (unsigned i = 0; i < ROUNDS; i++) {
		int fd = bpf_map_create(BPF_MAP_TYPE_HASH, "stress", 4, 4, 8, NULL);
		if (fd < 0) {
			fail("create", fd);
			continue;
		}
		unsigned k = t, v = i, out = 0;
		int r = bpf_map_update_elem(fd, &k, &v, BPF_ANY);
		if (r)
			fail("update", r);
		r = bpf_map_lookup_elem(fd, &k, &out);
		if (r || out != i)
			fail("lookup", r);
		close(fd);
		// The number just freed goes to an ordinary file: it is no
		// map (EINVAL from the kernel), and no bpfmap map either.
		int nfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		r = bpf_map_lookup_elem(nfd, &k, &out);
		if (r != -EINVAL)
			fail("lookup on /dev/null", r);
		close(nfd);
		if (kfd >= 0) {
			k = 1;
			r = bpf_map_lookup_elem(kfd, &k, &out);
			if (r)
				fail("kernel map lookup", r);
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc > 1) {
		kfd = bpf_obj_get(argv[1]);
		if (kfd < 0) {
			fail("kernel map obj_get", kfd);
			return 1;
		}
	}
	pthread_t th[THREADS];
	for (long i = 0; i < THREADS; i++)
		pthread_create(&th[i], NULL, worker, (void *)i);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	printf("%d rounds, %d failures\n", THREADS * ROUNDS, failures);
	return failures != 0;
}
