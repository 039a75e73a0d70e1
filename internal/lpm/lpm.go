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
// and child bits (256..511). Entries of full length (p = 8D) are leaves
// (below) in a node at depth < D: a node at depth D is never needed.
//
// A node's references are stored densely after its header: child refs
// first (in byte order), then entry refs (in index order). A node comes in
// one of two kinds, by its size class. A dense node (9 refs or more) keeps
// the 512-bit set itself; the slot of position i is the rank (popcount of
// the set bits below i) of i in its half, and the meta word caches the
// child counts of the words before each child word and the two ref counts,
// so a descent step is one bit test, one popcount and one load of the ref.
// A sparse node (up to 8 refs, the great majority in a trie of random
// routes) lists its positions instead, one byte per ref in one word; a
// descent step finds the child's byte in that word with one SWAR compare.
// A 2-ref node takes 24 bytes instead of the 80 a bitset header would, so
// a trie costs fewer bytes per route than the kernel's, even when small.
//
// A child ref is either a node or, tagged with its top bit, a leaf: the
// entry itself, standing for a subtree that holds that one entry (the
// entry's prefixlen is at least 8 bits beyond the node's depth). Leaves are
// bart's path compression: a sparse subtree costs a ref instead of a chain
// of nodes, and random IPv4 routes below /24 need no node of their own.
// An insert that meets a leaf of another prefix in its child slot pushes
// the leaf down a chain of new nodes, one per byte the two still share,
// the last holding both; a delete that leaves a node (other than the root)
// with a single entry turns the node back into a leaf in its parent, and
// so on upwards.
//
// A lookup descends along the probe while p leaves at least 8 more bits,
// recording the nodes. A leaf met on the way is the answer if its prefix
// matches the probe (its prefix is longer than anything above it);
// otherwise, at each recorded node from the deepest up, the prefix bits are
// intersected with the precomputed ancestor set of the probe's local index
// (so only prefixes of length ≤ min(7, p-8d) that match are candidates)
// and the highest set bit (the longest match) is the answer. In a large
// trie (the jump table, below) a lookup of 16 bits or more starts at depth
// 2 from the table and visits the root and the node at depth 1 only when
// nothing matches further down: at a million random routes those two
// levels are always cached, but walking them costs instructions, and a
// lookup bound by memory overlaps more of the next lookups' misses the
// fewer instructions it takes.
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
// child subtrees: a node, or a leaf's single entry). The successor climbs
// from the key's position (its local index, or the child position of its
// leaf): at a left child whose sibling subtree is non-empty (one AND of the
// node's 512-bit set with a precomputed subtree mask) it descends to that
// subtree's first post-order entry (left-most-deepest); otherwise the
// parent position is next if it holds an entry; at a node's index 1 the
// climb continues in the parent node from position 256+byte.
//
// # Layout
//
//	header (region.HeaderSize) | lpm header (192) | [jump table] | arena | slack
//
// The jump table (256 KiB: a u32 ref for each value of the first two data
// bytes, see syncJump) exists in maps with at least two data bytes and
// max_entries of at least 65536. The lpm header holds the writer lock word, the sequence word (own cache
// line), the entry count, the root node ref, the arena bump pointer and one
// free-list head per size class. The arena holds nodes and entries,
// addressed by u32 refs in 8-byte units (0 is nil; the first 8 bytes of the
// arena are never allocated; the top bit is the leaf tag), so the arena is
// at most 16 GiB. A node of class c (0..8) has room for 2<<c u32 refs
// (2..512) and starts with its meta word: the class (byte 0), the child
// ref count (bytes 4..5) and the entry ref count (bytes 6..7). A sparse
// node (classes 0..2) is {meta, refs, position bytes} in 24, 32 or 48
// bytes: byte k of the position word is ref k's position, the child byte
// for the child refs and the local index for the entry refs after them,
// each run ascending. A dense node (classes 3..8) is {meta, prefix bits
// [4]u64, child bits [4]u64, refs}, its meta word also holding the running
// child counts before child words 1..3 (bytes 1..3). A node is reallocated
// to the next class when full (crossing from sparse to dense at 9 refs) and
// to a smaller one when a quarter full. An entry is the key exactly as
// last written (prefixlen and every data byte, so host bits round-trip)
// padded to 8, then the value padded to 8. Freed blocks go on their class's
// free list (linked through their first word); fresh ones come from the
// bump pointer, so the pages of a new map are touched only as it grows.
// All-zero bytes are the valid empty map.
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
//
// The writer lock is an internal/robust lock word that records its holder.
// A writer (or a reader fallen back to the lock) that finds it held by a
// process that died has the map repaired (Repair, run through
// Locker.Stuck), which also makes the sequence even again, so neither
// readers nor writers wait for a dead writer.
//
// # Crash safety
//
// A writer never changes a node or an entry that readers can reach: it
// builds every changed node and every new or replaced entry in blocks taken
// from the allocator, then publishes the change with one store of a u32 ref
// (the root word, or a ref slot of a reachable node), and only then frees
// the blocks the change made unreachable and updates the entry count:
//
//   - insert: the entry, and a copy of the node it goes into (or a new root,
//     or the chain of nodes that pushes a leaf down), published by one
//     store of the copy's ref in its parent's slot;
//   - replace: a new entry, published by one store in the old entry's slot
//     (or, for a value of 4 or 8 bytes under an identical key, one store of
//     the value in place);
//   - delete: a copy of the highest node that keeps refs, without the one
//     that leads to the deleted entry (or, when that node would be left
//     holding a single entry below the root, the leaf that replaces it, or
//     a nil root), published by one store; the deleted entry and the nodes
//     below the copied one become unreachable together.
//
// So whatever a writer killed at any instant leaves, the structure readers
// reach from the root is that of a completed sequence of operations, the
// killed one either complete or absent. What can be wrong is only
// bookkeeping: blocks taken from the allocator and not yet published, or
// made unreachable and not yet freed (or a free list cut short by a killed
// free), an entry count not yet updated, a jump table entry not yet
// updated, an odd sequence, the lock held. Repair seizes the lock, walks
// the structure from the root (recounting the entries and collecting the
// reachable blocks), and rebuilds every free list from the arena space
// between the reachable blocks, up to the bump pointer. That space is
// exactly the blocks no reachable node refers to; since it was carved from
// blocks of the class sizes, it is cut again into blocks of those sizes,
// with nothing left over (see tile). It rebuilds the jump table from the
// structure, then makes the sequence even and unlocks.
//
// One case is not crash-atomic: a delete that needs a block for the copy
// of a node when the arena is exhausted (no block of a fitting class free,
// the bump pointer at the arena's end) changes that node in place rather
// than fail, as the kernel's delete never fails. A writer killed in the
// middle of that change can leave the node's refs and bits disagreeing,
// which Repair cannot undo.
package lpm

