//go:build linux

package kbpf

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/ringbuf"
)

// RingbufRun is one run of RingbufOutput.
type RingbufRun struct {
	// Records is the number of records the consumer read, which equals the
	// number the producers committed.
	Records uint64
	// Retries counts bpf_ringbuf_output calls that returned -EAGAIN (the
	// ring was full): each stops the producer's bpf_loop, and the producer
	// runs the program again, so no record is lost.
	Retries uint64
	// Elapsed runs from the producers' start until the consumer has read
	// the last record.
	Elapsed time.Duration
	// ProducersElapsed runs from the producers' start until the last
	// producer is done (the consumer may still be reading).
	ProducersElapsed time.Duration
}

// RecordsPerSec is Records / Elapsed.
func (r RingbufRun) RecordsPerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Records) / r.Elapsed.Seconds()
}

// ringbufChunk is the bpf_loop count of one test run of the producer
// program; a producer runs it until it has committed its share.
const ringbufChunk = 1 << 16

// RingbufOutput measures the kernel's ring buffer end to end: producers
// goroutines (each locked to its OS thread) run an XDP program with
// BPF_PROG_TEST_RUN that calls bpf_ringbuf_output(map, buf, recordSize, 0)
// in a bpf_loop, buf being a stack buffer whose first 8 bytes are the loop
// index, while one goroutine reads the RINGBUF map of ringSize data bytes
// with cilium/ebpf's ringbuf.Reader (ReadInto, one reused Record). Each
// producer commits at least records/producers records (in chunks of 65,536
// iterations); a full ring stops the chunk early (counted in Retries) and
// the producer runs the program again. The time is measured from the start
// of the producers until the consumer has read every committed record.
//
// recordSize must be a multiple of 8 between 8 and 256; ringSize a power of
// two and a multiple of the page size. On a machine with fewer CPUs than
// producers + 1 the producers and the consumer share CPUs.
func RingbufOutput(recordSize, producers int, records uint64, ringSize uint32) (RingbufRun, error) {
	if recordSize < 8 || recordSize > 256 || recordSize%8 != 0 {
		return RingbufRun{}, fmt.Errorf("kbpf: RingbufOutput: record size %d is not a multiple of 8 in 8..256", recordSize)
	}
	if producers < 1 {
		return RingbufRun{}, fmt.Errorf("kbpf: RingbufOutput: %d producers", producers)
	}
	m, err := ebpf.NewMap(&ebpf.MapSpec{Name: "kbpf_ringbuf", Type: ebpf.RingBuf, MaxEntries: ringSize})
	if err != nil {
		return RingbufRun{}, fmt.Errorf("kbpf: RingbufOutput: create map: %w", err)
	}
	defer m.Close()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "kbpf_ringbuf",
		Type:         ebpf.XDP,
		License:      "GPL", // bpf_loop is GPL-only
		Instructions: ringbufProgram(m.FD(), recordSize, ringbufChunk),
	})
	if err != nil {
		return RingbufRun{}, fmt.Errorf("kbpf: RingbufOutput: load program: %w", err)
	}
	defer prog.Close()
	rd, err := ringbuf.NewReader(m)
	if err != nil {
		return RingbufRun{}, fmt.Errorf("kbpf: RingbufOutput: reader: %w", err)
	}
	defer rd.Close()

	// Consumer: read until the producers are done and every record they
	// committed has been read.
	var (
		total    atomic.Uint64 // set when the producers are done
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
				if errors.Is(err, ringbuf.ErrFlushed) {
					continue // the producers are done: re-check the total
				}
				if errors.Is(err, ringbuf.ErrClosed) {
					readErr = fmt.Errorf("reader closed after %d records", read)
				} else {
					readErr = err
				}
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
		written, retries atomic.Uint64
		runErr           error
		errOnce          sync.Once
		wg               sync.WaitGroup
	)
	start := time.Now()
	for range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			pkt := make([]byte, 64)
			opts := &ebpf.RunOptions{Data: pkt, Repeat: 1}
			var n uint64
			for n < share {
				ret, err := prog.Run(opts)
				if err != nil {
					errOnce.Do(func() { runErr = err })
					break
				}
				n += uint64(ret)
				if ret < ringbufChunk {
					retries.Add(1)
					runtime.Gosched() // let the consumer drain
				}
			}
			written.Add(n)
		}()
	}
	wg.Wait()
	produced := time.Since(start)
	total.Store(written.Load())
	// Wake a consumer blocked in ReadInto so it sees the total.
	if err := rd.Flush(); err != nil {
		rd.Close()
	}
	consumer.Wait()
	elapsed := time.Since(start)
	if runErr != nil {
		return RingbufRun{}, fmt.Errorf("kbpf: RingbufOutput: test run: %w", runErr)
	}
	if readErr != nil {
		return RingbufRun{}, fmt.Errorf("kbpf: RingbufOutput: consumer: %w", readErr)
	}
	return RingbufRun{Records: read, Retries: retries.Load(), Elapsed: elapsed, ProducersElapsed: produced}, nil
}

