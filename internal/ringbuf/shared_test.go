package ringbuf

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bpfmap/bpfmap/internal/region"
	"github.com/bpfmap/bpfmap/internal/robust"
)

// fakeHost is a robust.Host with a given token, where only token 5 runs
// (a process holding any other token has died).
type fakeHost uint32

func (h fakeHost) Token() uint32         { return uint32(h) }
func (fakeHost) Alive(token uint32) bool { return token == 5 }

// childHost is this process (token 5) and a child process (token 7) that
// runs until running is cleared.
type childHost struct{ running atomic.Bool }

func (*childHost) Token() uint32 { return 5 }
func (h *childHost) Alive(token uint32) bool {
	return token == 5 || token == 7 && h.running.Load()
}

// views returns two Rings over one private ring region: the first with
// owner token 5 (alive), the second with token 7 (a process that is gone).
func views(t *testing.T, size uint64) (live, dead *Ring) {
	t.Helper()
	r, _, err := region.NewRing(PageSize, PageSize, size)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.ReleaseRing() })
	live, err = Over(r, size, robust.New(fakeHost(5)))
	if err != nil {
		t.Fatal(err)
	}
	dead, err = Over(r, size, robust.New(fakeHost(7)))
	if err != nil {
		t.Fatal(err)
	}
	return live, dead
}

// readWithin reads one record, failing the test if that takes longer than d.
func readWithin(t *testing.T, rd *Reader, d time.Duration) string {
	t.Helper()
	rd.SetDeadline(time.Now().Add(d))
	rec, err := rd.Read()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(rec.RawSample)
}

