package ringbuf

import (
	"runtime"
	"sync/atomic"
	"syscall"

	"github.com/bpfmap/bpfmap/internal/region"
)

// Record header bits (struct bpf_ringbuf_hdr's len).
const (
	BusyBit    = 1 << 31
	DiscardBit = 1 << 30
	HeaderSize = 8
)

// Control words in the meta page, after the region header, in two cache
// lines: the producers' line (the reservation lock and what only producers
// touch under it) and the wake-up line (written only when a consumer goes to
// sleep or is woken), so that a commit's check for a sleeping consumer reads
// a line the producers do not keep stealing from each other.
const (
	ctlLock      = region.HeaderSize + 0   // u32 reservation spin lock
	ctlPending   = region.HeaderSize + 8   // u64 oldest position that may still be BUSY
	ctlConsCache = region.HeaderSize + 16  // u64 consumer_pos as last loaded by a producer
	ctlWaiters   = region.HeaderSize + 128 // u32 1 while a consumer is about to sleep or sleeping
	ctlSeq       = region.HeaderSize + 132 // u32 wake-up sequence (the futex word)
)

// ErrFull is a refused reservation: the record does not fit in the free
// space (or ever, if round_up(n+8, 8) > S − 1). It matches syscall.EAGAIN
// (errors.Is), the errno bpf_ringbuf_output returns in BPF.
var ErrFull error = fullError{}

type fullError struct{}

func (fullError) Error() string        { return "ring buffer full" }
func (fullError) Is(target error) bool { return target == syscall.EAGAIN }
func (fullError) Errno() syscall.Errno { return syscall.EAGAIN }

// Ring is one ring buffer's memory and producer. Its methods are safe for
// concurrent use by any number of producers; one Reader consumes.
type Ring struct {
	r       *region.Region
	mem     region.Mem
	page    uint64
	size    uint64 // S
	mask    uint64
	dataOff uint64 // offset of the data in mem
	doubled bool

	lock, waiters, seq *uint32
	pending, consCache *uint64
	cons, prod         *uint64
}

// New allocates an empty ring of size data bytes (a power of two and a
// multiple of the page size; Family.Check enforces this for maps).
func New(size uint64) (*Ring, error) {
	r, doubled, err := region.NewRing(PageSize, PageSize, size)
	if err != nil {
		return nil, err
	}
	return newOver(r, doubled, size), nil
}

// NewCopy is New with the portable layout (a maintained second copy of the
// data instead of a second mapping), for tests of the fallback.
func NewCopy(size uint64) (*Ring, error) {
	r, err := region.NewRingCopy(PageSize, PageSize, size)
	if err != nil {
		return nil, err
	}
	return newOver(r, false, size), nil
}

func newOver(r *region.Region, doubled bool, size uint64) *Ring {
	p := PageSize
	mem := r.Mem()
	return &Ring{
		r: r, mem: mem, page: p, size: size, mask: size - 1, dataOff: 3 * p, doubled: doubled,
		lock: mem.Uint32(ctlLock), waiters: mem.Uint32(ctlWaiters), seq: mem.Uint32(ctlSeq),
		pending: mem.Uint64(ctlPending), consCache: mem.Uint64(ctlConsCache),
		cons: mem.Uint64(p), prod: mem.Uint64(2 * p),
	}
}

// Release frees the ring's memory; afterwards it reads as an empty ring
// whose reservations fail.
func (g *Ring) Release() error { return g.r.ReleaseRing() }

// Size is the data size S (max_entries).
func (g *Ring) Size() int { return int(g.size) }

// Doubled reports whether the second copy of the data is the same memory
// (true on Linux) rather than a maintained copy.
func (g *Ring) Doubled() bool { return g.doubled }

// Mapping returns the ring as the kernel's mmap of a ring buffer fd shows
// it: consumer page, producer page, data, data again (2P + 2S bytes). A
// consumer advances consumer_pos (byte 0) with an atomic store; it must not
// write elsewhere (the kernel maps the rest read-only). The slice is valid
// while the Ring is reachable.
func (g *Ring) Mapping() []byte { return g.mem[g.page:] }

// Positions returns consumer_pos and producer_pos.
func (g *Ring) Positions() (cons, prod uint64) {
	return atomic.LoadUint64(g.cons), atomic.LoadUint64(g.prod)
}

// AvailableBytes is producer_pos − consumer_pos: bytes reserved or
// committed and not yet consumed.
func (g *Ring) AvailableBytes() int {
	c, p := g.Positions()
	return int(p - c)
}

func (g *Ring) hdr(pos uint64) *uint32 { return g.mem.Uint32(g.dataOff + pos&g.mask) }

