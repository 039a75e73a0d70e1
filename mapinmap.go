package bpfmap

import (
	"fmt"
	"runtime"

	"github.com/cilium/ebpf"

	"github.com/bpfmap/bpfmap/internal/command"
	"github.com/bpfmap/bpfmap/internal/uapi"
)

// Maps of maps (ebpf.ArrayOfMaps, ebpf.HashOfMaps).
//
// A map-in-map is created with an inner-map template: MapOptions.InnerMap,
// or a temporary map made from spec.InnerMap (as cilium/ebpf does; a
// spec.InnerMap with Pinning is refused, as cilium/ebpf refuses it). Only
// the template's type, key and value size, flags and max_entries are kept,
// and every inner map stored later must match them (the kernel's
// bpf_map_meta_equal; max_entries only for ARRAY inner maps without
// BPF_F_INNER_MAP), else EINVAL.
//
// Update(key, inner *Map, flags) stores an inner map; Lookup into a
// *uint32 returns the inner map's id, as the kernel's lookup does, and into
// a **Map opens the inner map by that id (a new handle the caller closes;
// for a Private map-in-map, a new handle of the map in the slot), as
// cilium/ebpf's Lookup into **ebpf.Map does. Delete empties a slot.
// LookupAndDelete is ENOTSUPP (ebpf.ErrNotSupported).
//
// A slot holds its inner map alive: the inner map keeps its id and can be
// opened with NewMapFromID while it sits in any slot of any map-in-map,
// after every handle and pin of it is gone, in every process; once it is
// removed from its last slot (and has no handle or pin) it dies and its id
// disappears. The outer map's death releases its slots' maps.
//
// Differences from kernel maps: a map-in-map that other processes can open
// (the default) takes only inner maps of its own namespace (a Private map
// or a map of another namespace is EINVAL); a Private map-in-map takes any
// map. Where the kernel's value is an fd — Update with a uint32 or []byte
// value, and BatchUpdate — bpfmap's value is the inner map's id (an id
// of no live map of the namespace is EBADF), since there are no fds.

// innerTemplate returns the template handle for a map-in-map spec and a
// function that releases what it made.
func innerTemplate(spec *ebpf.MapSpec, opts MapOptions) (*command.Handle, func(), error) {
	if opts.InnerMap != nil {
		return opts.InnerMap.h, func() { runtime.KeepAlive(opts.InnerMap) }, nil
	}
	if spec.InnerMap == nil {
		return nil, nil, argError(opCreate, fmt.Sprintf("%s requires InnerMap", spec.Type), uapi.EINVAL)
	}
	if spec.InnerMap.Pinning != ebpf.PinNone {
		return nil, nil, argError(opCreate, "inner maps cannot be pinned", uapi.EINVAL)
	}
	inner := spec.InnerMap.Copy()
	inner.Contents = nil
	t, err := NewMapWithOptions(inner, MapOptions{PossibleCPUs: opts.PossibleCPUs, CPU: opts.CPU, Private: true})
	if err != nil {
		return nil, nil, fmt.Errorf("create inner map template: %w", err)
	}
	return t.h, func() { t.Close() }, nil
}

// updateInner is Update with a *Map value on a map-in-map.
func (m *Map) updateInner(key any, inner *Map, flags ebpf.MapUpdateFlags) error {
	k, err := m.key(opUpdate, key)
	if err != nil {
		return err
	}
	var ih *command.Handle
	if inner != nil {
		ih = inner.h
	}
	err = m.h.UpdateMap(k, ih, uint64(flags))
	runtime.KeepAlive(m)
	runtime.KeepAlive(inner)
	return wrap(opUpdate, err)
}

// lookupInner is Lookup into a **Map: the id in the slot, opened.
func (m *Map) lookupInner(k []byte, out **Map, flags ebpf.MapLookupFlags) error {
	if out == nil {
		return argError(opLookup, "nil **Map", uapi.EINVAL)
	}
	if _, ok := m.h.InnerTemplate(); !ok {
		return argError(opLookup, "a **Map value needs a map-in-map", uapi.EINVAL)
	}
	h, err := m.h.LookupMap(k, uint64(flags))
	runtime.KeepAlive(m)
	if err != nil {
		return wrap(opLookup, err)
	}
	*out = newMap(h)
	return nil
}
