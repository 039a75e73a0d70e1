package cpuid

import (
	"runtime"
	"sync"
	"testing"
)

// TestProcessorIsStableOnOneThread covers the fallback without RDPID: a
// goroutine locked to its thread and never blocking keeps its P.
func TestProcessorIsStableOnOneThread(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	first := processor()
	same := 0
	for range 1000 {
		if processor() == first {
			same++
		}
	}
	if same < 900 {
		t.Fatalf("processor changed %d times in 1000 calls on one thread", 1000-same)
	}
}

// TestProcessorIsBelowGOMAXPROCS: Ps are numbered from 0, so callers that
// model GOMAXPROCS CPUs (or more) give every P a CPU of its own.
func TestProcessorIsBelowGOMAXPROCS(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	for range 4 * procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				if p := processor(); p < 0 || p >= procs {
					t.Errorf("processor %d outside [0, %d)", p, procs)
					return
				}
				runtime.Gosched()
			}
		}()
	}
	wg.Wait()
}

func TestConcurrentCallersGetIdentities(t *testing.T) {
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				if Current() < 0 {
					t.Error("negative CPU")
					return
				}
			}
		}()
	}
	wg.Wait()
}

func BenchmarkCurrent(b *testing.B) {
	for b.Loop() {
		_ = Current()
	}
}
