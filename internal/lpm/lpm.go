// Package lpm implements BPF_MAP_TYPE_LPM_TRIE over a flat region with the
// kernel's observable behaviour (longest-prefix-match lookups limited to the
// probe's prefixlen, exact-match update and delete, ENOSPC when full, host
// bits stored verbatim, GET_NEXT_KEY in the kernel's post-order), but not the
// kernel's structure: instead of a binary trie whose every bit is a pointer
// chase, it is a multibit trie with 8-bit strides whose nodes are
// popcount-compressed (the gaissmai/bart family).
//
// # Structure
//
// A key is a u32 prefixlen p (host order) followed by D = key_size-4 data
// bytes read most-significant bit first. The node at depth d (d bytes of
// path consumed) holds the entries with 8d ≤ p < 8d+8 and the children for
// the next byte. Inside a node, positions form one complete binary tree in
// heap order: index 1 is the node's own path (local length 0), index
// (1<<l)|(next l bits) is a local prefix of length l (1..7), and index
// 256+b is child b, the binary subtree continuing with byte b. A node's
// 512-bit set is therefore two 256-bit halves: prefix bits (indices 1..255)
// and child bits (256..511). Entries of full length (p = 8D) sit at index 1
// of a node at depth D, which has no children.
//
// A node's references are stored densely after its bitsets: child refs first
// (in byte order), then entry refs (in index order); the slot of position i
// is the rank (popcount of the set bits below i) of i in its half. A lookup
// at each node intersects the prefix bits with the precomputed ancestor set
// of the probe's local index (so only prefixes of length ≤ min(7, p-8d) that
// match are candidates), keeps the highest set bit (the longest match) and
// descends to the child named by the next data byte while p leaves at least
// 8 more bits; the deepest candidate is the answer.
//
// # GET_NEXT_KEY order
//
// The kernel's trie is the canonical path-compressed binary trie of the
// stored prefixes (intermediate nodes exist exactly at branch points that
// are not entries, and always have two children; deleting an entry with two
// children turns it into an intermediate node, which a later insert of the
// same prefix turns back into an entry — the "/23 that reuses an internal
// node"). GET_NEXT_KEY is the post-order successor among real entries in
// that binary trie: subtree(bit 0), subtree(bit 1), then the node; a NULL
// key, a prefixlen > max or a key not stored gives the first entry. Path
// compression does not change post-order, so the same order is the post-order
// of the uncompressed binary trie, which the multibit nodes embed exactly:
// within a node, position i's subtree is 2i, 2i+1 (positions ≥ 256 being the
// child nodes' subtrees). The successor climbs from the key's position:
// at a left child whose sibling subtree is non-empty (one AND of the node's
// 512-bit set with a precomputed subtree mask) it descends to that subtree's
// first post-order entry (left-most-deepest); otherwise the parent position
// is next if it holds an entry; at a node's index 1 the climb continues in
// the parent node from position 256+byte.
//
// # Layout
//
//	header (region.HeaderSize) | lpm header (192) | arena | slack
//
// The lpm header holds the writer lock word, the sequence word (own cache
// line), the entry count, the root node ref, the arena bump pointer and one
// free-list head per size class. The arena holds nodes and entries,
// addressed by u32 refs in 8-byte units (0 is nil; the first 8 bytes of the
// arena are never allocated), so the arena is at most 32 GiB. A node is
// {prefix bits [4]u64, child bits [4]u64, class u32, pad u32} followed by
// 2<<class u32 refs (classes 0..8: capacity 2..512); it is reallocated to the
// next class when full and to a smaller one when a quarter full. An entry is
// the key exactly as last written (prefixlen and every data byte, so host
// bits round-trip) padded to 8, then the value padded to 8. Freed blocks go
// on their class's free list (linked through their first word); fresh ones
// come from the bump pointer, so the pages of a new map are touched only as
// it grows. All-zero bytes are the valid empty map.
//
// The arena's size is fixed at creation: room for max_entries entries with
// generous node space, capped by the machine's memory (the region is only
// address space until touched). An update that finds no room returns
// ENOMEM, as the kernel's does when its allocation fails. Closing or
// deleting a map frees the region whole; Close itself does nothing.
//
// # Concurrency
//
// Writers take a map-wide spin lock in the region and make the map-wide
// sequence word odd for the duration of their change and even again after
// it. Readers (lookup, get-next-key) take no lock: they read the sequence,
// walk the structure, copy the result out, and accept it only if the
// sequence was even and unchanged; otherwise they retry. A reader may walk
// through a structure being rewritten, so every ref it follows is checked
// against the arena's bounds and every walk is bounded by the key's depth:
// garbage can only make a reader retry, never fault. After a few failed
// attempts (writers that never leave the map alone) a reader takes the lock
// once, so readers cannot starve. After the first failed attempt a reader
// copies into a scratch buffer, so a caller's buffer is written only with a
// consistent result.
package lpm

