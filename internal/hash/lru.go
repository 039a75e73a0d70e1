package hash

import (
	"encoding/binary"
	"runtime"
	"sync/atomic"

	"github.com/bpfmap/bpfmap/internal/cpuid"
	"github.com/bpfmap/bpfmap/internal/jhash"
	"github.com/bpfmap/bpfmap/internal/mapops"
	"github.com/bpfmap/bpfmap/internal/region"
	"github.com/bpfmap/bpfmap/internal/robust"
	"github.com/bpfmap/bpfmap/internal/uapi"
)

// The LRU of LRU_HASH and LRU_PERCPU_HASH maps: the kernel's
// kernel/bpf/bpf_lru_list.c algorithm, re-implemented over the region so
// that the set of surviving keys after any sequence of operations equals
// the kernel's when both run on the same CPUs.
//
// # Nodes and lists
//
// The LRU has max_entries nodes, but which slots hold them changes: any of
// the table's slots (nBuckets ≥ max_entries of them) can be a node, and
// node i is element i+1, the home element of slot i (see the package doc).
// Each slot has an LRU record in a parallel array in the LRU area: {prev
// u32, next u32, meta u32 (nodeBit | cpu<<8 | list type), ref u32, own
// u32}; a slot whose meta is 0 is not a node. Lists are circular and doubly
// linked through node indices, each with a sentinel after the slots.
//
// Free nodes are indistinguishable: the kernel's lists, and so its
// surviving keys, depend on how many free nodes each free list holds, not
// on which. Two things follow. A free list starts empty with a "fresh"
// count of the nodes it has never handed out, and a fresh node is any slot
// that is not a node (found from a cursor over the slots), so creating a map
// touches no node. And an update that takes a node for a key whose home
// slot (its bucket's own slot) is not a node uses that slot instead,
// releasing the node it was given, or else, in a map whose 32-byte slots
// pair up in cache lines, the other slot of the line (the mate) if that
// is not a node: the lists are the same, but the key's element now shares
// its bucket's cache line, so a lookup reads one line instead of two.
//
// Common LRU (the default): a global active, inactive and free list, and
// per CPU a pending and a local free list.
//
// BPF_F_NO_COMMON_LRU: per CPU an active, inactive and free list, the CPU's
// share of the nodes; a node's CPU is in its meta word.
//
// # Locks
//
// Each LRU list (the global one, or each CPU's with NO_COMMON_LRU) and each
// CPU's local lists have a lock word in the region, an internal/robust lock
// word like the buckets'. The order is the kernel's: a CPU's local lock,
// then the global lock, then (to evict) one bucket lock at a time. No LRU
// lock is ever taken while a bucket lock is held: an update obtains its node
// first and takes its key's bucket lock afterwards; a delete returns the
// node after dropping the bucket lock. An operation waits for at most one
// local lock at a time: updateHome may take a second CPU's, but only if it
// is free, never waiting for it.
//
// A lock taken while other locks of the map are held (the global lock under
// a local one, a bucket lock to evict) is taken with nest, which never runs
// the map's repair: the repair seizes every lock, including those the waiter
// holds. If nest finds its word held by a dead process it gives up; the
// pop backs out (every step it took is complete, so the lists stay
// consistent), releases its locks, has the map repaired (Locker.Stuck,
// holding no lock) and starts again. A live holder of a nested word always
// finishes: bucket lock holders wait for nothing, and a global lock holder
// only waits on bucket locks. A repair takes the LRU locks before the
// bucket locks, so it never holds a bucket lock that a nested waiter (who
// holds an LRU lock) waits for.
//
// # Nodes in flight
//
// Between its LRU lock and its bucket lock an operation holds a node that
// is on an LRU list (or, while a common LRU steals it from another CPU, on
// none) but not in the hash table: popped for an update and not yet linked,
// or unlinked by a delete and not yet freed. Such a node's own word holds
// the holder's token as a locked robust lock word (0 otherwise), so a repair
// tells a live process's node in flight, which it leaves where it is, from
// a dead process's, which it frees.
//
// The referenced bit is a separate word, set without a lock by program-side
// lookups (LookupTouch), as a BPF program's lookup sets it in the kernel.

// Node list types (the kernel's enum bpf_lru_list_type).
const (
	tActive = iota
	tInactive
	tFree
	tLocalFree
	tLocalPending
	// tDetached: a node a common LRU stole from another CPU's local
	// lists, on no list until it joins its new CPU's pending list.
	tDetached
)

const (
	noNode = 1<<32 - 1

	// nodeBit marks a slot's meta word as a node's.
	nodeBit = 1 << 31

	nodeWords = 5 // prev, next, meta, ref, own
	nodeSize  = 4 * nodeWords

	localFreeTarget = 128 // LOCAL_FREE_TARGET, the common LRU's cap
	localNrScans    = 128
	percpuFreeTgt   = 4 // PERCPU_FREE_TARGET
	percpuNrScans   = 4

	// LRU area header words.
	lruInit   = 0 // u32: non-zero once the sentinels are initialised
	lruCursor = 4 // u32: where the search for a fresh node's slot starts
	lruHdr    = 64

	// An LRU list header (one cache line): lock, next_inactive_rotation,
	// counts[active], counts[inactive], fresh (nodes never handed out).
	llLock   = 0
	llNIR    = 4
	llActive = 8
	llInact  = 12
	llFresh  = 16
	llSize   = 64
	// A common LRU's per-CPU local header: lock, next_steal.
	locLock  = 0
	locSteal = 4
	locSize  = 64
)

// lruAreaSize is the size of the LRU area of a map with n slots.
func lruAreaSize(n uint32, a *mapops.Attr) uint64 {
	ncpu := uint64(a.PossibleCPUs)
	percpu := a.Flags&uapi.FNoCommonLRU != 0
	hdrs := llSize + ncpu*locSize
	if percpu {
		hdrs = ncpu * llSize
	}
	return lruHdr + hdrs + (uint64(n)+sentinels(percpu, ncpu))*nodeSize
}