// ringbufProgram builds the producer program:
//
//	main(ctx):       u64 buf[1 + size/8] = {0}          (fp-8-size: stop flag, then payload)
//	                 r0 = bpf_loop(iters, cb, &buf, 0)
//	                 buf[0] != 0 -> return r0 - 1   (the last iteration failed)
//	                 return r0                      (records committed)
//	cb(index, ctx):  ctx[1] = index
//	                 r0 = bpf_ringbuf_output(map, &ctx[1], size, 0)
//	                 r0 != 0 -> ctx[0] = 1, return 1 (stop)
//	                 return 0
//
// bpf_loop returns the number of callbacks run, including one that stopped
// the loop, so the program returns the number of records committed.
func ringbufProgram(mapFD, size int, iters uint32) asm.Instructions {
	mainFn, cbFn := loopFuncs("kbpf_ringbuf", "cb")
	base := int16(-8 - size) // the stop flag; the payload follows it
	insns := asm.Instructions{
		btf.WithFuncMetadata(asm.Mov.Imm(asm.R1, 0), mainFn).WithSymbol("kbpf_ringbuf"),
	}
	for off := base; off < 0; off += 8 {
		insns = append(insns, asm.StoreMem(asm.RFP, off, asm.R1, asm.DWord))
	}
	insns = append(insns,
		asm.Mov.Imm(asm.R1, int32(iters)),
		asm.Instruction{
			OpCode:   asm.LoadImmOp(asm.DWord),
			Dst:      asm.R2,
			Src:      asm.PseudoFunc,
			Constant: -1,
		}.WithReference("cb"),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, int32(base)),
		asm.Mov.Imm(asm.R4, 0),
		asm.FnLoop.Call(),
		asm.LoadMem(asm.R1, asm.RFP, base, asm.DWord),
		asm.JEq.Imm(asm.R1, 0, "all_ok"),
		asm.Sub.Imm(asm.R0, 1),
		asm.Return().WithSymbol("all_ok"),

		// cb(r1 = index, r2 = ctx): keep ctx in r6 across the helper call.
		btf.WithFuncMetadata(asm.Mov.Reg(asm.R6, asm.R2), cbFn).WithSymbol("cb"),
		asm.StoreMem(asm.R6, 8, asm.R1, asm.DWord),
		asm.LoadMapPtr(asm.R1, mapFD),
		asm.Mov.Reg(asm.R2, asm.R6),
		asm.Add.Imm(asm.R2, 8),
		asm.Mov.Imm(asm.R3, int32(size)),
		asm.Mov.Imm(asm.R4, 0),
		asm.FnRingbufOutput.Call(),
		asm.JEq.Imm(asm.R0, 0, "cb_ok"),
		asm.Mov.Imm(asm.R0, 1),
		asm.StoreMem(asm.R6, 0, asm.R0, asm.DWord),
		asm.Return(),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("cb_ok"),
		asm.Return(),
	)
	return insns
}
