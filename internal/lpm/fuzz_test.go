package lpm

import (
	"bytes"
	"fmt"
	"testing"
)

// opReader decodes a fuzz input into operations.
type opReader struct {
	b []byte
	i int
}

func (r *opReader) byte() byte {
	if r.i >= len(r.b) {
		return 0
	}
	c := r.b[r.i]
	r.i++
	return c
}

func (r *opReader) done() bool { return r.i >= len(r.b) }

// runModel applies the operations encoded in in to a map and to the model
// and reports the first difference.
func runModel(in []byte) error {
	r := &opReader{b: in}
	dataSize := []int{1, 2, 4, 16, 24}[r.byte()%5]
	ks := 4 + dataSize
	maxEnt := 1 + int(r.byte()%40)
	if maxEnt == 40 {
		maxEnt = jumpMin // a map with a jump table (two data bytes or more)
	}
	m, err := newOps(uint32(ks), 3, uint32(maxEnt))
	if err != nil {
		return err
	}
	ref := newModel(ks, maxEnt)
	maxBits := uint32(8 * dataSize)
	// A few base paths, so keys share prefixes.
	bases := [][]byte{make([]byte, dataSize), bytes.Repeat([]byte{0xff}, dataSize), bytes.Repeat([]byte{0xa5}, dataSize)}
	key := func() []byte {
		base := bases[r.byte()%3]
		k := mkKey(ks, 0, base...)
		sel := r.byte()
		p := uint32(sel) % (maxBits + 2) // sometimes > max
		if sel >= 250 {
			p = maxBits + 1 + uint32(sel-250)
		}
		plenPut(k, p)
		// flip up to two bits anywhere (inside or beyond the prefix)
		for range r.byte() % 3 {
			b := uint32(r.byte()) % maxBits
			k[4+b/8] ^= 0x80 >> (b % 8)
		}
		return k
	}
	val := make([]byte, 3)
	got := make([]byte, 3)
	next := make([]byte, ks)
	for step := 0; !r.done(); step++ {
		op := r.byte() % 5
		k := key()
		switch op {
		case 0, 1:
			val[0], val[1], val[2] = r.byte(), byte(step), byte(step>>8)
			fl := uint64(r.byte() % 3)
			e1 := ref.update(k, val, fl)
			e2 := errno(m.Update(k, val, fl))
			if e1 != e2 {
				return fmt.Errorf("step %d update %x flags %d: model %v, map %v", step, k, fl, e1, e2)
			}
		case 2:
			e1 := ref.delete(k)
			e2 := errno(m.Delete(k))
			if e1 != e2 {
				return fmt.Errorf("step %d delete %x: model %v, map %v", step, k, e1, e2)
			}
		case 3:
			v1, e1 := ref.lookup(k)
			e2 := errno(m.Lookup(k, got))
			if e1 != e2 || e1 == 0 && !bytes.Equal(v1, got) {
				return fmt.Errorf("step %d lookup %x: model %v %x, map %v %x", step, k, e1, v1, e2, got)
			}
		case 4:
			var in []byte
			if r.byte()%4 != 0 {
				in = k
			}
			n1, e1 := ref.nextKey(in)
			e2 := errno(m.GetNextKey(in, next))
			if e1 != e2 || e1 == 0 && !bytes.Equal(n1, next) {
				return fmt.Errorf("step %d next %x: model %v %x, map %v %x", step, in, e1, n1, e2, next)
			}
		}
		if m.Count() != uint32(len(ref.ents)) {
			return fmt.Errorf("step %d: count %d, model %d", step, m.Count(), len(ref.ents))
		}
		if err := m.checkJump(); err != nil {
			return fmt.Errorf("step %d: %v", step, err)
		}
	}
	// Full walk in order.
	want := ref.order()
	var cur []byte
	for i := 0; ; i++ {
		err := m.GetNextKey(cur, next)
		if err != nil {
			if i != len(want) {
				return fmt.Errorf("walk ended after %d of %d", i, len(want))
			}
			return nil
		}
		if i >= len(want) || !bytes.Equal(next, want[i]) {
			return fmt.Errorf("walk[%d] = %x, want %x", i, next, want)
		}
		cur = bytes.Clone(next)
	}
}

func plenPut(k []byte, p uint32) { copy(k, mkKey(4, p)) }

// FuzzModel runs random operation sequences against the reference model.
func FuzzModel(f *testing.F) {
	f.Add([]byte{0, 10, 0, 0, 8, 0, 1, 2, 0, 3, 0, 1, 16, 0, 4, 1, 0, 7, 0})
	f.Add([]byte{4, 30, 1, 1, 190, 0, 0, 0, 1, 1, 191, 0, 3, 0, 1, 199, 0, 4, 0, 1, 185, 0})
	f.Add([]byte{2, 5, 1, 1, 30, 1, 3, 9, 0, 0, 2, 20, 2, 5, 11, 4, 2, 1, 12, 0, 0, 3, 1, 255, 0})
	f.Add(bytes.Repeat([]byte{3, 7, 1, 2, 9, 0, 0, 4, 0, 8, 1, 5}, 20))
	f.Add(append([]byte{2, 39}, bytes.Repeat([]byte{0, 1, 20, 1, 9, 2, 1, 17, 0, 3, 0, 18, 0}, 30)...))
	f.Fuzz(func(t *testing.T, in []byte) {
		if err := runModel(in); err != nil {
			t.Fatal(err)
		}
	})
}
