package bench

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// TestMain lets MeasureSharedOtherProcess re-execute the test binary as
// its measuring child.
func TestMain(m *testing.M) {
	SharedChild()
	os.Exit(m.Run())
}

// TestSharedReportFull prints the shared-lookup report for 1,024 and
// 1,048,576 entries (as cmd/bpfmap-bench -shared would) when
// BPFMAP_SHARED_REPORT is set to the number of runs per cell.
func TestSharedReportFull(t *testing.T) {
	count, err := strconv.Atoi(os.Getenv("BPFMAP_SHARED_REPORT"))
	if err != nil {
		t.Skip("set BPFMAP_SHARED_REPORT=<runs per cell> to print the full shared-lookup report")
	}
	fmt.Print(SharedReport(benchSizes, count))
}

func TestSharedReport(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("maps are shared between processes on Linux only")
	}
	rows := SharedRun([]uint32{1024}, 1)
	t.Log("\n" + SharedMarkdown(rows))
	r := rows[0]
	for name, res := range map[string]Result{"private": r.Private, "same process": r.SameProcess, "other process": r.Other} {
		if res.Err != nil {
			t.Fatalf("%s: %v", name, res.Err)
		}
		if res.NsPerOp <= 0 {
			t.Errorf("%s: %.1f ns/op", name, res.NsPerOp)
		}
	}
	if r.Other.AllocsPerOp != 0 {
		t.Errorf("a lookup from another process allocates %d times", r.Other.AllocsPerOp)
	}
	if !strings.Contains(SharedMarkdown(rows), "| lookup | 1024 |") {
		t.Errorf("row missing")
	}
}

// BenchmarkSharedLookup measures hash lookups on a shared (file-backed)
// map from the process that made it; the cross-process figure is in
// SharedReport, measured by a child.
func BenchmarkSharedLookup(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			s, err := NewSharedMap(Case{Hash, Lookup, n})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			BPFMapLoop(b, Case{Hash, Lookup, n}, s.Map)
		})
	}
}
