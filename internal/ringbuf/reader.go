package ringbuf

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bpfmap/bpfmap/internal/region"
)

// ErrClosed is returned by a Reader's Read after Close; it is os.ErrClosed,
// as cilium/ebpf's ringbuf.ErrClosed.
var ErrClosed = os.ErrClosed

// Record is one record read from the ring.
type Record struct {
	RawSample []byte
	// Remaining is the minimum number of bytes left to read in the ring
	// after this record (as in cilium/ebpf): it counts up to producer_pos
	// as the Reader last loaded it, which it does only once it has read
	// everything below the previous value.
	Remaining int
}

// Reader consumes a ring, mirroring cilium/ebpf's ringbuf.Reader. Read and
// ReadInto block (without spinning) until a record is committed, the
// deadline passes (os.ErrDeadlineExceeded) or Close is called (ErrClosed).
type Reader struct {
	g        *Ring
	mu       sync.Mutex // serializes reads
	closed   atomic.Bool
	deadline atomic.Int64 // unix nanoseconds; 0 = none
	onClose  func() error
	// prod is producer_pos as last loaded (under mu). Records below it were
	// reserved when it was loaded, so next reads their headers without
	// loading producer_pos again — the line every reservation writes — until
	// it has consumed up to it.
	prod uint64
	// stall is 1 + the position of a BUSY record the reader has slept on,
	// since stallSince (0: none); see checkStall.
	stall      uint64
	stallSince time.Time
}

// StallCheck is how long a Reader waits on a record that stays BUSY before
// it checks whether the producer that reserved it is still running (a
// system call on a shared map). A record whose producer died between
// reserve and commit is then treated as discarded, so the records after it
// are delivered. A live producer is checked again every StallCheck; its
// commit wakes the reader at once as usual.
const StallCheck = 10 * time.Millisecond

// NewReader returns a reader of g. onClose, if not nil, runs once on Close
// (the public API drops its reference to the map there).
func NewReader(g *Ring, onClose func() error) *Reader {
	return &Reader{g: g, onClose: onClose}
}

// BufferSize is the ring's data size.
func (r *Reader) BufferSize() int { return r.g.Size() }

// AvailableBytes is producer_pos − consumer_pos.
func (r *Reader) AvailableBytes() int { return r.g.AvailableBytes() }

// SetDeadline sets the time after which a blocked Read returns
// os.ErrDeadlineExceeded (once no committed record is left); the zero time
// removes it.
func (r *Reader) SetDeadline(t time.Time) {
	if t.IsZero() {
		r.deadline.Store(0)
	} else {
		r.deadline.Store(t.UnixNano())
		if t.UnixNano() == 0 {
			r.deadline.Store(1)
		}
	}
	// Wake a blocked Read so it applies the new deadline.
	r.wake()
}

func (r *Reader) wake() {
	atomic.AddUint32(r.g.seq, 1)
	region.Wake32(r.g.seq)
}

// Close makes blocked and later reads return ErrClosed. It is idempotent.
func (r *Reader) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	r.wake()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.onClose != nil {
		return r.onClose()
	}
	return nil
}

// Read returns the next committed record.
func (r *Reader) Read() (Record, error) {
	var rec Record
	err := r.ReadInto(&rec)
	return rec, err
}

// ReadInto is Read reusing rec.RawSample's capacity.
func (r *Reader) ReadInto(rec *Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.g
	for {
		// Load the wake-up sequence before the state it guards (closed,
		// deadline, records): SetDeadline, Close and producers change that
		// state and then bump the sequence, so a change this iteration
		// misses makes Wait32 return at once.
		seq := atomic.LoadUint32(g.seq)
		if r.closed.Load() {
			return fmt.Errorf("ringbuffer: %w", ErrClosed)
		}
		if r.next(rec) {
			return nil
		}
		var wait time.Duration
		if d := r.deadline.Load(); d != 0 {
			if wait = time.Until(time.Unix(0, d)); wait <= 0 {
				return os.ErrDeadlineExceeded
			}
		}
		// Before sleeping, poll for a while: a producer that is about to
		// commit then needs no futex wake, and this goroutine no sleep.
		if r.spin() {
			continue
		}
		// A BUSY record at consumer_pos: sleep at most until it is due for
		// a check of its producer (checkStall).
		if r.checkStall() {
			continue
		}
		if r.stall != 0 && (wait <= 0 || wait > StallCheck) {
			wait = StallCheck
		}
		// Announce (an XCHG: ordered before the re-check below), then
		// re-check: a producer that committed before it could see the
		// announcement did not wake us.
		atomic.StoreUint32(g.waiters, 1)
		if !g.ready() && !r.closed.Load() {
			region.Wait32(g.seq, seq, wait)
		}
	}
}

// checkStall runs when the reader is about to sleep. If the record at
// consumer_pos is BUSY, it notes since when (per position); once it has
// stayed BUSY for StallCheck, it checks whether its producer's process is
// gone and, if so, marks the record discarded and reports true (read on).
// Only this slow path pays for the clock and the liveness check.
func (r *Reader) checkStall() bool {
	g := r.g
	cons, prod := g.Positions()
	if cons >= prod || g.r.Released() {
		r.stall = 0
		return false
	}
	l := atomic.LoadUint32(g.hdr(cons))
	if l&BusyBit == 0 {
		return true
	}
	now := time.Now()
	if r.stall != cons+1 {
		r.stall, r.stallSince = cons+1, now
		return false
	}
	if now.Sub(r.stallSince) < StallCheck {
		return false
	}
	r.stallSince = now
	if g.discardDead(cons, l) {
		r.stall = 0
		return true
	}
	return false
}

// spinPolls is how many times a Reader polls an empty ring (yielding the
// processor between polls) before it sleeps.
const spinPolls = 64

// spin polls the ring; true once a record is committed or the reader is
// closed.
func (r *Reader) spin() bool {
	for range spinPolls {
		runtime.Gosched()
		if r.g.ready() || r.closed.Load() {
			return true
		}
	}
	return false
}

// ready reports whether the record at consumer_pos is committed.
func (g *Ring) ready() bool {
	cons, prod := g.Positions()
	return cons < prod && atomic.LoadUint32(g.hdr(cons))&BusyBit == 0
}

// next consumes committed records up to and including the first that is
// not discarded, copying it into rec; false if none is committed.
func (r *Reader) next(rec *Record) bool {
	g := r.g
	if g.r.Released() {
		return false // zeroed: reads as empty (the cached prod is stale)
	}
	cons := atomic.LoadUint64(g.cons)
	for {
		if cons >= r.prod {
			r.prod = atomic.LoadUint64(g.prod)
		}
		prod := r.prod
		if cons >= prod {
			return false
		}
		l := atomic.LoadUint32(g.hdr(cons))
		if l&BusyBit != 0 {
			return false
		}
		n := uint64(l &^ (BusyBit | DiscardBit))
		if n+HeaderSize > g.size {
			return false // a corrupt position or header: stop, as at BUSY
		}
		next := cons + recordSize(l)
		if l&DiscardBit == 0 {
			off := g.dataOff + cons&g.mask + HeaderSize
			rec.RawSample = append(rec.RawSample[:0], g.mem[off:off+n]...)
			rec.Remaining = int(prod - next)
			region.StoreRelease64(g.cons, next)
			return true
		}
		region.StoreRelease64(g.cons, next)
		cons = next
	}
}
