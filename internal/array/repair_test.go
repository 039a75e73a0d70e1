package array

import (
	"bytes"
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

func openShared(t *testing.T, a mapops.Attr) *Map {
	t.Helper()
	l := robust.New(fakeHost{})
	a.Locks = l
	ops, r, err := mapops.OpenDetached(Family, &a)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Release() })
	l.SetRepair(func(*uint32) { ops.(mapops.Repairer).Repair() })
	return ops.(*Map)
}

func key(i uint32) []byte { return binary.LittleEndian.AppendUint32(nil, i) }

func value(i uint32, n uint64) []byte {
	v := make([]byte, n)
	for j := range v {
		v[j] = byte(i*31 + uint32(j))
	}
	return v
}

// within runs f and fails the test if it does not return in time.
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { f(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: still waiting on a dead writer", what)
	}
}

var attrs = []mapops.Attr{
	{Type: uapi.MapTypeArray, KeySize: 4, ValueSize: 24, MaxEntries: 8},
	{Type: uapi.MapTypePercpuArray, KeySize: 4, ValueSize: 12, MaxEntries: 8, PossibleCPUs: 3},
}

// TestDeadWriter: a writer killed in the middle of a multi-word copy (its
// sequence word held, the value half old, half new) hangs neither readers
// nor writers of the element; the reader gets the value as the copy left
// it, every other element is untouched, and the element can be written
// again.
func TestDeadWriter(t *testing.T) {
	for _, a := range attrs {
		m := openShared(t, a)
		for i := range a.MaxEntries {
			if err := m.Update(key(i), value(i, m.size), uapi.Any); err != nil {
				t.Fatal(err)
			}
		}
		// The killed writer of element 3: first half of value(100) copied.
		left := append(value(100, m.size)[:m.size/2], value(3, m.size)[m.size/2:]...)
		copy(m.mem.Bytes(m.valOff(3), m.size), left)
		*m.seq(3) = deadLock
		out := make([]byte, m.size)
		within(t, "lookup", func() {
			if err := m.Lookup(key(3), out); err != nil {
				t.Error(err)
			}
		})
		if !bytes.Equal(out, left) {
			t.Fatalf("%v: lookup %x, want %x", a.Type, out, left)
		}
		if *m.seq(3)&robust.Locked != 0 {
			t.Fatalf("%v: sequence word still held: %#x", a.Type, *m.seq(3))
		}
		for i := range a.MaxEntries {
			if i == 3 {
				continue
			}
			if err := m.Lookup(key(i), out); err != nil || !bytes.Equal(out, value(i, m.size)) {
				t.Fatalf("%v: element %d: %v %x", a.Type, i, err, out)
			}
		}
		// A writer meeting the dead word.
		*m.seq(5) = deadLock
		within(t, "update", func() {
			if err := m.Update(key(5), value(200, m.size), uapi.Any); err != nil {
				t.Error(err)
			}
		})
		if err := m.Lookup(key(5), out); err != nil || !bytes.Equal(out, value(200, m.size)) {
			t.Fatalf("%v: element 5 after update: %v %x", a.Type, err, out)
		}
	}
}

// TestRepairConsistent: Repair of a map with no dead writer changes no
// value and no sequence word (so concurrent readers are not even made to
// retry), and leaves words held by live writers alone.
func TestRepairConsistent(t *testing.T) {
	for _, a := range attrs {
		m := openShared(t, a)
		for i := range a.MaxEntries {
			if err := m.Update(key(i), value(i, m.size), uapi.Any); err != nil {
				t.Fatal(err)
			}
		}
		live := uint32(robust.Locked | 5<<2)
		*m.seq(2) = live
		before := append([]byte(nil), m.mem.Bytes(m.g.valOff, m.g.seqOff+4*uint64(a.MaxEntries)-m.g.valOff)...)
		m.Repair()
		after := m.mem.Bytes(m.g.valOff, m.g.seqOff+4*uint64(a.MaxEntries)-m.g.valOff)
		if !bytes.Equal(before, after) {
			t.Fatalf("%v: repair changed the map", a.Type)
		}
		*m.seq(2) = 0
	}
}

