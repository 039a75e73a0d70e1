package bpfmap_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"
)

// checked is a 24-byte value whose words must agree: a reader that ever
// sees them disagree has seen a torn value.
type checked struct{ A, B, C uint64 }

func mkChecked(x uint64) checked { return checked{x, ^x, x * 0x9e3779b97f4a7c15} }

// ok reports whether c is a value some update wrote in full, or the zero
// value of an array element never written.
func (c checked) ok() bool { return c == mkChecked(c.A) || c == checked{} }

// TestConcurrentNoTornValuesNoOvercount runs writers, deleters and readers
// on the same few keys of every type and checks that every value read is
// one some update wrote in full and that a hash never holds more than
// max_entries keys.
func TestConcurrentNoTornValuesNoOvercount(t *testing.T) {
	for _, typ := range []ebpf.MapType{ebpf.Hash, ebpf.Array, ebpf.PerCPUHash, ebpf.PerCPUArray} {
		t.Run(typ.String(), func(t *testing.T) {
			const max = 8
			m := newMap(t, &ebpf.MapSpec{Type: typ, KeySize: 4, ValueSize: 24, MaxEntries: max})
			perCPU := typ == ebpf.PerCPUHash || typ == ebpf.PerCPUArray
			hash := typ == ebpf.Hash || typ == ebpf.PerCPUHash
			var stop atomic.Bool
			var wg sync.WaitGroup
			var reads, torn atomic.Int64
			errc := make(chan error, 16)
			put := func(k uint32, x uint64) error {
				if perCPU {
					return m.Put(k, []checked{mkChecked(x), mkChecked(x + 1)})
				}
				return m.Put(k, mkChecked(x))
			}
			for w := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := uint64(0); !stop.Load(); i++ {
						k := uint32((i*7 + uint64(w)) % (max + 4))
						err := put(k, i<<8|uint64(w))
						if err != nil && !(hash && errors.Is(err, syscall.E2BIG)) && !(!hash && errors.Is(err, syscall.E2BIG) && k >= max) {
							errc <- err
							return
						}
						if hash && i%3 == 0 {
							_ = m.Delete(uint32((i * 5) % (max + 4)))
						}
					}
				}()
			}
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var one checked
					var per []checked
					for i := uint32(0); !stop.Load(); i++ {
						k := i % (max + 4)
						var err error
						if perCPU {
							err = m.Lookup(k, &per)
							for _, c := range per {
								if err == nil && !c.ok() {
									torn.Add(1)
								}
							}
						} else {
							err = m.Lookup(k, &one)
							if err == nil && !one.ok() {
								torn.Add(1)
							}
						}
						if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
							errc <- err
							return
						}
						reads.Add(1)
						if hash && i%64 == 0 {
							// Not a snapshot (a key deleted behind the walk and
							// another inserted ahead of it are both seen), but
							// never a key twice.
							seen := map[uint32]bool{}
							for kb := range m.All() {
								k := binary.LittleEndian.Uint32(kb)
								if seen[k] {
									errc <- errors.New("iteration yielded a key twice")
									return
								}
								seen[k] = true
							}
						}
					}
				}()
			}
			for reads.Load() < 200000 {
				select {
				case err := <-errc:
					stop.Store(true)
					wg.Wait()
					t.Fatal(err)
				default:
				}
				if testing.Short() && reads.Load() > 20000 {
					break
				}
			}
			stop.Store(true)
			wg.Wait()
			close(errc)
			for err := range errc {
				t.Fatal(err)
			}
			if torn.Load() != 0 {
				t.Fatalf("%d torn values in %d reads", torn.Load(), reads.Load())
			}
			if hash {
				n := 0
				var k uint32
				var v checked
				var per []checked
				it := m.Iterate()
				if perCPU {
					for it.Next(&k, &per) {
						n++
					}
				} else {
					for it.Next(&k, &v) {
						n++
					}
				}
				if it.Err() != nil || n > max {
					t.Fatalf("final iteration: %d keys, %v", n, it.Err())
				}
			}
		})
	}
}

