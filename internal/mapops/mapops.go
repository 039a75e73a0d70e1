// Package mapops is the contract between the command layer and the map
// families: the creation attributes a family validates, the per-type
// operations table it implements (the user-space twin of the kernel's
// struct bpf_map_ops), the traits that let the command layer apply the
// generic rules in one place, and the few validation rules the kernel's
// families share.
package mapops

import (
	"github.com/bpfmap/bpfmap/internal/region"
	"github.com/bpfmap/bpfmap/internal/robust"
	"github.com/bpfmap/bpfmap/internal/uapi"
)

// Attr is BPF_MAP_CREATE's input as a family sees it, after the command
// layer's generic checks.
type Attr struct {
	Type       uapi.MapType
	KeySize    uint32
	ValueSize  uint32
	MaxEntries uint32
	Flags      uint32 // map_flags as given, BPF_F_TOKEN_FD stripped
	NumaNode   uint32
	MapExtra   uint64
	InnerMapFD uint32
	// PossibleCPUs is the number of per-CPU slots the map models.
	PossibleCPUs int
	// SysAdmin models CAP_SYS_ADMIN (needed for BPF_F_ZERO_SEED on hash maps).
	SysAdmin bool
	// CPU returns the CPU (in any range; reduced modulo PossibleCPUs) an
	// operation runs on, for types whose behaviour depends on it (the LRU
	// hash maps' per-CPU lists). nil: the processor running the caller
	// (internal/cpuid).
	CPU func() int
	// Locks takes and releases the map's lock words (internal/robust). Nil
	// in Attrs given to Check and Layout; Open gets one (a local Locker for
	// a map no other process can reach).
	Locks *robust.Locker
}

// Validator is implemented by maps whose body holds words that operations
// follow as references or indices. Validate is called once when a process
// opens a map another process wrote (a pin or an id), before any operation:
// a map that passes cannot send an operation outside its region. It returns
// a description of the first damage found; a family may also rebuild state
// derived from what it validated (as a Repair would). The caller guarantees
// that no other live process has the map open.
type Validator interface {
	Validate() error
}

// Repairer is implemented by maps that can be made consistent again after
// a process died in the middle of an operation on them (shared maps). Repair
// seizes every lock word of the map (Locker.Seize: free words, and words
// held by dead processes; it waits for live holders), restores the map's
// invariants from what its memory holds — an operation the dead process had
// not finished is either complete or absent afterwards, nothing is lost or
// duplicated, counts are exact — and unlocks. Its caller holds no lock of the
// map and holds the map's cross-process repair lock, so repairs never
// overlap.
type Repairer interface {
	Repair()
}

// ProgLookuper is implemented by maps whose BPF-program lookup differs from
// the syscall one: LRU hash maps, where a program's lookup marks the
// element referenced and a syscall lookup does not.
type ProgLookuper interface {
	LookupTouch(key, value []byte) error
}

// Family creates maps of one or more types.
type Family interface {
	// Check validates a in the kernel's order for this type (its
	// map_alloc_check and the validation part of map_alloc), returning the
	// kernel's errno.
	Check(a *Attr) error
	// BodySize is the size of the family's body in the region, and MaxEntries
	// the max_entries the map reports (after any type-specific rounding).
	Layout(a *Attr) (Layout, error)
	// Open returns the operations over r, whose header the command layer has
	// filled. A fresh region is all zeroes after the header, and families lay
	// out their bodies so that zero is the valid empty state.
	Open(r *region.Region, a *Attr, l Layout) (Ops, error)
	// Traits describes how the command layer applies generic rules to the type.
	Traits(a *Attr) Traits
}

// Layout is the outcome of a family's sizing of a map.
type Layout struct {
	BodySize   uint64 // bytes after the region header
	MaxEntries uint32 // max_entries as reported by bpf_map_info
	Memlock    uint64 // the kernel's memory-usage figure for the same map
	// RingData, when non-zero, asks for a ring region: the last RingData
	// bytes of the body are mapped a second time right after the body
	// (region.NewRing's layout), in every process that maps the map.
	RingData uint64
}

// Ops is one map's operations table. Buffers are sized by the command layer:
// keys are key_size bytes (nil for "no key" where the type allows it), values
// are the syscall value size (see Traits.PerCPU). Errors are uapi errnos.
type Ops interface {
	Lookup(key, value []byte) error
	Update(key, value []byte, flags uint64) error
	Delete(key []byte) error
	GetNextKey(key, next []byte) error
	// LookupAndDelete returns uapi.ENOTSUPP for types without it.
	LookupAndDelete(key, value []byte) error
	// Close releases the family's resources other than the region.
	Close() error
}

