//go:build linux

package kbpf

import (
	"errors"
	"fmt"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
)

// loopFuncs returns the BTF function records of a measuring program: the
// XDP entry point named main and the static bpf_loop callback named cb
// (bpf_loop callbacks must be static functions with BTF func info).
func loopFuncs(main, cb string) (mainFn, cbFn *btf.Func) {
	mainFn = &btf.Func{
		Name: main,
		Type: &btf.FuncProto{
			Return: &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed},
			Params: []btf.FuncParam{{
				Name: "ctx",
				Type: &btf.Pointer{Target: &btf.Struct{Name: "xdp_md"}},
			}},
		},
		Linkage: btf.GlobalFunc,
	}
	cbFn = &btf.Func{
		Name: cb,
		Type: &btf.FuncProto{
			Return: &btf.Int{Name: "long", Size: 8, Encoding: btf.Signed},
			Params: []btf.FuncParam{
				{Name: "index", Type: &btf.Int{Name: "unsigned int", Size: 4}},
				{Name: "ctx", Type: &btf.Pointer{Target: &btf.Void{}}},
			},
		},
		Linkage: btf.StaticFunc,
	}
	return mainFn, cbFn
}

// loopMain is the entry point shared by the cost programs:
//
//	main(ctx):  u64 failed = 0
//	            r0 = bpf_loop(iters, cb, &failed, 0)
//	            failed != 0  -> return XDP_ABORTED
//	            r0 != iters  -> return XDP_DROP
//	            return XDP_PASS
//
// Its labels are prefixed with the callback's name, so several programs'
// labels never clash.
func loopMain(mainFn *btf.Func, cb string, iters uint32) asm.Instructions {
	return asm.Instructions{
		btf.WithFuncMetadata(asm.Mov.Imm(asm.R1, 0), mainFn).WithSymbol(mainFn.Name),
		asm.StoreMem(asm.RFP, -8, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R1, int32(iters)),
		asm.Instruction{
			OpCode:   asm.LoadImmOp(asm.DWord),
			Dst:      asm.R2,
			Src:      asm.PseudoFunc,
			Constant: -1,
		}.WithReference(cb),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, -8),
		asm.Mov.Imm(asm.R4, 0),
		asm.FnLoop.Call(),
		asm.LoadMem(asm.R1, asm.RFP, -8, asm.DWord),
		asm.JNE.Imm(asm.R1, 0, cb+"_op_failed"),
		asm.JNE.Imm(asm.R0, int32(iters), cb+"_loop_short"),
		asm.Mov.Imm(asm.R0, xdpPass),
		asm.Return(),
		asm.Mov.Imm(asm.R0, xdpDrop).WithSymbol(cb + "_loop_short"),
		asm.Return(),
		asm.Mov.Imm(asm.R0, xdpAborted).WithSymbol(cb + "_op_failed"),
		asm.Return(),
	}
}

// runLoop loads insns as an XDP program, runs it once with
// BPF_PROG_TEST_RUN and returns the wall time per iteration in nanoseconds. what names the
// caller in errors; failure describes an XDP_ABORTED result.
func runLoop(what string, insns asm.Instructions, iters uint32, failure string) (nsPerOp float64, err error) {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "kbpf_cost",
		Type:         ebpf.XDP,
		License:      "GPL", // bpf_loop is GPL-only
		Instructions: insns,
	})
	if err != nil {
		return 0, fmt.Errorf("kbpf: %s: load program: %w", what, err)
	}
	defer prog.Close()

	pkt := make([]byte, 64) // an Ethernet header (14 bytes) plus padding
	start := time.Now()
	ret, err := prog.Run(&ebpf.RunOptions{Data: pkt, Repeat: 1})
	elapsed := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("kbpf: %s: test run: %w", what, err)
	}
	switch ret {
	case xdpPass:
		return float64(elapsed.Nanoseconds()) / float64(iters), nil
	case xdpDrop:
		return 0, fmt.Errorf("kbpf: %s: bpf_loop did not run %d iterations", what, iters)
	case xdpAborted:
		return 0, errors.New("kbpf: " + what + ": " + failure)
	}
	return 0, fmt.Errorf("kbpf: %s: unexpected program result %d", what, ret)
}
