// Package command is bpfmap's one command layer: the generic rules of the
// kernel's bpf(2) map commands (kernel/bpf/syscall.c) — creation checks in
// the kernel's order, map names, fd access modes, frozen maps, key and value
// buffer rules, UPDATE flag rules, and the batch loops — applied once, before
// a dispatch to the map type's operations table (internal/mapops).
//
// A Handle plays the part of a map file descriptor: a reference to a map with
// an access mode. Buffers stand for user pointers: a nil slice is a NULL
// pointer, and a slice shorter than the kernel would read or write is a
// faulting pointer (EFAULT). Every error is a uapi errno, or an
// *UnsupportedTypeError for types bpfmap does not implement yet.
package command

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"

	"github.com/bpfmap/bpfmap/internal/array"
	"github.com/bpfmap/bpfmap/internal/bloom"
	"github.com/bpfmap/bpfmap/internal/hash"
	"github.com/bpfmap/bpfmap/internal/lpm"
	"github.com/bpfmap/bpfmap/internal/mapinmap"
	"github.com/bpfmap/bpfmap/internal/mapops"
	"github.com/bpfmap/bpfmap/internal/namespace"
	"github.com/bpfmap/bpfmap/internal/queue"
	"github.com/bpfmap/bpfmap/internal/region"
	"github.com/bpfmap/bpfmap/internal/ringbuf"
	"github.com/bpfmap/bpfmap/internal/robust"
	"github.com/bpfmap/bpfmap/internal/uapi"
)

// families maps each implemented type to its family.
var families = map[uapi.MapType]mapops.Family{
	uapi.MapTypeHash:          hash.Family,
	uapi.MapTypePercpuHash:    hash.Family,
	uapi.MapTypeLRUHash:       hash.Family,
	uapi.MapTypeLRUPercpuHash: hash.Family,
	uapi.MapTypeLPMTrie:       lpm.Family,
	uapi.MapTypeArray:         array.Family,
	uapi.MapTypePercpuArray:   array.Family,
	uapi.MapTypeQueue:         queue.Family,
	uapi.MapTypeStack:         queue.Family,
	uapi.MapTypeBloomFilter:   bloom.Family,
	uapi.MapTypeRingbuf:       ringbuf.Family,
	uapi.MapTypeArrayOfMaps:   mapinmap.Family,
	uapi.MapTypeHashOfMaps:    mapinmap.Family,
}

// Implemented reports whether bpfmap implements map type t.
func Implemented(t uapi.MapType) bool { return families[t] != nil }

// UnsupportedTypeError is returned by Create for a map type the kernel knows
// but bpfmap does not implement yet. Its Errno is the kernel's answer for a
// type that is not compiled in.
type UnsupportedTypeError struct{ Type uapi.MapType }

func (e *UnsupportedTypeError) Error() string {
	return fmt.Sprintf("map type %d (%s) is not implemented by bpfmap", uint32(e.Type), TypeName(e.Type))
}

// Errno is EINVAL, as from a kernel built without the type.
func (e *UnsupportedTypeError) Errno() error { return uapi.EINVAL }

// CreateAttr is BPF_MAP_CREATE's attr (the fields of union bpf_attr that
// map creation reads in Linux 6.18).
type CreateAttr struct {
	MapType               uint32
	KeySize               uint32
	ValueSize             uint32
	MaxEntries            uint32
	MapFlags              uint32
	InnerMapFD            uint32
	NumaNode              uint32
	MapName               [uapi.ObjNameLen]byte
	MapIfindex            uint32
	BTFFD                 uint32
	BTFKeyTypeID          uint32
	BTFValueTypeID        uint32
	BTFVmlinuxValueTypeID uint32
	MapExtra              uint64
	ValueTypeBTFObjFD     int32
	MapTokenFD            int32
	ExclProgHash          uint64
	ExclProgHashSize      uint32

	// InnerMap is the inner-map template of an ARRAY_OF_MAPS or
	// HASH_OF_MAPS: the map inner_map_fd would name. There are no file
	// descriptors, so when it is nil InnerMapFD is read as one: 0 is the
	// kernel's fd 0, not a map (EINVAL), anything else an fd that is not
	// open (EBADF). Other types ignore both, as the kernel does.
	InnerMap *Handle
}

