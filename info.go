package bpfmap

import (
	"runtime"
	"strings"

	"github.com/cilium/ebpf"
)

// MapInfo describes a map, as *ebpf.MapInfo does for kernel maps.
type MapInfo struct {
	// Type of the map.
	Type ebpf.MapType
	// KeySize is the size of a key in bytes.
	KeySize uint32
	// ValueSize is the size of a value in bytes.
	ValueSize uint32
	// MaxEntries is the maximum number of entries.
	MaxEntries uint32
	// Flags are the creation flags as the kernel stores them.
	Flags uint32
	// Name is the map's name.
	Name string

	id        ebpf.MapID
	mapExtra  uint64
	memlock   uint64
	frozen    bool
	footprint uint64
}

// Footprint is the size of the map's memory region in bytes: the address
// range it reserves, preallocated as the kernel preallocates (pages are
// committed by the operating system when first written).
func (mi *MapInfo) Footprint() uint64 { return mi.footprint }

// ID returns the map's id; the boolean is always true for bpfmap maps.
func (mi *MapInfo) ID() (ebpf.MapID, bool) { return mi.id, true }

// MapExtra returns the map_extra creation field.
func (mi *MapInfo) MapExtra() (uint64, bool) { return mi.mapExtra, true }

// Memlock returns the kernel's memory-usage estimate for a kernel map of the
// same shape (what bpftool shows as memlock).
func (mi *MapInfo) Memlock() (uint64, bool) { return mi.memlock, true }

// Frozen reports whether the map was frozen.
func (mi *MapInfo) Frozen() bool { return mi.frozen }

// Info returns the map's metadata.
func (m *Map) Info() (*MapInfo, error) {
	defer runtime.KeepAlive(m)
	in, err := m.h.Info()
	if err != nil {
		return nil, wrap(opInfo, err)
	}
	return &MapInfo{
		Type: ebpf.MapType(in.Type), KeySize: in.KeySize, ValueSize: in.ValueSize,
		MaxEntries: in.MaxEntries, Flags: in.MapFlags,
		Name: strings.TrimRight(string(in.Name[:]), "\x00"),
		id:   ebpf.MapID(in.ID), mapExtra: in.MapExtra, memlock: in.Memlock, frozen: in.Frozen,
		footprint: in.Footprint,
	}, nil
}
