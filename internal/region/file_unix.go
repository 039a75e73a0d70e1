//go:build unix

package region

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// MapFile maps the first size bytes of the open file fd (a map object in the
// pin namespace) shared, so that every process mapping the file sees the
// same map. The file must already be size bytes long. The mapping outlives
// fd; the caller keeps fd for the object's lifetime protocol.
func MapFile(fd int, size uint64) (*Region, error) {
	if size < HeaderSize || size%4096 != 0 || size > maxRegion || size != uint64(int(size)) {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, size)
	}
	mem, err := unix.Mmap(fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, err
	}
	if size >= hugePage {
		// As for New: where the file's filesystem allows huge pages on
		// advice (a tmpfs mounted with huge=advise), large maps get them.
		adviseHuge(mem)
	}
	return newShared(mem), nil
}

// MapRingFile maps a ring buffer map's object file as NewRing lays out
// anonymous rings: the file holds head+data bytes (head = meta + 2*page),
// mapped at the start of a reserved range of head+2*data bytes, with the
// file's last data bytes mapped a second time right after, so every process
// sees the same doubled ring.
func MapRingFile(fd int, head, data uint64) (*Region, error) {
	total := head + 2*data
	if data == 0 || total < data || total > maxRegion || total != uint64(int(total)) {
		return nil, fmt.Errorf("%w: ring of %d data bytes", ErrTooLarge, data)
	}
	mem, err := mapDoubled(fd, head, data)
	if err != nil {
		return nil, err
	}
	return newShared(mem), nil
}

// mapDoubled maps the file fd of head+data bytes at the start of a
// reserved range of head+2*data bytes, and the file's last data bytes a
// second time right after it. One munmap of the whole range (unmap)
// removes every piece.
func mapDoubled(fd int, head, data uint64) ([]byte, error) {
	// Reserve the whole range first so nothing else can land between the
	// two file mappings; unix.Mmap records it so unmap can remove it.
	mem, err := unix.Mmap(-1, 0, int(head+2*data), unix.PROT_NONE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return nil, err
	}
	// Sound: base is the start of the reservation just made, which stays
	// mapped (by the pieces below) until unmap(mem); MAP_FIXED replaces
	// pages inside it only, and unsafe.Add stays inside the reservation.
	base := unsafe.Pointer(&mem[0])
	const prot, flags = unix.PROT_READ | unix.PROT_WRITE, unix.MAP_SHARED | unix.MAP_FIXED
	if _, err := unix.MmapPtr(fd, 0, base, uintptr(head+data), prot, flags); err != nil {
		_ = unix.Munmap(mem)
		return nil, err
	}
	if _, err := unix.MmapPtr(fd, int64(head), unsafe.Add(base, head+data), uintptr(data), prot, flags); err != nil {
		_ = unix.Munmap(mem)
		return nil, err
	}
	return mem, nil
}

func newShared(mem []byte) *Region {
	if released.Load()-unmapped.Load() > maxWaiting {
		runtime.GC()
	}
	r := &Region{mem: mem, shared: true}
	runtime.AddCleanup(r, func(mem []byte) {
		_ = unmap(mem)
		unmapped.Add(1)
	}, mem)
	return r
}
