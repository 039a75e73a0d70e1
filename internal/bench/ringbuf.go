package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"

	"github.com/bpfmap/bpfmap"
	"github.com/bpfmap/bpfmap/internal/kbpf"
	"github.com/bpfmap/bpfmap/ringbuf"
)

// Ring buffer throughput: producers goroutines write records of one size
// while one consumer reads them, end to end (from the producers' start until
// the consumer has read the last record), for three implementations in the
// same run:
//
//   - bpfmap: Map.RingOutput from each producer, the public ringbuf.Reader
//     (ReadInto with a reused Record) as the consumer;
//   - the kernel: an XDP program run with BPF_PROG_TEST_RUN calling
//     bpf_ringbuf_output in a bpf_loop from each producer (one OS thread
//     each), cilium/ebpf's ringbuf.Reader (ReadInto) as the consumer
//     (kbpf.RingbufOutput);
//   - a Go channel of [size]byte values (each record is copied in on send
//     and out on receive, as a ring copies it in and a reader copies it
//     out), buffered to hold as many records as the ring.
//
// Every producer writes the record index into the first 8 bytes of its
// payload. A producer that finds the ring full retries (bpfmap: after
// runtime.Gosched; the kernel: a bpf_loop chunk stops early and is run
// again); the retries are counted, no record is dropped.

// RingRun is one ring buffer throughput run.
type RingRun struct {
	Records uint64
	Retries uint64
	// Elapsed is end to end; ProducersElapsed until the last producer is
	// done.
	Elapsed, ProducersElapsed time.Duration
	Err                       error
}

// PerSec is records per second, end to end.
func (r RingRun) PerSec() float64 {
	if r.Err != nil || r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Records) / r.Elapsed.Seconds()
}

// ProducerPerSec is records per second until the producers are done.
func (r RingRun) ProducerPerSec() float64 {
	if r.Err != nil || r.ProducersElapsed <= 0 {
		return 0
	}
	return float64(r.Records) / r.ProducersElapsed.Seconds()
}

// RingRecords is the number of records of one run; RingSize the data size
// of the rings (bpfmap's and the kernel's); the channel holds as many
// records as the ring.
var (
	RingRecords uint64 = 1 << 22
	RingSize    uint32 = 16 << 20
)

// RingRecordSizes and RingProducers are the report's rows.
var (
	RingRecordSizes = []int{8, 128}
	RingProducers   = []int{1, 2, 4}
)

// MeasureRingBPFMap runs producers goroutines calling RingOutput with
// recordSize-byte records on a bpfmap ring of RingSize bytes, and one
// ringbuf.Reader consumer.
func MeasureRingBPFMap(recordSize, producers int, records uint64) RingRun {
	m, err := bpfmap.NewMap(&ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: RingSize})
	if err != nil {
		return RingRun{Err: err}
	}
	defer m.Close()
	rd, err := ringbuf.NewReader(m)
	if err != nil {
		return RingRun{Err: err}
	}
	defer rd.Close()

	var (
		total    atomic.Uint64
		read     uint64
		readErr  error
		consumer sync.WaitGroup
	)
	total.Store(^uint64(0))
	consumer.Add(1)
	go func() {
		defer consumer.Done()
		var rec ringbuf.Record
		rec.RawSample = make([]byte, 0, recordSize)
		for read < total.Load() {
			if err := rd.ReadInto(&rec); err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					if t := total.Load(); t != ^uint64(0) && read < t {
						readErr = fmt.Errorf("%d of %d records read", read, t)
						return
					}
					continue
				}
				readErr = err
				return
			}
			if len(rec.RawSample) != recordSize {
				readErr = fmt.Errorf("read a %d-byte record, want %d", len(rec.RawSample), recordSize)
				return
			}
			read++
		}
	}()

	share := records / uint64(producers)
	var (
		retries atomic.Uint64
		prodErr error
		errOnce sync.Once
		wg      sync.WaitGroup
	)
	start := time.Now()
	for range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, recordSize)
			var full uint64
			for i := uint64(0); i < share; {
				binary.LittleEndian.PutUint64(buf, i)
				if err := m.RingOutput(buf); err != nil {
					if !errors.Is(err, bpfmap.ErrRingFull) {
						errOnce.Do(func() { prodErr = err })
						return
					}
					full++
					runtime.Gosched()
					continue
				}
				i++
			}
			retries.Add(full)
		}()
	}
	wg.Wait()
	produced := time.Since(start)
	if prodErr != nil {
		total.Store(0)
	} else {
		total.Store(share * uint64(producers))
	}
	// Wake the consumer if it sleeps after the last record: a past deadline
	// makes ReadInto return once no committed record is left.
	rd.SetDeadline(time.Unix(1, 0))
	consumer.Wait()
	elapsed := time.Since(start)
	if prodErr != nil {
		return RingRun{Err: prodErr}
	}
	if readErr != nil {
		return RingRun{Err: readErr}
	}
	return RingRun{Records: read, Retries: retries.Load(), Elapsed: elapsed, ProducersElapsed: produced}
}

