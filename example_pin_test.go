//go:build linux

package bpfmap_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"

	"github.com/bpfmap/bpfmap"
)

// A map pinned by one program outlives it; any process opens the pin and
// shares the map. (Examples use a temporary namespace; programs normally
// use the default, NamespaceRoot, or $BPFMAP_ROOT.)
func ExampleMap_Pin() {
	root, _ := os.MkdirTemp("", "bpfmap-example")
	defer os.RemoveAll(root)

	m, err := bpfmap.NewMapWithOptions(&ebpf.MapSpec{
		Name: "sessions", Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 1024,
	}, bpfmap.MapOptions{Namespace: root})
	if err != nil {
		panic(err)
	}
	if err := m.Pin(filepath.Join(root, "sessions")); err != nil {
		panic(err)
	}
	_ = m.Put(uint32(7), uint64(700))
	m.Close() // the pin keeps the map

	// Later, in this process or another one:
	s, err := bpfmap.LoadPinnedMap(filepath.Join(root, "sessions"), nil)
	if err != nil {
		panic(err)
	}
	var v uint64
	_ = s.Lookup(uint32(7), &v)
	fmt.Println("key 7:", v)

	_ = s.Unpin() // the map now dies with its last handle
	s.Close()
	_, err = bpfmap.LoadPinnedMap(filepath.Join(root, "sessions"), nil)
	fmt.Println("after unpin:", errors.Is(err, os.ErrNotExist))
	// Output:
	// key 7: 700
	// after unpin: true
}

// Read-only handles, as ebpf.LoadPinOptions asks for them, refuse writes
// with EPERM, as a kernel map's read-only fd does.
func ExampleLoadPinnedMap() {
	root, _ := os.MkdirTemp("", "bpfmap-example")
	defer os.RemoveAll(root)

	m, _ := bpfmap.NewMapWithOptions(&ebpf.MapSpec{
		Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 4,
	}, bpfmap.MapOptions{Namespace: root})
	defer m.Close()
	_ = m.Pin(filepath.Join(root, "config"))
	defer m.Unpin()
	_ = m.Put(uint32(0), uint32(42))

	ro, err := bpfmap.LoadPinnedMap(filepath.Join(root, "config"), &ebpf.LoadPinOptions{ReadOnly: true})
	if err != nil {
		panic(err)
	}
	defer ro.Close()
	var v uint32
	_ = ro.Lookup(uint32(0), &v)
	fmt.Println("read:", v)
	fmt.Println("write:", ro.Put(uint32(0), uint32(1)))
	// Output:
	// read: 42
	// write: update: operation not permitted
}

// With Pinning set to ebpf.PinByName, the first program to run creates and
// pins the map and the next ones open it, as cilium/ebpf does on bpffs.
func ExampleMapOptions_pinByName() {
	root, _ := os.MkdirTemp("", "bpfmap-example")
	defer os.RemoveAll(root)

	spec := &ebpf.MapSpec{
		Name: "counters", Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 16,
		Pinning: ebpf.PinByName,
	}
	opts := bpfmap.MapOptions{Namespace: root}
	first, _ := bpfmap.NewMapWithOptions(spec, opts)
	defer first.Close()
	_ = first.Put(uint32(1), uint64(10))

	second, _ := bpfmap.NewMapWithOptions(spec, opts) // opens the pinned map
	defer second.Close()
	var v uint64
	_ = second.Lookup(uint32(1), &v)
	fmt.Println("seen by the second:", v)
	_ = first.Unpin()
	// Output: seen by the second: 10
}

// Map ids are unique across the processes sharing a namespace; MapGetNextID
// walks the live ones and NewMapFromID opens one, as bpftool map show does
// for kernel maps.
func ExampleMapGetNextID() {
	root, _ := os.MkdirTemp("", "bpfmap-example")
	defer os.RemoveAll(root)
	opts := bpfmap.MapOptions{Namespace: root}

	for _, name := range []string{"first", "second"} {
		m, _ := bpfmap.NewMapWithOptions(&ebpf.MapSpec{
			Name: name, Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1,
		}, opts)
		defer m.Close()
	}
	for id := ebpf.MapID(0); ; {
		next, err := bpfmap.MapGetNextIDWithOptions(id, opts)
		if err != nil {
			break // ENOENT: no more
		}
		m, err := bpfmap.NewMapFromIDWithOptions(next, opts)
		if err != nil {
			panic(err)
		}
		info, _ := m.Info()
		fmt.Println(info.Name, info.Type)
		m.Close()
		id = next
	}
	// Output:
	// first Array
	// second Array
}
