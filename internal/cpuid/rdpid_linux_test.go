package cpuid

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// TestCurrentIsTheCPU pins the test's thread to each CPU it may run on in
// turn and checks that Current names that CPU, where the CPU number is
// readable (RDPID).
func TestCurrentIsTheCPU(t *testing.T) {
	if !hasCPUNumber {
		t.Skip("no RDPID on this CPU (or not amd64): Current is the scheduler's processor")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var orig unix.CPUSet
	if err := unix.SchedGetaffinity(0, &orig); err != nil {
		t.Fatal(err)
	}
	defer unix.SchedSetaffinity(0, &orig)
	tried := 0
	for c := range 1024 {
		if !orig.IsSet(c) {
			continue
		}
		var one unix.CPUSet
		one.Set(c)
		if err := unix.SchedSetaffinity(0, &one); err != nil {
			t.Fatal(err)
		}
		if got := Current(); got != c {
			t.Fatalf("pinned to CPU %d, Current() = %d", c, got)
		}
		tried++
	}
	if tried == 0 {
		t.Fatal("no CPU in the thread's affinity mask")
	}
}
