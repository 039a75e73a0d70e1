// Command preload is libbpfmap.so, an LD_PRELOAD library that gives
// unmodified, dynamically linked BPF tools — bpftool, libbpf programs —
// bpfmap's user-space maps, while kernel maps keep working in the same
// process.
//
// Build and use:
//
//	go build -buildmode=c-shared -o libbpfmap.so ./preload
//	LD_PRELOAD=$PWD/libbpfmap.so bpftool map create /dev/shm/bpfmap-$(id -u)/m type hash key 4 value 8 entries 64 name m
//	LD_PRELOAD=$PWD/libbpfmap.so bpftool map update pinned /dev/shm/bpfmap-$(id -u)/m key 1 0 0 0 value 1 0 0 0 0 0 0 0
//	LD_PRELOAD=$PWD/libbpfmap.so bpftool map show
//
// Pins live in the pin namespace (internal/namespace): below
// $BPFMAP_ROOT, else $XDG_RUNTIME_DIR/bpfmap, /dev/shm/bpfmap-<uid> or
// $TMPDIR/bpfmap-<uid>. No privilege is needed for user-space maps.
//
// # What it owns
//
// The package owns the interposition and the routing; bpf(2) itself for
// user-space maps is package sys, and every map rule behind it the command
// layer's. shim.c defines the libc entry points a libbpf tool goes
// through and forwards everything not addressed to bpfmap to the next
// definition (libc) unchanged:
//
//   - syscall(): bpf(2) is routed (below); close, dup, dup2, dup3 and
//     fcntl(F_DUPFD*) numbers keep the fd bookkeeping; every other number
//     goes to libc's syscall.
//   - close(), dup(), dup2(), dup3(), fcntl(F_DUPFD*): a C-side bitmap
//     marks bpfmap fds. close() of a marked fd closes it through sys
//     (sys.Close), which releases the map's handle after the descriptor, so
//     that a map dies with its last fd; an unmarked close never enters Go.
//     A dup2/dup3 that replaced a marked fd (only one that succeeded) has
//     sys drop the handle of the replaced file afterwards (sys.Forget), with
//     the same effect. A duplicate of a marked fd is marked (sys adopts it).
//   - open(), openat(), fopen() and their 64-bit and fortified variants of
//     /proc/{self,thread-self,<pid>}/fdinfo/<fd> for a marked fd: a
//     synthetic file (a memfd) with the kernel's lines (sys.FDInfo), which
//     bpftool reads for memlock and frozen.
//   - readlink() and readlinkat() of /proc/self/fd/<fd>: anon_inode:bpf-map
//     for a marked fd, as bpftool checks an object's kind with it.
//   - statfs() and statfs64() of a path in a namespace report BPF_FS_MAGIC,
//     so bpftool does not try to mount a bpffs over a pin directory, and
//     mount() of a bpffs over one succeeds without doing anything.
//   - setmntent()/getmntent()/getmntent_r() of the mount table end with one
//     extra "bpf" entry, the default namespace root, so bpftool -f finds
//     the pins of user-space maps.
//   - mmap() of a marked fd fails (see limits) instead of mapping the map's
//     object file.
//
// The Go runtime makes its own system calls without libc, with one
// exception: the cgo runtime allocates memory through libc's mmap
// (x_cgo_mmap), which comes back through the library's mmap(); it maps
// anonymous memory, for which mmap() calls libc's at once.
//
// # Routing of bpf(2)
//
//   - Commands on a map fd (element, batch, FREEZE, OBJ_GET_INFO_BY_FD,
//     OBJ_PIN): bpfmap when the fd is marked and sys confirms it is a map
//     fd of its own (a stale bit is cleared), else the kernel. When the
//     kernel refuses an unmarked fd that is a regular file (EINVAL: no BPF
//     object), sys is asked whether it is a map fd the library did not
//     hand out — inherited across exec, received over SCM_RIGHTS, made by
//     a system call the library does not see — and if so the fd is marked
//     and the command runs in bpfmap. This costs nothing on the success
//     path.
//   - OBJ_GET: bpfmap when the path, resolved from the working directory
//     or path_fd as the kernel resolves it (sys.PathInNamespace), is in a
//     namespace, else the kernel.
//   - MAP_GET_FD_BY_ID: ids from 2^30 up (namespace.MinID) are user-space
//     ids and go to bpfmap; smaller ones to the kernel.
//   - MAP_GET_NEXT_ID merges both: kernel ids first, then, once the kernel
//     answers ENOENT (its last id) or EPERM (no privilege), user-space ids,
//     which are all larger.
//   - Everything else (programs, links, BTF, other object ids) goes to the
//     kernel untouched.
//
// # Selection rule for MAP_CREATE
//
// A MAP_CREATE becomes a user-space map when bpfmap implements its type
// (HASH, ARRAY, PERCPU_HASH, PERCPU_ARRAY, LRU_HASH, LRU_PERCPU_HASH,
// LPM_TRIE, QUEUE, STACK, BLOOM_FILTER, RINGBUF, ARRAY_OF_MAPS,
// HASH_OF_MAPS) and nothing in the attr ties it to the kernel. It goes to
// the kernel when
//
//   - $BPFMAP_CREATE is "kernel" (then every create does);
//   - the type is one bpfmap does not implement (PROG_ARRAY, SOCKMAP, ...);
//   - it names a device (map_ifindex), BTF (btf_fd, btf_key_type_id,
//     btf_value_type_id, btf_vmlinux_value_type_id or
//     value_type_btf_obj_fd: libbpf's object loader creates the maps of BPF
//     programs that way, and programs need kernel maps), or a BPF token;
//   - it is a map-in-map whose inner_map_fd is not a bpfmap fd.
//
// # Deviations and limits
//
//   - libbpf probes whether bpf(2) takes object names by loading a tiny
//     socket filter named "libbpf_nametest", and strips map names when
//     that fails. Without privilege the kernel refuses it (EPERM), so for
//     exactly that probe, and unless BPFMAP_CREATE=kernel, the library
//     answers with a descriptor of /dev/null that libbpf closes at once:
//     user-space maps keep their names without root.
//   - bpffs refuses names with a '.' below its root (EPERM for pins and
//     gets); user-space namespaces refuse them too (internal/namespace).
//   - BPF programs cannot use user-space maps: a program that loads BPF
//     code should run with BPFMAP_CREATE=kernel (maps described with BTF,
//     as libbpf's object loader creates them, go to the kernel anyway).
//   - mmap() of a user-space map fd is not supported: where the kernel
//     would map the map (BPF_F_MMAPABLE arrays, ring buffers) it fails
//     with ENODEV; elsewhere with the kernel's own errno for the map and
//     the fd's mode (sys.MmapErrno: EACCES, ENOTSUPP, EINVAL, EPERM).
//     libbpf's ring_buffer__new therefore fails on a user-space RINGBUF.
//   - Only programs that call bpf(2) through libc's syscall() are covered:
//     statically linked programs and Go programs (cilium/ebpf issues the
//     system call itself) are not; Go programs use package bpfmap.
//   - The Go runtime starts its threads when the library loads. glibc
//     aborts a process whose threads disagree about a set*id call, which
//     happens to programs that keep capabilities in one thread across
//     setresuid (setpriv, capsh): preload the tool, not the wrapper
//     (setpriv ... env LD_PRELOAD=libbpfmap.so bpftool ...).
//   - A child made by fork() without exec cannot call into the Go runtime
//     (its other threads are gone): there the library passes everything to
//     the kernel, so user-space map fds are not maps in the child. After
//     exec the library loads afresh and inherited map fds work again: the
//     first bpf(2) command on one adopts it (above). Until then the
//     synthetic fdinfo, the /proc/self/fd link and the mmap refusal, which
//     look at marked fds only, treat it as the map's object file.
//   - close() of a marked fd (and dup2/dup3 over one) calls into Go, which
//     is not async-signal-safe: a signal handler must not close a map fd
//     (or dup over one) that the interrupted code may be using the library
//     with. Closing other fds from a handler stays safe (it never enters
//     Go).
//   - Bad pointers: an invalid attr pointer or pathname becomes EFAULT, as
//     from the kernel, where the library reads it in Go: MAP_CREATE,
//     OBJ_GET, MAP_GET_FD_BY_ID, MAP_GET_NEXT_ID and every command that
//     reaches bpfmap. With no bpfmap fd open, the commands on a map fd go to
//     the kernel without the library reading their attr. While some bpfmap
//     fd is open, the C routing reads the map fd out of their attr, and an
//     invalid attr pointer there ends the program, as does sys reading an
//     invalid key, value or batch buffer (sys may hold a map's lock at that
//     point; a dead process's locks are repaired, a recovered panic's would
//     stay held).
//     A Go panic in sys on the bpf(2) path likewise ends the program with
//     a traceback.
//   - The synthetic fdinfo and /proc/self/fd link are served to callers
//     that go through libc's open/fopen/readlink; a program reading /proc
//     by other means sees the map's object file.
package main
