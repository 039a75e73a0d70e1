//go:build linux

package difftest

// Differential tests of the memlock figure (/proc/<pid>/fdinfo's
// "memlock:", bpftool's bytes_memlock): every implemented map type in many
// shapes is made on both sides and bpfmap's Info().Memlock must equal the
// kernel's fdinfo. Types whose kernel figure follows the contents (hash
// maps without preallocation, HASH_OF_MAPS without preallocation, LPM
// tries) are compared again after inserts, replacements, a failed insert
// into a full map and deletes; the same sequence runs on preallocated
// hashes, whose figure must not move.

import (
	"encoding/binary"
	"fmt"
	"syscall"
	"testing"

	"github.com/bpfmap/bpfmap/internal/command"
	"github.com/bpfmap/bpfmap/internal/kbpf"
)

// Map-in-map types (tLPMTrie is pin_test.go's, tRingbuf ringbuf_test.go's).
const (
	tArrayOfMaps = 12
	tHashOfMaps  = 13
)

// memlockPair is one map on both sides.
type memlockPair struct {
	t    *testing.T
	a    kbpf.CreateAttr
	kfd  int
	h    *command.Handle
	what string
}

func newMemlockPair(t *testing.T, a kbpf.CreateAttr, kInner int, bInner *command.Handle) *memlockPair {
	t.Helper()
	ka := a
	if kInner >= 0 {
		ka.InnerMapFD = uint32(kInner)
	}
	kfd, ke := kbpf.CreateMap(&ka)
	if ke != 0 {
		t.Fatalf("kernel %s: %s", attrString(&a), errName(ke))
	}
	ca := toCommand(&a)
	ca.InnerMap = bInner
	h, err := command.Create(ca, options())
	if err != nil {
		_ = kbpf.Close(kfd)
		t.Fatalf("bpfmap %s: %v", attrString(&a), err)
	}
	p := &memlockPair{t: t, a: a, kfd: kfd, h: h, what: attrString(&a)}
	t.Cleanup(p.close)
	return p
}

// close closes both sides (once).
func (p *memlockPair) close() {
	if p.kfd >= 0 {
		_ = kbpf.Close(p.kfd)
		_ = p.h.Close()
		p.kfd = -1
	}
}

// check compares the two memlock figures and returns the kernel's; when
// says what was done last.
func (p *memlockPair) check(when string) uint64 {
	p.t.Helper()
	km := fdinfoMemlock(p.t, p.kfd)
	info, err := p.h.Info()
	if err != nil {
		p.t.Fatalf("%s: Info: %v", p.what, err)
	}
	if info.Memlock != km {
		p.t.Errorf("%s %s: memlock kernel %d, bpfmap %d (bpfmap off by %d)",
			p.what, when, km, info.Memlock, int64(info.Memlock)-int64(km))
	}
	return km
}

// both runs one element command on both sides and requires the same errno.
func (p *memlockPair) both(op string, k, b func() syscall.Errno) syscall.Errno {
	p.t.Helper()
	ke, be := k(), b()
	if ke != be {
		p.t.Fatalf("%s %s: kernel %s, bpfmap %s", p.what, op, errName(ke), errName(be))
	}
	return ke
}

// memlockKey is the i-th test key of size n (distinct for i < 256^n).
func memlockKey(n uint32, i int) []byte {
	k := make([]byte, n)
	var w [4]byte
	binary.LittleEndian.PutUint32(w[:], uint32(i)*2654435761)
	for j := range k {
		k[j] = w[j%4] ^ byte(j*7)
	}
	if n < 4 {
		for j := range k {
			k[j] = byte(i >> (8 * j))
		}
	}
	return k
}

// memlockKeys is how many distinct keys memlockKey makes of size n, capped.
func memlockKeys(n uint32, limit int) int {
	if n < 4 && 1<<(8*n) < limit {
		return 1 << (8 * n)
	}
	return limit
}

