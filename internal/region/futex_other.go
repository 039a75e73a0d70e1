//go:build !linux

package region

import (
	"sync"
	"sync/atomic"
	"time"
)

// Wait32 blocks while *p == val, until Wake32(p) or for at most d (d <= 0:
// no limit); it may return early. Without futex(2) this is a process-local
// emulation: waiters park on a channel keyed by the word's address, so only
// goroutines of this process wake each other.
func Wait32(p *uint32, val uint32, d time.Duration) {
	waitMu.Lock()
	if atomic.LoadUint32(p) != val {
		waitMu.Unlock()
		return
	}
	ch := waiters[p]
	if ch == nil {
		ch = make(chan struct{})
		waiters[p] = ch
	}
	waitMu.Unlock()
	if d <= 0 {
		<-ch
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	}
}

// Wake32 wakes every goroutine blocked in Wait32(p, ...).
func Wake32(p *uint32) {
	waitMu.Lock()
	if ch := waiters[p]; ch != nil {
		close(ch)
		delete(waiters, p)
	}
	waitMu.Unlock()
}

var (
	waitMu  sync.Mutex
	waiters = map[*uint32]chan struct{}{}
)
