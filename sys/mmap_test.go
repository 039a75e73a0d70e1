//go:build linux

package sys_test

import (
	"errors"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/bpfmap/bpfmap/sys"
)

// TestDiffMmapErrno compares mmap(2) of map fds with sys.MmapErrno for
// every type, access mode and protection: the same errno where the kernel
// refuses, and ENODEV (the documented deviation: a user-space map fd is
// not mapped) where the kernel maps.
func TestDiffMmapErrno(t *testing.T) {
	diff(t, func(s *side) {
		for _, c := range []struct {
			name                 string
			typ, ks, vs, max, fl uint32
		}{
			{"hash", 1, 4, 8, 4, 0},
			{"array", 2, 4, 8, 4, 0},
			{"mmapable array", 2, 4, 8, 4, 1 << 10},
			{"read-only mmapable array", 2, 4, 8, 4, 1<<10 | 1<<3},
			{"write-only mmapable array", 2, 4, 8, 4, 1<<10 | 1<<4},
			{"rdonly-prog mmapable array", 2, 4, 8, 4, 1<<10 | 1<<7},
			{"percpu array", 6, 4, 8, 4, 0},
			{"queue", 22, 0, 4, 4, 0},
			{"ringbuf", 27, 0, 0, 4096, 0},
		} {
			fd, e := s.do(sys.BPF_MAP_CREATE, createAttr(s.t, c.typ, c.ks, c.vs, c.max, c.fl))
			if e != 0 {
				s.logf("%s: create %s", c.name, errName(e))
				continue
			}
			for _, prot := range []int{unix.PROT_READ, unix.PROT_READ | unix.PROT_WRITE} {
				var got error
				if s.kernel {
					b, err := unix.Mmap(fd, 0, 4096, prot, unix.MAP_SHARED)
					if err == nil {
						unix.Munmap(b)
						got = unix.ENODEV // what bpfmap answers where the kernel maps
					} else {
						got = err
					}
				} else {
					got = sys.MmapErrno(fd, prot&unix.PROT_WRITE != 0)
				}
				var errno syscall.Errno
				errors.As(got, &errno)
				s.logf("%s prot %d: %s", c.name, prot, errName(errno))
			}
		}
	})
}
