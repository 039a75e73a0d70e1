// Package bench measures bpfmap side by side with the kernel in one process:
// the kernel's in-BPF cost of a map operation (BPF_PROG_TEST_RUN + bpf_loop,
// see internal/kbpf), the bpf(2) syscall through cilium/ebpf, bpfmap, and
// Go's built-in map, on the same keys (a permutation of 0..n-1, so every
// lookup hits), 4-byte keys and 8-byte values. It owns the cases, the
// measurement loops and the table; cmd/bpfmap-bench prints it and the
// package's benchmarks feed `go test -bench`.
package bench

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/bpfmap/bpfmap"
	"github.com/bpfmap/bpfmap/internal/kbpf"
)

// Kind is the map type measured.
type Kind string

// Op is the operation measured.
type Op string

// Impl is the implementation measured.
type Impl string

// Kinds, operations and implementations.
const (
	Hash  Kind = "hash"
	Array Kind = "array"

	Lookup Op = "lookup"
	Update Op = "update"

	BPFMap  Impl = "bpfmap"
	Kernel  Impl = "kernel in-BPF"
	Syscall Impl = "bpf(2) via cilium/ebpf"
	GoMap   Impl = "Go map"
)

// Impls lists the implementations in table order.
var Impls = []Impl{BPFMap, Kernel, Syscall, GoMap}

// Case is one measured operation on a map of N entries.
type Case struct {
	Kind Kind
	Op   Op
	N    uint32
}

func (c Case) String() string { return fmt.Sprintf("%s %s %d", c.Kind, c.Op, c.N) }

// Cases are the operations of the table.
func Cases(sizes ...uint32) []Case {
	var cs []Case
	for _, k := range []Kind{Hash, Array} {
		for _, op := range []Op{Lookup, Update} {
			for _, n := range sizes {
				cs = append(cs, Case{k, op, n})
			}
		}
	}
	return cs
}

// Result is one measurement.
type Result struct {
	NsPerOp     float64
	AllocsPerOp int64
	BytesPerOp  int64
	Err         error
}

// key is the i-th key of the permutation the kernel side uses too.
func key(i, n uint32) uint32 { return (i * 2654435761) & (n - 1) }

// KernelIters is the bpf_loop count per in-BPF measurement.
var KernelIters uint32 = 1 << 22

// Measure runs c on impl.
func Measure(c Case, impl Impl) Result {
	switch impl {
	case BPFMap:
		return measureBPFMap(c)
	case Kernel:
		return measureKernel(c)
	case Syscall:
		return measureSyscall(c)
	case GoMap:
		return measureGoMap(c)
	}
	return Result{Err: fmt.Errorf("unknown implementation %q", impl)}
}

func spec(c Case) *ebpf.MapSpec {
	s := &ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: c.N}
	if c.Kind == Array {
		s.Type = ebpf.Array
	}
	return s
}

func fromBench(r testing.BenchmarkResult) Result {
	return Result{NsPerOp: float64(r.T.Nanoseconds()) / float64(r.N), AllocsPerOp: r.AllocsPerOp(), BytesPerOp: r.AllocedBytesPerOp()}
}