// sentinels is the number of list sentinel nodes, whose records follow the
// slots': three lists per LRU list (one, or one per CPU with
// BPF_F_NO_COMMON_LRU) and a common LRU's two local lists per CPU.
func sentinels(percpu bool, ncpu uint64) uint64 {
	if percpu {
		return 3 * ncpu
	}
	return 3 + 2*ncpu
}

// lruState is one map's LRU.
type lruState struct {
	m       *Map
	mem     region.Mem
	n       uint32 // nodes (max_entries)
	s       uint32 // slots that can be nodes (the buckets)
	ncpu    uint32
	percpu  bool // BPF_F_NO_COMMON_LRU
	target  uint32
	nrScans uint32
	hdrOff  uint64   // first list header
	nodes   []uint32 // the node records, nodeWords words each
	cpuFn   func() int
	mine    uint32 // own word of this process's nodes in flight
}

func newLRU(m *Map, a *mapops.Attr) *lruState {
	g := &m.g
	l := &lruState{
		m: m, mem: m.mem, n: g.maxEnt, s: g.nBuckets, ncpu: uint32(a.PossibleCPUs),
		percpu: a.Flags&uapi.FNoCommonLRU != 0, cpuFn: a.CPU,
		hdrOff: g.lruOff + lruHdr,
		// A locked robust lock word holding this process's token.
		mine: robust.Locked | m.locks.Token()<<2,
	}
	var nodeOff uint64
	if l.percpu {
		l.nrScans = percpuNrScans
		nodeOff = l.hdrOff + uint64(l.ncpu)*llSize
	} else {
		l.nrScans = localNrScans
		l.target = min(max(l.n/l.ncpu/2, 1), localFreeTarget)
		nodeOff = l.hdrOff + llSize + uint64(l.ncpu)*locSize
	}
	l.nodes = l.mem.Words(nodeOff, (uint64(l.s)+sentinels(l.percpu, uint64(l.ncpu)))*nodeWords)
	if w := l.mem.Uint32(g.lruOff + lruInit); atomic.LoadUint32(w) == 0 {
		l.init()
		atomic.StoreUint32(w, 1)
	}
	return l
}

// init sets up the sentinels and fresh counts of a new map.
func (l *lruState) init() {
	self := func(s uint32) {
		*l.prev(s), *l.next(s) = s, s
	}
	if l.percpu {
		per := l.n / l.ncpu
		for c := uint32(0); c < l.ncpu; c++ {
			h := l.ll(c)
			for k := uint32(0); k < 3; k++ {
				self(l.head(c, k))
			}
			*l.mem.Uint32(h + llNIR) = l.head(c, tInactive)
			*l.mem.Uint32(h + llFresh) = per
		}
		return
	}
	h := l.ll(0)
	for k := uint32(0); k < 3; k++ {
		self(l.head(0, k))
	}
	*l.mem.Uint32(h + llNIR) = l.head(0, tInactive)
	*l.mem.Uint32(h + llFresh) = l.n
	for c := uint32(0); c < l.ncpu; c++ {
		self(l.pendingHead(c))
		self(l.localFreeHead(c))
		*l.mem.Uint32(l.loc(c) + locSteal) = c
	}
}

// ---- node and list accessors ----

func (l *lruState) prev(i uint32) *uint32  { return &l.nodes[uint64(i)*nodeWords] }
func (l *lruState) next(i uint32) *uint32  { return &l.nodes[uint64(i)*nodeWords+1] }
func (l *lruState) meta(i uint32) *uint32  { return &l.nodes[uint64(i)*nodeWords+2] }
func (l *lruState) refw(i uint32) *uint32  { return &l.nodes[uint64(i)*nodeWords+3] }
func (l *lruState) own(i uint32) *uint32   { return &l.nodes[uint64(i)*nodeWords+4] }
func (l *lruState) typ(i uint32) uint32    { return atomic.LoadUint32(l.meta(i)) & 0xff }
func (l *lruState) cpuOf(i uint32) uint32  { return atomic.LoadUint32(l.meta(i)) &^ nodeBit >> 8 }
func (l *lruState) isNode(i uint32) bool   { return atomic.LoadUint32(l.meta(i))&nodeBit != 0 }
func (l *lruState) isRef(i uint32) bool    { return atomic.LoadUint32(l.refw(i)) != 0 }
func (l *lruState) clearRef(i uint32)      { region.StoreRelease32(l.refw(i), 0) }
func (l *lruState) setType(i, t uint32)    { l.setMeta(i, t, l.cpuOf(i)) }
func (l *lruState) setMeta(i, t, c uint32) { region.StoreRelease32(l.meta(i), nodeBit|c<<8|t) }

// setRef is bpf_lru_node_set_ref.
func (l *lruState) setRef(i uint32) {
	if w := l.refw(i); atomic.LoadUint32(w) == 0 {
		region.StoreRelease32(w, 1)
	}
}

// ll is the offset of LRU list c's header (c = 0 for the common LRU).
func (l *lruState) ll(c uint32) uint64 { return l.hdrOff + uint64(c)*llSize }

// loc is the offset of CPU c's local header (common LRU).
func (l *lruState) loc(c uint32) uint64 { return l.hdrOff + llSize + uint64(c)*locSize }

// head is the sentinel of list k (tActive, tInactive, tFree) of LRU list c.
func (l *lruState) head(c, k uint32) uint32 { return l.s + 3*c + k }

// pendingHead and localFreeHead are CPU c's local lists (common LRU).
func (l *lruState) pendingHead(c uint32) uint32   { return l.s + 3 + 2*c }
func (l *lruState) localFreeHead(c uint32) uint32 { return l.s + 4 + 2*c }

func (l *lruState) listAdd(i, h uint32) {
	first := *l.next(h)
	*l.next(i), *l.prev(i) = first, h
	*l.prev(first) = i
	*l.next(h) = i
}

func (l *lruState) listDel(i uint32) {
	p, n := *l.prev(i), *l.next(i)
	*l.next(p) = n
	l.crashPoint()
	*l.prev(n) = p
}

func (l *lruState) listMove(i, h uint32) {
	l.listDel(i)
	l.listAdd(i, h)
}

func (l *lruState) empty(h uint32) bool { return *l.next(h) == h }