// A producer that died between reserve and commit leaves a BUSY record;
// the reader treats it as discarded after StallCheck and delivers the
// records after it.
func TestDeadProducerRecordSkipped(t *testing.T) {
	live, dead := views(t, PageSize)
	if err := live.Output([]byte("before")); err != nil {
		t.Fatal(err)
	}
	v, err := dead.Reserve(40) // never committed: its process "died"
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"after-1", "after-2"} {
		if err := live.Output([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	rd := NewReader(live, nil)
	start := time.Now()
	for _, want := range []string{"before", "after-1", "after-2"} {
		if got := readWithin(t, rd, 5*time.Second); got != want {
			t.Fatalf("read %q, want %q", got, want)
		}
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("skipping the dead record took %v", el)
	}
	if l := atomic.LoadUint32(live.hdr(v.pos)); l != 40|DiscardBit {
		t.Fatalf("dead record header %#x, want discarded", l)
	}
	// The ring goes on: its space is reused and the reader keeps up.
	for i := range 200 {
		s := fmt.Sprint("more-", i)
		if err := live.Output([]byte(s)); err != nil {
			t.Fatal(err)
		}
		if got := readWithin(t, rd, 5*time.Second); got != s {
			t.Fatalf("read %q, want %q", got, s)
		}
	}
}

// A BUSY record of a live producer is waited for, not skipped, however long
// it takes.
func TestLiveProducerRecordWaited(t *testing.T) {
	live, _ := views(t, PageSize)
	v, err := live.Reserve(8)
	if err != nil {
		t.Fatal(err)
	}
	if err := live.Output([]byte("later")); err != nil {
		t.Fatal(err)
	}
	rd := NewReader(live, nil)
	rd.SetDeadline(time.Now().Add(5 * StallCheck))
	if _, err := rd.Read(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past a live BUSY record: %v", err)
	}
	copy(v.Bytes(), "reserved")
	v.Submit()
	for _, want := range []string{"reserved", "later"} {
		if got := readWithin(t, rd, 5*time.Second); got != want {
			t.Fatalf("read %q, want %q", got, want)
		}
	}
}

// The reservation lock held by a process that died is taken over: a
// producer waiting on it has the ring repaired (as the command layer does
// through Locker.SetRepair) and reserves.
func TestDeadReservationLockRecovered(t *testing.T) {
	live, dead := views(t, PageSize)
	v, err := dead.Reserve(16) // the dead process's unfinished record
	if err != nil {
		t.Fatal(err)
	}
	atomic.StoreUint32(live.lock, 7<<2|robust.Locked) // and the lock it held
	repairs := 0
	live.locks.SetRepair(func(w *uint32) {
		if live.locks.Dead(w) {
			repairs++
			live.Repair()
		}
	})
	done := make(chan error, 1)
	go func() { done <- live.Output([]byte("after")) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("producer still waiting on a dead process's lock")
	}
	if repairs == 0 {
		t.Fatal("no repair ran")
	}
	if lw := atomic.LoadUint32(live.lock); lw&robust.Locked != 0 {
		t.Fatalf("lock word %#x still locked", lw)
	}
	// Repair discarded the dead process's record, so even a consumer that
	// stops at BUSY (the kernel's protocol) reads on.
	if l := atomic.LoadUint32(live.hdr(v.pos)); l != 16|DiscardBit {
		t.Fatalf("dead record header %#x, want discarded", l)
	}
	var got []string
	kernelConsumer(live.Mapping(), PageSize, PageSize, func(b []byte) { got = append(got, string(b)) })
	if len(got) != 1 || got[0] != "after" {
		t.Fatalf("consumer read %q", got)
	}
	if want := v.pos + 24; *live.pending != want { // past the dead record
		t.Fatalf("pending %d, want %d", *live.pending, want)
	}
}

// Repair keeps live producers' records: only dead ones become discarded.
func TestRepairKeepsLiveRecords(t *testing.T) {
	live, dead := views(t, PageSize)
	d, _ := dead.Reserve(8)
	l, _ := live.Reserve(8)
	live.Repair()
	if h := atomic.LoadUint32(live.hdr(d.pos)); h != 8|DiscardBit {
		t.Fatalf("dead record %#x", h)
	}
	if h := atomic.LoadUint32(live.hdr(l.pos)); h != 8|BusyBit {
		t.Fatalf("live record %#x", h)
	}
	if *live.pending != l.pos {
		t.Fatalf("pending %d, want the live record's %d", *live.pending, l.pos)
	}
	l.Submit()
}

// With a consumer that moved consumer_pos past a dead producer's BUSY
// record, producers are refused (the pending rule) only until one of them
// has been refused for a while and found the producer dead.
func TestPendingDeadRecordReleased(t *testing.T) {
	live, dead := views(t, PageSize)
	if _, err := dead.Reserve(100); err != nil {
		t.Fatal(err)
	}
	atomic.StoreUint64(live.cons, atomic.LoadUint64(live.prod)) // a rogue consumer
	refused := 0
	for ok := 0; ok < 100; {
		err := live.Output(make([]byte, 64))
		switch {
		case err == nil:
			ok++
			atomic.StoreUint64(live.cons, atomic.LoadUint64(live.prod))
		case errors.Is(err, ErrFull):
			if refused++; refused > 4*robust.Patience {
				t.Fatalf("still refused after %d tries", refused)
			}
		default:
			t.Fatal(err)
		}
	}
	if refused == 0 {
		t.Fatal("the dead record never held producers back")
	}
}

// ringFile makes a ring buffer map's object file (three head pages and the
// data) and returns it open.
func ringFile(t *testing.T, size uint64) *os.File {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "ring")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	if err := f.Truncate(int64(3*PageSize + size)); err != nil {
		t.Fatal(err)
	}
	return f
}

func mapRing(t testing.TB, f *os.File, size uint64, host robust.Host) *Ring {
	t.Helper()
	r, err := region.MapRingFile(int(f.Fd()), 3*PageSize, size)
	if err != nil {
		t.Skipf("cannot map a ring file: %v", err)
	}
	t.Cleanup(func() { _ = r.Release() })
	g, err := Over(r, size, robust.New(host))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// Two mappings of one file are one ring: records produced through one are
// read through the other (a reader asleep on one mapping is woken by a
// commit through the other), records wrap through the double mapping, and
// both see the same positions.
func TestTwoMappingsShareRing(t *testing.T) {
	const size = 4 * 4096
	if PageSize != 4096 {
		t.Skip("sizes assume 4 KiB pages")
	}
	f := ringFile(t, size)
	a, b := mapRing(t, f, size, nil), mapRing(t, f, size, nil)
	if !a.Doubled() || !b.Doubled() {
		t.Fatal("file ring not doubled")
	}
	rd := NewReader(b, nil)
	got := make(chan string)
	go func() {
		for {
			rec, err := rd.Read()
			if err != nil {
				close(got)
				return
			}
			got <- string(rec.RawSample)
		}
	}()
	time.Sleep(20 * time.Millisecond) // let the reader go to sleep
	for i := range 3000 {
		s := fmt.Sprintf("%0*d", 1+i%300, i) // every size class: wraps everywhere
		for {
			err := a.Output([]byte(s))
			if err == nil {
				break
			}
			if !errors.Is(err, ErrFull) {
				t.Fatal(err)
			}
			time.Sleep(time.Millisecond)
		}
		select {
		case r := <-got:
			if r != s {
				t.Fatalf("record %d: read %q, want %q", i, r, s)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("record %d not delivered through the other mapping", i)
		}
	}
	ca, pa := a.Positions()
	cb, pb := b.Positions()
	if ca != cb || pa != pb || ca != pa {
		t.Fatalf("positions differ: %d/%d and %d/%d", ca, pa, cb, pb)
	}
	_ = rd.Close()
	<-got
}

// childEnv names the ring file a re-executed test binary produces into.
const childEnv = "BPFMAP_RINGBUF_CHILD"

// TestMain lets the test binary run as a producer process for
// TestOtherProcessProducer.
func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		os.Exit(childProducer(path))
	}
	os.Exit(m.Run())
}

// childProducer maps the ring file, outputs "child-0".."child-99", reserves
// one record and exits without committing it, as a process killed between
// reserve and commit. Its owner token is 7, which the parent's host
// considers dead once it has exited.
func childProducer(path string) int {
	size, _ := strconv.ParseUint(os.Getenv(childEnv+"_SIZE"), 10, 64)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	r, err := region.MapRingFile(int(f.Fd()), 3*PageSize, size)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	g, err := Over(r, size, robust.New(fakeHost(7)))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	time.Sleep(50 * time.Millisecond) // the parent's reader is asleep by now
	for i := range 100 {
		for g.Output([]byte(fmt.Sprint("child-", i))) != nil {
			time.Sleep(time.Millisecond)
		}
	}
	if _, err := g.Reserve(24); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	return 0
}

// A producer in another process: its commits wake this process's reader
// (a futex on the shared file), and the record it left BUSY when it exited
// is skipped, so a record produced here afterwards is delivered.
func TestOtherProcessProducer(t *testing.T) {
	const size = 4096 * 4
	f := ringFile(t, size)
	host := &childHost{}
	host.running.Store(true)
	g := mapRing(t, f, size, host)
	exe, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+f.Name(), childEnv+"_SIZE="+strconv.Itoa(size))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	rd := NewReader(g, nil)
	for i := range 100 {
		if got, want := readWithin(t, rd, 10*time.Second), fmt.Sprint("child-", i); got != want {
			t.Fatalf("read %q, want %q", got, want)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	host.running.Store(false)
	if err := g.Output([]byte("parent")); err != nil {
		t.Fatal(err)
	}
	if got := readWithin(t, rd, 5*time.Second); got != "parent" {
		t.Fatalf("read %q, want the record after the dead child's", got)
	}
}
