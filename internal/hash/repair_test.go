package hash

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bpfmap/bpfmap/internal/mapops"
	"github.com/bpfmap/bpfmap/internal/region"
	"github.com/bpfmap/bpfmap/internal/robust"
	"github.com/bpfmap/bpfmap/internal/robust/robusttest"
	"github.com/bpfmap/bpfmap/internal/uapi"
)

// fakeHost is this process as token 5; every other token is a dead process.
type fakeHost = robusttest.Host

// dyingHost is the surviving process (token 5) while a victim (token 7)
// runs concurrently: the victim is alive until dead is set.
type dyingHost struct{ dead *atomic.Bool }

func (dyingHost) Token() uint32 { return 5 }
func (h dyingHost) Alive(tok uint32) bool {
	return tok == 5 || tok == 7 && !h.dead.Load()
}

// victimHost is the process that will die (token 7), as it sees itself.
type victimHost struct{}

func (victimHost) Token() uint32     { return 7 }
func (victimHost) Alive(uint32) bool { return true }

// deadWord is a lock word held by the dead process (token 7).
const deadWord = robusttest.DeadWord

// shared is one map as two processes see it: live (token 5, with the
// repair installed as the command layer installs it) and victim (token 7,
// the process that dies), both over the same region.
type shared struct {
	live, victim *Map
	r            *region.Region
}

var mapConfigs = []struct {
	name  string
	typ   uapi.MapType
	flags uint32
}{
	{"hash", uapi.MapTypeHash, 0},
	{"percpu_hash", uapi.MapTypePercpuHash, 0},
	{"lru", uapi.MapTypeLRUHash, 0},
	{"lru_nocommon", uapi.MapTypeLRUHash, uapi.FNoCommonLRU},
	{"lru_percpu", uapi.MapTypeLRUPercpuHash, 0},
	{"lru_percpu_nocommon", uapi.MapTypeLRUPercpuHash, uapi.FNoCommonLRU},
}

func openShared(t testing.TB, typ uapi.MapType, flags, max uint32) *shared {
	t.Helper()
	return openSharedHost(t, typ, flags, max, fakeHost{})
}

func openSharedHost(t testing.TB, typ uapi.MapType, flags, max uint32, host robust.Host) *shared {
	t.Helper()
	var cpuN atomic.Int64
	cpu := func() int { return int(cpuN.Add(1)) }
	a := &mapops.Attr{Type: typ, KeySize: 4, ValueSize: 8, MaxEntries: max, Flags: flags,
		PossibleCPUs: 2, CPU: cpu, Locks: robust.New(host)}
	ops, r, err := mapops.OpenDetached(Family, a)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Release() })
	a.Locks.SetRepair(func(*uint32) { ops.(mapops.Repairer).Repair() })
	lay, err := Family.Layout(a)
	if err != nil {
		t.Fatal(err)
	}
	b := *a
	b.Locks = robust.New(victimHost{})
	vops, err := Family.Open(r, &b, lay)
	if err != nil {
		t.Fatal(err)
	}
	return &shared{live: ops.(*Map), victim: vops.(*Map), r: r}
}

func key4(k uint32) []byte {
	b := make([]byte, 4)
	binary.LittleEndian.PutUint32(b, k)
	return b
}

// val is a value for m: v in every per-CPU slot.
func val(m *Map, v uint64) []byte {
	b := make([]byte, m.copySize)
	for i := 0; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], v)
	}
	return b
}

// contents iterates m with GetNextKey, failing on a duplicate key or a
// torn per-CPU value, and returns every key's value (first slot).
func contents(t *testing.T, m *Map) map[uint32]uint64 {
	t.Helper()
	got := map[uint32]uint64{}
	k, next := make([]byte, 4), make([]byte, 4)
	v := make([]byte, m.copySize)
	var cur []byte
	for n := 0; ; n++ {
		if n > int(m.g.nBuckets)+int(m.max)+spares {
			t.Fatal("iteration does not end")
		}
		if err := m.GetNextKey(cur, next); err != nil {
			break
		}
		key := binary.LittleEndian.Uint32(next)
		if _, dup := got[key]; dup {
			t.Fatalf("key %d twice in iteration", key)
		}
		if err := m.Lookup(next, v); err != nil {
			t.Fatalf("key %d iterated but lookup: %v", key, err)
		}
		if !bytes.Equal(v, val(m, binary.LittleEndian.Uint64(v))) {
			t.Fatalf("key %d: torn per-CPU value %x", key, v)
		}
		got[key] = binary.LittleEndian.Uint64(v)
		copy(k, next)
		cur = k
	}
	if uint32(len(got)) != m.Count() {
		t.Fatalf("count %d, %d keys iterated", m.Count(), len(got))
	}
	return got
}

