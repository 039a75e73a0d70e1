//go:build !linux || !amd64

package cpuid

// hasCPUNumber: no cheap way to read the CPU number here.
const hasCPUNumber = false

func cpuNumber() int { return 0 }
