package bpfmap_test

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/bpfmap/bpfmap"
)

// directShape is a map on which the direct and the general paths are
// compared: its spec, and whether it is frozen or closed first.
type directShape struct {
	name   string
	spec   ebpf.MapSpec
	freeze bool
	close  bool
}

func directShapes() []directShape {
	hash := ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 16}
	array := ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 8}
	with := func(s ebpf.MapSpec, flags uint32) ebpf.MapSpec { s.Flags |= flags; return s }
	return []directShape{
		{name: "hash", spec: hash},
		{name: "lru", spec: ebpf.MapSpec{Type: ebpf.LRUHash, KeySize: 4, ValueSize: 8, MaxEntries: 8}},
		{name: "array", spec: array},
		{name: "lpm", spec: ebpf.MapSpec{Type: ebpf.LPMTrie, KeySize: 8, ValueSize: 8, MaxEntries: 16, Flags: 1}},
		{name: "hash rdonly", spec: with(hash, fRdonly)},
		{name: "hash wronly", spec: with(hash, fWronly)},
		{name: "hash frozen", spec: hash, freeze: true},
		{name: "array frozen", spec: array, freeze: true},
		{name: "hash closed", spec: hash, close: true},
	}
}

// runDirectVsGeneral runs operations drawn from next (next(n) is in
// [0, n)) on two equal maps of shape s, one given keys and values in the
// shapes Lookup and Update hand straight to the map's family (*uint32 or
// []byte keys, *uint64 values), the other in shapes that take the general
// path through the command layer (arrays of bytes): every error and every
// value read must be the same.
func runDirectVsGeneral(t *testing.T, s directShape, ops int, next func(n int) int) {
	a := newMap(t, &s.spec)
	b := newMap(t, &s.spec)
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
	for i := 0; i < ops; i++ {
		k := make([]byte, s.spec.KeySize)
		binary.NativeEndian.PutUint32(k, uint32(next(12)))
		if s.spec.Type == ebpf.LPMTrie {
			binary.NativeEndian.PutUint32(k, uint32(next(34)))
			binary.BigEndian.PutUint32(k[4:], uint32(next(4))<<30|uint32(next(2))<<20)
		}
		var direct any = k
		if len(k) == 4 && next(2) == 0 {
			k4 := binary.NativeEndian.Uint32(k)
			direct = &k4
		}
		general := (*[8]byte)(append(k[:len(k):len(k)], make([]byte, 8-len(k))...))
		var ga any = general
		if len(k) == 4 {
			ga = (*[4]byte)(general[:4])
		}
		if next(2) == 0 {
			v := uint64(next(1<<16)) << 8
			var gv [8]byte
			binary.NativeEndian.PutUint64(gv[:], v)
			flags := ebpf.MapUpdateFlags(next(5))
			ea, eb := a.Update(direct, &v, flags), b.Update(ga, &gv, flags)
			if fmt.Sprint(ea) != fmt.Sprint(eb) {
				t.Fatalf("op %d update %x flags %d: direct %v, general %v", i, k, flags, ea, eb)
			}
			continue
		}
		var v uint64
		var gv [8]byte
		flags := ebpf.MapLookupFlags(0)
		if next(8) == 0 {
			flags = ebpf.LookupLock
		}
		ea, eb := a.LookupWithFlags(direct, &v, flags), b.LookupWithFlags(ga, &gv, flags)
		if fmt.Sprint(ea) != fmt.Sprint(eb) || ea == nil && v != binary.NativeEndian.Uint64(gv[:]) {
			t.Fatalf("op %d lookup %x flags %d: direct %v %d, general %v %x", i, k, flags, ea, v, eb, gv)
		}
	}
}

// TestDirectPathsMatchGeneral compares the direct and the general paths on
// maps that are readable, read-only, write-only, frozen or closed.
func TestDirectPathsMatchGeneral(t *testing.T) {
	for _, s := range directShapes() {
		t.Run(s.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			runDirectVsGeneral(t, s, 400, r.IntN)
		})
	}
}

// FuzzDirectPaths compares the direct and the general paths on operation
// sequences drawn from the input: its first byte picks the map's shape.
func FuzzDirectPaths(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte{3, 0, 7, 33, 1, 0, 1, 2, 1, 1, 0, 9, 3, 0, 1})
	f.Add([]byte{1, 1, 1, 4, 0, 0, 0, 2, 3, 5, 7, 11, 13, 17})
	f.Fuzz(func(t *testing.T, in []byte) {
		shapes := directShapes()
		if len(in) == 0 {
			return
		}
		s := shapes[int(in[0])%len(shapes)]
		in = in[1:]
		next := func(n int) int {
			if len(in) == 0 {
				return 0
			}
			x := int(in[0])
			if n > 256 && len(in) > 1 {
				x = x<<8 | int(in[1])
				in = in[1:]
			}
			in = in[1:]
			return x % n
		}
		runDirectVsGeneral(t, s, len(in)/3+1, next)
	})
}
