// Package hash implements BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_PERCPU_HASH,
// BPF_MAP_TYPE_LRU_HASH and BPF_MAP_TYPE_LRU_PERCPU_HASH over a flat region, with the kernel's observable structure: jhash/jhash2 with
// the map's seed, roundup_pow_of_two(max_entries) buckets, singly linked
// chains with head insertion, an update that moves a key to the front of its
// chain (in place for per-CPU maps), and an element count that is exact.
//
// # Concurrency
//
// Writers take a per-bucket spin lock. Readers take no lock and never wait:
// every element carries a sequence word that is even while the element is
// live and odd while it is free or being rewritten. A published element is
// never modified (an update publishes a new element and unlinks the old one),
// so a reader that finds its key, copies the value and sees the same even
// sequence afterwards has a value that some update wrote in full. A reader
// that meets a changed or odd sequence restarts from the bucket head. Chain
// ends are "nulls" markers naming their bucket, as in the kernel, so a reader
// that wandered into another chain through a recycled element notices and
// restarts instead of reporting a missing key.
//
// A reader that reaches the end of its chain without the key also checks
// that no writer held or took the bucket's lock meanwhile (the lock word
// carries a version that every unlock advances); otherwise it retries. An
// update publishes the new element at the head before it unlinks the old
// one, so a reader already past the head could otherwise miss a key that is
// in the map the whole time (the kernel's RCU readers can). After a few
// retries against a bucket that writers never leave alone, the reader takes
// the lock once to answer.
//
// Values of at most 8 bytes (the value area is one aligned word) are read
// with one atomic load; an update of a key that stays where it is in its
// chain (the chain's head, or any position for per-CPU maps) then stores the
// new value with one atomic store instead of publishing a new element. A
// reader sees the old value or the new one, never a mix.
//
// # Layout
//
//	header (region.HeaderSize) | hash header (192) | slots | overflow elements
//
// Slot b is bucket b's header {lock u32, head u32} followed by bucket b's
// home element, so a lookup whose key sits in its home element touches one
// cache line where a separate bucket array and element pool would touch
// two. An element is {seq u32, next u32, hash u32, key, pad to 8, value
// area}; the value area is round_up(value,8) bytes, or that times the
// possible CPUs for per-CPU maps. Elements that find their home taken come
// from the overflow pool of max_entries + spares elements (laid out as slots
// whose bucket header is unused, so an element's offset is one multiply
// away from its reference), so any chain shape fits.
//
// References are element index + 1, home elements first (ref b+1 is bucket
// b's home); 0 is an empty bucket; a reference with bit 31 set is the end
// of bucket (ref &^ bit31)'s chain. Bit 1 of a bucket's lock word says its
// home element is in use. Free overflow elements form a lock-free stack
// through their next words; overflow elements never used come from a bump
// counter, so creating a map touches no page until it is used. All-zero
// bytes are the valid empty map.
//
// # LRU maps
//
// LRU maps share the table, the element layout and the lock-free readers,
// but not the allocation: their elements are exactly the LRU's max_entries
// nodes (after BPF_F_NO_COMMON_LRU's rounding), each the home element of
// some slot, with no overflow pool. Which slots are nodes is the LRU's
// choice (lru.go): a key's element goes to its own bucket's slot when that
// slot is free, else, where two 32-byte slots share a cache line, to the
// other slot of the line (its mate) when that is free, so nearly all
// lookups read one cache line. The LRU's records, one per slot, follow the
// slots. An update obtains a node from the LRU first — which may evict,
// taking the LRU locks and one victim bucket lock at a time — and only then
// takes its key's bucket lock and applies BPF_NOEXIST/BPF_EXIST, as the
// kernel does; a node freed by a delete or a failed update goes back to the
// LRU after the bucket lock is dropped. LRU_PERCPU_HASH updates a key in
// place: a one-word value with one atomic store, a larger one with the
// element's sequence word odd meanwhile, so readers retry instead of seeing
// a torn value.
//
// # Processes that die
//
// Lock words are internal/robust lock words that name their holder. A
// waiter that finds one held by a dead process has the map repaired
// (Repair, repair.go): the chains, count, home flags and free stack are
// rebuilt from what is reachable, and for LRU maps the LRU lists from the
// chains and from the nodes in flight that live processes hold (lru.go).
package hash

import (
	"bytes"
	"encoding/binary"
	"runtime"
	"sync/atomic"

	"github.com/bpfmap/bpfmap/internal/jhash"
	"github.com/bpfmap/bpfmap/internal/mapops"
	"github.com/bpfmap/bpfmap/internal/region"
	"github.com/bpfmap/bpfmap/internal/robust"
	"github.com/bpfmap/bpfmap/internal/uapi"
)

// Family creates HASH, PERCPU_HASH, LRU_HASH and LRU_PERCPU_HASH maps.
var Family mapops.Family = family{}

type family struct{}

