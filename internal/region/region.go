// Package region owns a map's memory: one flat, page-aligned byte region that
// holds a self-describing header followed by the map family's body. All map
// state lives here, addressed by offsets, never by Go pointers, so the garbage
// collector never scans it and another process could map the same bytes.
//
// This is one of the two places in bpfmap allowed to use unsafe (the other is
// internal/marshal). Every accessor here turns an offset into a typed pointer
// after a bounds check, and callers keep the alignment the accessor names.
package region

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"unsafe"
)

// Magic identifies a bpfmap region; LayoutVersion changes with any change of
// the header or of a family's body layout.
const (
	Magic         = "BPFMAP\x00\x01"
	LayoutVersion = 5
	// HeaderSize is the space reserved for Header at the start of a region;
	// family bodies start at or after it.
	HeaderSize = 256

	hugePage = 2 << 20
)

// Header is the self-describing start of every region. Its fields are fixed
// size and little-endian in memory on the supported platforms, so any process
// can read what map the region holds.
type Header struct {
	Magic        [8]byte
	Layout       uint32
	MapType      uint32
	KeySize      uint32
	ValueSize    uint32
	MaxEntries   uint32
	MapFlags     uint32
	Name         [16]byte
	ID           uint32
	Frozen       uint32 // 0 or 1; written with atomics
	Seed         uint32
	PossibleCPUs uint32
	MapExtra     uint64
	BodyOffset   uint64 // where the family's body starts
	Size         uint64 // total bytes of the region
	// CreateMaxEntries is max_entries as given at creation (MaxEntries is
	// the reported figure, after any type-specific rounding), so that a
	// process opening the region can size the family's layout again.
	CreateMaxEntries uint32
	// Mmaps counts writable memory views of the map in every process
	// (BPF_F_MMAPABLE): while it is non-zero, freezing is EBUSY.
	Mmaps uint32
	// Attached has bit i set while process slot i of the namespace's process
	// table has the map open, so that the map can be repaired after one of
	// them dies (internal/namespace).
	Attached [AttachWords]uint64
	// Inner is the inner-map template of a map-in-map (ARRAY_OF_MAPS,
	// HASH_OF_MAPS): the metadata the kernel keeps of the template map
	// given at creation, against which every inner map is checked. Zero
	// for other types.
	Inner InnerMeta
	// InnerOp is non-zero while a writer of a map-in-map is between
	// changing a slot and changing the slot's reference link (the owner
	// token of its process); the next writer that finds it set knows the
	// previous one died there and reconciles the links with the slots.
	InnerOp uint32
}

// InnerMeta is what a map-in-map keeps of its inner-map template: type,
// key and value size, stored map_flags and max_entries.
type InnerMeta struct {
	MapType, KeySize, ValueSize, MapFlags, MaxEntries uint32
}

// DecodeHeader reads a header from its bytes as stored at the start of a
// region (b holds at least HeaderSize bytes).
func DecodeHeader(b []byte) Header {
	var h Header
	// Sound: b holds at least HeaderSize ≥ sizeof(Header) bytes (the slice
	// expression checks it), and Header holds only fixed-size integers, so
	// copying its bytes out builds a valid Header.
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&h)), unsafe.Sizeof(h)), b[:HeaderSize])
	return h
}

// AttachWords is the size of Header.Attached in words: 64 process slots each.
const AttachWords = 16

// Compile-time check that Header fits the reserved space.
var _ [HeaderSize - unsafe.Sizeof(Header{})]byte

// Region is a map's memory. The zero value is unusable; call New.
//
// Lifetime: Release returns the memory's pages to the system at once but
// keeps the address range mapped (reading zeroes, which every family treats
// as an empty map), so a goroutine still inside an operation on a map that
// another goroutine has just closed cannot fault. The range itself is
// unmapped by a cleanup once the Region is unreachable; operations keep
// their Region reachable until they return (runtime.KeepAlive in callers).
type Region struct {
	mem      []byte
	shared   bool // a MAP_SHARED mapping of a map object's file
	released atomic.Bool
}

// ErrTooLarge reports a region size the platform cannot address.
var ErrTooLarge = errors.New("region: size too large")

// New returns a zeroed region of at least size bytes (rounded up to a page),
// backed by anonymous memory outside the Go heap where the platform allows.
// Pages are committed by the operating system on first touch.
func New(size uint64) (*Region, error) {
	if released.Load()-unmapped.Load() > maxWaiting {
		runtime.GC()
	}
	if size < HeaderSize {
		size = HeaderSize
	}
	const page = 4096
	size = (size + page - 1) &^ (page - 1)
	if size > maxRegion || size != uint64(int(size)) {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, size)
	}
	mem, err := allocate(int(size))
	if err != nil {
		return nil, err
	}
	if size >= hugePage {
		// Large maps are reached at random: huge pages spare the TLB misses
		// that make 4 KiB pages cost more than the memory access itself
		// (the kernel's own map memory sits in its huge-page direct map).
		adviseHuge(mem)
	}
	r := &Region{mem: mem}
	runtime.AddCleanup(r, func(mem []byte) {
		_ = unmap(mem)
		unmapped.Add(1)
	}, mem)
	return r, nil
}

