// Package array implements BPF_MAP_TYPE_ARRAY and BPF_MAP_TYPE_PERCPU_ARRAY
// over a flat region: max_entries zero-initialised values indexed by a u32
// key, each in a slot of round_up(value_size, 8) bytes (times the possible
// CPUs for per-CPU arrays), laid out exactly as the kernel's mmapable value
// area so BPF_F_MMAPABLE arrays can expose it as memory.
//
// # Concurrency
//
// Values of 4 or 8 bytes are read and written with single atomic loads and
// stores and can never tear. Larger values are guarded by a per-element
// sequence word kept apart from the value area: a writer makes it odd, copies
// and makes it even again; a reader copies between two reads of an equal even
// sequence and retries otherwise. Writers of the same element exclude each
// other through the same word.
//
// The sequence word is an internal/robust lock word: a writer takes it with
// the map's Locker (odd: locked, the upper bits naming the writer) and
// releases it with a new version (even). Readers keep their lock-free check.
// A reader or writer that finds the word held for robust.Patience spins
// calls Locker.Stuck, which runs Repair if the writer's process is dead, so
// a writer killed in the middle of a copy cannot hang anyone.
//
// # Crash safety
//
// Values of 4 or 8 bytes change with one store: a killed writer's update is
// either complete or absent. A writer of a larger value first copies the old
// value into an undo record (a small pool of them, each with a robust lock
// word, after the sequence words), names the element in it, copies the new
// value, clears the name, and only then releases the element: so a record
// held by a dead process and naming an element marks a copy that began and
// did not finish, and Repair copies the old value back. Every update is
// therefore complete or absent after a crash, and readers, which never
// return a value while its word is held, never see a mix. Nothing else in
// an array can be left half done: there are no counts or links. (Writes
// through a BPF_F_MMAPABLE mapping are plain memory writes and have no such
// protection, as in the kernel.)
//
// # Layout
//
//	header (region.HeaderSize) | pad to page | values | sequence words |
//	undo records (multi-word values: u32 lock, u32 element+1, old value)
package array

import (
	"encoding/binary"
	"runtime"
	"sync/atomic"

	"github.com/bpfmap/bpfmap/internal/mapops"
	"github.com/bpfmap/bpfmap/internal/region"
	"github.com/bpfmap/bpfmap/internal/robust"
	"github.com/bpfmap/bpfmap/internal/uapi"
)

// Family creates ARRAY and PERCPU_ARRAY maps.
var Family mapops.Family = family{}

type family struct{}

// createMask is ARRAY_CREATE_FLAG_MASK.
const createMask = uapi.FNumaNode | uapi.FMmapable | uapi.FAllAccessFlags |
	uapi.FPreserveElems | uapi.FInnerMap

// kernelArraySize is sizeof(struct bpf_array) on 64-bit 6.18 kernels (the
// vmlinux BTF's size), the fixed part of array_map_mem_usage.
const kernelArraySize = 312

func percpu(a *mapops.Attr) bool { return a.Type == uapi.MapTypePercpuArray }

// Check is the kernel's array_map_alloc_check.
func (family) Check(a *mapops.Attr) error {
	pc := percpu(a)
	if a.MaxEntries == 0 || a.KeySize != 4 || a.ValueSize == 0 ||
		a.Flags&^createMask != 0 || mapops.CheckProgAccess(a.Flags) != nil ||
		(pc && mapops.HasNumaNode(a)) {
		return uapi.EINVAL
	}
	if a.Type != uapi.MapTypeArray && a.Flags&(uapi.FMmapable|uapi.FInnerMap) != 0 {
		return uapi.EINVAL
	}
	if a.Type != uapi.MapTypePerfEventArray && a.Flags&uapi.FPreserveElems != 0 {
		return uapi.EINVAL
	}
	if a.ValueSize > 1<<31-1 {
		return uapi.E2BIG
	}
	if pc && mapops.RoundUp8(a.ValueSize) > uapi.PcpuMinUnit {
		return uapi.E2BIG
	}
	return nil
}

type geometry struct {
	stride  uint64 // bytes per element in the value area
	valOff  uint64 // region offset of the value area (page-aligned)
	valSize uint64 // bytes of the value area, page-aligned
	seqOff  uint64 // region offset of the sequence words
	undoOff uint64 // region offset of the undo records (multi-word values)
	undoRec uint64 // bytes per undo record: lock, index, pad, old value
	undoN   uint32 // undo records; 0 for one-word values
}

// undoBudget bounds the undo area: at most 64 records, fewer for large
// values, never fewer than 4.
const undoBudget = 256 << 10

func geometryOf(a *mapops.Attr) geometry {
	g := geometry{stride: mapops.RoundUp8(a.ValueSize)}
	if percpu(a) {
		g.stride *= uint64(a.PossibleCPUs)
	}
	g.valOff = uapi.PageSize
	g.valSize = (uint64(a.MaxEntries)*g.stride + uapi.PageSize - 1) &^ (uapi.PageSize - 1)
	g.seqOff = g.valOff + g.valSize
	g.undoOff = (g.seqOff + 4*uint64(a.MaxEntries) + 7) &^ 7
	size := uint64(a.ValueSize) // bytes a write copies (see Map.size)
	if percpu(a) {
		size = g.stride
	}
	if size != 4 && size != 8 {
		g.undoRec = 8 + g.stride
		g.undoN = uint32(max(4, min(64, undoBudget/g.undoRec)))
	}
	return g
}