const (
	nullsBit = 1 << 31

	// Offsets inside the hash header, which starts at region.HeaderSize.
	hdrCount = 0   // u32, element count (own cache line)
	hdrFree  = 64  // u64, free stack head: low 32 bits ref, high 32 bits ABA tag
	hdrFresh = 128 // u32, elements handed out by the bump allocator
	hdrSize  = 192

	// spares are elements beyond max_entries, so an update that replaces a
	// key in a full map has an element to publish before it frees the old.
	spares = 64

	// elemHdr is {seq, next, hash}.
	elemHdr = 12

	// kernelElemHdr is sizeof(struct htab_elem) on 64-bit kernels, which
	// bounds key+value (E2BIG) and enters the memlock figure.
	kernelElemHdr = 48
	// kernelHtabSize is sizeof(struct bpf_htab) on 64-bit 6.18 kernels (the
	// vmlinux BTF's size), the fixed part of htab_map_mem_usage.
	kernelHtabSize = 832
	// kernelBucketSize is sizeof(struct bucket): a nulls list head and the
	// bucket's lock.
	kernelBucketSize = 16
	// kernelLockCount is HASHTAB_MAP_LOCK_COUNT: htab_map_mem_usage still
	// counts that many ints per possible CPU.
	kernelLockCount = 8
	// kernelLlistNode is sizeof(struct llist_node), which
	// htab_map_mem_usage adds per element of a map without preallocation
	// (twice for per-CPU maps, with the per-CPU pointer).
	kernelLlistNode = 8
)

// createMask is the set of map_flags a hash map accepts (HTAB_CREATE_FLAG_MASK).
const createMask = uapi.FNoPrealloc | uapi.FNoCommonLRU | uapi.FNumaNode |
	uapi.FAllAccessFlags | uapi.FZeroSeed

func percpu(t uapi.MapType) bool {
	return t == uapi.MapTypePercpuHash || t == uapi.MapTypeLRUPercpuHash
}

func lru(t uapi.MapType) bool {
	return t == uapi.MapTypeLRUHash || t == uapi.MapTypeLRUPercpuHash
}

// Check is the kernel's htab_map_alloc_check followed by the size checks of
// htab_map_alloc, in the kernel's order.
func (family) Check(a *mapops.Attr) error {
	pc := percpu(a.Type)
	if a.Flags&uapi.FZeroSeed != 0 && !a.SysAdmin {
		return uapi.EPERM
	}
	if a.Flags&^createMask != 0 || mapops.CheckProgAccess(a.Flags) != nil {
		return uapi.EINVAL
	}
	if !lru(a.Type) && a.Flags&uapi.FNoCommonLRU != 0 {
		return uapi.EINVAL
	}
	if lru(a.Type) && a.Flags&uapi.FNoPrealloc != 0 {
		return uapi.ENOTSUPP
	}
	if mapops.HasNumaNode(a) && (pc || a.Flags&uapi.FNoCommonLRU != 0) {
		return uapi.EINVAL
	}
	if a.MaxEntries == 0 || a.KeySize == 0 || a.ValueSize == 0 {
		return uapi.EINVAL
	}
	if uint64(a.KeySize)+uint64(a.ValueSize) >= uapi.KmallocMaxSize-kernelElemHdr {
		return uapi.E2BIG
	}
	if pc && mapops.RoundUp8(a.ValueSize) > uapi.PcpuMinUnit {
		return uapi.E2BIG
	}
	return nil
}

// geometry is the derived shape of a hash map.
type geometry struct {
	nBuckets uint32
	keyOff   uint64 // key offset inside an element
	valOff   uint64 // value offset inside an element
	valArea  uint64 // bytes of value area
	elemSize uint64
	slotSize uint64 // bucket header + home element
	pool     uint64 // overflow elements
	slotOff  uint64 // region offset of slot 0
	overOff  uint64 // region offset of overflow element 0
	maxEnt   uint32 // max_entries after the NO_COMMON_LRU rounding
	lruOff   uint64 // region offset of the LRU area (LRU maps)
	lruSize  uint64 // bytes of the LRU area
}

// effectiveMax is max_entries after BPF_F_NO_COMMON_LRU's rounding up to a
// multiple of the possible CPUs (down if rounding up overflows u32).
func effectiveMax(a *mapops.Attr) uint32 {
	if !lru(a.Type) || a.Flags&uapi.FNoCommonLRU == 0 {
		return a.MaxEntries
	}
	n := uint64(a.PossibleCPUs)
	up := (uint64(a.MaxEntries) + n - 1) / n * n
	if up > 1<<32-1 {
		return uint32(uint64(a.MaxEntries) / n * n)
	}
	return uint32(up)
}

func geometryOf(a *mapops.Attr) (geometry, error) {
	var g geometry
	g.maxEnt = effectiveMax(a)
	if g.maxEnt > 1<<31 {
		return g, uapi.E2BIG
	}
	nb := mapops.RoundUpPow2(g.maxEnt)
	if nb > (1<<32-1)/16 { // the kernel's bucket-array overflow check
		return g, uapi.E2BIG
	}
	g.nBuckets = uint32(nb)
	g.keyOff = elemHdr
	g.valOff = (elemHdr + uint64(a.KeySize) + 7) &^ 7
	g.valArea = mapops.RoundUp8(a.ValueSize)
	if percpu(a.Type) {
		g.valArea *= uint64(a.PossibleCPUs)
	}
	g.elemSize = g.valOff + g.valArea
	g.slotSize = 8 + g.elemSize
	g.pool = uint64(a.MaxEntries) + spares
	if lru(a.Type) {
		// LRU maps' elements are the LRU's max_entries nodes, which are
		// home elements of slots (any slot's; lru.go), whatever bucket
		// their key hashes to. There is no overflow pool.
		g.pool = 0
	}
	g.slotOff = region.HeaderSize + hdrSize
	g.overOff = g.slotOff + nb*g.slotSize
	if lru(a.Type) {
		g.lruOff = (g.overOff + 63) &^ 63
		g.lruSize = lruAreaSize(uint32(nb), a)
	}
	return g, nil
}

