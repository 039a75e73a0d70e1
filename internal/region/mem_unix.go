//go:build unix

package region

import "golang.org/x/sys/unix"

// maxRegion bounds a region to what a 64-bit address space maps comfortably.
const maxRegion = 1 << 46

// allocate maps size bytes of zeroed anonymous memory outside the Go heap.
func allocate(size int) ([]byte, error) {
	return unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
}

// discard gives the pages back; the range stays mapped and reads zeroes.
func discard(mem []byte) error { return unix.Madvise(mem, unix.MADV_DONTNEED) }

// unmap removes the range.
func unmap(mem []byte) error { return unix.Munmap(mem) }

// adviseHuge asks for transparent huge pages where the system offers them.
func adviseHuge(mem []byte) { adviseHugeOS(mem) }
