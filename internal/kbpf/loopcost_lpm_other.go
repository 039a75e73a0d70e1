//go:build !linux

package kbpf

import (
	"syscall"

	"github.com/cilium/ebpf"
)

// LPMLoopCost would measure an LPM_TRIE lookup inside BPF; on this GOOS it
// returns ENOSYS.
func LPMLoopCost(trie *ebpf.Map, probes []uint32, iters uint32) (nsPerOp float64, err error) {
	return 0, syscall.ENOSYS
}

// LPMUpdateDeleteLoopCost would measure an LPM_TRIE insert and delete
// inside BPF; on this GOOS it returns ENOSYS.
func LPMUpdateDeleteLoopCost(trie *ebpf.Map, routes [][]byte, iters uint32) (nsPerOp float64, err error) {
	return 0, syscall.ENOSYS
}
