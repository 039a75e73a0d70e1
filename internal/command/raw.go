package command

import (
	"crypto/sha256"
	"encoding/binary"
	"sync/atomic"

	"github.com/bpfmap/bpfmap/internal/mapops"
	"github.com/bpfmap/bpfmap/internal/uapi"
)

// What the raw bpf(2) surface (package sys) needs beyond the other Handle
// methods: map-in-map values given as file descriptors, the size of the
// batch cursors, and the map hash of BPF_OBJ_GET_INFO_BY_FD.

// UpdateFD is BPF_MAP_UPDATE_ELEM with the kernel's value format for every
// type: for a map-in-map the value holds a u32 file descriptor, which
// resolve turns into a new handle of the inner map (UpdateFD closes it) or
// the kernel's error for that fd (EBADF not open, EINVAL not a map), at the
// point of the kernel's order where it resolves the fd. For other types
// it is Update.
func (h *Handle) UpdateFD(key, value []byte, flags uint64, resolve func(fd uint32) (*Handle, error)) error {
	if h.closed.Load() || h.m.inner == nil {
		return h.Update(key, value, flags)
	}
	m, key, err := h.beginUpdate(key, flags)
	if err != nil {
		return err
	}
	if uint32(len(value)) < m.sysVal {
		return uapi.EFAULT
	}
	fd := binary.LittleEndian.Uint32(value)
	return m.updateSlot(key, flags, func() (*Handle, error) { return resolve(fd) })
}

// BatchCursorSize is the size of the in_batch and out_batch buffers of
// BPF_MAP_LOOKUP_BATCH (andDelete false) or BPF_MAP_LOOKUP_AND_DELETE_BATCH:
// 4 (a u32 bucket index) for the hash family's batches, key_size for the
// generic batch, 0 where the type has no such batch.
func (h *Handle) BatchCursorSize(andDelete bool) uint32 {
	kind := h.m.traits.LookupBatch
	if andDelete {
		kind = h.m.traits.LookupAndDeleteBatch
	}
	switch kind {
	case mapops.BatchBucket:
		return 4
	case mapops.BatchGeneric:
		return h.m.keySize
	}
	return 0
}

// IsMapInMap reports whether the handle's map is an ARRAY_OF_MAPS or
// HASH_OF_MAPS, whose UPDATE values are inner maps.
func (h *Handle) IsMapInMap() bool { return h.m.inner != nil }

// HashSize is the only hash_size BPF_OBJ_GET_INFO_BY_FD accepts (SHA-256).
const HashSize = sha256.Size

// Hash is the map hash BPF_OBJ_GET_INFO_BY_FD reports when asked for one
// (bpf_map_info.hash, hash_size), in the kernel's order: only ARRAY maps
// have one (EINVAL for other types), size must be HashSize (EINVAL), and
// the map must be frozen (EPERM). It is the SHA-256 of the value area:
// every element's value padded with zeroes to a multiple of 8 bytes, in
// index order.
func (h *Handle) Hash(size uint32) ([HashSize]byte, error) {
	var sum [HashSize]byte
	m, err := h.live()
	if err != nil {
		return sum, err
	}
	if m.typ != uapi.MapTypeArray {
		return sum, uapi.EINVAL
	}
	if size != HashSize {
		return sum, uapi.EINVAL
	}
	if atomic.LoadUint32(m.frozen) == 0 {
		return sum, uapi.EPERM
	}
	d := sha256.New()
	elem := make([]byte, mapops.RoundUp8(m.valSize))
	var key [4]byte
	for i := uint32(0); i < m.maxEnt; i++ {
		binary.LittleEndian.PutUint32(key[:], i)
		clear(elem)
		if err := m.ops.Lookup(key[:], elem[:m.valSize]); err != nil {
			return sum, err
		}
		d.Write(elem)
	}
	copy(sum[:], d.Sum(nil))
	return sum, nil
}

// CheckLookupFlags is the flags check LOOKUP_ELEM and
// LOOKUP_AND_DELETE_ELEM make before they resolve the map fd: only
// BPF_F_LOCK may be set (EINVAL).
func CheckLookupFlags(flags uint64) error {
	if flags&^uapi.FLock != 0 {
		return uapi.EINVAL
	}
	return nil
}
