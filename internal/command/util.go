package command

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

func casFrozen(p *uint32) bool { return atomic.CompareAndSwapUint32(p, 0, 1) }

// randomSeed is the hash seed of a map created without BPF_F_ZERO_SEED.
func randomSeed() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return binary.LittleEndian.Uint32(b[:])
}

var possible = sync.OnceValue(func() int {
	if n, ok := parseCPURange("/sys/devices/system/cpu/possible"); ok {
		return n
	}
	return runtime.NumCPU()
})

// PossibleCPUs is this machine's number of possible CPUs, read the way the
// kernel reports them (/sys/devices/system/cpu/possible, "0-N" → N+1), or
// the number of CPUs where that file does not exist.
func PossibleCPUs() int { return possible() }

func parseCPURange(path string) (int, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	s := strings.TrimSpace(string(b))
	n := 0
	for _, part := range strings.Split(s, ",") {
		lo, hi, found := strings.Cut(part, "-")
		l, err := strconv.Atoi(lo)
		if err != nil {
			return 0, false
		}
		h := l
		if found {
			if h, err = strconv.Atoi(hi); err != nil {
				return 0, false
			}
		}
		if h+1 > n {
			n = h + 1
		}
	}
	return n, n > 0
}

// ErrnoOf returns the kernel errno an error of this package stands for: a
// syscall.Errno itself, a PathError's Errno, or what an error's Errno
// method says. ok is false for an error that carries none. It is the one
// place the surfaces above (the raw bpf(2) surface, the command line) turn
// command-layer errors into errnos.
func ErrnoOf(err error) (errno syscall.Errno, ok bool) {
	var pe *PathError
	if errors.As(err, &pe) {
		return ErrnoOf(pe.Errno)
	}
	var ee interface{ Errno() error }
	if errors.As(err, &ee) {
		return ErrnoOf(ee.Errno())
	}
	if errors.As(err, &errno) {
		return errno, true
	}
	return 0, false
}
