package ringbuf

import (
	"encoding/binary"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bpfmap/bpfmap/internal/region"
)

// copyMode makes newRing build the portable layout (see NewCopy).
var copyMode bool

func newRing(t testing.TB, size uint64) *Ring {
	t.Helper()
	ctor := New
	if copyMode {
		ctor = NewCopy
	}
	g, err := ctor(size)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Release() })
	return g
}

// kernelConsumer reads committed records from a mapping laid out as the
// kernel documents a ring buffer's mmap (consumer page, producer page, data
// mapped twice), using nothing but that description.
func kernelConsumer(m []byte, page, size uint64, fn func([]byte)) int {
	return kernelConsumerMode(m, page, size, true, fn)
}

// kernelConsumerMode reads payloads linearly (through the second mapping)
// or, with linear false, modulo S from the first copy only.
func kernelConsumerMode(m []byte, page, size uint64, linear bool, fn func([]byte)) int {
	mem := region.Mem(m)
	consP, prodP := mem.Uint64(0), mem.Uint64(page)
	data := m[2*page:]
	n := 0
	cons := atomic.LoadUint64(consP)
	for {
		prod := atomic.LoadUint64(prodP)
		if cons >= prod {
			return n
		}
		off := cons & (size - 1)
		l := atomic.LoadUint32(mem.Uint32(2*page + off))
		if l&(1<<31) != 0 {
			return n
		}
		ln := uint64(l & (1<<30 - 1))
		if l&(1<<30) == 0 {
			if linear {
				fn(data[off+8 : off+8+ln]) // linear, thanks to the double mapping
			} else {
				b := make([]byte, ln)
				for j := range b {
					b[j] = data[(off+8+uint64(j))&(size-1)]
				}
				fn(b)
			}
			n++
		}
		cons += (ln + 8 + 7) &^ 7
		atomic.StoreUint64(consP, cons)
	}
}

func TestLayoutAndRecordFormat(t *testing.T) {
	p := PageSize
	g := newRing(t, p)
	if err := g.Output([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	v, err := g.Reserve(3)
	if err != nil {
		t.Fatal(err)
	}
	v.Discard()
	if err := g.Output(make([]byte, 16)); err != nil {
		t.Fatal(err)
	}
	m := g.Mapping()
	if uint64(len(m)) != 2*p+2*p {
		t.Fatalf("mapping %d bytes", len(m))
	}
	le := binary.LittleEndian
	if got := le.Uint64(m[p:]); got != 16+16+24 {
		t.Fatalf("producer_pos %d", got)
	}
	d := m[2*p:]
	// The kernel's observed headers: len 5 then the next record at +16; a
	// discarded 3-byte record is 0x40000003; a 16-byte record 0x10. pg_off,
	// which consumers ignore, holds the producer's token as a locked lock
	// word (the kernel's own value there is 3 + offset/P).
	own := g.locks.Token()<<2 | 1
	for _, c := range []struct{ off, len, pgoff uint32 }{{0, 5, own}, {16, 0x40000003, own}, {32, 0x10, own}} {
		if l, o := le.Uint32(d[c.off:]), le.Uint32(d[c.off+4:]); l != c.len || o != c.pgoff {
			t.Errorf("header at %d: len %#x pg_off %d, want %#x %d", c.off, l, o, c.len, c.pgoff)
		}
	}
	var got []string
	if n := kernelConsumer(m, p, p, func(b []byte) { got = append(got, string(b)) }); n != 2 || got[0] != "hello" {
		t.Fatalf("consumer read %d records %q", n, got)
	}
	if c, pr := g.Positions(); c != pr {
		t.Fatalf("consumer_pos %d producer_pos %d", c, pr)
	}
}

func TestDoubleMapping(t *testing.T) {
	g := newRing(t, PageSize)
	d := g.Mapping()[2*PageSize:]
	if !g.Doubled() {
		t.Skip("no double mapping on this platform")
	}
	d[10] = 42
	if d[PageSize+10] != 42 {
		t.Fatal("second data copy is not the same memory")
	}
	d[2*PageSize-1] = 7
	if d[PageSize-1] != 7 {
		t.Fatal("first data copy does not see writes to the second")
	}
}

// TestWrapAtEveryOffset produces records of every size class so that
// records start at every 8-byte offset, many crossing the end of the data
// area, and reads them back through both the Reader and the kernel-layout
// consumer.
func TestWrapAtEveryOffset(t *testing.T) {
	size := PageSize
	for _, plen := range []int{0, 1, 7, 8, 9, 15, 16, 17, 31, 64, 100, 1000, int(size) - 16} {
		g := newRing(t, size)
		rd := NewReader(g, nil)
		var rec Record
		for i := 0; i < int(size/8)+3; i++ {
			payload := make([]byte, plen)
			for j := range payload {
				payload[j] = byte(i*31 + j)
			}
			// Alternate the two consumers.
			if err := g.Output(payload); err != nil {
				t.Fatalf("len %d record %d: %v", plen, i, err)
			}
			if i%2 == 0 {
				if err := rd.ReadInto(&rec); err != nil {
					t.Fatal(err)
				}
				if string(rec.RawSample) != string(payload) {
					t.Fatalf("len %d record %d: payload differs", plen, i)
				}
			} else {
				n := kernelConsumerMode(g.Mapping(), PageSize, size, i%4 == 1, func(b []byte) {
					if string(b) != string(payload) {
						t.Fatalf("len %d record %d (kernel layout): payload differs", plen, i)
					}
				})
				if n != 1 {
					t.Fatalf("kernel-layout consumer read %d records", n)
				}
			}
		}
	}
}

func TestFullRingRefuses(t *testing.T) {
	size := PageSize
	g := newRing(t, size)
	// 4088 of 4096 bytes can be used, as observed in the kernel.
	for i := uint64(0); i < (size-8)/8; i++ {
		if err := g.Output(nil); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	err := g.Output(nil)
	if !errors.Is(err, ErrFull) || !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("full ring: %v", err)
	}
	if _, err := g.Reserve(int(size)); !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("oversized: %v", err)
	}
	if _, err := g.Reserve(-1); !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("negative: %v", err)
	}
	if g.AvailableBytes() != int(size-8) {
		t.Fatalf("available %d", g.AvailableBytes())
	}
	rd := NewReader(g, nil)
	if _, err := rd.Read(); err != nil {
		t.Fatal(err)
	}
	if err := g.Output(nil); err != nil {
		t.Fatalf("after one read: %v", err)
	}
	if err := g.Output(nil); !errors.Is(err, ErrFull) {
		t.Fatalf("full again: %v", err)
	}
	// The largest record that can ever fit: round_up(n+8, 8) <= S-1.
	g2 := newRing(t, size)
	if _, err := g2.Reserve(int(size) - 15); !errors.Is(err, ErrFull) {
		t.Fatalf("S-15: %v", err)
	}
	if v, err := g2.Reserve(int(size) - 16); err != nil {
		t.Fatalf("S-16: %v", err)
	} else {
		v.Submit()
	}
}

