package lpm

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync/atomic"
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

// openShared opens an IPv4 trie whose lock is robust against fakeHost, with
// Repair installed as the command layer installs it.
func openShared(t *testing.T, maxEntries uint32) *Map {
	t.Helper()
	return openSharedV(t, maxEntries, 8)
}

func openSharedV(t *testing.T, maxEntries, valueSize uint32) *Map {
	t.Helper()
	l := robust.New(fakeHost{})
	a := &mapops.Attr{Type: uapi.MapTypeLPMTrie, KeySize: 8, ValueSize: valueSize,
		MaxEntries: maxEntries, Flags: uapi.FNoPrealloc, PossibleCPUs: 2, Locks: l}
	ops, r, err := mapops.OpenDetached(Family, a)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Release() })
	l.SetRepair(func(*uint32) { ops.(mapops.Repairer).Repair() })
	return ops.(*Map)
}

// within runs f and fails the test if it does not return in time.
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { f(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: still waiting on a dead writer", what)
	}
}

// checkArena verifies the allocator's books: the reachable blocks and the
// blocks on the free lists tile the arena handed out so far exactly (no
// leak, no overlap), and the entry count is the number of reachable entries.
func checkArena(t *testing.T, m *Map) {
	t.Helper()
	blocks, count := m.reachable()
	if c := m.Count(); c != count {
		t.Fatalf("count %d, reachable entries %d", c, count)
	}
	limit := int(*m.bump/8) + 1
	for c := uint32(0); c < numClasses; c++ {
		for ref := *m.freeHead(c); ref != 0; ref = *m.mem.Uint32(m.off(ref)) {
			if limit--; limit < 0 || !m.valid(ref) {
				t.Fatalf("free list %d broken at ref %d", c, ref)
			}
			blocks = append(blocks, block{ref, uint32(m.classSize(c) / 8)})
		}
	}
	slices.SortFunc(blocks, func(a, b block) int { return int(int64(a.ref) - int64(b.ref)) })
	at := uint32(1)
	for _, b := range blocks {
		if b.ref != at {
			t.Fatalf("block at %d, expected %d: leak or overlap", b.ref, at)
		}
		at += b.units
	}
	if end := uint32(1 + *m.bump/8); at != end {
		t.Fatalf("blocks end at %d, arena handed out to %d", at, end)
	}
	if err := m.checkJump(); err != nil {
		t.Fatal(err)
	}
}

// sameAs reports whether m holds exactly md's entries: the iteration in
// md's order, each key's value, and the count.
func sameAs(m *Map, md *model) bool {
	var got [][]byte
	var key []byte
	for {
		next := make([]byte, 8)
		if err := m.GetNextKey(key, next); err != nil {
			break
		}
		got = append(got, next)
		key = next
		if len(got) > len(md.ents) {
			return false
		}
	}
	want := md.order()
	if len(got) != len(want) || int(m.Count()) != len(want) {
		return false
	}
	v := make([]byte, m.valSize)
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			return false
		}
		wv, _ := md.lookup(want[i])
		if m.Lookup(want[i], v) != nil || !bytes.Equal(v, wv) {
			return false
		}
	}
	return true
}

func (md *model) clone() *model {
	c := *md
	c.ents = slices.Clone(md.ents)
	return &c
}

// errCrash is the panic of a simulated kill.
type errCrash struct{}

// TestCrashAnywhere kills writers (through crashHook) at every point of
// random inserts, replacements and deletes, leaves the lock held by the
// dead process and the sequence odd, as a kill does, and checks that the
// next reader completes (through Repair), that the map then holds either
// the state before the operation or after it, exactly, and that Repair
// left no arena block leaked or doubly used and the count exact. With
// 8-byte values replacements are one store in place; with 12-byte values
// they are new entries.
//
// With max_entries of jumpMin the map has a jump table, which a kill can
// leave behind the structure: Repair must rebuild it.
func TestCrashAnywhere(t *testing.T) {
	for _, c := range []struct{ vs, max uint32 }{{8, 200}, {12, 200}, {8, jumpMin}, {12, jumpMin}} {
		t.Run(fmt.Sprintf("value=%d/max=%d", c.vs, c.max), func(t *testing.T) { crashAnywhere(t, c.vs, c.max) })
	}
}

