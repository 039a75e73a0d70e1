package lpm

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
)

// routes builds n random IPv4 routes with prefix lengths /8–/32 (host bits
// cleared) and /32 probes that each fall inside some route.
func routes(n int) (keys [][]byte, probes [][]byte) {
	r := rand.New(rand.NewPCG(42, uint64(n)))
	seen := map[uint64]bool{}
	for len(keys) < n {
		p := uint32(8 + r.IntN(25))
		a := r.Uint32() &^ (1<<(32-p) - 1)
		if p == 32 {
			a = r.Uint32()
		}
		if seen[uint64(p)<<32|uint64(a)] {
			continue
		}
		seen[uint64(p)<<32|uint64(a)] = true
		k := make([]byte, 8)
		binary.NativeEndian.PutUint32(k, p)
		binary.BigEndian.PutUint32(k[4:], a)
		keys = append(keys, k)
	}
	for range 1 << 14 {
		k := keys[r.IntN(len(keys))]
		a := binary.BigEndian.Uint32(k[4:])
		if p := plen(k); p < 32 {
			a |= r.Uint32() & (1<<(32-p) - 1)
		}
		q := make([]byte, 8)
		binary.NativeEndian.PutUint32(q, 32)
		binary.BigEndian.PutUint32(q[4:], a)
		probes = append(probes, q)
	}
	return keys, probes
}

// BenchmarkLookup looks up /32 probes in maps of random /8–/32 IPv4 routes.
func BenchmarkLookup(b *testing.B) {
	for _, n := range []int{1 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			keys, probes := routes(n)
			m, err := newOps(8, 8, uint32(n))
			if err != nil {
				b.Fatal(err)
			}
			v := make([]byte, 8)
			for i, k := range keys {
				binary.LittleEndian.PutUint64(v, uint64(i))
				if err := m.Update(k, v, 0); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if m.Lookup(probes[i&(len(probes)-1)], v) != nil {
					b.Fatal("miss")
				}
			}
		})
	}
}

// BenchmarkUpdate replaces values of existing routes.
func BenchmarkUpdate(b *testing.B) {
	for _, n := range []int{1 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			keys, _ := routes(n)
			m, err := newOps(8, 8, uint32(n))
			if err != nil {
				b.Fatal(err)
			}
			v := make([]byte, 8)
			for _, k := range keys {
				if err := m.Update(k, v, 0); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if m.Update(keys[(i*2654435761)%len(keys)], v, 0) != nil {
					b.Fatal("update")
				}
			}
		})
	}
}

// TestLookupAllocs: lookups, updates of existing keys and get-next-key
// allocate nothing.
func TestLookupAllocs(t *testing.T) {
	keys, probes := routes(1000)
	m, _ := newOps(8, 8, 1000)
	v := make([]byte, 8)
	for _, k := range keys {
		m.Update(k, v, 0)
	}
	next := make([]byte, 8)
	if a := testing.AllocsPerRun(1000, func() {
		m.Lookup(probes[0], v)
		m.Update(keys[1], v, 0)
		m.GetNextKey(keys[2], next)
	}); a != 0 {
		t.Errorf("%v allocs per run", a)
	}
}