// Layout sizes the region; memlock is the kernel's array_map_mem_usage:
// sizeof(struct bpf_array) plus max_entries × elem_size (round_up(value_size,
// 8)) for ARRAY (and ARRAY_OF_MAPS, whose value_size is 4); for a
// BPF_F_MMAPABLE array both parts rounded up to pages; for PERCPU_ARRAY
// max_entries per-CPU pointers plus elem_size per element on every
// possible CPU (the map's modelled PossibleCPUs).
func (family) Layout(a *mapops.Attr) (mapops.Layout, error) {
	g := geometryOf(a)
	n := uint64(a.MaxEntries)
	elem := mapops.RoundUp8(a.ValueSize) // array->elem_size
	var memlock uint64 = kernelArraySize
	switch {
	case percpu(a):
		memlock += n*8 + n*elem*uint64(a.PossibleCPUs)
	case a.Flags&uapi.FMmapable != 0:
		memlock = pageUp(memlock) + pageUp(n*elem)
	default:
		memlock += n * elem
	}
	return mapops.Layout{
		BodySize:   g.undoOff + uint64(g.undoN)*g.undoRec - region.HeaderSize,
		MaxEntries: a.MaxEntries,
		Memlock:    memlock,
	}, nil
}

// pageUp is PAGE_ALIGN.
func pageUp(n uint64) uint64 { return (n + uapi.PageSize - 1) &^ (uapi.PageSize - 1) }

// Traits: arrays support the generic lookup and update batches only.
func (family) Traits(a *mapops.Attr) mapops.Traits {
	return mapops.Traits{
		PerCPU:      percpu(a),
		Update:      mapops.UpdateStd,
		LookupBatch: mapops.BatchGeneric,
		UpdateBatch: mapops.BatchGeneric,
	}
}

// Open returns the operations over an array region.
func (family) Open(r *region.Region, a *mapops.Attr, _ mapops.Layout) (mapops.Ops, error) {
	g := geometryOf(a)
	m := &Map{r: r, mem: r.Mem(), g: g, max: a.MaxEntries, size: uint64(a.ValueSize), locks: a.Locks}
	if m.locks == nil {
		m.locks = robust.New(nil)
	}
	if percpu(a) {
		m.size = g.stride
	}
	switch {
	case m.size == 8:
		m.word = 8
	case m.size == 4:
		m.word = 4
	}
	return m, nil
}

// Map is one array map's operations over its region.
type Map struct {
	r    *region.Region
	mem  region.Mem
	g    geometry
	max  uint32
	size uint64 // bytes copied in and out: value_size, or the per-CPU area
	word int    // 4 or 8 when values move as one atomic word, else 0

	locks *robust.Locker // takes the sequence words of multi-word values
}

var _ mapops.Repairer = (*Map)(nil)

func (m *Map) index(key []byte) uint32 { return binary.LittleEndian.Uint32(key) }

func (m *Map) valOff(i uint32) uint64 { return m.g.valOff + uint64(i)*m.g.stride }

func (m *Map) seq(i uint32) *uint32 { return m.mem.Uint32(m.g.seqOff + uint64(i)*4) }

// Lookup copies element key's value into value; an index past the end is
// ENOENT.
func (m *Map) Lookup(key, value []byte) error {
	i := m.index(key)
	if i >= m.max {
		return uapi.ENOENT
	}
	if m.word == 8 {
		binary.LittleEndian.PutUint64(value, atomic.LoadUint64(m.mem.Uint64(m.valOff(i))))
		return nil
	}
	m.read(i, value)
	return nil
}

// Word returns element i's value when values are one 8-byte word, with one
// atomic load; ok is false when i is past the end or values are not one
// word (the caller then takes the general path, which has the errnos).
// Small enough to be inlined into the public API's hot path.
func (m *Map) Word(i uint32) (v uint64, ok bool) {
	if i >= m.max || m.word != 8 {
		return 0, false
	}
	return atomic.LoadUint64(m.mem.Uint64(m.g.valOff + uint64(i)*m.g.stride)), true
}

// read copies element i into out without tearing.
func (m *Map) read(i uint32, out []byte) {
	off := m.valOff(i)
	switch m.word {
	case 8:
		binary.LittleEndian.PutUint64(out, atomic.LoadUint64(m.mem.Uint64(off)))
		return
	case 4:
		binary.LittleEndian.PutUint32(out, atomic.LoadUint32(m.mem.Uint32(off)))
		return
	}
	sp := m.seq(i)
	src := m.mem.Bytes(off, m.size)
	for spins := 0; ; spins++ {
		s := atomic.LoadUint32(sp)
		if s&1 == 0 {
			copy(out, src)
			region.ReadFence()
			if atomic.LoadUint32(sp) == s {
				return
			}
		}
		if spins > 16 {
			runtime.Gosched()
		}
		if spins%robust.Patience == robust.Patience-1 && s&robust.Locked != 0 {
			m.locks.Stuck(sp, s)
		}
	}
}