// MaxCPUs is the largest number of possible CPUs a map can model: the
// kernel's largest NR_CPUS (CONFIG_NR_CPUS_RANGE_END on x86-64).
const MaxCPUs = 8192

// Options are the host properties a map models.
type Options struct {
	// PossibleCPUs is the number of per-CPU slots; 0 means this machine's.
	// More than MaxCPUs is EINVAL.
	PossibleCPUs int
	// Unprivileged drops CAP_SYS_ADMIN (BPF_F_ZERO_SEED on hash maps → EPERM).
	Unprivileged bool
	// CPU returns the CPU an operation runs on, for the types whose
	// behaviour depends on it (LRU_HASH and LRU_PERCPU_HASH: which CPU's
	// LRU lists an update uses, and so which keys it evicts). The result is
	// reduced modulo the possible CPUs (negative → 0). nil: the scheduler
	// processor running the caller (internal/cpuid).
	CPU func() int
	// Namespace is the pin namespace the map is created in, so that other
	// processes can open it; nil: the default namespace
	// (namespace.Default), if it can be opened. Private overrides it.
	Namespace *namespace.NS
	// Private makes a map in this process's memory only: no other process
	// can open it and it cannot be pinned.
	Private bool
}

// Map is one map object: its region, operations and identity. It lives
// while a Handle refers to it.
type Map struct {
	r       *region.Region
	ops     mapops.Ops
	traits  mapops.Traits
	typ     uapi.MapType
	keySize uint32
	valSize uint32 // value_size as created
	sysVal  uint32 // value bytes crossing the API (per-CPU: stride × CPUs)
	maxEnt  uint32
	flags   uint32 // stored map_flags (RDONLY/WRONLY and TOKEN_FD removed)
	extra   uint64
	name    [uapi.ObjNameLen]byte
	id      uint32
	ncpu    int
	memlock uint64
	frozen  *uint32 // in the region header
	mmaps   *uint32 // writable memory views in every process (block freeze)
	refs    atomic.Int64

	// Map-in-map: the inner-map template (in the region header) and the
	// writers' state; nil for other types.
	inner *region.InnerMeta
	mim   *mimState

	// Shared maps: the object in the pin namespace and the map's lock
	// words' owner (nil and a local Locker for private maps).
	obj    *namespace.Object
	locker *robust.Locker
}

// Handle is a reference to a map with an access mode, like a map fd.
type Handle struct {
	m      *Map
	read   bool
	write  bool
	closed atomic.Bool

	// The hot path's copy of what Lookup and Update check: fast holds
	// fastRead while the handle is open and readable, and fastWrite while
	// it is open and writable and the map's type takes plain keys and
	// standard UPDATE flags; Close clears it.
	fast   atomic.Uint32
	ks, vs uint32
	ops    mapops.Ops
	frozen *uint32
}

const (
	fastRead = 1 << iota
	fastWrite
)

func newHandle(m *Map, read, write bool) *Handle {
	h := &Handle{m: m, read: read, write: write, ks: m.keySize, vs: m.sysVal, ops: m.ops, frozen: m.frozen}
	var f uint32
	if read {
		f |= fastRead // lookup's generic checks are the same for every type
	}
	if write && m.keySize != 0 && m.traits.Update == mapops.UpdateStd && m.inner == nil {
		f |= fastWrite // update's fast path applies the standard flag rule
	}
	h.fast.Store(f)
	return h
}

// lastID is the id allocator of private maps made without a namespace:
// ids grow and are not reused while the counter has room, as the kernel's
// cyclic allocator behaves, in the user-space id range (namespace.MinID to
// MaxID). With a namespace, ids come from its allocator.
var lastID atomic.Uint32

func nextID(ns *namespace.NS) uint32 {
	if ns != nil {
		return ns.ReserveID()
	}
	for {
		id := lastID.Add(1)
		if namespace.ValidID(id) {
			return id
		}
		lastID.CompareAndSwap(id, namespace.MinID-1)
	}
}

