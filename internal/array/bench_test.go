package array

import (
	"fmt"
	"testing"

	"github.com/bpfmap/bpfmap/internal/mapops"
	"github.com/bpfmap/bpfmap/internal/uapi"
)

func benchMap(b *testing.B, size uint32) (mapops.Ops, [][]byte) {
	ops, r, err := mapops.OpenDetached(Family, &mapops.Attr{Type: uapi.MapTypeArray, KeySize: 4, ValueSize: size, MaxEntries: 1024})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = r.Release() })
	keys := make([][]byte, 1024)
	for i := range keys {
		keys[i] = []byte{byte(i), byte(i >> 8), 0, 0}
	}
	return ops, keys
}

// BenchmarkLookup reads values of one word and of several (the sequence
// word path).
func BenchmarkLookup(b *testing.B) {
	for _, size := range []uint32{8, 16, 64} {
		b.Run(fmt.Sprintf("value=%d", size), func(b *testing.B) {
			m, keys := benchMap(b, size)
			v := make([]byte, size)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				_ = m.Lookup(keys[i&1023], v)
			}
		})
	}
}

// BenchmarkUpdate writes values of one word and of several.
func BenchmarkUpdate(b *testing.B) {
	for _, size := range []uint32{8, 16, 64} {
		b.Run(fmt.Sprintf("value=%d", size), func(b *testing.B) {
			m, keys := benchMap(b, size)
			v := make([]byte, size)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				_ = m.Update(keys[i&1023], v, uapi.Any)
			}
		})
	}
}