// spliceFront puts the chain first..last (linked through next, on no
// list) at the front of list h.
func (l *lruState) spliceFront(h, first, last uint32) {
	old := *l.next(h)
	*l.next(last), *l.prev(old) = old, last
	*l.prev(first), *l.next(h) = h, first
}

// stall records the lock word a nested wait gave up on: one held by a dead
// process, which only a repair frees, while the waiter holds locks of the
// map that the repair would have to seize.
type stall struct{ w *uint32 }

// nest takes lock word w for a caller that holds other locks of the map. It
// waits like Locker.Lock but never runs the repair: if w's holder is dead,
// it records w in st and fails, and the caller backs out.
func (l *lruState) nest(w *uint32, st *stall) (uint32, bool) {
	locks := l.m.locks
	for spins := 1; ; spins++ {
		if ver, ok := locks.TryLock(w); ok {
			return ver, true
		}
		if spins > 16 {
			runtime.Gosched()
		}
		if spins%robust.Patience == 0 && locks.Dead(w) {
			st.w = w
			return 0, false
		}
	}
}

// unstick has the map repaired if the word a nested wait gave up on is
// still held by a dead process. The caller holds no lock of the map.
func (l *lruState) unstick(st *stall) {
	if lw := atomic.LoadUint32(st.w); lw&robust.Locked != 0 {
		l.m.locks.Stuck(st.w, lw)
	}
}

// lockWord is the lock of LRU list header (or local header) off.
func (l *lruState) lockWord(off uint64) *uint32 { return l.mem.Uint32(off) }

// ---- the kernel's list operations over one LRU list (header off h, lists of c) ----

type lruList struct {
	hdr uint64
	c   uint32 // index for head()
}

func (l *lruState) nir(L lruList) *uint32 { return l.mem.Uint32(L.hdr + llNIR) }

func (l *lruState) countInc(L lruList, t uint32) {
	if t < tFree {
		*l.mem.Uint32(L.hdr + llActive + 4*uint64(t))++
	}
}

func (l *lruState) countDec(L lruList, t uint32) {
	if t < tFree {
		*l.mem.Uint32(L.hdr + llActive + 4*uint64(t))--
	}
}

func (l *lruState) count(L lruList, t uint32) uint32 {
	return *l.mem.Uint32(L.hdr + llActive + 4*uint64(t))
}

// freeFirst is the first node of L's free list, materialising a fresh node
// if the list itself is empty; noNode if there is none.
func (l *lruState) freeFirst(L lruList) uint32 {
	h := l.head(L.c, tFree)
	if !l.empty(h) {
		return *l.next(h)
	}
	i := l.fresh(L, tFree)
	if i != noNode {
		l.listAdd(i, h)
	}
	return i
}

// fresh hands out one of L's fresh nodes as a node of type t (not on any
// list yet), or returns noNode if L has none left: it claims the first
// slot from the cursor on that is not a node. Fresh nodes and non-node
// slots balance (at most max_entries slots are nodes, and each list's
// fresh count is its share of the rest), so the search ends; it gives up
// after two rounds only if the counts are corrupt.
func (l *lruState) fresh(L lruList, t uint32) uint32 {
	fw := l.mem.Uint32(L.hdr + llFresh)
	if *fw == 0 {
		return noNode
	}
	c := uint32(0)
	if l.percpu {
		c = L.c
	}
	cur := l.mem.Uint32(l.m.g.lruOff + lruCursor)
	for range 2 * uint64(l.s) {
		j := (atomic.AddUint32(cur, 1) - 1) & (l.s - 1)
		if l.claim(j, t, c) {
			*fw--
			return j
		}
	}
	return noNode
}

// claim makes slot j, if it is not a node, a node of type t on CPU c,
// with no references and owned by no one.
func (l *lruState) claim(j, t, c uint32) bool {
	if !atomic.CompareAndSwapUint32(l.meta(j), 0, nodeBit|c<<8|t) {
		return false
	}
	l.clearRef(j)
	region.StoreRelease32(l.own(j), 0)
	return true
}

// home replaces node i, just taken off a free list (on no list now) for a
// key of bucket b, with b's own slot, or else its mate (Map.mate), if that
// slot is not a node: i stops being a node and the slot becomes one of
// type t on CPU c. The caller holds the lock of the list i came from and
// puts the result where i was going; b = noNode asks for no replacement.
func (l *lruState) home(i, b, t, c uint32) uint32 {
	if h := l.homeSlot(i, b, t, c); h != noNode {
		l.release(i)
		return h
	}
	return i
}

// homeSlot claims, for node i's key of bucket b, b's own slot or else its
// mate as a node of type t on CPU c, if one is not a node and is not i;
// noNode if neither (or b is noNode).
func (l *lruState) homeSlot(i, b, t, c uint32) uint32 {
	if b == noNode || i == b || i == l.m.mate(b) {
		return noNode
	}
	for k, h := range [2]uint32{b, l.m.mate(b)} {
		if k == 1 && h == b {
			break // no mate
		}
		if l.claim(h, t, c) {
			return h
		}
	}
	return noNode
}

// release makes node i, which is on no list, no longer a node. Any
// process's fresh may claim its slot from then on, even under another
// lock, so i must already be off every list.
func (l *lruState) release(i uint32) {
	if releaseHook != nil {
		releaseHook(l, i)
	}
	region.StoreRelease32(l.own(i), 0)
	region.StoreRelease32(l.meta(i), 0)
}

// moveToFree is __bpf_lru_node_move_to_free.
func (l *lruState) moveToFree(L lruList, i, freeHead, t uint32) {
	if nir := l.nir(L); *nir == i {
		*nir = *l.prev(i)
	}
	l.countDec(L, l.typ(i))
	l.crashPoint()
	l.setType(i, t)
	l.listMove(i, freeHead)
	region.StoreRelease32(l.own(i), 0)
}

// move is __bpf_lru_node_move (between active, inactive and free).
func (l *lruState) move(L lruList, i, t uint32) {
	if old := l.typ(i); old != t {
		l.countDec(L, old)
		l.countInc(L, t)
		l.setType(i, t)
	}
	l.clearRef(i)
	if nir := l.nir(L); *nir == i {
		*nir = *l.prev(i)
	}
	l.listMove(i, l.head(L.c, t))
}

