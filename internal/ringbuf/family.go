// Package ringbuf implements BPF_MAP_TYPE_RINGBUF: the kernel's ring buffer
// map, with its creation rules and errnos, its memory layout and record
// format, a producer with the semantics of the bpf_ringbuf_reserve /
// bpf_ringbuf_submit / bpf_ringbuf_discard / bpf_ringbuf_output helpers,
// and a blocking consumer shaped like cilium/ebpf's ringbuf.Reader.
//
// # Memory layout
//
// A ring lives in a region from region.NewRing (P = the page size, S =
// max_entries, the data size):
//
//	[0, P)            meta page: region header, then this package's control
//	                  words (reservation lock, pending position, cached
//	                  consumer_pos; waiter flag and wake-up sequence in the
//	                  next cache line pair)
//	[P, 2P)           consumer page: consumer_pos (u64) at byte 0
//	[2P, 3P)          producer page: producer_pos (u64) at byte 0
//	[3P, 3P+S)        data
//	[3P+S, 3P+2S)     the data again
//
// Everything from the consumer page on is byte for byte what mmap(2) of a
// kernel ring buffer's fd shows (Ring.Mapping), so a consumer written for the
// kernel's layout works unchanged. On Linux the second copy of the data is
// the same memory mapped twice (a memfd); elsewhere it is separate memory,
// and a producer whose record wraps past the end of the first copy writes
// it linearly into the second and, before committing, copies the wrapped
// part to the start of the first, so both views show every committed byte.
//
// # Records
//
// Positions are free-running u64 byte counters; a record at position p
// starts at data offset p & (S-1) with an 8-byte header {u32 len; u32
// pg_off}: len's bit 31 is BUSY (reserved, not committed), bit 30 DISCARD,
// the low 30 bits the payload length; the record takes round_up(len+8, 8)
// bytes. pg_off is what the kernel stores (3 + offset/P; consumers ignore it).
//
// # Producers
//
// Reservation runs under a spin lock word in the meta page, as the kernel's
// reservation takes rb->spinlock: it checks the kernel's conditions — the
// record fits (round_up(n+8, 8) ≤ S, n ≤ 2^30-1) and the new producer
// position stays within S-1 bytes of both consumer_pos and the oldest
// record still BUSY (the kernel's pending_pos, which keeps a consumer that
// moves consumer_pos too far from letting a producer overwrite a record in
// use) — writes the BUSY header and advances producer_pos. A refused
// reservation is ErrFull, which matches EAGAIN: the helper's
// bpf_ringbuf_output returns -EAGAIN, bpf_ringbuf_reserve NULL. Submit and
// Discard clear BUSY (setting DISCARD for Discard) with an atomic store that
// also orders the following check of the waiter flag, and wake a sleeping
// consumer (the producer that swaps the flag from 1 to 0 makes the one
// futex wake). Any number of goroutines may produce concurrently. A
// producer keeps the last consumer_pos it loaded in the meta page and loads
// the consumer's line again only when that value says the record does not
// fit (consumer_pos only grows, so the answer is the kernel's).
//
// # Consumer
//
// A Reader follows the kernel's user-space protocol (load producer_pos,
// load the header, stop at BUSY, skip DISCARD, store consumer_pos with
// release). On an empty ring it polls briefly (yielding the processor), then
// sets the waiter flag and sleeps on the wake-up sequence word
// (region.Wait32: futex(2) on Linux, a process-local emulation elsewhere);
// a producer that takes the flag bumps the sequence and wakes it. It loads
// producer_pos only once it has consumed everything below the value it last
// loaded. There must be one consumer per ring, as for the kernel's ring
// buffer.
//
// # Map commands
//
// Every element command is ENOTSUPP (524) and no batch command exists; the
// command layer's generic checks (a key pointer must be NULL for key_size 0,
// LOOKUP flags, permissions) come first, as in the kernel. FREEZE succeeds
// and changes nothing.
package ringbuf

import (
	"os"
	"sync"
	"sync/atomic"

	"github.com/bpfmap/bpfmap/internal/mapops"
	"github.com/bpfmap/bpfmap/internal/region"
	"github.com/bpfmap/bpfmap/internal/uapi"
)

// Family creates BPF_MAP_TYPE_RINGBUF maps.
var Family mapops.Family = family{}

type family struct{}

// createMask is the set of map_flags ring buffers accept (not even
// BPF_F_RDONLY or BPF_F_WRONLY).
const createMask = uapi.FNumaNode

// PageSize is the page size the creation rules and the layout use.
var PageSize = uint64(os.Getpagesize())

// Kernel constants (kernel/bpf/ringbuf.c, as observed): the meta pages
// before the data (the struct's own page, the consumer and producer pages),
// the data size limit set by the 32-bit page offset in record headers, and
// sizeof(struct bpf_ringbuf_map) as the memlock figure shows it.
const (
	kernelMetaPages = 3
	kernelMapStruct = 304
	maxRecord       = 1<<30 - 1 // low 30 bits of len (the kernel: UINT_MAX/4)
)

