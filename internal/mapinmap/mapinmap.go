// Package mapinmap implements the bodies of BPF_MAP_TYPE_ARRAY_OF_MAPS and
// BPF_MAP_TYPE_HASH_OF_MAPS: maps whose values are u32 ids of other maps.
//
// A family here only stores ids. Everything that involves the inner maps
// themselves — the template given at creation, resolving and checking an
// inner map on update, and the reference a slot holds on its inner map —
// is the command layer's (internal/command/mapinmap.go), because only the
// command layer knows map objects and handles. Ops.Update and Ops.Delete
// here change a slot; the command layer calls them with the outer map's
// writer lock held and the inner map's reference prepared.
//
// ARRAY_OF_MAPS is an array of max_entries u32 slots (0: empty), each read
// and written with one atomic access, so a reader never sees a torn id and
// a writer killed at any point leaves each slot old or new. The kernel's
// rules: LOOKUP of an index past the end or of an empty slot is ENOENT,
// UPDATE of an index past the end E2BIG, DELETE E2BIG past the end and
// ENOENT for an empty slot, GET_NEXT_KEY walks every index (empty or not)
// like an ARRAY's, LOOKUP_AND_DELETE is ENOTSUPP.
//
// HASH_OF_MAPS is the hash family's table (internal/hash) with 4-byte
// values, so iteration order, capacity, flag rules and batches are the
// HASH map's; only LOOKUP_AND_DELETE is ENOTSUPP, as in the kernel.
package mapinmap

import (
	"encoding/binary"
	"sync/atomic"

	"github.com/bpfmap/bpfmap/internal/array"
	"github.com/bpfmap/bpfmap/internal/hash"
	"github.com/bpfmap/bpfmap/internal/mapops"
	"github.com/bpfmap/bpfmap/internal/region"
	"github.com/bpfmap/bpfmap/internal/uapi"
)

// Family creates ARRAY_OF_MAPS and HASH_OF_MAPS maps.
var Family mapops.Family = family{}

type family struct{}

// Check is fd_array_map_alloc_check / fd_htab_map_alloc_check: value_size
// must be 4 (an fd in, an id out); arrays refuse BPF_F_RDONLY_PROG and
// BPF_F_WRONLY_PROG; then the ARRAY or HASH rules. The inner-map template
// is checked by the command layer afterwards, as map_alloc does.
func (family) Check(a *mapops.Attr) error {
	if a.ValueSize != 4 {
		return uapi.EINVAL
	}
	if a.Type == uapi.MapTypeArrayOfMaps {
		if a.Flags&(uapi.FRdonlyProg|uapi.FWronlyProg) != 0 {
			return uapi.EINVAL
		}
		return array.Family.Check(a)
	}
	return hash.Family.Check(a)
}

// Layout sizes the body: max_entries u32 slots after a page for arrays,
// the hash family's table for hashes. Memlock is the ARRAY's or HASH's
// figure for the same attributes, as the kernel's array_map_mem_usage and
// htab_map_mem_usage give it (value_size 4 rounds to the 8-byte pointer
// the kernel's slots hold; a HASH_OF_MAPS has no extra elements, which
// the hash family accounts for).
func (family) Layout(a *mapops.Attr) (mapops.Layout, error) {
	if a.Type == uapi.MapTypeArrayOfMaps {
		l, err := array.Family.Layout(a)
		if err != nil {
			return l, err
		}
		l.BodySize = uapi.PageSize - region.HeaderSize + 4*uint64(a.MaxEntries)
		return l, nil
	}
	return hash.Family.Layout(a)
}

// Traits: UPDATE flags are BPF_ANY only for arrays, the hash rule for
// hashes. Arrays have the generic lookup and update batches; hashes the
// hash family's batches.
func (family) Traits(a *mapops.Attr) mapops.Traits {
	if a.Type == uapi.MapTypeArrayOfMaps {
		return mapops.Traits{
			Update:      mapops.UpdateAnyOnly,
			LookupBatch: mapops.BatchGeneric,
			UpdateBatch: mapops.BatchGeneric,
		}
	}
	return hash.Family.Traits(a)
}