import (
	"encoding/binary"
	"math/bits"
	"runtime"
	"sync/atomic"

	"github.com/bpfmap/bpfmap/internal/mapops"
	"github.com/bpfmap/bpfmap/internal/region"
	"github.com/bpfmap/bpfmap/internal/uapi"
)

// Family creates LPM_TRIE maps.
var Family mapops.Family = family{}

type family struct{}

const (
	// Offsets inside the lpm header, which starts at region.HeaderSize.
	hdrLock  = 0   // u32 writer lock
	hdrSeq   = 64  // u32 sequence: odd while a writer changes the map
	hdrCount = 128 // u32 entries
	hdrRoot  = 132 // u32 root node ref
	hdrBump  = 136 // u64 arena bytes handed out beyond the reserved first 8
	hdrFree  = 144 // u32 × numClasses free-list heads
	hdrSize  = 192

	nodeHdr        = 72 // two 256-bit sets, class, pad
	nodeClasses    = 9  // capacities 2<<0 .. 2<<8 = 2..512 refs
	entryClass     = nodeClasses
	numClasses     = nodeClasses + 1
	maxNodeSize    = nodeHdr + 4*512
	maxArena       = 1 << 35 // u32 refs in 8-byte units
	minArenaBudget = 1 << 20

	keyMin   = 4 + 1   // prefixlen + 1 data byte
	keyMax   = 4 + 256 // LPM_DATA_SIZE_MAX
	valueMax = uapi.KmallocMaxSize - 256 - 24

	// readRetries bounds a lock-free reader's attempts before it locks.
	readRetries = 8
)

// createMask is LPM_CREATE_FLAG_MASK.
const createMask = uapi.FNoPrealloc | uapi.FNumaNode | uapi.FAllAccessFlags

// Check is the validation of the kernel's trie_alloc, every violation
// EINVAL. The value_size bound (KMALLOC_MAX_SIZE - LPM_DATA_SIZE_MAX -
// sizeof(struct lpm_trie_node) = 4194024) was found at the live kernel.
func (family) Check(a *mapops.Attr) error {
	if a.MaxEntries == 0 || a.Flags&uapi.FNoPrealloc == 0 || a.Flags&^createMask != 0 ||
		mapops.CheckProgAccess(a.Flags) != nil ||
		a.KeySize < keyMin || a.KeySize > keyMax ||
		a.ValueSize < 1 || a.ValueSize > valueMax {
		return uapi.EINVAL
	}
	return nil
}

// geometry is the derived shape of an LPM map.
type geometry struct {
	dataSize  uint64
	keySize   uint64
	valOff    uint64 // value offset inside an entry
	entrySize uint64
	arena     uint64 // bytes
	slack     uint64 // readable bytes past the arena's end
}

func geometryOf(a *mapops.Attr) geometry {
	var g geometry
	g.keySize = uint64(a.KeySize)
	g.dataSize = g.keySize - 4
	g.valOff = (g.keySize + 7) &^ 7
	g.entrySize = g.valOff + mapops.RoundUp8(a.ValueSize)
	// Node budget per entry: a new entry creates at most one node per
	// byte of its path (D+1), of the smallest class; growth leaves freed
	// blocks that later nodes reuse. Twice the sum covers fragmentation.
	depth := g.dataSize + 1
	if depth > 8 {
		depth = 8 + (depth-8)/2 // long keys share most of their paths
	}
	per := g.entrySize + depth*(nodeHdr+8) + 8
	n := uint64(a.MaxEntries)
	arena := minArenaBudget + 2*n*per
	if lim := arenaLimit(); arena > lim {
		arena = lim
	}
	g.arena = (arena + 7) &^ 7
	g.slack = max(maxNodeSize, g.entrySize)
	return g
}