// TestOneWordValues: 8-byte values never use the sequence words; Repair
// leaves them alone.
func TestOneWordValues(t *testing.T) {
	m := openShared(t, mapops.Attr{Type: uapi.MapTypeArray, KeySize: 4, ValueSize: 8, MaxEntries: 4})
	if err := m.Update(key(1), value(1, 8), uapi.Any); err != nil {
		t.Fatal(err)
	}
	m.Repair()
	if v, ok := m.Word(1); !ok || v != binary.LittleEndian.Uint64(value(1, 8)) {
		t.Fatalf("word: %x %v", v, ok)
	}
	out, k := make([]byte, 8), key(1)
	if n := testing.AllocsPerRun(100, func() { _ = m.Lookup(k, out); _ = m.Update(k, out, uapi.Any) }); n != 0 {
		t.Fatalf("%v allocs", n)
	}
}

// TestUndoKilledCopy: a writer killed in the middle of its copy, with its
// undo record naming the element, is undone: the element reads its old
// value whole; a writer killed after it finished (record cleared, element
// still held) keeps its new value; records and words of dead writers are
// all released, and a live writer's record is left alone.
func TestUndoKilledCopy(t *testing.T) {
	for _, a := range attrs {
		m := openShared(t, a)
		if m.g.undoN == 0 {
			t.Fatalf("%v: no undo records for multi-word values", a.Type)
		}
		for i := range a.MaxEntries {
			if err := m.Update(key(i), value(i, m.size), uapi.Any); err != nil {
				t.Fatal(err)
			}
		}
		rec := func(k uint32) uint64 { return m.g.undoOff + uint64(k)*m.g.undoRec }
		// Element 2: killed mid-copy of value(200) — record 0 holds the old
		// value and names element 2.
		copy(m.mem.Bytes(rec(0)+8, m.size), value(2, m.size))
		*m.mem.Uint32(rec(0) + 4) = 2 + 1
		*m.mem.Uint32(rec(0)) = deadLock
		copy(m.mem.Bytes(m.valOff(2), m.size/2), value(200, m.size))
		*m.seq(2) = deadLock
		// Element 5: killed after its copy of value(500) finished (name
		// cleared), before releasing anything.
		copy(m.mem.Bytes(m.valOff(5), m.size), value(500, m.size))
		*m.mem.Uint32(rec(1)) = deadLock
		*m.seq(5) = deadLock
		// Record 2: a live writer's (token 5), naming element 6: untouched.
		*m.mem.Uint32(rec(2) + 4) = 6 + 1
		*m.mem.Uint32(rec(2)) = robust.Locked | 5<<2

		m.Repair()

		out := make([]byte, m.size)
		within(t, "lookup after repair", func() { _ = m.Lookup(key(2), out) })
		if !bytes.Equal(out, value(2, m.size)) {
			t.Fatalf("%v: element 2 after undo = %x, want its old value", a.Type, out)
		}
		within(t, "lookup after repair", func() { _ = m.Lookup(key(5), out) })
		if !bytes.Equal(out, value(500, m.size)) {
			t.Fatalf("%v: element 5 lost its finished update", a.Type)
		}
		for k, w := range []uint64{rec(0), rec(1)} {
			if *m.mem.Uint32(w)&robust.Locked != 0 || *m.mem.Uint32(w + 4) != 0 {
				t.Fatalf("%v: dead record %d not released", a.Type, k)
			}
		}
		if *m.mem.Uint32(rec(2)) != robust.Locked|5<<2 || *m.mem.Uint32(rec(2) + 4) != 7 {
			t.Fatalf("%v: a live writer's record was touched", a.Type)
		}
		*m.mem.Uint32(rec(2)) = 0 // the live writer finishes
		*m.mem.Uint32(rec(2) + 4) = 0
		within(t, "update after repair", func() {
			if err := m.Update(key(2), value(22, m.size), uapi.Any); err != nil {
				t.Error(err)
			}
		})
		_ = m.Lookup(key(2), out)
		if !bytes.Equal(out, value(22, m.size)) {
			t.Fatalf("%v: update after repair not stored", a.Type)
		}
	}
}
