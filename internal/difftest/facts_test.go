//go:build linux

package difftest

import (
	"bytes"
	"encoding/binary"
	"slices"
	"syscall"
	"testing"

	"github.com/bpfmap/bpfmap/internal/kbpf"
)

// The tests in this file pin known kernel facts (kernel-semantics.md) as
// explicit expectations. Each fact runs twice, as subtests "kernel" and
// "bpfmap", against the same expectation: a failing "kernel" subtest means
// the kernel changed (update the contract), a failing "bpfmap" one is a
// bpfmap bug.

// bothSides creates the map on both sides and runs f on each.
func bothSides(t *testing.T, a kbpf.CreateAttr, f func(t *testing.T, m target)) {
	t.Helper()
	k, b := mustPair(t, a)
	t.Run("kernel", func(t *testing.T) { f(t, k) })
	t.Run("bpfmap", func(t *testing.T) { f(t, b) })
}

func want(t *testing.T, what string, got, want syscall.Errno) bool {
	t.Helper()
	if got != want {
		t.Errorf("%s: got %s, want %s", what, errName(got), errName(want))
		return false
	}
	return true
}

func val8(v uint64) []byte { return binary.NativeEndian.AppendUint64(nil, v) }

// walk32 lists the 4-byte keys GET_NEXT_KEY visits from NULL.
func walk32(m target) ([]uint32, syscall.Errno) {
	var keys []uint32
	var prev []byte
	for len(keys) < 1000 {
		next := make([]byte, 4)
		if e := m.next(prev, next); e != 0 {
			return keys, e
		}
		keys = append(keys, binary.NativeEndian.Uint32(next))
		prev = next
	}
	return keys, 0
}

func wantWalk(t *testing.T, m target, expect []uint32) {
	t.Helper()
	keys, e := walk32(m)
	if e != syscall.ENOENT || !slices.Equal(keys, expect) {
		t.Errorf("GET_NEXT_KEY walk: %v then %s, want %v then ENOENT", keys, errName(e), expect)
	}
}

// kernelBucket returns the bucket of a 4-byte key in a ZERO_SEED HASH with
// 8-byte values and max_entries 8, as the kernel shows it: alone in the map,
// the key is returned by a LOOKUP_BATCH starting at bucket b only if its
// bucket is b or later.
func kernelBucket(t *testing.T, key uint32) uint32 {
	t.Helper()
	fd, e := kbpf.CreateMap(&kbpf.CreateAttr{MapType: tHash, KeySize: 4, ValueSize: 8, MaxEntries: 8, MapFlags: fZeroSeed})
	if e != 0 {
		t.Fatalf("kernel create: %s", errName(e))
	}
	defer kbpf.Close(fd)
	if e := kbpf.Update(fd, u32(key), val8(0), updAny); e != 0 {
		t.Fatalf("kernel update: %s", errName(e))
	}
	bucket := uint32(0)
	for b := uint32(0); b < 8; b++ {
		c, _ := kbpf.Batch(cmdLookupBatch, fd, &kbpf.BatchAttr{InBatch: u32(b), OutBatch: make([]byte, 4), Keys: make([]byte, 4), Values: make([]byte, 8), Count: 1})
		if c == 1 {
			bucket = b
		}
	}
	return bucket
}

