package bpfmap_test

import (
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/bpfmap/bpfmap"
	"github.com/bpfmap/bpfmap/ringbuf"
)

// A ring buffer: producers write records as BPF programs do with
// bpf_ringbuf_output or reserve/submit, and a reader shaped like
// cilium/ebpf's ringbuf.Reader consumes them in order.
func Example_ringBuffer() {
	events, err := bpfmap.NewMap(&ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: 4096})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer events.Close()
	rd, err := ringbuf.NewReader(events)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer rd.Close()

	_ = events.RingOutput([]byte("first"))
	rec, _ := events.RingReserve(6)
	copy(rec.Bytes(), "second")
	rec.Submit()
	skipped, _ := events.RingReserve(4)
	skipped.Discard()

	for range 2 {
		r, err := rd.Read()
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%s (%d bytes left)\n", r.RawSample, r.Remaining)
	}
	fmt.Println("buffer size:", rd.BufferSize())
	// Output:
	// first (32 bytes left)
	// second (16 bytes left)
	// buffer size: 4096
}

// A full ring refuses records with bpfmap.ErrRingFull, which matches
// unix.EAGAIN as bpf_ringbuf_output's -EAGAIN.
func Example_ringBufferFull() {
	events, err := bpfmap.NewMap(&ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: 4096})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer events.Close()
	n := 0
	for events.RingOutput(make([]byte, 8)) == nil {
		n++
	}
	fmt.Println(n, "records of 16 bytes fit in 4096 bytes")
	fmt.Println(events.RingOutput(make([]byte, 8)))
	// Output:
	// 255 records of 16 bytes fit in 4096 bytes
	// ring buffer full
}
