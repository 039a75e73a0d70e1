package command

import (
	"encoding/binary"

	"github.com/bpfmap/bpfmap/internal/mapops"
	"github.com/bpfmap/bpfmap/internal/uapi"
)

// Batch is the batch part of bpf_attr. InBatch and OutBatch are the cursor
// buffers (a u32 bucket index for hash lookups, a key otherwise); Keys and
// Values are packed arrays. Count is read as the capacity and written back
// as the number of elements processed, as the kernel writes attr.batch.count.
type Batch struct {
	InBatch, OutBatch []byte
	Keys, Values      []byte
	Count             uint32
	ElemFlags         uint64
	Flags             uint64

	// InnerFD, when set, makes the values of a map-in-map UPDATE batch
	// file descriptors, as in the kernel: InnerFD resolves each to a new
	// handle of the inner map (which the batch closes). Unset, values are
	// inner-map ids (the raw deviation above Handle.Update).
	InnerFD func(fd uint32) (*Handle, error)
}

type batchCmd int

const (
	cmdLookup batchCmd = iota
	cmdLookupAndDelete
	cmdUpdate
	cmdDelete
)

// LookupBatch is BPF_MAP_LOOKUP_BATCH.
func (h *Handle) LookupBatch(b *Batch) error { return h.batch(cmdLookup, b) }

// LookupAndDeleteBatch is BPF_MAP_LOOKUP_AND_DELETE_BATCH.
func (h *Handle) LookupAndDeleteBatch(b *Batch) error { return h.batch(cmdLookupAndDelete, b) }

// UpdateBatch is BPF_MAP_UPDATE_BATCH.
func (h *Handle) UpdateBatch(b *Batch) error { return h.batch(cmdUpdate, b) }

// DeleteBatch is BPF_MAP_DELETE_BATCH.
func (h *Handle) DeleteBatch(b *Batch) error { return h.batch(cmdDelete, b) }

// batch is bpf_map_do_batch: permissions, then the type's implementation.
func (h *Handle) batch(cmd batchCmd, b *Batch) error {
	m, err := h.live()
	if err != nil {
		return err
	}
	hasRead := cmd == cmdLookup || cmd == cmdLookupAndDelete
	hasWrite := cmd != cmdLookup
	if hasRead && !h.canRead() || hasWrite && !h.canWrite() {
		return uapi.EPERM
	}
	var kind mapops.BatchKind
	switch cmd {
	case cmdLookup:
		kind = m.traits.LookupBatch
	case cmdLookupAndDelete:
		kind = m.traits.LookupAndDeleteBatch
	case cmdUpdate:
		kind = m.traits.UpdateBatch
	case cmdDelete:
		kind = m.traits.DeleteBatch
	}
	switch {
	case kind == mapops.BatchNone:
		return uapi.ENOTSUPP
	case kind == mapops.BatchBucket && cmd == cmdLookupAndDelete && m.inner != nil:
		return m.lookupAndDeleteBatchInner(b)
	case kind == mapops.BatchBucket:
		return m.bucketBatch(b, cmd == cmdLookupAndDelete)
	case cmd == cmdLookup:
		return m.genericLookupBatch(b)
	case cmd == cmdUpdate:
		return m.genericUpdateBatch(b)
	case cmd == cmdDelete:
		return m.genericDeleteBatch(b)
	}
	return uapi.ENOTSUPP
}

// userSlice is the n bytes at index i×n of a user array, or nil if the
// array is too short (a faulting copy).
func userSlice(buf []byte, i, n uint64) []byte {
	if uint64(len(buf)) < (i+1)*n || n == 0 && buf == nil {
		return nil
	}
	return buf[i*n : (i+1)*n]
}

// genericLookupBatch is generic_map_lookup_batch: walk with GET_NEXT_KEY
// from the key cursor, copying (key, value) pairs. A key whose lookup finds
// nothing (deleted meanwhile, or an empty ARRAY_OF_MAPS slot) is skipped,
// as the live kernel does, and out_batch is the last key the walk visited,
// copied or skipped.
func (m *Map) genericLookupBatch(b *Batch) error {
	if b.ElemFlags != 0 {
		return uapi.EINVAL
	}
	max := b.Count
	if max == 0 {
		return nil
	}
	b.Count = 0
	ks, vs := uint64(m.keySize), uint64(m.sysVal)
	prev := make([]byte, ks)
	key := make([]byte, ks)
	value := make([]byte, vs)
	var prevKey []byte
	if b.InBatch != nil {
		if uint64(len(b.InBatch)) < ks {
			return uapi.EFAULT
		}
		copy(prev, b.InBatch)
		prevKey = prev
	}
	var err error
	cp := uint32(0)
	for cp < max {
		if err = m.ops.GetNextKey(prevKey, key); err != nil {
			break
		}
		err = m.ops.Lookup(key, value)
		switch {
		case err == uapi.ENOENT:
			// Gone since GET_NEXT_KEY, or an empty map-in-map slot:
			// skipped, and the walk goes on from it.
		case err != nil:
			return err
		default:
			// The kernel copies the key out before the value, so a
			// faulting values buffer leaves this key written.
			dk := userSlice(b.Keys, uint64(cp), ks)
			if dk == nil {
				return uapi.EFAULT
			}
			copy(dk, key)
			dv := userSlice(b.Values, uint64(cp), vs)
			if dv == nil {
				return uapi.EFAULT
			}
			copy(dv, value)
			cp++
		}
		if prevKey == nil {
			prevKey = prev
		}
		prevKey, key = key, prevKey
	}
	b.Count = cp
	if cp > 0 {
		if uint64(len(b.OutBatch)) < ks {
			return uapi.EFAULT
		}
		copy(b.OutBatch, prevKey)
	}
	return err
}

