package bpfmap_test

import (
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/bpfmap/bpfmap"
)

func TestQueueStackAPI(t *testing.T) {
	for _, typ := range []ebpf.MapType{ebpf.Queue, ebpf.Stack} {
		t.Run(typ.String(), func(t *testing.T) {
			m := newMap(t, &ebpf.MapSpec{Type: typ, ValueSize: 4, MaxEntries: 3})
			var v uint32
			wantErr(t, "peek empty", m.Peek(&v), ebpf.ErrKeyNotExist, syscall.ENOENT)
			wantErr(t, "pop empty", m.Pop(&v), ebpf.ErrKeyNotExist, syscall.ENOENT)
			wantErr(t, "put", m.Put(nil, uint32(1)))
			wantErr(t, "update", m.Update(nil, uint32(2), ebpf.UpdateAny))
			wantErr(t, "push", m.Push(uint32(3)))
			wantErr(t, "push into full", m.Push(uint32(4)), syscall.E2BIG)
			wantErr(t, "push NOEXIST", m.Update(nil, uint32(4), ebpf.UpdateNoExist), syscall.EINVAL)
			wantErr(t, "push EXIST into full", m.Update(nil, uint32(4), ebpf.UpdateExist))
			wantErr(t, "non-nil key", m.Put(uint32(0), uint32(4)), syscall.EINVAL)
			wantErr(t, "delete", m.Delete(nil), syscall.EINVAL)
			wantErr(t, "next key", m.NextKey(nil, new(uint32)), syscall.EINVAL)
			want := []uint32{2, 3, 4}
			if typ == ebpf.Stack {
				want = []uint32{4, 3, 2}
			}
			wantErr(t, "peek", m.Lookup(nil, &v))
			if v != want[0] {
				t.Fatalf("peek = %d, want %d", v, want[0])
			}
			b, err := m.LookupBytes(nil)
			if err != nil {
				t.Fatal(err)
			}
			if err != nil || binary.NativeEndian.Uint32(b) != want[0] {
				t.Fatalf("LookupBytes = %x, %v", b, err)
			}
			for i, w := range want {
				if i == 0 {
					wantErr(t, "pop", m.LookupAndDelete(nil, &v))
				} else {
					wantErr(t, "pop", m.Pop(&v))
				}
				if v != w {
					t.Fatalf("pop %d = %d, want %d", i, v, w)
				}
			}
			v = 77
			wantErr(t, "pop drained", m.Pop(&v), ebpf.ErrKeyNotExist)
			if v != 77 {
				t.Fatalf("failed pop wrote %d", v)
			}
			wantErr(t, "push", m.Push(uint32(5)))
			wantErr(t, "freeze", m.Freeze())
			wantErr(t, "push frozen", m.Push(uint32(6)), syscall.EPERM)
			wantErr(t, "pop frozen", m.Pop(&v), syscall.EPERM)
			wantErr(t, "peek frozen", m.Peek(&v))
			if v != 5 {
				t.Fatalf("peek = %d, want 5", v)
			}
			info, err := m.Info()
			if err != nil || info.KeySize != 0 || info.MaxEntries != 3 {
				t.Fatalf("info %+v, %v", info, err)
			}
			if ml, _ := info.Memlock(); ml != 312+4*4 {
				t.Fatalf("memlock %d", ml)
			}
		})
	}
}

func TestQueueSpecContents(t *testing.T) {
	m := newMap(t, &ebpf.MapSpec{Type: ebpf.Queue, ValueSize: 8, MaxEntries: 4,
		Contents: []ebpf.MapKV{{Key: nil, Value: uint64(10)}, {Key: nil, Value: uint64(20)}}})
	var v uint64
	wantErr(t, "pop", m.Pop(&v))
	if v != 10 {
		t.Fatalf("pop = %d", v)
	}
}

// TestQueueStackConcurrent has producers push distinct numbered elements
// and consumers pop until all are seen: every element must come out exactly
// once, and a stack or queue never holds more than max_entries.
func TestQueueStackConcurrent(t *testing.T) {
	for _, typ := range []ebpf.MapType{ebpf.Queue, ebpf.Stack} {
		t.Run(typ.String(), func(t *testing.T) {
			const producers, consumers, each, max = 4, 4, 5000, 64
			m := newMap(t, &ebpf.MapSpec{Type: typ, ValueSize: 16, MaxEntries: max})
			seen := make([]atomic.Int32, producers*each)
			var popped atomic.Int64
			var wg sync.WaitGroup
			errc := make(chan error, producers+consumers)
			for p := 0; p < producers; p++ {
				wg.Add(1)
				go func(p int) {
					defer wg.Done()
					for i := 0; i < each; {
						n := uint64(p*each + i)
						err := m.Push([2]uint64{n, ^n})
						if errors.Is(err, syscall.E2BIG) {
							continue // full: retry
						}
						if err != nil {
							errc <- err
							return
						}
						i++
					}
				}(p)
			}
			for c := 0; c < consumers; c++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for popped.Load() < producers*each {
						var v [2]uint64
						err := m.Pop(&v)
						if errors.Is(err, ebpf.ErrKeyNotExist) {
							continue
						}
						if err != nil {
							errc <- err
							return
						}
						if v[1] != ^v[0] || v[0] >= producers*each {
							errc <- errors.New("torn or foreign element")
							return
						}
						seen[v[0]].Add(1)
						popped.Add(1)
					}
				}()
			}
			wg.Wait()
			close(errc)
			for err := range errc {
				t.Fatal(err)
			}
			for i := range seen {
				if n := seen[i].Load(); n != 1 {
					t.Fatalf("element %d popped %d times", i, n)
				}
			}
			var v [2]uint64
			wantErr(t, "drained", m.Pop(&v), ebpf.ErrKeyNotExist)
		})
	}
}

