package region

import (
	"fmt"
	"runtime"
)

// NewRing returns a region for a BPF ring buffer: meta bytes (the header
// and the family's control words), a consumer page, a producer page, and
// data bytes of ring data followed by data more bytes that show the same
// ring again, so a record that wraps past the end of the data area can be
// read and written linearly — the kernel's mapping of a BPF_MAP_TYPE_RINGBUF
// map. meta, page and data must be multiples of the system page size.
//
// The region is always meta + 2*page + 2*data bytes long. Where the
// operating system can map one file twice (Linux: a memfd mapped with
// MAP_SHARED|MAP_FIXED twice inside one reserved range), the second copy of
// the data is the same memory as the first and doubled is true. Elsewhere
// (or if memfd_create is refused) the second copy is ordinary memory and
// doubled is false: the caller must then keep both copies of any byte it
// writes past the end of the first copy in step itself (see
// internal/ringbuf, which mirrors a wrapped record's tail on commit).
//
// A ring region shares its pages between two mappings, so Release alone does
// not zero it: callers release a ring with ReleaseRing.
func NewRing(meta, page, data uint64) (r *Region, doubled bool, err error) {
	return newRing(meta, page, data, allocateRing)
}

// NewRingCopy is NewRing with the portable layout (doubled is false) on
// every platform, so the fallback can be tested where the double mapping
// exists.
func NewRingCopy(meta, page, data uint64) (*Region, error) {
	r, _, err := newRing(meta, page, data, func(head, data uint64) ([]byte, bool, error) {
		mem, err := allocate(int(head + 2*data))
		return mem, false, err
	})
	return r, err
}

func newRing(meta, page, data uint64, alloc func(head, data uint64) ([]byte, bool, error)) (r *Region, doubled bool, err error) {
	if released.Load()-unmapped.Load() > maxWaiting {
		runtime.GC()
	}
	total := meta + 2*page + 2*data
	if data == 0 || total < data || total > maxRegion || total != uint64(int(total)) {
		return nil, false, fmt.Errorf("%w: ring of %d data bytes", ErrTooLarge, data)
	}
	mem, doubled, err := alloc(meta+2*page, data)
	if err != nil {
		return nil, false, err
	}
	r = &Region{mem: mem}
	runtime.AddCleanup(r, func(mem []byte) {
		_ = unmap(mem)
		unmapped.Add(1)
	}, mem)
	return r, doubled, nil
}

// ReleaseRing is Release for a region from NewRing: it first frees the
// pages shared by the two mappings of the data, so that later reads see
// zeroes as they do for any released region.
func (r *Region) ReleaseRing() error {
	if r.released.Load() {
		return nil
	}
	if r.shared {
		return r.Release() // the object's pages belong to every process
	}
	err := discardShared(r.mem)
	if rerr := r.Release(); err == nil {
		err = rerr
	}
	return err
}