// genericUpdateBatch is generic_map_update_batch: UPDATE each pair with
// elem_flags, stopping at the first error.
func (m *Map) genericUpdateBatch(b *Batch) error {
	vs := uint64(m.sysVal)
	return m.genericWriteBatch(b, func(i uint64, k []byte) error {
		v := userSlice(b.Values, i, vs)
		if v == nil {
			return uapi.EFAULT
		}
		if m.inner != nil && b.InnerFD != nil {
			return m.updateSlot(k, uapi.Any, func() (*Handle, error) { return b.InnerFD(binary.LittleEndian.Uint32(v)) })
		}
		if m.inner != nil {
			return m.updateByID(k, v, uapi.Any)
		}
		return m.ops.Update(k, v, uapi.Any)
	})
}

// genericDeleteBatch is generic_map_delete_batch: DELETE each key, stopping
// at the first error.
func (m *Map) genericDeleteBatch(b *Batch) error {
	return m.genericWriteBatch(b, func(_ uint64, k []byte) error {
		if m.inner != nil {
			return m.deleteSlot(k)
		}
		return m.ops.Delete(k)
	})
}

// genericWriteBatch is the loop the kernel's generic update and delete
// batches share: elem_flags may only be 0 (no spin locks), a zero count
// returns at once, count is zeroed and then set to the number of elements
// done before the first error, which is returned.
func (m *Map) genericWriteBatch(b *Batch, do func(i uint64, key []byte) error) error {
	if b.ElemFlags != 0 {
		return uapi.EINVAL
	}
	max := b.Count
	if max == 0 {
		return nil
	}
	b.Count = 0
	ks := uint64(m.keySize)
	var err error
	cp := uint32(0)
	for ; cp < max; cp++ {
		k := userSlice(b.Keys, uint64(cp), ks)
		if k == nil {
			err = uapi.EFAULT
			break
		}
		if err = do(uint64(cp), k); err != nil {
			break
		}
	}
	b.Count = cp
	return err
}

// bucketBatch is the hash family's lookup (and delete) batch: whole buckets
// from the u32 bucket cursor, ENOSPC when not even the first fits.
func (m *Map) bucketBatch(b *Batch, del bool) error {
	bb := m.ops.(mapops.BucketBatcher)
	if b.ElemFlags != 0 || b.Flags != 0 {
		return uapi.EINVAL
	}
	max := b.Count
	if max == 0 {
		return nil
	}
	b.Count = 0
	cursor := uint32(0)
	if b.InBatch != nil {
		if len(b.InBatch) < 4 {
			return uapi.EFAULT
		}
		cursor = binary.LittleEndian.Uint32(b.InBatch)
	}
	nb := bb.NumBuckets()
	if cursor >= nb {
		return uapi.ENOENT
	}
	ks, vs := uint64(m.keySize), uint64(m.sysVal)
	keys := make([]byte, 0, 8*ks)
	values := make([]byte, 0, 8*vs)
	total := uint32(0)
	var err error
	for {
		n, copied := bb.CopyBucket(cursor, keys[:cap(keys)], values[:cap(values)], max-total, del)
		if !copied {
			if n > max-total {
				if total == 0 {
					err = uapi.ENOSPC
				}
				break
			}
			// The scratch space is too small for this bucket: grow, retry.
			keys = make([]byte, 0, uint64(n)*ks)
			values = make([]byte, 0, uint64(n)*vs)
			continue
		}
		if n > 0 {
			// Keys are copied out before values, as the kernel does.
			dk := userSlice(b.Keys, 0, uint64(total+n)*ks)
			if dk == nil {
				return uapi.EFAULT
			}
			copy(dk[uint64(total)*ks:], keys[:uint64(n)*ks])
			dv := userSlice(b.Values, 0, uint64(total+n)*vs)
			if dv == nil {
				return uapi.EFAULT
			}
			copy(dv[uint64(total)*vs:], values[:uint64(n)*vs])
			total += n
		}
		cursor++
		if cursor >= nb {
			err = uapi.ENOENT
			break
		}
	}
	if len(b.OutBatch) < 4 {
		return uapi.EFAULT
	}
	binary.LittleEndian.PutUint32(b.OutBatch, cursor)
	b.Count = total
	return err
}
