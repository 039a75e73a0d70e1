package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/bpfmap/bpfmap"
)

// Shared-map lookups: the cost of a hash lookup (4-byte keys, 8-byte
// values, every lookup a hit) on a map in private memory, on a map of a pin
// namespace (file-backed, shared) from the process that made it, from
// another process that opened its pin, and on a kernel map through bpf(2)
// — the path two processes sharing a kernel map would take.

// envSharedChild names the environment variable that makes a process a
// shared-lookup measuring child (see SharedChild).
const envSharedChild = "BPFMAP_BENCH_SHARED_CHILD"

// sharedChildArgs tell a child which pin to open and what to measure.
type sharedChildArgs struct {
	Pin string
	N   uint32
}

// sharedChildResult is a child's measurement.
type sharedChildResult struct {
	NsPerOp     float64
	AllocsPerOp int64
	Err         string
}

// SharedChild runs the child side of MeasureSharedOtherProcess when this
// process was started as such a child, and then exits; otherwise it returns
// at once. Programs that call SharedReport (and test binaries that measure
// it) call SharedChild first thing in main (or TestMain).
func SharedChild() {
	js := os.Getenv(envSharedChild)
	if js == "" {
		return
	}
	var a sharedChildArgs
	var res sharedChildResult
	if err := json.Unmarshal([]byte(js), &a); err != nil {
		res.Err = err.Error()
	} else if m, err := bpfmap.LoadPinnedMap(a.Pin, &ebpf.LoadPinOptions{ReadOnly: true}); err != nil {
		res.Err = err.Error()
	} else {
		c := Case{Hash, Lookup, a.N}
		r := fromBench(testing.Benchmark(func(b *testing.B) { BPFMapLoop(b, c, m) }))
		m.Close()
		res.NsPerOp, res.AllocsPerOp = r.NsPerOp, r.AllocsPerOp
	}
	out, _ := json.Marshal(res)
	fmt.Printf("%s\n", out)
	os.Exit(0)
}

// SharedMap is a filled hash map of a temporary pin namespace, pinned.
type SharedMap struct {
	Map  *bpfmap.Map
	Pin  string
	root string
}

// NewSharedMap creates a hash map for c in a new temporary namespace,
// holding keys 0..N-1, and pins it.
func NewSharedMap(c Case) (*SharedMap, error) {
	root, err := os.MkdirTemp("", "bpfmap-bench-shared-")
	if err != nil {
		return nil, err
	}
	m, err := bpfmap.NewMapWithOptions(spec(c), bpfmap.MapOptions{Namespace: root})
	if err != nil {
		os.RemoveAll(root)
		return nil, err
	}
	s := &SharedMap{Map: m, Pin: filepath.Join(root, "bench"), root: root}
	if err := fillChunks(c.N, func(k []uint32, v []uint64) error {
		_, err := m.BatchUpdate(k, v, nil)
		return err
	}); err != nil {
		s.Close()
		return nil, err
	}
	if err := m.Pin(s.Pin); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close unpins and closes the map and removes its namespace.
func (s *SharedMap) Close() {
	s.Map.Unpin()
	s.Map.Close()
	os.RemoveAll(s.root)
}

// MeasureSharedPrivate measures lookups on a map in private memory.
func MeasureSharedPrivate(n uint32) Result {
	c := Case{Hash, Lookup, n}
	m, err := bpfmap.NewMapWithOptions(spec(c), bpfmap.MapOptions{Private: true})
	if err != nil {
		return Result{Err: err}
	}
	defer m.Close()
	if err := fillChunks(n, func(k []uint32, v []uint64) error {
		_, err := m.BatchUpdate(k, v, nil)
		return err
	}); err != nil {
		return Result{Err: err}
	}
	return fromBench(testing.Benchmark(func(b *testing.B) { BPFMapLoop(b, c, m) }))
}

// MeasureSharedSameProcess measures lookups on a shared map from the
// process that created it.
func MeasureSharedSameProcess(s *SharedMap, n uint32) Result {
	c := Case{Hash, Lookup, n}
	return fromBench(testing.Benchmark(func(b *testing.B) { BPFMapLoop(b, c, s.Map) }))
}

// MeasureSharedOtherProcess measures lookups on a shared map from another
// process: this executable, re-executed, opens the pin read-only and runs
// the loop (its main must call SharedChild first).
func MeasureSharedOtherProcess(s *SharedMap, n uint32) Result {
	exe, err := os.Executable()
	if err != nil {
		return Result{Err: err}
	}
	js, _ := json.Marshal(sharedChildArgs{Pin: s.Pin, N: n})
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), envSharedChild+"="+string(js))
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return Result{Err: fmt.Errorf("child: %v: %s", err, strings.TrimSpace(stderr.String()))}
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var res sharedChildResult
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		return Result{Err: fmt.Errorf("child printed %q: %v", out.String(), err)}
	}
	if res.Err != "" {
		return Result{Err: errors.New(res.Err)}
	}
	return Result{NsPerOp: res.NsPerOp, AllocsPerOp: res.AllocsPerOp}
}

// SharedRow is one size's results.
type SharedRow struct {
	N                                    uint32
	Private, SameProcess, Other, Syscall Result
}

// SharedRun measures every size count times (columns interleaved) and
// keeps each cell's median.
func SharedRun(sizes []uint32, count int) []SharedRow {
	count = max(count, 1)
	var rows []SharedRow
	for _, n := range sizes {
		var ps, ss, os_, ks []Result
		s, err := NewSharedMap(Case{Hash, Lookup, n})
		for range count {
			ps = append(ps, MeasureSharedPrivate(n))
			if err != nil {
				ss, os_ = append(ss, Result{Err: err}), append(os_, Result{Err: err})
			} else {
				ss = append(ss, MeasureSharedSameProcess(s, n))
				os_ = append(os_, MeasureSharedOtherProcess(s, n))
			}
			ks = append(ks, measureSyscall(Case{Hash, Lookup, n}))
		}
		if err == nil {
			s.Close()
		}
		rows = append(rows, SharedRow{N: n, Private: median(ps), SameProcess: median(ss), Other: median(os_), Syscall: median(ks)})
	}
	return rows
}

// SharedMarkdown renders rows as a table; the last column is how many
// times faster a lookup from another process is than the bpf(2) syscall.
func SharedMarkdown(rows []SharedRow) string {
	var sb strings.Builder
	sb.WriteString("| hash lookup (4-byte keys, 8-byte values) | entries | bpfmap private ns/op | bpfmap shared, same process ns/op | bpfmap shared, other process ns/op | other process allocs/op | bpf(2) via cilium/ebpf ns/op | bpf(2) / other process |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		allocs := "n/a"
		if r.Other.Err == nil {
			allocs = fmt.Sprint(r.Other.AllocsPerOp)
		}
		fmt.Fprintf(&sb, "| lookup | %d | %s | %s | %s | %s | %s | %s |\n", r.N, ns(r.Private), ns(r.SameProcess), ns(r.Other), allocs, ns(r.Syscall), ratio(r.Syscall, r.Other))
	}
	for _, r := range rows {
		for name, res := range map[string]Result{"private": r.Private, "same process": r.SameProcess, "other process": r.Other} {
			if res.Err != nil {
				fmt.Fprintf(&sb, "\n%s, %d entries: %v\n", name, r.N, res.Err)
			}
		}
	}
	return sb.String()
}

// SharedReport measures and renders the shared-lookup table, each cell the
// median of count runs. The kernel column reads n/a without kernel BPF.
func SharedReport(sizes []uint32, count int) string {
	return SharedMarkdown(SharedRun(sizes, count))
}
