//go:build !windows

package bpfmap_test

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/bpfmap/bpfmap"
)

// LookupAndDelete removes a key and returns its value in one step.
func ExampleMap_LookupAndDelete() {
	m, _ := bpfmap.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 2})
	defer m.Close()
	_ = m.Put(uint32(1), uint32(10))
	var v uint32
	err := m.LookupAndDelete(uint32(1), &v)
	fmt.Println(v, err)
	fmt.Println(errors.Is(m.LookupAndDelete(uint32(1), &v), ebpf.ErrKeyNotExist))
	// Output:
	// 10 <nil>
	// true
}

// BatchUpdate and BatchDelete stop at the first failing element, as the
// kernel's batch commands do, and report how many succeeded.
func ExampleMap_BatchUpdate() {
	m, _ := bpfmap.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 2})
	defer m.Close()
	n, err := m.BatchUpdate([]uint32{1, 2, 3}, []uint32{10, 20, 30}, nil)
	fmt.Println(n, errors.Is(err, unix.E2BIG))
	n, err = m.BatchDelete([]uint32{1, 9, 2}, nil)
	fmt.Println(n, errors.Is(err, ebpf.ErrKeyNotExist))
	// Output:
	// 2 true
	// 1 true
}

// NextKey walks keys in the kernel's order; a nil key asks for the first.
func ExampleMap_NextKey() {
	m, _ := bpfmap.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 3})
	defer m.Close()
	var k uint32
	for err := m.NextKey(nil, &k); err == nil; err = m.NextKey(k, &k) {
		fmt.Print(k, " ")
	}
	fmt.Println()
	// Output: 0 1 2
}

// Info describes a map as bpf_map_info does.
func ExampleMap_Info() {
	m, _ := bpfmap.NewMap(&ebpf.MapSpec{Name: "flows", Type: ebpf.Hash, KeySize: 8, ValueSize: 16, MaxEntries: 100,
		Flags: 1 << 3}) // BPF_F_RDONLY: a property of this handle, not of the map
	defer m.Close()
	info, _ := m.Info()
	fmt.Println(info.Type, info.Name, info.KeySize, info.ValueSize, info.MaxEntries, info.Flags, info.Frozen())
	// Output: Hash flows 8 16 100 0 false
}

// Errors carry the operation and the kernel's errno, and match both the
// errno and cilium/ebpf's sentinel.
func ExampleError() {
	m, _ := bpfmap.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	defer m.Close()
	var v uint32
	err := m.Lookup(uint32(7), &v)
	var e *bpfmap.Error
	fmt.Println(errors.As(err, &e), e.Op, e.Errno == unix.ENOENT)
	fmt.Println(errors.Is(err, ebpf.ErrKeyNotExist), errors.Is(err, unix.ENOENT))
	// Output:
	// true lookup true
	// true true
}
