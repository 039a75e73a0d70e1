// Package cpuid tells an operation which CPU it "runs on", for the map types
// whose kernel behaviour depends on the current CPU (the LRU hash maps' per-CPU
// lists). The kernel uses the CPU executing the syscall, and so does Current
// where the processor can say cheaply: on amd64 CPUs with the RDPID
// instruction it reads the CPU number Linux keeps in IA32_TSC_AUX, as the
// vDSO's getcpu does, in a few nanoseconds (getcpu(2) is a system call,
// about 180 ns here).
//
// Elsewhere (other architectures, and VMs whose CPU model hides RDPID) the
// closest cheap notion in Go is the scheduler's processor (P) running the
// goroutine: Ps are numbered 0 … GOMAXPROCS-1, a goroutine runs on one P at
// a time, and at most GOMAXPROCS goroutines run at once, each on its own P,
// just as each CPU runs one thread. The runtime hands the number out through
// procPin, which sync.Pool uses for its per-P shards; this package reaches
// it through a go:linkname that the runtime keeps open for outside packages
// (go.dev/issue/67401), about 1 ns against ~25 ns for a sync.Pool round
// trip. That linkname is the package's only reason to import unsafe: no
// pointer is converted or dereferenced through it.
//
// Callers reduce the number modulo the CPUs they model; anything that must
// be reproducible sets its CPU explicitly.
package cpuid

import (
	_ "unsafe" // go:linkname to the runtime's procPin/procUnpin; no pointer use
)

// Current returns the number of the CPU running the caller (RDPID), or else
// the number of the scheduler's processor (P) running it.
func Current() int {
	if hasCPUNumber {
		return cpuNumber()
	}
	return processor()
}

// processor is the number of the P running the caller, in
// [0, GOMAXPROCS). The goroutine is pinned to its P only while the number
// is read, so by the time the caller uses it the goroutine may run on
// another P: like a CPU number read in user space, it is a hint for
// spreading work, and callers must stay correct whatever it says.
func processor() int {
	p := procPin()
	procUnpin()
	return p
}

// procPin disables preemption of the calling goroutine and returns the id
// of its P (runtime.procPin).
//
//go:linkname procPin runtime.procPin
func procPin() int

// procUnpin re-enables preemption after procPin (runtime.procUnpin).
//
//go:linkname procUnpin runtime.procUnpin
func procUnpin()
