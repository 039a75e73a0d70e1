package bpfmap

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/cilium/ebpf"

	"github.com/bpfmap/bpfmap/internal/command"
	"github.com/bpfmap/bpfmap/internal/marshal"
	"github.com/bpfmap/bpfmap/internal/uapi"
)

// MapBatchCursor carries a batch lookup's position between calls, like
// *ebpf.MapBatchCursor. Its zero value starts at the beginning; a cursor
// belongs to one map.
type MapBatchCursor struct {
	m      *Map
	opaque []byte
}

// BatchLookup looks up many keys at once, continuing from cursor. keysOut
// and valuesOut are slices (or []byte) with room for the same number of
// entries; for per-CPU maps valuesOut holds one element per CPU per entry.
// It returns the number of entries written. At the end of the map the error
// matches ebpf.ErrKeyNotExist, possibly with entries returned. Hash maps
// return whole buckets; ENOSPC means not even one bucket fit.
func (m *Map) BatchLookup(cursor *MapBatchCursor, keysOut, valuesOut any, opts *ebpf.BatchOptions) (int, error) {
	return m.batchLookup(opBatchLookup, cursor, keysOut, valuesOut, opts)
}

// BatchLookupAndDelete is BatchLookup that also removes the entries returned
// (hash maps; ENOTSUPP elsewhere).
func (m *Map) BatchLookupAndDelete(cursor *MapBatchCursor, keysOut, valuesOut any, opts *ebpf.BatchOptions) (int, error) {
	return m.batchLookup(opBatchLookupAndDelete, cursor, keysOut, valuesOut, opts)
}

func batchOpts(b *command.Batch, opts *ebpf.BatchOptions) {
	if opts != nil {
		b.ElemFlags, b.Flags = opts.ElemFlags, opts.Flags
	}
}

func (m *Map) batchLookup(o op, cursor *MapBatchCursor, keysOut, valuesOut any, opts *ebpf.BatchOptions) (int, error) {
	defer runtime.KeepAlive(m)
	if m.keySize == 0 {
		return m.keylessBatch(o)
	}
	if cursor == nil {
		return 0, argError(o, "nil cursor", uapi.EINVAL)
	}
	count, err := marshal.BatchLen(keysOut, int(m.keySize))
	if err != nil {
		return 0, argError(o, "keys", err)
	}
	if !m.perCPU {
		n, err := marshal.BatchLen(valuesOut, m.fullValue)
		if err != nil {
			return 0, argError(o, "values", err)
		}
		if n != count {
			return 0, argError(o, "keys and values must have the same length", uapi.EINVAL)
		}
	}
	var b command.Batch
	if cursor.opaque == nil {
		cursor.opaque = make([]byte, max(m.keySize, 4))
		cursor.m = m
	} else {
		if cursor.m != m {
			return 0, argError(o, "a cursor may not be reused across maps", uapi.EINVAL)
		}
		b.InBatch = cursor.opaque
	}
	b.OutBatch = cursor.opaque
	b.Count = uint32(count)
	b.Keys = make([]byte, count*int(m.keySize))
	b.Values = make([]byte, count*m.fullValue)
	batchOpts(&b, opts)
	if o == opBatchLookup {
		err = m.h.LookupBatch(&b)
	} else {
		err = m.h.LookupAndDeleteBatch(&b)
	}
	if err != nil && !errors.Is(err, uapi.ENOENT) {
		return 0, wrap(o, err)
	}
	n := int(b.Count)
	if n > 0 {
		uerr := marshal.UnmarshalBatch(keysOut, b.Keys, int(m.keySize))
		if uerr != nil {
			return 0, argError(o, "keys", uerr)
		}
		if m.perCPU {
			uerr = marshal.UnmarshalPerCPUBatch(valuesOut, b.Values, count, int(m.valueSize), m.ncpu)
		} else {
			uerr = marshal.UnmarshalBatch(valuesOut, b.Values, m.fullValue)
		}
		if uerr != nil {
			return 0, argError(o, "values", uerr)
		}
	}
	return n, wrap(o, err)
}

// BatchUpdate stores many entries at once. keys and values are slices of the
// same length (per-CPU maps: values hold one element per CPU per entry).
// opts.ElemFlags may only be 0, as in the kernel (no NOEXIST/EXIST). It
// stops at the first failing entry and returns how many were stored.
func (m *Map) BatchUpdate(keys, values any, opts *ebpf.BatchOptions) (int, error) {
	defer runtime.KeepAlive(m)
	if m.keySize == 0 {
		return m.keylessBatch(opBatchUpdate)
	}
	kb, count, err := marshal.BatchBytes(keys, int(m.keySize), nil)
	if err != nil {
		return 0, argError(opBatchUpdate, "keys", err)
	}
	var vb []byte
	if m.perCPU {
		vb = make([]byte, count*m.fullValue)
		err = marshal.PerCPUBatchBytes(values, count, int(m.valueSize), m.ncpu, vb)
	} else {
		var n int
		if vb, n, err = marshal.BatchBytes(values, m.fullValue, nil); err == nil && n != count {
			err = fmt.Errorf("keys and values must have the same length: %w", uapi.EINVAL)
		}
	}
	if err != nil {
		return 0, argError(opBatchUpdate, "values", err)
	}
	b := command.Batch{Keys: kb, Values: vb, Count: uint32(count)}
	batchOpts(&b, opts)
	err = m.h.UpdateBatch(&b)
	return int(b.Count), wrap(opBatchUpdate, err)
}

// BatchDelete removes many keys at once, stopping at the first that fails
// (ENOENT for a missing key); it returns how many were removed.
func (m *Map) BatchDelete(keys any, opts *ebpf.BatchOptions) (int, error) {
	defer runtime.KeepAlive(m)
	if m.keySize == 0 {
		return m.keylessBatch(opBatchDelete)
	}
	kb, count, err := marshal.BatchBytes(keys, int(m.keySize), nil)
	if err != nil {
		return 0, argError(opBatchDelete, "keys", err)
	}
	b := command.Batch{Keys: kb, Count: uint32(count)}
	batchOpts(&b, opts)
	err = m.h.DeleteBatch(&b)
	return int(b.Count), wrap(opBatchDelete, err)
}

// keylessBatch answers a batch command on a map without keys (queue, stack,
// bloom filter), which no kernel type supports: the command layer's errno
// (ENOTSUPP after the permission checks), without marshalling arguments
// that have no key size to be measured by.
func (m *Map) keylessBatch(o op) (int, error) {
	var b command.Batch
	var err error
	switch o {
	case opBatchLookup:
		err = m.h.LookupBatch(&b)
	case opBatchLookupAndDelete:
		err = m.h.LookupAndDeleteBatch(&b)
	case opBatchUpdate:
		err = m.h.UpdateBatch(&b)
	default:
		err = m.h.DeleteBatch(&b)
	}
	return 0, wrap(o, err)
}