// arenaLimit caps an arena: half the machine's memory (the region is
// reserved address space, committed as it is touched) and the 32 GiB that
// u32 refs address.
func arenaLimit() uint64 {
	lim := physMem() / 2
	if lim == 0 || lim > maxArena {
		lim = maxArena
	}
	return lim
}

// Layout sizes the region. Memlock is the kernel's trie_mem_usage of the
// new, empty map: (node + data + value) × n_entries = 0.
func (family) Layout(a *mapops.Attr) (mapops.Layout, error) {
	g := geometryOf(a)
	return mapops.Layout{
		BodySize:   hdrSize + g.arena + g.slack,
		MaxEntries: a.MaxEntries,
		Memlock:    0,
	}, nil
}

// Traits: standard UPDATE flags; lookup, update and delete batches are the
// generic ones; LOOKUP_AND_DELETE_BATCH is ENOTSUPP.
func (family) Traits(*mapops.Attr) mapops.Traits {
	return mapops.Traits{
		Update:      mapops.UpdateStd,
		LookupBatch: mapops.BatchGeneric,
		UpdateBatch: mapops.BatchGeneric,
		DeleteBatch: mapops.BatchGeneric,
	}
}

// Open returns the operations over an LPM region.
func (family) Open(r *region.Region, a *mapops.Attr, _ mapops.Layout) (mapops.Ops, error) {
	g := geometryOf(a)
	if uint64(r.Len()) < region.HeaderSize+hdrSize+g.arena+g.slack {
		return nil, uapi.ENOMEM
	}
	h := uint64(region.HeaderSize)
	m := &Map{
		r:       r,
		mem:     r.Mem(),
		g:       g,
		base:    h + hdrSize,
		valSize: uint64(a.ValueSize),
		maxBits: uint32(8 * g.dataSize),
		max:     a.MaxEntries,
		lockW:   r.Uint32(h + hdrLock),
		seq:     r.Uint32(h + hdrSeq),
		count:   r.Uint32(h + hdrCount),
		rootOff: h + hdrRoot,
		bump:    r.Uint64(h + hdrBump),
		freeOff: h + hdrFree,
	}
	return m, nil
}

// Map is one LPM trie's operations over its region.
type Map struct {
	r       *region.Region
	mem     region.Mem
	g       geometry
	base    uint64 // region offset of the arena (ref r is at base+8r)
	valSize uint64
	maxBits uint32
	max     uint32
	lockW   *uint32
	seq     *uint32
	count   *uint32
	rootOff uint64
	bump    *uint64
	freeOff uint64
}

// pathElem is a node on a writer's path and the region offset of the word
// that references it. Paths live on the writer's stack: the lock word is in
// the region, where the race detector does not see it synchronise Go memory.
type pathElem struct {
	ref  uint32
	slot uint64
}

// Precomputed masks: anc[i] is the set of positions i, i/2, …, 1 (the
// prefixes of local index i); sub[i] is the set of positions in i's subtree
// within a node (positions ≥ 256 are leaves: child subtrees).
var (
	anc [256][4]uint64
	sub [512][8]uint64
)

func init() {
	for i := 1; i < 256; i++ {
		for j := i; j >= 1; j >>= 1 {
			anc[i][j>>6] |= 1 << (j & 63)
		}
	}
	for i := 1; i < 512; i++ {
		for lo, hi := i, i+1; lo < 512; lo, hi = lo<<1, hi<<1 {
			for j := lo; j < hi; j++ {
				sub[i][j>>6] |= 1 << (j & 63)
			}
		}
	}
}

// localIndex is the in-node index of prefixlen p's last partial byte: for
// l = p%8, (1<<l) | top l bits of data[p/8]. data[p/8] is read only if l > 0.
func localIndex(data []byte, p uint32) uint32 {
	l := p & 7
	if l == 0 {
		return 1
	}
	return 1<<l | uint32(data[p>>3])>>(8-l)
}

func classCap(c uint32) uint32 { return 2 << c }

// classFor is the smallest node class holding n refs.
func classFor(n uint32) uint32 {
	if n <= 2 {
		return 0
	}
	return uint32(bits.Len32(n-1)) - 1
}

func (m *Map) classSize(c uint32) uint64 {
	if c == entryClass {
		return m.g.entrySize
	}
	return nodeHdr + 4*uint64(classCap(c))
}

// off is ref's region offset.
func (m *Map) off(ref uint32) uint64 { return m.base + 8*uint64(ref) }

