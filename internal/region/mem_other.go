//go:build !unix

package region

// maxRegion bounds a region allocated on the Go heap.
const maxRegion = 1 << 40

// allocate falls back to a pointer-free heap slice where anonymous mappings
// are not available; the collector never scans its contents.
func allocate(size int) ([]byte, error) {
	// Align to 4096 by over-allocating, so offsets keep their alignment.
	buf := make([]byte, size+4096)
	off := 0
	for uintptr(len(buf[:off]))+addr(buf) > 0 && (addr(buf)+uintptr(off))%4096 != 0 {
		off++
	}
	return buf[off : off+size : off+size], nil
}

// discard zeroes the memory; the collector frees it once unreachable.
func discard(mem []byte) error {
	clear(mem)
	return nil
}

func unmap([]byte) error { return nil }

func adviseHuge([]byte) {}
