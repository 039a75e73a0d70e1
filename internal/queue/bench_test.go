package queue

import (
	"testing"

	"github.com/bpfmap/bpfmap/internal/mapops"
	"github.com/bpfmap/bpfmap/internal/uapi"
)

// BenchmarkPushPop is one push and one pop of an 8-byte value, and one
// push with BPF_EXIST into a full map (drop the oldest) and one pop.
func BenchmarkPushPop(b *testing.B) {
	for _, full := range []bool{false, true} {
		name := "room"
		if full {
			name = "full"
		}
		b.Run(name, func(b *testing.B) {
			ops, r, err := mapops.OpenDetached(Family, &mapops.Attr{Type: uapi.MapTypeQueue, ValueSize: 8, MaxEntries: 64})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Release()
			v := make([]byte, 8)
			n := 1
			if full {
				n = 64
			}
			for range n - 1 {
				_ = ops.Update(nil, v, uapi.Any)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := ops.Update(nil, v, uapi.Exist); err != nil {
					b.Fatal(err)
				}
				if err := ops.LookupAndDelete(nil, v); err != nil {
					b.Fatal(err)
				}
				if full {
					_ = ops.Update(nil, v, uapi.Exist)
				}
			}
		})
	}
}
