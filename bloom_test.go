package bpfmap_test

import (
	"encoding/binary"
	"sync"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/bpfmap/bpfmap"
)

// point is a 6-byte value (jhash over bytes) with a BinaryMarshaler.
type point struct{ x, y, z uint16 }

func (p point) MarshalBinary() ([]byte, error) {
	b := make([]byte, 6)
	binary.NativeEndian.PutUint16(b, p.x)
	binary.NativeEndian.PutUint16(b[2:], p.y)
	binary.NativeEndian.PutUint16(b[4:], p.z)
	return b, nil
}

func TestBloomAPI(t *testing.T) {
	m := newMap(t, &ebpf.MapSpec{Type: ebpf.BloomFilter, ValueSize: 4, MaxEntries: 100, MapExtra: 3})
	info, err := m.Info()
	if err != nil {
		t.Fatal(err)
	}
	if x, _ := info.MapExtra(); x != 3 {
		t.Fatalf("map_extra %d", x)
	}
	if ml, _ := info.Memlock(); ml != 312+64 { // 100×3 → 420 → 512 bits
		t.Fatalf("memlock %d", ml)
	}
	v := uint32(42)
	wantErr(t, "lookup of an absent value", m.Lookup(nil, &v), ebpf.ErrKeyNotExist, syscall.ENOENT)
	if ok, err := m.Contains(v); ok || err != nil {
		t.Fatalf("Contains before push: %v, %v", ok, err)
	}
	wantErr(t, "put", m.Put(nil, v))
	wantErr(t, "push", m.Push(uint32(43)))
	wantErr(t, "push EXIST", m.Update(nil, v, ebpf.UpdateExist), syscall.EINVAL)
	wantErr(t, "push NOEXIST", m.Update(nil, v, ebpf.UpdateNoExist), syscall.EINVAL)
	// The lookup reads v: a pointer, a plain value and bytes all work.
	wantErr(t, "lookup pushed value by pointer", m.Lookup(nil, &v))
	if v != 42 {
		t.Fatalf("lookup changed its input to %d", v)
	}
	wantErr(t, "lookup pushed value by value", m.Lookup(nil, uint32(43)))
	wantErr(t, "lookup pushed value as bytes", m.Lookup(nil, binary.NativeEndian.AppendUint32(nil, 42)))
	wantErr(t, "lookup with flags", m.LookupWithFlags(nil, &v, ebpf.LookupLock), syscall.EINVAL)
	wantErr(t, "lookup nil value", m.Lookup(nil, nil), syscall.EFAULT)
	if ok, err := m.Contains(&v); !ok || err != nil {
		t.Fatalf("Contains after push: %v, %v", ok, err)
	}
	wantErr(t, "peek", m.Peek(&v), syscall.EINVAL)
	wantErr(t, "delete", m.Delete(nil), syscall.EOPNOTSUPP)
	wantErr(t, "next key", m.NextKey(nil, new(uint32)), syscall.EOPNOTSUPP)
	wantErr(t, "lookup and delete", m.LookupAndDelete(nil, &v), bpfmap.ENOTSUPP, ebpf.ErrNotSupported)
	wantErr(t, "pop", m.Pop(&v), bpfmap.ENOTSUPP)

	q := newMap(t, &ebpf.MapSpec{Type: ebpf.Queue, ValueSize: 4, MaxEntries: 1})
	if _, err := q.Contains(uint32(1)); err == nil {
		t.Fatal("Contains on a queue")
	}

	// A 6-byte value through its MarshalBinary.
	p := newMap(t, &ebpf.MapSpec{Type: ebpf.BloomFilter, ValueSize: 6, MaxEntries: 10, Flags: fZeroSeed})
	wantErr(t, "push point", p.Push(point{1, 2, 3}))
	if ok, err := p.Contains(point{1, 2, 3}); !ok || err != nil {
		t.Fatalf("Contains(point): %v, %v", ok, err)
	}
	if ok, err := p.Contains([]byte{1, 0, 2, 0, 3, 0}); !ok || err != nil {
		t.Fatalf("Contains(bytes): %v, %v", ok, err)
	}
}

// TestBloomConcurrentPushes pushes from many goroutines while others peek:
// afterwards every pushed value must be present (no lost bit).
func TestBloomConcurrentPushes(t *testing.T) {
	for _, vs := range []uint32{4, 6, 16} {
		const goroutines, each = 8, 2000
		m := newMap(t, &ebpf.MapSpec{Type: ebpf.BloomFilter, ValueSize: vs, MaxEntries: goroutines * each})
		val := func(n int) []byte {
			b := make([]byte, vs)
			binary.LittleEndian.PutUint32(b, uint32(n)*2654435761)
			b[vs-1] ^= byte(n >> 8)
			return b
		}
		var wg sync.WaitGroup
		for g := 0; g < goroutines; g++ {
			wg.Add(2)
			go func(g int) {
				defer wg.Done()
				for i := 0; i < each; i++ {
					if err := m.Push(val(g*each + i)); err != nil {
						t.Error(err)
						return
					}
				}
			}(g)
			go func(g int) {
				defer wg.Done()
				for i := 0; i < each; i++ {
					if _, err := m.Contains(val(g*each + i)); err != nil {
						t.Error(err)
						return
					}
				}
			}(g)
		}
		wg.Wait()
		for n := 0; n < goroutines*each; n++ {
			if ok, err := m.Contains(val(n)); !ok || err != nil {
				t.Fatalf("value size %d: pushed value %d absent (%v)", vs, n, err)
			}
		}
	}
}

// FuzzBloomModel pushes and tests values against a set model: a pushed
// value is always present; after a freeze pushes fail and nothing changes.
func FuzzBloomModel(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9}, uint8(0), uint8(4))
	f.Add([]byte("push and test some values"), uint8(15), uint8(6))
	f.Fuzz(func(t *testing.T, prog []byte, k, vsb uint8) {
		vs := uint32(vsb%12) + 1
		m, err := bpfmap.NewMap(&ebpf.MapSpec{Type: ebpf.BloomFilter, ValueSize: vs, MaxEntries: 16, MapExtra: uint64(k % 16)})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		pushed := map[string]bool{}
		frozen := false
		for i, c := range prog {
			v := make([]byte, vs)
			v[0] = c >> 2
			v[vs-1] ^= byte(i % 3)
			switch c % 4 {
			case 0, 1:
				err := m.Push(v)
				if frozen {
					check(t, "push frozen", err, syscall.EPERM)
					continue
				}
				check(t, "push", err, nil)
				pushed[string(v)] = true
			case 2:
				ok, err := m.Contains(v)
				check(t, "contains", err, nil)
				if pushed[string(v)] && !ok {
					t.Fatalf("pushed value %x absent", v)
				}
			case 3:
				if c > 240 && !frozen {
					check(t, "freeze", m.Freeze(), nil)
					frozen = true
				}
			}
		}
		for v := range pushed {
			if ok, err := m.Contains([]byte(v)); !ok || err != nil {
				t.Fatalf("pushed value %x absent at the end (%v)", v, err)
			}
		}
	})
}
