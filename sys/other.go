//go:build !linux

package sys

import (
	"syscall"
	"unsafe"
)

// BPF is bpf(2) for user-space maps. Map file descriptors need Linux (see
// the package documentation); elsewhere every command fails with ENOSYS,
// as bpf(2) does where it does not exist. Go programs there use the
// bpfmap package's API, which needs no file descriptors.
func BPF(cmd int, attr unsafe.Pointer, size uintptr) (int, error) {
	return -1, syscall.ENOSYS
}

// Close closes a map file descriptor; without BPF there are none (ENOSYS).
func Close(fd int) error { return syscall.ENOSYS }

// Forget drops the package's handle of fd; without BPF there are none.
func Forget(fd int) {}

// IsMapFD reports whether fd is a user-space map fd; never, without BPF.
func IsMapFD(fd int) bool { return false }

// PathInNamespace reports whether BPF_OBJ_PIN or BPF_OBJ_GET of name (from
// dirfd) is answered by this package; never, without BPF.
func PathInNamespace(name string, dirfd int) bool { return false }

// FDInfo returns the fdinfo text of a map fd; there are none without BPF.
func FDInfo(fd int) (string, bool) { return "", false }

// MmapErrno is the errno mmap(2) of a map fd gets; there are none without
// BPF (EBADF).
func MmapErrno(fd int, writable bool) error { return syscall.EBADF }
