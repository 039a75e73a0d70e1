package bpfmap_test

import (
	"runtime"
	"testing"

	"github.com/cilium/ebpf"
)

// TestMapMemoryIsOffHeap shows that a map's entries live outside the Go
// heap: filling a million-entry hash map leaves the heap, and therefore
// the garbage collector's work, as it was. (The benchmark command reports
// the collector's pause times beside a Go map's.)
func TestMapMemoryIsOffHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a 1M-entry map")
	}
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	const n = 1 << 20
	m := newMap(t, &ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: n})
	keys := make([]uint32, 1<<12)
	vals := make([]uint64, len(keys))
	for off := uint32(0); off < n; off += uint32(len(keys)) {
		for i := range keys {
			keys[i], vals[i] = off+uint32(i), uint64(i)
		}
		if _, err := m.BatchUpdate(keys, vals, nil); err != nil {
			t.Fatal(err)
		}
	}
	after := heap()
	info, _ := m.Info()
	if grown := int64(after) - int64(before); grown > 1<<20 {
		t.Fatalf("Go heap grew by %d bytes for a map of %d bytes", grown, info.Footprint())
	}
	var v uint64
	if err := m.Lookup(uint32(n-1), &v); err != nil {
		t.Fatal(err)
	}
	runtime.KeepAlive(keys)
}
