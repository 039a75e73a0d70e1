//go:build linux

package sys

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/bpfmap/bpfmap/internal/namespace"
)

// Pathnames of BPF_OBJ_PIN and BPF_OBJ_GET are resolved as the kernel
// resolves them (user_path_create and user_path_at): from path_fd with
// BPF_F_PATH_FD, else from the working directory, component by component,
// following symbolic links where they are met, so that a ".." after a link
// is the parent of the link's target, not of the link. The kernel does the
// walk itself: the pathname is opened with O_PATH (the parent directory for
// OBJ_PIN, the whole pathname, final link followed, for OBJ_GET) and the
// result read back from /proc/self/fd.

// PathInNamespace reports whether BPF_OBJ_PIN or BPF_OBJ_GET of pathname
// name is answered by this package: whether name, resolved exactly as BPF
// resolves it, lies below the root of a user-space pin namespace. dirfd is
// where a relative name starts: AT_FDCWD (-100) for the working directory,
// or a directory descriptor (path_fd with BPF_F_PATH_FD). A name that
// exists is resolved through its final symbolic link (as OBJ_GET does); one
// that does not by its parent directory (where OBJ_PIN would create it).
// For any other pathname the kernel's answer is the one bpf(2) gives.
func PathInNamespace(name string, dirfd int) bool {
	p, err := walk(dirfd, name, 0)
	if err != nil {
		if p, _, err = parentPath(name, dirfd); err != nil {
			return false
		}
	}
	_, inside := namespace.Find(p)
	return inside
}

// pathDirFD is the descriptor a pathname of OBJ_PIN / OBJ_GET starts from:
// path_fd with BPF_F_PATH_FD, else the working directory.
func pathDirFD(usePathFD bool, pathFD int32) int {
	if usePathFD {
		return int(pathFD)
	}
	return unix.AT_FDCWD
}

// walk resolves name from dirfd as the kernel's path walk does, by having
// the kernel walk it (openat(2) with O_PATH and flags), and returns the
// absolute path of what it found. Without a descriptor to spare (or
// without /proc) the walk is filepath.EvalSymlinks', which follows links
// component by component too.
func walk(dirfd int, name string, flags int) (string, error) {
	if name == "" {
		return "", errNoEnt
	}
	fd, err := unix.Openat(dirfd, name, unix.O_PATH|unix.O_CLOEXEC|flags, 0)
	if err == unix.EMFILE || err == unix.ENFILE {
		return walkGo(dirfd, name, flags&unix.O_DIRECTORY != 0)
	}
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	p, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil || !filepath.IsAbs(p) {
		return walkGo(dirfd, name, flags&unix.O_DIRECTORY != 0)
	}
	return p, nil
}

// walkGo is walk without a new descriptor.
func walkGo(dirfd int, name string, dir bool) (string, error) {
	p := name
	if !strings.HasPrefix(name, "/") {
		base, err := startDir(dirfd)
		if err != nil {
			return "", err
		}
		// Joined without cleaning: ".." is resolved after the links
		// before it.
		p = base + "/" + name
	}
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", pathErrno(err)
	}
	if dir {
		if fi, err := os.Stat(r); err != nil || !fi.IsDir() {
			return "", errNotDir
		}
	}
	return r, nil
}

// startDir is the directory of dirfd (AT_FDCWD: the working directory):
// EBADF if it is not open, ENOTDIR if it is not a directory.
func startDir(dirfd int) (string, error) {
	if dirfd == unix.AT_FDCWD {
		d, err := os.Getwd()
		if err != nil {
			return "", errNoEnt
		}
		return d, nil
	}
	var st unix.Stat_t
	if !statFD(dirfd, &st) {
		return "", errBadF
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return "", errNotDir
	}
	d, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(dirfd))
	if err != nil {
		return "", errBadF
	}
	return d, nil
}

// pathErrno is the errno inside a path lookup error.
func pathErrno(err error) error {
	var en syscall.Errno
	if errors.As(err, &en) {
		return en
	}
	if errors.Is(err, fs.ErrNotExist) {
		return errNoEnt
	}
	if strings.Contains(err.Error(), "too many links") {
		return unix.ELOOP
	}
	return errAccess
}

// parentPath is user_path_create's walk: name's parent directory resolved
// (symbolic links followed, ".." after them), its last component not. It
// returns the absolute path name creates and whether name ends in '/'.
// The root, "." and ".." are EEXIST (nothing can be created there).
func parentPath(name string, dirfd int) (p string, slash bool, err error) {
	if name == "" {
		return "", false, errNoEnt
	}
	trimmed := strings.TrimRight(name, "/")
	slash = len(trimmed) < len(name)
	dir, last := ".", trimmed
	if i := strings.LastIndexByte(trimmed, '/'); i >= 0 {
		dir, last = trimmed[:i+1], trimmed[i+1:]
	}
	if trimmed == "" {
		dir = "/"
	}
	d, err := walk(dirfd, dir, unix.O_DIRECTORY)
	if err != nil {
		return "", false, err
	}
	if last == "" || last == "." || last == ".." {
		return "", false, errExist
	}
	return filepath.Join(d, last), slash, nil
}

// pinTarget resolves an OBJ_PIN pathname to a path in a namespace, with
// user_path_create's answers (a missing or non-directory parent, EEXIST
// for a name that exists, ENOENT for a missing one with a trailing '/'),
// then EPERM outside every namespace, as the kernel answers for a target
// outside a bpffs.
func pinTarget(name string, usePathFD bool, pathFD int32) (string, error) {
	p, slash, err := parentPath(name, pathDirFD(usePathFD, pathFD))
	if err != nil {
		return "", err
	}
	_, inside := namespace.Find(p)
	_, q, nerr := inNamespace(p)
	if inside && nerr != nil {
		// A name the namespace refuses (a '.' below its root): bpffs's
		// lookup refuses it (EPERM) before anything else.
		return "", errPerm
	}
	var st unix.Stat_t
	if unix.Lstat(p, &st) == nil {
		return "", errExist
	}
	if slash {
		return "", errNoEnt
	}
	if nerr != nil {
		return "", errPerm
	}
	return q, nil
}

// getTarget resolves an OBJ_GET pathname (following a final symbolic link)
// to a namespace and a path in it. Outside every namespace it is the
// kernel's answer for a file that is not a BPF object: the path walk's
// error if the walk fails, else EACCES.
func getTarget(name string, usePathFD bool, pathFD int32) (*namespace.NS, string, error) {
	dirfd := pathDirFD(usePathFD, pathFD)
	p, err := walk(dirfd, name, 0)
	if err != nil {
		if pp, _, perr := parentPath(name, dirfd); perr == nil {
			if _, inside := namespace.Find(pp); inside {
				if _, _, nerr := inNamespace(pp); nerr != nil {
					// A name the namespace refuses: EPERM whether
					// or not it exists, as bpffs's lookup.
					return nil, "", errPerm
				}
			}
		}
		return nil, "", err
	}
	ns, q, err := inNamespace(p)
	if err != nil {
		if _, inside := namespace.Find(p); inside {
			return nil, "", errPerm
		}
		return nil, "", errAccess
	}
	return ns, q, nil
}
