package region

import (
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Wait32 blocks while *p == val, until Wake32(p) or for at most d (d <= 0:
// no limit). It may return early (spuriously); callers re-check their
// condition. On Linux it is futex(2) FUTEX_WAIT on the word itself — not
// FUTEX_PRIVATE, so waiters in other processes that map the same region
// are woken too.
func Wait32(p *uint32, val uint32, d time.Duration) {
	var ts *unix.Timespec
	if d > 0 {
		t := unix.NsecToTimespec(int64(d))
		ts = &t
	}
	// Sound: p points into a region (outside the Go heap) that the caller
	// keeps mapped; the kernel only reads the word and the timespec.
	_, _, _ = unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(p)), futexWait, uintptr(val),
		uintptr(unsafe.Pointer(ts)), 0, 0)
}

// Wake32 wakes every goroutine or thread blocked in Wait32(p, ...).
func Wake32(p *uint32) {
	// Sound: as for Wait32; the kernel uses the address as a key only.
	_, _, _ = unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(p)), futexWake, uintptr(1<<31-1), 0, 0, 0)
}

const (
	futexWait = 0 // FUTEX_WAIT
	futexWake = 1 // FUTEX_WAKE
)
