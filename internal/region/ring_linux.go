package region

import "golang.org/x/sys/unix"

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
	return mapDoubled(fd, head, data)
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
