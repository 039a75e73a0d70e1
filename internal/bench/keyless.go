package bench

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/bpfmap/bpfmap"
	"github.com/bpfmap/bpfmap/internal/kbpf"
)

// BloomCase is a bloom filter peek benchmark: N pushed 4-byte values, K
// hash functions, every probe present.
type BloomCase struct {
	N uint32
	K uint64
}

func bloomSpec(c BloomCase) *ebpf.MapSpec {
	return &ebpf.MapSpec{Type: ebpf.BloomFilter, ValueSize: 4, MaxEntries: c.N, MapExtra: c.K}
}

// BloomPeekLoop runs b.N peeks of pushed values on m.
func BloomPeekLoop(b *testing.B, c BloomCase, m *bpfmap.Map) {
	b.ReportAllocs()
	var v uint32
	for i := 0; b.Loop(); i++ {
		v = key(uint32(i), c.N)
		if err := m.Lookup(nil, &v); err != nil {
			b.Fatal(err)
		}
	}
}

func filledBloom(c BloomCase) (*bpfmap.Map, error) {
	m, err := bpfmap.NewMap(bloomSpec(c))
	if err != nil {
		return nil, err
	}
	for i := range c.N {
		if err := m.Push(i); err != nil {
			m.Close()
			return nil, err
		}
	}
	return m, nil
}

// MeasureBloom returns bpfmap's and the kernel's in-BPF peek cost.
func MeasureBloom(c BloomCase) (bm, kernel Result) {
	if m, err := filledBloom(c); err != nil {
		bm.Err = err
	} else {
		bm = fromBench(testing.Benchmark(func(b *testing.B) { BloomPeekLoop(b, c, m) }))
		m.Close()
	}
	if err := kbpf.Available(); err != nil {
		kernel.Err = err
		return
	}
	km, err := ebpf.NewMap(bloomSpec(c))
	if err != nil {
		kernel.Err = err
		return
	}
	defer km.Close()
	for i := range c.N {
		if err := km.Update(nil, i, ebpf.UpdateAny); err != nil {
			kernel.Err = err
			return
		}
	}
	d, err := kbpf.LoopCost(km, kbpf.OpPeek, c.N, KernelIters)
	kernel = Result{NsPerOp: d, Err: err}
	return
}

// QueueLoop runs b.N push+pop pairs of 8-byte values on a bpfmap queue.
func QueueLoop(b *testing.B, m *bpfmap.Map) {
	b.ReportAllocs()
	var v uint64
	for i := 0; b.Loop(); i++ {
		v = uint64(i)
		if err := m.Update(nil, &v, ebpf.UpdateAny); err != nil {
			b.Fatal(err)
		}
		if err := m.LookupAndDelete(nil, &v); err != nil {
			b.Fatal(err)
		}
	}
}

// ChannelLoop runs b.N send+receive pairs on a buffered Go channel.
func ChannelLoop(b *testing.B) {
	b.ReportAllocs()
	ch := make(chan uint64, 1024)
	var sink uint64
	for i := 0; b.Loop(); i++ {
		ch <- uint64(i)
		sink += <-ch
	}
	_ = sink
}

// MeasureQueue returns bpfmap's, a Go channel's and the kernel's in-BPF
// push+pop cost.
func MeasureQueue() (bm, ch, kernel Result) {
	spec := &ebpf.MapSpec{Type: ebpf.Queue, ValueSize: 8, MaxEntries: 1024}
	if m, err := bpfmap.NewMap(spec); err != nil {
		bm.Err = err
	} else {
		bm = fromBench(testing.Benchmark(func(b *testing.B) { QueueLoop(b, m) }))
		m.Close()
	}
	ch = fromBench(testing.Benchmark(ChannelLoop))
	if err := kbpf.Available(); err != nil {
		kernel.Err = err
		return
	}
	km, err := ebpf.NewMap(spec)
	if err != nil {
		kernel.Err = err
		return
	}
	defer km.Close()
	d, err := kbpf.LoopCost(km, kbpf.OpPushPop, 1024, KernelIters)
	kernel = Result{NsPerOp: d, Err: err}
	return
}

func ns(r Result) string {
	if r.Err != nil {
		return "n/a"
	}
	return fmt.Sprintf("%.1f", r.NsPerOp)
}

func ratio(a, b Result) string {
	if a.Err != nil || b.Err != nil || b.NsPerOp == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", a.NsPerOp/b.NsPerOp)
}

// KeylessReport measures bloom filter peeks (1, 3 and 5 hash functions at
// each size) and queue push+pop pairs, each the median of count runs.
func KeylessReport(sizes []uint32, count int) string {
	count = max(count, 1)
	var sb strings.Builder
	sb.WriteString("| bloom filter peek (4-byte values, all present) | bpfmap ns/op | bpfmap allocs/op | kernel in-BPF ns/op | bpfmap / kernel |\n|---|---:|---:|---:|---:|\n")
	for _, n := range sizes {
		for _, k := range []uint64{1, 3, 5} {
			c := BloomCase{N: n, K: k}
			var bms, ks []Result
			for range count {
				bm, kr := MeasureBloom(c)
				bms, ks = append(bms, bm), append(ks, kr)
			}
			bm, kr := median(bms), median(ks)
			fmt.Fprintf(&sb, "| %d values, %d hash functions | %s | %d | %s | %s |\n", n, k, ns(bm), bm.AllocsPerOp, ns(kr), ratio(bm, kr))
		}
	}
	var bms, chs, ks []Result
	for range count {
		bm, ch, kr := MeasureQueue()
		bms, chs, ks = append(bms, bm), append(chs, ch), append(ks, kr)
	}
	bm, ch, kr := median(bms), median(chs), median(ks)
	sb.WriteString("\n| queue push + pop (8-byte values) | bpfmap ns/op | bpfmap allocs/op | Go channel ns/op | kernel in-BPF ns/op | bpfmap / kernel |\n|---|---:|---:|---:|---:|---:|\n")
	fmt.Fprintf(&sb, "| one push and one pop | %s | %d | %s | %s | %s |\n", ns(bm), bm.AllocsPerOp, ns(ch), ns(kr), ratio(bm, kr))
	return sb.String()
}