// valid reports whether a reader may dereference ref: nodes and entries
// lie within the arena, followed by slack for a node's or entry's size.
func (m *Map) valid(ref uint32) bool { return ref != 0 && 8*uint64(ref) < m.g.arena }

func (m *Map) word(n uint32, w uint64) uint64 { return *m.mem.Uint64(m.off(n) + 8*w) }
func (m *Map) setWord(n uint32, w uint64, v uint64) {
	*m.mem.Uint64(m.off(n) + 8*w) = v
}
func (m *Map) class(n uint32) uint32 { return *m.mem.Uint32(m.off(n) + 64) }
func (m *Map) refAt(n uint32, k uint64) *uint32 {
	return m.mem.Uint32(m.off(n) + nodeHdr + 4*k)
}

// has reports whether position i (1..511) of node n is set.
func (m *Map) has(n uint32, i uint32) bool {
	return m.word(n, uint64(i>>6))&(1<<(i&63)) != 0
}

// rank is the number of set positions below i in i's half of node n
// (prefix half for i < 256, child half otherwise).
func (m *Map) rank(n uint32, i uint32) uint64 {
	o := m.off(n)
	w0 := uint64(0)
	if i >= 256 {
		w0 = 4
	}
	wi := uint64(i >> 6)
	r := bits.OnesCount64(*m.mem.Uint64(o + 8*wi) & (1<<(i&63) - 1))
	for w := w0; w < wi; w++ {
		r += bits.OnesCount64(*m.mem.Uint64(o + 8*w))
	}
	return uint64(r)
}

// counts returns node n's numbers of child refs and entry refs.
func (m *Map) counts(n uint32) (nc, np uint64) {
	o := m.off(n)
	var p, c int
	for w := uint64(0); w < 4; w++ {
		p += bits.OnesCount64(*m.mem.Uint64(o + 8*w))
		c += bits.OnesCount64(*m.mem.Uint64(o + 32 + 8*w))
	}
	return uint64(c), uint64(p)
}

// slotOf is the position of i's ref in node n's ref array.
func (m *Map) slotOf(n uint32, i uint32) uint64 {
	if i >= 256 {
		return m.rank(n, i)
	}
	nc, _ := m.counts(n)
	return nc + m.rank(n, i)
}

// nonEmpty reports whether node n has any set position in i's subtree.
func (m *Map) nonEmpty(n uint32, i uint32) bool {
	o := m.off(n)
	s := &sub[i]
	for w := uint64(0); w < 8; w++ {
		if *m.mem.Uint64(o + 8*w)&s[w] != 0 {
			return true
		}
	}
	return false
}

// ---- writer lock and sequence ----

func (m *Map) lock() {
	for spins := 0; ; spins++ {
		if atomic.LoadUint32(m.lockW) == 0 && atomic.CompareAndSwapUint32(m.lockW, 0, 1) {
			return
		}
		if spins > 16 {
			runtime.Gosched()
		}
	}
}

func (m *Map) unlock() { region.StoreRelease32(m.lockW, 0) }

// writeLock takes the lock and makes the sequence odd (a full barrier, so
// no change below is visible before it).
func (m *Map) writeLock() {
	m.lock()
	atomic.AddUint32(m.seq, 1)
}

// writeUnlock makes the sequence even (after every change) and unlocks.
func (m *Map) writeUnlock() {
	region.StoreRelease32(m.seq, atomic.LoadUint32(m.seq)+1)
	m.unlock()
}

// readBegin waits briefly for an even sequence; ok is false if writers
// kept it odd.
func (m *Map) readBegin() (s uint32, ok bool) {
	for spins := 0; spins < 64; spins++ {
		if s = atomic.LoadUint32(m.seq); s&1 == 0 {
			return s, true
		}
		if spins > 8 {
			runtime.Gosched()
		}
	}
	return 0, false
}

func (m *Map) readValid(s uint32) bool {
	region.ReadFence()
	return atomic.LoadUint32(m.seq) == s
}

// ---- allocator (writers only) ----

func (m *Map) freeHead(c uint32) *uint32 { return m.mem.Uint32(m.freeOff + 4*uint64(c)) }

// alloc returns a block of class c, or 0 if the arena is full.
func (m *Map) alloc(c uint32) uint32 {
	h := m.freeHead(c)
	if ref := *h; ref != 0 {
		*h = *m.mem.Uint32(m.off(ref))
		return ref
	}
	used := *m.bump
	size := m.classSize(c)
	if 8+used+size > m.g.arena {
		return 0
	}
	*m.bump = used + size
	return uint32((8 + used) / 8)
}

