package robust

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bpfmap/bpfmap/internal/region"
)

// host: token 5 is this process, every other token listed in alive runs.
type host struct{ alive map[uint32]bool }

func (host) Token() uint32                  { return 5 }
func (h host) Alive(t uint32) bool          { return t == 5 || h.alive[t] }
func held(token uint32, flag uint32) uint32 { return Locked | flag | token<<shift }

func TestLockUnlockKeepsFlagAndAdvancesVersion(t *testing.T) {
	l := New(host{})
	var w uint32 = Flag | 41<<shift
	ver := l.Lock(&w)
	if ver != 41 || w != held(5, Flag) {
		t.Fatalf("locked: ver %d word %#x", ver, w)
	}
	w &^= Flag // a family clears its flag while holding the lock
	l.Unlock(&w, ver)
	if w != 42<<shift {
		t.Fatalf("unlocked word %#x, want version 42, flag clear", w)
	}
	if _, ok := l.TryLock(&w); !ok {
		t.Fatal("TryLock of a free word failed")
	}
	if _, ok := l.TryLock(&w); ok {
		t.Fatal("TryLock of a held word succeeded")
	}
}

func TestMutualExclusion(t *testing.T) {
	l := New(nil)
	// Lock words live in region memory, which the race detector does not
	// track (Unlock's release store is a plain store on x86); the check
	// uses atomics only, for the same reason.
	r, err := region.New(4096)
	if err != nil {
		t.Fatal(err)
	}
	w := r.Uint32(0)
	var inside, both atomic.Int32
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10000 {
				v := l.Lock(w)
				if inside.Add(1) != 1 {
					both.Add(1)
				}
				inside.Add(-1)
				l.Unlock(w, v)
			}
		}()
	}
	wg.Wait()
	if both.Load() != 0 {
		t.Fatalf("%d times two goroutines held the lock at once", both.Load())
	}
}

func TestDeadHolderIsRepaired(t *testing.T) {
	l := New(host{alive: map[uint32]bool{9: true}})
	w := held(7, Flag) // token 7's process is gone
	var repairs atomic.Int32
	l.SetRepair(func(dead *uint32) {
		repairs.Add(1)
		v := l.Seize(dead)
		l.Unlock(dead, v)
	})
	if !l.Dead(&w) {
		t.Fatal("a word held by a dead token is not Dead")
	}
	done := make(chan uint32)
	go func() { done <- l.Lock(&w) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Lock waited forever on a dead holder")
	}
	if repairs.Load() == 0 || w&Flag == 0 || Holder(w) != 5 {
		t.Fatalf("repairs %d, word %#x", repairs.Load(), w)
	}
}

func TestLiveHolderIsWaitedFor(t *testing.T) {
	l := New(host{alive: map[uint32]bool{9: true}})
	w := held(9, 0)
	l.SetRepair(func(*uint32) { t.Error("repair ran for a live holder") })
	if l.Dead(&w) {
		t.Fatal("a live holder reported dead")
	}
	got := make(chan struct{})
	go func() { v := l.Lock(&w); l.Unlock(&w, v); close(got) }()
	time.Sleep(20 * time.Millisecond)
	select {
	case <-got:
		t.Fatal("Lock took a word a live process holds")
	default:
	}
	atomic.StoreUint32(&w, 3<<shift) // the holder unlocks
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("Lock did not take the word once free")
	}
}

func TestSeizeTakesDeadAndFreeWordsWithAFreshVersion(t *testing.T) {
	l := New(host{})
	var free uint32 = 8 << shift
	if v := l.Seize(&free); v != 8 || free != held(5, 0) {
		t.Fatalf("seize free: %d %#x", v, free)
	}
	dead := held(7, Flag)
	same := 0
	for range 16 {
		dead = held(7, Flag)
		v := l.Seize(&dead)
		if dead != held(5, Flag) {
			t.Fatalf("seize dead: word %#x", dead)
		}
		l.Unlock(&dead, v)
		if Version(dead) == 1 {
			same++
		}
	}
	if same == 16 {
		t.Fatal("seized words always get the same version: a reader could miss the repair")
	}
}