// MeasureRingKernel is kbpf.RingbufOutput on a kernel ring of RingSize
// bytes.
func MeasureRingKernel(recordSize, producers int, records uint64) RingRun {
	if err := kbpf.Available(); err != nil {
		return RingRun{Err: err}
	}
	r, err := kbpf.RingbufOutput(recordSize, producers, records, RingSize)
	if err != nil {
		return RingRun{Err: err}
	}
	return RingRun{Records: r.Records, Retries: r.Retries, Elapsed: r.Elapsed, ProducersElapsed: r.ProducersElapsed}
}

// MeasureRingChannel runs producers goroutines sending recordSize-byte
// array values on a channel holding as many records as the ring, and one
// receiver.
func MeasureRingChannel(recordSize, producers int, records uint64) RingRun {
	capacity := int(RingSize) / (recordSize + 8)
	switch recordSize {
	case 8:
		return chanRun(producers, records, capacity, func(v *[8]byte, i uint64) { binary.LittleEndian.PutUint64(v[:], i) })
	case 128:
		return chanRun(producers, records, capacity, func(v *[128]byte, i uint64) { binary.LittleEndian.PutUint64(v[:], i) })
	}
	return RingRun{Err: fmt.Errorf("no channel baseline for %d-byte records", recordSize)}
}

func chanRun[T any](producers int, records uint64, capacity int, put func(*T, uint64)) RingRun {
	ch := make(chan T, capacity)
	share := records / uint64(producers)
	total := share * uint64(producers)
	var sink T
	done := make(chan struct{})
	start := time.Now()
	go func() {
		for range total {
			sink = <-ch
		}
		close(done)
	}()
	var wg sync.WaitGroup
	for range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var v T
			for i := range share {
				put(&v, i)
				ch <- v
			}
		}()
	}
	wg.Wait()
	produced := time.Since(start)
	<-done
	elapsed := time.Since(start)
	_ = sink
	return RingRun{Records: total, Elapsed: elapsed, ProducersElapsed: produced}
}

func medianRun(rs []RingRun) RingRun {
	for _, r := range rs {
		if r.Err != nil {
			return r
		}
	}
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b RingRun) int {
		switch x, y := a.PerSec(), b.PerSec(); {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	})
	return s[len(s)/2]
}

func mrec(r RingRun, perSec func(RingRun) float64) string {
	if r.Err != nil {
		return "n/a"
	}
	return fmt.Sprintf("%.1f M", perSec(r)/1e6)
}

// RingbufReport measures ring buffer throughput for every record size and
// producer count (the median of count runs per cell, by end-to-end rate)
// and renders a markdown table.
func RingbufReport(count int) string {
	count = max(count, 1)
	var sb strings.Builder
	fmt.Fprintf(&sb, "| ring buffer (%d records per run, %d KiB ring, %d CPUs) | producers | bpfmap records/s | kernel records/s | Go channel records/s | bpfmap / kernel | bpfmap producers only | kernel producers only | retries (bpfmap / kernel) |\n",
		RingRecords, RingSize>>10, runtime.NumCPU())
	sb.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	var errs []string
	for _, size := range RingRecordSizes {
		for _, p := range RingProducers {
			var bs, ks, cs []RingRun
			for range count {
				bs = append(bs, MeasureRingBPFMap(size, p, RingRecords))
				ks = append(ks, MeasureRingKernel(size, p, RingRecords))
				cs = append(cs, MeasureRingChannel(size, p, RingRecords))
			}
			b, k, c := medianRun(bs), medianRun(ks), medianRun(cs)
			ratio := "n/a"
			if b.Err == nil && k.Err == nil && k.PerSec() > 0 {
				ratio = fmt.Sprintf("%.2f×", b.PerSec()/k.PerSec())
			}
			retries := fmt.Sprintf("%d / ", b.Retries)
			if k.Err == nil {
				retries += fmt.Sprint(k.Retries)
			} else {
				retries += "n/a"
			}
			fmt.Fprintf(&sb, "| %d-byte records | %d | %s | %s | %s | %s | %s | %s | %s |\n", size, p,
				mrec(b, RingRun.PerSec), mrec(k, RingRun.PerSec), mrec(c, RingRun.PerSec), ratio,
				mrec(b, RingRun.ProducerPerSec), mrec(k, RingRun.ProducerPerSec), retries)
			for _, r := range []RingRun{b, k, c} {
				if r.Err != nil && !slices.Contains(errs, r.Err.Error()) {
					errs = append(errs, r.Err.Error())
				}
			}
		}
	}
	for _, e := range errs {
		fmt.Fprintf(&sb, "\nn/a: %s\n", e)
	}
	return sb.String()
}