// free puts a block of class c on its free list.
func (m *Map) free(c uint32, ref uint32) {
	h := m.freeHead(c)
	*m.mem.Uint32(m.off(ref)) = *h
	*h = ref
}

// ---- reads (robust against concurrent writers) ----

// find returns the ref of the entry that answers an LPM lookup of key
// (prefixlen p ≤ maxBits), 0 if none; ok is false if the walk met an
// inconsistent structure. It descends along the key first (one bit test
// per node) and then checks the nodes' prefixes from the deepest up,
// stopping at the first (longest) match.
func (m *Map) find(key []byte, p uint32) (e uint32, ok bool) {
	n := atomic.LoadUint32(m.mem.Uint32(m.rootOff))
	if n == 0 {
		return 0, true
	}
	data := key[4:]
	var stack [17]uint32
	depth := uint32(0)
	for d := uint32(0); ; d++ {
		if !m.valid(n) {
			return 0, false
		}
		if d == uint32(len(stack)) {
			return m.findForward(key, p)
		}
		stack[d], depth = n, d
		if p-8*d < 8 {
			break
		}
		o := m.off(n)
		ci := 256 + uint32(data[d])
		cw := *m.mem.Uint64(o + 8*uint64(ci>>6))
		if cw&(1<<(ci&63)) == 0 {
			break
		}
		r := bits.OnesCount64(cw & (1<<(ci&63) - 1))
		for w := uint64(4); w < uint64(ci>>6); w++ {
			r += bits.OnesCount64(*m.mem.Uint64(o + 8*w))
		}
		n = *m.mem.Uint32(o + nodeHdr + 4*uint64(r))
	}
	for d := int(depth); d >= 0; d-- {
		n := stack[d]
		if i := m.bestIn(n, data, p, uint32(d)); i != 0 {
			e = *m.refAt(n, m.slotOf(n, i))
			return e, m.valid(e)
		}
	}
	return 0, true
}

// bestIn returns the index of the longest prefix in node n (at depth d)
// that matches data limited to p bits, or 0.
func (m *Map) bestIn(n uint32, data []byte, p, d uint32) uint32 {
	o := m.off(n)
	var idx uint32
	if rem := p - 8*d; rem >= 8 {
		idx = 128 | uint32(data[d])>>1
	} else {
		idx = localIndex(data[d:], rem)
	}
	a := &anc[idx]
	for w := 3; w >= 0; w-- {
		if x := *m.mem.Uint64(o + 8*uint64(w)) & a[w]; x != 0 {
			return uint32(w)<<6 | uint32(63-bits.LeadingZeros64(x))
		}
	}
	return 0
}

// findForward is find for paths deeper than find's stack: it keeps the
// best match while descending.
func (m *Map) findForward(key []byte, p uint32) (e uint32, ok bool) {
	n := atomic.LoadUint32(m.mem.Uint32(m.rootOff))
	data := key[4:]
	var bestN, bestI uint32
	for d := uint32(0); ; d++ {
		if !m.valid(n) {
			return 0, false
		}
		if i := m.bestIn(n, data, p, d); i != 0 {
			bestN, bestI = n, i
		}
		if p-8*d < 8 {
			break
		}
		ci := 256 + uint32(data[d])
		if !m.has(n, ci) {
			break
		}
		n = *m.refAt(n, m.rank(n, ci))
	}
	if bestN == 0 {
		return 0, true
	}
	e = *m.refAt(bestN, m.slotOf(bestN, bestI))
	return e, m.valid(e)
}

// exact walks to the node at depth p/8 on key's path; it returns the node
// path (stack[0..d]) length-1 = depth reached and whether the entry exists.
// Readers only; refs are checked.
func (m *Map) exact(key []byte, p uint32, stack []uint32) (found, ok bool) {
	n := atomic.LoadUint32(m.mem.Uint32(m.rootOff))
	if n == 0 {
		return false, true
	}
	data := key[4:]
	d := p >> 3
	for k := uint32(0); ; k++ {
		if !m.valid(n) {
			return false, false
		}
		stack[k] = n
		if k == d {
			return m.has(n, localIndex(data[d:], p&7)), true
		}
		ci := 256 + uint32(data[k])
		if !m.has(n, ci) {
			return false, true
		}
		n = *m.refAt(n, m.rank(n, ci))
	}
}

