//go:build linux

package bpfmap_test

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"

	"github.com/bpfmap/bpfmap"
)

// A map of maps holds other maps: each slot keeps its inner map alive, and
// a lookup gives the inner map's id, or opens it.
func ExampleMap_Update_mapInMap() {
	root, _ := os.MkdirTemp("", "bpfmap-example")
	defer os.RemoveAll(root)
	opts := bpfmap.MapOptions{Namespace: root}

	inner := &ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 16}
	tenants, err := bpfmap.NewMapWithOptions(&ebpf.MapSpec{
		Type: ebpf.HashOfMaps, KeySize: 4, MaxEntries: 64, InnerMap: inner,
	}, opts)
	if err != nil {
		panic(err)
	}
	defer tenants.Close()

	counters, err := bpfmap.NewMapWithOptions(inner, opts)
	if err != nil {
		panic(err)
	}
	_ = counters.Put(uint32(0), uint64(42))
	if err := tenants.Put(uint32(1001), counters); err != nil {
		panic(err)
	}
	counters.Close() // the slot keeps the map

	var m *bpfmap.Map
	if err := tenants.Lookup(uint32(1001), &m); err != nil {
		panic(err)
	}
	defer m.Close()
	var v uint64
	_ = m.Lookup(uint32(0), &v)
	fmt.Println("tenant 1001, counter 0:", v)

	// Inner maps must match the template.
	wrong, _ := bpfmap.NewMapWithOptions(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 16}, opts)
	defer wrong.Close()
	fmt.Println("hash in an array slot:", tenants.Put(uint32(1002), wrong) != nil)
	// Output:
	// tenant 1001, counter 0: 42
	// hash in an array slot: true
}

// Removing a map from its last slot frees it, once nothing else holds it:
// its id is gone.
func ExampleMap_Delete_mapInMap() {
	root, _ := os.MkdirTemp("", "bpfmap-example")
	defer os.RemoveAll(root)
	opts := bpfmap.MapOptions{Namespace: root}

	inner := &ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 8}
	slots, err := bpfmap.NewMapWithOptions(&ebpf.MapSpec{
		Type: ebpf.ArrayOfMaps, KeySize: 4, MaxEntries: 4, InnerMap: inner,
	}, opts)
	if err != nil {
		panic(err)
	}
	defer slots.Close()
	m, _ := bpfmap.NewMapWithOptions(inner, opts)
	_ = slots.Put(uint32(0), m)
	m.Close()

	var id uint32
	_ = slots.Lookup(uint32(0), &id)
	alive, err := bpfmap.NewMapFromIDWithOptions(ebpf.MapID(id), opts)
	fmt.Println("in a slot, open by id:", err == nil)
	alive.Close()

	_ = slots.Delete(uint32(0))
	_, err = bpfmap.NewMapFromIDWithOptions(ebpf.MapID(id), opts)
	fmt.Println("after delete:", errors.Is(err, ebpf.ErrKeyNotExist))
	// Output:
	// in a slot, open by id: true
	// after delete: true
}