// TestMemlockStatic compares the memlock figure of freshly created maps of
// every type whose figure depends on the shape only.
func TestMemlockStatic(t *testing.T) {
	kbpf.Need(t)
	var shapes []kbpf.CreateAttr
	kvs := [][2]uint32{{1, 1}, {4, 8}, {5, 13}, {13, 5}, {8, 3}, {64, 64}, {100, 200}, {4, 1000}}
	for _, typ := range []uint32{tHash, tPercpuHash, tLRU, tLRUPercpu} {
		flagSets := []uint32{0}
		if isLRU(typ) {
			flagSets = append(flagSets, fNoCommonLRU)
		} else {
			flagSets = append(flagSets, fNoPrealloc)
		}
		for _, fl := range flagSets {
			for _, kv := range kvs {
				for _, n := range []uint32{1, 3, 16, 17, 100, 1000} {
					shapes = append(shapes, kbpf.CreateAttr{MapType: typ, KeySize: kv[0], ValueSize: kv[1], MaxEntries: n, MapFlags: fl})
				}
			}
		}
	}
	shapes = append(shapes,
		kbpf.CreateAttr{MapType: tHash, KeySize: 4, ValueSize: 8, MaxEntries: 1 << 15},
		kbpf.CreateAttr{MapType: tHash, KeySize: 4, ValueSize: 8, MaxEntries: 1<<15 + 1, MapFlags: fNoPrealloc},
		kbpf.CreateAttr{MapType: tPercpuHash, KeySize: 8, ValueSize: 8, MaxEntries: 5000},
		kbpf.CreateAttr{MapType: tLRU, KeySize: 4, ValueSize: 4, MaxEntries: 20000},
		kbpf.CreateAttr{MapType: tLRU, KeySize: 4, ValueSize: 4, MaxEntries: 20001, MapFlags: fNoCommonLRU},
		kbpf.CreateAttr{MapType: tLRUPercpu, KeySize: 6, ValueSize: 12, MaxEntries: 999, MapFlags: fNoCommonLRU},
		kbpf.CreateAttr{MapType: tHash, KeySize: 4, ValueSize: 8, MaxEntries: 64, MapFlags: fZeroSeed},
		kbpf.CreateAttr{MapType: tHash, KeySize: 4, ValueSize: 8, MaxEntries: 64, MapFlags: fRdonlyProg},
	)
	for _, v := range []uint32{1, 4, 8, 13, 100, 4096, 5000} {
		for _, n := range []uint32{1, 3, 100, 1000} {
			shapes = append(shapes,
				kbpf.CreateAttr{MapType: tArray, KeySize: 4, ValueSize: v, MaxEntries: n},
				kbpf.CreateAttr{MapType: tArray, KeySize: 4, ValueSize: v, MaxEntries: n, MapFlags: fMmapable},
			)
			if v <= 512 {
				shapes = append(shapes, kbpf.CreateAttr{MapType: tPercpuArray, KeySize: 4, ValueSize: v, MaxEntries: n})
			}
		}
	}
	shapes = append(shapes,
		kbpf.CreateAttr{MapType: tArray, KeySize: 4, ValueSize: 8, MaxEntries: 100000},
		kbpf.CreateAttr{MapType: tArray, KeySize: 4, ValueSize: 12, MaxEntries: 5000, MapFlags: fMmapable},
		kbpf.CreateAttr{MapType: tArray, KeySize: 4, ValueSize: 1, MaxEntries: 4097, MapFlags: fMmapable},
		kbpf.CreateAttr{MapType: tArray, KeySize: 4, ValueSize: 8, MaxEntries: 10, MapFlags: fRdonlyProg},
		kbpf.CreateAttr{MapType: tPercpuArray, KeySize: 4, ValueSize: 24, MaxEntries: 4000},
		kbpf.CreateAttr{MapType: tQueue, ValueSize: 1, MaxEntries: 1},
		kbpf.CreateAttr{MapType: tQueue, ValueSize: 13, MaxEntries: 1000},
		kbpf.CreateAttr{MapType: tStack, ValueSize: 8, MaxEntries: 3},
		kbpf.CreateAttr{MapType: tStack, ValueSize: 100, MaxEntries: 5000},
		kbpf.CreateAttr{MapType: tBloom, ValueSize: 4, MaxEntries: 100, MapExtra: 1},
		kbpf.CreateAttr{MapType: tBloom, ValueSize: 13, MaxEntries: 10000, MapExtra: 7},
		kbpf.CreateAttr{MapType: tRingbuf, MaxEntries: 4096},
		kbpf.CreateAttr{MapType: tRingbuf, MaxEntries: 1 << 16},
		kbpf.CreateAttr{MapType: tLPMTrie, KeySize: 5, ValueSize: 1, MaxEntries: 1, MapFlags: fNoPrealloc},
		kbpf.CreateAttr{MapType: tLPMTrie, KeySize: 20, ValueSize: 13, MaxEntries: 10000, MapFlags: fNoPrealloc},
	)
	for _, a := range shapes {
		p := newMemlockPair(t, a, -1, nil)
		p.check("after create")
		p.close()
	}
	t.Logf("%d shapes compared", len(shapes))
}