// Create is BPF_MAP_CREATE: the generic checks of the kernel's map_create in
// its order, the type's own checks, allocation, the name check, and a new
// read-write (or RDONLY/WRONLY) handle.
func Create(a *CreateAttr, o Options) (*Handle, error) {
	// BPF_F_TOKEN_FD is remembered and stripped first, so that the type's
	// flag checks do not see it; the token fd itself is only resolved
	// after the type's map_alloc_check.
	flags := a.MapFlags &^ uapi.FTokenFD
	tokenFlag := a.MapFlags&uapi.FTokenFD != 0
	if a.BTFVmlinuxValueTypeID != 0 {
		if uapi.MapType(a.MapType) != uapi.MapTypeStructOps || a.BTFKeyTypeID != 0 || a.BTFValueTypeID != 0 {
			return nil, uapi.EINVAL
		}
	} else if a.BTFKeyTypeID != 0 && a.BTFValueTypeID == 0 {
		return nil, uapi.EINVAL
	}
	t := uapi.MapType(a.MapType)
	if t != uapi.MapTypeBloomFilter && t != uapi.MapTypeArena && a.MapExtra != 0 {
		return nil, uapi.EINVAL
	}
	if flags&uapi.FAccessMask == uapi.FAccessMask {
		return nil, uapi.EINVAL
	}
	if flags&uapi.FNumaNode != 0 && a.NumaNode != 0 && a.NumaNode != mapops.NoNode {
		// One NUMA node, node 0, is modelled.
		return nil, uapi.EINVAL
	}
	if t == uapi.MapTypeUnspec || t >= uapi.MapTypeMax {
		return nil, uapi.EINVAL
	}
	fam := families[t]
	if fam == nil {
		return nil, &UnsupportedTypeError{Type: t}
	}
	ncpu := o.PossibleCPUs
	if ncpu <= 0 {
		ncpu = PossibleCPUs()
	}
	if ncpu > MaxCPUs {
		return nil, uapi.EINVAL
	}
	ma := &mapops.Attr{
		Type: t, KeySize: a.KeySize, ValueSize: a.ValueSize, MaxEntries: a.MaxEntries,
		Flags: flags, NumaNode: a.NumaNode, MapExtra: a.MapExtra, InnerMapFD: a.InnerMapFD,
		PossibleCPUs: ncpu, SysAdmin: !o.Unprivileged, CPU: o.CPU,
	}
	if err := fam.Check(ma); err != nil {
		return nil, err
	}
	if tokenFlag {
		// No BPF tokens exist for user-space maps; the kernel rejects an fd
		// that is not a token with EINVAL.
		return nil, uapi.EINVAL
	}
	if a.MapIfindex != 0 {
		// Device offload: no device can take a user-space map.
		if t == uapi.MapTypeHash || t == uapi.MapTypeArray {
			return nil, uapi.EOPNOTSUPP
		}
		return nil, uapi.EINVAL
	}
	var inner region.InnerMeta
	if isMapInMap(t) {
		// map_alloc resolves the template first (bpf_map_meta_alloc).
		var err error
		if inner, err = template(a); err != nil {
			return nil, err
		}
	}
	lay, err := fam.Layout(ma)
	if err != nil {
		return nil, err
	}
	name, err := checkName(a.MapName)
	if err != nil {
		return nil, err
	}
	if a.BTFKeyTypeID != 0 || a.BTFValueTypeID != 0 || a.BTFVmlinuxValueTypeID != 0 {
		return nil, uapi.EINVAL // BTF objects cannot be given to user-space maps
	}
	if a.ExclProgHash != 0 || a.ExclProgHashSize != 0 {
		return nil, uapi.EINVAL // programs cannot be bound to user-space maps
	}
	ns := o.Namespace
	if ns == nil && !o.Private {
		ns, _ = namespace.Default() // unusable namespace: a private map
	}
	if o.Private {
		ns = nil
	}
	if ns != nil {
		repairStale(ns)
	}
	r, obj, err := newRegion(ns, lay)
	if err != nil {
		if outOfFDs(err) {
			return nil, err // no descriptor for the map's object file
		}
		return nil, uapi.ENOMEM
	}
	m := &Map{
		r: r, traits: fam.Traits(ma), typ: t, keySize: a.KeySize, valSize: a.ValueSize,
		maxEnt: lay.MaxEntries, flags: flags &^ uapi.FAccessMask, extra: a.MapExtra,
		name: name, ncpu: ncpu, memlock: lay.Memlock, obj: obj,
	}
	if obj != nil {
		m.id = obj.ID()
	} else {
		m.id = nextID(ns)
	}
	m.sysVal = a.ValueSize
	if m.traits.PerCPU {
		m.sysVal = uint32(mapops.RoundUp8(a.ValueSize) * uint64(ncpu))
	}
	h := r.Header()
	h.MapType, h.KeySize, h.ValueSize, h.MaxEntries, h.MapFlags = a.MapType, a.KeySize, a.ValueSize, lay.MaxEntries, m.flags
	h.Name, h.ID, h.PossibleCPUs, h.MapExtra = name, m.id, uint32(ncpu), a.MapExtra
	h.BodyOffset, h.Size, h.CreateMaxEntries = region.HeaderSize, uint64(r.Len()), a.MaxEntries
	if flags&uapi.FZeroSeed == 0 {
		h.Seed = randomSeed()
	}
	h.Layout = region.LayoutVersion
	if isMapInMap(t) {
		h.Inner = inner
		m.inner = &h.Inner
		m.mim = &mimState{local: map[string]*Handle{}}
	}
	// The magic goes last: a sweep leaves an object without it alone for a
	// while, and an opener refuses it.
	region.StoreRelease64(r.Uint64(0), binary.LittleEndian.Uint64([]byte(region.Magic)))
	m.frozen, m.mmaps = &h.Frozen, &h.Mmaps
	if err := m.open(fam, ma, lay, false); err != nil {
		if obj != nil {
			_, _ = obj.Close(r)
		} else {
			_ = r.Release()
		}
		return nil, err
	}
	m.refs.Store(1)
	return newHandle(m, flags&uapi.FWronly == 0, flags&uapi.FRdonly == 0), nil
}

