package bench

import (
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/cilium/ebpf"

	"github.com/bpfmap/bpfmap"
)

// MemoryReport compares bytes per hash element: bpfmap's region (its whole
// address range, committed or not) against the kernel's bytes_memlock for a
// kernel map of the same shape, both divided by max_entries.
func MemoryReport(sizes []uint32) string {
	var sb strings.Builder
	sb.WriteString("| hash map, 4-byte key, 8-byte value | bpfmap bytes/element | kernel memlock bytes/element |\n|---:|---:|---:|\n")
	for _, n := range sizes {
		c := Case{Hash, Lookup, n}
		fmt.Fprintf(&sb, "| %d entries |", n)
		if m, err := bpfmap.NewMap(spec(c)); err == nil {
			info, _ := m.Info()
			fmt.Fprintf(&sb, " %.1f |", float64(info.Footprint())/float64(n))
			m.Close()
		} else {
			sb.WriteString(" n/a |")
		}
		if km, err := NewFilledKernelMap(Case{Hash, Lookup, 1}); err == nil {
			km.Close()
			km, err = ebpf.NewMap(spec(c))
			if err == nil {
				info, _ := km.Info()
				if ml, ok := info.Memlock(); ok {
					fmt.Fprintf(&sb, " %.1f |\n", float64(ml)/float64(n))
				} else {
					sb.WriteString(" n/a |\n")
				}
				km.Close()
				continue
			}
		}
		sb.WriteString(" n/a |\n")
	}
	return sb.String()
}

// GCReport measures what n entries cost the garbage collector when held in
// a bpfmap hash map and, for contrast, in a Go map: the Go heap in use and
// the stop-the-world pause and wall time of a forced collection (mean of 10).
func GCReport(n uint32) string {
	measure := func() (heapMiB float64, pause, wall time.Duration) {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		const rounds = 10
		for range rounds {
			runtime.GC()
		}
		wall = time.Since(start) / rounds
		runtime.ReadMemStats(&after)
		return float64(after.HeapAlloc) / (1 << 20), time.Duration(after.PauseTotalNs-before.PauseTotalNs) / rounds, wall
	}
	var sb strings.Builder
	sb.WriteString("| held in memory | Go heap in use | GC stop-the-world pause | GC wall time |\n|---|---:|---:|---:|\n")
	row := func(what string) {
		h, p, w := measure()
		fmt.Fprintf(&sb, "| %s | %.1f MiB | %v | %v |\n", what, h, p.Round(time.Microsecond/10), w.Round(time.Microsecond))
	}
	row("nothing")
	if bm, err := NewFilledBPFMap(Case{Hash, Lookup, n}); err == nil {
		row(fmt.Sprintf("%d-entry bpfmap hash map", n))
		bm.Close()
	}
	gm := make(map[uint32]uint64, n)
	for i := range n {
		gm[i] = uint64(i)
	}
	row(fmt.Sprintf("%d-entry Go map[uint32]uint64", n))
	runtime.KeepAlive(gm)
	return sb.String()
}
