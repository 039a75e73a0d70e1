// Package ringbuf implements BPF_MAP_TYPE_RINGBUF: the kernel's ring buffer
// map, with its creation rules and errnos, its memory layout and record
// format, a producer with the semantics of the bpf_ringbuf_reserve /
// bpf_ringbuf_submit / bpf_ringbuf_discard / bpf_ringbuf_output helpers,
// and a blocking consumer shaped like cilium/ebpf's ringbuf.Reader.
//
// # Memory layout
//
// A ring lives in the command layer's region, which Layout asks to be a
// ring region (mapops.Layout.RingData; P = the page size, S = max_entries,
// the data size):
//
//	[0, P)            meta page: region header, then this package's control
//	                  words (reservation lock word, pending position, cached
//	                  consumer_pos; waiter flag and wake-up sequence in the
//	                  next cache line pair)
//	[P, 2P)           consumer page: consumer_pos (u64) at byte 0
//	[2P, 3P)          producer page: producer_pos (u64) at byte 0
//	[3P, 3P+S)        data
//	[3P+S, 3P+2S)     the data again
//
// Everything from the consumer page on is byte for byte what mmap(2) of a
// kernel ring buffer's fd shows (Ring.Mapping), so a consumer written for the
// kernel's layout works unchanged. All of the ring's state is in the region,
// so a shared map (a MAP_SHARED mapping of its object file,
// region.MapRingFile) is one ring for every process that maps it: any of
// them may produce, one consumes, and the wake-up words are futex words in
// the shared file (region.Wait32 is not FUTEX_PRIVATE), so a commit in one
// process wakes a reader asleep in another. Lookup finds a region's Ring, a
// process-local view built once by Open.
//
// On Linux the second copy of the data is the same memory mapped twice (the
// map's file, or a memfd for a private map); elsewhere a private map's
// second copy is separate memory, and a producer whose record wraps past
// the end of the first copy writes it linearly into the second and, before
// committing, copies the wrapped part to the start of the first, so both
// views show every committed byte. Open tells the two apart by a probe.
//
// # Records
//
// Positions are free-running u64 byte counters; a record at position p
// starts at data offset p & (S-1) with an 8-byte header {u32 len; u32
// pg_off}: len's bit 31 is BUSY (reserved, not committed), bit 30 DISCARD,
// the low 30 bits the payload length; the record takes round_up(len+8, 8)
// bytes. The kernel keeps its own bookkeeping in pg_off (3 + offset/P, to
// find its struct from a record) and user-space consumers ignore it:
// libbpf and cilium/ebpf's ringbuf reader read len only. Here pg_off holds
// the reserving process's owner token, as a held robust lock word (token
// << 2 | 1), written before the header and producer_pos publish the
// record, so that a record left BUSY can be traced to its producer.
//
// # Producers
//
// Reservation runs under a lock word in the meta page (internal/robust: it
// records the holder's token), as the kernel's reservation takes
// rb->spinlock: it checks the kernel's conditions — the record fits
// (round_up(n+8, 8) ≤ S, n ≤ 2^30-1) and the new producer position stays
// within S-1 bytes of both consumer_pos and the oldest record still BUSY
// (the kernel's pending_pos, which keeps a consumer that moves
// consumer_pos too far from letting a producer overwrite a record in use)
// — writes pg_off and the BUSY header and advances producer_pos. A refused
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
// # Processes that die
//
// A process killed while holding the reservation lock: a producer waiting
// on it finds the holder dead after robust.Patience spins and has the map
// repaired (Locker.Stuck, then the command layer's repair lock and
// Repair). Repair seizes the lock, discards the BUSY records of dead
// producers between the pending position and producer_pos, and recomputes
// the pending position and the cached consumer_pos; the command layer also
// runs it when a process attaches to a map a dead process had open.
//
// A process killed between reserve and commit leaves a BUSY record, which
// would stop the consumer (and, through the pending position, eventually
// the producers) for ever. A Reader that has found the record at
// consumer_pos BUSY for StallCheck checks whether the process named in its
// pg_off still runs (a system call for a shared map, so only then) and if
// not marks the record discarded with a compare-and-swap (no one but its
// producer writes a BUSY header, and no record can be reserved over it),
// and reads on. A producer refused robust.Patience times because of the
// BUSY record at the pending position makes the same check.
//
// # Consumer
//
// A Reader follows the kernel's user-space protocol (load producer_pos,
// load the header, stop at BUSY, skip DISCARD, store consumer_pos with
// release). On an empty ring it polls briefly (yielding the processor), then
// sets the waiter flag and sleeps on the wake-up sequence word
// (region.Wait32: futex(2) on Linux, a process-local emulation elsewhere);
// a producer that takes the flag bumps the sequence and wakes it. Stopped at
// a BUSY record it sleeps at most StallCheck at a time (see above). It loads
// producer_pos only once it has consumed everything below the value it last
// loaded. There must be one consumer per ring, as for the kernel's ring
// buffer, in all the processes that map it.
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
	"github.com/bpfmap/bpfmap/internal/robust"
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

// Layout asks the command layer for a ring region laid out as the kernel's
// ring buffer (see the package doc): a head of three pages (the meta page
// with the region header and the control words, the consumer page, the
// producer page) and S data bytes mapped twice (RingData). Memlock is the
// kernel's ringbuf_map_mem_usage: the struct, a page pointer per meta page
// and two per data page (the double mapping), and the pages.
func (family) Layout(a *mapops.Attr) (mapops.Layout, error) {
	s := uint64(a.MaxEntries)
	n := s / PageSize
	return mapops.Layout{
		BodySize:   kernelMetaPages*PageSize + s - region.HeaderSize,
		MaxEntries: a.MaxEntries,
		Memlock:    kernelMapStruct + (kernelMetaPages+2*n)*8 + (kernelMetaPages+n)*PageSize,
		RingData:   s,
	}, nil
}

