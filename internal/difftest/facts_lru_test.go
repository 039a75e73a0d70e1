//go:build linux

package difftest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"syscall"
	"testing"

	"github.com/bpfmap/bpfmap/internal/command"
	"github.com/bpfmap/bpfmap/internal/kbpf"
)

// LRU facts: the kernel's eviction shapes (kernel-semantics.md §5), each
// checked on both sides with every kernel command on CPU 0 (or the CPU a
// step names) and bpfmap's map on the same CPU.

// lruPair creates an LRU map on both sides; bpfmap's operations run on
// *cpu.
func lruPair(t *testing.T, a kbpf.CreateAttr, cpu *int) (k, b target) {
	t.Helper()
	t.Cleanup(pinCPU(t, 0)) // Cleanup runs on this goroutine, after the test
	k, ke := createKernel(&a)
	if ke != 0 {
		t.Fatalf("kernel BPF_MAP_CREATE %s: %s", attrString(&a), errName(ke))
	}
	o := options()
	o.CPU = func() int { return *cpu }
	h, err := command.Create(toCommand(&a), o)
	if err != nil {
		k.close()
		t.Fatalf("bpfmap Create %s: %v", attrString(&a), err)
	}
	b = &bpfmapTarget{h: h}
	t.Cleanup(func() { k.close(); b.close() })
	return k, b
}

// keySet walks the map from NULL and returns its keys (u32 keys) in order.
func keySet(t *testing.T, m target) []uint32 {
	t.Helper()
	var keys []uint32
	var prev []byte
	for range 1 << 20 {
		next := make([]byte, 4)
		if e := m.next(prev, next); e != 0 {
			if e != syscall.ENOENT {
				t.Fatalf("%s GET_NEXT_KEY: %s", m.side(), errName(e))
			}
			return keys
		}
		keys = append(keys, binary.NativeEndian.Uint32(next))
		prev = next
	}
	t.Fatalf("%s: walk did not end", m.side())
	return nil
}

func sortedKeys(t *testing.T, m target) []uint32 {
	k := keySet(t, m)
	slices.Sort(k)
	return k
}

func span(lo, hi uint32) []uint32 {
	var s []uint32
	for i := lo; i < hi; i++ {
		s = append(s, i)
	}
	return s
}

// lruStep runs one update on both sides and compares the errno and the
// complete key walk (in order: ZERO_SEED).
func lruStep(t *testing.T, k, b target, sys int, key uint32, flags uint64) syscall.Errno {
	t.Helper()
	v := make([]byte, sys)
	binary.NativeEndian.PutUint32(v, key*3+1)
	ke, be := k.update(u32(key), bytes.Clone(v), flags), b.update(u32(key), bytes.Clone(v), flags)
	if ke != be {
		t.Fatalf("UPDATE key %d flags %d: kernel %s, bpfmap %s", key, flags, errName(ke), errName(be))
	}
	kk, bk := keySet(t, k), keySet(t, b)
	if !slices.Equal(kk, bk) {
		t.Fatalf("after UPDATE key %d flags %d (%s):\n\tkernel keys %v\n\tbpfmap keys %v", key, flags, errName(ke), kk, bk)
	}
	return ke
}