// Layout sizes the region and reports the kernel's memlock figure for the
// new map (for a map without preallocation, the empty map's: Map.Memlock
// follows its elements).
func (family) Layout(a *mapops.Attr) (mapops.Layout, error) {
	g, err := geometryOf(a)
	if err != nil {
		return mapops.Layout{}, err
	}
	body := g.overOff - region.HeaderSize + g.pool*g.slotSize
	if lru(a.Type) {
		body = g.lruOff + g.lruSize - region.HeaderSize
	}
	return mapops.Layout{
		BodySize:   body,
		MaxEntries: g.maxEnt,
		Memlock:    memUsage(a, g, 0),
	}, nil
}

// extraElems reports whether the kernel preallocates one extra element per
// possible CPU for in-place replacement (htab_has_extra_elems): HASH maps
// only, not per-CPU, LRU or HASH_OF_MAPS ones.
func extraElems(t uapi.MapType) bool {
	return !percpu(t) && !lru(t) && t != uapi.MapTypeHashOfMaps
}

// memUsage is the kernel's htab_map_mem_usage for a map of shape a (g its
// geometry) holding live elements; live counts only for maps without
// preallocation, whose figure follows the elements the kernel allocated.
// Every per-CPU factor is the map's modelled possible CPUs.
func memUsage(a *mapops.Attr, g geometry, live uint64) uint64 {
	ncpu := uint64(a.PossibleCPUs) // num_possible_cpus()
	val := mapops.RoundUp8(a.ValueSize)
	// htab->elem_size: the element header, the rounded key, and the
	// rounded value or, for per-CPU maps, the per-CPU pointer.
	elem := kernelElemHdr + mapops.RoundUp8(a.KeySize)
	if percpu(a.Type) {
		elem += 8
	} else {
		elem += val
	}
	// sizeof(struct bpf_htab), the bucket array, and the per-CPU lock
	// counters (sizeof(int) × possible CPUs × HASHTAB_MAP_LOCK_COUNT).
	usage := kernelHtabSize + kernelBucketSize*uint64(g.nBuckets) + 4*ncpu*kernelLockCount
	if a.Flags&uapi.FNoPrealloc == 0 {
		// Preallocated: max_entries elements (after BPF_F_NO_COMMON_LRU's
		// rounding), plus one per possible CPU where htab_has_extra_elems.
		n := uint64(g.maxEnt)
		if extraElems(a.Type) {
			n += ncpu
		}
		usage += elem * n
		switch {
		case percpu(a.Type):
			usage += val * ncpu * n // each element's per-CPU value
		case !lru(a.Type):
			usage += 8 * ncpu // the per-CPU extra_elems pointer
		}
		return usage
	}
	// Allocated on demand: each live element with its llist_node; per-CPU
	// maps add another llist_node and pointer (the per-CPU value's
	// allocation) and the value on every possible CPU.
	usage += (elem + kernelLlistNode) * live
	if percpu(a.Type) {
		usage += (kernelLlistNode+8)*live + val*ncpu*live
	}
	return usage
}

// Traits: hash maps use the bucket batch for lookups and the generic one for
// updates and deletes.
func (family) Traits(a *mapops.Attr) mapops.Traits {
	return mapops.Traits{
		PerCPU:               percpu(a.Type),
		Update:               mapops.UpdateStd,
		LookupBatch:          mapops.BatchBucket,
		LookupAndDeleteBatch: mapops.BatchBucket,
		UpdateBatch:          mapops.BatchGeneric,
		DeleteBatch:          mapops.BatchGeneric,
	}
}

// Open returns the operations over a hash region.
func (family) Open(r *region.Region, a *mapops.Attr, _ mapops.Layout) (mapops.Ops, error) {
	g, err := geometryOf(a)
	if err != nil {
		return nil, err
	}
	h := r.Header()
	m := &Map{
		r:        r,
		mem:      r.Mem(),
		g:        g,
		mask:     g.nBuckets - 1,
		keySize:  uint64(a.KeySize),
		valSize:  uint64(a.ValueSize),
		seed:     h.Seed,
		max:      a.MaxEntries,
		inPlace:  percpu(a.Type),
		count:    r.Uint32(region.HeaderSize + hdrCount),
		free:     r.Uint64(region.HeaderSize + hdrFree),
		fresh:    r.Uint32(region.HeaderSize + hdrFresh),
		copySize: uint64(a.ValueSize),
		locks:    a.Locks,
	}
	if m.locks == nil {
		m.locks = robust.New(nil)
	}
	if percpu(a.Type) {
		m.copySize = g.valArea
	}
	if lru(a.Type) {
		m.max = g.maxEnt
		m.lru = newLRU(m, a)
		if g.slotSize == 32 && g.nBuckets >= 2 && g.slotOff%64 == 0 {
			m.mateBit = 1
		}
	}
	m.memBase = memUsage(a, g, 0)
	m.memElem = memUsage(a, g, 1) - m.memBase
	return m, nil
}

// Map is one hash map's operations over its region.
type Map struct {
	r        *region.Region
	mem      region.Mem
	g        geometry
	mask     uint32
	keySize  uint64
	valSize  uint64 // value_size as created
	copySize uint64 // bytes a lookup copies out: value_size, or the per-CPU area
	seed     uint32
	max      uint32
	inPlace  bool      // per-CPU: replace at the same chain position
	lru      *lruState // LRU maps only
	// mateBit is 1 where a slot's mate (b ^ 1) shares its cache line and
	// can hold a key of bucket b (LRU maps with 32-byte slots), else 0.
	mateBit uint32
	locks   *robust.Locker
	count   *uint32
	free    *uint64
	fresh   *uint32
	// memBase and memElem give Memlock: the kernel's figure for the empty
	// map and what each live element adds (0 when preallocated).
	memBase, memElem uint64
}

