package bench

import (
	"testing"

	"github.com/bpfmap/bpfmap/internal/kbpf"
)

func TestLPMRoutesAndBytes(t *testing.T) {
	r := NewLPMRoutes(1 << 10)
	if len(r.Keys) != 1<<10 || len(r.Probes) != 1<<10 {
		t.Fatalf("%d keys, %d probes", len(r.Keys), len(r.Probes))
	}
	v, err := LPMBytesPerRoute(r)
	if err != nil || v <= 16 || v > 1000 {
		t.Fatalf("bytes per route %v %v", v, err)
	}
}

func TestMeasureLPMAndLRU(t *testing.T) {
	if testing.Short() {
		t.Skip("measures")
	}
	kbpf.Need(t)
	old := KernelIters
	KernelIters = 1 << 14
	defer func() { KernelIters = old }()
	routes := NewLPMRoutes(1 << 10)
	bm, kr := MeasureLPM(routes)
	if bm.Err != nil || kr.Err != nil || bm.AllocsPerOp != 0 {
		t.Fatalf("lpm: %v / %v", bm, kr)
	}
	bm, kr, bt := MeasureLPMUpdateDelete(routes)
	if bm.Err != nil || kr.Err != nil || bt.Err != nil || bm.AllocsPerOp != 0 {
		t.Fatalf("lpm insert+delete: %v / %v / %v", bm, kr, bt)
	}
	for _, op := range []Op{Lookup, Update} {
		bm, kr, g := MeasureLRU(Case{LRU, op, 1 << 10})
		if bm.Err != nil || kr.Err != nil || g.Err != nil {
			t.Fatalf("lru %s: %v / %v / %v", op, bm, kr, g)
		}
	}
}
