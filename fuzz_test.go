package bpfmap_test

import (
	"encoding/binary"
	"errors"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/bpfmap/bpfmap"
)

// FuzzOpsAgainstModel drives a hash and an array map with a random sequence
// of operations decoded from the input and checks each result against a
// plain Go model of the kernel's rules (the kernel itself is the model of
// internal/difftest; this one runs anywhere).
func FuzzOpsAgainstModel(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte{1, 1, 1, 1, 0, 0, 0, 3, 3, 3, 2, 2, 4, 4, 5, 5, 6, 6, 7, 7})
	f.Add([]byte("update lookup delete next batch freeze"))
	f.Fuzz(func(t *testing.T, prog []byte) {
		const max = 6
		h, err := bpfmap.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: max})
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		a, err := bpfmap.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: max})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		model := map[uint32]uint64{}
		arr := make([]uint64, max)
		frozen := false
		for i := 0; i+1 < len(prog); i += 2 {
			op, arg := prog[i]%8, prog[i+1]
			k := uint32(arg % (max + 3))
			v := uint64(arg) * 977
			flags := ebpf.MapUpdateFlags(arg>>4) % 4
			switch op {
			case 0, 1: // update
				err := h.Update(k, v, flags)
				_, present := model[k]
				var want error
				switch {
				case frozen:
					want = syscall.EPERM
				case flags > ebpf.UpdateExist:
					want = syscall.EINVAL
				case flags == ebpf.UpdateNoExist && present:
					want = syscall.EEXIST
				case flags == ebpf.UpdateExist && !present:
					want = syscall.ENOENT
				case !present && len(model) >= max:
					want = syscall.E2BIG
				}
				check(t, "hash update", err, want)
				if want == nil {
					model[k] = v
				}
				err = a.Update(k, v, flags)
				want = nil
				switch {
				case flags > ebpf.UpdateExist:
					want = syscall.EINVAL
				case k >= max:
					want = syscall.E2BIG
				case flags == ebpf.UpdateNoExist:
					want = syscall.EEXIST
				}
				check(t, "array update", err, want)
				if want == nil {
					arr[k] = v
				}
			case 2: // lookup
				var got uint64
				err := h.Lookup(k, &got)
				if mv, ok := model[k]; ok {
					check(t, "hash lookup", err, nil)
					if got != mv {
						t.Fatalf("hash lookup %d = %d, model %d", k, got, mv)
					}
				} else {
					check(t, "hash lookup", err, syscall.ENOENT)
				}
				err = a.Lookup(k, &got)
				if k < max {
					check(t, "array lookup", err, nil)
					if got != arr[k] {
						t.Fatalf("array lookup %d = %d, model %d", k, got, arr[k])
					}
				} else {
					check(t, "array lookup", err, syscall.ENOENT)
				}
			case 3: // delete
				err := h.Delete(k)
				_, present := model[k]
				switch {
				case frozen:
					check(t, "hash delete", err, syscall.EPERM)
				case present:
					check(t, "hash delete", err, nil)
					delete(model, k)
				default:
					check(t, "hash delete", err, syscall.ENOENT)
				}
			case 4: // lookup and delete
				var got uint64
				err := h.LookupAndDelete(k, &got)
				mv, present := model[k]
				switch {
				case frozen:
					check(t, "hash lookup and delete", err, syscall.EPERM)
				case present:
					check(t, "hash lookup and delete", err, nil)
					if got != mv {
						t.Fatalf("lookup and delete %d = %d, model %d", k, got, mv)
					}
					delete(model, k)
				default:
					check(t, "hash lookup and delete", err, syscall.ENOENT)
				}
			case 5: // full iteration equals the model
				got := map[uint32]uint64{}
				for kb, vb := range h.All() {
					got[binary.LittleEndian.Uint32(kb)] = binary.LittleEndian.Uint64(vb)
				}
				if len(got) != len(model) {
					t.Fatalf("iteration has %d keys, model %d", len(got), len(model))
				}
				for mk, mv := range model {
					if got[mk] != mv {
						t.Fatalf("iteration %d = %d, model %d", mk, got[mk], mv)
					}
				}
			case 6: // batch update then batch delete of two keys
				keys := []uint32{k, (k + 1) % (max + 3)}
				n, err := h.BatchDelete(keys, nil)
				if frozen {
					// EPERM comes before the kernel touches attr.count, so
					// the count reads back as given (as with cilium/ebpf).
					check(t, "batch delete on a frozen map", err, syscall.EPERM)
					break
				}
				for _, bk := range keys[:n] {
					delete(model, bk)
				}
				if err != nil && !errors.Is(err, syscall.ENOENT) {
					t.Fatalf("batch delete: %v", err)
				}
			case 7:
				if arg == 0xff && !frozen {
					check(t, "freeze", h.Freeze(), nil)
					frozen = true
				}
			}
		}
	})
}

