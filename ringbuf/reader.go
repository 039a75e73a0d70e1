// Package ringbuf reads records from a bpfmap ring buffer map
// (ebpf.RingBuf), mirroring github.com/cilium/ebpf/ringbuf: NewReader, Read,
// ReadInto, SetDeadline, AvailableBytes, BufferSize and Close behave as
// there, so code moves between a kernel ring buffer and a bpfmap one by
// changing an import. Producers write with (*bpfmap.Map).RingOutput or
// RingReserve.
//
// Read blocks without spinning (a futex on Linux) until a record is
// committed; Close interrupts it with ErrClosed, and a deadline with
// os.ErrDeadlineExceeded once no committed record is left. A Reader holds
// a reference to the map until Close, as the kernel's mapping of a ring
// holds the map. Use one Reader per ring.
//
// A ring buffer map shared by several processes (pinned, and opened from the
// pin elsewhere) is one ring: producers in any process wake a Reader in
// another, and a record whose producer process died between reserving and
// committing it is skipped once the Reader has waited on it for
// internal/ringbuf.StallCheck (10 ms) and found that process gone, so the
// records after it are still delivered.
package ringbuf

import (
	"fmt"
	"os"
	"time"

	"github.com/cilium/ebpf"

	"github.com/bpfmap/bpfmap"
	iring "github.com/bpfmap/bpfmap/internal/ringbuf"
)

// ErrClosed is returned by Read and ReadInto after Close; it is
// os.ErrClosed, as in cilium/ebpf.
var ErrClosed = os.ErrClosed

// Record is one record: its payload and the bytes left in the ring after it.
type Record struct {
	RawSample []byte
	// Remaining is the minimum number of bytes remaining in the ring buffer
	// after this record was read.
	Remaining int
}

// Reader reads records from a ring buffer map.
type Reader struct {
	r *iring.Reader
}

// NewReader returns a reader of a ring buffer map.
func NewReader(ringbufMap *bpfmap.Map) (*Reader, error) {
	if ringbufMap == nil || ringbufMap.Type() != ebpf.RingBuf {
		var t ebpf.MapType
		if ringbufMap != nil {
			t = ringbufMap.Type()
		}
		return nil, fmt.Errorf("invalid Map type: %s", t)
	}
	g, release, err := iring.OfMap(ringbufMap)
	if err != nil {
		return nil, err
	}
	return &Reader{r: iring.NewReader(g, release)}, nil
}

// Close frees the reader's reference to the map and interrupts Read.
func (r *Reader) Close() error { return r.r.Close() }

// SetDeadline sets how long Read and ReadInto block; the zero time removes
// the deadline.
func (r *Reader) SetDeadline(t time.Time) { r.r.SetDeadline(t) }

// Read returns the next record.
func (r *Reader) Read() (Record, error) {
	var rec Record
	err := r.ReadInto(&rec)
	return rec, err
}

// ReadInto is Read reusing rec's buffer.
func (r *Reader) ReadInto(rec *Record) error {
	ir := iring.Record{RawSample: rec.RawSample}
	err := r.r.ReadInto(&ir)
	rec.RawSample, rec.Remaining = ir.RawSample, ir.Remaining
	return err
}

// BufferSize is the ring's data size in bytes.
func (r *Reader) BufferSize() int { return r.r.BufferSize() }

// AvailableBytes is the amount of data not yet read, in bytes.
func (r *Reader) AvailableBytes() int { return r.r.AvailableBytes() }
