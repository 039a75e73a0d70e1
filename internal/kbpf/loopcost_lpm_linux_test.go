//go:build linux

package kbpf

import (
	"encoding/binary"
	"testing"

	"github.com/cilium/ebpf"
)

func TestLPMLoopCost(t *testing.T) {
	Need(t)
	trie, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.LPMTrie, KeySize: 8, ValueSize: 8, MaxEntries: 16, Flags: 1 /* BPF_F_NO_PREALLOC */})
	if err != nil {
		t.Fatal(err)
	}
	defer trie.Close()
	key := func(p uint32, a, b, c, d byte) []byte {
		k := make([]byte, 8)
		binary.NativeEndian.PutUint32(k, p)
		copy(k[4:], []byte{a, b, c, d})
		return k
	}
	for _, k := range [][]byte{key(8, 10, 0, 0, 0), key(24, 192, 168, 1, 0)} {
		if err := trie.Update(k, uint64(1), ebpf.UpdateAny); err != nil {
			t.Fatal(err)
		}
	}
	addr := func(a, b, c, d byte) uint32 { return binary.NativeEndian.Uint32([]byte{a, b, c, d}) }
	probes := []uint32{addr(10, 1, 2, 3), addr(192, 168, 1, 77), addr(10, 255, 0, 1), addr(192, 168, 1, 0)}
	d, err := LPMLoopCost(trie, probes, 1<<16)
	if err != nil || d <= 0 {
		t.Fatalf("lpm lookup: %v %v", d, err)
	}
	t.Log(d)
	// A probe outside every route fails the run.
	probes[2] = addr(11, 0, 0, 1)
	if _, err := LPMLoopCost(trie, probes, 64); err == nil {
		t.Fatal("a missing probe reported success")
	}
}

func TestLPMUpdateDeleteLoopCost(t *testing.T) {
	Need(t)
	trie, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.LPMTrie, KeySize: 8, ValueSize: 8, MaxEntries: 16, Flags: 1 /* BPF_F_NO_PREALLOC */})
	if err != nil {
		t.Fatal(err)
	}
	defer trie.Close()
	key := func(p uint32, a, b, c, d byte) []byte {
		k := make([]byte, 8)
		binary.NativeEndian.PutUint32(k, p)
		copy(k[4:], []byte{a, b, c, d})
		return k
	}
	stored := key(8, 10, 0, 0, 0)
	if err := trie.Update(stored, uint64(1), ebpf.UpdateAny); err != nil {
		t.Fatal(err)
	}
	routes := [][]byte{key(16, 10, 1, 0, 0), key(24, 10, 1, 2, 0), key(32, 192, 168, 1, 1), key(12, 172, 16, 0, 0)}
	d, err := LPMUpdateDeleteLoopCost(trie, routes, 1<<14)
	if err != nil || d <= 0 {
		t.Fatalf("lpm update+delete: %v %v", d, err)
	}
	t.Log(d)
	var v uint64
	if err := trie.Lookup(key(32, 10, 1, 2, 3), &v); err != nil || v != 1 {
		t.Fatalf("after the run the trie holds only the stored route: %v %d", err, v)
	}
	// A route already in the trie makes the NOEXIST insert fail the run.
	routes[1] = stored
	if _, err := LPMUpdateDeleteLoopCost(trie, routes, 64); err == nil {
		t.Fatal("a failing insert reported success")
	}
}
