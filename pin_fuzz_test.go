//go:build linux

package bpfmap_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/bpfmap/bpfmap"
)

// fuzzRoot is one namespace for all of a process's fuzz runs (a namespace
// stays open for the life of the process).
var fuzzRoot = func() func(t *testing.T) string {
	var once sync.Once
	var root string
	return func(t *testing.T) string {
		once.Do(func() {
			var err error
			if root, err = os.MkdirTemp("", "bpfmap-fuzz"); err != nil {
				t.Fatal(err)
			}
		})
		return root
	}
}()

var fuzzPins atomic.Int64

// headerBytes is the part of a pin file FuzzLoadPinnedMap damages: the
// region header (internal/region.HeaderSize).
const headerBytes = 256

// fuzzSpecs are the maps whose pin files FuzzLoadPinnedMap damages.
var fuzzSpecs = []*ebpf.MapSpec{
	{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 16},
	{Type: ebpf.Array, KeySize: 4, ValueSize: 12, MaxEntries: 8},
	{Type: ebpf.PerCPUHash, KeySize: 8, ValueSize: 4, MaxEntries: 8},
	{Type: ebpf.LRUHash, KeySize: 4, ValueSize: 4, MaxEntries: 16},
	{Type: ebpf.Queue, ValueSize: 4, MaxEntries: 4},
	{Type: ebpf.BloomFilter, ValueSize: 4, MaxEntries: 16, MapExtra: 3},
	{Type: ebpf.LPMTrie, KeySize: 8, ValueSize: 4, MaxEntries: 8, Flags: 1},
	{Type: ebpf.RingBuf, MaxEntries: 4096},
}

