package hash

import (
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/bpfmap/bpfmap/internal/mapops"
	"github.com/bpfmap/bpfmap/internal/uapi"
)

func newTestLRU(t *testing.T, typ uapi.MapType, flags, max, vs uint32, cpu func() int) *Map {
	t.Helper()
	a := &mapops.Attr{Type: typ, KeySize: 4, ValueSize: vs, MaxEntries: max, Flags: flags, PossibleCPUs: 2, CPU: cpu}
	ops, r, err := mapops.OpenDetached(Family, a)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Release() })
	return ops.(*Map)
}

// checkLRU verifies the LRU's structure in a quiet map: every node is on
// exactly one list of a type matching the list, the active/inactive counts
// are right, and the nodes in the hash table are exactly the nodes on the
// active, inactive and pending lists.
func checkLRU(t *testing.T, m *Map) {
	t.Helper()
	l := m.lru
	seen := make([]int, l.s)
	inUse := map[uint32]bool{}
	// walk checks list h, whose nodes have type typ and, if cpu is not
	// anyCPU, CPU cpu.
	const anyCPU = ^uint32(0)
	walk := func(h, typ uint32, cnt *uint32, cpu uint32) {
		n := uint32(0)
		for i := *l.next(h); i != h; i = *l.next(i) {
			if i >= l.s {
				t.Fatalf("sentinel %d inside list %d", i, h)
			}
			if *l.prev(*l.next(i)) != i {
				t.Fatalf("broken links at node %d", i)
			}
			if l.typ(i) != typ {
				t.Fatalf("node %d has type %d on a list of type %d", i, l.typ(i), typ)
			}
			if cpu != anyCPU && l.cpuOf(i) != cpu {
				t.Fatalf("node %d has CPU %d on a list of CPU %d", i, l.cpuOf(i), cpu)
			}
			seen[i]++
			if typ == tActive || typ == tInactive || typ == tLocalPending {
				inUse[i] = true
			}
			n++
		}
		if cnt != nil && *cnt != n {
			t.Fatalf("list %d: count %d, %d nodes", h, *cnt, n)
		}
	}
	fresh := uint32(0)
	lists := uint32(1)
	if l.percpu {
		lists = l.ncpu
	}
	for c := uint32(0); c < lists; c++ {
		L := lruList{hdr: l.ll(c), c: c}
		own := anyCPU
		if l.percpu {
			own = c
		}
		walk(l.head(c, tActive), tActive, l.mem.Uint32(L.hdr+llActive), own)
		walk(l.head(c, tInactive), tInactive, l.mem.Uint32(L.hdr+llInact), own)
		walk(l.head(c, tFree), tFree, nil, own)
		fresh += *l.mem.Uint32(L.hdr + llFresh)
	}
	if !l.percpu {
		for c := uint32(0); c < l.ncpu; c++ {
			walk(l.pendingHead(c), tLocalPending, nil, c)
			// A local free node's CPU is stale, as in the kernel.
			walk(l.localFreeHead(c), tLocalFree, nil, anyCPU)
		}
	}
	total := fresh
	for i, s := range seen {
		if s > 1 {
			t.Fatalf("node %d on %d lists", i, s)
		}
		if (s == 1) != l.isNode(uint32(i)) {
			t.Fatalf("slot %d: on %d lists, meta %#x", i, s, *l.meta(uint32(i)))
		}
		total += uint32(s)
	}
	if total != l.n {
		t.Fatalf("%d nodes accounted for (%d fresh), want %d", total, fresh, l.n)
	}
	inHash := 0
	for b := uint32(0); b < m.g.nBuckets; b++ {
		for r := *m.mem.Uint32(m.headOff(b)); isElem(r); r = *m.nextOf(m.elem(r)) {
			if !inUse[r-1] {
				t.Fatalf("element %d in bucket %d is not on an LRU in-use list", r, b)
			}
			if *m.hashOf(m.elem(r))&m.mask != b {
				t.Fatalf("element %d in the wrong bucket", r)
			}
			inHash++
		}
	}
	if inHash != len(inUse) || uint32(inHash) != m.Count() {
		t.Fatalf("%d elements in the hash table, %d nodes in use, count %d", inHash, len(inUse), m.Count())
	}
}

