package lpm

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
)

// TestConcurrentReaders: readers look up prefixes that stay present while
// writers rewrite their values and insert and delete other prefixes on the
// same paths (growing, shrinking and freeing nodes). A lookup never misses
// and never sees a torn value; get-next-key from a present key never fails
// with anything but ENOENT. It runs with 24-byte values (copied under the
// sequence) and 8-byte ones (read in one attempt), and with and without a
// jump table (lookups that start at depth 2).
func TestConcurrentReaders(t *testing.T) {
	for _, c := range []struct{ vs, max uint32 }{{24, 4096}, {8, 4096}, {24, jumpMin}, {8, jumpMin}} {
		t.Run(fmt.Sprintf("value=%d/max=%d", c.vs, c.max), func(t *testing.T) { concurrentReaders(t, c.vs, c.max) })
	}
}

func concurrentReaders(t *testing.T, vs, max uint32) {
	m, err := newOps(8, vs, max)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	var stable [][]byte
	seen := map[string]bool{}
	for len(stable) < 200 {
		k := mkKey(8, uint32(8+r.IntN(25)), 10, byte(r.IntN(4)), byte(r.IntN(256)), byte(r.IntN(256)))
		p := plen(k)
		// canonical: the exact prefix identifies the entry
		id := string(k[:4]) + string(maskBits(k[4:], p))
		if seen[id] {
			continue
		}
		seen[id] = true
		stable = append(stable, k)
	}
	val := func(i int, gen byte) []byte {
		v := make([]byte, vs)
		for j := range v {
			v[j] = gen
		}
		binary.LittleEndian.PutUint16(v, uint16(i))
		return v
	}
	for i, k := range stable {
		if err := m.Update(k, val(i, 0), 0); err != nil {
			t.Fatal(err)
		}
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 9))
			var mine [][]byte
			for i := 0; !stop.Load(); i++ {
				switch r.IntN(3) {
				case 0:
					j := r.IntN(len(stable))
					if err := m.Update(stable[j], val(j, byte(i)), 2); err != nil {
						t.Errorf("rewrite: %v", err)
						return
					}
				case 1:
					k := mkKey(8, uint32(r.IntN(33)), 10, byte(r.IntN(4)), byte(r.IntN(256)), byte(w))
					if id := string(k[:4]) + string(maskBits(k[4:], plen(k))); !seen[id] && m.Update(k, val(0, 0), 1) == nil {
						mine = append(mine, k)
					}
				default:
					if len(mine) > 0 {
						j := r.IntN(len(mine))
						if err := m.Delete(mine[j]); err != nil {
							t.Errorf("delete: %v", err)
							return
						}
						mine[j] = mine[len(mine)-1]
						mine = mine[:len(mine)-1]
					}
				}
			}
		}()
	}
	var misses, torn, badNext atomic.Int64
	var rg sync.WaitGroup
	for g := range 2 {
		rg.Add(1)
		go func() {
			defer rg.Done()
			v := make([]byte, vs)
			next := make([]byte, 8)
			for n := 0; n < 150000; n++ {
				i := (n*7 + g) % len(stable)
				if err := m.Lookup(stable[i], v); err != nil {
					misses.Add(1)
					continue
				}
				if binary.LittleEndian.Uint16(v) != uint16(i) {
					torn.Add(1)
				}
				for j := 3; j < int(vs); j++ {
					if v[j] != v[2] {
						torn.Add(1)
						break
					}
				}
				if n%8 == 0 {
					if err := m.GetNextKey(stable[i], next); err != nil && errno(err) != 2 {
						badNext.Add(1)
					}
				}
			}
		}()
	}
	rg.Wait()
	stop.Store(true)
	wg.Wait()
	if misses.Load()+torn.Load()+badNext.Load() != 0 {
		t.Errorf("misses %d, torn values %d, bad get_next_key %d", misses.Load(), torn.Load(), badNext.Load())
	}
}

// maskBits returns data with the bits beyond p cleared.
func maskBits(data []byte, p uint32) []byte {
	out := make([]byte, len(data))
	for i := uint32(0); i < p; i++ {
		out[i/8] |= data[i/8] & (0x80 >> (i % 8))
	}
	return out
}