// first finds the first post-order entry in position i's subtree of node n
// at depth d.
func (m *Map) first(n uint32, i uint32, d uint64) (e uint32, ok bool) {
	for {
		if i >= 256 {
			if d >= m.g.dataSize {
				return 0, false
			}
			n = *m.refAt(n, m.rank(n, i))
			if !m.valid(n) {
				return 0, false
			}
			i, d = 1, d+1
			continue
		}
		switch {
		case m.nonEmpty(n, 2*i):
			i = 2 * i
		case m.nonEmpty(n, 2*i+1):
			i = 2*i + 1
		default:
			if !m.has(n, i) {
				return 0, false
			}
			e = *m.refAt(n, m.slotOf(n, i))
			return e, m.valid(e)
		}
	}
}

// next finds the post-order successor of key (nil: the first entry); e is 0
// at the end.
func (m *Map) next(key []byte) (e uint32, ok bool) {
	root := atomic.LoadUint32(m.mem.Uint32(m.rootOff))
	if root == 0 {
		return 0, true
	}
	if !m.valid(root) {
		return 0, false
	}
	if key != nil {
		if p := binary.NativeEndian.Uint32(key); p <= m.maxBits {
			var stackBuf [33]uint32
			stack := stackBuf[:]
			if d := p>>3 + 1; d > uint32(len(stack)) {
				stack = make([]uint32, d)
			}
			found, ok := m.exact(key, p, stack)
			if !ok {
				return 0, false
			}
			if found {
				return m.successor(key[4:], p, stack)
			}
		}
	}
	return m.first(root, 1, 0)
}

// successor climbs from the position of the stored prefix (data, p), whose
// node path is stack[0..p/8].
func (m *Map) successor(data []byte, p uint32, stack []uint32) (e uint32, ok bool) {
	k := p >> 3
	i := localIndex(data[k:], p&7)
	for {
		n := stack[k]
		for i > 1 {
			if i&1 == 0 && m.nonEmpty(n, i+1) {
				return m.first(n, i+1, uint64(k))
			}
			i >>= 1
			if m.has(n, i) {
				e = *m.refAt(n, m.slotOf(n, i))
				return e, m.valid(e)
			}
		}
		if k == 0 {
			return 0, true
		}
		k--
		i = 256 + uint32(data[k])
	}
}

// Lookup copies the value of the longest stored prefix matching key into
// value.
func (m *Map) Lookup(key, value []byte) error {
	p := binary.NativeEndian.Uint32(key)
	if p > m.maxBits {
		return uapi.ENOENT
	}
	out := value[:m.valSize]
	for range readRetries {
		s, ok := m.readBegin()
		if !ok {
			continue
		}
		e, ok := m.find(key, p)
		if ok && e != 0 {
			copy(out, m.mem.Bytes(m.off(e)+m.g.valOff, m.valSize))
		}
		if ok && m.readValid(s) {
			if e == 0 {
				return uapi.ENOENT
			}
			if &out[0] != &value[0] {
				copy(value, out)
			}
			return nil
		}
		if &out[0] == &value[0] {
			out = make([]byte, m.valSize)
		}
	}
	m.lock()
	defer m.unlock()
	e, _ := m.find(key, p)
	if e == 0 {
		return uapi.ENOENT
	}
	copy(value, m.mem.Bytes(m.off(e)+m.g.valOff, m.valSize))
	return nil
}

// GetNextKey copies the post-order successor of key (or the first key, for
// a nil, out-of-range or absent key) into next.
func (m *Map) GetNextKey(key, next []byte) error {
	out := next[:m.g.keySize]
	for range readRetries {
		s, ok := m.readBegin()
		if !ok {
			continue
		}
		e, ok := m.next(key)
		if ok && e != 0 {
			copy(out, m.mem.Bytes(m.off(e), m.g.keySize))
		}
		if ok && m.readValid(s) {
			if e == 0 {
				return uapi.ENOENT
			}
			if &out[0] != &next[0] {
				copy(next, out)
			}
			return nil
		}
		if &out[0] == &next[0] {
			out = make([]byte, m.g.keySize)
		}
	}
	m.lock()
	defer m.unlock()
	e, _ := m.next(key)
	if e == 0 {
		return uapi.ENOENT
	}
	copy(next, m.mem.Bytes(m.off(e), m.g.keySize))
	return nil
}

