package bpfmap_test

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/bpfmap/bpfmap"
)

// A hash map created from the same spec a kernel map would be, used through
// the same methods.
func ExampleNewMap() {
	m, err := bpfmap.NewMap(&ebpf.MapSpec{
		Name:       "counters",
		Type:       ebpf.Hash,
		KeySize:    4,
		ValueSize:  8,
		MaxEntries: 2,
	})
	if err != nil {
		panic(err)
	}
	defer m.Close()

	_ = m.Put(uint32(1), uint64(100))
	_ = m.Put(uint32(2), uint64(200))
	err = m.Put(uint32(3), uint64(300))
	fmt.Println("third key:", err)

	var v uint64
	_ = m.Lookup(uint32(2), &v)
	fmt.Println("key 2:", v)

	err = m.Lookup(uint32(9), &v)
	fmt.Println("missing key is ErrKeyNotExist:", errors.Is(err, ebpf.ErrKeyNotExist))
	// Output:
	// third key: update: argument list too long
	// key 2: 200
	// missing key is ErrKeyNotExist: true
}

// Per-CPU maps take and return one value per possible CPU; MapOptions can
// model a host with more CPUs than this one.
func ExampleNewMapWithOptions() {
	m, err := bpfmap.NewMapWithOptions(&ebpf.MapSpec{
		Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 4, MaxEntries: 1,
	}, bpfmap.MapOptions{PossibleCPUs: 4})
	if err != nil {
		panic(err)
	}
	defer m.Close()
	_ = m.Put(uint32(0), []uint32{1, 2, 3, 4})
	var perCPU []uint32
	_ = m.Lookup(uint32(0), &perCPU)
	fmt.Println(perCPU)
	// Output: [1 2 3 4]
}

// Entries iterates with Go's range-over-func, decoding keys and values.
func ExampleEntries() {
	m, _ := bpfmap.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 2, MaxEntries: 3})
	defer m.Close()
	_ = m.Put(uint32(1), uint16(7))
	for k, v := range bpfmap.Entries[uint32, uint16](m) {
		fmt.Println(k, v)
	}
	// Output:
	// 0 0
	// 1 7
	// 2 0
}

// Iterate works as *ebpf.MapIterator does.
func ExampleMap_Iterate() {
	m, _ := bpfmap.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 4})
	defer m.Close()
	_ = m.Put(uint32(5), uint32(50))
	var k, v uint32
	it := m.Iterate()
	for it.Next(&k, &v) {
		fmt.Println(k, v)
	}
	fmt.Println(it.Err())
	// Output:
	// 5 50
	// <nil>
}

// BatchLookup pages through a map; the end is reported as ErrKeyNotExist.
func ExampleMap_BatchLookup() {
	m, _ := bpfmap.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 3})
	defer m.Close()
	_, _ = m.BatchUpdate([]uint32{0, 1, 2}, []uint32{10, 11, 12}, nil)
	var cursor bpfmap.MapBatchCursor
	keys, values := make([]uint32, 2), make([]uint32, 2)
	for {
		n, err := m.BatchLookup(&cursor, keys, values, nil)
		fmt.Println(keys[:n], values[:n])
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			break
		}
	}
	// Output:
	// [0 1] [10 11]
	// [2] [12]
}

// Freeze makes a map read-only for every handle, as BPF_MAP_FREEZE does.
func ExampleMap_Freeze() {
	m, _ := bpfmap.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	defer m.Close()
	_ = m.Freeze()
	fmt.Println(m.Put(uint32(0), uint32(1)))
	// Output: update: operation not permitted
}

// Memory exposes a BPF_F_MMAPABLE array's values as shared memory.
func ExampleMap_Memory() {
	m, _ := bpfmap.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 2, Flags: 1 << 10})
	defer m.Close()
	mem, _ := m.Memory()
	defer mem.Close()
	_, _ = mem.WriteAt([]byte{9}, 8) // element 1
	var v uint64
	_ = m.Lookup(uint32(1), &v)
	fmt.Println(v)
	// Output: 9
}

// All yields raw keys and values, each key of a hash map at most once even
// while other goroutines delete and insert.
func ExampleMap_All() {
	m, _ := bpfmap.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 1, ValueSize: 1, MaxEntries: 2})
	defer m.Close()
	_ = m.Put([]byte{1}, []byte{2})
	for k, v := range m.All() {
		fmt.Println(k, v)
	}
	// Output: [1] [2]
}

// Clone returns a second handle to the same map, like dup(2) of a map fd.
func ExampleMap_Clone() {
	m, _ := bpfmap.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 2})
	c, _ := m.Clone()
	_ = m.Put(uint32(1), uint32(2))
	m.Close()
	var v uint32
	fmt.Println(c.Lookup(uint32(1), &v), v)
	c.Close()
	// Output: <nil> 2
}

// A queue hands out elements oldest first. Push and Pop are Update(nil, v,
// ebpf.UpdateAny) and LookupAndDelete(nil, &v); UpdateExist makes room in a
// full queue by dropping the oldest element.
func ExampleMap_Push_queue() {
	q, err := bpfmap.NewMap(&ebpf.MapSpec{Type: ebpf.Queue, ValueSize: 4, MaxEntries: 2})
	if err != nil {
		panic(err)
	}
	defer q.Close()
	_ = q.Push(uint32(1))
	_ = q.Push(uint32(2))
	fmt.Println("push into full queue:", q.Push(uint32(3)))
	_ = q.Update(nil, uint32(3), ebpf.UpdateExist) // drops 1

	var v uint32
	_ = q.Peek(&v)
	fmt.Println("peek:", v)
	for q.Pop(&v) == nil {
		fmt.Println("pop:", v)
	}
	err = q.Pop(&v)
	fmt.Println("empty is ErrKeyNotExist:", errors.Is(err, ebpf.ErrKeyNotExist))
	// Output:
	// push into full queue: update: argument list too long
	// peek: 2
	// pop: 2
	// pop: 3
	// empty is ErrKeyNotExist: true
}

// A stack hands out elements newest first.
func ExampleMap_Pop_stack() {
	s, err := bpfmap.NewMap(&ebpf.MapSpec{Type: ebpf.Stack, ValueSize: 8, MaxEntries: 8})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	for _, v := range []uint64{10, 20, 30} {
		_ = s.Push(v)
	}
	var v uint64
	for s.Pop(&v) == nil {
		fmt.Println(v)
	}
	// Output:
	// 30
	// 20
	// 10
}

// A bloom filter answers "maybe present" or "certainly absent". MapExtra
// sets the number of hash functions (0 means 5); with BPF_F_ZERO_SEED it
// answers exactly as a kernel filter of the same shape, false positives
// included. Contains is Lookup(nil, &value), which reads value.
func ExampleMap_Contains() {
	f, err := bpfmap.NewMap(&ebpf.MapSpec{
		Type: ebpf.BloomFilter, ValueSize: 4, MaxEntries: 1000, MapExtra: 3,
	})
	if err != nil {
		panic(err)
	}
	defer f.Close()
	for ip := uint32(0); ip < 100; ip++ {
		_ = f.Push(ip)
	}
	ok, _ := f.Contains(uint32(42))
	fmt.Println("42:", ok)

	v := uint32(42)
	fmt.Println("Lookup(nil, &v):", f.Lookup(nil, &v))
	// Output:
	// 42: true
	// Lookup(nil, &v): <nil>
}