// A consumer that moves consumer_pos past a BUSY record must not let a
// producer overwrite it (the kernel's pending_pos rule).
func TestPendingPositionProtectsBusyRecords(t *testing.T) {
	g := newRing(t, PageSize)
	v, err := g.Reserve(100)
	if err != nil {
		t.Fatal(err)
	}
	atomic.StoreUint64(g.cons, atomic.LoadUint64(g.prod)) // a rogue consumer
	for {
		if err := g.Output(make([]byte, 64)); err != nil {
			break
		}
	}
	if _, p := g.Positions(); p-0 > PageSize-1 {
		t.Fatalf("producer_pos %d overran the busy record", p)
	}
	v.Submit()
}

func TestDeadlineAndClose(t *testing.T) {
	g := newRing(t, PageSize)
	rd := NewReader(g, nil)
	rd.SetDeadline(time.Now().Add(20 * time.Millisecond))
	start := time.Now()
	if _, err := rd.Read(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("deadline: %v", err)
	}
	if d := time.Since(start); d < 15*time.Millisecond || d > 2*time.Second {
		t.Fatalf("deadline took %v", d)
	}
	// A record committed before the deadline is returned, then the deadline.
	rd.SetDeadline(time.Now().Add(-time.Second))
	_ = g.Output([]byte{1})
	if r, err := rd.Read(); err != nil || r.RawSample[0] != 1 {
		t.Fatalf("record before deadline: %v", err)
	}
	if _, err := rd.Read(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("deadline after record: %v", err)
	}
	rd.SetDeadline(time.Time{})
	// A blocked Read wakes promptly for a record.
	done := make(chan error, 1)
	go func() {
		r, err := rd.Read()
		if err == nil && string(r.RawSample) != "wake" {
			err = errors.New("wrong record")
		}
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	start = time.Now()
	_ = g.Output([]byte("wake"))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("wake-up took %v", d)
	}
	// Close unblocks a blocked Read with ErrClosed.
	go func() { _, err := rd.Read(); done <- err }()
	time.Sleep(20 * time.Millisecond)
	if err := rd.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("after close: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not unblock Read")
	}
	if err := rd.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := rd.Read(); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
}

