//go:build linux

package sys_test

import (
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bpfmap/bpfmap/sys"
)

// TestDiffDup2AccessMode compares commands through a map fd that dup2(2)
// replaced with a descriptor of the same map opened with another access
// mode: the fd has the new file's mode, whatever the fd was before.
func TestDiffDup2AccessMode(t *testing.T) {
	diff(t, func(s *side) {
		fd := s.create(mapSpec{name: "dup2", typ: tHash, ks: 4, vs: 8, max: 4})
		mi, _ := s.mapInfo(fd)
		key, val := mem(s.t, 4), mem(s.t, 8)
		ne.PutUint32(key, 1)
		ne.PutUint64(val, 7)
		open := func(flags uint32) int {
			g, e := s.do(sys.BPF_MAP_GET_FD_BY_ID, idAttr(s.t, mi.ID, 0, flags))
			if e != 0 {
				s.t.Fatalf("GET_FD_BY_ID flags %#x: %v", flags, e)
			}
			return g
		}
		use := func(what string, fd int) {
			_, e := s.do(sys.BPF_MAP_UPDATE_ELEM, elemAttr(s.t, fd, key, val, 0))
			s.logf("%s: update %s", what, errName(e))
			_, e = s.do(sys.BPF_MAP_LOOKUP_ELEM, elemAttr(s.t, fd, key, val, 0))
			s.logf("%s: lookup %s", what, errName(e))
			s.logf("%s: fdinfo %s", what, s.fdinfo(fd))
		}
		modes := []struct {
			name  string
			flags uint32
		}{{"rdwr", 0}, {"rdonly", fRdonly}, {"wronly", fWronly}}
		for _, from := range modes {
			for _, to := range modes {
				if from == to {
					continue
				}
				src, dst := open(from.flags), open(to.flags)
				use(to.name+" before", dst) // the table knows dst
				if err := unix.Dup2(src, dst); err != nil {
					s.t.Fatal(err)
				}
				use(from.name+" dup2'ed over "+to.name, dst)
				_ = s.close(src)
				use(from.name+" dup2'ed over "+to.name+", source closed", dst)
				_ = s.close(dst)
			}
		}
	})
}

// TestConcurrentFirstUse has many goroutines make the first command on a
// fresh dup of a map fd at once (each adopts it): none may fail. Run with
// -race.
func TestConcurrentFirstUse(t *testing.T) {
	fd, err := sys.BPF(sys.BPF_MAP_CREATE, ptr(createAttr(t, tArray, 4, 8, 4, 0)), sys.MapCreateAttrSize)
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close(fd)
	workers := 4 * runtime.GOMAXPROCS(0)
	const rounds = 300
	attrs := make([][]byte, workers)
	for w := range attrs {
		attrs[w] = elemAttr(t, 0, mem(t, 4), mem(t, 8), 0)
	}
	var failures atomic.Int64
	for range rounds {
		d, err := unix.Dup(fd)
		if err != nil {
			t.Fatal(err)
		}
		var start, wg sync.WaitGroup
		start.Add(1)
		for w := range workers {
			ne.PutUint32(attrs[w], uint32(d))
			wg.Add(1)
			go func() {
				defer wg.Done()
				start.Wait()
				if _, err := sys.BPF(sys.BPF_MAP_LOOKUP_ELEM, ptr(attrs[w]), sys.MapElemAttrSize); err != nil {
					if failures.Add(1) <= 5 {
						t.Errorf("first lookup through a fresh dup: %v", err)
					}
				}
			}()
		}
		start.Done()
		wg.Wait()
		if err := sys.Close(d); err != nil {
			t.Fatal(err)
		}
	}
	if n := failures.Load(); n > 0 {
		t.Errorf("%d of %d first commands failed", n, rounds*workers)
	}
}

// TestConcurrentRelease runs commands on a map fd while other goroutines
// release its handle: with Forget (the fd stays open, so every command must
// succeed: one that found the entry keeps the handle until it returns) and
// with Close of fresh dups (a command either ran or found the fd closed:
// EBADF, or EINVAL for a number reused by another file). Run with -race.
func TestConcurrentRelease(t *testing.T) {
	fd, err := sys.BPF(sys.BPF_MAP_CREATE, ptr(createAttr(t, tHash, 4, 8, 4, 0)), sys.MapCreateAttrSize)
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close(fd)
	workers := 2 * runtime.GOMAXPROCS(0)
	const iterations = 3000

	t.Run("Forget", func(t *testing.T) {
		var stop atomic.Bool
		var wg sync.WaitGroup
		var failures atomic.Int64
		for range workers {
			ea := elemAttr(t, fd, mem(t, 4), mem(t, 8), 0)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < iterations && !stop.Load(); i++ {
					_, err := sys.BPF(sys.BPF_MAP_UPDATE_ELEM, ptr(ea), sys.MapElemAttrSize)
					if err != nil && failures.Add(1) <= 5 {
						t.Errorf("update while the handle is forgotten: %v", err)
					}
				}
			}()
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; i < iterations; i++ {
				sys.Forget(fd)
				runtime.Gosched()
			}
		}()
		<-done
		stop.Store(true)
		wg.Wait()
	})

	t.Run("Close", func(t *testing.T) {
		var wg sync.WaitGroup
		var cur atomic.Int32
		cur.Store(-1)
		var stop atomic.Bool
		for range workers {
			ea := elemAttr(t, 0, mem(t, 4), mem(t, 8), 0)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					d := cur.Load()
					if d < 0 {
						runtime.Gosched()
						continue
					}
					ne.PutUint32(ea, uint32(d))
					_, err := sys.BPF(sys.BPF_MAP_UPDATE_ELEM, ptr(ea), sys.MapElemAttrSize)
					if err != nil && err != syscall.EBADF && err != syscall.EINVAL {
						t.Errorf("update racing Close: %v", err)
					}
				}
			}()
		}
		for range iterations / 10 {
			d, err := sys.BPF(sys.BPF_MAP_GET_FD_BY_ID, ptr(idAttr(t, mapID(t, fd), 0, 0)), sys.GetFDByIDAttrSize)
			if err != nil {
				t.Fatal(err)
			}
			cur.Store(int32(d))
			runtime.Gosched()
			cur.Store(-1)
			if err := sys.Close(d); err != nil {
				t.Fatal(err)
			}
		}
		stop.Store(true)
		wg.Wait()
	})
}