// rotateActive is __bpf_lru_list_rotate_active: scanning from the active
// list's tail (at most nrScans nodes, stopping after its first node), a
// referenced node moves to the active list's head and an unreferenced one
// to the inactive list's head, each losing its referenced bit.
//
// Moving the scanned nodes one by one, tail first, leaves each list's moved
// nodes at its head in their original order; so the scanned tail is cut off
// once and each list receives its share as one chain, which writes every
// node's links once instead of relinking its neighbours for every move.
func (l *lruState) rotateActive(L lruList) {
	h := l.head(L.c, tActive)
	first := *l.next(h)
	nir := l.nir(L)
	var chain [2]struct{ first, last, n uint32 } // tActive, tInactive
	chain[0].first, chain[1].first = noNode, noNode
	i := *l.prev(h)
	for n := uint32(1); i != h; n++ {
		p := *l.prev(i)
		t := uint32(tInactive)
		if l.isRef(i) {
			t = tActive
		}
		if *nir == i {
			*nir = p
		}
		if t != tActive {
			l.setType(i, t)
		}
		l.clearRef(i)
		// Prepend: the walk goes tail to head, the chain keeps list order.
		c := &chain[t]
		if c.first == noNode {
			c.last = i
		} else {
			*l.prev(c.first) = i
		}
		*l.next(i) = c.first
		c.first = i
		c.n++
		i = p
		if n == l.nrScans || c.first == first {
			break
		}
	}
	// i is now the last node left unscanned (or the head).
	*l.next(i), *l.prev(h) = h, i
	l.crashPoint()
	for t := uint32(tActive); t <= tInactive; t++ {
		if c := chain[t]; c.n != 0 {
			l.spliceFront(l.head(L.c, t), c.first, c.last)
		}
	}
	*l.mem.Uint32(L.hdr + llInact) += chain[tInactive].n
	*l.mem.Uint32(L.hdr + llActive) -= chain[tInactive].n
}

// rotateInactive is __bpf_lru_list_rotate_inactive.
func (l *lruState) rotateInactive(L lruList) {
	h := l.head(L.c, tInactive)
	if l.empty(h) {
		return
	}
	nir := l.nir(L)
	last := *l.next(*nir)
	if last == h {
		last = *l.next(last)
	}
	cur, next := *nir, h
	for n := uint32(0); n < l.nrScans; {
		if cur == h {
			cur = *l.prev(cur)
			continue
		}
		next = *l.prev(cur)
		if l.isRef(cur) {
			l.move(L, cur, tActive)
		}
		if cur == last {
			break
		}
		cur = next
		n++
	}
	*nir = next
}

// rotate is __bpf_lru_list_rotate.
func (l *lruState) rotate(L lruList) {
	if l.count(L, tInactive) < l.count(L, tActive) {
		l.rotateActive(L)
	}
	l.rotateInactive(L)
}

// shrinkInactive is __bpf_lru_list_shrink_inactive.
func (l *lruState) shrinkInactive(L lruList, tgt, freeHead, t uint32, st *stall) uint32 {
	h := l.head(L.c, tInactive)
	shrunk, n := uint32(0), uint32(0)
	for i := *l.prev(h); i != h; {
		p := *l.prev(i)
		if l.isRef(i) {
			l.move(L, i, tActive)
		} else if l.evict(i, st) {
			l.moveToFree(L, i, freeHead, t)
			if shrunk++; shrunk == tgt {
				break
			}
		} else if st.w != nil {
			break
		}
		if n++; n == l.nrScans {
			break
		}
		i = p
	}
	return shrunk
}

// shrink is __bpf_lru_list_shrink: evict unreferenced inactive nodes, else
// force-evict one node from the inactive (or active) list's tail. It stops
// early, with st set, at a bucket lock held by a dead process.
func (l *lruState) shrink(L lruList, tgt, freeHead, t uint32, st *stall) uint32 {
	if n := l.shrinkInactive(L, tgt, freeHead, t, st); n != 0 || st.w != nil {
		return n
	}
	h := l.head(L.c, tInactive)
	if l.empty(h) {
		h = l.head(L.c, tActive)
	}
	for i := *l.prev(h); i != h; {
		p := *l.prev(i)
		if l.evict(i, st) {
			l.moveToFree(L, i, freeHead, t)
			return 1
		}
		if st.w != nil {
			return 0
		}
		i = p
	}
	return 0
}

// evict is htab_lru_map_delete_node: unlink node i's element from its
// bucket if it is there. It takes that one bucket lock, nested under the
// caller's LRU locks; if the lock's holder is dead it returns false with st
// set.
func (l *lruState) evict(i uint32, st *stall) bool {
	m := l.m
	ref := i + 1
	e := m.elem(ref)
	b := atomic.LoadUint32(m.hashOf(e)) & m.mask
	w := m.lockWord(b)
	ver, ok := l.nest(w, st)
	if !ok {
		return false
	}
	slot := m.headOff(b)
	for r := *m.mem.Uint32(slot); isElem(r); r = *m.mem.Uint32(slot) {
		if r == ref {
			m.unlink(b, ref, slot)
			m.locks.Unlock(w, ver)
			return true
		}
		slot = m.elem(r) + 4
	}
	m.locks.Unlock(w, ver)
	return false
}

// ---- common LRU ----

func (l *lruState) global() lruList { return lruList{hdr: l.ll(0)} }

// flush is __local_list_flush: CPU c's pending nodes, oldest first, to the
// head of the global active (referenced) or inactive list. That leaves each
// list's share at its head in pending order, newest first, so the pending
// list is walked once from its newest node and each share spliced in as one
// chain.
func (l *lruState) flush(L lruList, c uint32) {
	h := l.pendingHead(c)
	var chain [2]struct{ first, last, n uint32 } // tActive, tInactive
	chain[0].first, chain[1].first = noNode, noNode
	for i := *l.next(h); i != h; {
		next := *l.next(i)
		t := uint32(tInactive)
		if l.isRef(i) {
			t = tActive
		}
		l.setType(i, t)
		l.clearRef(i)
		ch := &chain[t]
		if ch.first == noNode {
			ch.first = i
		} else {
			*l.next(ch.last), *l.prev(i) = i, ch.last
		}
		ch.last = i
		ch.n++
		i = next
	}
	*l.next(h), *l.prev(h) = h, h
	l.crashPoint()
	for t := uint32(tActive); t <= tInactive; t++ {
		if ch := chain[t]; ch.n != 0 {
			l.spliceFront(l.head(L.c, t), ch.first, ch.last)
			*l.mem.Uint32(L.hdr + llActive + 4*uint64(t)) += ch.n
		}
	}
}

