package lpm

import (
	"math/rand/v2"
	"testing"

	"github.com/bpfmap/bpfmap/internal/kbpf"
)

// TestDenseNodes fills every prefix of 1-byte keys (511 of them: a root
// with 255 local prefixes and 256 children, the largest node class) and of
// a 2-byte subtree, then empties the maps in random order, comparing with
// the kernel along the way (node growth and shrinking).
func TestDenseNodes(t *testing.T) {
	kbpf.Need(t)
	for _, ks := range []int{5, 6} {
		r := rand.New(rand.NewPCG(uint64(ks), 7))
		var keys [][]byte
		for p := 0; p <= 8; p++ {
			for v := 0; v < 1<<p; v++ {
				b := byte(v << (8 - p))
				if p == 0 {
					b = 0
				}
				if ks == 5 {
					keys = append(keys, mkKey(ks, uint32(p), b|byte(r.IntN(256))>>p))
				} else {
					keys = append(keys, mkKey(ks, uint32(p+8), 0x5a, b), mkKey(ks, uint32(p), b, 0xff))
				}
			}
		}
		r.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
		p := newPair(t, uint32(ks), 8, uint32(len(keys)))
		val := make([]byte, 8)
		check := func(i int) {
			if i%50 != 0 {
				return
			}
			if _, err := p.walk(); err != nil {
				t.Fatal(err)
			}
			for range 50 {
				if err := p.lookup(mkKey(ks, uint32(r.IntN(8*(ks-4)+1)), byte(r.IntN(256)), byte(r.IntN(256)))); err != nil {
					t.Fatal(err)
				}
			}
		}
		for i, k := range keys {
			val[0], val[1] = byte(i), byte(i>>8)
			if err := p.update(k, val, 1); err != nil {
				t.Fatal(err)
			}
			check(i)
		}
		if err := p.update(mkKey(ks, 3, 0x20), val, 1); err != nil { // EEXIST
			t.Fatal(err)
		}
		// keys holds duplicates of 0x5a/8 for ks 6, so the map has room
		// for one more there; both agree either way.
		if err := p.update(mkKey(ks, 16, 1, 2), val, 0); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, mkKey(ks, 16, 1, 2))
		check(0)
		r.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
		for i, k := range keys {
			if err := p.delete(k); err != nil {
				t.Fatal(err)
			}
			check(i)
		}
		if p.m.Count() != 0 || *p.m.mem.Uint32(p.m.rootOff) != 0 {
			ks2, _ := p.walk()
			t.Fatalf("ks %d not empty: count %d root %d walk %x", ks, p.m.Count(), *p.m.mem.Uint32(p.m.rootOff), ks2)
		}
	}
}
