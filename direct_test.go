package bpfmap_test

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/bpfmap/bpfmap"
)

// TestDirectPathsMatchGeneral runs the same operations on two equal maps,
// one given keys and values in the shapes Lookup and Update hand straight
// to the map's family (*uint32 or []byte keys, *uint64 values), the other
// in shapes that take the general path through the command layer (arrays
// of bytes): every error and every value read must be the same, on maps
// that are readable, read-only, write-only, frozen or closed.
func TestDirectPathsMatchGeneral(t *testing.T) {
	type shape struct {
		name   string
		spec   ebpf.MapSpec
		freeze bool
		close  bool
	}
	hash := ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 16}
	with := func(s ebpf.MapSpec, flags uint32) ebpf.MapSpec { s.Flags |= flags; return s }
	shapes := []shape{
		{name: "hash", spec: hash},
		{name: "lru", spec: ebpf.MapSpec{Type: ebpf.LRUHash, KeySize: 4, ValueSize: 8, MaxEntries: 8}},
		{name: "array", spec: ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 8}},
		{name: "lpm", spec: ebpf.MapSpec{Type: ebpf.LPMTrie, KeySize: 8, ValueSize: 8, MaxEntries: 16, Flags: 1}},
		{name: "hash rdonly", spec: with(hash, fRdonly)},
		{name: "hash wronly", spec: with(hash, fWronly)},
		{name: "hash frozen", spec: hash, freeze: true},
		{name: "array frozen", spec: ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 8}, freeze: true},
		{name: "hash closed", spec: hash, close: true},
	}
	for _, s := range shapes {
		t.Run(s.name, func(t *testing.T) {
			a := newMap(t, &s.spec)
			b := newMap(t, &s.spec)
			r := rand.New(rand.NewPCG(1, 2))
			key := func() []byte {
				k := make([]byte, s.spec.KeySize)
				binary.NativeEndian.PutUint32(k, uint32(r.IntN(12)))
				if s.spec.Type == ebpf.LPMTrie {
					binary.NativeEndian.PutUint32(k, uint32(r.IntN(34)))
					binary.BigEndian.PutUint32(k[4:], uint32(r.IntN(4))<<30|uint32(r.IntN(2))<<20)
				}
				return k
			}
			if s.freeze {
				for _, m := range []*bpfmap.Map{a, b} {
					if err := m.Put(uint32(1), uint64(7)); err != nil {
						t.Fatal(err)
					}
					if err := m.Freeze(); err != nil {
						t.Fatal(err)
					}
				}
			}
			if s.close {
				a.Close()
				b.Close()
			}
			for i := 0; i < 400; i++ {
				k := key()
				var direct any = k
				if len(k) == 4 && r.IntN(2) == 0 {
					k4 := binary.NativeEndian.Uint32(k)
					direct = &k4
				}
				general := (*[8]byte)(append(k[:len(k):len(k)], make([]byte, 8-len(k))...))
				var ga any = general
				if len(k) == 4 {
					ga = (*[4]byte)(general[:4])
				}
				if r.IntN(2) == 0 {
					v := r.Uint64()
					var gv [8]byte
					binary.NativeEndian.PutUint64(gv[:], v)
					flags := ebpf.MapUpdateFlags(r.IntN(5))
					ea, eb := a.Update(direct, &v, flags), b.Update(ga, &gv, flags)
					if fmt.Sprint(ea) != fmt.Sprint(eb) {
						t.Fatalf("op %d update %x flags %d: direct %v, general %v", i, k, flags, ea, eb)
					}
					continue
				}
				var v uint64
				var gv [8]byte
				flags := ebpf.MapLookupFlags(0)
				if r.IntN(8) == 0 {
					flags = ebpf.LookupLock
				}
				ea, eb := a.LookupWithFlags(direct, &v, flags), b.LookupWithFlags(ga, &gv, flags)
				if fmt.Sprint(ea) != fmt.Sprint(eb) || ea == nil && v != binary.NativeEndian.Uint64(gv[:]) {
					t.Fatalf("op %d lookup %x flags %d: direct %v %d, general %v %x", i, k, flags, ea, v, eb, gv)
				}
			}
		})
	}
}