import (
	"encoding/binary"
	"math/bits"
	"runtime"
	"sync/atomic"

	"github.com/bpfmap/bpfmap/internal/mapops"
	"github.com/bpfmap/bpfmap/internal/region"
	"github.com/bpfmap/bpfmap/internal/robust"
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

	// Node layout: meta u64, then, in a dense node, prefix bits [4]u64,
	// child bits [4]u64 and the refs; in a sparse node the refs and then
	// one position byte per ref.
	nodeMeta       = 0
	nodeBits       = 8
	nodeChild      = 40
	nodeHdr        = 72 // a dense node's first ref
	sparseHdr      = 8  // a sparse node's first ref
	sparseClasses  = 3  // classes 0..2 (2, 4 and 8 refs) are sparse
	nodeClasses    = 9  // capacities 2<<0 .. 2<<8 = 2..512 refs
	entryClass     = nodeClasses
	numClasses     = nodeClasses + 1
	maxNodeSize    = nodeHdr + 4*512
	maxArena       = 1 << 34 // u32 refs in 8-byte units, top bit the leaf tag
	minArenaBudget = 1 << 20

	// leafBit tags a child ref that is an entry (a subtree holding a
	// single entry) rather than a node.
	leafBit = 1 << 31

	// jumpMin is the max_entries from which a map with at least two data
	// bytes keeps a jump table (jumpSize bytes: a u32 ref for every first
	// two data bytes).
	jumpMin  = 1 << 16
	jumpSize = 4 << 16

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
	jump      uint64 // bytes of the jump table (0 or jumpSize)
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
	// (Leaves make most entries create no node at all.)
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
	if g.dataSize >= 2 && a.MaxEntries >= jumpMin {
		g.jump = jumpSize
	}
	return g
}

// arenaLimit caps an arena: half the machine's memory (the region is
// reserved address space, committed as it is touched) and the 16 GiB that
// u32 refs with a tag bit address.
func arenaLimit() uint64 {
	lim := physMem() / 2
	if lim == 0 || lim > maxArena {
		lim = maxArena
	}
	return lim
}

// kernelNodeSize is sizeof(struct lpm_trie_node) on 64-bit kernels (the
// 6.18 vmlinux BTF's size): two child pointers, prefixlen and flags.
const kernelNodeSize = 24

// memPerEntry is what each entry adds to the kernel's trie_mem_usage:
// sizeof(struct lpm_trie_node) + data_size (key_size - 4) + value_size.
// Intermediate nodes are not counted, only entries (n_entries).
func memPerEntry(a *mapops.Attr) uint64 {
	return kernelNodeSize + uint64(a.KeySize) - 4 + uint64(a.ValueSize)
}

