package cpuid

import (
	"runtime"
	"sync"
	"testing"
)

// TestPoolIDIsStableOnOneGoroutine covers the fallback without RDPID.
func TestPoolIDIsStableOnOneGoroutine(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops entries at random under the race detector")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	first := poolID()
	same := 0
	for range 1000 {
		if poolID() == first {
			same++
		}
	}
	if same < 900 {
		t.Fatalf("identity changed %d times in 1000 calls on one thread", 1000-same)
	}
}

func TestConcurrentCallersGetIdentities(t *testing.T) {
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				if Current() < 0 {
					t.Error("negative identity")
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