// TestLRUConcurrent hammers LRU maps from several goroutines on different
// CPUs (updates with every flag, deletes, both lookups, batch drains) and
// checks that values are never torn and that the structure is whole after.
func TestLRUConcurrent(t *testing.T) {
	for _, typ := range []uapi.MapType{uapi.MapTypeLRUHash, uapi.MapTypeLRUPercpuHash} {
		for _, flags := range []uint32{0, uapi.FNoCommonLRU} {
			for _, vs := range []uint32{8, 24} {
				var cpuN atomic.Int64
				m := newTestLRU(t, typ, flags, 64, vs, func() int { return int(cpuN.Add(1)) })
				val := int(m.copySize)
				var wg sync.WaitGroup
				var torn atomic.Int64
				for w := range 4 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						r := rand.New(rand.NewPCG(uint64(w), 7))
						k := make([]byte, 4)
						v := make([]byte, val)
						keys := make([]byte, 4*256)
						vals := make([]byte, val*256)
						for i := 0; i < 20000; i++ {
							key := uint32(r.IntN(160))
							binary.LittleEndian.PutUint32(k, key)
							switch op := r.IntN(10); {
							case op < 4:
								for j := 0; j+8 <= val; j += 8 {
									binary.LittleEndian.PutUint64(v[j:], uint64(key)<<32|uint64(i))
								}
								_ = m.Update(k, v, uint64(r.IntN(3)))
							case op < 5:
								_ = m.Delete(k)
							case op < 9:
								var err error
								if op < 7 {
									err = m.Lookup(k, v)
								} else {
									err = m.LookupTouch(k, v)
								}
								if err == nil {
									for j := 0; j+8 <= val; j += 8 {
										if binary.LittleEndian.Uint64(v[j:]) != binary.LittleEndian.Uint64(v) || uint32(binary.LittleEndian.Uint64(v)>>32) != key {
											torn.Add(1)
										}
									}
								}
							default:
								b := uint32(r.IntN(int(m.NumBuckets())))
								m.CopyBucket(b, keys, vals, 256, r.IntN(2) == 0)
							}
						}
					}()
				}
				wg.Wait()
				if torn.Load() != 0 {
					t.Errorf("type %d flags %#x vs %d: %d torn or foreign values", typ, flags, vs, torn.Load())
				}
				checkLRU(t, m)
			}
		}
	}
}

// TestLRUPresentKeysAlwaysFound: keys that stay in an LRU map (never
// evicted: the map is far from full) are found by every lock-free lookup
// while writers replace them and churn other keys.
func TestLRUPresentKeysAlwaysFound(t *testing.T) {
	for _, typ := range []uapi.MapType{uapi.MapTypeLRUHash, uapi.MapTypeLRUPercpuHash} {
		var cpuN atomic.Int64
		m := newTestLRU(t, typ, 0, 1024, 8, func() int { return int(cpuN.Add(1)) })
		val := int(m.copySize)
		k := make([]byte, 4)
		v := make([]byte, val)
		for i := uint32(0); i < 32; i++ {
			binary.LittleEndian.PutUint32(k, i)
			if err := m.Update(k, v, 0); err != nil {
				t.Fatal(err)
			}
		}
		var stop atomic.Bool
		var wg sync.WaitGroup
		for w := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				k := make([]byte, 4)
				v := make([]byte, val)
				for i := uint64(1); !stop.Load(); i++ {
					binary.LittleEndian.PutUint32(k, uint32(i*7+uint64(w))%32)
					_ = m.Update(k, v, 0)
					binary.LittleEndian.PutUint32(k, 32+uint32(i)%32)
					_ = m.Delete(k)
					_ = m.Update(k, v, 0)
				}
			}()
		}
		miss := 0
		for i := 0; i < 200000; i++ {
			binary.LittleEndian.PutUint32(k, uint32(i)%32)
			if err := m.Lookup(k, v); err != nil {
				miss++
			}
		}
		stop.Store(true)
		wg.Wait()
		if miss != 0 {
			t.Errorf("type %d: %d lookups of present keys missed", typ, miss)
		}
		checkLRU(t, m)
	}
}