// TestAllUnderConcurrentDeletes checks the contract of (*Map).All: keys that
// stay in the map are yielded exactly once even while others are deleted and
// re-inserted.
func TestAllUnderConcurrentDeletes(t *testing.T) {
	const stable, churn = 200, 200
	m := newMap(t, &ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: stable + churn})
	for k := range uint32(stable + churn) {
		wantErr(t, "put", m.Put(k, uint64(k)))
	}
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := uint32(0); !stop.Load(); i++ {
			k := stable + i%churn
			_ = m.Delete(k)
			_ = m.Put(k, uint64(k))
		}
	}()
	for round := 0; round < 200; round++ {
		seen := map[uint32]int{}
		for kb, vb := range m.All() {
			k := binary.LittleEndian.Uint32(kb)
			if binary.LittleEndian.Uint64(vb) != uint64(k) {
				t.Fatalf("key %d has value %d", k, binary.LittleEndian.Uint64(vb))
			}
			seen[k]++
		}
		for k := range uint32(stable) {
			if seen[k] != 1 {
				t.Fatalf("round %d: stable key %d yielded %d times", round, k, seen[k])
			}
		}
		for k, n := range seen {
			if n != 1 {
				t.Fatalf("round %d: key %d yielded %d times", round, k, n)
			}
		}
	}
	stop.Store(true)
	<-done
}

// TestConcurrentReadersAlwaysFindStableKeys checks the lock-free readers'
// central promise: a key that is in the map for the whole test is found by
// every lookup, while writers keep replacing it and its chain neighbours
// (moving keys to the head of their chains, recycling elements) and other
// keys come and go.
func TestConcurrentReadersAlwaysFindStableKeys(t *testing.T) {
	for _, c := range []struct {
		typ       ebpf.MapType
		valueSize uint32
		max       uint32
	}{
		// 48 entries for 64 keys: churning puts also meet E2BIG. The
		// LRU_HASH has room for every key, so nothing is evicted; its
		// writers replace stable keys in their home slots (value stored
		// in place).
		{ebpf.Hash, 8, 48}, {ebpf.Hash, 24, 48}, {ebpf.LRUHash, 8, 1024},
	} {
		t.Run(fmt.Sprintf("%v/value=%d", c.typ, c.valueSize), func(t *testing.T) {
			readersFindStableKeys(t, c.typ, c.valueSize, c.max)
		})
	}
}

// readersFindStableKeys: with one-word values, half of the lookups and
// updates use the shapes that go straight to the family (*uint32 keys,
// *uint64 values).
func readersFindStableKeys(t *testing.T, typ ebpf.MapType, valueSize, max uint32) {
	const stable, churn = 32, 32
	m := newMap(t, &ebpf.MapSpec{Type: typ, KeySize: 4, ValueSize: valueSize, MaxEntries: max})
	val := func(x uint64) []byte {
		b := make([]byte, valueSize)
		for o := 0; o+8 <= len(b); o += 8 {
			binary.LittleEndian.PutUint64(b[o:], x)
		}
		return b
	}
	for k := range uint32(stable) {
		wantErr(t, "put", m.Put(k, val(uint64(k))))
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := uint64(1); !stop.Load(); i++ {
				k := uint32(i*7+uint64(w)) % stable
				var err error
				if x := uint64(k) + i<<16; valueSize == 8 && i%2 == 0 {
					err = m.Update(&k, &x, ebpf.UpdateExist)
				} else {
					err = m.Put(k, val(x))
				}
				if err != nil {
					t.Error(err)
					return
				}
				c := stable + uint32(i)%churn
				_ = m.Delete(c)
				_ = m.Put(c, val(uint64(c))) // may hit E2BIG: 48 < 64
			}
		}()
	}
	buf := make([]byte, valueSize)
	var word uint64
	for i := 0; i < 300000; i++ {
		k := uint32(i) % stable
		var err error
		if valueSize == 8 && i%2 == 0 {
			err = m.Lookup(&k, &word)
		} else {
			err = m.Lookup(k, buf)
			word = binary.LittleEndian.Uint64(buf)
		}
		x := word
		if err != nil {
			stop.Store(true)
			wg.Wait()
			t.Fatalf("stable key %d not found: %v", k, err)
		}
		if uint32(x&0xffff) != k {
			stop.Store(true)
			wg.Wait()
			t.Fatalf("key %d has another key's value %#x", k, x)
		}
	}
	stop.Store(true)
	wg.Wait()
}