// TestConcurrentProducers: every record of N producers is read exactly once
// and in per-producer order; discarded records never appear.
func TestConcurrentProducers(t *testing.T) {
	g := newRing(t, 4*PageSize)
	rd := NewReader(g, nil)
	const producers, perProducer = 8, 20000
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perProducer; {
				n := 8 + (i*7+p)%40
				v, err := g.Reserve(n)
				if err != nil {
					time.Sleep(time.Microsecond) // full: let the consumer catch up
					continue
				}
				b := v.Bytes()
				binary.LittleEndian.PutUint32(b, uint32(p))
				binary.LittleEndian.PutUint32(b[4:], uint32(i))
				for j := 8; j < n; j++ {
					b[j] = byte(i + j)
				}
				if i%5 == 3 {
					// A discarded attempt, then the real record.
					binary.LittleEndian.PutUint32(b, 0xdead)
					v.Discard()
					i = -i - 1 // mark: retry i as a real record
				} else {
					v.Submit()
				}
				if i < 0 {
					i = -i - 1
					v2, err := g.Reserve(n)
					for err != nil {
						time.Sleep(time.Microsecond)
						v2, err = g.Reserve(n)
					}
					b := v2.Bytes()
					binary.LittleEndian.PutUint32(b, uint32(p))
					binary.LittleEndian.PutUint32(b[4:], uint32(i))
					for j := 8; j < n; j++ {
						b[j] = byte(i + j)
					}
					v2.Submit()
				}
				i++
			}
		}()
	}
	next := make([]int, producers)
	var rec Record
	for total := 0; total < producers*perProducer; total++ {
		rd.SetDeadline(time.Now().Add(10 * time.Second))
		if err := rd.ReadInto(&rec); err != nil {
			t.Fatalf("after %d records: %v", total, err)
		}
		b := rec.RawSample
		p, i := binary.LittleEndian.Uint32(b), int(binary.LittleEndian.Uint32(b[4:]))
		if p >= producers {
			t.Fatalf("record from producer %#x (a discarded record?)", p)
		}
		if i != next[p] {
			t.Fatalf("producer %d: record %d, want %d", p, i, next[p])
		}
		if n := 8 + (i*7+int(p))%40; len(b) != n {
			t.Fatalf("producer %d record %d: %d bytes, want %d", p, i, len(b), n)
		}
		for j := 8; j < len(b); j++ {
			if b[j] != byte(i+j) {
				t.Fatalf("producer %d record %d: byte %d corrupt", p, i, j)
			}
		}
		next[p]++
	}
	wg.Wait()
	rd.SetDeadline(time.Now())
	if _, err := rd.Read(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("extra record: %v", err)
	}
}

// TestPortableLayout runs the layout, wrap-around and concurrency tests on
// the fallback used where a file cannot be mapped twice.
func TestPortableLayout(t *testing.T) {
	copyMode = true
	defer func() { copyMode = false }()
	t.Run("layout", TestLayoutAndRecordFormat)
	t.Run("wrap", TestWrapAtEveryOffset)
	t.Run("full", TestFullRingRefuses)
	t.Run("concurrent", TestConcurrentProducers)
}

// A SetDeadline racing with a Read that is about to sleep must still wake
// it (the Reader loads the wake-up sequence before the deadline).
func TestSetDeadlineWakesSleepingRead(t *testing.T) {
	g := newRing(t, PageSize)
	for i := range 200 {
		rd := NewReader(g, nil)
		done := make(chan error, 1)
		go func() { _, err := rd.Read(); done <- err }()
		if i%2 == 0 {
			time.Sleep(time.Duration(i%7) * time.Microsecond)
		}
		rd.SetDeadline(time.Unix(1, 0))
		select {
		case err := <-done:
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("round %d: %v", i, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: Read slept through SetDeadline", i)
		}
	}
}

// One futex wake per sleep: after a producer wakes the consumer, the
// waiter flag is clear, so later commits make no wake-up call.
func TestWakeFlagTakenOnce(t *testing.T) {
	g := newRing(t, PageSize)
	atomic.StoreUint32(g.waiters, 1)
	seq := atomic.LoadUint32(g.seq)
	for range 3 {
		if err := g.Output([]byte{1}); err != nil {
			t.Fatal(err)
		}
	}
	if got := atomic.LoadUint32(g.seq); got != seq+1 {
		t.Fatalf("sequence advanced by %d, want 1", got-seq)
	}
	if atomic.LoadUint32(g.waiters) != 0 {
		t.Fatal("waiter flag still set")
	}
}
