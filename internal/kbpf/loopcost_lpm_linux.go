//go:build linux

package kbpf

import (
	"encoding/binary"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
)

// LPMLoopCost measures the kernel's in-BPF cost of one LPM_TRIE lookup of
// a /32 probe. trie is an LPM_TRIE map with 8-byte keys {u32 prefixlen,
// 4 address bytes} and 8-byte values. probes holds the probe addresses as
// native-endian u32s whose memory bytes are the key's address bytes (so
// binary.NativeEndian.Uint32(key[4:]) of the probe key); len(probes) must
// be a power of two, and every probe must match some stored prefix.
//
// An XDP program, run once with BPF_PROG_TEST_RUN, calls
// bpf_loop(iters, cb, ...); iteration i reads probe (i * 2654435761) &
// (len(probes)-1) from an ARRAY map of the probes (a lookup the verifier
// inlines: a couple of nanoseconds, part of the figure as the empty loop
// is) and looks up {32, probe} in trie. It returns the wall time of the
// test run divided by iters, in nanoseconds; an error if any lookup misses.
func LPMLoopCost(trie *ebpf.Map, probes []uint32, iters uint32) (nsPerOp float64, err error) {
	if err := lpmLoopArgs("LPMLoopCost", trie, len(probes), iters); err != nil {
		return 0, err
	}
	tab, err := arrayOf("LPMLoopCost", probes)
	if err != nil {
		return 0, err
	}
	defer tab.Close()
	return runLoop("LPMLoopCost", lpmLoopProgram(trie.FD(), tab.FD(), uint32(len(probes)), iters), iters, "a probe missed inside BPF")
}

// lpmLoopArgs checks the arguments of an LPM loop measurement: an LPM_TRIE
// with 8-byte keys and values, n a power of two up to 2^31, iters in range.
func lpmLoopArgs(fn string, trie *ebpf.Map, n int, iters uint32) error {
	if trie == nil {
		return fmt.Errorf("kbpf: %s: nil map", fn)
	}
	if trie.Type() != ebpf.LPMTrie || trie.KeySize() != 8 || trie.ValueSize() != 8 {
		return fmt.Errorf("kbpf: %s: needs an LPM_TRIE with 8-byte keys and values, map is %v with %d / %d", fn, trie.Type(), trie.KeySize(), trie.ValueSize())
	}
	if n == 0 || n&(n-1) != 0 || n > 1<<31 {
		return fmt.Errorf("kbpf: %s: %d entries is not a power of two up to 2^31", fn, n)
	}
	if iters == 0 || iters > maxLoops {
		return fmt.Errorf("kbpf: %s: iters %d outside 1..%d", fn, iters, maxLoops)
	}
	return nil
}

// arrayOf makes an ARRAY map holding vals (index i → vals[i]), filled in
// batches.
func arrayOf[V uint32 | uint64](fn string, vals []V) (*ebpf.Map, error) {
	n := uint32(len(vals))
	tab, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: uint32(binary.Size(vals[0])), MaxEntries: n})
	if err != nil {
		return nil, fmt.Errorf("kbpf: %s: table: %w", fn, err)
	}
	const chunk = 1 << 16
	keys := make([]uint32, min(n, chunk))
	for off := uint32(0); off < n; off += chunk {
		end := min(off+chunk, n)
		for i := range end - off {
			keys[i] = off + i
		}
		if _, err := tab.BatchUpdate(keys[:end-off], vals[off:end], nil); err != nil {
			tab.Close()
			return nil, fmt.Errorf("kbpf: %s: fill table: %w", fn, err)
		}
	}
	return tab, nil
}

// lpmLoopProgram builds the measuring program:
//
//	main(ctx):       u64 failed = 0
//	                 r0 = bpf_loop(iters, cb, &failed, 0)
//	                 failed != 0  -> return XDP_ABORTED
//	                 r0 != iters  -> return XDP_DROP
//	                 return XDP_PASS
//	cb(index, ctx):  u32 i = (index * 2654435761) & mask          (fp-4)
//	                 r0 = lookup(probes, &i); NULL -> fail
//	                 key = {prefixlen 32, addr *r0}                (fp-16)
//	                 r0 = lookup(trie, &key); NULL -> fail
//	                 return 0
//	fail:            *ctx = 1, return 1 (stop)
func lpmLoopProgram(trieFD, tabFD int, n, iters uint32) asm.Instructions {
	mainFn, cbFn := loopFuncs("kbpf_lpmcost", "lpm_cb")
	return append(append(loopMain(mainFn, "lpm_cb", iters),
		tableEntry(cbFn, "lpm_cb", tabFD, n)...),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.Word),
		asm.StoreImm(asm.RFP, -16, 32, asm.Word), // prefixlen
		asm.StoreMem(asm.RFP, -12, asm.R1, asm.Word),
		asm.LoadMapPtr(asm.R1, trieFD),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -16),
		asm.FnMapLookupElem.Call(),
		asm.JNE.Imm(asm.R0, 0, "lpm_cb_ok"),
		// The flag is only ever set to the constant 1, so the verifier
		// sees just two stack states.
		asm.Mov.Imm(asm.R0, 1).WithSymbol("lpm_cb_fail"),
		asm.StoreMem(asm.R6, 0, asm.R0, asm.DWord),
		asm.Return(),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("lpm_cb_ok"),
		asm.Return(),
	)
}

