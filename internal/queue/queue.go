// Package queue implements BPF_MAP_TYPE_QUEUE and BPF_MAP_TYPE_STACK over a
// flat region: a ring of max_entries + 1 value slots with a head and a tail
// index, as the kernel keeps them, so capacity is exactly max_entries and
// every observable result (including the kernel's u32 arithmetic of the slot
// count) is the kernel's.
//
// UPDATE pushes (at head), LOOKUP peeks and LOOKUP_AND_DELETE pops: a queue
// takes from the tail (oldest), a stack from below the head (newest). A push
// into a full map with BPF_EXIST first drops the oldest element (advances
// the tail), for both types. The command layer checks the push flags
// (mapops.UpdatePush) and the pop flags before the operation reaches here.
//
// # Concurrency
//
// One spin lock word in the region guards head, tail and the slots; every
// operation (peek included, as in the kernel) holds it while it copies one
// value, so no value is ever seen torn and no element is lost or duplicated
// by concurrent pushes and pops. The lock word keeps bits above bit 0 free
// for an owner identity (cross-process recovery), as the hash family does.
//
// # Layout
//
//	header (region.HeaderSize) | lock u32, head u32, tail u32, pad to 64 | slots
//
// Slot i is value_size bytes at slotsOff + i*value_size. All-zero bytes are
// the valid empty map (head == tail == 0, unlocked).
package queue

import (
	"runtime"
	"sync/atomic"

	"github.com/bpfmap/bpfmap/internal/mapops"
	"github.com/bpfmap/bpfmap/internal/region"
	"github.com/bpfmap/bpfmap/internal/uapi"
)

// Family creates QUEUE and STACK maps.
var Family mapops.Family = family{}

type family struct{}

// createMask is the set of map_flags queue and stack maps accept.
const createMask = uapi.FNumaNode | uapi.FAllAccessFlags

const (
	// Offsets inside the queue header, which starts at region.HeaderSize.
	hdrLock = 0
	hdrHead = 4
	hdrTail = 8
	hdrSize = 64

	slotsOff = region.HeaderSize + hdrSize

	// kernelQueueSize is sizeof(struct bpf_queue_stack) on 6.18 x86-64, as
	// its memlock figure shows ((max_entries+1)*value_size + 312).
	kernelQueueSize = 312
)

// Check is the kernel's queue_stack_map_alloc_check.
func (family) Check(a *mapops.Attr) error {
	if a.MaxEntries == 0 || a.KeySize != 0 || a.ValueSize == 0 ||
		a.Flags&^createMask != 0 || mapops.CheckProgAccess(a.Flags) != nil {
		return uapi.EINVAL
	}
	if a.ValueSize > uapi.KmallocMaxSize {
		return uapi.E2BIG
	}
	return nil
}

// Layout sizes the ring: max_entries + 1 slots; memlock is the kernel's
// queue_stack_map_mem_usage.
func (family) Layout(a *mapops.Attr) (mapops.Layout, error) {
	slots := (uint64(a.MaxEntries) + 1) * uint64(a.ValueSize)
	return mapops.Layout{
		BodySize:   hdrSize + slots,
		MaxEntries: a.MaxEntries,
		Memlock:    kernelQueueSize + slots,
	}, nil
}

// Traits: push flag rules; no batch operations.
func (family) Traits(*mapops.Attr) mapops.Traits {
	return mapops.Traits{Update: mapops.UpdatePush}
}

// Open returns the operations over a queue or stack region.
func (family) Open(r *region.Region, a *mapops.Attr, _ mapops.Layout) (mapops.Ops, error) {
	mem := r.Mem()
	return &Map{
		r:     r,
		mem:   mem,
		lockw: mem.Uint32(region.HeaderSize + hdrLock),
		head:  mem.Uint32(region.HeaderSize + hdrHead),
		tail:  mem.Uint32(region.HeaderSize + hdrTail),
		// The kernel keeps the slot count in a u32: max_entries 2^32-1
		// wraps it to 0, and such a map is always full and always empty.
		size:  a.MaxEntries + 1,
		vsize: uint64(a.ValueSize),
		stack: a.Type == uapi.MapTypeStack,
	}, nil
}

// Map is one queue or stack map's operations over its region.
type Map struct {
	r     *region.Region
	mem   region.Mem
	lockw *uint32
	head  *uint32 // next slot to push into
	tail  *uint32 // oldest element
	size  uint32  // slots: max_entries + 1 (mod 2^32)
	vsize uint64
	stack bool
}

const locked = 1 << 0

func (m *Map) lock() {
	for spins := 0; ; spins++ {
		if lw := atomic.LoadUint32(m.lockw); lw&locked == 0 && atomic.CompareAndSwapUint32(m.lockw, lw, lw|locked) {
			return
		}
		if spins > 16 {
			runtime.Gosched()
		}
	}
}

func (m *Map) unlock() {
	region.StoreRelease32(m.lockw, atomic.LoadUint32(m.lockw)&^locked)
}

func (m *Map) slot(i uint32) []byte { return m.mem.Bytes(slotsOff+uint64(i)*m.vsize, m.vsize) }

// next is i+1 in the ring (the kernel's "if (++i >= size) i = 0").
func (m *Map) next(i uint32) uint32 {
	i++
	if i >= m.size {
		i = 0
	}
	return i
}

// get copies the element a peek or pop takes into value and, with del,
// removes it. Empty is ENOENT and value is left alone.
func (m *Map) get(value []byte, del bool) error {
	m.lock()
	defer m.unlock()
	head, tail := *m.head, *m.tail
	if head == tail {
		return uapi.ENOENT
	}
	if !m.stack {
		copy(value, m.slot(tail))
		if del {
			*m.tail = m.next(tail)
		}
		return nil
	}
	i := head - 1
	if i >= m.size {
		i = m.size - 1
	}
	copy(value, m.slot(i))
	if del {
		*m.head = i
	}
	return nil
}

// Lookup is peek: the oldest element of a queue, the newest of a stack.
func (m *Map) Lookup(_, value []byte) error {
	defer runtime.KeepAlive(m.r)
	return m.get(value, false)
}

// LookupAndDelete is pop.
func (m *Map) LookupAndDelete(_, value []byte) error {
	defer runtime.KeepAlive(m.r)
	return m.get(value, true)
}

// Update is push. A full map is E2BIG, unless flags has BPF_EXIST, which
// makes room by dropping the oldest element.
func (m *Map) Update(_, value []byte, flags uint64) error {
	defer runtime.KeepAlive(m.r)
	m.lock()
	defer m.unlock()
	head := *m.head
	if m.next(head) == *m.tail {
		if flags&uapi.Exist == 0 {
			return uapi.E2BIG
		}
		*m.tail = m.next(*m.tail)
	}
	// With the slot count wrapped to 0, head is always 0 here: the kernel
	// writes slot 0 of its (max_entries+1)-slot area, and so does this.
	copy(m.slot(head), value[:m.vsize])
	*m.head = m.next(head)
	return nil
}

// Delete is EINVAL: elements are only removed by pops.
func (m *Map) Delete([]byte) error { return uapi.EINVAL }

// GetNextKey is EINVAL: queues and stacks have no keys.
func (m *Map) GetNextKey(_, _ []byte) error { return uapi.EINVAL }

// Close releases nothing beyond the region, which the command layer owns.
func (m *Map) Close() error { return nil }