// hash is the kernel's htab_map_hash.
func (m *Map) hash(key []byte) uint32 {
	if len(key) == 4 {
		return jhash.Word(binary.LittleEndian.Uint32(key), m.seed)
	}
	return jhash.Key(key, m.seed)
}

func (m *Map) lockWord(b uint32) *uint32 { return m.mem.Uint32(m.g.slotOff + uint64(b)*m.g.slotSize) }

// mate is the slot after b's own where an LRU map may keep a key of bucket
// b: b's neighbour in its cache line (b ^ 1) where two slots fill one
// line, else b itself.
func (m *Map) mate(b uint32) uint32    { return b ^ m.mateBit }
func (m *Map) headOff(b uint32) uint64 { return m.g.slotOff + uint64(b)*m.g.slotSize + 4 }

// elem returns the region offset of element ref. Overflow elements sit in
// slots too (their bucket header unused), so one multiply finds any element.
func (m *Map) elem(ref uint32) uint64  { return m.g.slotOff + uint64(ref-1)*m.g.slotSize + 8 }
func (m *Map) seqOf(e uint64) *uint32  { return m.mem.Uint32(e) }
func (m *Map) nextOf(e uint64) *uint32 { return m.mem.Uint32(e + 4) }
func (m *Map) hashOf(e uint64) *uint32 { return m.mem.Uint32(e + 8) }
func (m *Map) keyOf(e uint64) []byte   { return m.mem.Bytes(e+m.g.keyOff, m.keySize) }
func (m *Map) valueOf(e uint64) []byte { return m.mem.Bytes(e+m.g.valOff, m.copySize) }

func isElem(ref uint32) bool { return ref != 0 && ref&nullsBit == 0 }

// keyEqual compares a stored key with key; 4- and 8-byte keys compare as words.
func (m *Map) keyEqual(e uint64, key []byte) bool {
	switch m.keySize {
	case 4:
		return *m.mem.Uint32(e + m.g.keyOff) == binary.LittleEndian.Uint32(key)
	case 8:
		k := m.keyOf(e)
		return binary.LittleEndian.Uint64(k) == binary.LittleEndian.Uint64(key)
	}
	return bytes.Equal(m.keyOf(e), key)
}

// Lock word bits: a bucket's lock word is an internal/robust lock word whose
// flag bit says whether the bucket's home element is in use.
const (
	locked   = robust.Locked
	homeUsed = robust.Flag

	// readRetries bounds a lock-free reader's retries before it locks.
	readRetries = 8
)

// lock takes bucket b's writer lock, returning the version to unlock with.
func (m *Map) lock(b uint32) uint32 { return m.locks.Lock(m.lockWord(b)) }

func (m *Map) unlock(b, ver uint32) { m.locks.Unlock(m.lockWord(b), ver) }

// quiet reports whether bucket b's writers left it alone between a reader's
// first look at its lock word (v1) and now.
func (m *Map) quiet(b, v1 uint32) bool {
	region.ReadFence()
	return v1&locked == 0 && atomic.LoadUint32(m.lockWord(b)) == v1
}

// reserve takes one unit of the element count, failing at max_entries.
func (m *Map) reserve() bool {
	for {
		c := atomic.LoadUint32(m.count)
		if c >= m.max {
			return false
		}
		if atomic.CompareAndSwapUint32(m.count, c, c+1) {
			return true
		}
	}
}

// alloc returns a free element for bucket b, whose lock the caller holds:
// b's home element if it is free, else an overflow element.
func (m *Map) alloc(b uint32) uint32 {
	w := m.lockWord(b)
	if lw := atomic.LoadUint32(w); lw&homeUsed == 0 {
		region.StoreRelease32(w, lw|homeUsed)
		return b + 1
	}
	return m.allocOverflow()
}

// allocOverflow returns a free overflow element.
func (m *Map) allocOverflow() uint32 {
	for spins := 0; ; spins++ {
		h := atomic.LoadUint64(m.free)
		if ref := uint32(h); ref != 0 {
			next := atomic.LoadUint32(m.nextOf(m.elem(ref)))
			if atomic.CompareAndSwapUint64(m.free, h, uint64(next)|(h>>32+1)<<32) {
				return ref
			}
			continue
		}
		n := atomic.LoadUint32(m.fresh)
		if uint64(n) < m.g.pool {
			if atomic.CompareAndSwapUint32(m.fresh, n, n+1) {
				return m.g.nBuckets + n + 1
			}
			continue
		}
		// Every spare is held by a concurrent replacement that is about to
		// free its old element.
		if spins > 16 {
			runtime.Gosched()
		}
	}
}

// release makes an unlinked element free: readers still holding it see its
// sequence change and restart. A home element's bucket lock is held by the
// caller (elements only ever live in their own bucket's chain).
func (m *Map) release(ref uint32) {
	e := m.elem(ref)
	atomic.AddUint32(m.seqOf(e), 1)
	m.crashPoint()
	if ref <= m.g.nBuckets {
		w := m.lockWord(ref - 1)
		region.StoreRelease32(w, atomic.LoadUint32(w)&^homeUsed)
		return
	}
	for {
		h := atomic.LoadUint64(m.free)
		region.StoreRelease32(m.nextOf(e), uint32(h))
		if atomic.CompareAndSwapUint64(m.free, h, uint64(ref)|(h>>32+1)<<32) {
			return
		}
	}
}