func TestFactChainOrder(t *testing.T) {
	kbpf.Need(t)
	// Find (in the kernel) the three smallest keys sharing a bucket of a
	// ZERO_SEED hash with 8 buckets.
	byBucket := map[uint32][]uint32{}
	var chain []uint32
	for k := uint32(0); k < 256 && chain == nil; k++ {
		b := kernelBucket(t, k)
		byBucket[b] = append(byBucket[b], k)
		if len(byBucket[b]) == 3 {
			chain = byBucket[b]
		}
	}
	if chain == nil {
		t.Fatal("no three keys below 256 share a bucket")
	}
	a, b, c := chain[0], chain[1], chain[2]
	t.Logf("keys %d, %d, %d share a bucket (kernel)", a, b, c)
	// A new element goes to the head of its chain: inserting a, b, c gives
	// the chain c, b, a. Replacing a HASH element moves it to the front.
	t.Run("HASH update moves to front", func(t *testing.T) {
		bothSides(t, kbpf.CreateAttr{MapType: tHash, KeySize: 4, ValueSize: 8, MaxEntries: 8, MapFlags: fZeroSeed},
			func(t *testing.T, m target) {
				for _, k := range chain {
					want(t, "update", m.update(u32(k), val8(uint64(k)), updAny), 0)
				}
				wantWalk(t, m, []uint32{c, b, a})
				want(t, "update first-inserted key", m.update(u32(a), val8(100), updAny), 0)
				wantWalk(t, m, []uint32{a, c, b})
				want(t, "update EXIST", m.update(u32(b), val8(101), updExist), 0)
				wantWalk(t, m, []uint32{b, a, c})
				// A whole bucket that does not fit into an empty page.
				c2, e := m.batch(cmdLookupBatch, &batchArgs{out: make([]byte, 4), keys: make([]byte, 8), values: make([]byte, 16), count: 2})
				if e != syscall.ENOSPC || c2 != 0 {
					t.Errorf("LOOKUP_BATCH count=2 over a 3-element bucket: %s count=%d, want ENOSPC count=0", errName(e), c2)
				}
				// Deleting the current key restarts the walk.
				n := make([]byte, 4)
				want(t, "delete", m.del(u32(a)), 0)
				if want(t, "get_next_key of a deleted key", m.next(u32(a), n), 0) && binary.NativeEndian.Uint32(n) != b {
					t.Errorf("get_next_key of a deleted key returned %d, want the first key %d", binary.NativeEndian.Uint32(n), b)
				}
			})
	})
	t.Run("PERCPU_HASH updates in place", func(t *testing.T) {
		bothSides(t, kbpf.CreateAttr{MapType: tPercpuHash, KeySize: 4, ValueSize: 8, MaxEntries: 8, MapFlags: fZeroSeed},
			func(t *testing.T, m target) {
				v := make([]byte, 8*ncpu())
				for _, k := range chain {
					want(t, "update", m.update(u32(k), v, updAny), 0)
				}
				wantWalk(t, m, []uint32{c, b, a})
				want(t, "update first-inserted key", m.update(u32(a), v, updAny), 0)
				wantWalk(t, m, []uint32{c, b, a})
			})
	})
}

// batchPage is one batch call's visible result.
type batchPage struct {
	count uint32
	errno syscall.Errno
	out   []byte
	keys  []byte
}

// hashPages pages through m with LOOKUP_BATCH count n (4-byte keys, 8-byte
// values) until an error.
func hashPages(m target, n uint32) []batchPage {
	var pages []batchPage
	var in []byte
	for i := 0; i < 20; i++ {
		out := make([]byte, 4)
		keys := make([]byte, 4*n)
		vals := make([]byte, 8*n)
		c, e := m.batch(cmdLookupBatch, &batchArgs{in: in, out: out, keys: keys, values: vals, count: n})
		pages = append(pages, batchPage{count: c, errno: e, out: out, keys: keys[:4*min(c, n)]})
		if e != 0 {
			break
		}
		in = out
	}
	return pages
}

