//go:build linux

package sys_test

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/bpfmap/bpfmap/internal/kbpf"
	"github.com/bpfmap/bpfmap/sys"
)

// BenchmarkLookup measures BPF_MAP_LOOKUP_ELEM through the same attr bytes
// on a 1024-entry hash map: bpf(2) into the kernel and sys.BPF on a
// user-space map, in the same run (the kernel side is skipped without
// BPF). Compare the two ns/op figures: sys.BPF pays an fstat and an fcntl
// to validate the fd, the kernel a system call and its fd lookup.
func BenchmarkLookup(b *testing.B) {
	for _, kernel := range []bool{true, false} {
		name := "sys"
		if kernel {
			name = "kernel"
		}
		b.Run(name, func(b *testing.B) {
			if kernel && kbpf.Available() != nil {
				b.Skip("no kernel BPF here")
			}
			call := func(cmd int, attr []byte) (int, error) {
				if kernel {
					r, _, e := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(ptr(attr)), uintptr(len(attr)))
					if e != 0 {
						return -1, e
					}
					return int(r), nil
				}
				return sys.BPF(cmd, ptr(attr), uintptr(len(attr)))
			}
			fd, err := call(sys.BPF_MAP_CREATE, createAttr(b, tHash, 4, 8, 1024, 0))
			if err != nil {
				b.Fatal(err)
			}
			defer func() {
				if kernel {
					unix.Close(fd)
				} else {
					sys.Close(fd)
				}
			}()
			key, value := mem(b, 4), mem(b, 8)
			a := elemAttr(b, fd, key, value, 0)
			for i := range uint32(1024) {
				ne.PutUint32(key, i)
				if _, err := call(sys.BPF_MAP_UPDATE_ELEM, a); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			i := uint32(0)
			for b.Loop() {
				ne.PutUint32(key, i&1023)
				i++
				if _, err := call(sys.BPF_MAP_LOOKUP_ELEM, a); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