// Check is the validation of the kernel's ringbuf_map_alloc.
func (family) Check(a *mapops.Attr) error {
	if a.Flags&^createMask != 0 {
		return uapi.EINVAL
	}
	s := uint64(a.MaxEntries)
	if a.KeySize != 0 || a.ValueSize != 0 || s == 0 || s&(s-1) != 0 || s%PageSize != 0 {
		return uapi.EINVAL
	}
	if s > ((1<<24)-kernelMetaPages)*PageSize {
		return uapi.E2BIG // unreachable with a u32 max_entries and 4 KiB pages
	}
	return nil
}

// Layout: the ring's memory is a separate region (see Open), so the command
// layer's region holds only the header and one word, the ring's slot in the
// table Lookup reads (see Open). Memlock is the kernel's
// ringbuf_map_mem_usage: the struct, a page pointer per meta page and two
// per data page (the double mapping), and the pages.
func (family) Layout(a *mapops.Attr) (mapops.Layout, error) {
	n := uint64(a.MaxEntries) / PageSize
	return mapops.Layout{
		BodySize:   slotWordSize,
		MaxEntries: a.MaxEntries,
		Memlock:    kernelMapStruct + (kernelMetaPages+2*n)*8 + (kernelMetaPages+n)*PageSize,
	}, nil
}

// Traits: no element command reaches the ring; its ops decide every errno.
func (family) Traits(*mapops.Attr) mapops.Traits {
	return mapops.Traits{Update: mapops.UpdateNone}
}

// Open allocates the ring's region (region.NewRing, which the command
// layer's plain region cannot be), copies r's header into it so it is
// self-describing, and registers the ring under r for Lookup.
func (family) Open(r *region.Region, a *mapops.Attr, _ mapops.Layout) (mapops.Ops, error) {
	ring, err := New(uint64(a.MaxEntries))
	if err != nil {
		return nil, uapi.ENOMEM
	}
	*ring.r.Header() = *r.Header()
	o := &ops{key: r, ring: ring}
	o.slot = slots.add(&slotEntry{key: r, ring: ring})
	atomic.StoreUint64(r.Uint64(region.HeaderSize), o.slot)
	return o, nil
}

// Lookup returns the ring of the ring buffer map whose command-layer region
// is r, or nil. It is on every producer call of the public API, so it is a
// table lookup, not a map's: r's body holds the ring's slot number, and the
// slot's entry names its region (a slot freed and reused by another map
// while a caller was reading it does not match).
func Lookup(r *region.Region) *Ring {
	if r == nil || r.Len() < int(region.HeaderSize+slotWordSize) {
		return nil
	}
	e := slots.get(atomic.LoadUint64(r.Uint64(region.HeaderSize)))
	if e == nil || e.key != r {
		return nil
	}
	return e.ring
}

// slotWordSize is the size of the slot number in the command region's body.
const slotWordSize = 8

// slotEntry is a registered ring and the command-layer region it belongs to.
type slotEntry struct {
	key  *region.Region
	ring *Ring
}

// slotChunk is a fixed block of slots; the table grows by chunks, so a
// lookup never sees a slot move.
type slotChunk [256]atomic.Pointer[slotEntry]

// slotTable is the registry of open rings: slot i lives in chunk i/256.
// Readers load the chunk list and the slot atomically; adds and removes
// take mu. Slot 0 is never used (a zeroed, released region reads 0).
type slotTable struct {
	chunks atomic.Pointer[[]*slotChunk]
	mu     sync.Mutex
	free   []uint64
	next   uint64
}

var slots = &slotTable{next: 1}

func (t *slotTable) get(i uint64) *slotEntry {
	cs := t.chunks.Load()
	if cs == nil || i/256 >= uint64(len(*cs)) {
		return nil
	}
	return (*cs)[i/256][i%256].Load()
}

func (t *slotTable) add(e *slotEntry) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	var i uint64
	if n := len(t.free); n > 0 {
		i, t.free = t.free[n-1], t.free[:n-1]
	} else {
		i = t.next
		t.next++
	}
	var cs []*slotChunk
	if p := t.chunks.Load(); p != nil {
		cs = *p
	}
	if i/256 >= uint64(len(cs)) {
		grown := append(cs[:len(cs):len(cs)], new(slotChunk))
		t.chunks.Store(&grown)
		cs = grown
	}
	cs[i/256][i%256].Store(e)
	return i
}

func (t *slotTable) remove(i uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if (*t.chunks.Load())[i/256][i%256].Swap(nil) != nil {
		t.free = append(t.free, i)
	}
}

// ops is the element-command table: the kernel's ringbuf map ops answer
// every element command with -ENOTSUPP.
type ops struct {
	key  *region.Region
	ring *Ring
	slot uint64
}

func (*ops) Lookup(_, _ []byte) error           { return uapi.ENOTSUPP }
func (*ops) Update(_, _ []byte, _ uint64) error { return uapi.ENOTSUPP }
func (*ops) Delete([]byte) error                { return uapi.ENOTSUPP }
func (*ops) GetNextKey(_, _ []byte) error       { return uapi.ENOTSUPP }
func (*ops) LookupAndDelete(_, _ []byte) error  { return uapi.ENOTSUPP }

// Ring returns the map's ring.
func (o *ops) Ring() *Ring { return o.ring }

// Close runs when the map's last handle closes: the ring's memory is
// released (it reads as zeroes afterwards; readers still holding the ring
// keep its address range mapped).
func (o *ops) Close() error {
	slots.remove(o.slot)
	return o.ring.Release()
}
