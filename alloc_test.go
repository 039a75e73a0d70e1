package bpfmap_test

import (
	"testing"

	"github.com/cilium/ebpf"
)

// TestHotPathsAllocateNothing proves 0 allocs/op for lookups and updates
// with []byte and pointer keys and values, with the key and value created
// inside the measured function (so an escape would show as an allocation).
func TestHotPathsAllocateNothing(t *testing.T) {
	for _, typ := range []ebpf.MapType{ebpf.Hash, ebpf.Array} {
		m := newMap(t, &ebpf.MapSpec{Type: typ, KeySize: 4, ValueSize: 8, MaxEntries: 16})
		i := uint32(0)
		for name, f := range map[string]func(){
			"pointer update": func() {
				k, v := i%16, uint64(i)
				_ = m.Update(&k, &v, ebpf.UpdateAny)
			},
			"pointer lookup": func() {
				k := i % 16
				var v uint64
				_ = m.Lookup(&k, &v)
			},
			"bytes update": func() {
				k := [4]byte{byte(i % 16)}
				v := [8]byte{1}
				_ = m.Update(k[:], v[:], ebpf.UpdateAny)
			},
			"bytes lookup": func() {
				k := [4]byte{byte(i % 16)}
				var v [8]byte
				_ = m.Lookup(k[:], v[:])
			},
			"missing key": func() {
				k := uint32(1000)
				var v uint64
				_ = m.Lookup(&k, &v)
			},
			"delete": func() {
				k := i % 16
				_ = m.Delete(&k)
			},
			"next key": func() {
				k, n := i%16, uint32(0)
				_ = m.NextKey(&k, &n)
			},
		} {
			if n := testing.AllocsPerRun(200, func() { i++; f() }); n != 0 {
				t.Errorf("%v %s: %v allocs/op", typ, name, n)
			}
		}
	}
}

// TestKeylessHotPathsAllocateNothing covers queue push/pop and bloom
// filter push/peek, and lookup-and-delete on a hash map.
func TestKeylessHotPathsAllocateNothing(t *testing.T) {
	q := newMap(t, &ebpf.MapSpec{Type: ebpf.Queue, ValueSize: 8, MaxEntries: 4})
	b := newMap(t, &ebpf.MapSpec{Type: ebpf.BloomFilter, ValueSize: 4, MaxEntries: 64})
	h := newMap(t, &ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 4})
	for name, f := range map[string]func(){
		"queue push+pop": func() {
			v := uint64(7)
			_ = q.Update(nil, &v, ebpf.UpdateAny)
			_ = q.LookupAndDelete(nil, &v)
		},
		"bloom push+peek": func() {
			v := uint32(9)
			_ = b.Update(nil, &v, ebpf.UpdateAny)
			_ = b.Lookup(nil, &v)
		},
		"hash lookup and delete": func() {
			k, v := uint32(1), uint64(2)
			_ = h.Update(&k, &v, ebpf.UpdateAny)
			_ = h.LookupAndDelete(&k, &v)
		},
	} {
		if n := testing.AllocsPerRun(200, f); n != 0 {
			t.Errorf("%s: %v allocs/op", name, n)
		}
	}
}