// released counts Release calls and unmapped counts cleanups. Released
// regions hold no memory but still hold an address range and a mapping; the
// collector only runs when the Go heap grows, which map memory does not
// make it do, so New runs a collection once too many ranges wait, keeping a
// program that creates and closes maps in a loop under the system's limit on
// mappings.
var released, unmapped atomic.Int64

const maxWaiting = 1024

// Release returns the region's pages to the system. Later accesses read
// zeroes; the first call wins and later ones do nothing. For a shared
// region (MapFile) Release only drops this process's use: the object's
// memory belongs to every process that maps it, and Free returns it.
func (r *Region) Release() error {
	if r.released.Swap(true) {
		return nil
	}
	released.Add(1)
	if r.shared {
		return nil
	}
	return discard(r.mem)
}

// Free releases the region and, for a shared region whose object is dead
// (no process or pin holds it), returns the object's pages to the system;
// every mapping reads zeroes afterwards.
func (r *Region) Free() error {
	if !r.shared {
		return r.Release()
	}
	if r.released.Swap(true) {
		return nil
	}
	released.Add(1)
	return freeShared(r.mem)
}

// Shared reports whether the region maps a map object's file.
func (r *Region) Shared() bool { return r.shared }

// Released reports whether Release was called.
func (r *Region) Released() bool { return r.released.Load() }

// Len is the region's size in bytes.
func (r *Region) Len() int { return len(r.mem) }

// Header returns the region's header.
func (r *Region) Header() *Header {
	// Sound: mem is page-aligned, at least HeaderSize long, and Header holds
	// only fixed-size integer fields, so any bit pattern is a valid Header.
	return (*Header)(unsafe.Pointer(&r.mem[0]))
}

// Bytes returns the n bytes at off, sharing the region's memory.
func (r *Region) Bytes(off, n uint64) []byte { return r.Mem().Bytes(off, n) }

// Uint32 returns a pointer to the 4-byte-aligned word at off, for atomic use.
func (r *Region) Uint32(off uint64) *uint32 { return r.Mem().Uint32(off) }

// Uint64 returns a pointer to the 8-byte-aligned word at off, for atomic use.
func (r *Region) Uint64(off uint64) *uint64 { return r.Mem().Uint64(off) }

// Overlap reports whether two byte slices share any memory.
func Overlap(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	// Sound: only the addresses are compared; nothing is dereferenced.
	pa, pb := uintptr(unsafe.Pointer(&a[0])), uintptr(unsafe.Pointer(&b[0]))
	return pa < pb+uintptr(len(b)) && pb < pa+uintptr(len(a))
}

// Mem is a view of a region's bytes with typed accessors, held by value so
// hot paths reach the memory without a pointer chase. It is valid while the
// Region it came from is reachable; holders keep the Region too.
type Mem []byte

// Mem returns the region's bytes as a Mem.
func (r *Region) Mem() Mem { return Mem(r.mem) }

// Uint32 returns a pointer to the 4-byte-aligned word at off, for atomic use.
func (m Mem) Uint32(off uint64) *uint32 {
	w := m[off : off+4 : off+4]
	// Sound: w is 4 bytes inside the region (bounds-checked by the slice
	// expression), the caller keeps off 4-byte aligned and the region base
	// is page-aligned, and the memory is not managed by the Go collector.
	return (*uint32)(unsafe.Pointer(&w[0]))
}

// Uint64 returns a pointer to the 8-byte-aligned word at off, for atomic use.
func (m Mem) Uint64(off uint64) *uint64 {
	w := m[off : off+8 : off+8]
	// Sound: as for Uint32, with 8-byte alignment kept by the caller.
	return (*uint64)(unsafe.Pointer(&w[0]))
}

// Words returns the n 4-byte words at off as a slice, for atomic use of its
// elements: one bounds check for the whole range instead of one per word.
func (m Mem) Words(off, n uint64) []uint32 {
	w := m[off : off+4*n : off+4*n]
	if n == 0 {
		return nil
	}
	// Sound: w is the 4n bytes of the slice (bounds-checked by the slice
	// expression), the caller keeps off 4-byte aligned and the region base
	// is page-aligned, and the memory is not managed by the Go collector.
	return unsafe.Slice((*uint32)(unsafe.Pointer(&w[0])), n)
}

// Words8 returns the 32 bytes at off as eight 4-byte words, for atomic use:
// one bounds check for all of them. off must be 8-byte aligned.
func (m Mem) Words8(off uint64) *[8]uint32 {
	w := m[off : off+32 : off+32]
	// Sound: w is 32 bytes inside the region (bounds-checked by the slice
	// expression), 8-byte aligned as the caller keeps off and the region
	// base is page-aligned, and the memory is not managed by the collector.
	return (*[8]uint32)(unsafe.Pointer(&w[0]))
}

// Pair returns words i and i+1 of w (i even) as one 8-byte word, for atomic
// use.
func Pair(w *[8]uint32, i uint) *uint64 {
	// Sound: words i&6 and i&6+1 are 8 bytes inside *w, and w is 8-byte
	// aligned (Words8).
	return (*uint64)(unsafe.Pointer(&w[i&6]))
}

// Bytes returns the n bytes at off.
func (m Mem) Bytes(off, n uint64) []byte { return m[off : off+n : off+n] }