// within runs f and fails if it does not return within d, with every
// goroutine's stack (where the waiters are stuck) in the failure.
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Fatalf("%s: still waiting after %v; goroutines:\n%s", what, d, buf)
	}
}

// keyInBucket returns a key of m's bucket b not in avoid.
func keyInBucket(m *Map, b uint32, avoid map[uint32]bool) uint32 {
	for k := uint32(1000); ; k++ {
		if m.hash(key4(k))&m.mask == b && !avoid[k] {
			return k
		}
	}
}

// fillTo checks the plain hash map's capacity: exactly max-count fresh
// keys fit, and the next insert is E2BIG.
func fillTo(t *testing.T, m *Map) {
	t.Helper()
	within(t, 10*time.Second, "filling the map", func() {
		start := m.Count()
		n := uint32(0)
		for k := uint32(1 << 20); ; k++ {
			err := m.Update(key4(k), val(m, uint64(k)), uapi.NoExist)
			if err == uapi.E2BIG {
				break
			}
			if err != nil {
				t.Errorf("insert %d: %v", k, err)
				return
			}
			n++
		}
		if start+n != m.max {
			t.Errorf("%d inserts into a map of %d/%d: want %d", n, start, m.max, m.max-start)
		}
	})
}

// TestRepairDeadBucketLock (a): an update, delete, lookup or per-CPU
// lookup-and-delete meeting a bucket lock held by a dead process finishes
// (the waiter runs the repair), and the bucket is whole after.
func TestRepairDeadBucketLock(t *testing.T) {
	for _, cfg := range mapConfigs {
		t.Run(cfg.name, func(t *testing.T) {
			s := openShared(t, cfg.typ, cfg.flags, 64)
			m := s.live
			for k := uint32(0); k < 32; k++ {
				if err := m.Update(key4(k), val(m, uint64(k)), 0); err != nil {
					t.Fatal(err)
				}
			}
			b := m.hash(key4(3)) & m.mask
			kill := func() {
				w := m.lockWord(b)
				*w = deadWord | *w&homeUsed
			}
			other := keyInBucket(m, b, map[uint32]bool{3: true})
			missing := keyInBucket(m, b, map[uint32]bool{3: true, other: true})
			v := make([]byte, m.copySize)
			for _, op := range []struct {
				name string
				f    func() error
				want error
				// meets: the operation must wait for the lock (a lock-free
				// lookup that finds its key does not).
				meets bool
			}{
				{"update", func() error { return m.Update(key4(other), val(m, 99), 0) }, nil, true},
				{"lookup", func() error { return m.Lookup(key4(3), v) }, nil, false},
				{"lookup-missing", func() error { return m.Lookup(key4(missing), v) }, uapi.ENOENT, true},
				{"delete", func() error { return m.Delete(key4(other)) }, nil, true},
				{"lookup-and-delete", func() error { return m.LookupAndDelete(key4(3), v) }, nil, true},
				{"next-key-missing", func() error { return m.GetNextKey(key4(missing), v[:4]) }, nil, true},
			} {
				kill()
				var err error
				within(t, 10*time.Second, op.name, func() { err = op.f() })
				if err != op.want {
					t.Fatalf("%s: %v, want %v", op.name, err, op.want)
				}
				if lw := *m.lockWord(b); op.meets && lw&robust.Locked != 0 {
					t.Fatalf("%s: lock word %#x still held", op.name, lw)
				}
			}
			got := contents(t, m)
			for k := uint32(0); k < 32; k++ {
				if _, ok := got[k]; ok != (k != 3) {
					t.Errorf("key %d present %v", k, ok)
				}
			}
			if m.lru != nil {
				checkLRU(t, m)
			}
		})
	}
}

