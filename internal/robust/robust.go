// Package robust owns the lock words that map families keep in their
// regions: spin locks that record who holds them, so that when a map is
// shared by several processes and one dies holding a lock, the others see a
// dead holder (not a slow one), have the map repaired, and go on.
//
// A lock word is a u32 in the region:
//
//	bit 0       locked
//	bit 1       a family flag, kept across lock and unlock (the hash
//	            family's "home element used")
//	bits 2–31   while locked: the holder's owner token; while free: a
//	            version that every unlock advances (lock-free readers
//	            compare it to detect writers)
//
// A zero word is free, version 0, flag clear: the state of a fresh region.
package robust

import (
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/bpfmap/bpfmap/internal/region"
)

// Lock word bits.
const (
	Locked = 1 << 0
	Flag   = 1 << 1
	shift  = 2
)

// Host tells owner tokens apart: this process's, and whether another's
// process still runs. The pin namespace implements it for shared maps.
type Host interface {
	// Token returns this process's owner token: non-zero, below 1<<30.
	Token() uint32
	// Alive reports whether the process that took token still runs.
	Alive(token uint32) bool
}

// Local is the Host of a map no other process can reach: one token, always
// alive.
var Local Host = local{}

type local struct{}

func (local) Token() uint32     { return 1 }
func (local) Alive(uint32) bool { return true }

// Locker takes and releases one map's lock words. The zero value is not
// usable; call New.
type Locker struct {
	token uint32
	host  Host

	mu     sync.Mutex
	repair func(dead *uint32) // set by SetRepair; nil until then
}

// New returns a Locker for a map whose lock holders host identifies (nil:
// Local).
func New(host Host) *Locker {
	if host == nil {
		host = Local
	}
	return &Locker{token: host.Token(), host: host}
}

// SetRepair installs the map's repair: called by a waiter that finds the
// word dead held by a process that no longer runs, with no lock of the map
// held by the caller. It must make the map consistent and leave dead free.
func (l *Locker) SetRepair(f func(dead *uint32)) {
	l.mu.Lock()
	l.repair = f
	l.mu.Unlock()
}

// Token returns this process's owner token.
func (l *Locker) Token() uint32 { return l.token }

// Version returns the version of a free lock word.
func Version(lw uint32) uint32 { return lw >> shift }

// Holder returns the owner token of a locked word.
func Holder(lw uint32) uint32 { return lw >> shift }

// patience is how many failed spins a waiter makes between checks of
// whether the holder still runs (each check may be a system call).
const patience = 1 << 12

// Lock takes the lock word w and returns its version, for Unlock. A caller
// holds no other lock of the same map while it waits here, unless the map's
// repair never needs that lock (see SetRepair).
func (l *Locker) Lock(w *uint32) uint32 {
	for spins := 1; ; spins++ {
		lw := atomic.LoadUint32(w)
		if lw&Locked == 0 {
			if atomic.CompareAndSwapUint32(w, lw, lw&Flag|Locked|l.token<<shift) {
				return lw >> shift
			}
			continue
		}
		if spins > 16 {
			runtime.Gosched()
		}
		if spins%patience == 0 {
			l.Stuck(w, lw)
		}
	}
}

// TryLock takes w if it is free, returning its version.
func (l *Locker) TryLock(w *uint32) (uint32, bool) {
	lw := atomic.LoadUint32(w)
	if lw&Locked == 0 && atomic.CompareAndSwapUint32(w, lw, lw&Flag|Locked|l.token<<shift) {
		return lw >> shift, true
	}
	return 0, false
}

// Unlock releases w, which the caller took with version ver, advancing the
// version and keeping the flag bit as it is now.
func (l *Locker) Unlock(w *uint32, ver uint32) {
	region.StoreRelease32(w, atomic.LoadUint32(w)&Flag|(ver+1)<<shift)
}

// Dead reports whether w is locked by a process that no longer runs.
func (l *Locker) Dead(w *uint32) bool {
	lw := atomic.LoadUint32(w)
	if lw&Locked == 0 {
		return false
	}
	tok := lw >> shift
	return tok != l.token && !l.host.Alive(tok)
}

// Patience is how many failed spins a waiter should make between calls of
// Stuck (each may cost a system call).
const Patience = patience

// Stuck is for a waiter that has found w locked (as lw) for a while — a
// lock waiter, or a lock-free reader waiting for a writer to finish. It runs
// the map's repair if w is still held by the same holder and that holder's
// process is gone. The caller must hold no lock of the map.
func (l *Locker) Stuck(w *uint32, lw uint32) {
	tok := lw >> shift
	if tok == l.token || l.host.Alive(tok) {
		return
	}
	l.mu.Lock()
	repair := l.repair
	l.mu.Unlock()
	if repair != nil && atomic.LoadUint32(w) == lw {
		repair(w)
	}
}

// Seize takes w for a repair: like Lock, but a word held by a dead process
// is taken over. The returned version is fresh (random), since the dead
// holder's is unknown: a lock-free reader that saw the word before the
// holder died must not find it unchanged.
func (l *Locker) Seize(w *uint32) uint32 {
	for spins := 1; ; spins++ {
		lw := atomic.LoadUint32(w)
		if lw&Locked == 0 {
			if atomic.CompareAndSwapUint32(w, lw, lw&Flag|Locked|l.token<<shift) {
				return lw >> shift
			}
			continue
		}
		if tok := lw >> shift; tok != l.token && !l.host.Alive(tok) {
			if atomic.CompareAndSwapUint32(w, lw, lw&Flag|Locked|l.token<<shift) {
				return rand.Uint32()
			}
			continue
		}
		if spins > 16 {
			runtime.Gosched()
		}
	}
}

// Release frees w whoever holds it, keeping its flag. It is only for a map
// that no live process has open (opening one another process wrote): any
// held word there is left over from a death or from damage, and its holder
// may even look alive (a token reused, or a damaged word naming a live
// process).
func Release(w *uint32) {
	if lw := atomic.LoadUint32(w); lw&Locked != 0 {
		region.StoreRelease32(w, lw&Flag|rand.Uint32()<<shift)
	}
}
