//go:build !linux

package region

// allocateRing allocates head+2*data bytes of ordinary memory: the second
// copy of the data is not shared with the first (doubled false).
func allocateRing(head, data uint64) ([]byte, bool, error) {
	mem, err := allocate(int(head + 2*data))
	return mem, false, err
}

func discardShared(mem []byte) error { return discard(mem) }
