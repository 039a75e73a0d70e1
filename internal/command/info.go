package command

import (
	"sync/atomic"

	"github.com/bpfmap/bpfmap/internal/array"
	"github.com/bpfmap/bpfmap/internal/hash"
	"github.com/bpfmap/bpfmap/internal/mapops"
	"github.com/bpfmap/bpfmap/internal/uapi"
)

// Info is what BPF_OBJ_GET_INFO_BY_FD and /proc/<pid>/fdinfo report of a map.
type Info struct {
	Type       uapi.MapType
	ID         uint32
	KeySize    uint32
	ValueSize  uint32
	MaxEntries uint32
	MapFlags   uint32 // creation flags minus BPF_F_RDONLY/BPF_F_WRONLY
	Name       [uapi.ObjNameLen]byte
	MapExtra   uint64
	Frozen     bool
	Memlock    uint64 // the kernel's memory estimate for the same map
	Footprint  uint64 // bytes of the map's region
	// PossibleCPUs is the number of per-CPU slots the map models.
	PossibleCPUs int
	// Readable and Writable are the handle's access mode.
	Readable, Writable bool
}

// liveMemlocker is implemented by maps whose memlock figure changes with
// their contents, as the kernel's map_mem_usage does for hash maps without
// preallocation and LPM tries: Info asks them instead of reporting the
// figure Layout gave at creation.
type liveMemlocker interface{ Memlock() uint64 }

// Info is BPF_OBJ_GET_INFO_BY_FD; a closed handle is EBADFD, as the kernel
// answers for an fd that is not open.
func (h *Handle) Info() (Info, error) {
	if h.closed.Load() {
		return Info{}, uapi.EBADFD
	}
	m := h.m
	memlock := m.memlock
	if l, ok := m.ops.(liveMemlocker); ok {
		memlock = l.Memlock()
	}
	return Info{
		Type: m.typ, ID: m.id, KeySize: m.keySize, ValueSize: m.valSize,
		MaxEntries: m.maxEnt, MapFlags: m.flags, Name: m.name, MapExtra: m.extra,
		Frozen: atomic.LoadUint32(m.frozen) != 0, Memlock: memlock,
		PossibleCPUs: m.ncpu, Readable: h.read, Writable: h.write,
		Footprint: uint64(m.r.Len()),
	}, nil
}

// SysValueSize is the number of value bytes each element command moves:
// value_size, or round_up(value_size, 8) × possible CPUs for per-CPU maps.
func (h *Handle) SysValueSize() uint32 { return h.m.sysVal }

// PerCPU reports whether the map's values are per CPU.
func (h *Handle) PerCPU() bool { return h.m.traits.PerCPU }

// LookupValueIn reports whether LOOKUP reads its value buffer as an input
// (a bloom filter's probe) instead of writing it.
func (h *Handle) LookupValueIn() bool { return h.m.traits.LookupValueIn }

// Memory returns the value area of a BPF_F_MMAPABLE array for direct access
// and a release function for the view, with mmap(2)'s answers on a map fd
// in the kernel's order: the handle must be readable, and writable for a
// writable view (EACCES); a type without map_mmap (every one but the array
// here) is ENOTSUPP; a read-only view of a handle without write access is
// a private mapping, which the map refuses (EINVAL); a writable view needs
// an unfrozen map (EPERM) without BPF_F_RDONLY_PROG (EACCES); last, an
// array without BPF_F_MMAPABLE is EINVAL. A writable view blocks freezing
// (EBUSY) in every process until released.
func (h *Handle) Memory(writable bool) ([]byte, func(), error) {
	m, err := h.live()
	if err != nil {
		return nil, nil, err
	}
	mem, ok := m.ops.(mapops.Memory)
	mmapable := ok && m.flags&uapi.FMmapable != 0
	switch {
	case !h.read:
		return nil, nil, uapi.EACCES
	case !h.write && writable:
		return nil, nil, uapi.EACCES
	case !mmapable && m.typ != uapi.MapTypeArray:
		return nil, nil, uapi.ENOTSUPP
	case !h.write:
		return nil, nil, uapi.EINVAL
	}
	if writable {
		atomic.AddUint32(m.mmaps, 1)
		var err error
		switch {
		case atomic.LoadUint32(m.frozen) != 0:
			err = uapi.EPERM
		case m.flags&uapi.FRdonlyProg != 0:
			err = uapi.EACCES
		case !mmapable:
			err = uapi.EINVAL
		}
		if err != nil {
			atomic.AddUint32(m.mmaps, ^uint32(0))
			return nil, nil, err
		}
		var once atomic.Bool
		return mem.ValueArea(), func() {
			if !once.Swap(true) {
				atomic.AddUint32(m.mmaps, ^uint32(0))
			}
		}, nil
	}
	if !mmapable {
		return nil, nil, uapi.EINVAL
	}
	return mem.ValueArea(), func() {}, nil
}

// KeepAlive returns a value that keeps the map's memory mapped while the
// caller holds it (see region.Region).
func (h *Handle) KeepAlive() any { return h.m.r }

// Readable reports whether a lookup through the handle passes the generic
// checks (open and readable), for callers that go straight to a family's
// inlined accessor on their hot path.
func (h *Handle) Readable() bool { return h.fast.Load()&fastRead != 0 }

// Writable reports whether an update with flags of at most BPF_EXIST, a
// key of the map's key size and a value of its value size passes every
// generic check of BPF_MAP_UPDATE_ELEM: the handle is open and writable,
// the map is not frozen, and its type takes plain keys and the standard
// update flags.
func (h *Handle) Writable() bool {
	return h.fast.Load()&fastWrite != 0 && atomic.LoadUint32(h.frozen) == 0
}

// Ops returns the map's operations, for a caller that makes a command only
// when every generic check of it is known to pass: after Readable, a lookup
// with no flags; after Writable, an update with flags of at most BPF_EXIST;
// either with a key of the map's key size and a value of its value size.
// Calling ops.Lookup or ops.Update is then exactly what Lookup or Update
// does.
func (h *Handle) Ops() mapops.Ops { return h.ops }

// WordHash returns the hash family's map when the handle's map is a HASH or
// LRU_HASH with 4-byte keys and one 8-byte word values, so that the public
// API can look a key up with the family's LookupWord after Readable; nil
// otherwise.
func (h *Handle) WordHash() *hash.Map {
	t := h.m.typ
	if hm, ok := h.m.ops.(*hash.Map); ok && (t == uapi.MapTypeHash || t == uapi.MapTypeLRUHash) &&
		h.m.keySize == 4 && h.m.valSize == 8 {
		return hm
	}
	return nil
}

// WordArray returns the array family's map when the handle's map is an
// ARRAY whose values are one 8-byte word, so that the public API can read
// an element with the family's inlined Word accessor after Readable; nil
// otherwise.
func (h *Handle) WordArray() *array.Map {
	if a, ok := h.m.ops.(*array.Map); ok && h.m.typ == uapi.MapTypeArray && h.m.valSize == 8 {
		return a
	}
	return nil
}
