package bench

import (
	"fmt"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/bpfmap/bpfmap"
	"github.com/bpfmap/bpfmap/internal/kbpf"
)

// benchSizes are the entry counts of the side-by-side table.
var benchSizes = []uint32{1024, 1 << 20}

// BenchmarkBPFMap measures bpfmap's lookups and updates (pointer path).
func BenchmarkBPFMap(b *testing.B) {
	for _, c := range Cases(benchSizes...) {
		b.Run(fmt.Sprintf("%s/%s/%d", c.Kind, c.Op, c.N), func(b *testing.B) {
			m, err := NewFilledBPFMap(c)
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			BPFMapLoop(b, c, m)
		})
	}
}

// BenchmarkGoMap measures Go's built-in map (a slice for arrays).
func BenchmarkGoMap(b *testing.B) {
	for _, c := range Cases(benchSizes...) {
		b.Run(fmt.Sprintf("%s/%s/%d", c.Kind, c.Op, c.N), func(b *testing.B) { GoMapLoop(b, c) })
	}
}

// BenchmarkSyscall measures the bpf(2) syscall through cilium/ebpf.
func BenchmarkSyscall(b *testing.B) {
	if err := kbpf.Available(); err != nil {
		b.Skip(err)
	}
	for _, c := range Cases(benchSizes...) {
		b.Run(fmt.Sprintf("%s/%s/%d", c.Kind, c.Op, c.N), func(b *testing.B) {
			m, err := NewFilledKernelMap(c)
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			SyscallLoop(b, c, m)
		})
	}
}

// BenchmarkKernelInBPF reports the kernel's in-BPF cost per operation
// (one BPF_PROG_TEST_RUN of bpf_loop per b.N batch of KernelIters).
func BenchmarkKernelInBPF(b *testing.B) {
	if err := kbpf.Available(); err != nil {
		b.Skip(err)
	}
	for _, c := range Cases(benchSizes...) {
		b.Run(fmt.Sprintf("%s/%s/%d", c.Kind, c.Op, c.N), func(b *testing.B) {
			r := measureKernel(c)
			if r.Err != nil {
				b.Fatal(r.Err)
			}
			b.ReportMetric(r.NsPerOp, "kernel-ns/op")
		})
	}
}

// BenchmarkBloomPeek measures bpfmap bloom filter peeks.
func BenchmarkBloomPeek(b *testing.B) {
	for _, n := range benchSizes {
		for _, k := range []uint64{1, 3, 5} {
			c := BloomCase{N: n, K: k}
			b.Run(fmt.Sprintf("%d/k%d", n, k), func(b *testing.B) {
				m, err := filledBloom(c)
				if err != nil {
					b.Fatal(err)
				}
				defer m.Close()
				BloomPeekLoop(b, c, m)
			})
		}
	}
}

// BenchmarkQueuePushPop measures bpfmap queue push+pop pairs.
func BenchmarkQueuePushPop(b *testing.B) {
	m, err := bpfmap.NewMap(&ebpf.MapSpec{Type: ebpf.Queue, ValueSize: 8, MaxEntries: 1024})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	QueueLoop(b, m)
}

// BenchmarkChannel measures a buffered Go channel's send+receive pairs.
func BenchmarkChannel(b *testing.B) { ChannelLoop(b) }