// Update overwrites element key. BPF_NOEXIST is EEXIST (elements always
// exist); an index past the end is E2BIG.
func (m *Map) Update(key, value []byte, flags uint64) error {
	i := m.index(key)
	if i >= m.max {
		return uapi.E2BIG
	}
	if flags&uapi.NoExist != 0 {
		return uapi.EEXIST
	}
	m.write(i, value)
	return nil
}

// write stores value into element i so that readers never see it torn.
func (m *Map) write(i uint32, value []byte) {
	off := m.valOff(i)
	switch m.word {
	case 8:
		region.StoreRelease64(m.mem.Uint64(off), binary.LittleEndian.Uint64(value))
		return
	case 4:
		region.StoreRelease32(m.mem.Uint32(off), binary.LittleEndian.Uint32(value))
		return
	}
	sp := m.seq(i)
	ver, ok := m.locks.TryLock(sp) // inlined; Lock waits (and repairs)
	if !ok {
		ver = m.locks.Lock(sp)
	}
	// The old value goes to an undo record first, so that a writer killed
	// in the middle of its copy can be undone (see Crash safety).
	elem := m.mem.Bytes(off, m.size)
	u, uw, uver := m.claimUndo(i)
	copy(m.mem.Bytes(u+8, m.size), elem)
	region.StoreRelease32(m.mem.Uint32(u+4), i+1)
	copy(elem, value[:m.size])
	region.StoreRelease32(m.mem.Uint32(u+4), 0) // done: nothing to undo
	m.locks.Unlock(sp, ver)
	m.locks.Unlock(uw, uver)
}

// claimUndo takes an undo record for a write of element i: its offset, its
// lock word and the version to unlock it with. Records are tried from i's
// own onwards; when all are busy it waits for i's.
func (m *Map) claimUndo(i uint32) (off uint64, w *uint32, ver uint32) {
	n := m.g.undoN
	for k := range n {
		off = m.g.undoOff + uint64((i+k)%n)*m.g.undoRec
		w = m.mem.Uint32(off)
		if ver, ok := m.locks.TryLock(w); ok {
			return off, w, ver
		}
	}
	off = m.g.undoOff + uint64(i%n)*m.g.undoRec
	w = m.mem.Uint32(off)
	return off, w, m.locks.Lock(w)
}

// Repair undoes the writes that writers killed in the middle of a copy left
// behind and releases their words (mapops.Repairer): an undo record held by
// a dead process that names an element means that element's copy had begun
// and not finished (its writer clears the name before releasing the
// element), so the old value goes back; then every sequence word still held
// by a dead process is released (its writer died before it recorded or
// copied anything, or after it finished). Records and words held by live
// writers are left alone: a live writer finishes and releases them itself.
func (m *Map) Repair() {
	defer runtime.KeepAlive(m.r)
	if m.word != 0 {
		return // no sequence words in use
	}
	for k := range m.g.undoN {
		u := m.g.undoOff + uint64(k)*m.g.undoRec
		uw := m.mem.Uint32(u)
		if !m.locks.Dead(uw) {
			continue
		}
		uver := m.locks.Seize(uw)
		if idx := atomic.LoadUint32(m.mem.Uint32(u + 4)); idx != 0 && idx <= m.max {
			i := idx - 1
			sp := m.seq(i)
			ver := m.locks.Seize(sp) // held by the same dead writer
			copy(m.mem.Bytes(m.valOff(i), m.size), m.mem.Bytes(u+8, m.size))
			m.locks.Unlock(sp, ver)
		}
		region.StoreRelease32(m.mem.Uint32(u+4), 0)
		m.locks.Unlock(uw, uver)
	}
	for i := range m.max {
		sp := m.seq(i)
		if m.locks.Dead(sp) {
			m.locks.Unlock(sp, m.locks.Seize(sp))
		}
	}
}

// Delete is EINVAL: array elements cannot be deleted.
func (m *Map) Delete([]byte) error { return uapi.EINVAL }

// LookupAndDelete is ENOTSUPP for arrays.
func (m *Map) LookupAndDelete([]byte, []byte) error { return uapi.ENOTSUPP }

// GetNextKey is the kernel's array_map_get_next_key.
func (m *Map) GetNextKey(key, next []byte) error {
	i := uint32(1<<32 - 1)
	if key != nil {
		i = m.index(key)
	}
	if i >= m.max {
		binary.LittleEndian.PutUint32(next, 0)
		return nil
	}
	if i == m.max-1 {
		return uapi.ENOENT
	}
	binary.LittleEndian.PutUint32(next, i+1)
	return nil
}

// ValueArea returns the value area: element i at i*round_up(value_size, 8),
// page-aligned and page-sized, as the kernel maps it for BPF_F_MMAPABLE.
func (m *Map) ValueArea() []byte { return m.mem.Bytes(m.g.valOff, m.g.valSize) }

// Close releases nothing beyond the region, which the command layer owns.
func (m *Map) Close() error { return nil }