// popFreeToLocal is bpf_lru_list_pop_free_to_local; CPU c's local lock is
// held. It backs out, with st set, at a global or bucket lock held by a
// dead process.
func (l *lruState) popFreeToLocal(c uint32, st *stall) {
	L := l.global()
	w := l.lockWord(L.hdr + llLock)
	ver, ok := l.nest(w, st)
	if !ok {
		return
	}
	l.flush(L, c)
	l.rotate(L)
	lf := l.localFreeHead(c)
	nfree := l.freeToLocal(L, lf)
	if nfree < l.target {
		l.shrink(L, l.target-nfree, lf, tLocalFree, st)
	}
	l.m.locks.Unlock(w, ver)
}

// freeToLocal moves up to target nodes from the head of L's free list
// (materialising fresh nodes after it) to the head of the local free list
// lf, and returns how many it moved. Moving them one by one from head to
// head reverses their order; the nodes are cut off the free list once and
// spliced onto lf as one chain.
func (l *lruState) freeToLocal(L lruList, lf uint32) uint32 {
	fh := l.head(L.c, tFree)
	chainFirst, chainLast := uint32(noNode), uint32(noNode)
	n := uint32(0)
	i := *l.next(fh)
	for ; n < l.target && i != fh; n++ {
		next := *l.next(i)
		l.setType(i, tLocalFree)
		region.StoreRelease32(l.own(i), 0)
		if chainFirst == noNode {
			chainLast = i
		} else {
			*l.prev(chainFirst) = i
		}
		*l.next(i) = chainFirst
		chainFirst = i
		i = next
	}
	// i is the first node left on the free list (or its head).
	*l.next(fh), *l.prev(i) = i, fh
	l.crashPoint()
	for ; n < l.target; n++ {
		j := l.fresh(L, tLocalFree)
		if j == noNode {
			break
		}
		if chainFirst == noNode {
			chainLast = j
		} else {
			*l.prev(chainFirst) = j
		}
		*l.next(j) = chainFirst
		chainFirst = j
	}
	if n != 0 {
		l.spliceFront(lf, chainFirst, chainLast)
	}
	return n
}

func (l *lruState) localPopFree(c uint32) uint32 {
	h := l.localFreeHead(c)
	if l.empty(h) {
		return noNode
	}
	i := *l.next(h)
	l.listDel(i)
	return i
}

// localPopPending is __local_list_pop_pending: the oldest unreferenced
// pending node whose element can be evicted, else the oldest one.
func (l *lruState) localPopPending(c uint32, st *stall) uint32 {
	h := l.pendingHead(c)
	for _, force := range [2]bool{false, true} {
		for i := *l.prev(h); i != h; i = *l.prev(i) {
			if (force || !l.isRef(i)) && l.evict(i, st) {
				l.listDel(i)
				return i
			}
			if st.w != nil {
				return noNode
			}
		}
	}
	return noNode
}

// addPending puts node i, now in flight for this process, on CPU c's
// pending list.
func (l *lruState) addPending(c, i uint32) {
	l.setMeta(i, tLocalPending, c)
	l.clearRef(i)
	l.listAdd(i, l.pendingHead(c))
	region.StoreRelease32(l.own(i), l.mine)
}

// commonPop is bpf_common_lru_pop_free on CPU c. An attempt that meets a
// lock held by a dead process while holding LRU locks backs out; the map
// is repaired and the pop starts again.
func (l *lruState) commonPop(c, h uint32) uint32 {
	for {
		var st stall
		i := l.commonPopOnce(c, h, &st)
		if st.w != nil {
			l.unstick(&st)
			if i == noNode {
				continue
			}
		}
		return i
	}
}

// localPop is the part of bpf_common_lru_pop_free done under CPU c's
// local lock (held): a node from the local free list, refilled from the
// global lists if empty, put on the pending list. noNode means the CPU
// must steal.
func (l *lruState) localPop(c, h uint32, st *stall) uint32 {
	i := l.localPopFree(c)
	if i == noNode {
		l.popFreeToLocal(c, st)
		i = l.localPopFree(c)
	}
	if i != noNode {
		i = l.home(i, h, tLocalPending, c)
		l.addPending(c, i)
	}
	return i
}

func (l *lruState) commonPopOnce(c, h uint32, st *stall) uint32 {
	locks := l.m.locks
	lw := l.lockWord(l.loc(c) + locLock)
	ver := locks.Lock(lw)
	i := l.localPop(c, h, st)
	locks.Unlock(lw, ver)
	if i != noNode || st.w != nil {
		return i
	}
	// Steal from the CPUs' local lists, round robin from next_steal.
	sw := l.mem.Uint32(l.loc(c) + locSteal)
	first := atomic.LoadUint32(sw)
	steal := first
	for {
		w := l.lockWord(l.loc(steal) + locLock)
		sv := locks.Lock(w)
		i = l.localPopFree(steal)
		if i == noNode {
			i = l.localPopPending(steal, st)
		}
		if i != noNode {
			l.setType(i, tDetached)
			region.StoreRelease32(l.own(i), l.mine)
		}
		locks.Unlock(w, sv)
		steal = (steal + 1) % l.ncpu
		if i != noNode || steal == first || st.w != nil {
			break
		}
	}
	atomic.StoreUint32(sw, steal)
	if i != noNode {
		l.crashPoint()
		ver = locks.Lock(lw)
		i = l.home(i, h, tDetached, c)
		l.addPending(c, i)
		locks.Unlock(lw, ver)
	}
	return i
}