// fill writes key and value into a free element and makes it live.
func (m *Map) fill(ref uint32, hv uint32, key, value []byte) {
	m.write(ref, hv, key, value)
	m.makeLive(m.elem(ref))
}

// write writes key and value into a free element, which stays free: LRU
// elements become live only once linked (see unlink).
func (m *Map) write(ref uint32, hv uint32, key, value []byte) {
	e := m.elem(ref)
	region.StoreRelease32(m.hashOf(e), hv)
	copy(m.keyOf(e), key)
	copy(m.valueOf(e), value[:m.copySize])
}

// makeLive gives a freshly written element a live sequence. Free elements
// have an odd sequence, never-used ones zero; a live one has an even,
// non-zero sequence different from any it had before.
func (m *Map) makeLive(e uint64) {
	s := atomic.LoadUint32(m.seqOf(e)) + 1
	if s&1 != 0 {
		s++
	}
	if s == 0 {
		s = 2
	}
	region.StoreRelease32(m.seqOf(e), s)
}

// copyValue copies element e's value into out (len ≤ the value area). A
// one-word value area is read with one atomic load, since updates may store
// it in place.
func (m *Map) copyValue(out []byte, e uint64) {
	if m.g.valArea == 8 {
		v := atomic.LoadUint64(m.mem.Uint64(e + m.g.valOff))
		if len(out) == 8 {
			binary.LittleEndian.PutUint64(out, v)
			return
		}
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], v)
		copy(out, w[:])
		return
	}
	copy(out, m.valueOf(e))
}

// storeValue replaces a one-word value area in place with one atomic store.
func (m *Map) storeValue(e uint64, value []byte) {
	var w [8]byte
	copy(w[:], value[:m.copySize])
	region.StoreRelease64(m.mem.Uint64(e+m.g.valOff), binary.LittleEndian.Uint64(w[:]))
}

// find walks bucket b under its lock and returns the element holding key
// and the offset of the word that points at it.
func (m *Map) find(b, hv uint32, key []byte) (ref uint32, slot uint64) {
	slot = m.headOff(b)
	for ref = *m.mem.Uint32(slot); isElem(ref); ref = *m.mem.Uint32(slot) {
		e := m.elem(ref)
		if *m.hashOf(e) == hv && m.keyEqual(e, key) {
			return ref, slot
		}
		slot = e + 4
	}
	return 0, 0
}

// findWord is find for 4-byte keys, comparing words without a call.
func (m *Map) findWord(b, hv, k uint32) (ref uint32, slot uint64) {
	mem, g := m.mem, &m.g
	slot = g.slotOff + uint64(b)*g.slotSize + 4
	for ref = *mem.Uint32(slot); ref != 0 && ref&nullsBit == 0; ref = *mem.Uint32(slot) {
		e := g.slotOff + uint64(ref-1)*g.slotSize + 8
		if *mem.Uint32(e + 8) == hv && *mem.Uint32(e + g.keyOff) == k {
			return ref, slot
		}
		slot = e + 4
	}
	return 0, 0
}

func (m *Map) nulls(b uint32) uint32 { return nullsBit | b }

// The words of a slot of a map with 4-byte keys and one-word values, 32
// bytes in all: the bucket's lock and head words, then its home element
// {seq, next, hash, key, value} (elemHdr 12, keyOff 12, valOff 16).
const (
	s4Lock = 0
	s4Head = 1
	s4Seq  = 2
	s4Next = 3
	s4Hash = 4
	s4Key  = 5
	s4Val  = 6 // and 7
)

// LookupWord is Lookup for a map with 4-byte keys and one-word values (the
// most common shape), read's protocol specialised and without a call: key
// k, the value returned. Its slots are 32 bytes with the words at fixed
// places (s4Lock...), each slot reached with one bounds check. Other maps
// must not call it.
func (m *Map) LookupWord(k uint32) (uint64, error) {
	hv := jhash.Word(k, m.seed)
	b := hv & m.mask
	mem, so := m.mem, m.g.slotOff
	sv := mem.Words8(so + uint64(b)*32)
	if m.lru != nil {
		// The bucket's own slot and its mate, in the bucket's cache
		// line: an LRU element with an even sequence is in its
		// bucket's chain (unlink), so a match there is the answer.
		if v, ok := liveWord(sv, hv, k); ok {
			return v, nil
		}
		if v, ok := liveWord(mem.Words8(so+uint64(m.mate(b))*32), hv, k); ok {
			return v, nil
		}
	}
retry:
	for range readRetries {
		v1 := atomic.LoadUint32(&sv[s4Lock])
		ref := atomic.LoadUint32(&sv[s4Head])
		for ref != 0 && ref&nullsBit == 0 {
			ev := mem.Words8(so + uint64(ref-1)*32)
			seq := atomic.LoadUint32(&ev[s4Seq])
			if seq&1 != 0 {
				continue retry
			}
			if atomic.LoadUint32(&ev[s4Hash]) == hv && ev[s4Key] == k {
				v := atomic.LoadUint64(region.Pair(ev, s4Val))
				region.ReadFence()
				if atomic.LoadUint32(&ev[s4Seq]) != seq {
					continue retry
				}
				return v, nil
			}
			next := atomic.LoadUint32(&ev[s4Next])
			region.ReadFence()
			if atomic.LoadUint32(&ev[s4Seq]) != seq {
				continue retry
			}
			ref = next
		}
		if ref != 0 && ref != m.nulls(b) || !m.quiet(b, v1) {
			continue // another bucket's chain, or a writer was here
		}
		return 0, uapi.ENOENT
	}
	var kb, vb [8]byte
	binary.LittleEndian.PutUint32(kb[:], k)
	err := m.lookupLocked(b, hv, kb[:4], vb[:])
	return binary.LittleEndian.Uint64(vb[:]), err
}

