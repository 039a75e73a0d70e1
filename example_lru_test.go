package bpfmap_test

import (
	"fmt"
	"slices"

	"github.com/cilium/ebpf"

	"github.com/bpfmap/bpfmap"
)

// An LRU map used as a cache: LookupAndTouch (a BPF program's lookup)
// marks a hit as used, so the LRU evicts other keys first; Lookup (the
// syscall's lookup) does not. With a fixed CPU and the kernel's number of
// possible CPUs the evictions are exactly the kernel's: an 8-entry map on
// 2 CPUs refills its per-CPU free list two nodes at a time, so the 9th
// insert evicts two keys.
func ExampleMap_LookupAndTouch() {
	run := func(touch bool) []uint32 {
		m, err := bpfmap.NewMapWithOptions(&ebpf.MapSpec{
			Type: ebpf.LRUHash, KeySize: 4, ValueSize: 8, MaxEntries: 8,
		}, bpfmap.MapOptions{PossibleCPUs: 2, CPU: func() int { return 0 }})
		if err != nil {
			panic(err)
		}
		defer m.Close()
		for k := uint32(0); k < 8; k++ {
			_ = m.Put(k, uint64(k)*10)
		}
		var v uint64
		for _, k := range []uint32{0, 1} {
			if touch {
				_ = m.LookupAndTouch(k, &v)
			} else {
				_ = m.Lookup(k, &v)
			}
		}
		_ = m.Put(uint32(8), uint64(80)) // the map is full: evicts two keys
		var keys []uint32
		for k := range bpfmap.Entries[uint32, uint64](m) {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		return keys
	}
	fmt.Println("after Lookup(0), Lookup(1):                ", run(false))
	fmt.Println("after LookupAndTouch(0), LookupAndTouch(1):", run(true))
	// Output:
	// after Lookup(0), Lookup(1):                 [2 3 4 5 6 7 8]
	// after LookupAndTouch(0), LookupAndTouch(1): [0 1 4 5 6 7 8]
}