// TestMemlockHashElements runs inserts, replacements, an insert into a full
// map and deletes on hash maps of every kind and compares memlock after
// each step: maps without preallocation follow their element count,
// preallocated ones stay put.
func TestMemlockHashElements(t *testing.T) {
	kbpf.Need(t)
	defer pinCPU(t, 0)()
	var shapes []kbpf.CreateAttr
	for _, typ := range []uint32{tHash, tPercpuHash} {
		for _, fl := range []uint32{0, fNoPrealloc} {
			for _, kv := range [][2]uint32{{4, 8}, {1, 1}, {5, 13}, {13, 5}, {64, 100}} {
				for _, n := range []uint32{1, 7, 50} {
					shapes = append(shapes, kbpf.CreateAttr{MapType: typ, KeySize: kv[0], ValueSize: kv[1], MaxEntries: n, MapFlags: fl})
				}
			}
		}
	}
	for _, typ := range []uint32{tLRU, tLRUPercpu} {
		for _, fl := range []uint32{0, fNoCommonLRU} {
			shapes = append(shapes,
				kbpf.CreateAttr{MapType: typ, KeySize: 4, ValueSize: 8, MaxEntries: 7, MapFlags: fl},
				kbpf.CreateAttr{MapType: typ, KeySize: 13, ValueSize: 5, MaxEntries: 64, MapFlags: fl},
			)
		}
	}
	for _, a := range shapes {
		p := newMemlockPair(t, a, -1, nil)
		val := make([]byte, p.h.SysValueSize())
		nk := memlockKeys(a.KeySize, int(a.MaxEntries))
		empty := p.check("when empty")
		for i := 0; i < nk; i++ {
			k := memlockKey(a.KeySize, i)
			val[0] = byte(i)
			p.both("insert", func() syscall.Errno { return kbpf.Update(p.kfd, k, val, updNoExist) },
				func() syscall.Errno { return errnoOf(p.h.Update(k, val, updNoExist)) })
			if i == 0 || i == nk/2 {
				p.check(fmt.Sprintf("after %d inserts", i+1))
			}
		}
		full := p.check(fmt.Sprintf("after %d inserts", nk))
		if dynamic := a.MapFlags&fNoPrealloc != 0; dynamic != (full != empty) {
			t.Fatalf("%s: kernel memlock %d empty, %d with %d elements: the test's premise is wrong", p.what, empty, full, nk)
		}
		for i := 0; i < nk; i += 2 {
			k := memlockKey(a.KeySize, i)
			val[0] = byte(i + 1)
			p.both("replace", func() syscall.Errno { return kbpf.Update(p.kfd, k, val, updExist) },
				func() syscall.Errno { return errnoOf(p.h.Update(k, val, updExist)) })
		}
		p.check("after replacements")
		if nk == int(a.MaxEntries) && !isLRU(a.MapType) {
			k := memlockKey(a.KeySize, nk)
			if uint(a.KeySize) >= 4 {
				p.both("insert into a full map", func() syscall.Errno { return kbpf.Update(p.kfd, k, val, updAny) },
					func() syscall.Errno { return errnoOf(p.h.Update(k, val, updAny)) })
				p.check("after a failed insert")
			}
		}
		for i := 0; i < nk; i += 3 {
			k := memlockKey(a.KeySize, i)
			p.both("delete", func() syscall.Errno { return kbpf.Delete(p.kfd, k) },
				func() syscall.Errno { return errnoOf(p.h.Delete(k)) })
		}
		p.check("after deleting a third")
		if !isLRU(a.MapType) {
			k := memlockKey(a.KeySize, 1)
			p.both("lookup and delete", func() syscall.Errno { return kbpf.LookupAndDelete(p.kfd, k, val, 0) },
				func() syscall.Errno { return errnoOf(p.h.LookupAndDelete(k, val, 0)) })
			p.check("after lookup and delete")
		}
		for i := 0; i < nk; i++ {
			k := memlockKey(a.KeySize, i)
			p.both("delete", func() syscall.Errno { return kbpf.Delete(p.kfd, k) },
				func() syscall.Errno { return errnoOf(p.h.Delete(k)) })
		}
		if km := p.check("after deleting all"); km != empty {
			t.Errorf("%s: kernel memlock %d empty, %d after deleting all", p.what, empty, km)
		}
		p.close()
	}
	t.Logf("%d shapes compared", len(shapes))
}

