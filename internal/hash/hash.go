// Package hash implements BPF_MAP_TYPE_HASH and BPF_MAP_TYPE_PERCPU_HASH over
// a flat region, with the kernel's observable structure: jhash/jhash2 with
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
// # Layout
//
//	header (region.HeaderSize) | hash header (192) | buckets | elements
//
// A bucket is {lock u32, head u32}. An element is {seq u32, next u32,
// hash u32, key, pad to 8, value area}; the value area is round_up(value,8)
// bytes, or that times the possible CPUs for per-CPU maps. References are
// element index + 1; 0 is an empty bucket; a reference with bit 31 set is the
// end of bucket (ref &^ bit31)'s chain. Free elements form a lock-free stack
// through their next words; elements never used come from a bump counter, so
// creating a map touches only its buckets' pages when they are first used.
// All-zero bytes are the valid empty map.
package hash

import (
	"bytes"
	"encoding/binary"
	"runtime"
	"sync/atomic"

	"github.com/bpfmap/bpfmap/internal/jhash"
	"github.com/bpfmap/bpfmap/internal/mapops"
	"github.com/bpfmap/bpfmap/internal/region"
	"github.com/bpfmap/bpfmap/internal/uapi"
)

// Family creates HASH and PERCPU_HASH maps.
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
	// bounds key+value (E2BIG) and enters the memlock estimate.
	kernelElemHdr = 48
	// kernelHtabSize approximates sizeof(struct bpf_htab) for memlock.
	kernelHtabSize = 704
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
	nBuckets  uint32
	keyOff    uint64 // key offset inside an element
	valOff    uint64 // value offset inside an element
	valArea   uint64 // bytes of value area
	elemSize  uint64
	pool      uint64 // elements in the region
	bucketOff uint64 // region offset of bucket 0
	elemOff   uint64 // region offset of element 0
}

func geometryOf(a *mapops.Attr) (geometry, error) {
	var g geometry
	if a.MaxEntries > 1<<31 {
		return g, uapi.E2BIG
	}
	nb := mapops.RoundUpPow2(a.MaxEntries)
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
	g.pool = uint64(a.MaxEntries) + spares
	g.bucketOff = region.HeaderSize + hdrSize
	g.elemOff = g.bucketOff + nb*8
	return g, nil
}

// Layout sizes the region and reports the kernel's memlock estimate for a
// preallocated map of the same shape.
func (family) Layout(a *mapops.Attr) (mapops.Layout, error) {
	g, err := geometryOf(a)
	if err != nil {
		return mapops.Layout{}, err
	}
	ncpu := uint64(a.PossibleCPUs)
	kElem := kernelElemHdr + mapops.RoundUp8(a.KeySize)
	if percpu(a.Type) {
		kElem += 8
	} else {
		kElem += mapops.RoundUp8(a.ValueSize)
	}
	entries := uint64(a.MaxEntries)
	if !percpu(a.Type) {
		entries += ncpu // the kernel's extra elements for in-place replacement
	}
	memlock := kernelHtabSize + 16*uint64(g.nBuckets) + kElem*entries
	if percpu(a.Type) {
		memlock += mapops.RoundUp8(a.ValueSize) * ncpu * entries
	} else {
		memlock += 8 * ncpu
	}
	return mapops.Layout{
		BodySize:   g.elemOff - region.HeaderSize + g.pool*g.elemSize,
		MaxEntries: a.MaxEntries,
		Memlock:    memlock,
	}, nil
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
	}
	if percpu(a.Type) {
		m.copySize = g.valArea
	}
	return m, nil
}

// Map is one hash map's operations over its region.
type Map struct {
	r        *region.Region
	g        geometry
	mask     uint32
	keySize  uint64
	valSize  uint64
	copySize uint64 // bytes a lookup copies out: value_size, or the per-CPU area
	seed     uint32
	max      uint32
	inPlace  bool // per-CPU: replace at the same chain position
	count    *uint32
	free     *uint64
	fresh    *uint32
}

// hash is the kernel's htab_map_hash.
func (m *Map) hash(key []byte) uint32 {
	if len(key) == 4 {
		return jhash.Word(binary.LittleEndian.Uint32(key), m.seed)
	}
	return jhash.Key(key, m.seed)
}

func (m *Map) lockWord(b uint32) *uint32 { return m.r.Uint32(m.g.bucketOff + uint64(b)*8) }
func (m *Map) headOff(b uint32) uint64   { return m.g.bucketOff + uint64(b)*8 + 4 }
func (m *Map) elem(ref uint32) uint64    { return m.g.elemOff + uint64(ref-1)*m.g.elemSize }
func (m *Map) seqOf(e uint64) *uint32    { return m.r.Uint32(e) }
func (m *Map) nextOf(e uint64) *uint32   { return m.r.Uint32(e + 4) }
func (m *Map) hashOf(e uint64) *uint32   { return m.r.Uint32(e + 8) }
func (m *Map) keyOf(e uint64) []byte     { return m.r.Bytes(e+m.g.keyOff, m.keySize) }
func (m *Map) valueOf(e uint64) []byte   { return m.r.Bytes(e+m.g.valOff, m.copySize) }