// checkName is the kernel's bpf_obj_name_cpy: up to 15 characters from
// [A-Za-z0-9_.] followed by a NUL within the 16 bytes; bytes after the first
// NUL are ignored.
func checkName(src [uapi.ObjNameLen]byte) ([uapi.ObjNameLen]byte, error) {
	var dst [uapi.ObjNameLen]byte
	for i, c := range src {
		if c == 0 {
			return dst, nil
		}
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.') {
			return dst, uapi.EINVAL
		}
		dst[i] = c
	}
	return dst, uapi.EINVAL
}

// Dup returns a new handle to the same map with the same mode (dup(2)).
func (h *Handle) Dup() (*Handle, error) {
	if h.closed.Load() {
		return nil, uapi.EBADF
	}
	h.m.refs.Add(1)
	return newHandle(h.m, h.read, h.write), nil
}

// Close drops the handle; the last handle's close frees the map.
func (h *Handle) Close() error {
	if h.closed.Swap(true) {
		return uapi.EBADF
	}
	h.fast.Store(0)
	if h.m.refs.Add(-1) == 0 {
		return h.m.close()
	}
	return nil
}

// canRead and canWrite are map_get_sys_perms: a frozen map has no writers.
func (h *Handle) canRead() bool { return h.read }
func (h *Handle) canWrite() bool {
	return h.write && atomic.LoadUint32(h.m.frozen) == 0
}

// live resolves the handle like __bpf_map_get resolves an fd.
func (h *Handle) live() (*Map, error) {
	if h.closed.Load() {
		return nil, uapi.EBADF
	}
	return h.m, nil
}

// copyKey is ___bpf_copy_key: maps with key_size 0 take no key pointer.
func (m *Map) copyKey(key []byte) ([]byte, error) {
	if m.keySize == 0 {
		if key != nil {
			return nil, uapi.EINVAL
		}
		return nil, nil
	}
	if uint32(len(key)) < m.keySize {
		return nil, uapi.EFAULT
	}
	return key[:m.keySize], nil
}

// checkUpdateFlags applies the type's UPDATE flag rule.
func (m *Map) checkUpdateFlags(flags uint64) error {
	switch m.traits.Update {
	case mapops.UpdateStd:
		if flags > uapi.Exist {
			return uapi.EINVAL
		}
	case mapops.UpdatePush:
		if flags == uapi.NoExist || flags > uapi.Exist {
			return uapi.EINVAL
		}
	case mapops.UpdateAnyOnly:
		if flags != uapi.Any {
			return uapi.EINVAL
		}
	}
	return nil
}