// liveWord reads the value of the element in slot view sv if it is a live
// element of key k (hash hv) of an LRU map.
func liveWord(sv *[8]uint32, hv, k uint32) (uint64, bool) {
	if seq := atomic.LoadUint32(&sv[s4Seq]); seq&1 == 0 && seq != 0 &&
		atomic.LoadUint32(&sv[s4Hash]) == hv && sv[s4Key] == k {
		v := atomic.LoadUint64(region.Pair(sv, s4Val))
		region.ReadFence()
		if atomic.LoadUint32(&sv[s4Seq]) == seq {
			return v, true
		}
	}
	return 0, false
}

// Lookup copies key's value into value.
func (m *Map) Lookup(key, value []byte) error {
	if m.keySize == 4 && m.g.valArea == 8 && len(value) == 8 {
		v, err := m.LookupWord(binary.LittleEndian.Uint32(key))
		if err == nil {
			binary.LittleEndian.PutUint64(value, v)
		}
		return err
	}
	hv := m.hash(key)
	b := hv & m.mask
	out := value
	for try := 0; ; try++ {
		if try == readRetries {
			return m.lookupLocked(b, hv, key, value)
		}
		_, ok, done := m.read(b, hv, key, out)
		if done {
			if !ok {
				return uapi.ENOENT
			}
			if &out[0] != &value[0] {
				copy(value, out)
			}
			return nil
		}
		// A concurrent writer recycled an element under us: copy into a
		// scratch buffer from now on, so a failed retry leaves value as it
		// was.
		if &out[0] == &value[0] {
			out = make([]byte, len(value))
		}
	}
}

// lookupLocked answers a lookup under bucket b's lock.
func (m *Map) lookupLocked(b, hv uint32, key, value []byte) error {
	ver := m.lock(b)
	defer m.unlock(b, ver)
	ref, _ := m.find(b, hv, key)
	if ref == 0 {
		return uapi.ENOENT
	}
	m.copyValue(value, m.elem(ref))
	return nil
}

// read is one lock-free attempt at finding key in bucket b; done is false
// when the attempt must be retried.
func (m *Map) read(b, hv uint32, key, out []byte) (ref uint32, found, done bool) {
	if m.lru != nil {
		// The bucket's own slot and its mate first (see LookupWord).
		if s, seq := m.atHome(b, hv, key); s != noNode {
			e := m.elem(s + 1)
			m.copyValue(out, e)
			region.ReadFence()
			if atomic.LoadUint32(m.seqOf(e)) == seq {
				return s + 1, true, true
			}
		}
	}
	v1 := atomic.LoadUint32(m.lockWord(b))
	ref = atomic.LoadUint32(m.mem.Uint32(m.headOff(b)))
	for isElem(ref) {
		e := m.elem(ref)
		seq := atomic.LoadUint32(m.seqOf(e))
		if seq&1 != 0 {
			return 0, false, false
		}
		if atomic.LoadUint32(m.hashOf(e)) == hv && m.keyEqual(e, key) {
			m.copyValue(out, e)
			region.ReadFence()
			if atomic.LoadUint32(m.seqOf(e)) != seq {
				return 0, false, false
			}
			return ref, true, true
		}
		next := atomic.LoadUint32(m.nextOf(e))
		region.ReadFence()
		if atomic.LoadUint32(m.seqOf(e)) != seq {
			return 0, false, false
		}
		ref = next
	}
	if ref != 0 && ref != m.nulls(b) || !m.quiet(b, v1) {
		return 0, false, false // another bucket's chain, or a writer was here
	}
	return 0, false, true
}

// Update inserts or replaces key. UPDATE flag validity is checked by the
// command layer.
func (m *Map) Update(key, value []byte, flags uint64) error {
	if m.lru != nil {
		return m.lruUpdate(key, value, flags)
	}
	var hv, b, old, ver uint32
	var slot uint64
	if m.keySize == 4 {
		k := binary.LittleEndian.Uint32(key)
		hv = jhash.Word(k, m.seed)
		b = hv & m.mask
		ver = m.lock(b)
		old, slot = m.findWord(b, hv, k)
	} else {
		hv = m.hash(key)
		b = hv & m.mask
		ver = m.lock(b)
		old, slot = m.find(b, hv, key)
	}
	switch {
	case old != 0 && flags == uapi.NoExist:
		m.unlock(b, ver)
		return uapi.EEXIST
	case old == 0 && flags == uapi.Exist:
		m.unlock(b, ver)
		return uapi.ENOENT
	case old == 0 && !m.reserve():
		m.unlock(b, ver)
		return uapi.E2BIG
	case old != 0 && m.g.valArea == 8 && (m.inPlace || slot == m.headOff(b)):
		// The key keeps its place in the chain, as the kernel's update
		// would leave it: store the new value in place.
		m.storeValue(m.elem(old), value)
		m.unlock(b, ver)
		return nil
	}
	m.crashPoint()
	if !m.inPlace && old != b+1 {
		// The new element becomes the chain's head: give it the home
		// element, so the key written last is one cache line away.
		if moved := m.vacateHome(b); moved != 0 && slot == m.elem(b+1)+4 {
			slot = m.elem(moved) + 4 // old's predecessor moved
		}
	}
	n := m.alloc(b)
	m.crashPoint()
	m.fill(n, hv, key, value)
	e := m.elem(n)
	head := m.mem.Uint32(m.headOff(b))
	switch {
	case old == 0:
		m.linkHead(b, n, e, head)
	case m.inPlace:
		// Per-CPU maps keep the element's chain position.
		region.StoreRelease32(m.nextOf(e), atomic.LoadUint32(m.nextOf(m.elem(old))))
		region.StoreRelease32(m.mem.Uint32(slot), n)
		m.crashPoint()
		m.release(old)
	default:
		// Publish the new element at the head, then unlink the old one:
		// a reader sees one or the other.
		m.linkHead(b, n, e, head)
		if slot == m.headOff(b) {
			slot = e + 4
		}
		m.crashPoint()
		region.StoreRelease32(m.mem.Uint32(slot), atomic.LoadUint32(m.nextOf(m.elem(old))))
		m.crashPoint()
		m.release(old)
	}
	m.crashPoint()
	m.unlock(b, ver)
	return nil
}

