package ringbuf

import (
	"runtime"
	"sync/atomic"
	"syscall"

	"github.com/bpfmap/bpfmap/internal/region"
	"github.com/bpfmap/bpfmap/internal/robust"
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
	ctlLock      = region.HeaderSize + 0   // u32 reservation lock word (internal/robust)
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

	locks *robust.Locker // the map's lock owner: takes lock, tells dead producers
	// pendRefused counts reservations refused because of the BUSY record at
	// the pending position (see reserve); every robust.Patience-th checks
	// whether its producer is dead.
	pendRefused atomic.Uint32
}

// New allocates an empty ring of size data bytes (a power of two and a
// multiple of the page size; Family.Check enforces this for maps), private
// to this process.
func New(size uint64) (*Ring, error) {
	r, doubled, err := region.NewRing(PageSize, PageSize, size)
	if err != nil {
		return nil, err
	}
	return newOver(r, doubled, size, robust.New(nil)), nil
}

// Over returns a view of the ring in r, a ring region of size data bytes
// laid out as Family.Layout asks (three head pages, the data mapped twice:
// region.NewRing(PageSize, PageSize, size) or region.MapRingFile(fd,
// 3*PageSize, size)), whose lock words locks takes. Every process, and any
// number of views in one process, may produce into the same ring; one
// Reader consumes. r must be fresh or shared (see Family.Open).
func Over(r *region.Region, size uint64, locks *robust.Locker) (*Ring, error) {
	if r == nil || size == 0 || size&(size-1) != 0 || size%PageSize != 0 ||
		uint64(r.Len()) != kernelMetaPages*PageSize+2*size {
		return nil, syscall.EINVAL
	}
	if locks == nil {
		locks = robust.New(nil)
	}
	return over(r, size, locks), nil
}

// NewCopy is New with the portable layout (a maintained second copy of the
// data instead of a second mapping), for tests of the fallback.
func NewCopy(size uint64) (*Ring, error) {
	r, err := region.NewRingCopy(PageSize, PageSize, size)
	if err != nil {
		return nil, err
	}
	return newOver(r, false, size, robust.New(nil)), nil
}

func newOver(r *region.Region, doubled bool, size uint64, locks *robust.Locker) *Ring {
	p := PageSize
	mem := r.Mem()
	return &Ring{
		r: r, mem: mem, page: p, size: size, mask: size - 1, dataOff: 3 * p, doubled: doubled,
		lock: mem.Uint32(ctlLock), waiters: mem.Uint32(ctlWaiters), seq: mem.Uint32(ctlSeq),
		pending: mem.Uint64(ctlPending), consCache: mem.Uint64(ctlConsCache),
		cons: mem.Uint64(p), prod: mem.Uint64(2 * p), locks: locks,
	}
}

// Release frees the memory of a ring from New or NewCopy; afterwards it
// reads as an empty ring whose reservations fail. A map's ring is released
// with the map (its ops' Close and the command layer).
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

// acquire takes the reservation lock word (robust: it records this
// process's token, and a waiter that finds the holder's process gone has the
// map repaired, see Repair) and returns its version for releaseLock.
func (g *Ring) acquire() uint32 { return g.locks.Lock(g.lock) }

func (g *Ring) releaseLock(ver uint32) { g.locks.Unlock(g.lock, ver) }

// owner is a record's pg_off word: while the record is BUSY it names the
// reserving process as a held lock word does (its owner token, and the
// locked bit), so that robust.Locker.Dead tells whether that process is gone.
func (g *Ring) owner(pos uint64) *uint32 { return g.mem.Uint32(g.dataOff + pos&g.mask + 4) }

// recordSize is the bytes a record with header l takes.
func recordSize(l uint32) uint64 {
	return (uint64(l&^(BusyBit|DiscardBit)) + HeaderSize + 7) &^ 7
}