// Traits: no element command reaches the ring; its ops decide every errno.
func (family) Traits(*mapops.Attr) mapops.Traits {
	return mapops.Traits{Update: mapops.UpdateNone}
}

// Open builds the Ring over r, the command layer's ring region (three head
// pages, then the data mapped twice), and registers it for Lookup. All the
// ring's state is in r, so any number of processes can open the same map.
func (family) Open(r *region.Region, a *mapops.Attr, _ mapops.Layout) (mapops.Ops, error) {
	s := uint64(a.MaxEntries)
	if r == nil || uint64(r.Len()) != kernelMetaPages*PageSize+2*s {
		return nil, uapi.EINVAL
	}
	locks := a.Locks
	if locks == nil {
		locks = robust.New(nil)
	}
	ring := over(r, s, locks)
	rings.add(r, ring)
	return &ops{key: r, ring: ring}, nil
}

// over builds the Ring of a ring region of data size s. A shared region
// (region.MapRingFile) is always doubled; a private one from region.NewRing
// may be the portable fallback, which a probe of its first data word tells
// apart: a fresh private region is reachable by no one else yet.
func over(r *region.Region, s uint64, locks *robust.Locker) *Ring {
	doubled := true
	if !r.Shared() {
		mem, off := r.Mem(), kernelMetaPages*PageSize
		a, b := mem.Uint32(off), mem.Uint32(off+s)
		old := atomic.LoadUint32(a)
		doubled = false
		if atomic.LoadUint32(b) == old {
			atomic.StoreUint32(b, ^old)
			doubled = atomic.LoadUint32(a) == ^old
			atomic.StoreUint32(b, old)
		}
	}
	return newOver(r, doubled, s, locks)
}

// Lookup returns the ring of the ring buffer map whose command-layer region
// is r, or nil if no open map of this process has that region. It is on
// every producer call of the public API, so it allocates nothing: it checks
// the most recently opened ring, then reads a copy-on-write table (one
// atomic load and one map lookup).
func Lookup(r *region.Region) *Ring {
	if e := rings.last.Load(); e != nil && e.key == r {
		return e.ring
	}
	if t := rings.table.Load(); t != nil {
		return (*t)[r]
	}
	return nil
}

// ringTable maps the regions of this process's open ring buffer maps to
// their Rings (process-local views of state that lives in the regions).
// Readers load the current table; Open and Close replace it under mu.
type ringTable struct {
	last  atomic.Pointer[ringEntry] // the ring added last, while registered
	table atomic.Pointer[map[*region.Region]*Ring]
	mu    sync.Mutex
	refs  map[*region.Region]int
}

var rings = &ringTable{refs: map[*region.Region]int{}}

// ringEntry is a registered ring and its region.
type ringEntry struct {
	key  *region.Region
	ring *Ring
}

// add registers g for r; a region opened again keeps its first Ring.
func (t *ringTable) add(r *region.Region, g *Ring) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.refs[r]++
	if t.refs[r] > 1 {
		return
	}
	t.replace(func(m map[*region.Region]*Ring) { m[r] = g })
	t.last.Store(&ringEntry{key: r, ring: g})
}

// remove drops one registration of r.
func (t *ringTable) remove(r *region.Region) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.refs[r] == 0 {
		return
	}
	if t.refs[r]--; t.refs[r] > 0 {
		return
	}
	delete(t.refs, r)
	if e := t.last.Load(); e != nil && e.key == r {
		t.last.Store(nil)
	}
	t.replace(func(m map[*region.Region]*Ring) { delete(m, r) })
}

func (t *ringTable) replace(change func(map[*region.Region]*Ring)) {
	m := map[*region.Region]*Ring{}
	if old := t.table.Load(); old != nil {
		for k, v := range *old {
			m[k] = v
		}
	}
	change(m)
	t.table.Store(&m)
}

// ops is the element-command table: the kernel's ringbuf map ops answer
// every element command with -ENOTSUPP.
type ops struct {
	key  *region.Region
	ring *Ring
}

func (*ops) Lookup(_, _ []byte) error           { return uapi.ENOTSUPP }
func (*ops) Update(_, _ []byte, _ uint64) error { return uapi.ENOTSUPP }
func (*ops) Delete([]byte) error                { return uapi.ENOTSUPP }
func (*ops) GetNextKey(_, _ []byte) error       { return uapi.ENOTSUPP }
func (*ops) LookupAndDelete(_, _ []byte) error  { return uapi.ENOTSUPP }

// Ring returns the map's ring.
func (o *ops) Ring() *Ring { return o.ring }

// Repair makes the ring consistent after a process died in the middle of
// an operation (mapops.Repairer); see Ring.Repair.
func (o *ops) Repair() { o.ring.Repair() }

// Close runs when the map's last handle in this process closes: the ring
// leaves the Lookup table. A private ring's memory is released here
// (region.ReleaseRing: the pages its two mappings share are freed, so it
// reads as an empty ring afterwards); a shared one is the command layer's
// to release or free, since other processes may still use the map.
func (o *ops) Close() error {
	rings.remove(o.key)
	if o.key.Shared() {
		return nil
	}
	return o.key.ReleaseRing()
}