// BucketBatcher is implemented by hash maps, whose lookup batches walk buckets.
type BucketBatcher interface {
	// NumBuckets is the number of buckets; cursors are bucket indices.
	NumBuckets() uint32
	// CopyBucket copies bucket b's elements, in chain order, into keys and
	// values (starting at index 0), provided they number at most room and fit
	// the buffers; it returns how many the bucket holds and whether they were
	// copied (an empty bucket counts as copied). With
	// del it removes the copied elements, atomically with the copy.
	CopyBucket(b uint32, keys, values []byte, room uint32, del bool) (n uint32, copied bool)
}

// Memory is implemented by maps whose values can be mapped as memory
// (BPF_F_MMAPABLE arrays).
type Memory interface {
	// ValueArea returns the values as one byte slice: element i at
	// i*round_up(value_size, 8).
	ValueArea() []byte
}

// UpdateRule names how a type checks UPDATE flags.
type UpdateRule uint8

// Update flag rules.
const (
	// UpdateStd: flags beyond BPF_EXIST → EINVAL (hash, array, LPM).
	UpdateStd UpdateRule = iota
	// UpdatePush: BPF_NOEXIST or beyond BPF_EXIST → EINVAL (queue, stack).
	UpdatePush
	// UpdateAnyOnly: anything but BPF_ANY → EINVAL (bloom filter, map-in-map arrays).
	UpdateAnyOnly
	// UpdateNone: the type takes no element updates; its Update decides the errno.
	UpdateNone
)

// BatchKind names how a type implements one batch command.
type BatchKind uint8

// Batch implementations.
const (
	BatchNone    BatchKind = iota // ENOTSUPP
	BatchGeneric                  // the kernel's generic_map_*_batch
	BatchBucket                   // the hash family's bucket-granular batch
)

// Traits tells the command layer how the generic rules apply to a map.
type Traits struct {
	// PerCPU: values cross the API as round_up(value_size, 8) × possible CPUs.
	PerCPU bool
	// Update is the type's UPDATE flag rule.
	Update UpdateRule
	// LookupValueIn: LOOKUP's value buffer is an input, copied in from the
	// caller before the lookup (a NULL or short buffer is EFAULT) and never
	// written — the bloom filter's peek, whose probe is the value.
	LookupValueIn bool
	// Batches supported by the type.
	LookupBatch, LookupAndDeleteBatch, UpdateBatch, DeleteBatch BatchKind
}

// RoundUp8 rounds n up to a multiple of 8: the per-CPU slot stride.
func RoundUp8(n uint32) uint64 { return (uint64(n) + 7) &^ 7 }

// CheckProgAccess is the kernel's bpf_map_attr_access check shared by every
// type: BPF_F_RDONLY_PROG with BPF_F_WRONLY_PROG → EINVAL.
func CheckProgAccess(flags uint32) error {
	if flags&uapi.FProgAccessMask == uapi.FProgAccessMask {
		return uapi.EINVAL
	}
	return nil
}

// NoNode is NUMA_NO_NODE as a u32 numa_node: with BPF_F_NUMA_NODE it asks
// for no particular node, as if the flag were clear.
const NoNode = 1<<32 - 1

// HasNumaNode reports whether a asks for a particular NUMA node (the
// kernel's bpf_map_attr_numa_node(attr) != NUMA_NO_NODE).
func HasNumaNode(a *Attr) bool {
	return a.Flags&uapi.FNumaNode != 0 && a.NumaNode != NoNode
}

// RoundUpPow2 returns the smallest power of two ≥ n (n ≥ 1), or 0 if it does
// not fit in 32 bits.
func RoundUpPow2(n uint32) uint64 {
	p := uint64(1)
	for p < uint64(n) {
		p <<= 1
	}
	return p
}

// OpenDetached makes a map of family f without the command layer: the
// family's Check and Layout, a fresh region, and Open. It is how family
// tests and tools build a map; such a map has no id, name or seed (the
// region header's fields stay zero), and releasing the region frees it.
func OpenDetached(f Family, a *Attr) (Ops, *region.Region, error) {
	if err := f.Check(a); err != nil {
		return nil, nil, err
	}
	l, err := f.Layout(a)
	if err != nil {
		return nil, nil, err
	}
	var r *region.Region
	if l.RingData != 0 {
		r, _, err = region.NewRing(region.HeaderSize+l.BodySize-l.RingData, 0, l.RingData)
	} else {
		r, err = region.New(region.HeaderSize + l.BodySize)
	}
	if err != nil {
		return nil, nil, err
	}
	if a.Locks == nil {
		a.Locks = robust.New(nil)
	}
	ops, err := f.Open(r, a, l)
	if err != nil {
		_ = r.Release()
		return nil, nil, err
	}
	return ops, r, nil
}