// TestRepairHashCrashStates (b): the states a killed writer leaves in a
// plain hash map, written by hand, then one lookup that meets the dead
// lock. Every acknowledged key keeps its value, a half-done update is
// complete or absent, the count is exact and the capacity is whole.
func TestRepairHashCrashStates(t *testing.T) {
	for _, typ := range []uapi.MapType{uapi.MapTypeHash, uapi.MapTypePercpuHash} {
		t.Run(fmt.Sprint(typ), func(t *testing.T) {
			s := openShared(t, typ, 0, 64)
			m, vm := s.live, s.victim
			want := map[uint32]uint64{}
			for k := uint32(0); k < 40; k++ {
				if err := m.Update(key4(k), val(m, uint64(k)), 0); err != nil {
					t.Fatal(err)
				}
				want[k] = uint64(k)
			}
			// A key twice: an update that published its new element at
			// the head and died before unlinking the old one.
			hv := m.hash(key4(5))
			b5 := hv & m.mask
			n := vm.allocOverflow()
			vm.fill(n, hv, key4(5), val(m, 555))
			vm.linkHead(b5, n, vm.elem(n), vm.mem.Uint32(vm.headOff(b5)))
			// More overflow elements allocated and never linked than there
			// are spares: without repair the map could not be filled.
			for range spares + 1 {
				vm.fill(vm.allocOverflow(), 1, key4(1<<30), val(m, 1))
			}
			// A home element allocated (flag set, filled) and not linked.
			empty := uint32(0)
			for ; *m.mem.Uint32(m.headOff(empty)) != 0; empty++ {
			}
			w := m.lockWord(empty)
			*w |= homeUsed
			vm.fill(empty+1, empty, key4(1<<29), val(m, 2))
			// An element unlinked and not freed, the count not yet
			// decremented: a delete of key 7 died halfway.
			ref, slot := vm.find(m.hash(key4(7))&m.mask, m.hash(key4(7)), key4(7))
			*vm.mem.Uint32(slot) = *vm.nextOf(vm.elem(ref))
			if *vm.mem.Uint32(slot) == vm.nulls(m.hash(key4(7))&m.mask) && slot == vm.headOff(m.hash(key4(7))&m.mask) {
				*vm.mem.Uint32(slot) = 0
			}
			delete(want, 7)
			// An odd sequence on a live element (an in-place rewrite that
			// died), and the count off by one more.
			r9, _ := vm.find(m.hash(key4(9))&m.mask, m.hash(key4(9)), key4(9))
			*vm.seqOf(vm.elem(r9)) |= 1
			*m.count++
			// The dead writer held key 5's bucket lock.
			*m.lockWord(b5) = deadWord | *m.lockWord(b5)&homeUsed

			missing := keyInBucket(m, b5, nil)
			within(t, 10*time.Second, "delete at the dead lock", func() {
				if err := m.Delete(key4(missing)); err != uapi.ENOENT {
					t.Errorf("delete of a missing key: %v", err)
				}
			})
			got := contents(t, m)
			if got[5] != 5 && got[5] != 555 {
				t.Errorf("key 5 = %d, want 5 or 555", got[5])
			}
			want[5] = got[5]
			if !mapsEqual(got, want) {
				t.Errorf("contents after repair:\n got %v\nwant %v", got, want)
			}
			if *m.seqOf(m.elem(r9))&1 != 0 {
				t.Error("key 9's sequence still odd")
			}
			fillTo(t, m)
		})
	}
}