// commonPushFree is bpf_common_lru_push_free.
func (l *lruState) commonPushFree(i uint32) {
	locks := l.m.locks
	if l.typ(i) == tLocalPending {
		c := l.cpuOf(i)
		w := l.lockWord(l.loc(c) + locLock)
		ver := locks.Lock(w)
		if l.typ(i) == tLocalPending {
			l.setType(i, tLocalFree)
			l.clearRef(i)
			l.listMove(i, l.localFreeHead(c))
			region.StoreRelease32(l.own(i), 0)
			locks.Unlock(w, ver)
			return
		}
		locks.Unlock(w, ver)
	}
	L := l.global()
	w := l.lockWord(L.hdr + llLock)
	ver := locks.Lock(w)
	l.move(L, i, tFree)
	region.StoreRelease32(l.own(i), 0)
	locks.Unlock(w, ver)
}

// ---- per-CPU LRU (BPF_F_NO_COMMON_LRU) ----

func (l *lruState) pcpu(c uint32) lruList { return lruList{hdr: l.ll(c), c: c} }

// percpuPop is bpf_percpu_lru_pop_free on CPU c; like commonPop, an
// attempt that meets a bucket lock held by a dead process backs out.
func (l *lruState) percpuPop(c, h uint32) uint32 {
	for {
		var st stall
		i := l.percpuPopOnce(c, h, &st)
		if st.w != nil {
			l.unstick(&st)
			if i == noNode {
				continue
			}
		}
		return i
	}
}

func (l *lruState) percpuPopOnce(c, h uint32, st *stall) uint32 {
	w := l.lockWord(l.ll(c) + llLock)
	ver := l.m.locks.Lock(w)
	i := l.percpuLockedPop(c, h, st)
	l.m.locks.Unlock(w, ver)
	return i
}

// percpuLockedPop is bpf_percpu_lru_pop_free's work under CPU c's list
// lock (held).
func (l *lruState) percpuLockedPop(c, h uint32, st *stall) uint32 {
	L := l.pcpu(c)
	l.rotate(L)
	fh := l.head(c, tFree)
	i := l.freeFirst(L)
	if i == noNode {
		l.shrink(L, percpuFreeTgt, fh, tFree, st)
		i = l.freeFirst(L)
	}
	if i != noNode {
		if j := l.homeSlot(i, h, tFree, c); j != noNode {
			// j takes i's place at the head of the free list, and only
			// then does i stop being a node: another CPU's fresh (under
			// that CPU's lock) may claim i's slot as soon as it is not
			// one, and must not find it on this list.
			p, n := *l.prev(i), *l.next(i)
			*l.prev(j), *l.next(j) = p, n
			*l.next(p), *l.prev(n) = j, j
			l.crashPoint()
			l.release(i)
			i = j
		}
		l.clearRef(i)
		l.move(L, i, tInactive)
		region.StoreRelease32(l.own(i), l.mine)
	}
	return i
}

func (l *lruState) percpuPushFree(i uint32) {
	L := l.pcpu(l.cpuOf(i))
	w := l.lockWord(L.hdr + llLock)
	ver := l.m.locks.Lock(w)
	l.move(L, i, tFree)
	region.StoreRelease32(l.own(i), 0)
	l.m.locks.Unlock(w, ver)
}

// ---- the map's side ----

// currentCPU is the CPU an operation runs on: the map's CPU function's
// answer, else the calling thread's CPU (0 where it cannot be known), in
// [0, possible CPUs).
func (l *lruState) currentCPU() uint32 {
	var c int
	if l.cpuFn != nil {
		c = l.cpuFn()
	} else {
		c = cpuid.Current()
	}
	if c < 0 {
		return 0
	}
	return uint32(c) % l.ncpu
}

// pop obtains a node for an update of a key whose home slot is h (noNode:
// none), as the kernel's pop would, possibly evicting; the node is the
// home slot itself where that is not a node.
func (l *lruState) pop(h uint32) uint32 {
	c := l.currentCPU()
	if l.percpu {
		return l.percpuPop(c, h)
	}
	return l.commonPop(c, h)
}

// pushFree returns node i (whose element is unlinked) to the LRU.
func (l *lruState) pushFree(i uint32) {
	if l.percpu {
		l.percpuPushFree(i)
		return
	}
	l.commonPushFree(i)
}

// lruUpdate is htab_lru_map_update_elem and
// htab_lru_percpu_map_update_elem: obtain a node first (possibly evicting),
// then apply the flags under the bucket lock. LRU_HASH publishes the new
// element at the chain head (referenced if it replaces a key) and frees the
// old one; LRU_PERCPU_HASH updates an existing key in place (referenced),
// and with BPF_EXIST obtains no node.
func (m *Map) lruUpdate(key, value []byte, flags uint64) error {
	l := m.lru
	var hv uint32
	if m.keySize == 4 {
		hv = jhash.Word(binary.LittleEndian.Uint32(key), m.seed)
	} else {
		hv = m.hash(key)
	}
	b := hv & m.mask
	node := uint32(noNode)
	o := uint32(noNode)
	if !m.inPlace && m.g.valArea == 8 && flags != uapi.NoExist {
		o, _ = m.atHome(b, hv, key)
	}
	if o != noNode {
		// The key lives in its bucket's slot or its mate: keep it there.
		var done bool
		if node, done = m.updateHome(o, b, hv, key, value); done {
			return nil
		}
		if node == noNode {
			node = l.pop(noNode)
		}
		if node == noNode {
			return uapi.ENOMEM
		}
		m.crashPoint()
		m.write(node+1, hv, key, value)
	} else if !m.inPlace || flags != uapi.Exist {
		if node = l.pop(b); node == noNode {
			return uapi.ENOMEM
		}
		m.crashPoint()
		if !m.inPlace {
			m.write(node+1, hv, key, value)
		}
	}
	ver := m.lock(b)
	old, slot := m.find(b, hv, key)
	var err error
	switch {
	case old != 0 && flags == uapi.NoExist:
		err = uapi.EEXIST
	case old == 0 && flags == uapi.Exist:
		err = uapi.ENOENT
	case m.inPlace && old != 0:
		l.setRef(old - 1)
		spare := uint64(0) // BPF_EXIST obtains no node, as in the kernel
		if node != noNode {
			spare = m.elem(node + 1)
		}
		m.storeInPlaceUndo(m.elem(old), old, spare, value)
	case m.inPlace:
		n := node + 1
		m.write(n, hv, key, value)
		m.linkHead(b, n, m.elem(n), m.mem.Uint32(m.headOff(b)))
		m.makeLive(m.elem(n))
		m.crashPoint()
		atomic.AddUint32(m.count, 1)
		region.StoreRelease32(l.own(node), 0) // no longer in flight
		node = noNode
	default:
		n := node + 1
		e := m.elem(n)
		m.linkHead(b, n, e, m.mem.Uint32(m.headOff(b)))
		m.makeLive(e)
		m.crashPoint()
		atomic.AddUint32(m.count, 1)
		region.StoreRelease32(l.own(node), 0) // no longer in flight
		node = noNode
		if old != 0 {
			l.setRef(n - 1)
			if slot == m.headOff(b) {
				slot = e + 4
			}
			m.crashPoint()
			m.unlink(b, old, slot)
		}
	}
	m.crashPoint()
	m.unlock(b, ver)
	switch {
	case node != noNode:
		l.pushFree(node) // failed update, or an in-place one
	case old != 0 && !m.inPlace && err == nil:
		l.pushFree(old - 1)
	}
	return err
}