func TestFactHashBatchPages(t *testing.T) {
	kbpf.Need(t)
	// Documented example: 8 buckets, 6 keys, count 2 → pages of 2, 2, 2
	// with out_batch 2, 6 and 8, the last one with ENOENT. The keys are not
	// documented: find a 6-key set for which the kernel shows exactly this,
	// then bpfmap must page the same set identically.
	a := kbpf.CreateAttr{MapType: tHash, KeySize: 4, ValueSize: 8, MaxEntries: 8, MapFlags: fZeroSeed}
	k, b := mustPair(t, a)
	wantShape := []struct {
		count uint32
		errno syscall.Errno
		out   uint32
	}{{2, 0, 2}, {2, 0, 6}, {2, syscall.ENOENT, 8}}
	matches := func(p []batchPage) bool {
		if len(p) != len(wantShape) {
			return false
		}
		for i, w := range wantShape {
			if p[i].count != w.count || p[i].errno != w.errno || binary.NativeEndian.Uint32(p[i].out) != w.out {
				return false
			}
		}
		return true
	}
	var found []uint32
	for s := uint32(0); s < 2000 && found == nil; s++ {
		keys := []uint32{s, s + 1, s + 2, s + 3, s + 4, s + 5}
		for _, key := range keys {
			if e := k.update(u32(key), val8(uint64(key)), updAny); e != 0 {
				t.Fatalf("kernel update: %s", errName(e))
			}
		}
		if matches(hashPages(k, 2)) {
			found = keys
			break
		}
		for _, key := range keys {
			_ = k.del(u32(key))
		}
	}
	if found == nil {
		t.Fatal("kernel: no set of 6 consecutive keys pages as 2/2/2 with out_batch 2, 6, 8 (ENOENT last)")
	}
	t.Logf("keys %v page as documented in the kernel", found)
	for _, key := range found {
		if e := b.update(u32(key), val8(uint64(key)), updAny); e != 0 {
			t.Fatalf("bpfmap update: %s", errName(e))
		}
	}
	kp, bp := hashPages(k, 2), hashPages(b, 2)
	if len(kp) != len(bp) {
		t.Fatalf("kernel %d pages, bpfmap %d pages", len(kp), len(bp))
	}
	for i := range kp {
		if kp[i].count != bp[i].count || kp[i].errno != bp[i].errno || !bytes.Equal(kp[i].out, bp[i].out) || !bytes.Equal(kp[i].keys, bp[i].keys) {
			t.Errorf("page %d: kernel count=%d %s out=%x keys=%x; bpfmap count=%d %s out=%x keys=%x", i,
				kp[i].count, errName(kp[i].errno), kp[i].out, kp[i].keys, bp[i].count, errName(bp[i].errno), bp[i].out, bp[i].keys)
		}
	}
}

func TestFactArrayBatchPages(t *testing.T) {
	kbpf.Need(t)
	bothSides(t, kbpf.CreateAttr{MapType: tArray, KeySize: 4, ValueSize: 8, MaxEntries: 5}, func(t *testing.T, m target) {
		type page struct {
			in    []byte
			count uint32
			errno syscall.Errno
			out   uint32 // 0xeeeeeeee: untouched
			keys  []uint32
		}
		untouched := uint32(0xeeeeeeee)
		for _, p := range []page{
			{nil, 2, 0, 1, []uint32{0, 1}},
			{u32(1), 2, 0, 3, []uint32{2, 3}},
			{u32(3), 1, syscall.ENOENT, 4, []uint32{4}},
			{u32(4), 0, syscall.ENOENT, untouched, nil},
			{u32(7), 2, 0, 1, []uint32{0, 1}},
			{u32(0xffffffff), 2, 0, 1, []uint32{0, 1}},
		} {
			out := bytes.Repeat([]byte{0xee}, 4)
			keys := make([]byte, 8)
			vals := make([]byte, 16)
			c, e := m.batch(cmdLookupBatch, &batchArgs{in: p.in, out: out, keys: keys, values: vals, count: 2})
			var got []uint32
			for i := uint32(0); i < c && i < 2; i++ {
				got = append(got, binary.NativeEndian.Uint32(keys[4*i:]))
			}
			if c != p.count || e != p.errno || binary.NativeEndian.Uint32(out) != p.out || !slices.Equal(got, p.keys) {
				t.Errorf("LOOKUP_BATCH in_batch=%s count=2: got count=%d %s out=%#x keys=%v, want count=%d %s out=%#x keys=%v",
					hx(p.in), c, errName(e), binary.NativeEndian.Uint32(out), got, p.count, errName(p.errno), p.out, p.keys)
			}
		}
	})
}

