package region

import "golang.org/x/sys/unix"

// freeShared gives a dead object's pages back to the system: MADV_REMOVE
// punches them out of the file, so every mapping reads zeroes from then on.
func freeShared(mem []byte) error { return unix.Madvise(mem, unix.MADV_REMOVE) }
