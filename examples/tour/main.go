// Command tour creates one map of each type bpfmap implements, writes,
// reads, iterates and prints what it did. It needs no root and runs on any
// OS: on Linux the maps are objects of the pin namespace (bpfmap.NamespaceRoot),
// elsewhere they live in this process's memory.
//
//	go run ./examples/tour
package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log"

	"github.com/cilium/ebpf"

	"github.com/bpfmap/bpfmap"
	"github.com/bpfmap/bpfmap/ringbuf"
)

func main() {
	log.SetFlags(0)
	hashTour()
	percpuHashTour()
	arrayTour()
	percpuArrayTour()
	queueStackTour()
	bloomTour()
	lruTour()
	lpmTour()
	ringTour()
	mapInMapTour()
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

func lruTour() {
	// CPU 0 for every operation and the kernel's 2 possible CPUs of the
	// test machines: the same evictions as a kernel map whose syscalls all
	// run on CPU 0.
	m, err := bpfmap.NewMapWithOptions(&ebpf.MapSpec{
		Name: "cache", Type: ebpf.LRUHash, KeySize: 4, ValueSize: 8, MaxEntries: 8,
	}, bpfmap.MapOptions{PossibleCPUs: 2, CPU: func() int { return 0 }})
	must(err)
	defer m.Close()
	for k := range uint32(8) {
		must(m.Put(k, uint64(k)*100))
	}
	var v uint64
	must(m.LookupAndTouch(uint32(2), &v)) // a cache hit: key 2 is kept
	must(m.Put(uint32(8), uint64(800)))   // full: evicts a batch of 2 keys
	var keys []uint32
	for k := range bpfmap.Entries[uint32, uint64](m) {
		keys = append(keys, k)
	}
	fmt.Printf("created %v; 9 keys into 8 entries after touching key 2: %d keys left %v\n", m, len(keys), keys)
	fmt.Printf("  update with BPF_NOEXIST of a present key: %v\n", m.Update(uint32(8), uint64(1), ebpf.UpdateNoExist))
}

func lpmTour() {
	m, err := bpfmap.NewMap(&ebpf.MapSpec{Name: "routes", Type: ebpf.LPMTrie, KeySize: 8, ValueSize: 4,
		MaxEntries: 16, Flags: 1}) // BPF_F_NO_PREALLOC
	must(err)
	defer m.Close()
	key := func(prefixlen uint32, a, b, c, d byte) []byte {
		return append(binary.NativeEndian.AppendUint32(nil, prefixlen), a, b, c, d)
	}
	must(m.Put(key(8, 10, 0, 0, 0), uint32(1)))
	must(m.Put(key(16, 10, 1, 0, 0), uint32(2)))
	must(m.Put(key(24, 10, 1, 2, 7), uint32(3))) // host bits are kept verbatim
	var hop uint32
	must(m.Lookup(key(32, 10, 1, 9, 9), &hop))
	fmt.Printf("created %v; 10.1.9.9 matches the /16 -> %d\n", m, hop)
	fmt.Print("  GET_NEXT_KEY post-order:")
	k := make([]byte, 8)
	for err := m.NextKey(nil, k); err == nil; err = m.NextKey(k, k) {
		fmt.Printf(" %d.%d.%d.%d/%d", k[4], k[5], k[6], k[7], binary.NativeEndian.Uint32(k))
	}
	fmt.Println()
}

func ringTour() {
	m, err := bpfmap.NewMap(&ebpf.MapSpec{Name: "events", Type: ebpf.RingBuf, MaxEntries: 4096})
	must(err)
	defer m.Close()
	rd, err := ringbuf.NewReader(m)
	must(err)
	defer rd.Close()
	must(m.RingOutput([]byte("hello")))
	rec, err := m.RingReserve(5)
	must(err)
	copy(rec.Bytes(), "world")
	rec.Submit()
	fmt.Printf("created %v; read:", m)
	for range 2 {
		r, err := rd.Read()
		must(err)
		fmt.Printf(" %q", r.RawSample)
	}
	fmt.Printf(" (lookup: %v)\n", m.Lookup(nil, make([]byte, 0)))
}

func mapInMapTour() {
	outer, err := bpfmap.NewMap(&ebpf.MapSpec{Name: "tables", Type: ebpf.ArrayOfMaps, KeySize: 4, MaxEntries: 2,
		InnerMap: &ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1}})
	must(err)
	defer outer.Close()
	inner, err := bpfmap.NewMap(&ebpf.MapSpec{Name: "table0", Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	must(err)
	must(inner.Put(uint32(0), uint32(42)))
	must(outer.Put(uint32(0), inner))
	info, _ := inner.Info()
	want, _ := info.ID()
	must(inner.Close()) // the slot keeps the inner map alive
	fmt.Printf("created %v: an array of maps\n", outer)
	var id uint32
	must(outer.Lookup(uint32(0), &id))
	fmt.Printf("  slot 0 holds map id %d (the inner map's id: %v)\n", id, ebpf.MapID(id) == want)
	var got *bpfmap.Map
	must(outer.Lookup(uint32(0), &got))
	defer got.Close()
	var v uint32
	must(got.Lookup(uint32(0), &v))
	fmt.Printf("  opened through the slot after its last handle closed: key 0 = %d\n", v)
	small, _ := bpfmap.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	defer small.Close()
	fmt.Printf("  an inner map unlike the template: %v\n", outer.Put(uint32(1), small))
}

func notYet() {
	_, err := bpfmap.NewMap(&ebpf.MapSpec{Type: ebpf.StackTrace, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	fmt.Printf("not implemented: %v\n", err)
}
