package sharetest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/bpfmap/bpfmap"
	"github.com/bpfmap/bpfmap/ringbuf"
)

func init() {
	roles["ringproducer"] = ringProducerRole
}

// Ring buffer records are stamp u64 followed by stamp%5 words
// mix(stamp+i): 8 to 40 bytes, each checkable on its own.
func ringRecord(b []byte, stamp uint64) []byte {
	b = binary.LittleEndian.AppendUint64(b[:0], stamp)
	for i := range stamp % 5 {
		b = binary.LittleEndian.AppendUint64(b, mix(stamp+i+1))
	}
	return b
}

func checkRingRecord(b []byte) (uint64, error) {
	if len(b) < 8 {
		return 0, fmt.Errorf("record of %d bytes", len(b))
	}
	s := binary.LittleEndian.Uint64(b)
	var want [40]byte
	if w := ringRecord(want[:0], s); string(w) != string(b) {
		return 0, fmt.Errorf("torn or foreign record %x", b)
	}
	return s, nil
}

// Ring operations in the crash log.
const (
	opRingOutput  = 7
	opRingSubmit  = 8 // reserve, fill, submit
	opRingDiscard = 9 // reserve, fill, discard
)

// ringProducerRole writes records to a pinned ring buffer in batches of
// outputs, reserve+submits and reserve+discards. With Ops > 0 it runs Ops
// operations, retrying when the ring is full, and reports the stamps it
// committed and discarded; with Ops == 0 it logs its batches and runs until
// killed.
func ringProducerRole(a childArgs) (any, error) {
	m, err := bpfmap.LoadPinnedMap(a.Pin, nil)
	if err != nil {
		return nil, err
	}
	var l *opLog
	if a.Ops == 0 {
		if l, err = openLog(a.Log); err != nil {
			return nil, err
		}
	}
	rng := rand.New(rand.NewPCG(a.Seed, uint64(a.Serial)))
	buf := make([]byte, 0, 40)
	var res struct{ Committed, Discarded []uint64 }
	var batch []rec
	i := uint64(0)
	for b := 0; a.Ops == 0 || int(i) < a.Ops; b++ {
		batch = batch[:0]
		for range 1 + rng.IntN(32) {
			if a.Ops > 0 && int(i) == a.Ops {
				break
			}
			i++
			op := byte(opRingOutput)
			switch x := rng.IntN(10); {
			case x < 2:
				op = opRingSubmit
			case x < 3:
				op = opRingDiscard
			}
			batch = append(batch, rec{op: op, stamp: stampOf(a.Serial, i)})
		}
		if l != nil {
			if err := l.put(phIntent, batch); err != nil {
				return nil, err
			}
		}
		full := false
		for j := range batch {
			r := &batch[j]
			for {
				data := ringRecord(buf, r.stamp)
				if r.op == opRingOutput {
					err = m.RingOutput(data)
				} else {
					var rr bpfmap.RingRecord
					if rr, err = m.RingReserve(len(data)); err == nil {
						copy(rr.Bytes(), data)
						if r.op == opRingSubmit {
							rr.Submit()
						} else {
							rr.Discard()
						}
					}
				}
				if !errors.Is(err, bpfmap.ErrRingFull) || l != nil {
					break
				}
				time.Sleep(50 * time.Microsecond) // Ops mode: retry
			}
			switch {
			case errors.Is(err, bpfmap.ErrRingFull):
				r.op, full = opPushFull, true
			case err != nil:
				return nil, fmt.Errorf("ring op %d: %w", r.op, err)
			case r.op == opRingDiscard:
				res.Discarded = append(res.Discarded, r.stamp)
			default:
				res.Committed = append(res.Committed, r.stamp)
			}
		}
		if l != nil {
			if err := l.put(phAck, batch); err != nil {
				return nil, err
			}
			if b == 0 {
				signalProgress()
			}
		}
		if full {
			runtime.Gosched() // and try again: kills should land in ring operations
		}
	}
	return res, nil
}

// ringReader reads one record (or times out) and checks it; read collects
// the stamps.
func ringReader(r *ringbuf.Reader, read map[uint64]int) func() (bool, error) {
	var rec ringbuf.Record
	return func() (bool, error) {
		r.SetDeadline(time.Now().Add(50 * time.Millisecond))
		err := r.ReadInto(&rec)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		s, err := checkRingRecord(rec.RawSample)
		if err != nil {
			return false, err
		}
		read[s]++
		return true, nil
	}
}