// LookupAndDelete is not supported by LPM tries (ENOTSUPP).
func (m *Map) LookupAndDelete(key, value []byte) error { return uapi.ENOTSUPP }

// ---- writes (under the lock) ----

// newPath returns room for a path to depth d, in buf when it fits.
func newPath(buf []pathElem, d uint32) []pathElem {
	if int(d) < len(buf) {
		return buf
	}
	return make([]pathElem, d+1)
}

// walk records the existing nodes on the path to depth d of data in
// path[0..j] and returns j, the depth of the deepest one (-1: no root).
func (m *Map) walk(path []pathElem, data []byte, d uint32) int {
	slot := m.rootOff
	n := *m.mem.Uint32(slot)
	if n == 0 {
		return -1
	}
	path[0] = pathElem{n, slot}
	for k := uint32(0); k < d; k++ {
		ci := 256 + uint32(data[k])
		if !m.has(n, ci) {
			return int(k)
		}
		slot = m.off(n) + nodeHdr + 4*m.rank(n, ci)
		n = *m.mem.Uint32(slot)
		path[k+1] = pathElem{n, slot}
	}
	return int(d)
}

// Update inserts or replaces the entry for key's exact prefix. Flags are
// ≤ BPF_EXIST (checked by the command layer).
func (m *Map) Update(key, value []byte, flags uint64) error {
	p := binary.NativeEndian.Uint32(key)
	if p > m.maxBits {
		return uapi.EINVAL
	}
	key = key[:m.g.keySize]
	data := key[4:]
	d := p >> 3
	idx := localIndex(data[d:], p&7)
	var pathBuf [17]pathElem
	path := newPath(pathBuf[:], d)
	m.writeLock()
	defer m.writeUnlock()
	j := m.walk(path, data, d)
	if j == int(d) && m.has(path[d].ref, idx) {
		if flags == uapi.NoExist {
			return uapi.EEXIST
		}
		n := path[d].ref
		e := *m.refAt(n, m.slotOf(n, idx))
		m.fill(e, key, value)
		return nil
	}
	if flags == uapi.Exist {
		return uapi.ENOENT
	}
	if *m.count >= m.max {
		return uapi.ENOSPC
	}
	// Allocate everything first, so that ENOMEM changes nothing.
	var chainBuf [33]uint32
	chain := chainBuf[:0]
	e := m.alloc(entryClass)
	ok := e != 0
	for k := j + 1; ok && k <= int(d); k++ {
		c := m.alloc(0)
		ok = c != 0
		chain = append(chain, c)
	}
	var grown uint32
	var growClass uint32
	if ok && j >= 0 {
		n := path[j].ref
		nc, np := m.counts(n)
		if c := m.class(n); nc+np+1 > uint64(classCap(c)) {
			growClass = c + 1
			grown = m.alloc(growClass)
			ok = grown != 0
		}
	}
	if !ok {
		if e != 0 {
			m.free(entryClass, e)
		}
		for _, c := range chain {
			if c != 0 {
				m.free(0, c)
			}
		}
		return uapi.ENOMEM
	}
	m.fill(e, key, value)
	if j == int(d) {
		m.insert(path, j, idx, e, grown, growClass)
	} else {
		// New nodes for depths j+1..d, bottom-up: the deepest holds the
		// entry, each other one the next.
		ref, pos := e, idx
		for k := int(d); k > j; k-- {
			c := chain[k-j-1]
			m.initNode(c, pos, ref)
			ref = c
			if k > 0 {
				pos = 256 + uint32(data[k-1])
			}
		}
		if j < 0 {
			region.StoreRelease32(m.mem.Uint32(m.rootOff), ref)
		} else {
			m.insert(path, j, pos, ref, grown, growClass)
		}
	}
	*m.count++
	return nil
}

// fill writes key (verbatim) and value into entry e.
func (m *Map) fill(e uint32, key, value []byte) {
	o := m.off(e)
	copy(m.mem.Bytes(o, m.g.keySize), key)
	copy(m.mem.Bytes(o+m.g.valOff, m.valSize), value)
}

// initNode makes block c a class-0 node holding only position pos → ref.
func (m *Map) initNode(c uint32, pos uint32, ref uint32) {
	for w := uint64(0); w < 8; w++ {
		m.setWord(c, w, 0)
	}
	m.setWord(c, uint64(pos>>6), 1<<(pos&63))
	*m.mem.Uint32(m.off(c) + 64) = 0
	*m.refAt(c, 0) = ref
}