// FuzzLoadPinnedMap writes damaged headers and truncated lengths into a
// pinned map's file and opens it: the open either fails with EINVAL (the
// header does not describe a map this bpfmap can open) or yields a map whose
// operations work; it never panics.
func FuzzLoadPinnedMap(f *testing.F) {
	f.Add(uint8(0), uint16(0), []byte{0}, uint32(0))      // magic
	f.Add(uint8(1), uint16(8), []byte{9}, uint32(0))      // layout version
	f.Add(uint8(2), uint16(12), []byte{99}, uint32(0))    // map type
	f.Add(uint8(3), uint16(24), []byte{255}, uint32(0))   // max_entries
	f.Add(uint8(4), uint16(40), []byte{'!'}, uint32(0))   // name
	f.Add(uint8(5), uint16(0), []byte{}, uint32(100))     // truncated
	f.Add(uint8(6), uint16(120), []byte{1, 2}, uint32(0)) // attached bits
	f.Add(uint8(7), uint16(60), []byte{7}, uint32(0))     // possible CPUs
	f.Fuzz(func(t *testing.T, which uint8, off uint16, patch []byte, truncate uint32) {
		root := fuzzRoot(t)
		spec := fuzzSpecs[int(which)%len(fuzzSpecs)]
		m, err := bpfmap.NewMapWithOptions(spec, bpfmap.MapOptions{Namespace: root})
		if err != nil {
			t.Fatal(err)
		}
		pin := filepath.Join(root, fmt.Sprint("m", fuzzPins.Add(1)))
		defer os.Remove(pin)
		if err := m.Pin(pin); err != nil {
			t.Fatal(err)
		}
		m.Close()
		file, err := os.OpenFile(pin, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(patch) > 0 {
			at := int(off) % headerBytes
			patch = patch[:min(len(patch), headerBytes-at)]
			if _, err := file.WriteAt(patch, int64(at)); err != nil {
				t.Fatal(err)
			}
		}
		if truncate != 0 {
			fi, _ := file.Stat()
			if err := file.Truncate(int64(truncate) % fi.Size()); err != nil {
				t.Fatal(err)
			}
		}
		file.Close()

		l, err := bpfmap.LoadPinnedMap(pin, nil)
		if err != nil {
			if !errors.Is(err, unix.EINVAL) {
				t.Fatalf("open of a damaged pin: %v, want EINVAL", err)
			}
			return
		}
		defer l.Close()
		key := make([]byte, l.KeySize())
		val := make([]byte, l.ValueSize())
		switch l.Type() {
		case ebpf.Queue, ebpf.Stack, ebpf.BloomFilter:
			_ = l.Update(nil, val, 0)
			_ = l.Lookup(nil, val)
		case ebpf.RingBuf:
			_, _ = l.Info()
		default:
			_ = l.Update(key, val, 0)
			_, _ = l.LookupBytes(key)
			it := l.Iterate()
			for n := 0; it.Next(&key, &val) && n < 1000; n++ {
			}
		}
	})
}

// bodySpecs are the maps whose bodies FuzzLoadDamagedBody damages: the
// types whose every reference word is validated when a process opens a map
// (or that hold no references at all).
var bodySpecs = []*ebpf.MapSpec{
	{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 16},
	{Type: ebpf.Hash, KeySize: 12, ValueSize: 20, MaxEntries: 8},
	{Type: ebpf.PerCPUHash, KeySize: 8, ValueSize: 4, MaxEntries: 8},
	{Type: ebpf.Array, KeySize: 4, ValueSize: 12, MaxEntries: 8},
	{Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 4, MaxEntries: 4},
	{Type: ebpf.Queue, ValueSize: 4, MaxEntries: 4},
	{Type: ebpf.Stack, ValueSize: 8, MaxEntries: 3},
	{Type: ebpf.BloomFilter, ValueSize: 4, MaxEntries: 16, MapExtra: 3},
}

// FuzzLoadDamagedBody fills a map, damages bytes of its body in the pin
// file, and opens it: the open fails with EINVAL (the family's validation
// found a reference that leads outside the map) or every operation works;
// nothing panics.
func FuzzLoadDamagedBody(f *testing.F) {
	f.Add(uint8(0), uint16(0), []byte{0xff, 0xff, 0xff, 0x7f})
	f.Add(uint8(0), uint16(200), []byte{9})
	f.Add(uint8(1), uint16(64), []byte{1, 0, 0, 0, 1, 0, 0, 0})
	f.Add(uint8(5), uint16(4), []byte{200})
	f.Add(uint8(5), uint16(16), []byte{1, 2, 3, 4, 5, 6, 7, 8})
	f.Add(uint8(6), uint16(8), []byte{7})
	f.Add(uint8(3), uint16(3900), []byte{1})
	f.Fuzz(runBody)
}

func runBody(t *testing.T, which uint8, off uint16, patch []byte) {
	{
		root := fuzzRoot(t)
		spec := bodySpecs[int(which)%len(bodySpecs)]
		m, err := bpfmap.NewMapWithOptions(spec, bpfmap.MapOptions{Namespace: root})
		if err != nil {
			t.Fatal(err)
		}
		key := make([]byte, m.KeySize())
		val := make([]byte, m.ValueSize()*uint32(max(1, runtime.NumCPU())))
		for i := range m.MaxEntries() {
			if len(key) > 0 {
				key[0] = byte(i)
			}
			val[0] = byte(i)
			switch m.Type() {
			case ebpf.Queue, ebpf.Stack, ebpf.BloomFilter:
				_ = m.Update(nil, val[:m.ValueSize()], 0)
			case ebpf.PerCPUHash, ebpf.PerCPUArray:
			default:
				_ = m.Update(key, val[:m.ValueSize()], 0)
			}
		}
		pin := filepath.Join(root, fmt.Sprint("b", fuzzPins.Add(1)))
		defer os.Remove(pin)
		if err := m.Pin(pin); err != nil {
			t.Fatal(err)
		}
		m.Close()
		file, err := os.OpenFile(pin, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := file.Stat()
		body := fi.Size() - headerBytes
		at := headerBytes + int64(off)%body
		patch = patch[:min(int64(len(patch)), fi.Size()-at)]
		if _, err := file.WriteAt(patch, at); err != nil {
			t.Fatal(err)
		}
		file.Close()

		l, err := bpfmap.LoadPinnedMap(pin, nil)
		if err != nil {
			if !errors.Is(err, unix.EINVAL) {
				t.Fatalf("open of a damaged pin: %v, want EINVAL", err)
			}
			return
		}
		defer l.Close()
		lv := make([]byte, l.ValueSize())
		switch l.Type() {
		case ebpf.Queue, ebpf.Stack, ebpf.BloomFilter:
			_ = l.Lookup(nil, lv)
			_ = l.Update(nil, lv, 0)
			_ = l.Update(nil, lv, ebpf.UpdateExist)
			_ = l.LookupAndDelete(nil, lv)
		case ebpf.PerCPUHash, ebpf.PerCPUArray:
			var vs [][]byte
			_ = l.Lookup(key, &vs)
			it := l.Iterate()
			for n := 0; it.Next(&key, &vs) && n < 1000; n++ {
			}
		default:
			for i := range byte(20) {
				key[0] = i
				_ = l.Update(key, lv, 0)
				_, _ = l.LookupBytes(key)
				if i%3 == 0 {
					_ = l.Delete(key)
				}
			}
			it := l.Iterate()
			for n := 0; it.Next(&key, &lv) && n < 1000; n++ {
			}
			for range l.All() {
			}
		}
	}
}