func mapsEqual(a, b map[uint32]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestRepairLRUCrashStates (b): the states a killed writer leaves in an
// LRU map, written by hand: a node popped and not linked, a key twice, a
// node unlinked and not freed, a list torn in the middle of an unlink under
// a dead LRU lock, the count off by one, an odd sequence. A live process's
// node in flight must survive the repair untouched.
func TestRepairLRUCrashStates(t *testing.T) {
	for _, cfg := range mapConfigs[2:] {
		t.Run(cfg.name, func(t *testing.T) {
			s := openShared(t, cfg.typ, cfg.flags, 64)
			m, vm := s.live, s.victim
			l, vl := m.lru, vm.lru
			want := map[uint32]uint64{}
			for k := uint32(0); k < 30; k++ {
				if err := m.Update(key4(k), val(m, uint64(k)), 0); err != nil {
					t.Fatal(err)
				}
				want[k] = uint64(k)
			}
			// The live process holds a node in flight (popped, not linked).
			liveNode := l.pop(noNode)
			liveType := l.typ(liveNode)
			// Common LRU: the live process stole a node from a local free
			// list and is about to put it on its own pending list.
			stolen := uint32(noNode)
			if !l.percpu {
				for c := range l.ncpu {
					if stolen = l.localPopFree(c); stolen != noNode {
						break
					}
				}
				if stolen == noNode {
					t.Fatal("no local free node to steal")
				}
				l.setType(stolen, tDetached)
				*l.own(stolen) = l.mine
			}
			// The victim popped a node for a new key and died.
			x := vl.pop(noNode)
			vm.fill(x+1, m.hash(key4(100)), key4(100), val(m, 100))
			// The victim published key 5's new element and died before
			// unlinking the old one (LRU_HASH's replace).
			y := vl.pop(noNode)
			hv := m.hash(key4(5))
			vm.fill(y+1, hv, key4(5), val(m, 555))
			vm.linkHead(hv&m.mask, y+1, vm.elem(y+1), vm.mem.Uint32(vm.headOff(hv&m.mask)))
			// The victim unlinked key 7 (delete) and died before freeing
			// its node; the count is off by one.
			h7 := m.hash(key4(7))
			ref, slot := vm.find(h7&m.mask, h7, key4(7))
			vm.unlink(h7&m.mask, ref, slot)
			*m.count++
			delete(want, 7)
			// An odd sequence on a live element.
			h9 := m.hash(key4(9))
			r9, _ := vm.find(h9&m.mask, h9, key4(9))
			*vm.seqOf(vm.elem(r9)) |= 1
			// Key 11's node torn out of its list halfway under a dead LRU
			// lock: its predecessor skips it, its successor still points back.
			h11 := m.hash(key4(11))
			r11, _ := vm.find(h11&m.mask, h11, key4(11))
			i := r11 - 1
			*l.next(*l.prev(i)) = *l.next(i)
			// The dead process held the list's lock (and, for the common
			// LRU's global list, CPU 0's local lock, as a pop does).
			var lock *uint32
			if l.percpu {
				lock = l.lockWord(l.ll(l.cpuOf(i)) + llLock)
			} else if l.typ(i) == tLocalPending {
				lock = l.lockWord(l.loc(l.cpuOf(i)) + locLock)
			} else {
				lock = l.lockWord(l.ll(0) + llLock)
				*l.lockWord(l.loc(0) + locLock) = deadWord
			}
			*lock = deadWord

			// An update from a CPU that takes the dead LRU lock.
			within(t, 10*time.Second, "updates past the dead LRU lock", func() {
				for k := uint32(200); k < 204; k++ {
					if err := m.Update(key4(k), val(m, uint64(k)), 0); err != nil {
						t.Errorf("update %d: %v", k, err)
					}
					want[k] = uint64(k)
				}
			})
			if *lock&robust.Locked != 0 {
				t.Fatalf("LRU lock %#x still held", *lock)
			}
			// The live node may have moved from pending to the global
			// lists (a pop flushes pending nodes), but it stays in flight
			// and on the list of its type.
			if lt := l.typ(liveNode); *l.own(liveNode) != l.mine || lt != liveType && lt != tInactive && lt != tActive ||
				*l.next(*l.prev(liveNode)) != liveNode || *l.prev(*l.next(liveNode)) != liveNode {
				t.Fatalf("live node in flight changed: type %d own %#x", l.typ(liveNode), *l.own(liveNode))
			}
			l.pushFree(liveNode)
			if stolen != noNode {
				if l.typ(stolen) != tDetached || *l.own(stolen) != l.mine {
					t.Fatalf("live stolen node changed: type %d own %#x", l.typ(stolen), *l.own(stolen))
				}
				w := l.lockWord(l.loc(0) + locLock)
				ver := m.locks.Lock(w)
				l.addPending(0, stolen)
				m.locks.Unlock(w, ver)
				l.pushFree(stolen)
			}
			checkLRU(t, m)
			got := contents(t, m)
			if v, ok := got[100]; ok && v != 100 {
				t.Errorf("key 100 = %d", v)
			}
			delete(got, 100)
			if got[5] != 5 && got[5] != 555 {
				t.Errorf("key 5 = %d, want 5 or 555", got[5])
			}
			want[5] = got[5]
			if !mapsEqual(got, want) {
				t.Errorf("contents after repair:\n got %v\nwant %v", got, want)
			}
			// No node leaked: churn through many more keys than nodes.
			for k := uint32(1000); k < 1400; k++ {
				if err := m.Update(key4(k), val(m, uint64(k)), 0); err != nil {
					t.Fatalf("update %d: %v", k, err)
				}
			}
			checkLRU(t, m)
		})
	}
}

// TestRepairLRUDeadLockNested: a process whose only goroutine must evict
// (or refill its local free list) while a dead process holds the bucket
// lock of every victim, or the global LRU lock, still makes progress: the
// nested wait backs out, the repair runs, the pop starts again.
func TestRepairLRUDeadLockNested(t *testing.T) {
	for _, cfg := range mapConfigs[2:] {
		for _, what := range []string{"buckets", "global"} {
			if what == "global" && cfg.flags&uapi.FNoCommonLRU != 0 {
				continue
			}
			t.Run(cfg.name+"/"+what, func(t *testing.T) {
				s := openShared(t, cfg.typ, cfg.flags, 16)
				m, l := s.live, s.live.lru
				for k := uint32(0); k < 64; k++ { // full: every pop evicts
					if err := m.Update(key4(k), val(m, uint64(k)), 0); err != nil {
						t.Fatal(err)
					}
				}
				if what == "buckets" {
					for b := range m.g.nBuckets {
						w := m.lockWord(b)
						*w = deadWord | *w&homeUsed
					}
				} else {
					// Empty the local free lists so a pop needs the global lock.
					for c := range l.ncpu {
						for l.localPopFree(c) != noNode {
						}
					}
					*l.lockWord(l.ll(0) + llLock) = deadWord
				}
				within(t, 10*time.Second, "update", func() {
					for k := uint32(100); k < 110; k++ {
						if err := m.Update(key4(k), val(m, uint64(k)), 0); err != nil {
							t.Errorf("update %d: %v", k, err)
						}
					}
				})
				checkLRU(t, m)
				got := contents(t, m)
				if got[109] != 109 {
					t.Errorf("last key missing: %v", got)
				}
			})
		}
	}
}

// snapshot is what a consistent map shows: its iteration (keys and values
// in order) and count, and for LRU maps the LRU area without its lock words.
func snapshot(t *testing.T, m *Map) []byte {
	t.Helper()
	var out []byte
	k, next := make([]byte, 4), make([]byte, 4)
	v := make([]byte, m.copySize)
	var cur []byte
	for m.GetNextKey(cur, next) == nil {
		if err := m.Lookup(next, v); err != nil {
			t.Fatal(err)
		}
		out = append(append(out, next...), v...)
		copy(k, next)
		cur = k
	}
	out = binary.LittleEndian.AppendUint32(out, m.Count())
	if l := m.lru; l != nil {
		area := append([]byte(nil), m.mem.Bytes(m.g.lruOff, m.g.lruSize)...)
		zero := func(off uint64) { clear(area[off-m.g.lruOff : off-m.g.lruOff+4]) }
		if l.percpu {
			for c := range l.ncpu {
				zero(l.ll(c) + llLock)
			}
		} else {
			zero(l.ll(0) + llLock)
			for c := range l.ncpu {
				zero(l.loc(c) + locLock)
			}
		}
		out = append(out, area...)
	}
	return out
}

// TestRepairConsistentNoop (c): Repair on a consistent map changes nothing
// observable, now or later: two maps given the same operations, one of
// them repaired along the way, answer every later operation alike.
func TestRepairConsistentNoop(t *testing.T) {
	for _, cfg := range mapConfigs {
		t.Run(cfg.name, func(t *testing.T) {
			a := openShared(t, cfg.typ, cfg.flags, 64).live
			b := openShared(t, cfg.typ, cfg.flags, 64).live
			r := rand.New(rand.NewPCG(1, 2))
			step := func() {
				k := key4(uint32(r.IntN(100)))
				v := val(a, r.Uint64())
				op, fl := r.IntN(4), uint64(r.IntN(3))
				out1, out2 := make([]byte, a.copySize), make([]byte, a.copySize)
				var e1, e2 error
				switch op {
				case 0, 1:
					e1, e2 = a.Update(k, v, fl), b.Update(k, v, fl)
				case 2:
					e1, e2 = a.Delete(k), b.Delete(k)
				default:
					e1, e2 = a.LookupTouch(k, out1), b.LookupTouch(k, out2)
				}
				if e1 != e2 || !bytes.Equal(out1, out2) {
					t.Fatalf("op %d on %x: %v %x vs %v %x", op, k, e1, out1, e2, out2)
				}
			}
			for range 3000 {
				step()
			}
			before := snapshot(t, a)
			a.Repair()
			if after := snapshot(t, a); !bytes.Equal(before, after) {
				for i := range before {
					if before[i] != after[i] {
						t.Fatalf("repair of a consistent map changed it: byte %d of %d (%d keys)", i, len(before), a.Count())
					}
				}
			}
			if !bytes.Equal(before, snapshot(t, b)) {
				t.Fatal("maps differ before the repair")
			}
			for range 3000 {
				step()
			}
			if !bytes.Equal(snapshot(t, a), snapshot(t, b)) {
				t.Fatal("repaired map behaves differently later")
			}
			if a.lru != nil {
				checkLRU(t, a)
			}
		})
	}
}

// crash is the panic value of a simulated kill.
type crash struct{}

// TestRepairRandomCrash runs random operations in a victim process, kills
// it at a random step (crashHook), repairs from the surviving process and
// checks the map against a model: every acknowledged key has its value (LRU
// maps may have evicted it), the killed operation is complete or absent, no
// key twice, the count exact, the LRU's nodes all accounted for, a plain
// hash map fillable to exactly max_entries; the map then keeps working.
func TestRepairRandomCrash(t *testing.T) {
	rounds := 500
	if testing.Short() {
		rounds = 30
	}
	for _, cfg := range mapConfigs {
		t.Run(cfg.name, func(t *testing.T) {
			for seed := range uint64(rounds) {
				randomCrash(t, cfg.typ, cfg.flags, seed)
				if t.Failed() {
					t.Fatalf("seed %d", seed)
				}
			}
		})
	}
}

type state struct {
	present bool
	v       uint64
}

func randomCrash(t *testing.T, typ uapi.MapType, flags uint32, seed uint64) {
	s := openShared(t, typ, flags, 32)
	m, vm := s.live, s.victim
	r := rand.New(rand.NewPCG(seed, 99))
	model := map[uint32]uint64{}
	// allowed: keys whose state the killed operation leaves open.
	allowed := map[uint32][]state{}
	stateOf := func(k uint32) state { v, ok := model[k]; return state{ok, v} }

	kill := 1 + r.IntN(400)
	calls := 0
	crashHook = func(mm *Map) {
		if calls++; mm == vm && calls == kill {
			panic(crash{})
		}
	}
	defer func() { crashHook = nil }()
	keys, vals := make([]byte, 4*64), make([]byte, int(vm.copySize)*64)
	out := make([]byte, vm.copySize)
	for n := 0; n < 300; n++ {
		k := uint32(r.IntN(48))
		v := uint64(n)<<8 | uint64(k)
		op, fl := r.IntN(10), uint64(r.IntN(3))
		before := stateOf(k)
		var b uint32
		var bucketKeys []uint32
		if op == 9 {
			b = uint32(r.IntN(int(vm.g.nBuckets)))
			for kk := range model {
				if vm.hash(key4(kk))&vm.mask == b {
					bucketKeys = append(bucketKeys, kk)
				}
			}
		}
		died := func() (died bool) {
			defer func() {
				if p := recover(); p != nil {
					if _, ok := p.(crash); !ok {
						panic(p)
					}
					died = true
				}
			}()
			switch {
			case op < 6:
				err := vm.Update(key4(k), val(vm, v), fl)
				switch {
				case err == nil:
					model[k] = v
				case err == uapi.E2BIG || err == uapi.EEXIST || err == uapi.ENOENT:
				default:
					t.Fatalf("update: %v", err)
				}
			case op < 8:
				if err := vm.Delete(key4(k)); err == nil {
					delete(model, k)
				}
			case op < 9:
				if err := vm.LookupAndDelete(key4(k), out); err == nil {
					delete(model, k)
				}
			default:
				_, copied := vm.CopyBucket(b, keys, vals, 64, true)
				if copied {
					for _, kk := range bucketKeys {
						delete(model, kk)
					}
				}
			}
			return false
		}()
		if vm.lru != nil && !died {
			// Keys the LRU evicted during the operation.
			for kk := range model {
				if vm.Lookup(key4(kk), out) != nil {
					delete(model, kk)
				}
			}
		}
		if died {
			crashHook = nil
			switch {
			case op < 6:
				allowed[k] = []state{before, {true, v}}
			case op < 9:
				allowed[k] = []state{before, {}}
			default:
				for _, kk := range bucketKeys {
					allowed[kk] = []state{stateOf(kk), {}}
				}
			}
			break
		}
	}
	crashHook = nil

	// The survivor meets whatever the victim left (maybe nothing).
	within(t, 10*time.Second, "repair", func() { m.Repair() })
	got := contents(t, m)
	for k := uint32(0); k < 48; k++ {
		g := state{}
		if v, ok := got[k]; ok {
			g = state{true, v}
		}
		ok := false
		if alts, open := allowed[k]; open {
			for _, a := range alts {
				ok = ok || a == g
			}
		} else {
			ok = g == stateOf(k)
		}
		if !ok && m.lru != nil && !g.present {
			ok = true // evicted
		}
		if !ok {
			t.Errorf("seed %d (killed at step %d): key %d is %v, want %v (or %v)", seed, kill, k, g, stateOf(k), allowed[k])
		}
	}
	if m.lru != nil {
		checkLRU(t, m)
		for k := uint32(100); k < 300; k++ {
			if err := m.Update(key4(k), val(m, uint64(k)), 0); err != nil {
				t.Fatalf("update after repair: %v", err)
			}
		}
		checkLRU(t, m)
		contents(t, m)
	} else {
		fillTo(t, m)
	}
}

// TestRepairConcurrentCrash: a victim process dies at a random step while
// two goroutines of the surviving process keep operating on the same map.
// The survivors meet whatever the victim left (a dead lock, nodes in
// flight), run the repair among themselves, never hang, never see a torn
// or foreign value, and their own nodes in flight survive the repairs: the
// map is whole after (no key twice, count exact, every LRU node accounted
// for, a plain hash map fillable to exactly max_entries).
func TestRepairConcurrentCrash(t *testing.T) {
	rounds := 30
	if testing.Short() {
		rounds = 6
	}
	for _, cfg := range mapConfigs {
		t.Run(cfg.name, func(t *testing.T) {
			for seed := range uint64(rounds) {
				concurrentCrash(t, cfg.typ, cfg.flags, seed)
				if t.Failed() {
					t.Fatalf("seed %d", seed)
				}
			}
		})
	}
}

func concurrentCrash(t *testing.T, typ uapi.MapType, flags uint32, seed uint64) {
	var victimDead atomic.Bool
	s := openSharedHost(t, typ, flags, 32, dyingHost{&victimDead})
	m, vm := s.live, s.victim
	r := rand.New(rand.NewPCG(seed, 1000))
	kill, calls, dead := 1+r.IntN(300), 0, false
	// Set while no other goroutine runs; only the victim's steps count.
	crashHook = func(mm *Map) {
		if mm != vm || dead {
			return
		}
		if calls++; calls == kill {
			dead = true
			panic(crash{})
		}
	}
	defer func() { crashHook = nil }()
	var stop atomic.Bool
	var wg sync.WaitGroup
	var bad atomic.Int64
	ops := func(mm *Map, r *rand.Rand, n int) {
		out := make([]byte, mm.copySize)
		keys, vals := make([]byte, 4*64), make([]byte, int(mm.copySize)*64)
		for i := 0; i < n && !stop.Load(); i++ {
			k := uint32(r.IntN(40))
			switch op := r.IntN(10); {
			case op < 5:
				err := mm.Update(key4(k), val(mm, uint64(k)<<32|uint64(i)), uint64(r.IntN(3)))
				if err != nil && err != uapi.E2BIG && err != uapi.EEXIST && err != uapi.ENOENT {
					bad.Add(1)
				}
			case op < 7:
				_ = mm.Delete(key4(k))
			case op < 9:
				if mm.Lookup(key4(k), out) == nil &&
					(!bytes.Equal(out, val(mm, binary.LittleEndian.Uint64(out))) || binary.LittleEndian.Uint32(out[4:]) != k) {
					bad.Add(1)
				}
			default:
				mm.CopyBucket(uint32(r.IntN(int(mm.g.nBuckets))), keys, vals, 64, true)
			}
		}
	}
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ops(m, rand.New(rand.NewPCG(seed, uint64(w))), 1<<30)
		}()
	}
	func() {
		defer func() {
			if p := recover(); p != nil {
				if _, ok := p.(crash); !ok {
					panic(p)
				}
			}
		}()
		ops(vm, r, 3000)
	}()
	victimDead.Store(true)
	time.Sleep(5 * time.Millisecond) // the survivors run into what the victim left
	stop.Store(true)
	within(t, 20*time.Second, "survivors", wg.Wait)
	if bad.Load() != 0 {
		t.Errorf("seed %d: %d torn or foreign values or bad errors", seed, bad.Load())
	}
	within(t, 10*time.Second, "repair", func() { m.Repair() })
	contents(t, m)
	if m.lru != nil {
		checkLRU(t, m)
	} else {
		fillTo(t, m)
	}
}

