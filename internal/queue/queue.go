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
// by concurrent pushes and pops. The lock word is an internal/robust word: it
// records its holder, so a waiter that finds the holder's process dead has
// the map repaired (Repair) instead of waiting for ever.
//
// # Crash safety
//
// A process can be killed at any point of an operation on a shared map.
// Every operation changes at most the slot at head (which is never an
// element: the ring has one slot more than the capacity) and the head and
// tail words, in this order:
//
//   - peek changes nothing;
//   - pop copies the element out, then commits with one 32-bit store (tail
//     for a queue, head for a stack); a pop killed before that store is
//     absent, after it complete (its value died with the process, as it
//     would have after a completed pop);
//   - a push into a map with room writes the free slot at head, then
//     commits with one store of head; killed before it, the push is absent
//     (a partly written free slot is not an element), after it complete;
//   - a push into a full map with BPF_EXIST (drop the oldest, add the new)
//     must change head and tail together. It writes the free slot, then
//     publishes the new (head, tail) pair in one 64-bit intent word, stores
//     head and tail, and clears the intent word. Killed before the intent
//     word is set the push is absent; once it is set, Repair completes it by
//     storing the pair again.
//
// So the only state a dead process leaves that Repair must fix is the held
// lock word and a set intent word; head, tail and the element slots are
// otherwise always those of a completed sequence of operations.
//
// # Layout
//
//	header (region.HeaderSize) | lock u32, head u32, tail u32, pad u32,
//	intent u64, pad to 64 | slots
//
// The intent word is ^(new tail << 32 | new head) while a dropping push
// commits, 0 otherwise (the pair is never all ones: indices are below
// 2^32-1).
//
// Slot i is value_size bytes at slotsOff + i*value_size. All-zero bytes are
// the valid empty map (head == tail == 0, unlocked).
package queue

import (
	"fmt"
	"runtime"
	"sync/atomic"

	"github.com/bpfmap/bpfmap/internal/mapops"
	"github.com/bpfmap/bpfmap/internal/region"
	"github.com/bpfmap/bpfmap/internal/robust"
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
	hdrPend = 16
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
	locks := a.Locks
	if locks == nil {
		locks = robust.New(nil)
	}
	return &Map{
		r:     r,
		mem:   mem,
		locks: locks,
		lockw: mem.Uint32(region.HeaderSize + hdrLock),
		head:  mem.Uint32(region.HeaderSize + hdrHead),
		tail:  mem.Uint32(region.HeaderSize + hdrTail),
		pend:  mem.Uint64(region.HeaderSize + hdrPend),
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
	locks *robust.Locker
	lockw *uint32
	pend  *uint64 // intent of a dropping push: ^(tail<<32 | head), or 0
	head  *uint32 // next slot to push into
	tail  *uint32 // oldest element
	size  uint32  // slots: max_entries + 1 (mod 2^32)
	vsize uint64
	stack bool
}

var _ mapops.Repairer = (*Map)(nil)

// lock takes the map's lock word, returning the version to unlock with.
func (m *Map) lock() uint32 {
	if ver, ok := m.locks.TryLock(m.lockw); ok { // inlined fast path
		return ver
	}
	return m.locks.Lock(m.lockw)
}

func (m *Map) unlock(ver uint32) { m.locks.Unlock(m.lockw, ver) }

// Repair makes the map consistent after a process died holding its lock
// (mapops.Repairer): it seizes the lock word and completes a dropping push
// whose intent word is set (see Crash safety in the package doc: nothing
// else can be left unfinished).
func (m *Map) Repair() {
	defer runtime.KeepAlive(m.r)
	ver := m.locks.Seize(m.lockw)
	if p := atomic.LoadUint64(m.pend); p != 0 {
		p = ^p
		*m.head, *m.tail = uint32(p), uint32(p>>32)
		region.StoreRelease64(m.pend, 0)
	}
	m.unlock(ver)
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
	ver := m.lock()
	defer m.unlock(ver)
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
	ver := m.lock()
	defer m.unlock(ver)
	head, tail := *m.head, *m.tail
	full := m.next(head) == tail
	if full && flags&uapi.Exist == 0 {
		return uapi.E2BIG
	}
	// The slot at head is free (not an element) until head moves past it.
	// With the slot count wrapped to 0, head is always 0 here: the kernel
	// writes slot 0 of its (max_entries+1)-slot area, and so does this.
	copy(m.slot(head), value[:m.vsize])
	nh := m.next(head)
	if !full {
		*m.head = nh
		return nil
	}
	// Drop the oldest and add the new element as one change: a process
	// killed between the two stores leaves the intent for Repair.
	nt := m.next(tail)
	region.StoreRelease64(m.pend, ^(uint64(nt)<<32 | uint64(nh)))
	*m.head, *m.tail = nh, nt
	region.StoreRelease64(m.pend, 0)
	return nil
}

// Delete is EINVAL: elements are only removed by pops.
func (m *Map) Delete([]byte) error { return uapi.EINVAL }

// GetNextKey is EINVAL: queues and stacks have no keys.
func (m *Map) GetNextKey(_, _ []byte) error { return uapi.EINVAL }

// Close releases nothing beyond the region, which the command layer owns.
func (m *Map) Close() error { return nil }

// Validate checks, for a map opened from a file another process wrote, the
// words a queue uses as slot indices: head, tail and a pending dropping
// push's pair must name slots of the ring (mapops.Validator).
func (m *Map) Validate() error {
	robust.Release(m.lockw) // no live process has the map open
	if m.size == 0 {
		return nil // max_entries 2^32-1: the kernel's always full, always empty map
	}
	h, t := atomic.LoadUint32(m.head), atomic.LoadUint32(m.tail)
	if p := atomic.LoadUint64(m.pend); p != 0 {
		p = ^p
		if uint32(p) >= m.size || uint32(p>>32) >= m.size {
			return fmt.Errorf("queue: pending push names slots %d/%d of %d", uint32(p), uint32(p>>32), m.size)
		}
	}
	if h >= m.size || t >= m.size {
		return fmt.Errorf("queue: head %d, tail %d, %d slots", h, t, m.size)
	}
	return nil
}