func isElem(ref uint32) bool { return ref != 0 && ref&nullsBit == 0 }

// keyEqual compares a stored key with key; 4- and 8-byte keys compare as words.
func (m *Map) keyEqual(e uint64, key []byte) bool {
	switch m.keySize {
	case 4:
		return *m.r.Uint32(e + m.g.keyOff) == binary.LittleEndian.Uint32(key)
	case 8:
		k := m.keyOf(e)
		return binary.LittleEndian.Uint64(k) == binary.LittleEndian.Uint64(key)
	}
	return bytes.Equal(m.keyOf(e), key)
}

// lock takes bucket b's writer lock.
//
// The lock word holds an owner token (1 for now); a later cross-process
// layout stores the owner's identity there so a survivor can recover the
// lock of a process that died holding it.
func (m *Map) lock(b uint32) {
	w := m.lockWord(b)
	for spins := 0; !atomic.CompareAndSwapUint32(w, 0, 1); spins++ {
		if spins > 16 {
			runtime.Gosched()
		}
	}
}

func (m *Map) unlock(b uint32) { atomic.StoreUint32(m.lockWord(b), 0) }

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

// alloc returns a free element, odd-sequenced if it was used before.
func (m *Map) alloc() uint32 {
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
				return n + 1
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
// sequence change and restart.
func (m *Map) release(ref uint32) {
	e := m.elem(ref)
	atomic.AddUint32(m.seqOf(e), 1)
	for {
		h := atomic.LoadUint64(m.free)
		atomic.StoreUint32(m.nextOf(e), uint32(h))
		if atomic.CompareAndSwapUint64(m.free, h, uint64(ref)|(h>>32+1)<<32) {
			return
		}
	}
}

// fill writes key and value into a free element and makes it live.
func (m *Map) fill(ref uint32, hv uint32, key, value []byte) {
	e := m.elem(ref)
	atomic.StoreUint32(m.hashOf(e), hv)
	copy(m.keyOf(e), key)
	copy(m.valueOf(e), value[:m.copySize])
	if s := atomic.LoadUint32(m.seqOf(e)); s&1 != 0 {
		atomic.StoreUint32(m.seqOf(e), s+1)
	}
}

// find walks bucket b under its lock and returns the element holding key
// and the offset of the word that points at it.
func (m *Map) find(b, hv uint32, key []byte) (ref uint32, slot uint64) {
	slot = m.headOff(b)
	for ref = *m.r.Uint32(slot); isElem(ref); ref = *m.r.Uint32(slot) {
		e := m.elem(ref)
		if *m.hashOf(e) == hv && m.keyEqual(e, key) {
			return ref, slot
		}
		slot = e + 4
	}
	return 0, 0
}

func (m *Map) nulls(b uint32) uint32 { return nullsBit | b }

// Lookup copies key's value into value.
func (m *Map) Lookup(key, value []byte) error {
	hv := m.hash(key)
	b := hv & m.mask
	out := value
	for {
		ref, ok, done := m.read(b, hv, key, out)
		if done {
			if !ok {
				return uapi.ENOENT
			}
			if &out[0] != &value[0] {
				copy(value, out)
			}
			_ = ref
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

// read is one lock-free attempt at finding key in bucket b; done is false
// when the attempt must be retried.
func (m *Map) read(b, hv uint32, key, out []byte) (ref uint32, found, done bool) {
	ref = atomic.LoadUint32(m.r.Uint32(m.headOff(b)))
	for isElem(ref) {
		e := m.elem(ref)
		seq := atomic.LoadUint32(m.seqOf(e))
		if seq&1 != 0 {
			return 0, false, false
		}
		if atomic.LoadUint32(m.hashOf(e)) == hv && m.keyEqual(e, key) {
			copy(out, m.valueOf(e))
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
	if ref != 0 && ref != m.nulls(b) {
		return 0, false, false // ended in another bucket's chain
	}
	return 0, false, true
}

// Update inserts or replaces key. UPDATE flag validity is checked by the
// command layer.
func (m *Map) Update(key, value []byte, flags uint64) error {
	hv := m.hash(key)
	b := hv & m.mask
	m.lock(b)
	old, slot := m.find(b, hv, key)
	switch {
	case old != 0 && flags == uapi.NoExist:
		m.unlock(b)
		return uapi.EEXIST
	case old == 0 && flags == uapi.Exist:
		m.unlock(b)
		return uapi.ENOENT
	case old == 0 && !m.reserve():
		m.unlock(b)
		return uapi.E2BIG
	}
	n := m.alloc()
	m.fill(n, hv, key, value)
	e := m.elem(n)
	head := m.r.Uint32(m.headOff(b))
	switch {
	case old == 0:
		m.linkHead(b, n, e, head)
	case m.inPlace:
		// Per-CPU maps keep the element's chain position.
		atomic.StoreUint32(m.nextOf(e), atomic.LoadUint32(m.nextOf(m.elem(old))))
		atomic.StoreUint32(m.r.Uint32(slot), n)
		m.release(old)
	default:
		// Publish the new element at the head, then unlink the old one:
		// a reader sees one or the other.
		m.linkHead(b, n, e, head)
		if slot == m.headOff(b) {
			slot = e + 4
		}
		atomic.StoreUint32(m.r.Uint32(slot), atomic.LoadUint32(m.nextOf(m.elem(old))))
		m.release(old)
	}
	m.unlock(b)
	return nil
}

func (m *Map) linkHead(b, n uint32, e uint64, head *uint32) {
	first := *head
	if first == 0 {
		first = m.nulls(b)
	}
	atomic.StoreUint32(m.nextOf(e), first)
	atomic.StoreUint32(head, n)
}

// unlink removes ref (pointed to by slot) from bucket b's chain and frees it.
func (m *Map) unlink(b uint32, ref uint32, slot uint64) {
	next := atomic.LoadUint32(m.nextOf(m.elem(ref)))
	if next == m.nulls(b) && slot == m.headOff(b) {
		next = 0
	}
	atomic.StoreUint32(m.r.Uint32(slot), next)
	m.release(ref)
	atomic.AddUint32(m.count, ^uint32(0))
}

// Delete removes key.
func (m *Map) Delete(key []byte) error {
	hv := m.hash(key)
	b := hv & m.mask
	m.lock(b)
	ref, slot := m.find(b, hv, key)
	if ref == 0 {
		m.unlock(b)
		return uapi.ENOENT
	}
	m.unlink(b, ref, slot)
	m.unlock(b)
	return nil
}

// LookupAndDelete copies key's value into value and removes key.
func (m *Map) LookupAndDelete(key, value []byte) error {
	hv := m.hash(key)
	b := hv & m.mask
	m.lock(b)
	ref, slot := m.find(b, hv, key)
	if ref == 0 {
		m.unlock(b)
		return uapi.ENOENT
	}
	copy(value, m.valueOf(m.elem(ref)))
	m.unlink(b, ref, slot)
	m.unlock(b)
	return nil
}

// GetNextKey is the kernel's htab_map_get_next_key: the element after key in
// its chain, else the head of the next non-empty bucket; a nil or missing
// key restarts at the first bucket.
func (m *Map) GetNextKey(key, next []byte) error {
	for {
		ok, done := m.nextKey(key, next)
		if done {
			if !ok {
				return uapi.ENOENT
			}
			return nil
		}
	}
}

func (m *Map) nextKey(key, next []byte) (found, done bool) {
	start := uint32(0)
	if key != nil {
		hv := m.hash(key)
		b := hv & m.mask
		ref := atomic.LoadUint32(m.r.Uint32(m.headOff(b)))
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
		if !isElem(ref) && ref != 0 && ref != m.nulls(b) {
			return false, false
		}
	}
	for b := start; b < m.g.nBuckets; b++ {
		if ref := atomic.LoadUint32(m.r.Uint32(m.headOff(b))); isElem(ref) {
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
	m.lock(b)
	defer m.unlock(b)
	n := uint32(0)
	for ref := *m.r.Uint32(m.headOff(b)); isElem(ref); ref = *m.nextOf(m.elem(ref)) {
		n++
	}
	ks, vs := m.keySize, m.copySize
	if n == 0 || n > room || uint64(n)*ks > uint64(len(keys)) || uint64(n)*vs > uint64(len(values)) {
		return n, n == 0
	}
	i := uint64(0)
	for ref := *m.r.Uint32(m.headOff(b)); isElem(ref); i++ {
		e := m.elem(ref)
		copy(keys[i*ks:(i+1)*ks], m.keyOf(e))
		copy(values[i*vs:(i+1)*vs], m.valueOf(e))
		nref := *m.nextOf(e)
		if del {
			m.unlink(b, ref, m.headOff(b))
		}
		ref = nref
	}
	return n, true
}

// Count is the number of elements in the map.
func (m *Map) Count() uint32 { return atomic.LoadUint32(m.count) }

// Close releases nothing beyond the region, which the command layer owns.
func (m *Map) Close() error { return nil }
