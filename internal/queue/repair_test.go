package queue

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/bpfmap/bpfmap/internal/mapops"
	"github.com/bpfmap/bpfmap/internal/robust"
	"github.com/bpfmap/bpfmap/internal/robust/robusttest"
	"github.com/bpfmap/bpfmap/internal/uapi"
)

// fakeHost is this process as token 5; every other token is a dead process.
type fakeHost = robusttest.Host

// deadLock is a lock word held by the dead process with token 7.
const deadLock = robusttest.DeadWord

// openShared opens a map whose lock words are robust against fakeHost, with
// Repair installed as the command layer installs it.
func openShared(t *testing.T, typ uapi.MapType, max uint32) *Map {
	t.Helper()
	l := robust.New(fakeHost{})
	ops := open(t, &mapops.Attr{Type: typ, ValueSize: 4, MaxEntries: max, Locks: l})
	l.SetRepair(func(*uint32) { ops.(mapops.Repairer).Repair() })
	return ops.(*Map)
}

func val(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

// drain pops every element.
func drain(t *testing.T, m *Map) []uint32 {
	t.Helper()
	var got []uint32
	out := make([]byte, 4)
	for {
		err := m.LookupAndDelete(nil, out)
		if err == uapi.ENOENT {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, binary.LittleEndian.Uint32(out))
	}
}

// within runs f and fails the test if it does not return in time.
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { f(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: still waiting on a dead holder's lock", what)
	}
}

func equal(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestDeadHolder: every operation that meets the lock held by a dead
// process completes (through Repair), and the elements pushed before are
// all there, in order.
func TestDeadHolder(t *testing.T) {
	for _, typ := range []uapi.MapType{uapi.MapTypeQueue, uapi.MapTypeStack} {
		m := openShared(t, typ, 4)
		for i := uint32(1); i <= 3; i++ {
			if err := m.Update(nil, val(i), uapi.Any); err != nil {
				t.Fatal(err)
			}
		}
		*m.lockw = deadLock
		within(t, "push", func() {
			if err := m.Update(nil, val(4), uapi.Any); err != nil {
				t.Error(err)
			}
		})
		*m.lockw = deadLock
		out := make([]byte, 4)
		within(t, "peek", func() {
			if err := m.Lookup(nil, out); err != nil {
				t.Error(err)
			}
		})
		*m.lockw = deadLock
		var got []uint32
		within(t, "pop", func() { got = drain(t, m) })
		want := []uint32{1, 2, 3, 4}
		if typ == uapi.MapTypeStack {
			want = []uint32{4, 3, 2, 1}
		}
		if !equal(got, want) {
			t.Fatalf("%v: %v, want %v", typ, got, want)
		}
	}
}

// TestRepairDroppingPush simulates a push with BPF_EXIST into a full map
// killed at each point after it published its intent (slot written, then
// none, one or both of head and tail stored): Repair completes it, so the
// oldest element is gone and the new one is there, nothing else changed.
func TestRepairDroppingPush(t *testing.T) {
	for _, typ := range []uapi.MapType{uapi.MapTypeQueue, uapi.MapTypeStack} {
		for stage := 0; stage < 4; stage++ {
			m := openShared(t, typ, 3)
			// Wrap the ring once so head and tail are not at 0.
			for i := uint32(0); i < 5; i++ {
				if err := m.Update(nil, val(100+i), uapi.Exist); err != nil {
					t.Fatal(err)
				}
			}
			drain(t, m)
			for i := uint32(1); i <= 3; i++ {
				if err := m.Update(nil, val(i), uapi.Any); err != nil {
					t.Fatal(err)
				}
			}
			// The killed push of 4 with BPF_EXIST.
			head, tail := *m.head, *m.tail
			nh, nt := m.next(head), m.next(tail)
			copy(m.slot(head), val(4))
			*m.pend = ^(uint64(nt)<<32 | uint64(nh))
			switch stage {
			case 1:
				*m.head = nh
			case 2:
				*m.tail = nt
			case 3:
				*m.head, *m.tail = nh, nt
			}
			*m.lockw = deadLock
			out := make([]byte, 4)
			within(t, "peek", func() {
				if err := m.Lookup(nil, out); err != nil {
					t.Error(err)
				}
			})
			if *m.pend != 0 {
				t.Fatal("intent word left set")
			}
			want := []uint32{2, 3, 4}
			if typ == uapi.MapTypeStack {
				want = []uint32{4, 3, 2}
			}
			if got := drain(t, m); !equal(got, want) {
				t.Fatalf("%v stage %d: %v, want %v", typ, stage, got, want)
			}
		}
	}
}

// TestRepairAbsentPush: a push killed before it committed (free slot partly
// or wholly written, no intent, head not moved) is absent after Repair.
func TestRepairAbsentPush(t *testing.T) {
	m := openShared(t, uapi.MapTypeQueue, 3)
	for i := uint32(1); i <= 2; i++ {
		if err := m.Update(nil, val(i), uapi.Any); err != nil {
			t.Fatal(err)
		}
	}
	copy(m.slot(*m.head), val(0xdead))
	*m.lockw = deadLock
	m.Repair()
	if got := drain(t, m); !equal(got, []uint32{1, 2}) {
		t.Fatalf("%v", got)
	}
}

// TestRepairConsistent: Repair of a consistent map changes nothing.
func TestRepairConsistent(t *testing.T) {
	for _, typ := range []uapi.MapType{uapi.MapTypeQueue, uapi.MapTypeStack} {
		m := openShared(t, typ, 5)
		for i := uint32(1); i <= 7; i++ {
			if err := m.Update(nil, val(i), uapi.Exist); err != nil {
				t.Fatal(err)
			}
		}
		head, tail := *m.head, *m.tail
		m.Repair()
		if *m.head != head || *m.tail != tail || *m.lockw&robust.Locked != 0 {
			t.Fatalf("repair changed head/tail/lock: %d %d %#x", *m.head, *m.tail, *m.lockw)
		}
		want := []uint32{3, 4, 5, 6, 7}
		if typ == uapi.MapTypeStack {
			want = []uint32{7, 6, 5, 4, 3}
		}
		if got := drain(t, m); !equal(got, want) {
			t.Fatalf("%v: %v, want %v", typ, got, want)
		}
	}
}
