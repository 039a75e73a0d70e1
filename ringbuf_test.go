package bpfmap_test

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

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
	if err := m.Put(uint32(1), uint32(1)); !errors.Is(err, bpfmap.ENOTSUPP) && !errors.Is(err, unix.EINVAL) {
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
	if err := m.RingOutput(nil); !errors.Is(err, bpfmap.ErrRingFull) || !errors.Is(err, unix.EAGAIN) {
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