func TestFactLRUEviction(t *testing.T) {
	kbpf.Need(t)
	if ncpu() != 2 {
		t.Logf("%d possible CPUs: the documented shapes are for 2; comparing kernel and bpfmap only", ncpu())
	}
	for _, typ := range []uint32{tLRU, tLRUPercpu} {
		t.Run(typeName(typ), func(t *testing.T) {
			cpu := 0
			t.Run("max8 9th insert evicts two", func(t *testing.T) {
				a := kbpf.CreateAttr{MapType: typ, KeySize: 4, ValueSize: 8, MaxEntries: 8, MapFlags: fZeroSeed}
				k, b := lruPair(t, a, &cpu)
				sys := sysValueSize(&a)
				for i := uint32(0); i < 9; i++ {
					lruStep(t, k, b, sys, i, updAny)
				}
				if ncpu() == 2 {
					if got := sortedKeys(t, b); !slices.Equal(got, span(2, 9)) {
						t.Errorf("after 9 inserts: keys %v, want 2..8", got)
					}
				}
				for i := uint32(9); i < 30; i++ {
					lruStep(t, k, b, sys, i, updAny)
				}
			})
			t.Run("max1000 keeps 976", func(t *testing.T) {
				a := kbpf.CreateAttr{MapType: typ, KeySize: 4, ValueSize: 8, MaxEntries: 1000, MapFlags: fZeroSeed}
				k, b := lruPair(t, a, &cpu)
				sys := sysValueSize(&a)
				for i := uint32(0); i < 1010; i++ {
					lruStep(t, k, b, sys, i, updAny)
					if i == 999 && ncpu() == 2 {
						if got := sortedKeys(t, b); !slices.Equal(got, span(24, 1000)) {
							t.Errorf("after 1000 inserts: %d keys (want 976, 24..999)", len(got))
						}
					}
				}
			})
			for _, me := range []uint32{1, 2, 3, 4, 5, 16} {
				t.Run(fmt.Sprintf("max%d flags", me), func(t *testing.T) {
					a := kbpf.CreateAttr{MapType: typ, KeySize: 4, ValueSize: 12, MaxEntries: me, MapFlags: fZeroSeed}
					k, b := lruPair(t, a, &cpu)
					sys := sysValueSize(&a)
					for i := uint32(0); i < 3*me+4; i++ {
						lruStep(t, k, b, sys, i, updAny)
						lruStep(t, k, b, sys, i/2, updExist)   // replace (referenced)
						lruStep(t, k, b, sys, i+100, updExist) // missing: ENOENT, may evict
						lruStep(t, k, b, sys, i/3, updNoExist) // EEXIST unless evicted
						lruStep(t, k, b, sys, i+1000, updNoExist)
					}
				})
			}
			t.Run("full map ANY on existing key evicts others", func(t *testing.T) {
				a := kbpf.CreateAttr{MapType: typ, KeySize: 4, ValueSize: 8, MaxEntries: 8, MapFlags: fZeroSeed}
				k, b := lruPair(t, a, &cpu)
				sys := sysValueSize(&a)
				for i := uint32(0); i < 8; i++ {
					lruStep(t, k, b, sys, i, updAny)
				}
				for i := uint32(0); i < 8; i++ {
					lruStep(t, k, b, sys, 7-i, updAny)
				}
			})
			t.Run("NO_COMMON_LRU two CPUs", func(t *testing.T) {
				if ncpu() < 2 {
					t.Skip("needs 2 possible CPUs")
				}
				a := kbpf.CreateAttr{MapType: typ, KeySize: 4, ValueSize: 8, MaxEntries: 7, MapFlags: fZeroSeed | fNoCommonLRU}
				k, b := lruPair(t, a, &cpu)
				sys := sysValueSize(&a)
				for i := uint32(0); i < 8; i++ {
					lruStep(t, k, b, sys, i, updAny)
				}
				if got := sortedKeys(t, b); ncpu() == 2 && !slices.Equal(got, span(4, 8)) {
					t.Errorf("after 8 inserts on CPU 0: keys %v, want 4..7", got)
				}
				func() {
					defer pinCPU(t, 1)()
					cpu = 1
					defer func() { cpu = 0 }()
					for i := uint32(100); i < 104; i++ {
						lruStep(t, k, b, sys, i, updAny)
					}
				}()
				if got := sortedKeys(t, b); ncpu() == 2 && len(got) != 8 {
					t.Errorf("after 4 inserts on CPU 1: keys %v, want 8", got)
				}
				for i := uint32(200); i < 210; i++ {
					lruStep(t, k, b, sys, i, updAny)
				}
			})
			t.Run("common LRU on two CPUs", func(t *testing.T) {
				if ncpu() < 2 {
					t.Skip("needs 2 possible CPUs")
				}
				a := kbpf.CreateAttr{MapType: typ, KeySize: 4, ValueSize: 8, MaxEntries: 16, MapFlags: fZeroSeed}
				k, b := lruPair(t, a, &cpu)
				sys := sysValueSize(&a)
				for i := uint32(0); i < 60; i++ {
					c := int(i/5) % 2
					func() {
						defer pinCPU(t, c)()
						cpu = c
						defer func() { cpu = 0 }()
						lruStep(t, k, b, sys, i, updAny)
						if i%3 == 0 {
							ke, be := k.del(u32(i-1)), b.del(u32(i-1))
							if ke != be {
								t.Fatalf("DELETE %d: kernel %s, bpfmap %s", i-1, errName(ke), errName(be))
							}
						}
					}()
				}
				cpu = 0
			})
		})
	}
}

// TestFactLRUCreate: NO_COMMON_LRU's max_entries rounding as bpf_map_info
// shows it, and 0xffffffff → E2BIG.
func TestFactLRUCreate(t *testing.T) {
	kbpf.Need(t)
	for _, typ := range []uint32{tLRU, tLRUPercpu} {
		for _, me := range []uint32{1, 2, 3, 7, 8, 1001, 0xffffffff, 1<<31 + 1} {
			a := kbpf.CreateAttr{MapType: typ, KeySize: 4, ValueSize: 8, MaxEntries: me, MapFlags: fNoCommonLRU}
			var kmax, bmax uint32
			k, ke := createKernel(&a)
			if ke == 0 {
				ki, _ := kbpf.Info(k.(*kernelTarget).fd)
				kmax = ki.MaxEntries
				k.close()
			}
			h, err := command.Create(toCommand(&a), options())
			be := errnoOf(err)
			if err == nil {
				bi, _ := h.Info()
				bmax = bi.MaxEntries
				_ = h.Close()
			}
			if ke != be || kmax != bmax {
				t.Errorf("%s: kernel %s max_entries %d, bpfmap %s max_entries %d", attrString(&a), errName(ke), kmax, errName(be), bmax)
			}
		}
	}
}
