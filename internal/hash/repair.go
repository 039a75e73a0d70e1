package hash

import (
	"bytes"
	"sync/atomic"

	"github.com/bpfmap/bpfmap/internal/region"
)

// Repair makes a shared hash map consistent after a process died in the
// middle of an operation (mapops.Repairer). Every change a writer makes
// happens under its bucket's lock, and each step publishes with one word
// store, so with every bucket lock seized the chains are well-formed lists
// and what a dead writer can have left behind is:
//
//   - a key twice in its chain (an update published the new element and
//     died before unlinking the old one): the first, newer, one stays;
//   - elements reachable from no chain (allocated and not yet linked, or
//     unlinked and not yet freed): they become free;
//   - a home-element flag, the element count or the free stack that does
//     not match the chains, and odd (busy) element sequences.
//
// Repair rebuilds all of these from the chains: the reachable elements are
// the map's contents, exactly.
func (m *Map) Repair() {
	if m.lru != nil {
		m.repairLRU()
		return
	}
	vers := m.seizeBuckets()
	m.rebuild(nil)
	m.unlockBuckets(vers)
}

// seizeBuckets takes every bucket lock for a repair.
func (m *Map) seizeBuckets() []uint32 {
	vers := make([]uint32, m.g.nBuckets)
	for b := range m.g.nBuckets {
		vers[b] = m.locks.Seize(m.lockWord(b))
	}
	return vers
}

func (m *Map) unlockBuckets(vers []uint32) {
	for b := range m.g.nBuckets {
		m.unlock(b, vers[b])
	}
}

// rebuild walks every chain (all bucket locks held), drops duplicate keys
// and cut links, fixes the element sequences, the home-element flags and the
// count, and returns the reachable set. With keep == nil it also rebuilds
// the overflow free stack from the unreachable elements; LRU maps pass keep
// to learn what is reachable and rebuild their own lists.
func (m *Map) rebuild(keep func(ref uint32)) []bool {
	nb := m.g.nBuckets
	fresh := min(uint64(atomic.LoadUint32(m.fresh)), m.g.pool)
	total := uint64(nb) + m.g.pool
	reach := make([]bool, total+1)
	var count uint32
	for b := range nb {
		head := m.headOff(b)
		slot := head
		var chain []uint32
		for {
			ref := atomic.LoadUint32(m.mem.Uint32(slot))
			if !isElem(ref) {
				if ref != 0 && ref != m.nulls(b) || ref == 0 && slot != head {
					m.endChain(b, slot)
				}
				break
			}
			if uint64(ref) > total || reach[ref] || ref > nb && uint64(ref-nb) > fresh && keep == nil {
				m.endChain(b, slot) // a link no writer could have made
				break
			}
			e := m.elem(ref)
			if m.dupIn(chain, e) {
				next := atomic.LoadUint32(m.nextOf(e))
				if next == m.nulls(b) && slot == head {
					next = 0
				}
				region.StoreRelease32(m.mem.Uint32(slot), next)
				m.makeFree(e)
				continue
			}
			reach[ref] = true
			chain = append(chain, ref)
			count++
			if s := atomic.LoadUint32(m.seqOf(e)); s&1 != 0 || s == 0 {
				m.makeLive(e)
			}
			if keep != nil {
				keep(ref)
			}
			slot = e + 4
		}
	}
	for b := range nb {
		w := m.lockWord(b)
		lw := atomic.LoadUint32(w)
		if reach[b+1] {
			region.StoreRelease32(w, lw|homeUsed)
		} else {
			if lw&homeUsed != 0 {
				m.makeFree(m.elem(b + 1))
			}
			region.StoreRelease32(w, lw&^homeUsed)
		}
	}
	atomic.StoreUint32(m.count, count)
	if keep != nil {
		return reach
	}
	// The free stack: every overflow element handed out and not reachable.
	var top uint32
	for i := fresh; i > 0; i-- {
		ref := nb + uint32(i)
		if reach[ref] {
			continue
		}
		e := m.elem(ref)
		if s := atomic.LoadUint32(m.seqOf(e)); s&1 == 0 && s != 0 {
			m.makeFree(e)
		}
		region.StoreRelease32(m.nextOf(e), top)
		top = ref
	}
	h := atomic.LoadUint64(m.free)
	atomic.StoreUint64(m.free, uint64(top)|(h>>32+1)<<32)
	return reach
}

// endChain ends bucket b's chain at slot.
func (m *Map) endChain(b uint32, slot uint64) {
	end := m.nulls(b)
	if slot == m.headOff(b) {
		end = 0
	}
	region.StoreRelease32(m.mem.Uint32(slot), end)
}

// makeFree gives an element the odd sequence of a free one, so a reader
// still holding it retries.
func (m *Map) makeFree(e uint64) {
	if s := atomic.LoadUint32(m.seqOf(e)); s&1 == 0 {
		atomic.AddUint32(m.seqOf(e), 1)
	}
}

// dupIn reports whether element e's key is held by one of the chain's
// elements before it.
func (m *Map) dupIn(chain []uint32, e uint64) bool {
	hv, key := *m.hashOf(e), m.keyOf(e)
	for _, ref := range chain {
		o := m.elem(ref)
		if *m.hashOf(o) == hv && bytes.Equal(m.keyOf(o), key) {
			return true
		}
	}
	return false
}
