package hash

import (
	"bytes"
	"sync/atomic"

	"github.com/bpfmap/bpfmap/internal/region"
	"github.com/bpfmap/bpfmap/internal/robust"
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
// the map's contents, exactly. No live process holds an element outside the
// chains while its bucket lock is free (allocation and release happen under
// the bucket lock), so every unreachable element is free. LRU maps are
// repaired by repairLRU, which also rebuilds the LRU.
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
	atomic.StoreUint32(m.count, count)
	if keep != nil {
		// LRU maps' home elements are plain nodes: no home flags, no free
		// stack; the LRU decides which unreachable nodes are free.
		return reach
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

// repairLRU is Repair for the LRU hash maps. It seizes the LRU locks in the
// order operations take them (lruState.lockWords), then every bucket lock,
// repairs the chains (rebuild) and rebuilds the LRU lists from them
// (relist), then unlocks.
//
// With all these locks held, what a dead process can have left besides the
// chains' damage is: an LRU list torn in the middle of a link or unlink
// (the lists' counts, next_inactive_rotation and fresh counters off with
// it), a node in flight (popped and not linked, unlinked and not freed,
// stolen and on no list) whose own word names the dead process, a node
// evicted from its chain and not yet moved to a free list, an element in
// its chain whose sequence is odd (being linked, or being unlinked: the
// key stays), and a home slot claimed in place of a node not yet released
// (one node too many: the surplus free node stops being one).
//
// One state is beyond repair: LRU_PERCPU_HASH rewrites an existing key's
// value in place (as the kernel does), so a process killed in the middle of
// copying a value of more than 8 bytes leaves a value part old, part new;
// the repair makes it readable again as it is.
func (m *Map) repairLRU() {
	l := m.lru
	words := l.lockWords()
	vers := make([]uint32, len(words))
	for k, w := range words {
		vers[k] = m.locks.Seize(w)
	}
	bvers := m.seizeBuckets()
	m.undoInPlace()
	reach := m.rebuild(func(uint32) {})
	l.relist(reach)
	m.unlockBuckets(bvers)
	for k := len(words) - 1; k >= 0; k-- {
		m.locks.Unlock(words[k], vers[k])
	}
}

// lockWords lists the LRU's lock words in the order operations take them:
// the CPUs' local locks (an operation waits for at most one at a time), then
// the global lock; with BPF_F_NO_COMMON_LRU each CPU's list lock (one at a
// time).
func (l *lruState) lockWords() []*uint32 {
	var ws []*uint32
	for c := range l.ncpu {
		if l.percpu {
			ws = append(ws, l.lockWord(l.ll(c)+llLock))
		} else {
			ws = append(ws, l.lockWord(l.loc(c)+locLock))
		}
	}
	if !l.percpu {
		ws = append(ws, l.lockWord(l.ll(0)+llLock))
	}
	return ws
}

// relist rebuilds every LRU list, count and cursor from the repaired
// chains (reach, by element reference) with all locks held. Each node goes
// to exactly one place:
//
//   - a node in the hash table: its active or inactive list, or (common
//     LRU) the pending list of its CPU if it is pending; it is no longer in
//     flight;
//   - a node in flight for a live process (its own word): left where its
//     owner expects it, the list of its type (a stolen node: on none);
//   - any other node is free: its CPU's local free list if it is on one
//     (common LRU), else its free list, with a free element sequence;
//   - a slot that is neither a node nor in the table nor in flight is not
//     a node; each list's fresh count is its share of max_entries less the
//     nodes it has.
//
// Lists keep their order where their links still hold it: each list is
// walked from its sentinel and the nodes that belong to it keep their
// order; a node that belongs to a list but is not found on it (a dead
// process was moving it) goes to the list's front, as most recently used.
// After a crash the LRU order is therefore approximate (the kernel's own
// order is only approximate LRU); on a consistent map relist changes
// nothing.
func (l *lruState) relist(reach []bool) {
	n, slots := l.n, l.s
	tgt := make([]uint32, slots) // the sentinel of node i's list, or noNode: leave it
	deadTok := map[uint32]bool{}
	live := func(i uint32) bool {
		o := atomic.LoadUint32(l.own(i))
		if o&robust.Locked == 0 {
			return false
		}
		d, ok := deadTok[o]
		if !ok {
			d = l.m.locks.Dead(l.own(i))
			deadTok[o] = d
		}
		return !d
	}
	lists, per := uint32(1), n
	if l.percpu {
		lists, per = l.ncpu, n/l.ncpu
	}
	nodes := make([]uint32, lists) // nodes kept, per LRU list
	for i := range slots {
		reached, lv := reach[i+1], live(i)
		if !reached && !lv && !l.isNode(i) {
			tgt[i] = noNode
			if atomic.LoadUint32(l.meta(i)) != 0 {
				region.StoreRelease32(l.meta(i), 0)
			}
			continue
		}
		lc := uint32(0)
		if l.percpu {
			lc = min(l.cpuOf(i), l.ncpu-1)
		}
		if tgt[i] = l.place(i, lc, reached, lv); tgt[i] != noNode || l.isNode(i) {
			nodes[lc]++
		}
	}
	// A dead process that took its key's home slot in place of the node it
	// was given may have left both: free nodes beyond a list's share stop
	// being nodes.
	for i := range slots {
		lc := uint32(0)
		if l.percpu {
			lc = min(l.cpuOf(i), l.ncpu-1)
		}
		if nodes[lc] > per && (tgt[i] == anyLocalFree || tgt[i] == l.head(lc, tFree)) {
			region.StoreRelease32(l.meta(i), 0)
			tgt[i] = noNode
			nodes[lc]--
		}
	}
	for c := range lists {
		f := uint32(0)
		if nodes[c] < per {
			f = per - nodes[c]
		}
		*l.mem.Uint32(l.ll(c) + llFresh) = f
	}

	// Walk the old lists for their order.
	ns := 3 + 2*l.ncpu
	if l.percpu {
		ns = 3 * l.ncpu
	}
	order := make([][]uint32, ns)
	placed := make([]bool, slots)
	walked := make([]bool, slots)
	for k := range ns {
		s := slots + k
		steps := uint32(0)
		for j := *l.next(s); j < slots && !walked[j] && steps < slots; j = *l.next(j) {
			walked[j] = true
			steps++
			if tgt[j] == anyLocalFree && !l.percpu && k >= 3 && (k-3)%2 == 1 {
				tgt[j] = s // a local free list
			}
			if tgt[j] == s {
				order[k] = append(order[k], j)
				placed[j] = true
			}
		}
	}
	front := make([][]uint32, ns)
	for i := range slots {
		if tgt[i] == anyLocalFree {
			l.setType(i, tFree)
			tgt[i] = l.head(0, tFree)
		}
		if s := tgt[i]; s != noNode && !placed[i] {
			front[s-slots] = append(front[s-slots], i)
		}
	}
	for k := range ns {
		s := slots + k
		p := s
		for _, part := range [2][]uint32{front[k], order[k]} {
			for _, j := range part {
				*l.next(p), *l.prev(j) = j, p
				p = j
			}
		}
		*l.next(p), *l.prev(s) = s, p
	}

	// Counts and cursors.
	for c := range lists {
		hdr := l.ll(c)
		lc := uint32(0)
		if l.percpu {
			lc = c
		}
		act, ina := l.head(lc, tActive), l.head(lc, tInactive)
		*l.mem.Uint32(hdr + llActive) = uint32(len(front[act-slots]) + len(order[act-slots]))
		*l.mem.Uint32(hdr + llInact) = uint32(len(front[ina-slots]) + len(order[ina-slots]))
		if nir := l.mem.Uint32(hdr + llNIR); *nir != ina && (*nir >= slots || tgt[*nir] != ina) {
			*nir = ina
		}
	}
	if !l.percpu {
		for c := range l.ncpu {
			if sw := l.mem.Uint32(l.loc(c) + locSteal); *sw >= l.ncpu {
				*sw = c
			}
		}
	}
}

// place decides node i's list for relist (lc: its LRU list, 0 for the
// common LRU), fixing its type, own word and element sequence to match.
func (l *lruState) place(i, lc uint32, reached, live bool) uint32 {
	if !l.isNode(i) {
		// In the table, or held, but not marked a node (only damage does
		// that): a node now.
		l.setMeta(i, tInactive, lc)
	}
	t, cpu := l.typ(i), l.cpuOf(i)
	if reached || live {
		if reached {
			atomic.StoreUint32(l.own(i), 0)
		}
		switch {
		case !l.percpu && t == tLocalPending && cpu < l.ncpu:
			return l.pendingHead(cpu)
		case !l.percpu && t == tDetached && !reached:
			return noNode // its owner puts it on a pending list
		case t == tActive || t == tInactive:
			if l.percpu {
				l.setMeta(i, t, lc)
			}
			return l.head(lc, t)
		case reached:
			l.setMeta(i, tInactive, min(cpu, l.ncpu-1))
			return l.head(lc, tInactive)
		}
		// A live process's node in a free state: not in flight after all.
	}
	atomic.StoreUint32(l.own(i), 0)
	l.m.makeFree(l.m.elem(i + 1))
	if !l.percpu && t == tLocalFree {
		// A local free node's CPU is stale (the kernel's too): the walk
		// finds its list.
		return anyLocalFree
	}
	if t != tFree || l.percpu && cpu != lc {
		l.setMeta(i, tFree, lc)
	}
	return l.head(lc, tFree)
}

// anyLocalFree is place's answer for a free node on some local free list.
const anyLocalFree = noNode - 1