// discardDead turns the BUSY record at pos, whose header read l, into a
// discarded one if the process that reserved it is gone, and reports
// whether the record is no longer BUSY. The caller has waited on the record
// for a while: the check may cost a system call. Nothing but the reserving
// producer and this function write a BUSY header (no new record can be
// reserved over it: the pending position stops at it), so a
// compare-and-swap that finds l still there is safe against a producer
// that commits meanwhile.
func (g *Ring) discardDead(pos uint64, l uint32) bool {
	if l&BusyBit == 0 {
		return true
	}
	if !g.locks.Dead(g.owner(pos)) {
		return false
	}
	atomic.CompareAndSwapUint32(g.hdr(pos), l, l&^BusyBit|DiscardBit)
	return atomic.LoadUint32(g.hdr(pos))&BusyBit == 0
}

// Repair makes the ring consistent after a process died in the middle of an
// operation (mapops.Repairer). It seizes the reservation lock word (taking
// it over from a dead holder), then walks the records from the pending
// position to producer_pos: a record whose producer died between reserve
// and commit becomes discarded (the consumer skips it, and producers may
// reuse its space once it is consumed). A producer that died inside
// reserve left either a complete reservation (producer_pos advanced) or
// none (a header beyond producer_pos, which nothing reads); the pending
// position and the cached consumer_pos are recomputed.
func (g *Ring) Repair() {
	ver := g.locks.Seize(g.lock)
	cons, prod := g.Positions()
	pend := *g.pending
	if pend > prod || prod-pend > g.size {
		pend = prod // not a value reserve stores: restart from what is safe
		if cons <= prod && prod-cons <= g.size {
			pend = cons
		}
	}
	first := prod // the oldest record still BUSY (of a live producer)
	for p := pend; p < prod; {
		l := atomic.LoadUint32(g.hdr(p))
		if l&BusyBit != 0 && !g.discardDead(p, l) && first == prod {
			first = p
		}
		n := recordSize(l)
		if n > g.size {
			first = min(first, p) // a corrupt header: go no further
			break
		}
		p += n
	}
	*g.pending = first
	*g.consCache = cons
	g.releaseLock(ver)
}

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
	ver := g.acquire()
	prod := atomic.LoadUint64(g.prod)
	// Move the pending position past records committed since last time.
	pend := *g.pending
	var pendHdr uint32
	for pend < prod {
		l := atomic.LoadUint32(g.hdr(pend))
		if l&BusyBit != 0 {
			pendHdr = l
			break
		}
		pend += recordSize(l)
	}
	*g.pending = pend
	next := prod + total
	if next-pend > g.mask {
		g.releaseLock(ver)
		// The oldest BUSY record keeps this reservation out. If that goes
		// on for a while, check whether its producer died (out of the lock:
		// the check may be a system call); its record then counts as
		// discarded, and the next reservation's walk passes it.
		if pendHdr != 0 && g.pendRefused.Add(1)%robust.Patience == 0 {
			g.discardDead(pend, pendHdr)
		}
		return 0, false
	}
	// consumer_pos only grows, so a record that fits below an older value
	// fits below the current one: load the consumer's line (which it writes
	// for every record) only when the cached value says the ring is full.
	if next-*g.consCache > g.mask {
		cons := atomic.LoadUint64(g.cons)
		*g.consCache = cons
		if next-cons > g.mask {
			g.releaseLock(ver)
			return 0, false
		}
	}
	// pg_off (which the kernel fills with the record's page offset for its
	// own use and consumers ignore) names the reserving process while the
	// record is BUSY, for a consumer that finds it BUSY for long (owner).
	// It is stored before the header and producer_pos that publish it.
	region.StoreRelease32(g.owner(prod), g.locks.Token()<<2|robust.Locked)
	region.StoreRelease32(g.hdr(prod), uint32(n)|BusyBit)
	region.StoreRelease64(g.prod, next)
	g.releaseLock(ver)
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
