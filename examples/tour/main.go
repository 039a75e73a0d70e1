// Command tour creates one map of each type bpfmap implements, writes,
// reads, iterates and prints what it did. It needs no root and runs on any
// OS: the maps live in this process's memory.
//
//	go run ./examples/tour
package main

import (
	"errors"
	"fmt"
	"log"

	"github.com/cilium/ebpf"

	"github.com/bpfmap/bpfmap"
)

func main() {
	log.SetFlags(0)
	hashTour()
	percpuHashTour()
	arrayTour()
	percpuArrayTour()
	queueStackTour()
	bloomTour()
	notYet()
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

func hashTour() {
	m, err := bpfmap.NewMap(&ebpf.MapSpec{
		Name: "conns", Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 4,
		Flags: 1 << 6, // BPF_F_ZERO_SEED: the kernel's iteration order
	})
	must(err)
	defer m.Close()
	fmt.Printf("created %v: key %d B, value %d B, max %d\n", m, m.KeySize(), m.ValueSize(), m.MaxEntries())
	for _, k := range []uint32{10, 20, 30, 40} {
		must(m.Put(k, uint64(k)*100))
	}
	err = m.Put(uint32(50), uint64(1))
	fmt.Printf("  put 5th key into a 4-entry hash: %v (E2BIG, as the kernel)\n", err)
	err = m.Update(uint32(10), uint64(7), ebpf.UpdateNoExist)
	fmt.Printf("  update existing key with NOEXIST: %v (errors.Is ErrKeyExist: %v)\n", err, errors.Is(err, ebpf.ErrKeyExist))
	var v uint64
	must(m.Lookup(uint32(20), &v))
	fmt.Printf("  lookup 20 = %d\n", v)
	must(m.Delete(uint32(30)))
	fmt.Printf("  deleted 30; lookup 30: %v\n", m.Lookup(uint32(30), &v))
	fmt.Print("  entries in the kernel's GET_NEXT_KEY order:")
	for k, v := range bpfmap.Entries[uint32, uint64](m) {
		fmt.Printf(" %d=%d", k, v)
	}
	fmt.Println()
}

func percpuHashTour() {
	m, err := bpfmap.NewMapWithOptions(&ebpf.MapSpec{
		Name: "pkts", Type: ebpf.PerCPUHash, KeySize: 4, ValueSize: 8, MaxEntries: 16,
	}, bpfmap.MapOptions{PossibleCPUs: 4})
	must(err)
	defer m.Close()
	fmt.Printf("created %v modelling 4 CPUs\n", m)
	must(m.Put(uint32(1), []uint64{1, 2, 3, 4}))
	var per []uint64
	must(m.Lookup(uint32(1), &per))
	fmt.Printf("  key 1 per CPU: %v\n", per)
}

func arrayTour() {
	m, err := bpfmap.NewMap(&ebpf.MapSpec{
		Name: "cfg", Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 4,
		Flags: 1 << 10, // BPF_F_MMAPABLE
	})
	must(err)
	defer m.Close()
	fmt.Printf("created %v\n", m)
	keys := []uint32{0, 1, 2, 3}
	n, err := m.BatchUpdate(keys, []uint32{5, 6, 7, 8}, nil)
	must(err)
	fmt.Printf("  batch update stored %d values\n", n)
	fmt.Printf("  delete from an array: %v (EINVAL, as the kernel)\n", m.Delete(uint32(0)))
	mem, err := m.Memory()
	must(err)
	_, err = mem.WriteAt([]byte{42, 0, 0, 0}, 8) // element 1: stride round_up(4, 8)
	must(err)
	var v uint32
	must(m.Lookup(uint32(1), &v))
	fmt.Printf("  wrote 42 through Memory(); lookup 1 = %d\n", v)
	fmt.Printf("  freeze with a writable mapping: %v\n", m.Freeze())
	must(mem.Close())
	must(m.Freeze())
	fmt.Printf("  frozen; update: %v\n", m.Put(uint32(1), uint32(9)))
	var c bpfmap.MapBatchCursor
	ks, vs := make([]uint32, 4), make([]uint32, 4)
	n, err = m.BatchLookup(&c, ks[:3], vs[:3], nil)
	fmt.Printf("  batch lookup page 1: %d entries %v=%v, end: %v\n", n, ks[:n], vs[:n], errors.Is(err, ebpf.ErrKeyNotExist))
	n, err = m.BatchLookup(&c, ks[:3], vs[:3], nil)
	fmt.Printf("  batch lookup page 2: %d entries %v=%v, end: %v\n", n, ks[:n], vs[:n], errors.Is(err, ebpf.ErrKeyNotExist))
}

func percpuArrayTour() {
	m, err := bpfmap.NewMapWithOptions(&ebpf.MapSpec{
		Name: "stats", Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 4, MaxEntries: 2,
	}, bpfmap.MapOptions{PossibleCPUs: 2})
	must(err)
	defer m.Close()
	fmt.Printf("created %v modelling 2 CPUs\n", m)
	must(m.Put(uint32(0), []uint32{3, 4}))
	var k uint32
	var per []uint32
	it := m.Iterate()
	for it.Next(&k, &per) {
		fmt.Printf("  %d: %v\n", k, per)
	}
	must(it.Err())
}

func queueStackTour() {
	for _, typ := range []ebpf.MapType{ebpf.Queue, ebpf.Stack} {
		m, err := bpfmap.NewMap(&ebpf.MapSpec{Type: typ, ValueSize: 4, MaxEntries: 3})
		must(err)
		for _, v := range []uint32{1, 2, 3} {
			must(m.Push(v))
		}
		fmt.Printf("created %v; pushed 1 2 3; push 4: %v\n", m, m.Push(uint32(4)))
		must(m.Update(nil, uint32(4), ebpf.UpdateExist)) // full: drop the oldest
		fmt.Print("  pushed 4 with BPF_EXIST (drops the oldest); pops:")
		var v uint32
		for m.Pop(&v) == nil {
			fmt.Print(" ", v)
		}
		fmt.Println()
		m.Close()
	}
}

func bloomTour() {
	m, err := bpfmap.NewMap(&ebpf.MapSpec{
		Name: "seen", Type: ebpf.BloomFilter, ValueSize: 4, MaxEntries: 100,
		MapExtra: 3, Flags: 1 << 6, // 3 hash functions, the kernel's seed 0
	})
	must(err)
	defer m.Close()
	for v := range uint32(50) {
		must(m.Push(v * 2))
	}
	in, _ := m.Contains(uint32(10))
	out, _ := m.Contains(uint32(11))
	fmt.Printf("created %v; pushed even numbers below 100; contains 10: %v, 11: %v\n", m, in, out)
	fmt.Printf("  delete from a bloom filter: %v\n", m.Delete(nil))
}

func notYet() {
	_, err := bpfmap.NewMap(&ebpf.MapSpec{Type: ebpf.LRUHash, KeySize: 8, ValueSize: 8, MaxEntries: 1})
	fmt.Printf("not implemented yet: %v\n", err)
}
