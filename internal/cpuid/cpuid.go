// Package cpuid tells an operation which CPU it "runs on", for the map types
// whose kernel behaviour depends on the current CPU (the LRU hash maps' per-CPU
// lists). The kernel uses the CPU executing the syscall, and so does Current
// where the processor can say cheaply: on amd64 CPUs with the RDPID
// instruction it reads the CPU number Linux keeps in IA32_TSC_AUX, as the
// vDSO's getcpu does, in a few nanoseconds (getcpu(2) is a system call,
// about 180 ns here).
//
// Elsewhere the closest cheap notion in Go is the scheduler's processor (P)
// running the goroutine, which a sync.Pool tracks for free: each P keeps its
// own pooled identity number. Identities are handed out 0, 1, 2, … as Ps
// first ask, so with GOMAXPROCS equal to the number of CPUs they cover the
// CPUs; a P keeps its number while its pool entry survives (after garbage
// collections it may be given a new one; under the race detector, whose
// sync.Pool drops entries at random, it changes often). That costs about
// 12 ns.
//
// Callers reduce the number modulo the CPUs they model; anything that must
// be reproducible sets its CPU explicitly.
package cpuid

import (
	"sync"
	"sync/atomic"
)

var (
	next atomic.Uint32
	ids  = sync.Pool{New: func() any {
		id := next.Add(1) - 1
		return &id
	}}
)

// Current returns the number of the CPU running the caller (RDPID), or else
// the identity of the scheduler's processor running it.
func Current() int {
	if hasCPUNumber {
		return cpuNumber()
	}
	return poolID()
}

// poolID is the identity of the scheduler's processor running the caller.
func poolID() int {
	p := ids.Get().(*uint32)
	id := *p
	ids.Put(p)
	return int(id)
}