func TestFactFreeze(t *testing.T) {
	kbpf.Need(t)
	for _, typ := range allTypes {
		t.Run(typeName(typ), func(t *testing.T) {
			a := baseAttr(typ)
			sys := sysValueSize(&a)
			bothSides(t, a, func(t *testing.T, m target) {
				want(t, "update before freeze", m.update(u32(1), make([]byte, sys), updAny), 0)
				want(t, "freeze", m.freeze(), 0)
				want(t, "second freeze", m.freeze(), syscall.EPERM)
				want(t, "update after freeze", m.update(u32(1), make([]byte, sys), updAny), syscall.EPERM)
				want(t, "delete after freeze", m.del(u32(1)), syscall.EPERM)
				want(t, "lookup after freeze", m.lookup(u32(1), make([]byte, sys), 0), 0)
				_, e := m.batch(cmdUpdateBatch, &batchArgs{keys: u32(1), values: make([]byte, sys), count: 1})
				want(t, "update batch after freeze", e, syscall.EPERM)
			})
		})
	}
	t.Run("RDONLY fd", func(t *testing.T) {
		a := baseAttr(tHash)
		a.MapFlags = fRdonly
		bothSides(t, a, func(t *testing.T, m target) {
			want(t, "freeze", m.freeze(), syscall.EPERM)
			want(t, "update", m.update(u32(1), make([]byte, 8), updAny), syscall.EPERM)
			want(t, "lookup", m.lookup(u32(1), make([]byte, 8), 0), syscall.ENOENT)
		})
	})
	t.Run("WRONLY fd", func(t *testing.T) {
		a := baseAttr(tHash)
		a.MapFlags = fWronly
		bothSides(t, a, func(t *testing.T, m target) {
			want(t, "update", m.update(u32(1), make([]byte, 8), updAny), 0)
			want(t, "lookup", m.lookup(u32(1), make([]byte, 8), 0), syscall.EPERM)
			want(t, "get_next_key", m.next(nil, make([]byte, 4)), syscall.EPERM)
			want(t, "lookup_and_delete", m.lookupAndDelete(u32(1), make([]byte, 8), 0), syscall.EPERM)
			want(t, "freeze", m.freeze(), 0)
		})
	})
}

func TestFactHashCapacity(t *testing.T) {
	kbpf.Need(t)
	for _, typ := range []uint32{tHash, tPercpuHash} {
		for _, flags := range []uint32{0, fNoPrealloc} {
			a := kbpf.CreateAttr{MapType: typ, KeySize: 4, ValueSize: 8, MaxEntries: 4, MapFlags: flags}
			t.Run(attrString(&a), func(t *testing.T) {
				sys := sysValueSize(&a)
				v := make([]byte, sys)
				bothSides(t, a, func(t *testing.T, m target) {
					for k := uint32(0); k < 4; k++ {
						want(t, "fill", m.update(u32(k), v, updAny), 0)
					}
					want(t, "new key ANY when full", m.update(u32(4), v, updAny), syscall.E2BIG)
					want(t, "new key NOEXIST when full", m.update(u32(4), v, updNoExist), syscall.E2BIG)
					want(t, "new key EXIST when full", m.update(u32(4), v, updExist), syscall.ENOENT)
					want(t, "existing key NOEXIST", m.update(u32(1), v, updNoExist), syscall.EEXIST)
					want(t, "replace ANY when full", m.update(u32(1), v, updAny), 0)
					want(t, "replace EXIST when full", m.update(u32(2), v, updExist), 0)
					want(t, "delete", m.del(u32(0)), 0)
					want(t, "delete again", m.del(u32(0)), syscall.ENOENT)
					want(t, "new key after delete", m.update(u32(4), v, updNoExist), 0)
					want(t, "full again", m.update(u32(5), v, updAny), syscall.E2BIG)
				})
			})
		}
	}
}