func crashAnywhere(t *testing.T, vs, max uint32) {
	m := openSharedV(t, max, vs)
	md := newModel(8, int(max))
	rng := rand.New(rand.NewPCG(1, 2))
	var calls, target int
	crashHook = func() {
		if calls++; calls == target {
			panic(errCrash{})
		}
	}
	defer func() { crashHook = nil }()
	lens := []uint32{0, 3, 8, 12, 16, 17, 24, 28, 32}
	crashes, complete := 0, 0
	for op := 0; op < 1500; op++ {
		p := lens[rng.IntN(len(lens))]
		addr := binary.BigEndian.AppendUint32(nil, 10<<24|rng.Uint32N(4)<<16|rng.Uint32N(4)<<8|rng.Uint32N(4)<<4)
		key := mkKey(8, p, maskBits(addr, p)...)
		val := binary.LittleEndian.AppendUint64(nil, rng.Uint64())
		val = binary.LittleEndian.AppendUint64(val, rng.Uint64())[:vs]
		after := md.clone()
		del := rng.IntN(3) == 0
		if del {
			after.delete(key)
		} else {
			after.update(key, val, uapi.Any)
		}
		calls, target = 0, 1+rng.IntN(8)
		crashed := func() (crashed bool) {
			defer func() {
				if r := recover(); r != nil {
					if _, ok := r.(errCrash); !ok {
						panic(r)
					}
					crashed = true
				}
			}()
			if del {
				_ = m.Delete(key)
			} else {
				_ = m.Update(key, val, uapi.Any)
			}
			return false
		}()
		if !crashed {
			if !sameAs(m, after) {
				t.Fatalf("op %d: map differs from the model", op)
			}
			md = after
			checkArena(t, m)
			continue
		}
		crashes++
		// The kill: the lock stays held by the dead writer, the
		// sequence odd (the deferred unlock ran during the panic).
		atomic.AddUint32(m.seq, 1)
		*m.lockW = deadLock
		target = 0
		v := make([]byte, vs)
		within(t, "lookup", func() { _ = m.Lookup(key, v) })
		if *m.lockW&robust.Locked != 0 || *m.seq&1 != 0 {
			t.Fatalf("op %d: lock %#x seq %d after repair", op, *m.lockW, *m.seq)
		}
		switch {
		case sameAs(m, after):
			md = after
			complete++
		case sameAs(m, md):
		default:
			t.Fatalf("op %d (delete %v, crash point %d): map is neither before nor after", op, del, calls)
		}
		checkArena(t, m)
	}
	if crashes < 200 || complete < 100 {
		t.Fatalf("only %d crashes (%d complete)", crashes, complete)
	}
	t.Logf("%d crashes, %d after the operation's publication", crashes, complete)
}

// TestDeadWriterNoHang: with the lock held by a dead process and the
// sequence odd, lookups, get-next-key, updates and deletes all complete.
func TestDeadWriterNoHang(t *testing.T) {
	m := openShared(t, 16)
	k := mkKey(8, 24, 10, 1, 2)
	v := binary.LittleEndian.AppendUint64(nil, 42)
	if err := m.Update(k, v, uapi.Any); err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 8)
	for _, op := range []struct {
		name string
		f    func() error
	}{
		{"lookup", func() error { return m.Lookup(k, out) }},
		{"get-next-key", func() error { return m.GetNextKey(nil, out) }},
		{"update", func() error { return m.Update(k, v, uapi.Exist) }},
		{"delete", func() error { return m.Delete(mkKey(8, 8, 10)) }},
	} {
		atomic.AddUint32(m.seq, 1)
		*m.lockW = deadLock
		var err error
		within(t, op.name, func() { err = op.f() })
		if op.name == "delete" && err != uapi.ENOENT || op.name != "delete" && err != nil {
			t.Fatalf("%s: %v", op.name, err)
		}
	}
	if err := m.Lookup(k, out); err != nil || !bytes.Equal(out, v) {
		t.Fatalf("after: %v %x", err, out)
	}
}

// TestRepairLeaks: blocks a killed writer took from the allocator and never
// published (here: a node, two entries, a bump-pointer block) are free
// again after Repair, and the count is exact.
func TestRepairLeaks(t *testing.T) {
	m := openShared(t, 64)
	md := newModel(8, 64)
	for i := range 40 {
		k := mkKey(8, uint32(16+i%17), 10, byte(i), byte(i*7))
		k = mkKey(8, plen(k), maskBits(k[4:], plen(k))...)
		v := binary.LittleEndian.AppendUint64(nil, uint64(i))
		if err := m.Update(k, v, uapi.Any); err != nil {
			t.Fatal(err)
		}
		md.update(k, v, uapi.Any)
	}
	ver := m.lock()
	_ = ver
	m.alloc(0)
	m.alloc(entryClass)
	m.alloc(entryClass)
	m.alloc(5)
	*m.count += 3
	atomic.AddUint32(m.seq, 1)
	*m.lockW = deadLock
	m.Repair()
	if !sameAs(m, md) {
		t.Fatal("map changed")
	}
	checkArena(t, m)
}

// TestRepairConsistent: Repair of a consistent map changes nothing that can
// be observed: entries, values, order, count, arena in use; and the books
// still balance.
func TestRepairConsistent(t *testing.T) {
	m := openShared(t, 500)
	md := newModel(8, 500)
	rng := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		p := uint32(rng.IntN(33))
		k := mkKey(8, p, maskBits(binary.BigEndian.AppendUint32(nil, rng.Uint32()&0x0f0f0fff), p)...)
		v := binary.LittleEndian.AppendUint64(nil, rng.Uint64())
		if rng.IntN(3) == 0 {
			_ = m.Delete(k)
			md.delete(k)
		} else {
			_ = m.Update(k, v, uapi.Any)
			md.update(k, v, uapi.Any)
		}
	}
	checkArena(t, m)
	use := m.ArenaInUse()
	m.Repair()
	if !sameAs(m, md) || m.ArenaInUse() != use {
		t.Fatal("repair changed the map")
	}
	checkArena(t, m)
	if *m.lockW&robust.Locked != 0 || *m.seq&1 != 0 {
		t.Fatalf("lock %#x seq %d", *m.lockW, *m.seq)
	}
}