// insert sets position pos → ref in path node j, moving the node to block
// grown (of class growClass) if grown is not 0.
func (m *Map) insert(path []pathElem, j int, pos uint32, ref uint32, grown, growClass uint32) {
	n, slot := path[j].ref, path[j].slot
	nc, np := m.counts(n)
	total := nc + np
	s := m.slotOf(n, pos)
	if grown == 0 {
		o := m.off(n) + nodeHdr
		copy(m.mem.Bytes(o+4*(s+1), 4*(total-s)), m.mem.Bytes(o+4*s, 4*(total-s)))
		*m.mem.Uint32(o + 4*s) = ref
		m.setWord(n, uint64(pos>>6), m.word(n, uint64(pos>>6))|1<<(pos&63))
		return
	}
	src, dst := m.off(n), m.off(grown)
	copy(m.mem.Bytes(dst, 64), m.mem.Bytes(src, 64))
	*m.mem.Uint32(dst + 64) = growClass
	copy(m.mem.Bytes(dst+nodeHdr, 4*s), m.mem.Bytes(src+nodeHdr, 4*s))
	*m.mem.Uint32(dst + nodeHdr + 4*s) = ref
	copy(m.mem.Bytes(dst+nodeHdr+4*(s+1), 4*(total-s)), m.mem.Bytes(src+nodeHdr+4*s, 4*(total-s)))
	m.setWord(grown, uint64(pos>>6), m.word(grown, uint64(pos>>6))|1<<(pos&63))
	region.StoreRelease32(m.mem.Uint32(slot), grown)
	path[j].ref = grown
	m.free(m.class(n), n)
}

// remove clears position pos of path node k; it returns whether the node
// is now empty (the caller frees it). A node left a quarter full moves to
// a smaller block when one is available.
func (m *Map) remove(path []pathElem, k int, pos uint32) (empty bool) {
	n, slot := path[k].ref, path[k].slot
	nc, np := m.counts(n)
	total := nc + np
	s := m.slotOf(n, pos)
	m.setWord(n, uint64(pos>>6), m.word(n, uint64(pos>>6))&^(1<<(pos&63)))
	if total == 1 {
		return true
	}
	o := m.off(n) + nodeHdr
	copy(m.mem.Bytes(o+4*s, 4*(total-s-1)), m.mem.Bytes(o+4*(s+1), 4*(total-s-1)))
	c := m.class(n)
	if left := uint32(total - 1); c > 0 && left <= classCap(c)/4 {
		nc2 := classFor(left)
		if dst := m.alloc(nc2); dst != 0 {
			do := m.off(dst)
			copy(m.mem.Bytes(do, 64), m.mem.Bytes(m.off(n), 64))
			*m.mem.Uint32(do + 64) = nc2
			copy(m.mem.Bytes(do+nodeHdr, 4*uint64(left)), m.mem.Bytes(o, 4*uint64(left)))
			region.StoreRelease32(m.mem.Uint32(slot), dst)
			path[k].ref = dst
			m.free(c, n)
		}
	}
	return false
}

// Delete removes the entry for key's exact prefix.
func (m *Map) Delete(key []byte) error {
	p := binary.NativeEndian.Uint32(key)
	if p > m.maxBits {
		return uapi.EINVAL
	}
	data := key[4:m.g.keySize]
	d := p >> 3
	idx := localIndex(data[d:], p&7)
	var pathBuf [17]pathElem
	path := newPath(pathBuf[:], d)
	m.writeLock()
	defer m.writeUnlock()
	if m.walk(path, data, d) != int(d) || !m.has(path[d].ref, idx) {
		return uapi.ENOENT
	}
	n := path[d].ref
	m.free(entryClass, *m.refAt(n, m.slotOf(n, idx)))
	k, pos := int(d), idx
	for m.remove(path, k, pos) {
		n := path[k].ref
		m.free(m.class(n), n)
		if k == 0 {
			region.StoreRelease32(m.mem.Uint32(m.rootOff), 0)
			break
		}
		k--
		pos = 256 + uint32(data[k])
	}
	*m.count--
	return nil
}

// Count is the number of entries.
func (m *Map) Count() uint32 { return atomic.LoadUint32(m.count) }

// Close releases nothing beyond the region, which the command layer frees
// whole: deleting a map of any size is O(1) here.
func (m *Map) Close() error { return nil }
