package ringbuf

import (
	"sync"
	"sync/atomic"
	"testing"
)

// BenchmarkOutputRead: one producer Outputs an 8-byte (or 128-byte) record
// and the consumer Reads it (ns per record, produce + consume).
func BenchmarkOutputRead(b *testing.B) {
	for _, size := range []int{8, 128} {
		b.Run("size="+itoa(size), func(b *testing.B) {
			g := newRing(b, 1<<20)
			rd := NewReader(g, nil)
			var rec Record
			rec.RawSample = make([]byte, 0, size)
			data := make([]byte, size)
			b.ReportAllocs()
			for b.Loop() {
				if err := g.Output(data); err != nil {
					b.Fatal(err)
				}
				if err := rd.ReadInto(&rec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOutput: Outputs of 8-byte (or 128-byte) records alone, the
// consumer position advanced by hand now and then (ns per record).
func BenchmarkOutput(b *testing.B) {
	for _, size := range []int{8, 128} {
		b.Run("size="+itoa(size), func(b *testing.B) {
			g := newRing(b, 1<<20)
			data := make([]byte, size)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if i&(1<<12-1) == 0 {
					atomic.StoreUint64(g.cons, atomic.LoadUint64(g.prod))
				}
				if err := g.Output(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOutputBatchRead: 64 Outputs then 64 Reads, per record.
func BenchmarkOutputBatchRead(b *testing.B) {
	g := newRing(b, 1<<20)
	rd := NewReader(g, nil)
	var rec Record
	rec.RawSample = make([]byte, 0, 8)
	data := make([]byte, 8)
	b.ReportAllocs()
	for i := 0; i < b.N; i += 64 {
		for range 64 {
			if err := g.Output(data); err != nil {
				b.Fatal(err)
			}
		}
		for range 64 {
			if err := rd.ReadInto(&rec); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkMultiProducer: GOMAXPROCS producers Output 8-byte records while
// one consumer drains; ns/op is per record of total throughput.
func BenchmarkMultiProducer(b *testing.B) {
	for _, producers := range []int{1, 2, 4, 8} {
		b.Run("producers="+itoa(producers), func(b *testing.B) {
			g := newRing(b, 1<<20)
			rd := NewReader(g, nil)
			var done atomic.Bool
			var read sync.WaitGroup
			read.Add(1)
			go func() {
				defer read.Done()
				var rec Record
				rec.RawSample = make([]byte, 0, 8)
				for !done.Load() || g.AvailableBytes() > 0 {
					for rd.next(&rec) {
					}
				}
			}()
			b.ResetTimer()
			var wg sync.WaitGroup
			per := b.N / producers
			for range producers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					data := make([]byte, 8)
					for i := 0; i < per; {
						if g.Output(data) == nil {
							i++
						}
					}
				}()
			}
			wg.Wait()
			done.Store(true)
			read.Wait()
		})
	}
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}
