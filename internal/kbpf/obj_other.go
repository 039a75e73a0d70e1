//go:build !linux

package kbpf

import "syscall"

// ObjPin would run BPF_OBJ_PIN; on this GOOS it returns ENOSYS.
func ObjPin(fd int, path string, flags uint32) syscall.Errno { return syscall.ENOSYS }

// ObjGet would run BPF_OBJ_GET; on this GOOS it returns ENOSYS.
func ObjGet(path string, flags uint32) (fd int, errno syscall.Errno) { return -1, syscall.ENOSYS }

// MapGetNextID would run BPF_MAP_GET_NEXT_ID; on this GOOS it returns ENOSYS.
func MapGetNextID(start uint32) (uint32, syscall.Errno) { return 0, syscall.ENOSYS }

// MapGetFDByID would run BPF_MAP_GET_FD_BY_ID; on this GOOS it returns
// ENOSYS.
func MapGetFDByID(id uint32, flags uint32) (fd int, errno syscall.Errno) {
	return -1, syscall.ENOSYS
}

// Mmap would map a map's memory; on this GOOS it returns ENOSYS.
func Mmap(fd int, length int, prot int) ([]byte, syscall.Errno) { return nil, syscall.ENOSYS }

// Munmap would unmap memory returned by Mmap; on this GOOS it returns ENOSYS.
func Munmap(b []byte) error { return syscall.ENOSYS }

// BTFByID would read a kernel BTF object; on this GOOS it returns ENOSYS.
func BTFByID(id uint32) ([]byte, syscall.Errno) { return nil, syscall.ENOSYS }
