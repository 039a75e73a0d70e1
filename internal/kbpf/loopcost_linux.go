//go:build linux

package kbpf

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
)

// maxLoops is BPF_MAX_LOOPS, the largest nr_loops bpf_loop accepts.
const maxLoops = 1 << 23

// knuthMul is 2654435761 (Knuth's multiplicative hash constant) as the
// int32 immediate whose 32-bit product has the same low bits.
const knuthMul = int32(-1640531535) // 2654435761 - 1<<32

// XDP return codes used to report the program's outcome.
const (
	xdpAborted = 0 // some map operation failed (missing key, update error)
	xdpDrop    = 1 // bpf_loop did not run all iterations
	xdpPass    = 2 // every iteration succeeded
)

// LoopCost measures the kernel's in-BPF cost of one op on m. An XDP
// program, run once with BPF_PROG_TEST_RUN, calls bpf_loop(iters, cb, ...);
// iteration i does one map operation on key (i * 2654435761) & (nKeys-1)
// (nKeys a power of two, so the keys are a permutation of 0..nKeys-1 and
// every key hits). For OpUpdate the value is the loop index as a u64 and the
// flags are BPF_ANY. It returns the wall time of the test run divided by
// iters, in nanoseconds (fractional: an integer Duration per iteration
// would round the kernel's figure down by up to a nanosecond).
//
// m is a kernel map created by the caller (key 4 bytes, value 8 bytes, HASH
// or ARRAY or another type with those sizes) already holding keys
// 0..nKeys-1; for OpPeek a bloom filter with 4-byte values into which the
// values 0..nKeys-1 were pushed; for OpPushPop a queue or stack with 8-byte
// values and room for one more element. iters must be between 1 and 1<<23 (BPF_MAX_LOOPS). An error
// is returned if any lookup misses or any update fails.
func LoopCost(m *ebpf.Map, op Op, nKeys uint32, iters uint32) (nsPerOp float64, err error) {
	if m == nil {
		return 0, errors.New("kbpf: LoopCost: nil map")
	}
	wantKey, wantValue := uint32(4), uint32(8)
	switch op {
	case OpPeek:
		wantKey, wantValue = 0, 4
	case OpPushPop:
		wantKey = 0
	}
	if m.KeySize() != wantKey || m.ValueSize() != wantValue {
		return 0, fmt.Errorf("kbpf: LoopCost: %v needs key %d / value %d bytes, map has %d / %d", op, wantKey, wantValue, m.KeySize(), m.ValueSize())
	}
	if nKeys == 0 || nKeys&(nKeys-1) != 0 || nKeys > 1<<31 {
		return 0, fmt.Errorf("kbpf: LoopCost: nKeys %d is not a power of two up to 2^31", nKeys)
	}
	if iters == 0 || iters > maxLoops {
		return 0, fmt.Errorf("kbpf: LoopCost: iters %d outside 1..%d", iters, maxLoops)
	}
	insns, err := loopProgram(m.FD(), op, nKeys, iters)
	if err != nil {
		return 0, err
	}
	return runLoop("LoopCost", insns, iters, fmt.Sprintf("%v failed inside BPF (missing key or update error)", op))
}

// loopProgram builds the measuring program:
//
//	main(ctx):       u64 failed = 0
//	                 r0 = bpf_loop(iters, cb, &failed, 0)
//	                 failed != 0  -> return XDP_ABORTED
//	                 r0 != iters  -> return XDP_DROP
//	                 return XDP_PASS
//	cb(index, ctx):  u32 key = (index * 2654435761) & mask     (fp-4)
//	                 u64 val = index                            (fp-16, update only)
//	                 r0 = lookup(map, &key) / update(map, &key, &val, BPF_ANY)
//	                 lookup: r0 == NULL, update: r0 != 0 -> *ctx = 1, return 1 (stop)
//	                 return 0
func loopProgram(mapFD int, op Op, nKeys, iters uint32) (asm.Instructions, error) {
	if op < OpLookup || op > OpPushPop {
		return nil, fmt.Errorf("kbpf: LoopCost: unknown op %d", int(op))
	}
	mainFn, cbFn := loopFuncs("kbpf_loopcost", "cb")
	insns := loopMain(mainFn, "cb", iters)
	insns = append(insns,
		// cb(r1 = index, r2 = ctx): keep ctx in r6 across the helper call.
		btf.WithFuncMetadata(asm.Mov.Reg(asm.R6, asm.R2), cbFn).WithSymbol("cb"),
	)
	if op == OpUpdate {
		// The value is the loop index.
		insns = append(insns, asm.StoreMem(asm.RFP, -16, asm.R1, asm.DWord))
	}
	insns = append(insns,
		asm.Mul.Imm32(asm.R1, knuthMul),
		asm.And.Imm32(asm.R1, int32(nKeys-1)),
		asm.StoreMem(asm.RFP, -4, asm.R1, asm.Word),
		asm.LoadMapPtr(asm.R1, mapFD),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
	)
	switch op {
	case OpLookup:
		insns = append(insns,
			asm.FnMapLookupElem.Call(),
			asm.JNE.Imm(asm.R0, 0, "cb_ok"),
		)
	case OpUpdate:
		insns = append(insns,
			asm.Mov.Reg(asm.R3, asm.RFP),
			asm.Add.Imm(asm.R3, -16),
			asm.Mov.Imm(asm.R4, 0), // BPF_ANY
			asm.FnMapUpdateElem.Call(),
			asm.JEq.Imm(asm.R0, 0, "cb_ok"),
		)
	case OpPeek:
		// bpf_map_peek_elem(map, &value): the 4-byte value at fp-4 is the
		// probe; 0 means present.
		insns = append(insns,
			asm.FnMapPeekElem.Call(),
			asm.JEq.Imm(asm.R0, 0, "cb_ok"),
		)
	case OpPushPop:
		// push the 8-byte value at fp-16, then pop it back into fp-16.
		insns = append(insns,
			asm.LoadMem(asm.R3, asm.RFP, -4, asm.Word),
			asm.StoreMem(asm.RFP, -16, asm.R3, asm.DWord),
			asm.LoadMapPtr(asm.R1, mapFD),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -16),
			asm.Mov.Imm(asm.R3, 0), // BPF_ANY
			asm.FnMapPushElem.Call(),
			asm.JNE.Imm(asm.R0, 0, "cb_fail"),
			asm.LoadMapPtr(asm.R1, mapFD),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -16),
			asm.FnMapPopElem.Call(),
			asm.JEq.Imm(asm.R0, 0, "cb_ok"),
		)
	}
	// On failure set the flag and stop the loop. The flag is only ever set
	// to the constant 1 (never incremented) so the verifier, which explores
	// the callback until its states converge, sees just two stack states.
	insns = append(insns,
		asm.Mov.Imm(asm.R0, 1).WithSymbol("cb_fail"),
		asm.StoreMem(asm.R6, 0, asm.R0, asm.DWord),
		asm.Return(),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("cb_ok"),
		asm.Return(),
	)
	return insns, nil
}
