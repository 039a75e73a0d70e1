package hash

import (
	"fmt"
	"sync/atomic"

	"github.com/bpfmap/bpfmap/internal/robust"
)

// Validate checks, for a map opened from a file another process wrote, the
// words that operations follow as references: bucket chains (every link an
// element of this map, no cycle, each chain ending in its own bucket's
// nulls marker) and the overflow free stack (mapops.Validator). A map that
// passes cannot send an operation outside its region, or make one wait for
// a writer that does not exist. The LRU maps' list links and sequences are
// not checked. Once the chains of a HASH or PERCPU_HASH pass, it rebuilds
// what is derived from them (Repair). The command layer calls it only while
// no other live process has the map open, so nothing changes under it.
func (m *Map) Validate() error {
	nb := m.g.nBuckets
	limit := uint64(nb) + m.g.pool // LRU maps: any slot's element can be a node
	fresh := atomic.LoadUint32(m.fresh)
	if uint64(fresh) > m.g.pool {
		return fmt.Errorf("hash: %d overflow elements handed out of %d", fresh, m.g.pool)
	}
	if m.lru == nil {
		// Chains may only hold elements the allocator will not hand out:
		// overflow elements below the bump pointer, and a bucket's own
		// home element while the bucket says it is in use.
		limit = min(limit, uint64(nb)+uint64(fresh))
	}
	seen := make([]bool, limit+1)
	for b := range nb {
		robust.Release(m.lockWord(b))
		ref := atomic.LoadUint32(m.mem.Uint32(m.headOff(b)))
		for steps := uint64(0); isElem(ref); steps++ {
			if uint64(ref) > limit || seen[ref] {
				return fmt.Errorf("hash: bucket %d links element %d twice or past the map's %d", b, ref, limit)
			}
			if m.lru == nil && ref <= nb && (ref != b+1 || atomic.LoadUint32(m.lockWord(b))&homeUsed == 0) {
				return fmt.Errorf("hash: bucket %d links home element %d it does not own", b, ref)
			}
			seen[ref] = true
			e := m.elem(ref)
			if sq := atomic.LoadUint32(m.seqOf(e)); m.lru == nil && (sq&1 != 0 || sq == 0) {
				// Only a writer in progress leaves a linked element's
				// sequence odd, and plain hash writers never do (they
				// publish finished elements): readers would wait forever.
				return fmt.Errorf("hash: bucket %d links element %d with sequence %#x", b, ref, sq)
			}
			ref = atomic.LoadUint32(m.nextOf(e))
		}
		if ref != 0 && ref != m.nulls(b) {
			return fmt.Errorf("hash: bucket %d's chain ends in %#x", b, ref)
		}
	}
	if m.lru != nil {
		return nil
	}
	ref := uint32(atomic.LoadUint64(m.free))
	for steps := uint64(0); ref != 0; steps++ {
		if ref <= nb || uint64(ref) > limit || steps > m.g.pool || seen[ref] {
			return fmt.Errorf("hash: free element %d is not a free overflow element, or the free stack loops", ref)
		}
		ref = atomic.LoadUint32(m.nextOf(m.elem(ref)))
	}
	// The chains are sound; the count, the free stack and the home flags
	// are derived from them and may still be off (damage, or a writer that
	// died): rebuild them, or the allocator could wait for elements no
	// one will free.
	m.Repair()
	return nil
}
