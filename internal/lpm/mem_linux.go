//go:build linux

package lpm

import "golang.org/x/sys/unix"

// physMem is the machine's RAM plus swap in bytes (0 if unknown): an
// anonymous mapping larger than that is refused under the kernel's default
// overcommit heuristic.
func physMem() uint64 {
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) != nil {
		return 0
	}
	return (uint64(si.Totalram) + uint64(si.Totalswap)) * uint64(si.Unit)
}