func TestFactGenericBatches(t *testing.T) {
	kbpf.Need(t)
	t.Run("UPDATE_BATCH HASH max 3, 5 items", func(t *testing.T) {
		bothSides(t, kbpf.CreateAttr{MapType: tHash, KeySize: 4, ValueSize: 8, MaxEntries: 3}, func(t *testing.T, m target) {
			var keys, vals []byte
			for k := uint32(10); k < 15; k++ {
				keys = append(keys, u32(k)...)
				vals = append(vals, val8(uint64(k))...)
			}
			c, e := m.batch(cmdUpdateBatch, &batchArgs{keys: keys, values: vals, count: 5})
			if e != syscall.E2BIG || c != 3 {
				t.Errorf("got %s count=%d, want E2BIG count=3", errName(e), c)
			}
			want(t, "lookup key 12 (third)", m.lookup(u32(12), make([]byte, 8), 0), 0)
			want(t, "lookup key 13 (fourth)", m.lookup(u32(13), make([]byte, 8), 0), syscall.ENOENT)
		})
	})
	t.Run("UPDATE_BATCH ARRAY max 5, 6 items", func(t *testing.T) {
		bothSides(t, kbpf.CreateAttr{MapType: tArray, KeySize: 4, ValueSize: 8, MaxEntries: 5}, func(t *testing.T, m target) {
			var keys, vals []byte
			for k := uint32(0); k < 6; k++ {
				keys = append(keys, u32(k)...)
				vals = append(vals, val8(uint64(k))...)
			}
			c, e := m.batch(cmdUpdateBatch, &batchArgs{keys: keys, values: vals, count: 6})
			if e != syscall.E2BIG || c != 5 {
				t.Errorf("got %s count=%d, want E2BIG count=5", errName(e), c)
			}
		})
	})
	t.Run("DELETE_BATCH [1,42,2]", func(t *testing.T) {
		bothSides(t, kbpf.CreateAttr{MapType: tHash, KeySize: 4, ValueSize: 8, MaxEntries: 8}, func(t *testing.T, m target) {
			for _, k := range []uint32{1, 2, 3} {
				want(t, "update", m.update(u32(k), val8(uint64(k)), updAny), 0)
			}
			keys := slices.Concat(u32(1), u32(42), u32(2))
			c, e := m.batch(cmdDeleteBatch, &batchArgs{keys: keys, count: 3})
			if e != syscall.ENOENT || c != 1 {
				t.Errorf("got %s count=%d, want ENOENT count=1", errName(e), c)
			}
			want(t, "lookup 1", m.lookup(u32(1), make([]byte, 8), 0), syscall.ENOENT)
			want(t, "lookup 2", m.lookup(u32(2), make([]byte, 8), 0), 0)
		})
	})
	t.Run("flags", func(t *testing.T) {
		bothSides(t, kbpf.CreateAttr{MapType: tHash, KeySize: 4, ValueSize: 8, MaxEntries: 8}, func(t *testing.T, m target) {
			out := make([]byte, 4)
			keys, vals := make([]byte, 32), make([]byte, 64)
			_, e := m.batch(cmdLookupBatch, &batchArgs{out: out, keys: keys, values: vals, count: 8, flags: 1})
			want(t, "hash LOOKUP_BATCH flags=1", e, syscall.EINVAL)
			_, e = m.batch(cmdUpdateBatch, &batchArgs{keys: u32(1), values: val8(1), count: 1, flags: 1})
			want(t, "generic UPDATE_BATCH flags=1", e, 0)
			_, e = m.batch(cmdUpdateBatch, &batchArgs{keys: u32(1), values: val8(1), count: 1, elemFlags: updNoExist})
			want(t, "UPDATE_BATCH elem_flags=NOEXIST", e, syscall.EINVAL)
			_, e = m.batch(cmdUpdateBatch, &batchArgs{keys: u32(1), values: val8(1), count: 1, elemFlags: fLock})
			want(t, "UPDATE_BATCH elem_flags=F_LOCK without spin lock", e, syscall.EINVAL)
			c, e := m.batch(cmdLookupBatch, &batchArgs{count: 0, flags: 0})
			if e != 0 || c != 0 {
				t.Errorf("LOOKUP_BATCH count=0 with NULL buffers: %s count=%d, want OK count=0", errName(e), c)
			}
		})
	})
}

