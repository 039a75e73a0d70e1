package bpfmap

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/cilium/ebpf"

	"github.com/bpfmap/bpfmap/internal/region"
	iring "github.com/bpfmap/bpfmap/internal/ringbuf"
)

// Ring buffers (BPF_MAP_TYPE_RINGBUF, ebpf.RingBuf)
//
// A ring buffer map has no elements: every element command fails with
// ENOTSUPP, as in the kernel. Producers use the methods below, which behave
// as the BPF helpers bpf_ringbuf_reserve, bpf_ringbuf_submit,
// bpf_ringbuf_discard and bpf_ringbuf_output, and may run on any number of
// goroutines at once; the consumer is
// github.com/bpfmap/bpfmap/ringbuf.NewReader, shaped like cilium/ebpf's
// ringbuf.NewReader. RingMapping exposes the memory as the kernel's mmap of a
// ring buffer fd lays it out, for consumers written against that layout.

// ErrRingFull is returned when a record does not fit in the ring's free
// space (or can never fit). errors.Is matches it and unix.EAGAIN, the errno
// bpf_ringbuf_output returns in BPF (bpf_ringbuf_reserve returns NULL).
var ErrRingFull = iring.ErrFull

// errNotRing is returned by the ring methods on maps of other types.
var errNotRing = fmt.Errorf("not a ring buffer map: %w", ebpf.ErrNotSupported)

func init() {
	iring.OfMap = func(v any) (*iring.Ring, func() error, error) {
		m, ok := v.(*Map)
		if !ok || m == nil {
			return nil, nil, errNotRing
		}
		c, err := m.Clone()
		if err != nil {
			return nil, nil, err
		}
		g, err := c.ring()
		if err != nil {
			c.Close()
			return nil, nil, err
		}
		return g, c.Close, nil
	}
}

// ring finds the map's ring (a table lookup: see iring.Lookup).
func (m *Map) ring() (*iring.Ring, error) {
	if m.typ != ebpf.RingBuf {
		return nil, errNotRing
	}
	r, _ := m.h.KeepAlive().(*region.Region)
	g := iring.Lookup(r)
	if g == nil {
		return nil, fmt.Errorf("ring buffer: %w", errors.ErrUnsupported)
	}
	return g, nil
}

// RingRecord is a reserved ring buffer record (bpf_ringbuf_reserve's
// result). Write the payload into Bytes, then call Submit or Discard exactly
// once; the consumer sees records in reservation order and stops at the
// first one still reserved.
type RingRecord struct{ v iring.Reservation }

// Bytes is the record's payload: n bytes, contiguous even where the record
// wraps around the end of the ring.
func (r RingRecord) Bytes() []byte { return r.v.Bytes() }

// Submit commits the record and wakes a waiting reader (bpf_ringbuf_submit).
func (r RingRecord) Submit() { r.v.Submit() }

// Discard drops the record; readers skip it (bpf_ringbuf_discard).
func (r RingRecord) Discard() { r.v.Discard() }

// RingReserve reserves a record of n payload bytes in a ring buffer map. It
// fails with ErrRingFull (matching unix.EAGAIN) when the record does not fit:
// as in the kernel, a ring of S bytes holds at most S-8 bytes of records
// (8-byte header each, sizes rounded up to 8), and a record counts from its
// reservation until the reader has consumed it.
func (m *Map) RingReserve(n int) (RingRecord, error) {
	defer runtime.KeepAlive(m)
	g, err := m.ring()
	if err != nil {
		return RingRecord{}, err
	}
	v, err := g.Reserve(n)
	return RingRecord{v}, err
}

// RingOutput copies data into a new record and commits it
// (bpf_ringbuf_output). A full ring is ErrRingFull (unix.EAGAIN).
func (m *Map) RingOutput(data []byte) error {
	g, err := m.ring()
	if err != nil {
		return err
	}
	err = g.Output(data)
	runtime.KeepAlive(m)
	return err
}

// RingMapping returns a ring buffer map's memory as mmap(2) of a kernel
// ring buffer's fd shows it (P = os.Getpagesize(), S = MaxEntries): the
// consumer page (consumer_pos, u64, at byte 0), the producer page
// (producer_pos at byte 0), the S data bytes, and the same data again so a
// wrapped record reads linearly. Records have the kernel's 8-byte header
// {u32 len; u32 pg_off} with BUSY (bit 31) and DISCARD (bit 30) in len;
// pg_off, which consumers ignore, holds the producer's owner token rather
// than the kernel's page offset.
//
// A consumer may advance consumer_pos with an atomic store; everything else
// must be treated as read-only (the kernel maps it so). The slice stays
// valid while the map is open; do not run a Reader on the same map at once.
func (m *Map) RingMapping() ([]byte, error) {
	defer runtime.KeepAlive(m)
	g, err := m.ring()
	if err != nil {
		return nil, err
	}
	return g.Mapping(), nil
}