func newRing(t *testing.T) (*bpfmap.Map, *ringbuf.Reader, string, string) {
	t.Helper()
	m, root, pin := newPinned(t, &ebpf.MapSpec{Name: "share_ring", Type: ebpf.RingBuf, MaxEntries: 16 << 10})
	r, err := ringbuf.NewReader(m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return m, r, root, pin
}

// drainRing reads until the ring has stayed empty for a few deadlines.
func drainRing(t *testing.T, next func() (bool, error)) {
	t.Helper()
	for idle := 0; idle < 4; {
		got, err := next()
		if err != nil {
			t.Fatal(err)
		}
		if got {
			idle = 0
		} else {
			idle++
		}
	}
}

func TestSharedRingbufProducers(t *testing.T) {
	const producers, ops = 3, 5000
	_, r, root, pin := newRing(t)
	var cs []*child
	for p := range producers {
		cs = append(cs, start(t, "ringproducer", childArgs{Root: root, Pin: pin, Serial: p + 1, Ops: ops, Seed: uint64(time.Now().UnixNano())}))
	}
	read := map[uint64]int{}
	next := ringReader(r, read)
	done := make(chan struct{})
	type result struct{ Committed, Discarded []uint64 }
	results := make([]result, producers)
	go func() {
		defer close(done)
		for i, c := range cs {
			c.wait(t, 90*time.Second, &results[i])
		}
	}()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
			if _, err := next(); err != nil {
				t.Fatal(err)
			}
		}
	}
	drainRing(t, next)
	committed := 0
	for _, res := range results {
		committed += len(res.Committed)
		for _, s := range res.Committed {
			if read[s] != 1 {
				t.Errorf("committed record %#x read %d times, want once", s, read[s])
			}
			delete(read, s)
		}
		for _, s := range res.Discarded {
			if read[s] != 0 {
				t.Errorf("discarded record %#x read", s)
			}
		}
		if len(res.Committed)+len(res.Discarded) != ops {
			t.Errorf("producer made %d records, want %d", len(res.Committed)+len(res.Discarded), ops)
		}
	}
	if len(read) != 0 {
		t.Errorf("%d records read that no producer committed", len(read))
	}
	t.Logf("%d records committed and read", committed)
}

// TestCrashRingbuf kills producers of a shared ring buffer at random
// moments, often between a reservation and its commit; this process reads
// the ring as the survivor. Records whose producer died before committing
// them must be skipped (not block the ring), and every committed record
// must be read exactly once, intact; discarded ones never.
func TestCrashRingbuf(t *testing.T) {
	cfg := crashConfig{kind: kind{name: "ring"}, slots: 3, kills: killsPerType(), ring: true}
	m, r, root, pin := newRing(t)
	read := map[uint64]int{}
	next := ringReader(r, read)
	logs := crashRun(t, cfg, m, root, pin, func(*rand.Rand) error {
		_, err := next()
		return err
	})
	drainRing(t, next)
	committed, inFlight, discarded := map[uint64]bool{}, map[uint64]bool{}, map[uint64]bool{}
	batches := 0
	for _, slot := range logs {
		gs, err := readLogs(slot)
		if err != nil {
			t.Fatal(err)
		}
		var pending []rec
		flight := func() {
			for _, r := range pending {
				if r.op == opRingDiscard {
					discarded[r.stamp] = true
				} else {
					inFlight[r.stamp] = true
				}
			}
			if pending != nil {
				batches++
			}
		}
		for _, g := range gs {
			if g.phase == phIntent {
				flight()
				pending = g.rs
				continue
			}
			for j, r := range g.rs {
				if j >= len(pending) || pending[j].stamp != r.stamp {
					t.Fatalf("%s: an ack of operations not begun", slot[0])
				}
				switch r.op {
				case opRingOutput, opRingSubmit:
					committed[r.stamp] = true
				case opRingDiscard:
					discarded[r.stamp] = true
				}
			}
			pending = nil
		}
		flight()
	}
	t.Logf("%d records committed, %d read, %d batches in flight at a kill", len(committed), len(read), batches)
	if len(committed) < cfg.kills {
		t.Errorf("too few records committed to test anything")
	}
	for s, n := range read {
		switch {
		case n != 1:
			t.Errorf("record %#x read %d times", s, n)
		case discarded[s]:
			t.Errorf("discarded record %#x read", s)
		case !committed[s] && !inFlight[s]:
			t.Errorf("record %#x read but never written", s)
		}
	}
	lost := 0
	for s := range committed {
		if read[s] == 0 {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d committed records never read (the reader stuck behind a dead producer's record?)", lost)
	}
}
