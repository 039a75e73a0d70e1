//go:build !(amd64 || 386)

package region

import "sync/atomic"

// ReadFence orders a sequence-validated reader's plain loads of map bytes
// before its second load of the sequence word. On weakly ordered CPUs an
// atomic read-modify-write of a stack word is a full barrier.
func ReadFence() {
	var w uint32
	atomic.AddUint32(&w, 0)
}

// StoreRelease32 stores v to *p with release ordering (an atomic store).
func StoreRelease32(p *uint32, v uint32) { atomic.StoreUint32(p, v) }

// StoreRelease64 stores v to *p with release ordering (an atomic store).
func StoreRelease64(p *uint64, v uint64) { atomic.StoreUint64(p, v) }
