package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestRingbufReportFull prints the full report (as cmd/bpfmap-bench would)
// when BPFMAP_RINGBUF_REPORT is set to the number of runs per cell.
func TestRingbufReportFull(t *testing.T) {
	count, err := strconv.Atoi(os.Getenv("BPFMAP_RINGBUF_REPORT"))
	if err != nil {
		t.Skip("set BPFMAP_RINGBUF_REPORT=<runs per cell> to print the full ring buffer report")
	}
	fmt.Print(RingbufReport(count))
}

func TestRingbufReport(t *testing.T) {
	defer func(n uint64, s uint32) { RingRecords, RingSize = n, s }(RingRecords, RingSize)
	RingRecords, RingSize = 1<<14, 1<<16 // a small ring: producers hit a full ring
	out := RingbufReport(1)
	t.Log("\n" + out)
	if strings.Count(out, "-byte records |") != len(RingRecordSizes)*len(RingProducers) {
		t.Fatalf("missing rows:\n%s", out)
	}
	for _, size := range RingRecordSizes {
		for _, p := range RingProducers {
			for name, r := range map[string]RingRun{
				"bpfmap":  MeasureRingBPFMap(size, p, RingRecords),
				"channel": MeasureRingChannel(size, p, RingRecords),
			} {
				if r.Err != nil {
					t.Fatalf("%s %d bytes × %d: %v", name, size, p, r.Err)
				}
				if want := RingRecords / uint64(p) * uint64(p); r.Records != want {
					t.Fatalf("%s %d bytes × %d: %d records, want %d", name, size, p, r.Records, want)
				}
			}
		}
	}
}

// benchRing reports ns per record of total (end-to-end) throughput.
func benchRing(b *testing.B, run func(size, producers int, records uint64) RingRun) {
	for _, size := range RingRecordSizes {
		for _, p := range RingProducers {
			b.Run(fmt.Sprintf("size=%d/producers=%d", size, p), func(b *testing.B) {
				b.ReportAllocs()
				r := run(size, p, uint64(max(b.N, p)))
				if r.Err != nil {
					b.Skip(r.Err)
				}
				b.ReportMetric(float64(r.Elapsed.Nanoseconds())/float64(r.Records), "ns/record")
				b.ReportMetric(r.PerSec()/1e6, "Mrecords/s")
			})
		}
	}
}

func BenchmarkRingBPFMap(b *testing.B)  { benchRing(b, MeasureRingBPFMap) }
func BenchmarkRingKernel(b *testing.B)  { benchRing(b, MeasureRingKernel) }
func BenchmarkRingChannel(b *testing.B) { benchRing(b, MeasureRingChannel) }
