package bpfmap

import (
	"errors"
	"fmt"
	"iter"
	"runtime"

	"github.com/cilium/ebpf"

	"github.com/bpfmap/bpfmap/internal/command"
	"github.com/bpfmap/bpfmap/internal/marshal"
	"github.com/bpfmap/bpfmap/internal/uapi"
)

// MapIterator iterates a map with NextKey and Lookup, like
// *ebpf.MapIterator, with the same rules: a concurrent delete of the current
// key restarts iteration from the first key (so keys may repeat), and after
// MaxEntries+1 keys without reaching the end the iterator stops with
// ebpf.ErrIterationAborted.
type MapIterator struct {
	m      *Map
	cursor []byte
	count  uint32
	done   bool
	err    error
}

// Iterate returns an iterator over the map's keys and values.
func (m *Map) Iterate() *MapIterator {
	return &MapIterator{m: m}
}

// Next decodes the next key and value into keyOut and valueOut. It returns
// false at the end or on error; check Err afterwards.
func (mi *MapIterator) Next(keyOut, valueOut any) bool {
	if mi.err != nil || mi.done {
		return false
	}
	for mi.count <= mi.m.maxEntries {
		var err error
		if mi.cursor == nil {
			mi.cursor = make([]byte, mi.m.keySize)
			err = mi.m.NextKey(nil, mi.cursor)
		} else {
			err = mi.m.NextKey(mi.cursor, mi.cursor)
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			mi.done = true
			return false
		}
		if err != nil {
			mi.err = fmt.Errorf("get next key: %w", err)
			return false
		}
		mi.count++
		err = mi.m.Lookup(mi.cursor, valueOut)
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			continue // deleted since NextKey returned it
		}
		if err != nil {
			mi.err = fmt.Errorf("look up next key: %w", err)
			return false
		}
		if err := marshal.Unmarshal(keyOut, mi.cursor); err != nil {
			mi.err = fmt.Errorf("unmarshal key: %w", err)
			return false
		}
		return true
	}
	mi.err = fmt.Errorf("%w", ebpf.ErrIterationAborted)
	return false
}

// Err returns the error that stopped Next, or nil at a clean end.
func (mi *MapIterator) Err() error { return mi.err }

// All returns an iterator over the map's entries as raw bytes: keys of the
// key size and values of the value size (per-CPU maps: all CPUs' slots,
// round_up(value size, 8) bytes each). The slices are reused between
// iterations; copy them to keep them.
//
// Unlike Iterate, All reads the map in pages with the lookup batch command.
// For hash maps (HASH, PERCPU_HASH, the LRU hashes, HASH_OF_MAPS) each page
// holds whole buckets read atomically, so under concurrent updates and
// deletes:
//   - every key present and unchanged for the whole iteration is yielded
//     exactly once;
//   - no key is yielded twice, and the iteration always ends;
//   - a key inserted or deleted during the iteration may or may not be
//     yielded, and a yielded value is one that some update stored in full.
//
// Arrays yield every index in order. An LPM trie's pages follow the
// kernel's GET_NEXT_KEY, which restarts from the first key when the
// cursor's key has been deleted, so under concurrent deletes an LPM walk
// can yield a key again, as a kernel walk does. All yields nothing from a closed map or
// a write-only handle; Iterate reports such errors.
func (m *Map) All() iter.Seq2[[]byte, []byte] {
	return func(yield func([]byte, []byte) bool) {
		defer runtime.KeepAlive(m)
		page := uint32(64)
		cursor := make([]byte, max(m.keySize, 4))
		b := command.Batch{OutBatch: cursor}
		for {
			b.Keys = make([]byte, int(page)*int(m.keySize))
			b.Values = make([]byte, int(page)*m.fullValue)
			b.Count = page
			err := m.h.LookupBatch(&b)
			if errors.Is(err, uapi.ENOSPC) {
				page *= 2 // one bucket holds more than a page
				continue
			}
			if err != nil && !errors.Is(err, uapi.ENOENT) {
				return
			}
			ks, vs := int(m.keySize), m.fullValue
			for i := range int(b.Count) {
				if !yield(b.Keys[i*ks:(i+1)*ks:(i+1)*ks], b.Values[i*vs:(i+1)*vs:(i+1)*vs]) {
					return
				}
			}
			if err != nil || b.Count == 0 {
				return // ENOENT: the walk reached the end
			}
			b.InBatch = cursor
		}
	}
}

// Entries returns an iterator over m's entries decoded as K and V, with the
// guarantees of (*Map).All. K and V follow the marshalling rules of Lookup;
// for per-CPU maps V is a slice type with one element per possible CPU.
// Entries that cannot be decoded as K and V end the iteration.
func Entries[K, V any](m *Map) iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		for kb, vb := range m.All() {
			var k K
			var v V
			if marshal.Unmarshal(&k, kb) != nil {
				return
			}
			var err error
			if m.perCPU {
				err = marshal.UnmarshalPerCPU(&v, vb, int(m.valueSize), m.ncpu)
			} else {
				err = marshal.Unmarshal(&v, vb)
			}
			if err != nil || !yield(k, v) {
				return
			}
		}
	}
}