func TestFactElementRules(t *testing.T) {
	kbpf.Need(t)
	t.Run("HASH NULL buffers and flags", func(t *testing.T) {
		bothSides(t, kbpf.CreateAttr{MapType: tHash, KeySize: 4, ValueSize: 8, MaxEntries: 8}, func(t *testing.T, m target) {
			want(t, "lookup missing key, NULL value", m.lookup(u32(1), nil, 0), syscall.ENOENT)
			want(t, "update NULL value", m.update(u32(1), nil, updAny), syscall.EFAULT)
			want(t, "update flags=3", m.update(u32(1), val8(1), 3), syscall.EINVAL)
			want(t, "update flags=1<<32", m.update(u32(1), val8(1), 1<<32), syscall.EINVAL)
			want(t, "update F_LOCK", m.update(u32(1), val8(1), fLock), syscall.EINVAL)
			want(t, "update", m.update(u32(1), val8(1), updAny), 0)
			want(t, "lookup present key, NULL value", m.lookup(u32(1), nil, 0), syscall.EFAULT)
			want(t, "lookup F_LOCK", m.lookup(u32(1), make([]byte, 8), fLock), syscall.EINVAL)
			want(t, "lookup flags=1", m.lookup(u32(1), make([]byte, 8), 1), syscall.EINVAL)
			want(t, "lookup NULL key", m.lookup(nil, make([]byte, 8), 0), syscall.EFAULT)
			want(t, "lookup_and_delete NULL value", m.lookupAndDelete(u32(1), nil, 0), syscall.EFAULT)
			want(t, "lookup after lookup_and_delete with NULL value", m.lookup(u32(1), make([]byte, 8), 0), syscall.ENOENT)
			want(t, "get_next_key on empty map", m.next(nil, make([]byte, 4)), syscall.ENOENT)
			want(t, "get_next_key NULL next_key, empty map", m.next(nil, nil), syscall.ENOENT)
			want(t, "update", m.update(u32(2), val8(2), updAny), 0)
			want(t, "get_next_key NULL next_key", m.next(nil, nil), syscall.EFAULT)
			want(t, "get_next_key of the last key, NULL next_key", m.next(u32(2), nil), syscall.ENOENT)
		})
	})
	t.Run("ARRAY", func(t *testing.T) {
		bothSides(t, kbpf.CreateAttr{MapType: tArray, KeySize: 4, ValueSize: 8, MaxEntries: 4}, func(t *testing.T, m target) {
			v := make([]byte, 8)
			want(t, "lookup index 3", m.lookup(u32(3), v, 0), 0)
			want(t, "lookup index 4", m.lookup(u32(4), v, 0), syscall.ENOENT)
			want(t, "update NOEXIST", m.update(u32(0), v, updNoExist), syscall.EEXIST)
			want(t, "update index 4", m.update(u32(4), v, updAny), syscall.E2BIG)
			want(t, "update index 4 flags=3", m.update(u32(4), v, 3), syscall.EINVAL)
			want(t, "delete", m.del(u32(0)), syscall.EINVAL)
			want(t, "lookup_and_delete", m.lookupAndDelete(u32(0), v, 0), eNOTSUPP)
			_, e := m.batch(cmdDeleteBatch, &batchArgs{keys: u32(0), count: 1})
			want(t, "DELETE_BATCH", e, eNOTSUPP)
			_, e = m.batch(cmdLookupAndDeleteBatch, &batchArgs{out: make([]byte, 4), keys: make([]byte, 4), values: v, count: 1})
			want(t, "LOOKUP_AND_DELETE_BATCH", e, eNOTSUPP)
			for _, c := range []struct {
				key  []byte
				next uint32
				e    syscall.Errno
			}{{nil, 0, 0}, {u32(0), 1, 0}, {u32(2), 3, 0}, {u32(3), 0, syscall.ENOENT}, {u32(4), 0, 0}, {u32(0xffffffff), 0, 0}} {
				n := make([]byte, 4)
				e := m.next(c.key, n)
				if e != c.e || (e == 0 && binary.NativeEndian.Uint32(n) != c.next) {
					t.Errorf("get_next_key(%s): %s %x, want %s %d", hx(c.key), errName(e), n, errName(c.e), c.next)
				}
			}
		})
	})
	for _, typ := range []uint32{tPercpuArray, tPercpuHash} {
		a := kbpf.CreateAttr{MapType: typ, KeySize: 4, ValueSize: 5, MaxEntries: 4}
		t.Run(typeName(typ)+" padding round-trips", func(t *testing.T) {
			bothSides(t, a, func(t *testing.T, m target) {
				sys := 8 * ncpu()
				v := make([]byte, sys)
				for i := range v {
					v[i] = byte(0x11 * (i + 1))
				}
				want(t, "update", m.update(u32(1), v, updAny), 0)
				got := make([]byte, sys)
				if want(t, "lookup", m.lookup(u32(1), got, 0), 0) && !bytes.Equal(got, v) {
					t.Errorf("lookup returned %x, want %x (all %d bytes, padding included)", got, v, sys)
				}
				if typ == tPercpuArray {
					got := bytes.Repeat([]byte{0xff}, sys)
					if want(t, "lookup never-written index", m.lookup(u32(2), got, 0), 0) && !bytes.Equal(got, make([]byte, sys)) {
						t.Errorf("never-written element reads %x, want zeros", got)
					}
				}
			})
		})
	}
}