// atHome returns, read without a lock, the slot of key's element if that
// is its bucket b's own slot or b's mate, and the element's sequence when
// its key matched (a reader copying the value checks it is unchanged);
// slot is noNode if the key is in neither.
func (m *Map) atHome(b, hv uint32, key []byte) (slot, seq uint32) {
	for i, s := range [2]uint32{b, m.mate(b)} {
		if i == 1 && s == b {
			break // no mate
		}
		e := m.elem(s + 1)
		if seq := atomic.LoadUint32(m.seqOf(e)); seq&1 == 0 && seq != 0 &&
			atomic.LoadUint32(m.hashOf(e)) == hv && m.keyEqual(e, key) {
			return s, seq
		}
	}
	return noNode, 0
}

// updateHome is an LRU_HASH update (BPF_ANY or BPF_EXIST, a one-word
// value) of a key of bucket b that lives in slot o, b's own or its mate
// (atHome). The kernel would take a node n from the LRU, put the key and
// value in it at the head of the bucket's chain, and free o. Free nodes
// are interchangeable, so this keeps the key in o instead: it takes n as
// the kernel does, stores the value in o in place (one atomic store, so
// readers see the old value or the new), swaps the list places of n and o
// (o takes n's place as the new node, referenced; n takes o's), moves o
// to the front of the chain, and frees n from o's old place as the kernel
// frees o. The lists, the chain order and the surviving keys are the
// kernel's, and the key's element stays in its bucket's cache line.
//
// It holds the lock of the list it takes n from, then takes the lock of
// o's list if that is another, then the bucket lock: the LRU's lock order,
// and no more locks than an update takes anyway. o's list may be another
// CPU's pending list, whose local lock it takes only if that is free (a
// second local lock is never waited for). It gives up with done false, n
// (if not noNode) popped and in flight, when that lock is busy, when o is
// on another CPU's lists of a BPF_F_NO_COMMON_LRU map, when a lock is held
// by a dead process, when the CPU must steal a node, or when the key is no
// longer in slot o (the pop may have evicted it); the caller then goes on
// the kernel's way.
func (m *Map) updateHome(o, b, hv uint32, key, value []byte) (n uint32, done bool) {
	l := m.lru
	locks := m.locks
	c := l.currentCPU()
	var w0 *uint32
	if l.percpu {
		w0 = l.lockWord(l.ll(c) + llLock)
	} else {
		w0 = l.lockWord(l.loc(c) + locLock)
	}
	v0 := locks.Lock(w0)
	var st stall
	if l.percpu {
		n = l.percpuLockedPop(c, noNode, &st)
	} else {
		n = l.localPop(c, noNode, &st)
	}
	var w1 *uint32
	var v1 uint32
	unlock := func() {
		if w1 != nil {
			locks.Unlock(w1, v1)
		}
		locks.Unlock(w0, v0)
		if st.w != nil {
			l.unstick(&st)
		}
	}
	if n == noNode || st.w != nil {
		unlock()
		return n, false
	}
	wo := l.listLock(o)
	if wo != w0 {
		var v uint32
		ok := false
		switch {
		case l.percpu:
			// Another CPU's lists: left to the kernel's way.
		case wo == l.lockWord(l.ll(0)+llLock):
			v, ok = l.nest(wo, &st)
		default:
			// Another CPU's local lock: taken only if free, never
			// waited for, so two updates that each hold one local
			// lock cannot wait for each other.
			v, ok = locks.TryLock(wo)
		}
		if !ok {
			unlock()
			return n, false
		}
		w1, v1 = wo, v
	}
	bv, ok := l.nest(m.lockWord(b), &st)
	if !ok {
		unlock()
		return n, false
	}
	// Holding the bucket lock, o cannot leave the chain; holding its
	// list's lock, it cannot change lists.
	ref, slot := m.find(b, hv, key)
	done = ref == o+1 && l.listLock(o) == wo
	if done {
		e := m.elem(o + 1)
		m.storeValue(e, value)
		if head := m.headOff(b); slot != head {
			// To the front of the chain, where the kernel's new element
			// goes. Lookups of the key try its home slot first, so they
			// find it throughout; a walk meanwhile may pass it twice.
			region.StoreRelease32(m.mem.Uint32(slot), atomic.LoadUint32(m.nextOf(e)))
			region.StoreRelease32(m.nextOf(e), atomic.LoadUint32(m.mem.Uint32(head)))
			region.StoreRelease32(m.mem.Uint32(head), o+1)
		}
		l.swapPlaces(n, o)
		l.setRef(o)
		region.StoreRelease32(l.own(o), 0)
		m.crashPoint()
		l.freeHeld(n)
	}
	m.unlock(b, bv)
	unlock()
	return n, done
}