// mapID is the id of map fd fd.
func mapID(t *testing.T, fd int) uint32 {
	t.Helper()
	s := &side{t: t}
	mi, e := s.mapInfo(fd)
	if e != 0 {
		t.Fatal(e)
	}
	return mi.ID
}

// TestAdoptRace makes two commands adopt the same fd at once, the second
// inserting its handle while the first runs on its own: both succeed (the
// second keeps the first's entry rather than releasing it under the first).
func TestAdoptRace(t *testing.T) {
	fd, err := sys.BPF(sys.BPF_MAP_CREATE, ptr(createAttr(t, tArray, 4, 8, 4, 0)), sys.MapCreateAttrSize)
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close(fd)
	d, err := unix.Dup(fd)
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close(d)
	var adopts atomic.Int32
	var resolved atomic.Bool
	arrived, goB, bDone := make(chan struct{}), make(chan struct{}), make(chan struct{})
	wait := func(c chan struct{}) {
		select {
		case <-c:
		case <-time.After(5 * time.Second):
			t.Error("hook: timed out")
		}
	}
	restore := sys.SetTestHook(func(point string) {
		switch point {
		case "adopt":
			if adopts.Add(1) == 1 {
				wait(arrived) // A waits until B has missed the table too
			} else {
				close(arrived)
				wait(goB) // then B inserts while A runs on its entry
			}
		case "resolved":
			if !resolved.Swap(true) { // A's
				close(goB)
				wait(bDone)
			}
		}
	})
	defer restore()
	errs := make([]error, 2)
	var wg sync.WaitGroup
	var first sync.Once
	for i := range errs {
		ea := elemAttr(t, d, mem(t, 4), mem(t, 8), 0)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = sys.BPF(sys.BPF_MAP_LOOKUP_ELEM, ptr(ea), sys.MapElemAttrSize)
			first.Do(func() { close(bDone) }) // B returns first: A waits for it
		}()
	}
	wg.Wait()
	if adopts.Load() != 2 {
		t.Fatalf("%d adoptions, want 2", adopts.Load())
	}
	for _, err := range errs {
		if err != nil {
			t.Errorf("lookup through an fd two threads adopt at once: %v", err)
		}
	}
}

// TestCloseDuringCommand closes a map fd (its last one) while a command that
// already resolved it runs: the command completes, as a kernel command that
// got its fd does; then the fd is gone.
func TestCloseDuringCommand(t *testing.T) {
	fd, err := sys.BPF(sys.BPF_MAP_CREATE, ptr(createAttr(t, tHash, 4, 8, 4, 0)), sys.MapCreateAttrSize)
	if err != nil {
		t.Fatal(err)
	}
	id := mapID(t, fd)
	var once atomic.Bool
	restore := sys.SetTestHook(func(point string) {
		if point == "resolved" && !once.Swap(true) {
			if err := sys.Close(fd); err != nil {
				t.Error(err)
			}
		}
	})
	ea := elemAttr(t, fd, mem(t, 4), mem(t, 8), 0)
	_, err = sys.BPF(sys.BPF_MAP_UPDATE_ELEM, ptr(ea), sys.MapElemAttrSize)
	restore()
	if err != nil {
		t.Errorf("update whose fd was closed after it was resolved: %v", err)
	}
	if _, err := sys.BPF(sys.BPF_MAP_UPDATE_ELEM, ptr(ea), sys.MapElemAttrSize); err != syscall.EBADF {
		t.Errorf("update after Close: %v", err)
	}
	if g, err := sys.BPF(sys.BPF_MAP_GET_FD_BY_ID, ptr(idAttr(t, id, 0, 0)), sys.GetFDByIDAttrSize); err != syscall.ENOENT {
		t.Errorf("map alive after its last fd closed and its command returned: %d %v", g, err)
	}
}
