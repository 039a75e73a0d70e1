package lpm

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
)

// checkJump reports a jump table entry that differs from the structure
// reachable from the root (nil for a map without a table).
func (m *Map) checkJump() error {
	if m.jumpOff == 0 {
		return nil
	}
	for x := uint32(0); x < 256; x++ {
		d1 := m.depth1Now(x)
		row := m.mem.Words(m.jumpOff+4*256*uint64(x), 256)
		for y := uint32(0); y < 256; y++ {
			var want uint32
			if d1 != 0 {
				want = m.child(d1, y)
			}
			if row[y] != want {
				return fmt.Errorf("jump[%d.%d] = %#x, structure has %#x", x, y, row[y], want)
			}
		}
	}
	return nil
}

// TestJumpTableGeometry: the table exists for two or more data bytes and
// max_entries ≥ jumpMin, and a fresh map's is all zero (no root).
func TestJumpTableGeometry(t *testing.T) {
	for _, c := range []struct {
		keySize, max uint32
		want         bool
	}{{8, jumpMin, true}, {8, jumpMin - 1, false}, {5, jumpMin, false}, {6, jumpMin, true}, {260, 1 << 20, true}} {
		m, err := newOps(c.keySize, 8, c.max)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.jumpOff != 0; got != c.want {
			t.Fatalf("key %d max %d: table %v, want %v", c.keySize, c.max, got, c.want)
		}
		if err := m.checkJump(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestJumpMatchesPlain applies the same random operations to a map with a
// jump table and one without (max_entries one below jumpMin) and compares
// every result, checking the table against the structure as it goes. Keys
// cluster under a few first bytes, so nodes at depth 1 and 2 appear,
// grow, shrink, fold into leaves and disappear again.
func TestJumpMatchesPlain(t *testing.T) {
	for _, ks := range []uint32{6, 8, 20} {
		t.Run(fmt.Sprintf("key=%d", ks), func(t *testing.T) {
			jm, err := newOps(ks, 8, jumpMin)
			if err != nil {
				t.Fatal(err)
			}
			pm, err := newOps(ks, 8, jumpMin-1)
			if err != nil {
				t.Fatal(err)
			}
			if jm.jumpOff == 0 || pm.jumpOff != 0 {
				t.Fatal("tables not as intended")
			}
			r := rand.New(rand.NewPCG(uint64(ks), 7))
			maxBits := 8 * (ks - 4)
			// Dense phases cluster keys under three first bytes (nodes at
			// depth 1 and 2 grow and shrink); sparse ones spread a few
			// hundred keys over every first byte, so that the nodes at
			// depth 1 keep appearing and folding back into leaves.
			dense := true
			var known [][]byte
			key := func() []byte {
				if len(known) > 0 && r.IntN(3) == 0 {
					return known[r.IntN(len(known))]
				}
				k := make([]byte, ks)
				binary.NativeEndian.PutUint32(k, uint32(r.IntN(int(maxBits)+2)))
				for i := 4; i < int(ks); i++ {
					k[i] = byte(r.IntN(256))
				}
				if dense {
					k[4] = byte(r.IntN(3)) * 85
					if r.IntN(4) != 0 {
						k[5] = byte(r.IntN(4))
					}
				}
				return k
			}
			v1, v2 := make([]byte, 8), make([]byte, 8)
			n1, n2 := make([]byte, ks), make([]byte, ks)
			for op := 0; op < 40000; op++ {
				if op%5000 == 0 {
					dense = !dense
				}
				k := key()
				var e1, e2 error
				grow := 4
				if jm.Count() > 300 {
					grow = 2
				}
				switch c := r.IntN(10); {
				case c < grow:
					binary.LittleEndian.PutUint64(v1, r.Uint64())
					fl := uint64(r.IntN(3))
					e1, e2 = jm.Update(k, v1, fl), pm.Update(k, v1, fl)
					if e1 == nil {
						known = append(known, k)
					}
				case c < 7:
					e1, e2 = jm.Delete(k), pm.Delete(k)
					if len(known) > 2000 {
						known = known[1000:]
					}
				case c < 9:
					e1, e2 = jm.Lookup(k, v1), pm.Lookup(k, v2)
					if e1 == nil && e2 == nil && !bytes.Equal(v1, v2) {
						t.Fatalf("op %d lookup %x: %x, without the table %x", op, k, v1, v2)
					}
				default:
					e1, e2 = jm.GetNextKey(k, n1), pm.GetNextKey(k, n2)
					if e1 == nil && e2 == nil && !bytes.Equal(n1, n2) {
						t.Fatalf("op %d next %x: %x, without the table %x", op, k, n1, n2)
					}
				}
				if errno(e1) != errno(e2) {
					t.Fatalf("op %d key %x: %v, without the table %v", op, k, e1, e2)
				}
				if op%500 == 0 || op > 39000 {
					if err := jm.checkJump(); err != nil {
						t.Fatalf("op %d: %v", op, err)
					}
				}
			}
			if jm.Count() != pm.Count() {
				t.Fatalf("count %d, without the table %d", jm.Count(), pm.Count())
			}
		})
	}
}
