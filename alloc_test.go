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
