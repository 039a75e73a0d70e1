package namespace

import (
	"errors"
	"os"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/bpfmap/bpfmap/internal/region"
)

// MaxProcs is the number of process slots: how many processes can have
// maps of one namespace open at once. It matches the attach bitmap in the
// region header.
const MaxProcs = region.AttachWords * 64

// Owner tokens: bits 0–10 are the process slot + 1, bits 11–29 the slot's
// generation (bumped by every claim, so a token dies with its process even
// when another process reuses the slot). A token fits in the 30 bits a
// lock word keeps for it.
const (
	slotBits  = 11
	genBits   = 19
	TokenBits = slotBits + genBits
)

// procTable is the namespace's process table: a file of MaxProcs records of
// 64 bytes (u32 generation, u32 pid). A process owns slot i while it holds
// an open-file-description write lock on byte i of the file; the kernel
// drops the lock when the process dies.
type procTable struct {
	fd    int
	r     *region.Region
	slot  int
	token uint32
}

const recSize = 64

func openProcs(path string) (*procTable, error) {
	r, err := mapSmallFile(path, MaxProcs*recSize)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	t := &procTable{fd: fd, r: r, slot: -1}
	for i := range MaxProcs {
		lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: int64(i), Len: 1}
		if unix.FcntlFlock(uintptr(fd), unix.F_OFD_SETLK, &lk) != nil {
			continue
		}
		gen := atomic.AddUint32(r.Uint32(uint64(i)*recSize), 1) & (1<<genBits - 1)
		if gen == 0 {
			gen = atomic.AddUint32(r.Uint32(uint64(i)*recSize), 1) & (1<<genBits - 1)
		}
		atomic.StoreUint32(r.Uint32(uint64(i)*recSize+4), uint32(os.Getpid()))
		t.slot, t.token = i, uint32(i+1)|gen<<slotBits
		return t, nil
	}
	_ = unix.Close(fd)
	return nil, errors.New("all process slots are taken")
}

func (t *procTable) close() { _ = unix.Close(t.fd) }

// Slot returns this process's slot in the process table.
func (ns *NS) Slot() int { return ns.procs.slot }

// Token returns this process's owner token: non-zero, below 1<<TokenBits.
func (ns *NS) Token() uint32 { return ns.procs.token }

// Alive reports whether the process that took token still runs. A token
// this process does not recognise as well-formed counts as dead.
func (ns *NS) Alive(token uint32) bool {
	t := ns.procs
	if token == t.token {
		return true
	}
	slot := int(token&(1<<slotBits-1)) - 1
	if slot < 0 || slot >= MaxProcs {
		return false
	}
	gen := atomic.LoadUint32(t.r.Uint32(uint64(slot)*recSize)) & (1<<genBits - 1)
	if gen != token>>slotBits {
		return false // the slot was claimed again since
	}
	return ns.SlotAlive(slot)
}

// SlotAlive reports whether a live process holds process slot i.
func (ns *NS) SlotAlive(i int) bool {
	t := ns.procs
	if i == t.slot {
		return true
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: int64(i), Len: 1}
	if unix.FcntlFlock(uintptr(t.fd), unix.F_OFD_GETLK, &lk) != nil {
		return true // cannot tell: assume alive, never steal a live lock
	}
	return lk.Type != unix.F_UNLCK
}

// LockRecovery takes the object's recovery lock (blocking): one process at a
// time repairs a map after a death. The kernel drops it if the holder dies
// too. It returns the unlock function.
func (o *Object) LockRecovery() func() {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 1}
	for unix.FcntlFlock(uintptr(o.fd), unix.F_OFD_SETLKW, &lk) == unix.EINTR {
	}
	return func() {
		lk := unix.Flock_t{Type: unix.F_UNLCK, Whence: 0, Start: 0, Len: 1}
		_ = unix.FcntlFlock(uintptr(o.fd), unix.F_OFD_SETLK, &lk)
	}
}

// LockWriters takes the object's writer lock (blocking), which serialises
// the writers of a map-in-map across processes (one byte of the object
// file, locked with an open-file-description lock that the kernel drops if
// the holder dies). Goroutines of one process share the Object's file
// description, so they must serialise among themselves first. It returns
// the unlock function.
func (o *Object) LockWriters() func() {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 1, Len: 1}
	for unix.FcntlFlock(uintptr(o.fd), unix.F_OFD_SETLKW, &lk) == unix.EINTR {
	}
	return func() {
		lk := unix.Flock_t{Type: unix.F_UNLCK, Whence: 0, Start: 1, Len: 1}
		_ = unix.FcntlFlock(uintptr(o.fd), unix.F_OFD_SETLK, &lk)
	}
}
