//go:build unix && !linux

package region

// freeShared drops this process's pages of a dead object (shared objects
// are only made on Linux; see internal/namespace).
func freeShared(mem []byte) error { return discard(mem) }
