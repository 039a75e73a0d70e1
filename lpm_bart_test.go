package bpfmap_test

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/gaissmai/bart"

	"github.com/bpfmap/bpfmap"
)

// TestLPMAgainstBart checks bpfmap's LPM trie against gaissmai/bart, the Go
// ecosystem's reference routing table, on 100,000+ random IPv4 and IPv6
// routes: every longest-prefix-match lookup, with full-length probes and
// with shorter probe prefixes, must agree.
func TestLPMAgainstBart(t *testing.T) {
	for _, tc := range []struct {
		name   string
		bytes  int
		routes int
	}{{"IPv4", 4, 100_000}, {"IPv6", 16, 50_000}} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(tc.bytes), 2026))
			ks := uint32(4 + tc.bytes)
			m := newMap(t, &ebpf.MapSpec{Type: ebpf.LPMTrie, KeySize: ks, ValueSize: 4,
				MaxEntries: uint32(tc.routes), Flags: 1})
			var ref bart.Table[uint32]
			bits := tc.bytes * 8
			key := func(p int, addr []byte) []byte {
				k := binary.NativeEndian.AppendUint32(make([]byte, 0, ks), uint32(p))
				return append(k, addr...)
			}
			randAddr := func() []byte {
				a := make([]byte, tc.bytes)
				for i := range a {
					a[i] = byte(r.Uint32())
				}
				if tc.bytes == 4 {
					a[0] = byte(r.IntN(16)) // cluster routes so prefixes overlap
				} else {
					a[0] = 0x20
				}
				return a
			}
			toAddr := func(a []byte) netip.Addr {
				if tc.bytes == 4 {
					return netip.AddrFrom4([4]byte(a))
				}
				return netip.AddrFrom16([16]byte(a))
			}
			var stored [][]byte
			for i := range tc.routes {
				a := randAddr()
				minLen := 8
				if tc.bytes == 16 {
					minLen = 24
				}
				p := minLen + r.IntN(bits-minLen+1)
				// Host bits beyond p are kept by bpfmap and ignored by matching.
				if err := m.Put(key(p, a), uint32(i)); err != nil {
					t.Fatalf("put /%d: %v", p, err)
				}
				ref.Insert(netip.PrefixFrom(toAddr(a), p).Masked(), uint32(i))
				stored = append(stored, a)
			}
			var v uint32
			hits, short := 0, 0
			for i := range 200_000 {
				a := randAddr()
				if i%2 == 0 {
					a = append([]byte(nil), stored[r.IntN(len(stored))]...)
					a[len(a)-1] ^= byte(r.Uint32()) // near a stored route
				}
				probe := bits
				if i%5 == 0 {
					probe = r.IntN(bits + 1) // a shorter probe: only prefixes up to it match
				}
				want, ok := ref.Lookup(toAddr(a))
				if probe < bits {
					_, want, ok = ref.LookupPrefixLPM(netip.PrefixFrom(toAddr(a), probe))
				}
				err := m.Lookup(key(probe, a), &v)
				if ok {
					hits++
					if probe < bits {
						short++
					}
				}
				switch {
				case ok && err != nil:
					t.Fatalf("%x/%d: bart has route %d, bpfmap: %v", a, probe, want, err)
				case !ok && !errors.Is(err, ebpf.ErrKeyNotExist):
					t.Fatalf("%x/%d: bart has no route, bpfmap: %d, %v", a, probe, v, err)
				case ok && v != want:
					t.Fatalf("%x/%d: bart %d, bpfmap %d", a, probe, want, v)
				}
			}
			// The comparison must not be vacuous: most probes hit a route,
			// some through a shorter probe prefix.
			if hits < 50_000 || hits > 199_000 || short < 5_000 {
				t.Fatalf("%d probes hit a route (%d with short probes): the comparison needs hits and misses", hits, short)
			}
			t.Logf("%d routes, %d of 200,000 probes matched a route", tc.routes, hits)
			var _ *bpfmap.Map = m
		})
	}
}