// listLock is the lock of the list node i is on.
func (l *lruState) listLock(i uint32) *uint32 {
	switch {
	case l.percpu:
		return l.lockWord(l.ll(min(l.cpuOf(i), l.ncpu-1)) + llLock)
	case l.typ(i) == tLocalPending:
		return l.lockWord(l.loc(min(l.cpuOf(i), l.ncpu-1)) + locLock)
	}
	return l.lockWord(l.ll(0) + llLock)
}

// swapPlaces exchanges the list places of nodes a and b (their links, list
// types, CPUs and referenced bits, and the next-inactive-rotation cursor
// if it points at either). The locks of both lists are held.
func (l *lruState) swapPlaces(a, b uint32) {
	var L lruList
	if l.percpu {
		L = l.pcpu(min(l.cpuOf(a), l.ncpu-1))
	} else {
		L = l.global()
	}
	if nir := l.nir(L); *nir == a {
		*nir = b
	} else if *nir == b {
		*nir = a
	}
	ma, mb := atomic.LoadUint32(l.meta(a)), atomic.LoadUint32(l.meta(b))
	ra, rb := atomic.LoadUint32(l.refw(a)), atomic.LoadUint32(l.refw(b))
	pa, na, pb, nb := *l.prev(a), *l.next(a), *l.prev(b), *l.next(b)
	switch {
	case na == b: // pa, a, b, nb
		*l.next(pa), *l.prev(b), *l.next(b) = b, pa, a
		*l.prev(a), *l.next(a), *l.prev(nb) = b, nb, a
	case nb == a: // pb, b, a, na
		*l.next(pb), *l.prev(a), *l.next(a) = a, pb, b
		*l.prev(b), *l.next(b), *l.prev(na) = a, na, b
	default:
		*l.next(pa), *l.prev(na) = b, b
		*l.next(pb), *l.prev(nb) = a, a
		*l.prev(a), *l.next(a), *l.prev(b), *l.next(b) = pb, nb, pa, na
	}
	region.StoreRelease32(l.meta(a), mb)
	region.StoreRelease32(l.meta(b), ma)
	region.StoreRelease32(l.refw(a), rb)
	region.StoreRelease32(l.refw(b), ra)
}

// freeHeld is pushFree with the lock of i's list already held.
func (l *lruState) freeHeld(i uint32) {
	switch {
	case l.percpu:
		l.move(l.pcpu(l.cpuOf(i)), i, tFree)
	case l.typ(i) == tLocalPending:
		l.setType(i, tLocalFree)
		l.clearRef(i)
		l.listMove(i, l.localFreeHead(l.cpuOf(i)))
	default:
		l.move(l.global(), i, tFree)
	}
	region.StoreRelease32(l.own(i), 0)
}

// storeInPlaceUndo rewrites a live element's value under its bucket lock,
// as the kernel updates an LRU_PERCPU_HASH element in place. One-word
// values are stored atomically; larger ones under the element's sequence
// word (odd while writing), so lock-free readers retry rather than see a
// torn value. The update's spare node (spare, in flight for this process,
// returned to the LRU afterwards) first takes a copy of the old value and
// names the element and its odd sequence, so that if this process dies
// during the copy the repair can put the old value back (undoInPlace). A
// BPF_EXIST update has no spare node (the kernel's takes none, and taking
// one could evict): spare is 0, and a death in the middle of that copy
// leaves the element part old, part new.
func (m *Map) storeInPlaceUndo(e uint64, ref uint32, spare uint64, value []byte) {
	if m.g.valArea == 8 {
		m.storeValue(e, value)
		return
	}
	sp := m.seqOf(e)
	odd := atomic.LoadUint32(sp) + 1
	if spare != 0 {
		copy(m.valueOf(spare), m.valueOf(e))
		region.StoreRelease32(m.hashOf(spare), ref)
		region.StoreRelease32(m.seqOf(spare), odd)
	}
	region.StoreRelease32(sp, odd)
	m.crashPoint()
	copy(m.valueOf(e), value[:m.copySize])
	m.makeLive(e)
}

// undoInPlace puts back the old value of every in-place update that a dead
// process left half copied: a live element whose sequence is odd (with
// every lock held, only a dead writer leaves one so) and a node in flight
// for a dead process that names the element and carries the same odd
// sequence, holding the old value (storeInPlaceUndo). The chains' repair
// then makes the element live again.
func (m *Map) undoInPlace() {
	l := m.lru
	if !m.inPlace || m.g.valArea == 8 {
		return
	}
	for i := range l.s {
		if !m.locks.Dead(l.own(i)) {
			continue
		}
		s := m.elem(i + 1)
		ref := atomic.LoadUint32(m.hashOf(s))
		odd := atomic.LoadUint32(m.seqOf(s))
		if ref == 0 || ref > l.s || ref == i+1 || odd&1 == 0 {
			continue
		}
		e := m.elem(ref)
		if atomic.LoadUint32(m.seqOf(e)) != odd {
			continue
		}
		copy(m.valueOf(e), m.valueOf(s))
		m.makeLive(e)
	}
}

// LookupTouch is a BPF program's lookup: Lookup, and for LRU maps the
// element found is marked referenced (bpf_lru_node_set_ref), so that the
// LRU keeps it over unreferenced ones.
func (m *Map) LookupTouch(key, value []byte) error {
	if m.lru == nil {
		return m.Lookup(key, value)
	}
	hv := m.hash(key)
	b := hv & m.mask
	out := value
	for try := 0; try < readRetries; try++ {
		ref, ok, done := m.read(b, hv, key, out)
		if done {
			if !ok {
				return uapi.ENOENT
			}
			if &out[0] != &value[0] {
				copy(value, out)
			}
			m.lru.setRef(ref - 1)
			return nil
		}
		if &out[0] == &value[0] {
			out = make([]byte, len(value))
		}
	}
	ver := m.lock(b)
	ref, _ := m.find(b, hv, key)
	if ref != 0 {
		m.copyValue(value, m.elem(ref))
		m.lru.setRef(ref - 1)
	}
	m.unlock(b, ver)
	if ref == 0 {
		return uapi.ENOENT
	}
	return nil
}