// TestQueueOverwriteConcurrent pushes with UpdateExist (drop the oldest)
// from many goroutines into a small map: the map must stay consistent (at
// most max_entries elements, each one pushed, none twice).
func TestQueueOverwriteConcurrent(t *testing.T) {
	for _, typ := range []ebpf.MapType{ebpf.Queue, ebpf.Stack} {
		const max = 5
		m := newMap(t, &ebpf.MapSpec{Type: typ, ValueSize: 4, MaxEntries: max})
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for i := 0; i < 2000; i++ {
					if err := m.Update(nil, uint32(g*2000+i), ebpf.UpdateExist); err != nil {
						t.Error(err)
						return
					}
				}
			}(g)
		}
		wg.Wait()
		got := map[uint32]bool{}
		var v uint32
		for m.Pop(&v) == nil {
			if got[v] {
				t.Fatalf("%v: %d twice", typ, v)
			}
			got[v] = true
		}
		if len(got) != max {
			t.Fatalf("%v: %d elements after overflow, want %d", typ, len(got), max)
		}
	}
}

// FuzzQueueStackModel runs random push/pop/peek sequences (with every push
// flag, freezing at a random point) on a queue and a stack and compares each
// result with a slice model.
func FuzzQueueStackModel(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, uint8(3))
	f.Add([]byte{0, 0, 0, 0, 0, 16, 32, 1, 1, 2, 2, 0, 0, 5}, uint8(1))
	f.Add([]byte("push push push pop peek freeze"), uint8(7))
	f.Fuzz(func(t *testing.T, prog []byte, maxb uint8) {
		max := int(maxb%8) + 1
		for _, typ := range []ebpf.MapType{ebpf.Queue, ebpf.Stack} {
			m, err := bpfmap.NewMap(&ebpf.MapSpec{Type: typ, ValueSize: 2, MaxEntries: uint32(max)})
			if err != nil {
				t.Fatal(err)
			}
			var model []uint16
			frozen := false
			next := func(pop bool) (uint16, bool) {
				if len(model) == 0 {
					return 0, false
				}
				if typ == ebpf.Queue {
					v := model[0]
					if pop {
						model = model[1:]
					}
					return v, true
				}
				v := model[len(model)-1]
				if pop {
					model = model[:len(model)-1]
				}
				return v, true
			}
			for i, c := range prog {
				val := uint16(i)<<8 | uint16(c)
				switch c % 6 {
				case 0, 1: // push with flags from the high bits
					flags := ebpf.MapUpdateFlags(c>>4) % 5
					err := m.Update(nil, val, flags)
					var want error
					switch {
					case frozen:
						want = syscall.EPERM
					case flags == ebpf.UpdateNoExist || flags > ebpf.UpdateExist:
						want = syscall.EINVAL
					case len(model) == max && flags != ebpf.UpdateExist:
						want = syscall.E2BIG
					}
					check(t, "push", err, want)
					if want == nil {
						if len(model) == max {
							model = model[1:] // the oldest goes, for both types
						}
						model = append(model, val)
					}
				case 2, 3: // pop
					v := uint16(0xbeef)
					err := m.Pop(&v)
					if frozen {
						check(t, "pop frozen", err, syscall.EPERM)
						continue
					}
					w, ok := next(true)
					if !ok {
						check(t, "pop empty", err, syscall.ENOENT)
						if v != 0xbeef {
							t.Fatal("failed pop wrote its buffer")
						}
						continue
					}
					check(t, "pop", err, nil)
					if v != w {
						t.Fatalf("%v pop = %#x, want %#x", typ, v, w)
					}
				case 4: // peek
					var v uint16
					err := m.Peek(&v)
					w, ok := next(false)
					if !ok {
						check(t, "peek empty", err, syscall.ENOENT)
						continue
					}
					check(t, "peek", err, nil)
					if v != w {
						t.Fatalf("%v peek = %#x, want %#x", typ, v, w)
					}
				case 5:
					if c > 200 && !frozen {
						check(t, "freeze", m.Freeze(), nil)
						frozen = true
					} else if frozen {
						check(t, "delete frozen", m.Delete(nil), syscall.EPERM)
					} else {
						check(t, "delete", m.Delete(nil), syscall.EINVAL)
					}
				}
			}
			m.Close()
		}
	})
}

func TestKeylessBatchesAreENOTSUPP(t *testing.T) {
	for _, typ := range []ebpf.MapType{ebpf.Queue, ebpf.Stack, ebpf.BloomFilter} {
		m := newMap(t, &ebpf.MapSpec{Type: typ, ValueSize: 4, MaxEntries: 4})
		_, err := m.BatchLookup(new(bpfmap.MapBatchCursor), make([]uint32, 2), make([]uint32, 2), nil)
		wantErr(t, "batch lookup", err, bpfmap.ENOTSUPP, ebpf.ErrNotSupported)
		_, err = m.BatchLookupAndDelete(new(bpfmap.MapBatchCursor), make([]uint32, 2), make([]uint32, 2), nil)
		wantErr(t, "batch lookup and delete", err, bpfmap.ENOTSUPP)
		_, err = m.BatchUpdate(make([]uint32, 2), make([]uint32, 2), nil)
		wantErr(t, "batch update", err, bpfmap.ENOTSUPP)
		_, err = m.BatchDelete(make([]uint32, 2), nil)
		wantErr(t, "batch delete", err, bpfmap.ENOTSUPP)
	}
}
