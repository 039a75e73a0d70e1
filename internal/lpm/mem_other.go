//go:build !linux

package lpm

// physMem is unknown here; arenas are capped by the ref range alone.
func physMem() uint64 { return 0 }