func check(t *testing.T, what string, err, want error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("%s: got %v, want %v", what, err, want)
	}
}

// FuzzMarshalling feeds keys and values of assorted Go types and sizes to
// every operation: the result is an error wrapping EINVAL or a success, never
// a panic, and what the map held before is still there.
func FuzzMarshalling(f *testing.F) {
	f.Add(uint8(0), uint8(0), []byte{1, 2, 3, 4})
	f.Add(uint8(3), uint8(7), []byte{})
	f.Add(uint8(9), uint8(2), []byte{1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Fuzz(func(t *testing.T, kt, vt uint8, raw []byte) {
		for _, typ := range []ebpf.MapType{ebpf.Hash, ebpf.PerCPUArray} {
			m, err := bpfmap.NewMapWithOptions(&ebpf.MapSpec{Type: typ, KeySize: 4, ValueSize: 8, MaxEntries: 4}, bpfmap.MapOptions{PossibleCPUs: 2})
			if err != nil {
				t.Fatal(err)
			}
			sentinel := any(uint64(0x5eed))
			if typ == ebpf.PerCPUArray {
				sentinel = []uint64{0x5eed, 0x5eed}
			}
			if err := m.Put(uint32(1), sentinel); err != nil {
				t.Fatal(err)
			}
			key, val := oddValue(kt, raw), oddValue(vt, raw)
			for _, err := range []error{
				m.Put(key, val), m.Update(key, val, ebpf.UpdateExist), m.Lookup(key, val),
				m.Delete(key), m.LookupAndDelete(key, val), m.NextKey(key, val),
				func() error { _, err := m.BatchLookup(new(bpfmap.MapBatchCursor), key, val, nil); return err }(),
			} {
				if err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) &&
					!errors.Is(err, syscall.E2BIG) && !errors.Is(err, syscall.EEXIST) && !errors.Is(err, bpfmap.ENOTSUPP) &&
					!errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("%v: unexpected error class: %v", typ, err)
				}
			}
			// Batch writes can legitimately reach key 1: they run on a
			// second map, for their error classes only.
			if m2, err := bpfmap.NewMapWithOptions(&ebpf.MapSpec{Type: typ, KeySize: 4, ValueSize: 8, MaxEntries: 4}, bpfmap.MapOptions{PossibleCPUs: 2}); err == nil {
				_, err1 := m2.BatchUpdate(key, val, nil)
				_, err2 := m2.BatchDelete(key, nil)
				for _, err := range []error{err1, err2} {
					if err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) &&
						!errors.Is(err, syscall.E2BIG) && !errors.Is(err, bpfmap.ENOTSUPP) {
						t.Fatalf("%v: batch: unexpected error class: %v", typ, err)
					}
				}
				m2.Close()
			}
			if typ == ebpf.PerCPUArray {
				var per []uint64
				if err := m.Lookup(uint32(1), &per); err != nil {
					t.Fatal(err)
				}
				m.Close()
				continue
			}
			// Key 1 may have been legitimately overwritten or deleted only if
			// the fuzzed key marshalled to 1; otherwise it must be intact.
			var v uint64
			if err := m.Lookup(uint32(1), &v); err == nil && v != 0x5eed {
				if kb, ok := key.([]byte); !ok || len(kb) != 4 || binary.LittleEndian.Uint32(kb) != 1 {
					if p, ok := key.(*uint32); !ok || p == nil || *p != 1 {
						if u, ok := key.(uint32); !ok || u != 1 {
							t.Fatalf("key 1 changed to %#x by key %T", v, key)
						}
					}
				}
			}
			m.Close()
		}
	})
}

type odd struct {
	A uint8
	B uint32
}

// oddValue builds a Go value of some kind from raw bytes.
func oddValue(kind uint8, raw []byte) any {
	u32 := uint32(0)
	if len(raw) >= 4 {
		u32 = binary.LittleEndian.Uint32(raw)
	}
	switch kind % 16 {
	case 0:
		return raw
	case 1:
		return u32
	case 2:
		return &u32
	case 3:
		return nil
	case 4:
		return (*uint32)(nil)
	case 5:
		return "str"
	case 6:
		return map[int]int{}
	case 7:
		return []uint64{uint64(u32)}
	case 8:
		return &odd{A: 1, B: u32}
	case 9:
		return make(chan int)
	case 10:
		return struct{ P *int }{}
	case 11:
		return [4]byte{raw0(raw), 0, 0, 0}
	case 12:
		return []uint32{u32, u32}
	case 13:
		return int(u32)
	case 14:
		return func() {}
	}
	return &[]byte{1}
}

func raw0(b []byte) byte {
	if len(b) == 0 {
		return 0
	}
	return b[0]
}