// vacateHome moves the element in bucket b's home out to an overflow
// element when it is the chain's head, replacing it in place (readers see
// one or the other, as with any replacement), so the home is free for the
// next head. The caller holds b's lock. The home's placement is only a
// matter of speed: chains are the same whichever elements hold their keys.
// It returns the moved element's new reference, or 0 if nothing moved.
func (m *Map) vacateHome(b uint32) uint32 {
	headWord := m.mem.Uint32(m.headOff(b))
	if *headWord != b+1 {
		return 0
	}
	h := m.elem(b + 1)
	n := m.allocOverflow()
	e := m.elem(n)
	copy(m.mem.Bytes(e+8, m.g.elemSize-8), m.mem.Bytes(h+8, m.g.elemSize-8))
	m.makeLive(e)
	region.StoreRelease32(m.nextOf(e), atomic.LoadUint32(m.nextOf(h)))
	region.StoreRelease32(headWord, n)
	m.crashPoint()
	m.release(b + 1)
	return n
}

func (m *Map) linkHead(b, n uint32, e uint64, head *uint32) {
	first := *head
	if first == 0 {
		first = m.nulls(b)
	}
	region.StoreRelease32(m.nextOf(e), first)
	region.StoreRelease32(head, n)
}

// unlink removes ref (pointed to by slot) from bucket b's chain and frees it.
func (m *Map) unlink(b uint32, ref uint32, slot uint64) {
	next := atomic.LoadUint32(m.nextOf(m.elem(ref)))
	if next == m.nulls(b) && slot == m.headOff(b) {
		next = 0
	}
	if m.lru != nil {
		// In flight until the node is back on the LRU (see lru.go). Its
		// sequence turns odd before it leaves the chain: an LRU element
		// with an even sequence is always in its bucket's chain, which is
		// what lets a lookup trust a key it finds in its home slot
		// (Lookup). Readers that meet it meanwhile retry.
		region.StoreRelease32(m.lru.own(ref-1), m.lru.mine)
		e := m.elem(ref)
		region.StoreRelease32(m.seqOf(e), atomic.LoadUint32(m.seqOf(e))+1)
		m.crashPoint()
		region.StoreRelease32(m.mem.Uint32(slot), next)
	} else {
		region.StoreRelease32(m.mem.Uint32(slot), next)
		m.crashPoint()
		m.release(ref)
	}
	atomic.AddUint32(m.count, ^uint32(0))
}

// Delete removes key.
func (m *Map) Delete(key []byte) error {
	hv := m.hash(key)
	b := hv & m.mask
	ver := m.lock(b)
	ref, slot := m.find(b, hv, key)
	if ref == 0 {
		m.unlock(b, ver)
		return uapi.ENOENT
	}
	m.unlink(b, ref, slot)
	m.unlock(b, ver)
	if m.lru != nil {
		m.lru.pushFree(ref - 1)
	}
	return nil
}

// LookupAndDelete copies key's value into value and removes key.
func (m *Map) LookupAndDelete(key, value []byte) error {
	hv := m.hash(key)
	b := hv & m.mask
	ver := m.lock(b)
	ref, slot := m.find(b, hv, key)
	if ref == 0 {
		m.unlock(b, ver)
		return uapi.ENOENT
	}
	m.copyValue(value, m.elem(ref))
	m.unlink(b, ref, slot)
	m.unlock(b, ver)
	if m.lru != nil {
		m.lru.pushFree(ref - 1)
	}
	return nil
}

// GetNextKey is the kernel's htab_map_get_next_key: the element after key in
// its chain, else the head of the next non-empty bucket; a nil or missing
// key restarts at the first bucket.
func (m *Map) GetNextKey(key, next []byte) error {
	for try := 0; ; try++ {
		ok, done := m.nextKey(key, next, try >= readRetries)
		if done {
			if !ok {
				return uapi.ENOENT
			}
			return nil
		}
	}
}

