package ringbuf

import (
	"bytes"
	"errors"
	"os"
	"testing"
	"time"
)

// model is the ring as a queue of committed-or-pending records.
type modelRec struct {
	data    []byte
	state   int // 0 busy, 1 submitted, 2 discarded
	size    uint64
	pending *Reservation
}

// FuzzProduceConsume drives random reserve/submit/discard/output/read
// sequences against a model: which reservations succeed (the kernel's
// space rule), and which records a reader returns, in order.
func FuzzProduceConsume(f *testing.F) {
	f.Add([]byte{0, 10, 1, 0, 4, 2, 0, 3, 200, 4, 4})
	f.Add(bytes.Repeat([]byte{3, 250, 0, 255, 4}, 40))
	f.Fuzz(func(t *testing.T, prog []byte) {
		for _, copyLayout := range []bool{false, true} {
			ctor := New
			if copyLayout {
				ctor = NewCopy
			}
			size := PageSize
			g, err := ctor(size)
			if err != nil {
				t.Fatal(err)
			}
			rd := NewReader(g, nil)
			rd.SetDeadline(time.Unix(1, 0)) // never block
			var q []*modelRec
			var cons, prod uint64
			var rec Record
			seq := byte(0)
			for i := 0; i+1 < len(prog); i += 2 {
				op, arg := prog[i]%5, prog[i+1]
				switch op {
				case 0, 3: // reserve (0) or output (3) of arg*k bytes
					n := int(arg) * 3
					if op == 3 {
						n = int(arg) * 17
					}
					total := (uint64(n) + 15) &^ 7
					// The oldest BUSY record bounds reuse as consumer_pos does.
					pend := prod
					for _, r := range q {
						if r.state == 0 {
							pend = prod - sumAfter(q, r)
							break
						}
					}
					fits := total <= size && prod+total-cons <= size-1 && prod+total-pend <= size-1
					seq++
					data := bytes.Repeat([]byte{seq}, n)
					var err error
					r := &modelRec{data: data, size: total}
					if op == 3 {
						err = g.Output(data)
						r.state = 1
					} else {
						var v Reservation
						v, err = g.Reserve(n)
						if err == nil {
							copy(v.Bytes(), data)
							r.pending = &v
						}
					}
					if fits != (err == nil) {
						t.Fatalf("op %d: reserve %d (total %d, cons %d prod %d): err %v, model fits %v", i, n, total, cons, prod, err, fits)
					}
					if err == nil {
						q = append(q, r)
						prod += total
					} else if !errors.Is(err, ErrFull) {
						t.Fatal(err)
					}
				case 1, 2: // submit (1) / discard (2) the arg-th busy record
					var busy []*modelRec
					for _, r := range q {
						if r.state == 0 {
							busy = append(busy, r)
						}
					}
					if len(busy) == 0 {
						continue
					}
					r := busy[int(arg)%len(busy)]
					if op == 1 {
						r.pending.Submit()
						r.state = 1
					} else {
						r.pending.Discard()
						r.state = 2
					}
				case 4: // read one record
					var want *modelRec
					for len(q) > 0 && q[0].state != 0 {
						r := q[0]
						q = q[1:]
						cons += r.size
						if r.state == 1 {
							want = r
							break
						}
					}
					err := rd.ReadInto(&rec)
					if want == nil {
						if !errors.Is(err, os.ErrDeadlineExceeded) {
							t.Fatalf("op %d: read %v, model empty", i, err)
						}
						continue
					}
					if err != nil || !bytes.Equal(rec.RawSample, want.data) {
						t.Fatalf("op %d: read %v (%d bytes), want %d bytes", i, err, len(rec.RawSample), len(want.data))
					}
				}
				if c, p := g.Positions(); c != cons || p != prod {
					t.Fatalf("op %d: positions %d/%d, model %d/%d", i, c, p, cons, prod)
				}
			}
			_ = g.Release()
		}
	})
}

// sumAfter is the bytes reserved from record r (inclusive) to the end.
func sumAfter(q []*modelRec, r *modelRec) uint64 {
	var s uint64
	found := false
	for _, x := range q {
		if x == r {
			found = true
		}
		if found {
			s += x.size
		}
	}
	return s
}