// TestMemlockMapInMap compares ARRAY_OF_MAPS and HASH_OF_MAPS (with and
// without preallocation) as created and as inner maps are inserted,
// replaced and deleted.
func TestMemlockMapInMap(t *testing.T) {
	kbpf.Need(t)
	inner := kbpf.CreateAttr{MapType: tArray, KeySize: 4, ValueSize: 4, MaxEntries: 1}
	kin, ke := kbpf.CreateMap(&inner)
	if ke != 0 {
		t.Fatalf("kernel inner map: %s", errName(ke))
	}
	defer func() { _ = kbpf.Close(kin) }()
	bin, err := command.Create(toCommand(&inner), options())
	if err != nil {
		t.Fatalf("bpfmap inner map: %v", err)
	}
	defer func() { _ = bin.Close() }()
	var shapes []kbpf.CreateAttr
	for _, n := range []uint32{1, 3, 4, 100, 1000} {
		shapes = append(shapes, kbpf.CreateAttr{MapType: tArrayOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: n})
	}
	for _, fl := range []uint32{0, fNoPrealloc} {
		for _, ks := range []uint32{4, 9} {
			for _, n := range []uint32{1, 4, 33, 1000} {
				shapes = append(shapes, kbpf.CreateAttr{MapType: tHashOfMaps, KeySize: ks, ValueSize: 4, MaxEntries: n, MapFlags: fl})
			}
		}
	}
	for _, a := range shapes {
		p := newMemlockPair(t, a, kin, bin)
		p.check("when empty")
		// The kernel waits for an RCU grace period after each update or
		// delete of a map-in-map, so a few elements each.
		nk := min(int(a.MaxEntries), 6)
		kv := make([]byte, 4)
		binary.NativeEndian.PutUint32(kv, uint32(kin))
		keyOf := func(i int) []byte {
			if a.MapType == tArrayOfMaps {
				return binary.LittleEndian.AppendUint32(nil, uint32(i))
			}
			return memlockKey(a.KeySize, i)
		}
		for i := 0; i < nk; i++ {
			k := keyOf(i)
			p.both("insert", func() syscall.Errno { return kbpf.Update(p.kfd, k, kv, updAny) },
				func() syscall.Errno { return errnoOf(p.h.UpdateMap(k, bin, updAny)) })
		}
		p.check(fmt.Sprintf("after %d inserts", nk))
		for i := 0; i < nk; i += 2 {
			k := keyOf(i)
			p.both("replace", func() syscall.Errno { return kbpf.Update(p.kfd, k, kv, updAny) },
				func() syscall.Errno { return errnoOf(p.h.UpdateMap(k, bin, updAny)) })
		}
		p.check("after replacements")
		for i := 0; i < nk; i += 3 {
			k := keyOf(i)
			p.both("delete", func() syscall.Errno { return kbpf.Delete(p.kfd, k) },
				func() syscall.Errno { return errnoOf(p.h.Delete(k)) })
		}
		p.check("after deleting a third")
		p.close()
	}
	t.Logf("%d shapes compared", len(shapes))
}

// lpmKey is an LPM_TRIE key of size n: prefixlen then the data bytes.
func lpmKey(n uint32, plen uint32, data ...byte) []byte {
	k := make([]byte, n)
	binary.NativeEndian.PutUint32(k, plen)
	copy(k[4:], data)
	return k
}

// TestMemlockLPM compares LPM tries as entries come and go: the kernel
// counts entries, not the intermediate nodes that sibling prefixes create.
func TestMemlockLPM(t *testing.T) {
	kbpf.Need(t)
	for _, a := range []kbpf.CreateAttr{
		{MapType: tLPMTrie, KeySize: 5, ValueSize: 1, MaxEntries: 300, MapFlags: fNoPrealloc},
		{MapType: tLPMTrie, KeySize: 8, ValueSize: 8, MaxEntries: 100, MapFlags: fNoPrealloc},
		{MapType: tLPMTrie, KeySize: 20, ValueSize: 13, MaxEntries: 50, MapFlags: fNoPrealloc},
		{MapType: tLPMTrie, KeySize: 7, ValueSize: 300, MaxEntries: 10, MapFlags: fNoPrealloc},
	} {
		p := newMemlockPair(t, a, -1, nil)
		val := make([]byte, a.ValueSize)
		bits := 8 * (a.KeySize - 4)
		var keys [][]byte
		// Sibling prefixes (intermediate nodes on the kernel's side), nested
		// prefixes and a default route.
		keys = append(keys, lpmKey(a.KeySize, 0),
			lpmKey(a.KeySize, 8, 0x81), lpmKey(a.KeySize, 8, 0x82)) // siblings under a /6 node
		for i := 0; i < min(int(a.MaxEntries)-4, 40); i++ {
			plen := uint32(1 + (i*5)%int(bits))
			keys = append(keys, lpmKey(a.KeySize, plen, byte(i*37), byte(i*11), byte(i)))
		}
		p.check("when empty")
		for i, k := range keys {
			val[0] = byte(i)
			p.both("insert", func() syscall.Errno { return kbpf.Update(p.kfd, k, val, updAny) },
				func() syscall.Errno { return errnoOf(p.h.Update(k, val, updAny)) })
		}
		if km := p.check(fmt.Sprintf("after %d updates", len(keys))); km == 0 {
			t.Fatalf("%s: kernel memlock 0 with entries: the test's premise is wrong", p.what)
		}
		for i := 0; i < len(keys); i += 2 {
			k := keys[i]
			p.both("delete", func() syscall.Errno { return kbpf.Delete(p.kfd, k) },
				func() syscall.Errno { return errnoOf(p.h.Delete(k)) })
		}
		p.check("after deleting half")
		p.close()
	}
}