// TestRepairLRUPercpuHalfCopied: a process killed half way through copying
// an LRU_PERCPU_HASH value in place (the kernel's in-place update of an
// existing key with BPF_ANY) leaves the element torn; the repair puts the
// old value back from the update's spare node, so the update is absent, and
// the map keeps working.
func TestRepairLRUPercpuHalfCopied(t *testing.T) {
	for _, flags := range []uint32{0, uapi.FNoCommonLRU} {
		s := openShared(t, uapi.MapTypeLRUPercpuHash, flags, 64)
		if s.live.g.valArea == 8 {
			t.Fatal("per-CPU values of 2 CPUs should not be one word")
		}
		for k := range uint32(8) {
			if err := s.live.Update(key4(k), val(s.live, uint64(k)+100), uapi.Any); err != nil {
				t.Fatal(err)
			}
		}
		hv := s.victim.hash(key4(3))
		target, _ := s.live.find(hv&s.live.mask, hv, key4(3))
		if target == 0 {
			t.Fatal("key 3 not found")
		}
		e := s.live.elem(target)
		crashHook = func(m *Map) {
			if m != s.victim || atomic.LoadUint32(m.seqOf(e))&1 == 0 {
				return
			}
			half := val(m, 999)
			copy(m.valueOf(e)[:len(half)/2], half) // the copy cut short
			panic(crash{})
		}
		func() {
			defer func() {
				if r := recover(); r != nil {
					if _, ok := r.(crash); !ok {
						panic(r)
					}
				}
			}()
			_ = s.victim.Update(key4(3), val(s.victim, 999), uapi.Any)
			t.Fatal("the victim's update was not cut short")
		}()
		crashHook = nil

		out := make([]byte, s.live.copySize)
		within(t, 10*time.Second, "lookup after the kill", func() {
			if err := s.live.Lookup(key4(3), out); err != nil {
				t.Error(err)
			}
		})
		if !bytes.Equal(out, val(s.live, 103)) {
			t.Fatalf("flags %#x: key 3 = %x after repair, want its old value", flags, out)
		}
		got := contents(t, s.live)
		if len(got) != 8 {
			t.Fatalf("flags %#x: %d keys after repair, want 8", flags, len(got))
		}
		if err := s.live.Update(key4(3), val(s.live, 7), uapi.Exist); err != nil {
			t.Fatal(err)
		}
		_ = s.live.Lookup(key4(3), out)
		if !bytes.Equal(out, val(s.live, 7)) {
			t.Fatalf("flags %#x: update after repair not stored", flags)
		}
	}
}
