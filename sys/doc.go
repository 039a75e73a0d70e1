// Package sys is bpf(2) for user-space maps: BPF(cmd, attr, size) takes the
// kernel's union bpf_attr bytes (Linux 6.18 layout) for the map commands
// and answers with the kernel's return value and errno, so that C-shaped
// callers (the LD_PRELOAD library, ports of libbpf-style code, differential
// tests) drive bpfmap exactly as they drive the kernel.
//
// # What it owns
//
// The package owns the syscall envelope, the decoding of attr into the
// command layer's arguments (internal/command), the encoding of results
// back into attr and user buffers, and map file descriptors. Every map rule
// (checks, flags, errno, iteration, batches, pins, ids, info) is the
// command layer's; this package implements none.
//
// Commands: BPF_MAP_CREATE, BPF_MAP_LOOKUP_ELEM, BPF_MAP_UPDATE_ELEM,
// BPF_MAP_DELETE_ELEM, BPF_MAP_GET_NEXT_KEY, BPF_MAP_LOOKUP_AND_DELETE_ELEM,
// BPF_MAP_FREEZE, the four batch commands, BPF_OBJ_PIN, BPF_OBJ_GET,
// BPF_MAP_GET_NEXT_ID, BPF_MAP_GET_FD_BY_ID and BPF_OBJ_GET_INFO_BY_FD.
// Any other command is EINVAL, as an unknown command is for the kernel.
// Typed structs (MapCreateAttr, MapElemAttr, MapBatchAttr, ObjAttr,
// GetIDAttr, InfoAttr, MapInfo) have the kernel's byte layout and can be
// passed as BPF(cmd, unsafe.Pointer(&a), unsafe.Sizeof(a)).
//
// # The envelope
//
// As the kernel's: size is an unsigned int (the upper bits of a larger
// value are dropped); size > 4096 is E2BIG; bytes beyond sizeof(union
// bpf_attr) (168 in 6.18) must be zero (E2BIG); a shorter attr is
// zero-extended; a non-NULL size with a NULL attr is EFAULT, a NULL attr
// with size 0 an all-zero attr; a non-zero byte after the command's last
// field is EINVAL; results the kernel writes into attr (batch.count,
// next_id, info.info_len) are written at their offsets whatever the size.
//
// # User pointers
//
// Pointers inside attr (key, value, next_key, keys, values, in_batch,
// out_batch, pathname, info, the map hash) are plain process addresses.
// NULL is checked where the kernel checks it (EFAULT where the kernel
// reads or writes, nothing where it does not: a LOOKUP of a missing key
// with a NULL value is ENOENT; maps with key_size 0 need a NULL key, else
// EINVAL). A non-NULL address is used as it is: it must point to as many
// bytes as the kernel would read or write there (batch buffers: count
// elements). An invalid non-NULL address cannot be turned into EFAULT
// safely from user space — it is the caller's bug and crashes the process
// or corrupts its memory, where the kernel would have said EFAULT. Go
// callers must keep the buffers they put into attr alive and unmoved for
// the call (heap memory kept alive, or runtime.Pinner).
//
// # File descriptors
//
// A map fd is a real file descriptor: the map's object file in its pin
// namespace (<root>/.bpfmap/maps/<id>, see internal/namespace) opened with
// open(2), O_CLOEXEC, and the access mode of the handle (O_RDWR; O_RDONLY
// for BPF_F_RDONLY, O_WRONLY for BPF_F_WRONLY, as F_GETFL shows for kernel
// map fds), holding a shared flock(2). The open file description itself
// keeps the map alive: dup(2) and fork share it, it passes through exec
// (cmd.ExtraFiles, SCM_RIGHTS), and when the last descriptor of it is
// closed the kernel drops the flock, after which the namespace's
// last-closer check and sweeps free the map.
//
// The package keeps a table fd → (st_dev, st_ino, access mode, command
// handle). Every command that takes a map fd fstat(2)s it (and reads its
// access mode with F_GETFL): not open is EBADF; the table's entry is used
// if dev, ino and mode match; otherwise an fd open on a map object file of
// a namespace (inherited, dup'ed or dup2'ed over, or opened by path or pin)
// is adopted — the map opened by id with the fd's access mode — and
// anything else is EINVAL (EBADFD for OBJ_GET_INFO_BY_FD with an fd that is
// not open, as the kernel). Threads adopting the same fd at once share one
// entry. A command holds a reference to its entry while it runs, so that a
// Close or a sweep in another thread does not release the handle under it.
// Close(fd) closes the descriptor and then releases the handle, so the map
// dies before Close returns when that was its last reference (or when the
// last command running on it returns). A map fd may also be closed with
// plain close(2): the stale entry (fd closed or reused, dev/ino/mode
// mismatch) then keeps the map until it is released — when the fd is used
// or reused, when the table has doubled since its last sweep, before
// BPF_MAP_GET_FD_BY_ID of its id and at every BPF_MAP_GET_NEXT_ID — so that
// ids vanish as the kernel's do for this process's observers, and memory and
// descriptors return to the baseline however many maps are created and
// closed. Forget(fd) drops the handle of a descriptor its caller is about
// to close(2). MmapErrno(fd, writable) is what mmap(2) of a map fd answers: the command
// layer's rule, and ENODEV where the kernel would map (user-space map fds
// are not mapped).
//
// Each map this process has open costs two descriptors, where a kernel map
// costs one: the map fd, and the descriptor of the map object file the
// command layer's handle holds (internal/namespace; the map fd cannot be it,
// since its owner may close(2) it at any time). A process at RLIMIT_NOFILE
// therefore gets about half as many maps as from the kernel; the failing
// BPF_MAP_CREATE, BPF_OBJ_GET or BPF_MAP_GET_FD_BY_ID answers EMFILE (ENFILE
// for the system's limit), as the kernel's does. Adopting an fd (above)
// needs a descriptor too and is EINVAL when none is left.
//
// # Namespaces
//
// BPF_MAP_CREATE, BPF_MAP_GET_NEXT_ID and BPF_MAP_GET_FD_BY_ID use the
// default namespace (internal/namespace: $BPFMAP_ROOT, ...); ids outside
// the user-space range are unknown (ENOENT). BPF_OBJ_PIN and BPF_OBJ_GET
// take any path inside a namespace root. Pathnames are resolved by the
// kernel's own path walk (openat(2) with O_PATH from path_fd with
// BPF_F_PATH_FD, else from the working directory): symbolic links are
// followed component by component, so a ".." after a link is the parent of
// its target; OBJ_PIN follows the links of the parent directory only,
// OBJ_GET the final one too. The walk's errors are the kernel's (ENOENT,
// ENOTDIR, ELOOP, EACCES; for a pin EEXIST for a name that exists, ".",
// ".." or "/", ENOENT for a missing one with a trailing '/'); then a pin
// target outside every namespace is EPERM and an OBJ_GET of a file outside
// one EACCES, the kernel's answers for paths outside a bpffs.
// PathInNamespace tells which pathnames this package answers. A map can
// only be pinned in its own namespace (EPERM otherwise).
//
// # Deviations
//
//   - No privileges are needed: user-space maps are the caller's memory
//     (no EPERM for GET_NEXT_ID, GET_FD_BY_ID or LRU/LPM creation without
//     CAP_BPF/CAP_SYS_ADMIN).
//   - BTF: btf_fd is ignored when no BTF type id is given (as in the
//     kernel); any btf_key_type_id, btf_value_type_id or
//     btf_vmlinux_value_type_id is EINVAL (user-space maps take no BTF;
//     the kernel would answer EBADF/EINVAL for an invalid btf_fd and accept
//     a valid one). Tokens (BPF_F_TOKEN_FD) are EINVAL.
//   - An inner-map template or a map-in-map value must be a user-space map
//     fd; a kernel map fd is EINVAL (not a map of ours).
//   - A map whose last fd was closed with plain close(2) (not Close) stays
//     visible to other processes until this process next notices (above).
//   - OBJ_GET of a file inside a namespace that is not one of its map
//     objects (a copy of a pin, a stray file) is EINVAL, the command
//     layer's answer; a bpffs holds no such files.
//   - BPF_OBJ_GET_INFO_BY_FD fills what the kernel fills for a map without
//     BTF or device (bytes it leaves alone keep the caller's input, as in
//     the kernel); the map hash (info.hash, hash_size 32) is the SHA-256
//     of a frozen ARRAY's values, as the kernel's. fdinfo's pos, flags,
//     mnt_id and ino are the object file's (flags with only the bits a
//     kernel map file can have).
//   - Off Linux, BPF returns ENOSYS: file descriptors need the Linux
//     namespace; Go programs use the bpfmap package's API there.
package sys