// BPFMapLoop runs b.N operations of c on m, through the pointer path.
func BPFMapLoop(b *testing.B, c Case, m *bpfmap.Map) {
	var k uint32
	var v uint64
	var err error
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k = key(uint32(i), c.N)
		if c.Op == Lookup {
			err = m.Lookup(&k, &v)
		} else {
			v = uint64(i)
			err = m.Update(&k, &v, ebpf.UpdateAny)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

// NewFilledBPFMap creates a bpfmap map for c holding keys 0..N-1.
func NewFilledBPFMap(c Case) (*bpfmap.Map, error) {
	m, err := bpfmap.NewMap(spec(c))
	if err != nil {
		return nil, err
	}
	if err := fillChunks(c.N, func(k []uint32, v []uint64) error {
		_, err := m.BatchUpdate(k, v, nil)
		return err
	}); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// fillChunks stores keys 0..n-1 (value = key) through put, 64Ki at a time,
// reusing one pair of buffers so filling leaves no garbage behind.
func fillChunks(n uint32, put func([]uint32, []uint64) error) error {
	const chunk = 1 << 16
	keys := make([]uint32, min(n, chunk))
	vals := make([]uint64, len(keys))
	for off := uint32(0); off < n; off += chunk {
		end := min(off+chunk, n)
		for i := range end - off {
			keys[i], vals[i] = off+i, uint64(off+i)
		}
		if err := put(keys[:end-off], vals[:end-off]); err != nil {
			return err
		}
	}
	return nil
}

func measureBPFMap(c Case) Result {
	m, err := NewFilledBPFMap(c)
	if err != nil {
		return Result{Err: err}
	}
	defer m.Close()
	return fromBench(testing.Benchmark(func(b *testing.B) { BPFMapLoop(b, c, m) }))
}

// NewFilledKernelMap creates a kernel map for c holding keys 0..N-1.
func NewFilledKernelMap(c Case) (*ebpf.Map, error) {
	if err := kbpf.Available(); err != nil {
		return nil, err
	}
	m, err := ebpf.NewMap(spec(c))
	if err != nil {
		return nil, err
	}
	if err := fillChunks(c.N, func(k []uint32, v []uint64) error {
		_, err := m.BatchUpdate(k, v, nil)
		return err
	}); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

func measureKernel(c Case) Result {
	m, err := NewFilledKernelMap(c)
	if err != nil {
		return Result{Err: err}
	}
	defer m.Close()
	op := kbpf.OpLookup
	if c.Op == Update {
		op = kbpf.OpUpdate
	}
	d, err := kbpf.LoopCost(m, op, c.N, KernelIters)
	if err != nil {
		return Result{Err: err}
	}
	return Result{NsPerOp: d}
}

// SyscallLoop runs b.N operations of c on a kernel map through cilium/ebpf.
func SyscallLoop(b *testing.B, c Case, m *ebpf.Map) {
	var k uint32
	var v uint64
	var err error
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k = key(uint32(i), c.N)
		if c.Op == Lookup {
			err = m.Lookup(&k, &v)
		} else {
			v = uint64(i)
			err = m.Update(&k, &v, ebpf.UpdateAny)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

func measureSyscall(c Case) Result {
	m, err := NewFilledKernelMap(c)
	if err != nil {
		return Result{Err: err}
	}
	defer m.Close()
	return fromBench(testing.Benchmark(func(b *testing.B) { SyscallLoop(b, c, m) }))
}

// GoMapLoop runs b.N operations of c on a Go map (a slice for arrays).
func GoMapLoop(b *testing.B, c Case) {
	b.ReportAllocs()
	if c.Kind == Array {
		s := make([]uint64, c.N)
		b.ResetTimer()
		var sink uint64
		for i := 0; i < b.N; i++ {
			k := key(uint32(i), c.N)
			if c.Op == Lookup {
				sink += s[k]
			} else {
				s[k] = uint64(i)
			}
		}
		_ = sink
		return
	}
	m := make(map[uint32]uint64, c.N)
	for i := range c.N {
		m[i] = uint64(i)
	}
	b.ResetTimer()
	var sink uint64
	for i := 0; i < b.N; i++ {
		k := key(uint32(i), c.N)
		if c.Op == Lookup {
			sink += m[k]
		} else {
			m[k] = uint64(i)
		}
	}
	_ = sink
}

func measureGoMap(c Case) Result {
	return fromBench(testing.Benchmark(func(b *testing.B) { GoMapLoop(b, c) }))
}

// Row is one case's results by implementation.
type Row struct {
	Case    Case
	Results map[Impl]Result
}

// Run measures every case on every implementation, in one process, count
// times (implementations interleaved, so drift of the machine affects them
// alike), and keeps each one's median.
func Run(cases []Case, count int, progress io.Writer) []Row {
	count = max(count, 1)
	var rows []Row
	for _, c := range cases {
		all := map[Impl][]Result{}
		for range count {
			for _, impl := range Impls {
				r := Measure(c, impl)
				all[impl] = append(all[impl], r)
				if progress != nil {
					fmt.Fprintf(progress, "%-22s %-24s %s\n", c, impl, r)
				}
			}
		}
		row := Row{Case: c, Results: map[Impl]Result{}}
		for impl, rs := range all {
			row.Results[impl] = median(rs)
		}
		rows = append(rows, row)
	}
	return rows
}

// median returns the result with the median time (an error if any failed).
func median(rs []Result) Result {
	for _, r := range rs {
		if r.Err != nil {
			return r
		}
	}
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b Result) int { return cmp.Compare(a.NsPerOp, b.NsPerOp) })
	return s[len(s)/2]
}

func (r Result) String() string {
	if r.Err != nil {
		return "n/a (" + r.Err.Error() + ")"
	}
	return fmt.Sprintf("%.1f ns/op %d allocs/op %d B/op", r.NsPerOp, r.AllocsPerOp, r.BytesPerOp)
}

// Markdown renders rows as a table: ns/op per implementation, bpfmap's
// allocs/op and its ratio to the kernel's in-BPF time.
func Markdown(rows []Row) string {
	var sb strings.Builder
	sb.WriteString("| operation | entries |")
	for _, impl := range Impls {
		fmt.Fprintf(&sb, " %s ns/op |", impl)
	}
	sb.WriteString(" bpfmap allocs/op | bpfmap / kernel |\n|---|---:|")
	for range Impls {
		sb.WriteString("---:|")
	}
	sb.WriteString("---:|---:|\n")
	for _, row := range rows {
		fmt.Fprintf(&sb, "| %s %s | %d |", row.Case.Kind, row.Case.Op, row.Case.N)
		for _, impl := range Impls {
			r := row.Results[impl]
			if r.Err != nil {
				sb.WriteString(" n/a |")
			} else {
				fmt.Fprintf(&sb, " %.1f |", r.NsPerOp)
			}
		}
		bm, k := row.Results[BPFMap], row.Results[Kernel]
		fmt.Fprintf(&sb, " %d |", bm.AllocsPerOp)
		if bm.Err == nil && k.Err == nil && k.NsPerOp > 0 {
			fmt.Fprintf(&sb, " %.2f× |\n", bm.NsPerOp/k.NsPerOp)
		} else {
			sb.WriteString(" n/a |\n")
		}
	}
	return sb.String()
}

// ErrNoKernel reports that the kernel columns were skipped.
var ErrNoKernel = errors.New("kernel BPF not available")
