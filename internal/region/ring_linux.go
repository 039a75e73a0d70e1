package region

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// allocateRing maps a memfd of head+data bytes at the start of a reserved
// range of head+2*data bytes, and the file's last data bytes a second time
// right after it. One munmap of the whole range (unmap) removes every
// piece. If memfd_create or a mapping is refused, it falls back to one
// anonymous mapping (doubled false).
func allocateRing(head, data uint64) (mem []byte, doubled bool, err error) {
	total := head + 2*data
	if mem, err := doubleMap(head, data); err == nil {
		return mem, true, nil
	}
	mem, err = allocate(int(total))
	return mem, false, err
}

func doubleMap(head, data uint64) ([]byte, error) {
	fd, err := unix.MemfdCreate("bpfmap-ringbuf", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	// The mappings keep the file alive; the descriptor is not needed after.
	defer unix.Close(fd)
	if err := unix.Ftruncate(fd, int64(head+data)); err != nil {
		return nil, err
	}
	// Reserve the whole range first so nothing else can land between the
	// two file mappings; unix.Mmap records it so unmap can remove it.
	mem, err := unix.Mmap(-1, 0, int(head+2*data), unix.PROT_NONE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return nil, err
	}
	// Sound: base is the start of the reservation just made, which stays
	// mapped (by the pieces below) until unmap(mem); MAP_FIXED replaces
	// pages inside it only. unsafe.Add stays inside the reservation.
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

// discardShared frees a ring's pages: MADV_REMOVE punches them out of the
// memfd (a MADV_DONTNEED of a shared mapping would keep the file's
// contents); the fallback's anonymous memory takes the ordinary discard.
func discardShared(mem []byte) error {
	if err := unix.Madvise(mem, unix.MADV_REMOVE); err == nil {
		return nil
	}
	return discard(mem)
}
