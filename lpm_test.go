package bpfmap_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/bpfmap/bpfmap"
)

// lpmKey is an LPM_TRIE key for IPv4: a host-order prefix length and the
// address bytes, most significant first.
type lpmKey struct {
	Prefixlen uint32
	Addr      [4]byte
}

func TestLPMThroughThePublicAPI(t *testing.T) {
	m := newMap(t, &ebpf.MapSpec{Type: ebpf.LPMTrie, KeySize: 8, ValueSize: 4, MaxEntries: 3, Flags: 1})
	wantErr(t, "put /8", m.Put(lpmKey{8, [4]byte{10}}, uint32(8)))
	wantErr(t, "put /16", m.Put(lpmKey{16, [4]byte{10, 1}}, uint32(16)))
	wantErr(t, "put /24", m.Put(lpmKey{24, [4]byte{10, 1, 2, 99}}, uint32(24))) // host bits kept
	wantErr(t, "full", m.Put(lpmKey{32, [4]byte{1, 2, 3, 4}}, uint32(1)), syscall.ENOSPC)
	var v uint32
	for _, tc := range []struct {
		k    lpmKey
		want uint32
	}{{lpmKey{32, [4]byte{10, 1, 2, 3}}, 24}, {lpmKey{32, [4]byte{10, 1, 9, 9}}, 16}, {lpmKey{32, [4]byte{10, 9, 9, 9}}, 8}, {lpmKey{20, [4]byte{10, 1, 2, 3}}, 16}} {
		wantErr(t, "lookup", m.Lookup(tc.k, &v))
		if v != tc.want {
			t.Fatalf("lookup %v: %d, want %d", tc.k, v, tc.want)
		}
	}
	wantErr(t, "no match", m.Lookup(lpmKey{32, [4]byte{11}}, &v), ebpf.ErrKeyNotExist)
	// GET_NEXT_KEY: post-order, more specific first, host bits verbatim.
	var k lpmKey
	var order []lpmKey
	for err := m.NextKey(nil, &k); err == nil; err = m.NextKey(k, &k) {
		order = append(order, k)
	}
	want := []lpmKey{{24, [4]byte{10, 1, 2, 99}}, {16, [4]byte{10, 1}}, {8, [4]byte{10}}}
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Fatalf("order %v, want %v", order, want)
	}
	wantErr(t, "lookup and delete", m.LookupAndDelete(lpmKey{8, [4]byte{10}}, &v), bpfmap.ENOTSUPP)
	wantErr(t, "delete by prefix", m.Delete(lpmKey{16, [4]byte{10, 1, 7, 7}}))
	_, err := bpfmap.NewMap(&ebpf.MapSpec{Type: ebpf.LPMTrie, KeySize: 8, ValueSize: 4, MaxEntries: 3})
	wantErr(t, "without BPF_F_NO_PREALLOC", err, syscall.EINVAL)
}

// An LPM trie answers longest-prefix-match lookups, as routing tables need.
func ExampleNewMap_lpmTrie() {
	routes, err := bpfmap.NewMap(&ebpf.MapSpec{
		Type: ebpf.LPMTrie, KeySize: 8, ValueSize: 4, MaxEntries: 16,
		Flags: 1, // BPF_F_NO_PREALLOC, as the kernel requires
	})
	if err != nil {
		panic(err)
	}
	defer routes.Close()
	key := func(prefixlen uint32, a, b, c, d byte) []byte {
		k := binary.NativeEndian.AppendUint32(nil, prefixlen)
		return append(k, a, b, c, d)
	}
	_ = routes.Put(key(8, 10, 0, 0, 0), uint32(1))
	_ = routes.Put(key(24, 10, 1, 2, 0), uint32(2))
	var hop uint32
	_ = routes.Lookup(key(32, 10, 1, 2, 3), &hop)
	fmt.Println("10.1.2.3 ->", hop)
	_ = routes.Lookup(key(32, 10, 7, 7, 7), &hop)
	fmt.Println("10.7.7.7 ->", hop)
	err = routes.Lookup(key(32, 192, 168, 0, 1), &hop)
	fmt.Println("192.168.0.1:", errors.Is(err, ebpf.ErrKeyNotExist))
	// Output:
	// 10.1.2.3 -> 2
	// 10.7.7.7 -> 1
	// 192.168.0.1: true
}
