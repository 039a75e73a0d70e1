package bpfmap_test

import (
	"errors"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"

	"github.com/bpfmap/bpfmap"
	"github.com/bpfmap/bpfmap/ringbuf"
)

// newRingMap creates a RINGBUF map, skipping the test while the command
// layer does not register the type yet.
func newRingMap(t *testing.T, size uint32) *bpfmap.Map {
	t.Helper()
	m, err := bpfmap.NewMap(&ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: size})
	if errors.Is(err, ebpf.ErrNotSupported) {
		t.Skip("RINGBUF is not registered in the command layer yet")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestRingbufPublicAPI(t *testing.T) {
	m := newRingMap(t, 4096)
	if err := m.Put(uint32(1), uint32(1)); !errors.Is(err, bpfmap.ENOTSUPP) && !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("Put: %v", err)
	}
	rd, err := ringbuf.NewReader(m)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	if rd.BufferSize() != 4096 {
		t.Fatal(rd.BufferSize())
	}
	if err := m.RingOutput([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	rec, err := m.RingReserve(4)
	if err != nil {
		t.Fatal(err)
	}
	copy(rec.Bytes(), "drop")
	rec.Discard()
	if rd.AvailableBytes() != 32 {
		t.Fatalf("available %d", rd.AvailableBytes())
	}
	r, err := rd.Read()
	if err != nil || string(r.RawSample) != "abc" {
		t.Fatalf("%q %v", r.RawSample, err)
	}
	rd.SetDeadline(time.Now().Add(10 * time.Millisecond))
	if _, err := rd.Read(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal(err)
	}
	mp, err := m.RingMapping()
	if err != nil || len(mp) != 2*os.Getpagesize()+2*4096 {
		t.Fatalf("mapping %d %v", len(mp), err)
	}
	for m.RingOutput(make([]byte, 100)) == nil {
	}
	for m.RingOutput(nil) == nil {
	}
	if err := m.RingOutput(nil); !errors.Is(err, bpfmap.ErrRingFull) || !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("full: %v", err)
	}
	// The reader keeps the map alive after the map's own handle closes.
	m.Close()
	rd.SetDeadline(time.Time{})
	if _, err := rd.Read(); err != nil {
		t.Fatal(err)
	}
	if err := rd.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := rd.Read(); !errors.Is(err, ringbuf.ErrClosed) {
		t.Fatal(err)
	}
	h, _ := bpfmap.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	defer h.Close()
	if _, err := ringbuf.NewReader(h); err == nil {
		t.Fatal("reader of an array")
	}
	if err := h.RingOutput(nil); !errors.Is(err, ebpf.ErrNotSupported) {
		t.Fatal(err)
	}
}

// BenchmarkRingOutputRead: Map.RingOutput of an 8-byte record, then the
// public Reader's ReadInto (ns per record, produce + consume, one goroutine).
func BenchmarkRingOutputRead(b *testing.B) {
	m, err := bpfmap.NewMap(&ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	rd, err := ringbuf.NewReader(m)
	if err != nil {
		b.Fatal(err)
	}
	defer rd.Close()
	var rec ringbuf.Record
	rec.RawSample = make([]byte, 0, 8)
	data := make([]byte, 8)
	b.ReportAllocs()
	for b.Loop() {
		if err := m.RingOutput(data); err != nil {
			b.Fatal(err)
		}
		if err := rd.ReadInto(&rec); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRingOutput: Map.RingOutput of 8-byte records alone, the
// consumer position advanced by hand every 16 Ki records (ns per record).
func BenchmarkRingOutput(b *testing.B) {
	m, err := bpfmap.NewMap(&ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	mem, err := m.RingMapping()
	if err != nil {
		b.Fatal(err)
	}
	page := os.Getpagesize()
	cons := (*uint64)(unsafe.Pointer(&mem[0]))
	prod := (*uint64)(unsafe.Pointer(&mem[page]))
	data := make([]byte, 8)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i&(1<<14-1) == 0 {
			atomic.StoreUint64(cons, atomic.LoadUint64(prod))
		}
		if err := m.RingOutput(data); err != nil {
			b.Fatal(err)
		}
	}
}
