package hash

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/bpfmap/bpfmap/internal/mapops"
	"github.com/bpfmap/bpfmap/internal/uapi"
)

// TestPresentKeysAlwaysFound: keys that stay in the map while writers
// replace them (moving them to their chain's head) and churn other keys are
// found by every lock-free lookup.
func TestPresentKeysAlwaysFound(t *testing.T) {
	for _, mode := range []string{"updates-only", "churn-only", "both"} {
		a := &mapops.Attr{Type: uapi.MapTypeHash, KeySize: 4, ValueSize: 8, MaxEntries: 48, PossibleCPUs: 2}
		ops, _, err := mapops.OpenDetached(Family, a)
		if err != nil {
			t.Fatal(err)
		}
		k := make([]byte, 4)
		v := make([]byte, 8)
		for i := uint32(0); i < 32; i++ {
			binary.LittleEndian.PutUint32(k, i)
			binary.LittleEndian.PutUint64(v, uint64(i))
			ops.Update(k, v, 0)
		}
		var stop atomic.Bool
		var wg sync.WaitGroup
		for w := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				k := make([]byte, 4)
				v := make([]byte, 8)
				for i := uint64(1); !stop.Load(); i++ {
					if mode != "churn-only" {
						kk := uint32(i*7+uint64(w)) % 32
						binary.LittleEndian.PutUint32(k, kk)
						binary.LittleEndian.PutUint64(v, uint64(kk)+i<<16)
						ops.Update(k, v, 0)
					}
					if mode != "updates-only" {
						c := 32 + uint32(i)%32
						binary.LittleEndian.PutUint32(k, c)
						ops.Delete(k)
						ops.Update(k, v, 0)
					}
				}
			}()
		}
		miss := 0
		for i := 0; i < 300000; i++ {
			binary.LittleEndian.PutUint32(k, uint32(i)%32)
			if err := ops.Lookup(k, v); err != nil {
				miss++
			}
		}
		stop.Store(true)
		wg.Wait()
		if miss != 0 {
			t.Errorf("%s: %d lookups of present keys missed", mode, miss)
		}
	}
}

// TestLockedPathsAgree checks the readers' locked fallbacks (taken after
// readRetries failed lock-free attempts) against the lock-free paths.
func TestLockedPathsAgree(t *testing.T) {
	for _, vs := range []uint32{8, 12} {
		a := &mapops.Attr{Type: uapi.MapTypeHash, KeySize: 4, ValueSize: vs, MaxEntries: 16, PossibleCPUs: 2}
		opsI, _, err := mapops.OpenDetached(Family, a)
		if err != nil {
			t.Fatal(err)
		}
		m := opsI.(*Map)
		k := make([]byte, 4)
		v := make([]byte, vs)
		for i := uint32(0); i < 12; i++ {
			binary.LittleEndian.PutUint32(k, i*3)
			binary.LittleEndian.PutUint32(v, i+100)
			if err := m.Update(k, v, 0); err != nil {
				t.Fatal(err)
			}
		}
		for i := uint32(0); i < 40; i++ {
			binary.LittleEndian.PutUint32(k, i)
			hv := m.hash(k)
			got1, got2 := make([]byte, vs), make([]byte, vs)
			err1 := m.Lookup(k, got1)
			err2 := m.lookupLocked(hv&m.mask, hv, k, got2)
			if err1 != err2 || string(got1) != string(got2) {
				t.Fatalf("key %d: lock-free %v %x, locked %v %x", i, err1, got1, err2, got2)
			}
		}
		walk := func(locked bool) []uint32 {
			var keys []uint32
			var key []byte
			next := make([]byte, 4)
			for {
				found, done := m.nextKey(key, next, locked)
				if !done {
					t.Fatal("retry in a quiet map")
				}
				if !found {
					return keys
				}
				keys = append(keys, binary.LittleEndian.Uint32(next))
				key = append(key[:0], next...)
			}
		}
		w1, w2 := walk(false), walk(true)
		if len(w1) != 12 {
			t.Fatalf("walk: %v", w1)
		}
		for i := range w1 {
			if w1[i] != w2[i] {
				t.Fatalf("lock-free walk %v, locked walk %v", w1, w2)
			}
		}
	}
}
