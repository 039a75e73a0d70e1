package bloom

import (
	"testing"

	"github.com/bpfmap/bpfmap/internal/mapops"
	"github.com/bpfmap/bpfmap/internal/uapi"
)

// TestBitsetSize pins the sizes kernel-semantics.md §8 confirmed live (via
// the kernel's memlock figure) and the overflow rule.
func TestBitsetSize(t *testing.T) {
	for _, c := range []struct {
		max   uint32
		extra uint64
		bits  uint64
	}{
		{100, 1, 256}, {10, 5, 128}, {46, 5, 512}, {1000, 5, 8192}, {1 << 20, 1, 1 << 21},
		{1, 1, 64}, {45, 1, 64}, {46, 1, 64}, {49, 1, 64}, {50, 1, 128}, {10, 0, 128},
		{1 << 31, 1, 1 << 32}, // 2^31 × 7/5 > 2^31
		{1 << 30, 2, 1 << 32}, // 2^31 × 7/5 overflows
		{1 << 28, 15, 1 << 32},
		{0xffffffff, 15, 1 << 32}, // max × k overflows a u32
		{1533916891, 1, 1 << 31},  // (n/5)×7 = 2147483643 ≤ 2^31
	} {
		_, bits, err := params(&mapops.Attr{Type: uapi.MapTypeBloomFilter, ValueSize: 4, MaxEntries: c.max, MapExtra: c.extra})
		if err != nil || bits != c.bits {
			t.Errorf("max %d k %d: %d bits (%v), want %d", c.max, c.extra, bits, err, c.bits)
		}
	}
}