// Open returns the operations over the region.
func (family) Open(r *region.Region, a *mapops.Attr, l mapops.Layout) (mapops.Ops, error) {
	if a.Type == uapi.MapTypeArrayOfMaps {
		return &Array{r: r, mem: r.Mem(), max: a.MaxEntries}, nil
	}
	ops, err := hash.Family.Open(r, a, l)
	if err != nil {
		return nil, err
	}
	return &Hash{Ops: ops}, nil
}

// Array is an ARRAY_OF_MAPS body: one u32 id per index, 0 for empty.
type Array struct {
	r   *region.Region
	mem region.Mem
	max uint32
}

func (m *Array) slot(i uint32) *uint32 { return m.mem.Uint32(uapi.PageSize + 4*uint64(i)) }

// Lookup copies the id in slot key; ENOENT past the end or for an empty
// slot.
func (m *Array) Lookup(key, value []byte) error {
	i := binary.LittleEndian.Uint32(key)
	if i >= m.max {
		return uapi.ENOENT
	}
	id := atomic.LoadUint32(m.slot(i))
	if id == 0 {
		return uapi.ENOENT
	}
	binary.LittleEndian.PutUint32(value, id)
	return nil
}

// Update stores the id in value in slot key (E2BIG past the end). The
// command layer has checked flags (BPF_ANY only).
func (m *Array) Update(key, value []byte, _ uint64) error {
	i := binary.LittleEndian.Uint32(key)
	if i >= m.max {
		return uapi.E2BIG
	}
	atomic.StoreUint32(m.slot(i), binary.LittleEndian.Uint32(value))
	return nil
}

// Delete empties slot key: E2BIG past the end, ENOENT if empty.
func (m *Array) Delete(key []byte) error {
	i := binary.LittleEndian.Uint32(key)
	if i >= m.max {
		return uapi.E2BIG
	}
	if atomic.SwapUint32(m.slot(i), 0) == 0 {
		return uapi.ENOENT
	}
	return nil
}

// GetNextKey is array_map_get_next_key: no key or one past the end starts
// at 0; the last index is ENOENT.
func (m *Array) GetNextKey(key, next []byte) error {
	if key == nil || binary.LittleEndian.Uint32(key) >= m.max {
		binary.LittleEndian.PutUint32(next, 0)
		return nil
	}
	i := binary.LittleEndian.Uint32(key)
	if i == m.max-1 {
		return uapi.ENOENT
	}
	binary.LittleEndian.PutUint32(next, i+1)
	return nil
}

// LookupAndDelete is ENOTSUPP for map-in-map types.
func (m *Array) LookupAndDelete(key, value []byte) error { return uapi.ENOTSUPP }

// Close releases nothing: the body lives in the region.
func (m *Array) Close() error { return nil }

// Hash is a HASH_OF_MAPS body: the hash family's map, without
// LOOKUP_AND_DELETE.
type Hash struct {
	mapops.Ops
}

// LookupAndDelete is ENOTSUPP for map-in-map types.
func (m *Hash) LookupAndDelete(key, value []byte) error { return uapi.ENOTSUPP }

// NumBuckets is the hash table's bucket count (for the lookup batches).
func (m *Hash) NumBuckets() uint32 { return m.Ops.(mapops.BucketBatcher).NumBuckets() }

// CopyBucket copies (and with del removes) one bucket's elements.
func (m *Hash) CopyBucket(b uint32, keys, values []byte, room uint32, del bool) (uint32, bool) {
	return m.Ops.(mapops.BucketBatcher).CopyBucket(b, keys, values, room, del)
}

// Memlock is the hash table's current memlock figure (Map.Memlock of
// internal/hash: it follows the element count without preallocation).
func (m *Hash) Memlock() uint64 { return m.Ops.(*hash.Map).Memlock() }

// Repair restores the hash table after a process died inside an
// operation on it.
func (m *Hash) Repair() {
	if r, ok := m.Ops.(mapops.Repairer); ok {
		r.Repair()
	}
}

var (
	_ mapops.BucketBatcher = (*Hash)(nil)
	_ mapops.Repairer      = (*Hash)(nil)
)