// Layout sizes the region. Memlock is the kernel's trie_mem_usage of the
// new, empty map: memPerEntry × n_entries = 0 (Map.Memlock follows the
// entries).
func (family) Layout(a *mapops.Attr) (mapops.Layout, error) {
	g := geometryOf(a)
	return mapops.Layout{
		BodySize:   hdrSize + g.jump + g.arena + g.slack,
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
	if uint64(r.Len()) < region.HeaderSize+hdrSize+g.jump+g.arena+g.slack {
		return nil, uapi.ENOMEM
	}
	h := uint64(region.HeaderSize)
	locks := a.Locks
	if locks == nil {
		locks = robust.New(nil)
	}
	m := &Map{
		locks:   locks,
		r:       r,
		mem:     r.Mem(),
		g:       g,
		base:    h + hdrSize + g.jump,
		valSize: uint64(a.ValueSize),
		maxBits: uint32(8 * g.dataSize),
		max:     a.MaxEntries,
		lockW:   r.Uint32(h + hdrLock),
		seq:     r.Uint32(h + hdrSeq),
		count:   r.Uint32(h + hdrCount),
		rootOff: h + hdrRoot,
		bump:    r.Uint64(h + hdrBump),
		freeOff: h + hdrFree,
		memElem: memPerEntry(a),
	}
	if g.jump != 0 {
		m.jumpOff = h + hdrSize
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
	locks   *robust.Locker
	lockW   *uint32
	seq     *uint32
	count   *uint32
	rootOff uint64
	bump    *uint64
	freeOff uint64
	memElem uint64 // memPerEntry
	jumpOff uint64 // region offset of the jump table, 0 if none
}

// ArenaInUse is the number of region bytes the map's structure occupies:
// the lpm header, the jump table if there is one, and every arena byte
// handed out so far (blocks on the free lists included). Fresh arena pages are touched only as the bump
// pointer passes them, so this is the map's resident size beyond the
// common region header.
func (m *Map) ArenaInUse() uint64 { return hdrSize + m.g.jump + 8 + atomic.LoadUint64(m.bump) }

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

// ne reads the region's words in the machine's own byte order.
var ne = binary.NativeEndian

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
	switch {
	case c == entryClass:
		return m.g.entrySize
	case c < sparseClasses:
		return (sparseHdr + 5*uint64(classCap(c)) + 7) &^ 7
	}
	return nodeHdr + 4*uint64(classCap(c))
}

// off is ref's region offset.
func (m *Map) off(ref uint32) uint64 { return m.base + 8*uint64(ref) }

// valid reports whether a reader may dereference ref as a node or entry:
// nodes and entries lie within the arena, followed by slack for a node's
// or entry's size. A tagged (leaf) ref is never valid: the arena is below
// 8<<31 bytes.
func (m *Map) valid(ref uint32) bool { return ref != 0 && 8*uint64(ref) < m.g.arena }

// word is bit word w (0..7: prefix words, then child words) of dense node n.
func (m *Map) word(n uint32, w uint64) uint64 { return *m.mem.Uint64(m.off(n) + nodeBits + 8*w) }
func (m *Map) setWord(n uint32, w uint64, v uint64) {
	*m.mem.Uint64(m.off(n) + nodeBits + 8*w) = v
}

// A node's meta word: byte 0 the class, bytes 4..5 the number of child
// refs, bytes 6..7 the number of entry refs; in a dense node, bytes 1..3
// the number of child bits in child words 0..w-1 (w = 1..3). It lets a
// lookup find a child's slot with one popcount, and writers find the
// counts without any.
func (m *Map) meta(n uint32) uint64  { return *m.mem.Uint64(m.off(n) + nodeMeta) }
func (m *Map) class(n uint32) uint32 { return uint32(m.meta(n) & 0xff) }

// isSparse reports whether meta word mt is a sparse node's.
func isSparse(mt uint64) bool { return mt&0xff < sparseClasses }

// counts returns node n's numbers of child refs and entry refs (each at
// most 511 even in a torn read).
func (m *Map) counts(n uint32) (nc, np uint64) {
	mt := m.meta(n)
	return mt >> 32 & 0x1ff, mt >> 48 & 0x1ff
}

// setMeta recomputes dense node n's meta word from its bitsets, with class c.
func (m *Map) setMeta(n uint32, c uint32) {
	o := m.off(n)
	var np, cum int
	mt := uint64(c)
	for w := uint64(0); w < 4; w++ {
		np += bits.OnesCount64(*m.mem.Uint64(o + nodeBits + 8*w))
		if w > 0 {
			mt |= uint64(cum) << (8 * w)
		}
		cum += bits.OnesCount64(*m.mem.Uint64(o + nodeChild + 8*w))
	}
	mt |= uint64(cum)<<32 | uint64(np)<<48
	*m.mem.Uint64(o + nodeMeta) = mt
}

// refOff is the region offset of the k-th ref of node n (k masked to the
// kind's capacity, so that a torn read stays inside the node's slack).
func (m *Map) refOff(n uint32, k uint64) uint64 {
	if isSparse(m.meta(n)) {
		return m.off(n) + sparseHdr + 4*(k&7)
	}
	return m.off(n) + nodeHdr + 4*(k&511)
}

// refAt is the k-th ref of node n.
func (m *Map) refAt(n uint32, k uint64) *uint32 { return m.mem.Uint32(m.refOff(n, k)) }

// ---- sparse nodes ----
//
// A sparse node of class c lists its positions in one byte each, after
// its 2<<c refs: byte k is ref k's position, a child's byte for the first
// nc refs (position 256+byte), a local index for the np entry refs after
// them, each run ascending. The capacity is at most 8, so the position
// bytes are one word: byte k is bits 8k..8k+7 of it.

// sparsePosOff is the region offset of the position word of a sparse node
// at region offset o with meta word mt: after its 2<<class refs.
func sparsePosOff(o, mt uint64) uint64 { return o + sparseHdr + 8<<(mt&3) }

// sparsePos is the position word of a sparse node at region offset o with
// meta word mt.
func (m *Map) sparsePos(o, mt uint64) uint64 { return *m.mem.Uint64(sparsePosOff(o, mt)) }

// sparseCounts are a sparse meta word's counts, bounded by the capacity
// (a torn read can give anything).
func sparseCounts(mt uint64) (nc, total uint64) {
	nc = min(mt>>32&0x1ff, 8)
	return nc, min(nc+mt>>48&0x1ff, 8)
}

// sparseChild returns the slot of child byte b in a sparse node with
// position word pw and meta word mt, and whether it is there: a SWAR
// search of pw for byte b among the first nc bytes. The lowest byte
// flagged by the zero-byte test is exact (borrows only run upwards from a
// zero byte), and positions are distinct.
func sparseChild(pw, mt uint64, b uint32) (uint64, bool) {
	x := pw ^ uint64(b)*0x0101010101010101
	z := (x - 0x0101010101010101) &^ x & 0x8080808080808080
	k := uint64(bits.TrailingZeros64(z) >> 3)
	// z == 0 gives k = 8, which a sparse node's child count never exceeds
	// (a torn count can, and a torn read is retried: the slot read is
	// masked to the node).
	return k, k < mt>>32&0x1ff
}

// sparseSlot returns the slot of position i in sparse node n (where it is,
// or where it would be inserted) and whether i is set.
func (m *Map) sparseSlot(n uint32, mt uint64, i uint32) (uint64, bool) {
	nc, total := sparseCounts(mt)
	pw := m.sparsePos(m.off(n), mt)
	lo, hi := uint64(0), nc
	v := i - 256
	if i < 256 {
		lo, hi, v = nc, total, i
	}
	for k := lo; k < hi; k++ {
		if b := uint32(pw >> (8 * k) & 0xff); b >= v {
			return k, b == v
		}
	}
	return hi, false
}

// sparseAt is the position of slot k of a sparse node with nc child refs
// and position word pw.
func sparseAt(pw, nc, k uint64) uint32 {
	b := uint32(pw >> (8 * k) & 0xff)
	if k < nc {
		return 256 + b
	}
	return b
}

// items is a node's contents in ref order (children by byte, then entry
// positions by index), for the writers that move nodes between kinds.
// Only nodes of at most 9 refs are ever decoded: a sparse node (at most
// 8), or a dense one shrinking into a sparse block.
type items struct {
	pos [9]uint32
	ref [9]uint32
	n   int
}

// order is position i's place in ref order.
func order(i uint32) uint32 {
	if i >= 256 {
		return i - 256
	}
	return 256 + i
}

// decode reads node n's positions and refs.
func (m *Map) decode(n uint32) items {
	var it items
	mt := m.meta(n)
	if isSparse(mt) {
		nc, total := sparseCounts(mt)
		pw := m.sparsePos(m.off(n), mt)
		for k := uint64(0); k < total; k++ {
			it.pos[k], it.ref[k] = sparseAt(pw, nc, k), *m.refAt(n, k)
		}
		it.n = int(total)
		return it
	}
	for _, w := range [8]uint64{4, 5, 6, 7, 0, 1, 2, 3} {
		for x := m.word(n, w); x != 0 && it.n < len(it.pos); x &= x - 1 {
			it.pos[it.n] = uint32(w)<<6 | uint32(bits.TrailingZeros64(x))
			it.ref[it.n] = *m.refAt(n, uint64(it.n))
			it.n++
		}
	}
	return it
}

// add inserts position pos → ref in ref order.
func (it *items) add(pos, ref uint32) {
	k := 0
	for k < it.n && order(it.pos[k]) < order(pos) {
		k++
	}
	copy(it.pos[k+1:it.n+1], it.pos[k:it.n])
	copy(it.ref[k+1:it.n+1], it.ref[k:it.n])
	it.pos[k], it.ref[k] = pos, ref
	it.n++
}

// remove deletes position pos.
func (it *items) remove(pos uint32) {
	for k := 0; k < it.n; k++ {
		if it.pos[k] == pos {
			copy(it.pos[k:], it.pos[k+1:it.n])
			copy(it.ref[k:], it.ref[k+1:it.n])
			it.n--
			return
		}
	}
}

// encode writes it into block n as a node of class c (of either kind).
func (m *Map) encode(n uint32, c uint32, it *items) {
	o := m.off(n)
	var nc uint64
	for k := 0; k < it.n; k++ {
		if it.pos[k] >= 256 {
			nc++
		}
	}
	if c < sparseClasses {
		var pw uint64
		for k := 0; k < it.n; k++ {
			*m.mem.Uint32(o + sparseHdr + 4*uint64(k)) = it.ref[k]
			pw |= uint64(it.pos[k]&0xff) << (8 * k)
		}
		*m.mem.Uint64(sparsePosOff(o, uint64(c))) = pw
		*m.mem.Uint64(o + nodeMeta) = uint64(c) | nc<<32 | (uint64(it.n)-nc)<<48
		return
	}
	for w := uint64(0); w < 8; w++ {
		m.setWord(n, w, 0)
	}
	for k := 0; k < it.n; k++ {
		i := it.pos[k]
		m.setWord(n, uint64(i>>6), m.word(n, uint64(i>>6))|1<<(i&63))
		*m.mem.Uint32(o + nodeHdr + 4*uint64(k)) = it.ref[k]
	}
	m.setMeta(n, c)
}

// has reports whether position i (1..511) of node n is set.
func (m *Map) has(n uint32, i uint32) bool {
	if mt := m.meta(n); isSparse(mt) {
		_, ok := m.sparseSlot(n, mt, i)
		return ok
	}
	return m.word(n, uint64(i>>6))&(1<<(i&63)) != 0
}

// rank is the number of set positions below i in i's half of dense node n
// (prefix half for i < 256, child half otherwise).
func (m *Map) rank(n uint32, i uint32) uint64 {
	o := m.off(n) + nodeBits
	wi := uint64(i >> 6)
	r := uint64(bits.OnesCount64(*m.mem.Uint64(o + 8*wi) & (1<<(i&63) - 1)))
	if i >= 256 {
		return r + (m.meta(n)&^0xff)>>(8*(wi-4))&0xff
	}
	for w := uint64(0); w < wi; w++ {
		r += uint64(bits.OnesCount64(*m.mem.Uint64(o + 8*w)))
	}
	return r
}

// slotOf is the position of i's ref in node n's ref array (or where it
// would go): child refs first (in byte order), then entry refs (in index
// order).
func (m *Map) slotOf(n uint32, i uint32) uint64 {
	if mt := m.meta(n); isSparse(mt) {
		s, _ := m.sparseSlot(n, mt, i)
		return s
	}
	if i >= 256 {
		return m.rank(n, i)
	}
	nc, _ := m.counts(n)
	return nc + m.rank(n, i)
}

// nonEmpty reports whether node n has any set position in i's subtree.
func (m *Map) nonEmpty(n uint32, i uint32) bool {
	s := &sub[i]
	if mt := m.meta(n); isSparse(mt) {
		nc, total := sparseCounts(mt)
		pw := m.sparsePos(m.off(n), mt)
		for k := uint64(0); k < total; k++ {
			if q := sparseAt(pw, nc, k); s[q>>6]&(1<<(q&63)) != 0 {
				return true
			}
		}
		return false
	}
	o := m.off(n) + nodeBits
	for w := uint64(0); w < 8; w++ {
		if *m.mem.Uint64(o + 8*w)&s[w] != 0 {
			return true
		}
	}
	return false
}

// prefixMatch reports whether entry e's prefix (its first prefixlen bits)
// is a prefix of data limited to p bits; bytes before from are known to
// match already.
func (m *Map) prefixMatch(e uint32, data []byte, p uint32, from uint32) bool {
	o := m.off(e)
	pe := *m.mem.Uint32(o)
	if pe > p {
		return false
	}
	if pe <= 32 && m.g.dataSize >= 4 {
		// One 32-bit compare covers IPv4 and short prefixes of longer
		// keys (a shift by 32 gives 0: the empty prefix matches).
		x := binary.BigEndian.Uint32(m.mem.Bytes(o+4, 4)) ^ binary.BigEndian.Uint32(data)
		return x>>(32-pe) == 0
	}
	ed := m.mem.Bytes(o+4, m.g.dataSize)
	full := pe >> 3
	for i := from; i < full; i++ {
		if ed[i] != data[i] {
			return false
		}
	}
	if l := pe & 7; l != 0 {
		if (ed[full]^data[full])>>(8-l) != 0 {
			return false
		}
	}
	return true
}

// sameKey reports whether entry e holds exactly prefix (data, p).
func (m *Map) sameKey(e uint32, data []byte, p uint32, from uint32) bool {
	return *m.mem.Uint32(m.off(e)) == p && m.prefixMatch(e, data, p, from)
}

// ---- writer lock and sequence ----

// lock takes the writer lock (a robust word: a waiter whose holder died has
// the map repaired), returning the version to unlock with.
func (m *Map) lock() uint32 {
	if ver, ok := m.locks.TryLock(m.lockW); ok { // inlined fast path
		return ver
	}
	return m.locks.Lock(m.lockW)
}

func (m *Map) unlock(ver uint32) { m.locks.Unlock(m.lockW, ver) }

// writeLock takes the lock and makes the sequence odd (a full barrier, so
// no change below is visible before it).
func (m *Map) writeLock() uint32 {
	ver := m.lock()
	atomic.AddUint32(m.seq, 1)
	return ver
}

// writeUnlock makes the sequence even (after every change) and unlocks.
func (m *Map) writeUnlock(ver uint32) {
	region.StoreRelease32(m.seq, atomic.LoadUint32(m.seq)+1)
	m.unlock(ver)
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
// and one popcount per node); a leaf on the way is the answer if its
// prefix matches (it is longer than anything above it). Otherwise it checks
// the nodes' prefixes from the deepest up, stopping at the first (longest)
// match.
func (m *Map) find(key []byte, p uint32) (e uint32, ok bool) {
	data := key[4:]
	var stack [17]uint32
	var n, top uint32 // the node the descent starts from, and its depth
	if m.jumpOff != 0 && p >= 16 {
		// The jump table holds the ref at depth 2 for the first two bytes.
		n = atomic.LoadUint32(m.mem.Uint32(m.jumpOff + 4*(uint64(data[0])<<8|uint64(data[1]))))
		if n&leafBit != 0 {
			e = n &^ leafBit
			if !m.valid(e) {
				return 0, false
			}
			if m.prefixMatch(e, data, p, 2) {
				return e, true
			}
			return m.bestAbove(data, p)
		}
		top = 2
	}
	if n == 0 {
		if n, top = atomic.LoadUint32(m.mem.Uint32(m.rootOff)), 0; n == 0 {
			return 0, true
		}
	}
	depth := top
	for d := top; ; d++ {
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
		// m.child, inlined: the descent's hot step.
		nd := m.view(n)
		var c uint32
		if mt := ne.Uint64(nd[nodeMeta:]); isSparse(mt) {
			c = sparseChildRef(nd, mt, uint32(data[d]))
		} else {
			c = denseChildRef(nd, mt, uint32(data[d]))
		}
		if c == 0 {
			break
		}
		if c&leafBit != 0 {
			e = c &^ leafBit
			if !m.valid(e) {
				return 0, false
			}
			if m.prefixMatch(e, data, p, d+1) {
				return e, true
			}
			break
		}
		n = c
	}
	for d := int(depth); d >= int(top); d-- {
		if e = m.bestIn(stack[d], data, p, uint32(d)); e != 0 {
			return e, m.valid(e)
		}
	}
	if top != 0 {
		return m.bestAbove(data, p)
	}
	return 0, true
}

// bestAbove is the end of a lookup that started at depth 2 from the jump
// table and found no match there or below: the longest match in the node
// at depth 1 on data's path, else in the root.
func (m *Map) bestAbove(data []byte, p uint32) (e uint32, ok bool) {
	root := atomic.LoadUint32(m.mem.Uint32(m.rootOff))
	if root == 0 {
		return 0, true
	}
	if !m.valid(root) {
		return 0, false
	}
	if c := m.child(root, uint32(data[0])); c != 0 && c&leafBit == 0 {
		if !m.valid(c) {
			return 0, false
		}
		if e = m.bestIn(c, data, p, 1); e != 0 {
			return e, m.valid(e)
		}
	}
	if e = m.bestIn(root, data, p, 0); e != 0 {
		return e, m.valid(e)
	}
	return 0, true
}

// child returns node n's ref for child byte b (a node, or a tagged leaf),
// 0 if it has none: one bit test and one popcount (dense), or one SWAR
// compare (sparse), all within the node's view.
func (m *Map) child(n, b uint32) uint32 {
	nd := m.view(n)
	if mt := ne.Uint64(nd[nodeMeta:]); isSparse(mt) {
		return sparseChildRef(nd, mt, b)
	} else {
		return denseChildRef(nd, mt, b)
	}
}

// sparseChildRef is child for a sparse node's view nd and meta word mt.
func sparseChildRef(nd *[maxNodeSize]byte, mt uint64, b uint32) uint32 {
	if k, ok := sparseChild(ne.Uint64(nd[sparseHdr+8<<(mt&3):]), mt, b); ok {
		return ne.Uint32(nd[sparseHdr+4*(k&7):])
	}
	return 0
}

// denseChildRef is child for a dense node's view nd and meta word mt.
func denseChildRef(nd *[maxNodeSize]byte, mt uint64, b uint32) uint32 {
	w := b >> 6 & 3
	cw := ne.Uint64(nd[nodeChild+8*w:])
	if cw&(1<<(b&63)) == 0 {
		return 0
	}
	r := (mt&^0xff)>>(8*w)&0xff + uint64(bits.OnesCount64(cw&(1<<(b&63)-1)))
	return ne.Uint32(nd[nodeHdr+4*(r&511):])
}

// view is the bytes of node n and of what follows it up to the largest
// node's size (the arena's slack keeps them inside the region): one bounds
// check for all of a reader's accesses to the node, each at an offset
// masked into the node's kind.
func (m *Map) view(n uint32) *[maxNodeSize]byte {
	o := m.base + 8*uint64(n)
	return (*[maxNodeSize]byte)(m.mem[o : o+maxNodeSize])
}

// bestIn returns the ref of the entry with the longest prefix in node n
// (at depth d) that matches data limited to p bits, or 0.
func (m *Map) bestIn(n uint32, data []byte, p, d uint32) uint32 {
	var idx uint32
	if rem := p - 8*d; rem >= 8 {
		idx = 128 | uint32(data[d])>>1
	} else {
		idx = localIndex(data[d:], rem)
	}
	a := &anc[idx&255]
	nd := m.view(n)
	mt := ne.Uint64(nd[nodeMeta:])
	if isSparse(mt) {
		// Entry positions ascend, and a longer prefix has a larger index.
		nc, total := sparseCounts(mt)
		pw := ne.Uint64(nd[sparseHdr+8<<(mt&3):])
		for k := total; k > nc; k-- {
			if q := uint32(pw >> (8 * (k - 1)) & 0xff); a[q>>6]&(1<<(q&63)) != 0 {
				return ne.Uint32(nd[sparseHdr+4*((k-1)&7):])
			}
		}
		return 0
	}
	pb := [4]uint64{ne.Uint64(nd[nodeBits:]), ne.Uint64(nd[nodeBits+8:]), ne.Uint64(nd[nodeBits+16:]), ne.Uint64(nd[nodeBits+24:])}
	for w := 3; w >= 0; w-- {
		if x := pb[w] & a[w]; x != 0 {
			// The entry's slot: the child refs, the entries in the words
			// below, then those below it in its word.
			i := uint64(63 - bits.LeadingZeros64(x))
			r := mt>>32&0x1ff + uint64(bits.OnesCount64(pb[w]&(1<<i-1)))
			for v := 0; v < w; v++ {
				r += uint64(bits.OnesCount64(pb[v]))
			}
			return ne.Uint32(nd[nodeHdr+4*(r&511):])
		}
	}
	return 0
}

// findForward is find for paths deeper than find's stack: it keeps the
// best match while descending.
func (m *Map) findForward(key []byte, p uint32) (e uint32, ok bool) {
	n := atomic.LoadUint32(m.mem.Uint32(m.rootOff))
	data := key[4:]
	var best uint32
	for d := uint32(0); ; d++ {
		if !m.valid(n) {
			return 0, false
		}
		if b := m.bestIn(n, data, p, d); b != 0 {
			best = b
		}
		if p-8*d < 8 {
			break
		}
		ci := 256 + uint32(data[d])
		if !m.has(n, ci) {
			break
		}
		c := *m.refAt(n, m.slotOf(n, ci))
		if c&leafBit != 0 {
			e = c &^ leafBit
			if !m.valid(e) {
				return 0, false
			}
			if m.prefixMatch(e, data, p, d+1) {
				return e, true
			}
			break
		}
		n = c
	}
	if best == 0 {
		return 0, true
	}
	return best, m.valid(best)
}

// exact looks for the stored prefix (key's data, p) along its path,
// recording the nodes in stack[0..k]. It returns the depth k and position
// pos (a local index at depth p/8, or the child position of a leaf) where
// the entry is, and whether it was found. Readers only; refs are checked.
func (m *Map) exact(key []byte, p uint32, stack []uint32) (k, pos uint32, found, ok bool) {
	n := atomic.LoadUint32(m.mem.Uint32(m.rootOff))
	if n == 0 {
		return 0, 0, false, true
	}
	data := key[4:]
	d := p >> 3
	for k = 0; ; k++ {
		if !m.valid(n) {
			return 0, 0, false, false
		}
		stack[k] = n
		if k == d {
			pos = localIndex(data[d:], p&7)
			return k, pos, m.has(n, pos), true
		}
		pos = 256 + uint32(data[k])
		if !m.has(n, pos) {
			return 0, 0, false, true
		}
		c := *m.refAt(n, m.slotOf(n, pos))
		if c&leafBit != 0 {
			e := c &^ leafBit
			if !m.valid(e) {
				return 0, 0, false, false
			}
			return k, pos, m.sameKey(e, data, p, k+1), true
		}
		n = c
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
			c := *m.refAt(n, m.slotOf(n, i))
			if c&leafBit != 0 {
				e = c &^ leafBit
				return e, m.valid(e)
			}
			n = c
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
			k, pos, found, ok := m.exact(key, p, stack)
			if !ok {
				return 0, false
			}
			if found {
				return m.successor(key[4:], k, pos, stack)
			}
		}
	}
	return m.first(root, 1, 0)
}

// successor climbs from position i of node stack[k] (the position of a
// stored prefix on data's path).
func (m *Map) successor(data []byte, k, i uint32, stack []uint32) (e uint32, ok bool) {
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
	if s := atomic.LoadUint32(m.seq); s&1 == 0 && m.valSize == 8 {
		// The common case in one attempt: an 8-byte value held in a
		// register until the sequence confirms it.
		if e, ok := m.find(key, p); ok {
			var v uint64
			if e != 0 {
				v = *m.mem.Uint64(m.off(e) + m.g.valOff)
			}
			if m.readValid(s) {
				if e == 0 {
					return uapi.ENOENT
				}
				ne.PutUint64(value, v)
				return nil
			}
		}
	}
	return m.lookupRetry(key, value, p)
}

// lookupRetry is Lookup's general case: any value size, and retries while
// writers change the map.
func (m *Map) lookupRetry(key, value []byte, p uint32) error {
	out := value[:m.valSize]
	for range readRetries {
		s, ok := m.readBegin()
		if !ok {
			continue
		}
		e, ok := m.find(key, p)
		if ok && e != 0 {
			if m.valSize == 8 {
				binary.NativeEndian.PutUint64(out, *m.mem.Uint64(m.off(e) + m.g.valOff))
			} else {
				copy(out, m.mem.Bytes(m.off(e)+m.g.valOff, m.valSize))
			}
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
	ver := m.lock()
	defer m.unlock(ver)
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
	ver := m.lock()
	defer m.unlock(ver)
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

// crashHook, when set (by tests), is called at every point of a write where
// a killed writer leaves a distinct state; a hook that panics simulates the
// kill there.
var crashHook func()

func crashPoint() {
	if crashHook != nil {
		crashHook()
	}
}

// newPath returns room for a path to depth d, in buf when it fits.
func newPath(buf []pathElem, d uint32) []pathElem {
	if int(d) < len(buf) {
		return buf
	}
	return make([]pathElem, d+1)
}

// posAt is where an entry of prefix (data, p) sits in a node at depth t on
// its path (t ≤ p/8): its local index at depth p/8, else the child
// position of its next byte.
func posAt(data []byte, p, t uint32) uint32 {
	if p>>3 == t {
		return localIndex(data, p)
	}
	return 256 + uint32(data[t])
}

// refFor is the ref to entry e stored at position pos (tagged in a child
// position).
func refFor(e, pos uint32) uint32 {
	if pos >= 256 {
		return e | leafBit
	}
	return e
}

// locate walks key's path for writers. It records the nodes in path[0..k]
// (k = -1: no root) and returns the position pos in node k where the
// prefix (data, p) is or would go, the entry holding exactly that prefix
// (0 if none), and leafSlot, the region offset of a leaf ref in pos whose
// entry is a different prefix (0 if none) and must move down a level.
func (m *Map) locate(path []pathElem, data []byte, p uint32) (k int, pos, old uint32, leafSlot uint64) {
	slot := m.rootOff
	n := *m.mem.Uint32(slot)
	if n == 0 {
		return -1, 0, 0, 0
	}
	d := int(p >> 3)
	for k = 0; ; k++ {
		path[k] = pathElem{n, slot}
		if k == d {
			pos = localIndex(data, p)
			if m.has(n, pos) {
				old = *m.refAt(n, m.slotOf(n, pos))
			}
			return k, pos, old, 0
		}
		pos = 256 + uint32(data[k])
		if !m.has(n, pos) {
			return k, pos, 0, 0
		}
		slot = m.refOff(n, m.slotOf(n, pos))
		c := *m.mem.Uint32(slot)
		if c&leafBit != 0 {
			e := c &^ leafBit
			if m.sameKey(e, data, p, uint32(k)+1) {
				return k, pos, e, 0
			}
			return k, pos, 0, slot
		}
		n = c
	}
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
	var pathBuf [17]pathElem
	path := newPath(pathBuf[:], p>>3)
	ver := m.writeLock()
	defer m.writeUnlock(ver)
	k, pos, old, leafSlot := m.locate(path, data, p)
	d1 := depth1(path, k)
	if old != 0 {
		if flags == uapi.NoExist {
			return uapi.EEXIST
		}
		if m.replaceWord(old, key, value) {
			return nil
		}
		// Replace by a new entry (never rewrite a reachable one).
		e := m.alloc(entryClass)
		if e == 0 {
			return uapi.ENOMEM
		}
		m.fill(e, key, value)
		crashPoint()
		n := path[k].ref
		region.StoreRelease32(m.refAt(n, m.slotOf(n, pos)), refFor(e, pos))
		crashPoint()
		m.syncJump(data, p, d1)
		m.free(entryClass, old)
		return nil
	}
	if flags == uapi.Exist {
		return uapi.ENOENT
	}
	if *m.count >= m.max {
		return uapi.ENOSPC
	}
	// Count the nodes needed and allocate everything first, so that ENOMEM
	// changes nothing: a root; or the chain of nodes that separates a leaf
	// from the new prefix (one per byte they still share, plus the one
	// where they part); or the block node k is copied into (a larger one
	// when it is full).
	var chainBuf [33]uint32
	chain := chainBuf[:0]
	var lk []byte // the pushed-down leaf's data
	var lp uint32 // and prefixlen
	var le uint32 // and entry
	need := 0
	switch {
	case k < 0:
		need = 1
	case leafSlot != 0:
		le = *m.mem.Uint32(leafSlot) &^ leafBit
		lp = *m.mem.Uint32(m.off(le))
		lk = m.mem.Bytes(m.off(le)+4, m.g.dataSize)
		for t := uint32(k) + 1; ; t++ {
			need++
			if posAt(data, p, t) != posAt(lk, lp, t) {
				break
			}
		}
	}
	e := m.alloc(entryClass)
	ok := e != 0
	for ; ok && need > 0; need-- {
		c := m.alloc(0)
		ok = c != 0
		chain = append(chain, c)
	}
	var grown, growClass uint32
	if ok && k >= 0 && leafSlot == 0 {
		n := path[k].ref
		nc, np := m.counts(n)
		growClass = m.class(n)
		if nc+np+1 > uint64(classCap(growClass)) {
			growClass++
		}
		grown = m.alloc(growClass)
		ok = grown != 0
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
	crashPoint()
	switch {
	case k < 0:
		pos = posAt(data, p, 0)
		m.initNode(chain[0], pos, refFor(e, pos))
		region.StoreRelease32(m.mem.Uint32(m.rootOff), chain[0])
	case leafSlot != 0:
		// Build the chain bottom-up, then link it in place of the leaf.
		last := uint32(k) + uint32(len(chain))
		pk, pl := posAt(data, p, last), posAt(lk, lp, last)
		c := chain[len(chain)-1]
		m.initNode(c, pk, refFor(e, pk))
		m.put(c, pl, refFor(le, pl))
		for j := len(chain) - 2; j >= 0; j-- {
			t := uint32(k) + 1 + uint32(j)
			m.initNode(chain[j], 256+uint32(data[t]), chain[j+1])
		}
		region.StoreRelease32(m.mem.Uint32(leafSlot), chain[0])
	default:
		m.insert(path, k, pos, refFor(e, pos), grown, growClass)
	}
	crashPoint()
	m.syncJump(data, p, d1)
	*m.count++
	return nil
}

// replaceWord replaces entry e's value in place when that is one store: a
// value of 4 or 8 bytes and a key equal to the stored one (host bits too).
func (m *Map) replaceWord(e uint32, key, value []byte) bool {
	o := m.off(e)
	if m.valSize != 8 && m.valSize != 4 || string(m.mem.Bytes(o, m.g.keySize)) != string(key) {
		return false
	}
	if m.valSize == 8 {
		region.StoreRelease64(m.mem.Uint64(o+m.g.valOff), binary.NativeEndian.Uint64(value))
	} else {
		region.StoreRelease32(m.mem.Uint32(o+m.g.valOff), binary.NativeEndian.Uint32(value))
	}
	return true
}

// fill writes key (verbatim) and value into entry e.
func (m *Map) fill(e uint32, key, value []byte) {
	o := m.off(e)
	copy(m.mem.Bytes(o, m.g.keySize), key)
	copy(m.mem.Bytes(o+m.g.valOff, m.valSize), value)
}

// initNode makes block c a class-0 (sparse) node holding only position
// pos → ref.
func (m *Map) initNode(c uint32, pos uint32, ref uint32) {
	it := items{n: 1}
	it.pos[0], it.ref[0] = pos, ref
	m.encode(c, 0, &it)
}

// put sets position pos → ref in node n, which is unreachable and has room
// for one more ref.
func (m *Map) put(n uint32, pos uint32, ref uint32) {
	it := m.decode(n)
	it.add(pos, ref)
	m.encode(n, m.class(n), &it)
}

// insert sets position pos → ref in path node j by copying the node with
// the new ref into block grown (of class growClass) and publishing the copy
// in the node's slot.
func (m *Map) insert(path []pathElem, j int, pos uint32, ref uint32, grown, growClass uint32) {
	n, slot := path[j].ref, path[j].slot
	if isSparse(m.meta(n)) {
		it := m.decode(n)
		it.add(pos, ref)
		m.encode(grown, growClass, &it)
	} else {
		nc, np := m.counts(n)
		total := nc + np
		s := m.slotOf(n, pos)
		src, dst := m.off(n), m.off(grown)
		copy(m.mem.Bytes(dst, nodeHdr), m.mem.Bytes(src, nodeHdr))
		copy(m.mem.Bytes(dst+nodeHdr, 4*s), m.mem.Bytes(src+nodeHdr, 4*s))
		*m.mem.Uint32(dst + nodeHdr + 4*s) = ref
		copy(m.mem.Bytes(dst+nodeHdr+4*(s+1), 4*(total-s)), m.mem.Bytes(src+nodeHdr+4*s, 4*(total-s)))
		m.setWord(grown, uint64(pos>>6), m.word(grown, uint64(pos>>6))|1<<(pos&63))
		m.setMeta(grown, growClass)
	}
	region.StoreRelease32(m.mem.Uint32(slot), grown)
	crashPoint()
	path[j].ref = grown
	m.free(m.class(n), n)
}

// without copies node n (which has at least two refs) without position
// pos into a new block and returns it, 0 if no block is free. A node left a
// quarter full moves to a smaller class when a block of it is available;
// otherwise the copy takes a block of n's class, or of a larger one.
func (m *Map) without(n uint32, pos uint32) uint32 {
	nc, np := m.counts(n)
	total := nc + np
	c := m.class(n)
	left := uint32(total - 1)
	var dst, dc uint32
	if c > 0 && left <= classCap(c)/4 {
		dc = classFor(left)
		dst = m.alloc(dc)
	}
	if dst == 0 {
		dc = c
		dst = m.alloc(dc)
	}
	for dst == 0 {
		if dc++; dc == nodeClasses {
			return 0
		}
		if *m.freeHead(dc) != 0 {
			dst = m.alloc(dc)
		}
	}
	if c < sparseClasses || dc < sparseClasses {
		it := m.decode(n)
		it.remove(pos)
		m.encode(dst, dc, &it)
		return dst
	}
	s := m.slotOf(n, pos)
	src, do := m.off(n), m.off(dst)
	copy(m.mem.Bytes(do, nodeHdr), m.mem.Bytes(src, nodeHdr))
	m.setWord(dst, uint64(pos>>6), m.word(dst, uint64(pos>>6))&^(1<<(pos&63)))
	copy(m.mem.Bytes(do+nodeHdr, 4*s), m.mem.Bytes(src+nodeHdr, 4*s))
	copy(m.mem.Bytes(do+nodeHdr+4*s, 4*(total-s-1)), m.mem.Bytes(src+nodeHdr+4*(s+1), 4*(total-s-1)))
	m.setMeta(dst, dc)
	return dst
}

// removeInPlace clears position pos of node n (which keeps at least one
// ref) in place: a delete's fallback when the arena has no block for a copy
// (not crash-atomic; see Crash safety).
func (m *Map) removeInPlace(n uint32, pos uint32) {
	if c := m.class(n); c < sparseClasses {
		it := m.decode(n)
		it.remove(pos)
		m.encode(n, c, &it)
		return
	}
	nc, np := m.counts(n)
	total := nc + np
	s := m.slotOf(n, pos)
	m.setWord(n, uint64(pos>>6), m.word(n, uint64(pos>>6))&^(1<<(pos&63)))
	o := m.off(n) + nodeHdr
	copy(m.mem.Bytes(o+4*s, 4*(total-s-1)), m.mem.Bytes(o+4*(s+1), 4*(total-s-1)))
	m.setMeta(n, m.class(n))
}

// lone returns the leaf ref that can stand for node n once position pos
// is removed: when one ref is left and it is an entry or a leaf (a single
// child node stays a node).
func (m *Map) lone(n uint32, pos uint32) (leaf uint32, ok bool) {
	nc, np := m.counts(n)
	if nc+np != 2 {
		return 0, false
	}
	it := m.decode(n)
	it.remove(pos)
	rest, r := it.pos[0], it.ref[0] // the other position and its ref
	if rest < 256 {
		return r | leafBit, true
	}
	return r, r&leafBit != 0
}

// Delete removes the entry for key's exact prefix. Nodes left empty are
// freed; a node (other than the root) left holding a single entry becomes
// a leaf in its parent, so that every leaf stands for a subtree of one
// entry and lookups meet as few nodes as the entries need.
func (m *Map) Delete(key []byte) error {
	p := binary.NativeEndian.Uint32(key)
	if p > m.maxBits {
		return uapi.EINVAL
	}
	data := key[4:m.g.keySize]
	var pathBuf [17]pathElem
	path := newPath(pathBuf[:], p>>3)
	ver := m.writeLock()
	defer m.writeUnlock(ver)
	k, pos, old, _ := m.locate(path, data, p)
	if old == 0 {
		return uapi.ENOENT
	}
	d1 := depth1(path, k)
	// The highest node on the path that keeps refs: the nodes below it
	// hold nothing but the way to the deleted entry.
	j, q := k, pos
	for j >= 0 {
		if nc, np := m.counts(path[j].ref); nc+np > 1 {
			break
		}
		j--
		if j >= 0 {
			q = 256 + uint32(data[j])
		}
	}
	// Publish the change with one store; gone is the first path node it
	// makes unreachable (with every node below it).
	gone := j + 1
	if j < 0 {
		region.StoreRelease32(m.mem.Uint32(m.rootOff), 0)
		gone = 0
	} else if leaf, ok := m.lone(path[j].ref, q); ok && j > 0 {
		// Node j turns into a leaf in its parent, and so does every
		// ancestor below the root left holding only that leaf.
		t := j
		for t > 1 {
			if nc, np := m.counts(path[t-1].ref); nc+np != 1 {
				break
			}
			t--
		}
		region.StoreRelease32(m.mem.Uint32(path[t].slot), leaf)
		gone = t
	} else if dst := m.without(path[j].ref, q); dst != 0 {
		crashPoint()
		region.StoreRelease32(m.mem.Uint32(path[j].slot), dst)
		gone = j
	} else {
		m.removeInPlace(path[j].ref, q)
	}
	crashPoint()
	m.syncJump(data, p, d1)
	*m.count--
	crashPoint()
	m.free(entryClass, old)
	for i := gone; i <= k; i++ {
		crashPoint()
		n := path[i].ref
		m.free(m.class(n), n)
	}
	return nil
}

// ---- the jump table ----
//
// A map with at least two data bytes and max_entries ≥ jumpMin keeps a
// jump table of 65536 refs, one per value x<<8|y of the first two data
// bytes: the ref (a node, or a tagged leaf) that the node at depth 1 on
// that path, reached from the root by x, holds for child byte y; 0 when
// there is no such node or child. Lookups of prefixes of 16 bits or more
// start there, at depth 2, and look at the two nodes above only when
// nothing matches from depth 2 down (bestAbove): most lookups of a large
// trie skip the root and a node at depth 1. Writers keep the table exact
// under the writer lock (syncJump), after publishing a change and before
// the sequence turns even; Repair rebuilds it.

// depth1 is the node at depth 1 on a writer's path (path[0..k]), 0 if the
// path ends at the root.
func depth1(path []pathElem, k int) uint32 {
	if k < 1 {
		return 0
	}
	return path[1].ref
}

// syncJump restores the jump table after a change to the entry of prefix
// (data, p); d1 was the node at depth 1 on data's path before it (0 if
// none). Prefixes shorter than 8 bits live in the root and change no ref
// below it. Otherwise a change rewrites only the refs on its own path: the
// row for x = data[0] changes at y = data[1] alone, unless the node at
// depth 1 appeared (a leaf pushed down: a fresh node of at most two refs)
// or disappeared (folded into a leaf, or removed).
func (m *Map) syncJump(data []byte, p uint32, d1 uint32) {
	if m.jumpOff == 0 || p < 8 {
		return
	}
	x := uint32(data[0])
	row := m.mem.Words(m.jumpOff+4*256*uint64(x), 256)
	now := m.depth1Now(x)
	switch {
	case now == 0 && d1 != 0:
		for y := range row {
			region.StoreRelease32(&row[y], 0)
		}
	case now != 0 && d1 == 0:
		m.fillRow(row, now)
	case now != 0:
		region.StoreRelease32(&row[data[1]], m.child(now, uint32(data[1])))
	}
}

// fillRow sets row (zero) to node n's children.
func (m *Map) fillRow(row []uint32, n uint32) {
	if nc, np := m.counts(n); nc+np <= uint64(len(items{}.pos)) {
		it := m.decode(n)
		for i := 0; i < it.n; i++ {
			if pos := it.pos[i]; pos >= 256 {
				region.StoreRelease32(&row[pos-256], it.ref[i])
			}
		}
		return
	}
	for y := range row {
		region.StoreRelease32(&row[y], m.child(n, uint32(y)))
	}
}

// depth1Now is the node the root holds for child byte x, 0 if none.
func (m *Map) depth1Now(x uint32) uint32 {
	root := *m.mem.Uint32(m.rootOff)
	if !m.valid(root) {
		return 0
	}
	if c := m.child(root, x); m.valid(c) {
		return c
	}
	return 0
}

// Count is the number of entries.
func (m *Map) Count() uint32 { return atomic.LoadUint32(m.count) }

// Memlock is the kernel's memory-usage figure (trie_mem_usage) for the map
// as it is now: memPerEntry for each entry.
func (m *Map) Memlock() uint64 { return m.memElem * uint64(m.Count()) }

// Close releases nothing beyond the region, which the command layer frees
// whole: deleting a map of any size is O(1) here.
func (m *Map) Close() error { return nil }