// LPMUpdateDeleteLoopCost measures the kernel's in-BPF cost of inserting a
// route into an LPM_TRIE and deleting it again (one update with
// BPF_NOEXIST and one delete). trie is an LPM_TRIE with 8-byte keys and
// 8-byte values; routes are 8-byte keys {u32 prefixlen, 4 address bytes}
// that are not in trie; len(routes) must be a power of two. Iteration i of
// the bpf_loop inserts and deletes route (i * 2654435761) & (len-1), read
// from an ARRAY map. It returns the wall time per iteration (one pair) in nanoseconds; an
// error if an update or a delete fails.
func LPMUpdateDeleteLoopCost(trie *ebpf.Map, routes [][]byte, iters uint32) (nsPerOp float64, err error) {
	if err := lpmLoopArgs("LPMUpdateDeleteLoopCost", trie, len(routes), iters); err != nil {
		return 0, err
	}
	words := make([]uint64, len(routes))
	for i, r := range routes {
		if len(r) != 8 {
			return 0, fmt.Errorf("kbpf: LPMUpdateDeleteLoopCost: route %d has %d bytes, not 8", i, len(r))
		}
		words[i] = ne.Uint64(r)
	}
	tab, err := arrayOf("LPMUpdateDeleteLoopCost", words)
	if err != nil {
		return 0, err
	}
	defer tab.Close()
	return runLoop("LPMUpdateDeleteLoopCost", lpmUpdateDeleteProgram(trie.FD(), tab.FD(), uint32(len(routes)), iters), iters, "an update or delete failed inside BPF")
}

// lpmUpdateDeleteProgram builds the measuring program:
//
//	cb(index, ctx):  u32 i = (index * 2654435761) & mask          (fp-4)
//	                 r0 = lookup(routes, &i); NULL -> fail
//	                 key = *(u64 *)r0                              (fp-16)
//	                 value = 0                                     (fp-24)
//	                 update(trie, &key, &value, BPF_NOEXIST) != 0 -> fail
//	                 delete(trie, &key) != 0 -> fail
//	                 return 0
//	fail:            *ctx = 1, return 1 (stop)
func lpmUpdateDeleteProgram(trieFD, tabFD int, n, iters uint32) asm.Instructions {
	mainFn, cbFn := loopFuncs("kbpf_lpmupd", "lpmupd_cb")
	return append(append(loopMain(mainFn, "lpmupd_cb", iters),
		tableEntry(cbFn, "lpmupd_cb", tabFD, n)...),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
		asm.StoreMem(asm.RFP, -16, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R1, 0),
		asm.StoreMem(asm.RFP, -24, asm.R1, asm.DWord),
		asm.LoadMapPtr(asm.R1, trieFD),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -16),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, -24),
		asm.Mov.Imm(asm.R4, 1), // BPF_NOEXIST
		asm.FnMapUpdateElem.Call(),
		asm.JNE.Imm(asm.R0, 0, "lpmupd_cb_fail"),
		asm.LoadMapPtr(asm.R1, trieFD),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -16),
		asm.FnMapDeleteElem.Call(),
		asm.JNE.Imm(asm.R0, 0, "lpmupd_cb_fail"),
		asm.Mov.Imm(asm.R0, 0),
		asm.Return(),
		asm.Mov.Imm(asm.R0, 1).WithSymbol("lpmupd_cb_fail"),
		asm.StoreMem(asm.R6, 0, asm.R0, asm.DWord),
		asm.Return(),
	)
}

// tableEntry is the start of a bpf_loop callback named name (cb(r1 =
// index, r2 = ctx)): ctx kept in r6 across helper calls, then r0 = the
// entry (index * 2654435761) & (n-1) of the ARRAY map tabFD, jumping to
// name+"_fail" if the lookup returns NULL.
func tableEntry(fn *btf.Func, name string, tabFD int, n uint32) asm.Instructions {
	return asm.Instructions{
		btf.WithFuncMetadata(asm.Mov.Reg(asm.R6, asm.R2), fn).WithSymbol(name),
		asm.Mul.Imm32(asm.R1, knuthMul),
		asm.And.Imm32(asm.R1, int32(n-1)),
		asm.StoreMem(asm.RFP, -4, asm.R1, asm.Word),
		asm.LoadMapPtr(asm.R1, tabFD),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, name+"_fail"),
	}
}
