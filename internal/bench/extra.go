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

// GCReport times a full garbage collection with n entries held in a bpfmap
// hash map and, for contrast, in a Go map, after forcing both to be filled.
func GCReport(n uint32) string {
	gc := func() time.Duration {
		runtime.GC()
		start := time.Now()
		runtime.GC()
		return time.Since(start)
	}
	base := gc()
	c := Case{Hash, Lookup, n}
	bm, err := NewFilledBPFMap(c)
	var withBPFMap time.Duration
	if err == nil {
		withBPFMap = gc()
		bm.Close()
	}
	gm := make(map[uint32]uint64, n)
	for i := range n {
		gm[i] = uint64(i)
	}
	withGoMap := gc()
	runtime.KeepAlive(gm)
	return fmt.Sprintf("| runtime.GC() wall time | empty heap | + %d-entry bpfmap hash | + %d-entry Go map |\n|---|---:|---:|---:|\n| | %v | %v | %v |\n",
		n, n, base.Round(time.Microsecond), withBPFMap.Round(time.Microsecond), withGoMap.Round(time.Microsecond))
}
