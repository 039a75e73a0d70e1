package hash

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/bpfmap/bpfmap/internal/uapi"
)

// FuzzLRUOps runs a random sequence of updates (every flag), deletes,
// lookups and program-side lookups on a small LRU map, on the CPUs the
// input names, and checks after every step what must hold whatever the
// LRU evicts: the lists and the table agree (checkLRU), a successful update
// leaves its key with its value, a delete leaves it absent, BPF_EXIST
// fails on an absent key and BPF_NOEXIST on a present one unless taking
// the node evicted it, and the count
// never exceeds max_entries. Keys collide in few buckets, so keys sit in
// and leave their home slots, in the middle of chains and at their heads.
func FuzzLRUOps(f *testing.F) {
	f.Add(uint8(0), []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	f.Add(uint8(1), []byte{0x10, 0x21, 0x32, 0x43, 0x54, 0x65, 0x76, 0x87, 0x98, 0xa9, 0xba, 0xcb, 0xdc, 0xed, 0xfe, 0x0f})
	f.Add(uint8(6), []byte{0xff, 0xfe, 0x00, 0x01, 0x80, 0x81, 0x40, 0x41, 0xc0, 0xc1})
	f.Fuzz(func(t *testing.T, shape uint8, ops []byte) {
		typ := uapi.MapTypeLRUHash
		if shape&1 != 0 {
			typ = uapi.MapTypeLRUPercpuHash
		}
		var flags uint32
		if shape&2 != 0 {
			flags = uapi.FNoCommonLRU
		}
		vs := uint32(8)
		if shape&4 != 0 {
			vs = 12
		}
		max := uint32(4 + shape>>3&7)
		cpu := 0
		m := newTestLRU(t, typ, flags, max, vs, func() int { return cpu })
		v := make([]byte, m.copySize)
		got := make([]byte, m.copySize)
		k := make([]byte, 4)
		for i, op := range ops {
			key := uint32(op & 15)
			binary.LittleEndian.PutUint32(k, key)
			cpu = int(op>>7) & 1
			_, before := m.find(m.hash(k)&m.mask, m.hash(k), k)
			present := before != 0
			switch op >> 4 & 7 {
			case 0, 1, 2, 3:
				fl := uint64(op>>4&3) % 3
				for j := range v {
					v[j] = byte(i + j)
				}
				err := m.Update(k, v, fl)
				switch {
				case fl == uapi.NoExist && present && err != nil:
					// The node is taken before the check, and taking it
					// may evict the key itself: then the update succeeds.
					if !errors.Is(err, uapi.EEXIST) {
						t.Fatalf("step %d: NOEXIST update of present key %d: %v", i, key, err)
					}
				case fl == uapi.Exist && !present && err == nil:
					t.Fatalf("step %d: EXIST update of absent key %d succeeded", i, key)
				case err == nil:
					if err := m.Lookup(k, got); err != nil || string(got) != string(v) {
						t.Fatalf("step %d: key %d after its update: %v %x want %x", i, key, err, got, v)
					}
				}
			case 4:
				err := m.Delete(k)
				if present != (err == nil) {
					t.Fatalf("step %d: delete of key %d (present %v): %v", i, key, present, err)
				}
				if err := m.Lookup(k, got); !errors.Is(err, uapi.ENOENT) {
					t.Fatalf("step %d: key %d after its delete: %v", i, key, err)
				}
			case 5, 6:
				if err := m.Lookup(k, got); present != (err == nil) {
					t.Fatalf("step %d: lookup of key %d (present %v): %v", i, key, present, err)
				}
			default:
				if err := m.LookupTouch(k, got); present != (err == nil) {
					t.Fatalf("step %d: program lookup of key %d (present %v): %v", i, key, present, err)
				}
			}
			if m.Count() > m.lru.n {
				t.Fatalf("step %d: %d elements in a map of %d", i, m.Count(), m.lru.n)
			}
			checkLRU(t, m)
		}
	})
}