// nextKey is one attempt at GetNextKey; done is false when it must be
// retried. With locked, key is looked up under its bucket's lock (for a
// bucket that writers never leave alone).
func (m *Map) nextKey(key, next []byte, locked bool) (found, done bool) {
	start := uint32(0)
	if key != nil && locked {
		hv := m.hash(key)
		b := hv & m.mask
		ver := m.lock(b)
		ref, _ := m.find(b, hv, key)
		if ref != 0 {
			if nref := *m.nextOf(m.elem(ref)); isElem(nref) {
				copy(next, m.keyOf(m.elem(nref)))
				m.unlock(b, ver)
				return true, true
			}
			start = b + 1
		}
		m.unlock(b, ver)
	} else if key != nil {
		hv := m.hash(key)
		b := hv & m.mask
		v1 := atomic.LoadUint32(m.lockWord(b))
		ref := atomic.LoadUint32(m.mem.Uint32(m.headOff(b)))
		for isElem(ref) {
			e := m.elem(ref)
			seq := atomic.LoadUint32(m.seqOf(e))
			if seq&1 != 0 {
				return false, false
			}
			match := atomic.LoadUint32(m.hashOf(e)) == hv && m.keyEqual(e, key)
			nref := atomic.LoadUint32(m.nextOf(e))
			region.ReadFence()
			if atomic.LoadUint32(m.seqOf(e)) != seq {
				return false, false
			}
			if match {
				if isElem(nref) {
					return m.copyKey(nref, next)
				}
				start = b + 1
				break
			}
			ref = nref
		}
		if !isElem(ref) && (ref != 0 && ref != m.nulls(b) || !m.quiet(b, v1)) {
			return false, false // not found: sure only if no writer was here
		}
	}
	for b := start; b < m.g.nBuckets; b++ {
		if ref := atomic.LoadUint32(m.mem.Uint32(m.headOff(b))); isElem(ref) {
			return m.copyKey(ref, next)
		}
	}
	return false, true
}

// copyKey copies element ref's key into next if the element stays live.
func (m *Map) copyKey(ref uint32, next []byte) (found, done bool) {
	e := m.elem(ref)
	seq := atomic.LoadUint32(m.seqOf(e))
	if seq&1 != 0 {
		return false, false
	}
	copy(next, m.keyOf(e))
	region.ReadFence()
	if atomic.LoadUint32(m.seqOf(e)) != seq {
		return false, false
	}
	return true, true
}

// NumBuckets is the number of buckets (the batch cursor's range).
func (m *Map) NumBuckets() uint32 { return m.g.nBuckets }

// CopyBucket copies bucket b whole, under its lock, if it fits in room and
// in the keys and values buffers.
func (m *Map) CopyBucket(b uint32, keys, values []byte, room uint32, del bool) (uint32, bool) {
	ver := m.lock(b)
	n, copied, freed := m.copyBucket(b, keys, values, room, del)
	m.unlock(b, ver)
	// LRU nodes of deleted elements go back to the LRU without the bucket
	// lock, last deleted first (as the kernel frees its batch list).
	for freed != 0 {
		e := m.elem(freed)
		next := atomic.LoadUint32(m.nextOf(e))
		m.lru.pushFree(freed - 1)
		freed = next
	}
	return n, copied
}

// copyBucket is CopyBucket under bucket b's lock. For LRU maps with del it
// returns the deleted elements chained through their next words (no reader
// follows those: their sequences changed when they were unlinked).
func (m *Map) copyBucket(b uint32, keys, values []byte, room uint32, del bool) (uint32, bool, uint32) {
	n := uint32(0)
	for ref := *m.mem.Uint32(m.headOff(b)); isElem(ref); ref = *m.nextOf(m.elem(ref)) {
		n++
	}
	ks, vs := m.keySize, m.copySize
	if n == 0 || n > room || uint64(n)*ks > uint64(len(keys)) || uint64(n)*vs > uint64(len(values)) {
		return n, n == 0, 0
	}
	freed := uint32(0)
	i := uint64(0)
	for ref := *m.mem.Uint32(m.headOff(b)); isElem(ref); i++ {
		e := m.elem(ref)
		copy(keys[i*ks:(i+1)*ks], m.keyOf(e))
		m.copyValue(values[i*vs:(i+1)*vs], e)
		nref := *m.nextOf(e)
		if del {
			m.unlink(b, ref, m.headOff(b))
			if m.lru != nil {
				region.StoreRelease32(m.nextOf(e), freed)
				freed = ref
			}
		}
		ref = nref
	}
	return n, true, freed
}

// crashHook is set by tests only, to a function that panics at a chosen
// step of a chosen map's writer, to simulate a process killed there. The
// steps (crashPoint) are those between which a writer that dies leaves the
// map in a state only Repair fixes. Tests set it while no other goroutine
// runs.
var crashHook func(m *Map)

// crashPoint calls crashHook. It inlines to one load and branch.
func (m *Map) crashPoint() {
	if crashHook != nil {
		crashHook(m)
	}
}

// releaseHook is set by tests only, to a function that checks a node the
// LRU is about to stop treating as one (lruState.release).
var releaseHook func(l *lruState, i uint32)

// crashPoint is Map.crashPoint for the LRU's steps.
func (l *lruState) crashPoint() {
	if crashHook != nil {
		crashHook(l.m)
	}
}

// Count is the number of elements in the map.
func (m *Map) Count() uint32 { return atomic.LoadUint32(m.count) }

// Memlock is the kernel's memory-usage figure (htab_map_mem_usage) for the
// map as it is now: fixed for preallocated maps, following the element
// count for BPF_F_NO_PREALLOC ones.
func (m *Map) Memlock() uint64 {
	if m.memElem == 0 {
		return m.memBase
	}
	return m.memBase + m.memElem*uint64(m.Count())
}

// Close releases nothing beyond the region, which the command layer owns.
func (m *Map) Close() error { return nil }