// acquire takes the reservation lock: test and test-and-set, so waiting
// producers spin on a shared copy of the line instead of stealing it, and
// yield after a while (the holder may have been descheduled).
func (g *Ring) acquire() {
	if atomic.CompareAndSwapUint32(g.lock, 0, 1) {
		return
	}
	for spins := 0; ; spins++ {
		if atomic.LoadUint32(g.lock) == 0 && atomic.CompareAndSwapUint32(g.lock, 0, 1) {
			return
		}
		if spins > 32 {
			runtime.Gosched()
		}
	}
}

func (g *Ring) releaseLock() { region.StoreRelease32(g.lock, 0) }

// Reservation is a reserved record: write the payload into Bytes, then
// Submit or Discard it exactly once. It is a value; copying it copies the
// handle to the same record.
type Reservation struct {
	g   *Ring
	pos uint64
	n   uint32
}

// Bytes is the record's payload, contiguous even when the record wraps.
func (v Reservation) Bytes() []byte {
	off := v.g.dataOff + v.pos&v.g.mask + HeaderSize
	return v.g.mem[off : off+uint64(v.n) : off+uint64(v.n)]
}

// Reserve reserves a record of n payload bytes, as bpf_ringbuf_reserve.
func (g *Ring) Reserve(n int) (Reservation, error) {
	pos, ok := g.reserve(n)
	runtime.KeepAlive(g)
	if !ok {
		return Reservation{}, ErrFull
	}
	return Reservation{g: g, pos: pos, n: uint32(n)}, nil
}

// reserve is the kernel's __bpf_ringbuf_reserve: it returns the position of
// a new BUSY record of n payload bytes, or false if it does not fit.
func (g *Ring) reserve(n int) (uint64, bool) {
	if n < 0 || n > maxRecord {
		return 0, false
	}
	total := (uint64(n) + HeaderSize + 7) &^ 7
	if total > g.size {
		return 0, false
	}
	g.acquire()
	prod := atomic.LoadUint64(g.prod)
	// Move the pending position past records committed since last time.
	pend := *g.pending
	for pend < prod {
		l := atomic.LoadUint32(g.hdr(pend))
		if l&BusyBit != 0 {
			break
		}
		pend += (uint64(l&^(BusyBit|DiscardBit)) + HeaderSize + 7) &^ 7
	}
	*g.pending = pend
	next := prod + total
	if next-pend > g.mask {
		g.releaseLock()
		return 0, false
	}
	// consumer_pos only grows, so a record that fits below an older value
	// fits below the current one: load the consumer's line (which it writes
	// for every record) only when the cached value says the ring is full.
	if next-*g.consCache > g.mask {
		cons := atomic.LoadUint64(g.cons)
		*g.consCache = cons
		if next-cons > g.mask {
			g.releaseLock()
			return 0, false
		}
	}
	off := g.dataOff + prod&g.mask
	// pg_off: the record's page counted from the kernel's struct, whose
	// data starts after 3 meta pages.
	region.StoreRelease32(g.mem.Uint32(off+4), uint32(kernelMetaPages+(prod&g.mask)/g.page))
	region.StoreRelease32(g.mem.Uint32(off), uint32(n)|BusyBit)
	region.StoreRelease64(g.prod, next)
	g.releaseLock()
	return prod, true
}

// Submit commits the record, as bpf_ringbuf_submit.
func (v Reservation) Submit() { v.commit(false) }

// Discard drops the record, as bpf_ringbuf_discard: the consumer skips it.
func (v Reservation) Discard() { v.commit(true) }

func (v Reservation) commit(discard bool) {
	g := v.g
	l := v.n
	if discard {
		l |= DiscardBit
	} else if !g.doubled {
		// Without a shared second mapping, copy the part written past the
		// end of the first data copy to its start before committing.
		start := v.pos & g.mask
		if end := start + HeaderSize + uint64(v.n); end > g.size {
			copy(g.mem[g.dataOff:g.dataOff+end-g.size], g.mem[g.dataOff+g.size:g.dataOff+end])
		}
	}
	// Sequentially consistent store (XCHG on amd64): release for the
	// payload, and ordered before the load of the waiter flag (a consumer
	// about to sleep sets the flag, then re-reads this header).
	atomic.StoreUint32(g.hdr(v.pos), l)
	// Only the producer that takes the flag wakes: a sleeping consumer costs
	// one futex wake, not one per commit until it runs again.
	if atomic.LoadUint32(g.waiters) != 0 && atomic.SwapUint32(g.waiters, 0) != 0 {
		atomic.AddUint32(g.seq, 1)
		region.Wake32(g.seq)
	}
	runtime.KeepAlive(g)
}

// Output copies data into a new record and commits it, as
// bpf_ringbuf_output.
func (g *Ring) Output(data []byte) error {
	pos, ok := g.reserve(len(data))
	if !ok {
		runtime.KeepAlive(g)
		return ErrFull
	}
	off := g.dataOff + pos&g.mask + HeaderSize
	copy(g.mem[off:off+uint64(len(data))], data)
	Reservation{g: g, pos: pos, n: uint32(len(data))}.commit(false)
	return nil
}
