//go:build !linux

package kbpf

import (
	"fmt"
	"runtime"
	"syscall"

	"github.com/cilium/ebpf"
)

// Available reports whether bpf(2) can create maps here; on this GOOS it
// never can.
func Available() error {
	return fmt.Errorf("the kernel's BPF is not available on %s", runtime.GOOS)
}

// Raw would call bpf(2); on this GOOS it returns ENOSYS.
func Raw(cmd uint32, attr []byte) (int, syscall.Errno) { return -1, syscall.ENOSYS }

// CreateMap would run BPF_MAP_CREATE; on this GOOS it returns ENOSYS.
func CreateMap(a *CreateAttr) (fd int, errno syscall.Errno) { return -1, syscall.ENOSYS }

// Lookup would run BPF_MAP_LOOKUP_ELEM; on this GOOS it returns ENOSYS.
func Lookup(fd int, key, value []byte, flags uint64) syscall.Errno { return syscall.ENOSYS }

// Update would run BPF_MAP_UPDATE_ELEM; on this GOOS it returns ENOSYS.
func Update(fd int, key, value []byte, flags uint64) syscall.Errno { return syscall.ENOSYS }

// Delete would run BPF_MAP_DELETE_ELEM; on this GOOS it returns ENOSYS.
func Delete(fd int, key []byte) syscall.Errno { return syscall.ENOSYS }

// GetNextKey would run BPF_MAP_GET_NEXT_KEY; on this GOOS it returns ENOSYS.
func GetNextKey(fd int, key, next []byte) syscall.Errno { return syscall.ENOSYS }

// LookupAndDelete would run BPF_MAP_LOOKUP_AND_DELETE_ELEM; on this GOOS it
// returns ENOSYS.
func LookupAndDelete(fd int, key, value []byte, flags uint64) syscall.Errno {
	return syscall.ENOSYS
}

// Freeze would run BPF_MAP_FREEZE; on this GOOS it returns ENOSYS.
func Freeze(fd int) syscall.Errno { return syscall.ENOSYS }

// Batch would run a batch command; on this GOOS it returns ENOSYS.
func Batch(cmd uint32, fd int, b *BatchAttr) (count uint32, errno syscall.Errno) {
	return 0, syscall.ENOSYS
}

// Info would run BPF_OBJ_GET_INFO_BY_FD; on this GOOS it returns ENOSYS.
func Info(fd int) (MapInfo, syscall.Errno) { return MapInfo{}, syscall.ENOSYS }

// Close would close a map fd; on this GOOS it returns ENOSYS.
func Close(fd int) error { return syscall.ENOSYS }

// LoopCost would measure an operation inside BPF; on this GOOS it returns
// ENOSYS.
func LoopCost(m *ebpf.Map, op Op, nKeys uint32, iters uint32) (nsPerOp float64, err error) {
	return 0, syscall.ENOSYS
}