// TestFactBatchFaultAfterKeys pins what a batch lookup leaves in user memory
// when the values pointer faults: the kernel copies the keys of the first
// bucket (hash) or the first key (generic) before it faults on the values,
// returns EFAULT and leaves count at 0.
func TestFactBatchFaultAfterKeys(t *testing.T) {
	kbpf.Need(t)
	t.Run("ARRAY", func(t *testing.T) {
		bothSides(t, kbpf.CreateAttr{MapType: tArray, KeySize: 4, ValueSize: 8, MaxEntries: 2}, func(t *testing.T, m target) {
			keys := bytes.Repeat([]byte{0xee}, 8)
			out := bytes.Repeat([]byte{0xee}, 4)
			c, e := m.batch(cmdLookupBatch, &batchArgs{out: out, keys: keys, values: nil, count: 2})
			want(t, "LOOKUP_BATCH values=NULL", e, syscall.EFAULT)
			wantKeys := []byte{0, 0, 0, 0, 0xee, 0xee, 0xee, 0xee}
			if c != 0 || !bytes.Equal(keys, wantKeys) || !bytes.Equal(out, []byte{0xee, 0xee, 0xee, 0xee}) {
				t.Errorf("count=%d keys=%x out_batch=%x, want count=0 keys=%x out_batch untouched", c, keys, out, wantKeys)
			}
		})
	})
	t.Run("HASH", func(t *testing.T) {
		bothSides(t, kbpf.CreateAttr{MapType: tHash, KeySize: 4, ValueSize: 8, MaxEntries: 1, MapFlags: fZeroSeed}, func(t *testing.T, m target) {
			want(t, "update", m.update(u32(7), val8(7), updAny), 0)
			keys := bytes.Repeat([]byte{0xee}, 8)
			out := bytes.Repeat([]byte{0xee}, 4)
			c, e := m.batch(cmdLookupAndDeleteBatch, &batchArgs{out: out, keys: keys, values: nil, count: 2})
			want(t, "LOOKUP_AND_DELETE_BATCH values=NULL", e, syscall.EFAULT)
			wantKeys := []byte{7, 0, 0, 0, 0xee, 0xee, 0xee, 0xee}
			if c != 0 || !bytes.Equal(keys, wantKeys) || !bytes.Equal(out, []byte{0xee, 0xee, 0xee, 0xee}) {
				t.Errorf("count=%d keys=%x out_batch=%x, want count=0 keys=%x out_batch untouched", c, keys, out, wantKeys)
			}
			want(t, "the faulting bucket was deleted", m.lookup(u32(7), make([]byte, 8), 0), syscall.ENOENT)
		})
	})
}

// TestFactNumaNoNode pins that numa_node = NUMA_NO_NODE (-1) with
// BPF_F_NUMA_NODE means "no node": every type accepts it, even the per-CPU
// ones that reject any real node, and the flag stays in map_flags.
func TestFactNumaNoNode(t *testing.T) {
	kbpf.Need(t)
	for _, typ := range allTypes {
		t.Run(typeName(typ), func(t *testing.T) {
			a := baseAttr(typ)
			a.MapFlags, a.NumaNode = fNumaNode, 0xffffffff
			k, ke := createKernel(&a)
			if ke == 0 {
				k.close()
			}
			b, be, err := createBpfmap(&a)
			if be == 0 {
				b.close()
			}
			t.Run("kernel", func(t *testing.T) { want(t, "create", ke, 0) })
			t.Run("bpfmap", func(t *testing.T) {
				if !want(t, "create", be, 0) {
					t.Logf("bpfmap error: %v", err)
				}
			})
		})
	}
}