// inLine is the share of the keys whose element sits in their bucket's
// own slot or its mate, where a lookup finds it in the bucket's cache line.
func inLine(t *testing.T, m *Map, keys []uint32) float64 {
	t.Helper()
	k := make([]byte, 4)
	n := 0
	for _, key := range keys {
		binary.LittleEndian.PutUint32(k, key)
		hv := m.hash(k)
		if s, _ := m.atHome(hv&m.mask, hv, k); s != noNode {
			n++
		}
	}
	return float64(n) / float64(len(keys))
}

// TestLRUKeysSitInTheirLine: an LRU_HASH of u32 → u64 puts a key's element
// in its bucket's slot or that slot's mate, in one cache line, whenever one
// of them is free, including a free node on the CPU's local free list; so
// with half as many keys as buckets nearly every key is found in its
// bucket's line, after filling the map and after rewriting every key many
// times over, on one CPU or alternating between two. (A key's own slot
// alone could hold at most 1 - e^-0.5 ≈ 79% of them, the rest colliding;
// two slots per line at most about 90%, 3/e - 1 of the keys finding both
// taken.) Which slots the nodes are is invisible to the
// kernel's lists, which TestLRU* and the lockstep tests compare.
func TestLRUKeysSitInTheirLine(t *testing.T) {
	for _, cpus := range []int{1, 2} {
		cpu := 0
		m := newTestLRU(t, uapi.MapTypeLRUHash, 0, 1280, 8, func() int { return cpu })
		if m.mateBit != 1 {
			t.Fatal("32-byte slots without mates")
		}
		rng := rand.New(rand.NewPCG(1, uint64(cpus)))
		keys := make([]uint32, 1024)
		v := make([]byte, 8)
		k := make([]byte, 4)
		for i := range keys {
			keys[i] = rng.Uint32()
			binary.LittleEndian.PutUint32(k, keys[i])
			if err := m.Update(k, v, uapi.Any); err != nil {
				t.Fatal(err)
			}
		}
		if got := inLine(t, m, keys); got < 0.85 {
			t.Errorf("%d CPUs: %.1f%% of the keys in their bucket's line after the fill, want ≥ 85%%", cpus, 100*got)
		}
		for i := range 20 * len(keys) {
			cpu = i % cpus
			binary.LittleEndian.PutUint32(k, keys[rng.IntN(len(keys))])
			if err := m.Update(k, v, uapi.Any); err != nil {
				t.Fatal(err)
			}
		}
		checkLRU(t, m)
		if m.Count() != uint32(len(keys)) {
			t.Fatalf("%d keys, want %d (nothing to evict)", m.Count(), len(keys))
		}
		if got := inLine(t, m, keys); got < 0.85 {
			t.Errorf("%d CPUs: %.1f%% of the keys in their bucket's line after rewrites, want ≥ 85%%", cpus, 100*got)
		}
	}
}

// TestLRUReleasesOnlyUnlinkedNodes: a node handed back in favour of its
// key's home slot stops being a node, and from then on any process may
// claim its slot for a fresh node, under another lock than the releaser's;
// so it must be on no list by then. Random updates and deletes of keys
// that crowd few buckets, on both CPUs, with and without
// BPF_F_NO_COMMON_LRU, check every release.
func TestLRUReleasesOnlyUnlinkedNodes(t *testing.T) {
	releases := 0
	releaseHook = func(l *lruState, i uint32) {
		releases++
		if p, n := *l.prev(i), *l.next(i); *l.next(p) == i || *l.prev(n) == i {
			t.Fatalf("node %d released while on a list (type %d)", i, l.typ(i))
		}
	}
	defer func() { releaseHook = nil }()
	for _, flags := range []uint32{0, uapi.FNoCommonLRU} {
		cpu := 0
		m := newTestLRU(t, uapi.MapTypeLRUHash, flags, 256, 8, func() int { return cpu })
		r := rand.New(rand.NewPCG(3, uint64(flags)))
		k, v := make([]byte, 4), make([]byte, 8)
		for range 20000 {
			cpu = r.IntN(2)
			binary.LittleEndian.PutUint32(k, uint32(r.IntN(400)))
			if r.IntN(4) == 0 {
				_ = m.Delete(k)
			} else if err := m.Update(k, v, uapi.Any); err != nil {
				t.Fatal(err)
			}
		}
		checkLRU(t, m)
	}
	if releases == 0 {
		t.Fatal("no node was released: the test checks nothing")
	}
}
